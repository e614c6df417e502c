"""Every socket of a replica on the node's own address, never on all interfaces.

Ray 2.60 gives every Serve replica a gRPC server for calls between deployments and binds it to
`[::]:0` (`ray/serve/_private/replica.py`, `Replica._on_initialized`), whatever the settings:
no environment variable, `http_options` or `gRPCOptions` field names its host (ray-project/ray
issue 64544; pull request 64623 adds a port range, not a host). Callers reach that server at
the replica's node IP (`RunningReplicaInfo.node_ip`), the address every other Ray process of
the node listens on: 127.0.0.1 locally (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), the pod IP on
KubeRay. So binding that address loses no caller.

Ray calls the bind after the deployment's constructor has run, so each deployment of the app
calls `bind_replica_grpc_to_node_ip()` first thing. A Ray whose replica no longer binds through
that function makes the replica fail at start instead of listening on every interface: an
upgrade has to look here again (tests/test_serve.py checks every listening socket).
"""

from __future__ import annotations

from typing import Any

_MARK = "_soccerpredict_node_ip_bind"


def node_ip_address(bind: str, host: str) -> str:
    """`[::]:<port>` on all interfaces becomes `<host>:<port>`; any other address is kept."""
    if not bind.startswith("[::]:"):
        return bind
    port = bind.rsplit(":", 1)[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_replica_grpc_to_node_ip() -> None:
    import ray
    from ray.serve._private import replica

    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None:
        raise RuntimeError(
            "this Ray binds its replicas' gRPC servers in another way than Ray 2.60 did: "
            "serve_app/binding.py cannot keep them off the other interfaces"
        )
    if getattr(original, _MARK, False):
        return
    host = ray.util.get_node_ip_address()

    def bind_on_node_ip(server: Any, address: str) -> int:
        return int(original(server, node_ip_address(address, host)))

    setattr(bind_on_node_ip, _MARK, True)
    replica.add_port_to_grpc_server = bind_on_node_ip
