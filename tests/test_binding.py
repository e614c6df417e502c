"""The rebinding of each replica's inter-deployment gRPC server (serve_app/binding.py), without
a cluster: the address rule, and that the Ray installed here still binds through the function
that is replaced. The running app's sockets are checked in tests/test_serve.py."""

from __future__ import annotations

from typing import Any

import pytest

from serve_app.binding import bind_replica_grpc_to_node_ip, node_ip_address


@pytest.mark.parametrize(
    ("bind", "host", "expected"),
    [
        ("[::]:0", "127.0.0.1", "127.0.0.1:0"),
        ("[::]:0", "10.1.2.3", "10.1.2.3:0"),
        ("[::]:4321", "fd00::5", "[fd00::5]:4321"),
        ("127.0.0.1:0", "10.1.2.3", "127.0.0.1:0"),  # an address already chosen is kept
    ],
)
def test_all_interfaces_become_the_node_ip(bind: str, host: str, expected: str) -> None:
    assert node_ip_address(bind, host) == expected


def test_rays_replica_binds_through_the_replaced_function(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    import ray
    from ray.serve._private import replica

    assert '"[::]:0"' in inspect.getsource(replica.Replica._on_initialized)  # what Ray 2.60 does
    seen: list[str] = []

    def add_port(server: Any, address: str) -> int:
        seen.append(address)
        return 1234

    monkeypatch.setattr(replica, "add_port_to_grpc_server", add_port)
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "127.0.0.1")
    bind_replica_grpc_to_node_ip()
    bind_replica_grpc_to_node_ip()  # twice (two deployments in one process): wrapped once
    assert replica.add_port_to_grpc_server(object(), "[::]:0") == 1234
    assert seen == ["127.0.0.1:0"]
