"""The front (serve_app/front.py): Debian's HAProxy with the generated config, in front of
small loopback HTTP servers standing in for Ingress replicas on ports of a direct-ingress
range. The front with the real Serve app and a killed Ingress replica: tests/test_serve.py."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_app.front import (
    ADDRESS_SLICE_S,
    address_slice_limit,
    command,
    direct_ingress_ports,
    front_config,
    serving_settings,
    start_front,
    write_config,
)
from serve_app.local import free_port, free_port_range, serve_environment

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists(),
    reason="Debian's haproxy is needed (scripts/system_packages.sh)",
)


class Backlogged(ThreadingHTTPServer):
    """A listen backlog as a replica's server has (uvicorn: 2048), not socketserver's 5: with 5,
    16 connections at once on a busy machine overflowed it, a dropped SYN outlived the front's
    0.5 s connect timeout, and the request went to the next replica (CI saw 15 of 16)."""

    request_queue_size = 128


@contextmanager
def replica(port: int, name: str, delay_s: float = 0.0) -> Iterator[None]:
    """An HTTP server on 127.0.0.1:`port` that answers every GET and POST with its name (a
    POST after `delay_s`)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.command == "POST":
                time.sleep(delay_s)
            body = f"{name} {self.headers.get('x-forwarded-for')}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = Backlogged(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_the_config_is_valid_and_lists_the_range_of_conf_serve_env() -> None:
    ports = direct_ingress_ports(serve_environment())
    assert len(ports) >= 8  # a restarted replica finds a port while its old one is held back
    text = front_config("127.0.0.1", 8000, ports, 8001, 1_048_576, 16, 1200, 60, 8, 40)
    assert [line.split()[1] for line in text.splitlines() if "bind" in line.split()[:1]] == [
        "127.0.0.1:8000"
    ]  # one listening socket: no stats page, no admin socket on any interface
    for port in ports:
        assert f"127.0.0.1:{port} maxconn 16 check" in text
    assert "server serve-proxy 127.0.0.1:8001 backup" in text
    assert "stats" not in text


def test_haproxy_accepts_the_config(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "front.cfg",
        front_config(
            "127.0.0.1", free_port(), range(30000, 30016), 8001, 1_048_576, 16, 1200, 60, 8, 40
        ),
    )
    checked = subprocess.run(
        [*command(config)[:1], "-c", "-f", str(config)], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_front_follows_a_replica_to_another_port_and_falls_back_to_the_proxy(
    tmp_path: Path,
) -> None:
    ports = free_port_range(4)
    proxy, front = free_port(), free_port()
    url = f"http://127.0.0.1:{front}/predict"

    def answers(n: int = 6) -> set[str]:
        return {
            httpx.post(url, json={}, headers={"X-Forwarded-For": "6.6.6.6"}, timeout=5).text
            for _ in range(n)
        }

    def eventually(expected: set[str], timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while (got := answers()) != expected and time.monotonic() < deadline:
            time.sleep(0.25)
        assert got == expected

    with replica(proxy, "proxy"):
        with replica(ports[1], "first"):
            haproxy = start_front(
                tmp_path / "front.cfg", "127.0.0.1", front, ports, proxy, tmp_path / "front.log"
            )
            try:
                # the client's own header is replaced by its address
                assert answers() == {"first 127.0.0.1"}
            except BaseException:
                haproxy.terminate()
                raise
        try:
            # the replica is gone: the proxy answers until a replica is up again
            eventually({"proxy 127.0.0.1"})
            with replica(ports[3], "second"):
                eventually({"second 127.0.0.1"})
        finally:
            haproxy.terminate()
            haproxy.wait(timeout=10)


@contextmanager
def dying_replica(port: int) -> Iterator[list[int]]:
    """A replica SIGKILLed mid-request: healthy to the front's checks until it reads its first
    other request, then gone as the kernel leaves a killed process: that connection reset
    without an answer, nothing listening on its port. How many requests it took."""
    taken: list[int] = []
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if conn.recv(65536).startswith(b"GET /healthz"):
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                conn.close()
                continue
            taken.append(1)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST, no answer
            server.close()
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield taken
    finally:
        stop.set()
        thread.join(5)
        server.close()


@contextmanager
def front_running(
    tmp_path: Path, port: int, replicas: range, proxy: int, serving: Any = None
) -> Iterator[None]:
    """The front on 127.0.0.1:`port` for the duration of the block, then stopped."""
    haproxy = start_front(
        tmp_path / "front.cfg",
        "127.0.0.1",
        port,
        replicas,
        proxy,
        tmp_path / "front.log",
        serving,
    )
    try:
        yield
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=10)


def test_a_request_on_a_replica_killed_mid_request_goes_to_another_server(tmp_path: Path) -> None:
    """The killed replica answered nothing: the request is tried again elsewhere (here the
    backup, Serve's proxy), never handed to the client as the front's 502."""
    ports = free_port_range(2)
    proxy, front = free_port(), free_port()
    with (
        replica(proxy, "proxy"),
        dying_replica(ports[0]) as taken,
        front_running(tmp_path, front, ports, proxy),
    ):
        answer = httpx.post(f"http://127.0.0.1:{front}/predict", json={}, timeout=10)
    assert taken, "the request reached the dying replica first"
    assert (answer.status_code, answer.text) == (200, "proxy 127.0.0.1")
    assert answer.elapsed.total_seconds() < 2.0  # the longest request a kill may cost


def test_when_no_server_can_answer_the_front_says_503_with_retry_after(tmp_path: Path) -> None:
    """Nothing answers (the replica died mid-request, the proxy is down too): a retryable 503
    with Retry-After, not a 502."""
    ports = free_port_range(2)
    proxy, front = free_port(), free_port()
    with dying_replica(ports[0]), front_running(tmp_path, front, ports, proxy):
        answer = httpx.post(f"http://127.0.0.1:{front}/predict", json={}, timeout=20)
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.headers.get("retry-after") == "1"


def test_a_body_declared_too_large_is_the_fronts_413_every_time_and_never_reaches_a_replica(
    tmp_path: Path,
) -> None:
    """Refused by its Content-Length before HAProxy buffers any of it, with the app's own
    problem body. Before, the replica refused it after the front had buffered part of it and
    closed the connection under the rest: 12 of 30 such posts got no answer at all."""
    ports = free_port_range(1)
    proxy, front = free_port(), free_port()
    limit = 65_536
    with (
        replica(ports[0], "first"),
        replica(proxy, "proxy"),
        front_running(
            tmp_path,
            front,
            ports,
            proxy,
            serving_settings().model_copy(update={"max_body_bytes": limit}),
        ),
    ):
        time.sleep(1.0)  # the replica's first check marks it up
        url = f"http://127.0.0.1:{front}/predict/batch"
        headers = {"content-type": "application/json"}
        refused = [
            httpx.post(url, content=b"x" * 400_000, headers=headers, timeout=10) for _ in range(20)
        ]
        small = httpx.post(url, content=b"x" * limit, headers=headers, timeout=10)
    assert {r.status_code for r in refused} == {413}
    assert refused[0].json() == {
        "detail": f"request body larger than {limit} bytes",
        "field": "body",
        "suggestions": [],
    }
    assert refused[0].headers["connection"] == "close"  # the rest of the body is not read
    assert (small.status_code, small.text) == (200, "first 127.0.0.1")  # at the limit: passed on


def test_a_lone_client_always_meets_the_first_replica_and_load_spills_to_the_next(
    tmp_path: Path,
) -> None:
    """`balance first`: one request at a time always goes to the same replica (the lowest port
    up), and only requests past its `serving.front_replica_connections` slots go to the next."""
    ports = free_port_range(2)
    proxy, front = free_port(), free_port()
    url = f"http://127.0.0.1:{front}/predict"
    with (
        replica(ports[0], "first", delay_s=3.0),
        replica(ports[1], "second", delay_s=3.0),
        replica(proxy, "proxy"),
        # 24 at once from one address: past serving.address_in_flight, lifted here
        front_running(tmp_path, front, ports, proxy, unheld(address_in_flight=100)),
    ):
        time.sleep(1.0)  # both replicas' first checks
        alone = [httpx.get(url, timeout=10).text for _ in range(6)]  # a GET: no delay
        with ThreadPoolExecutor(24) as pool:
            together = list(
                pool.map(lambda _: httpx.post(url, json={}, timeout=10).text, range(24))
            )
    assert set(alone) == {"first 127.0.0.1"}
    slots = serving_settings().front_replica_connections
    assert together.count("first 127.0.0.1") == slots
    assert together.count("second 127.0.0.1") == 24 - slots


def unheld(**limits: Any) -> Any:
    """The project's serving settings with these limits (or other settings) instead."""
    return serving_settings().model_copy(update=limits)


def test_an_address_with_too_many_requests_in_flight_gets_the_fronts_429_and_others_pass(
    tmp_path: Path,
) -> None:
    """serving.address_in_flight: one address's requests past that many unanswered get the
    front's own 429 at once (the app's problem body, Retry-After 1), never queued for a
    replica's slot; another address is served meanwhile, and the first one again once its
    requests are answered."""
    ports = free_port_range(1)
    proxy, front = free_port(), free_port()
    cap = serving_settings().address_in_flight
    url = f"http://127.0.0.1:{front}/predict"
    flood = httpx.Client(
        transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        limits=httpx.Limits(max_connections=cap + 4),
        timeout=10,
    )
    with (
        replica(ports[0], "first", delay_s=2.0),
        replica(proxy, "proxy"),
        front_running(tmp_path, front, ports, proxy),
        flood,
        ThreadPoolExecutor(cap + 4) as pool,
    ):
        time.sleep(1.0)  # the replica's first check marks it up
        started = time.monotonic()
        posts = [pool.submit(flood.post, url, json={}) for _ in range(cap + 4)]
        time.sleep(0.5)
        other = httpx.post(url, json={}, timeout=10)
        answers = [p.result() for p in posts]
        again = flood.post(url, json={})
    refused = [a for a in answers if a.status_code == 429]
    assert sorted(a.status_code for a in answers) == [200] * cap + [429] * 4
    assert all(a.elapsed.total_seconds() < 1.0 for a in refused), "refused at once, not queued"
    assert refused[0].json()["detail"] == (
        f"more than {cap} requests in flight from 127.0.0.2; wait for an answer before sending more"
    )
    assert refused[0].headers["retry-after"] == "1"
    assert (other.status_code, other.text) == (200, "first 127.0.0.1")
    assert (again.status_code, again.text) == (200, "first 127.0.0.2")
    assert time.monotonic() - started < 8


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limits_and_others_are_not_believed(
    tmp_path: Path,
) -> None:
    """serving.front_trusted_proxies (an ingress controller in front of the front): from there
    the client is the last X-Forwarded-For address, whose requests alone count against its
    limits, and the one the app is told; the same header from an untrusted address is ignored,
    and an unparseable one from the proxy leaves the proxy as the client."""
    ports = free_port_range(1)
    proxy, front = free_port(), free_port()
    # 127.0.0.0/31: 127.0.0.1, not 127.0.0.2
    serving = unheld(address_in_flight=2, front_trusted_proxies=["127.0.0.0/31"])
    url = f"http://127.0.0.1:{front}/predict"

    def forwarded(client: str) -> dict[str, str]:
        return {"x-forwarded-for": f"10.9.9.9, {client}"}  # the proxy appended `client`

    with (
        replica(ports[0], "first", delay_s=1.5),
        replica(proxy, "proxy"),
        front_running(tmp_path, front, ports, proxy, serving),
        httpx.Client(limits=httpx.Limits(max_connections=8), timeout=10) as via_proxy,
        httpx.Client(
            transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10
        ) as untrusted,
        ThreadPoolExecutor(8) as pool,
    ):
        time.sleep(1.0)  # the replica's first check marks it up
        busy = [
            pool.submit(via_proxy.post, url, json={}, headers=forwarded("203.0.113.5"))
            for _ in range(4)
        ]
        time.sleep(0.5)
        other = via_proxy.post(url, json={}, headers=forwarded("198.51.100.7"))
        claimed = untrusted.post(url, json={}, headers=forwarded("203.0.113.5"))
        garbled = via_proxy.post(url, json={}, headers={"x-forwarded-for": "not-an-address"})
        answers = [b.result() for b in busy]
    assert sorted(a.status_code for a in answers) == [200, 200, 429, 429]
    assert {a.text for a in answers if a.status_code == 200} == {"first 203.0.113.5"}
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["detail"] == (
        "more than 2 requests in flight from 203.0.113.5; wait for an answer before sending more"
    )
    assert (other.status_code, other.text) == (200, "first 198.51.100.7")
    assert (claimed.status_code, claimed.text) == (200, "first 127.0.0.2")
    assert (garbled.status_code, garbled.text) == (200, "first 127.0.0.1")


def test_a_trusted_proxy_that_is_not_an_address_or_network_is_refused_by_the_loader() -> None:
    with pytest.raises(ValueError, match="'ingress-controller' is not an address or a network"):
        serving_settings().model_validate(
            serving_settings().model_dump() | {"front_trusted_proxies": ["ingress-controller"]}
        )


@contextmanager
def fronted_from_another_address(
    tmp_path: Path, serving: Any
) -> Iterator[tuple[str, httpx.Client]]:
    """The front with `serving`'s limits over one stand-in replica ("first"): its `/healthz`
    URL and a client from 127.0.0.2 (127.0.0.1 is the other address)."""
    ports = free_port_range(1)
    proxy, front = free_port(), free_port()
    flood = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10)
    with (
        replica(ports[0], "first"),
        replica(proxy, "proxy"),
        front_running(tmp_path, front, ports, proxy, serving),
        flood,
    ):
        time.sleep(1.0)  # the replica's first check marks it up
        yield f"http://127.0.0.1:{front}/healthz", flood


def test_an_address_past_its_share_of_the_minute_is_the_fronts_429_and_others_still_pass(
    tmp_path: Path,
) -> None:
    """serving.address_rate_per_minute, held in slices of ADDRESS_SLICE_S: past the slice's share
    one address gets the front's own 429 (the app's problem body, its address, Retry-After),
    which no replica sees; another address is served as before."""
    share = address_slice_limit(60)
    assert share == 60 * ADDRESS_SLICE_S // 60
    serving = unheld(address_rate_per_minute=60, address_per_second=1000)
    with fronted_from_another_address(tmp_path, serving) as (url, flood):
        answers = [flood.get(url) for _ in range(share + 20)]
        other = httpx.get(url, timeout=10)
    assert [a.status_code for a in answers[:share]] == [200] * share
    refused = answers[share:]
    assert {a.status_code for a in refused} == {429}
    assert refused[0].json() == {
        "detail": f"more than {share} requests in {ADDRESS_SLICE_S} s from 127.0.0.2",
        "field": None,
        "suggestions": [],
    }
    assert refused[0].headers["retry-after"] == str(ADDRESS_SLICE_S)
    assert (other.status_code, other.text) == (200, "first 127.0.0.1")


def test_an_address_past_its_second_is_the_fronts_429_and_others_still_pass(
    tmp_path: Path,
) -> None:
    """serving.address_per_second: within the slice's share, one address may still send only
    that many in any second; past it the front's own 429 (Retry-After 1), and a second later
    it is served again. Another address is served meanwhile."""
    limit = serving_settings().address_per_second
    assert limit < address_slice_limit(6000)
    serving = unheld(address_rate_per_minute=6000, address_in_flight=1000)
    with (
        fronted_from_another_address(tmp_path, serving) as (url, flood),
        ThreadPoolExecutor(16) as pool,
    ):
        started = time.monotonic()
        burst = list(pool.map(lambda _: flood.get(url), range(limit + 20)))
        took = time.monotonic() - started
        other = httpx.get(url, timeout=10)
        time.sleep(2.1)  # the second's count is gone (HAProxy weighs the previous second in)
        later = flood.get(url)
    assert took < 1.0, "the burst fits in one second"
    statuses = [a.status_code for a in burst]
    assert set(statuses) == {200, 429}
    # HAProxy's estimate for a second that began mid-burst (the previous second's count
    # weighed by what is left of it, rounded down) may admit one or two more
    assert limit <= statuses.count(200) <= limit + 2
    refused = next(a for a in burst if a.status_code == 429)
    assert refused.json()["detail"] == f"more than {limit} requests in 1 s from 127.0.0.2"
    assert refused.headers["retry-after"] == "1"
    assert (other.status_code, other.text) == (200, "first 127.0.0.1")
    assert later.status_code == 200


def test_metrics_past_its_own_share_is_the_fronts_429_while_other_routes_pass(
    tmp_path: Path,
) -> None:
    """serving.metrics_rate_per_minute holds `GET /metrics` per address (what Prometheus needs)
    apart from the address's other requests, which still pass."""
    ports = free_port_range(1)
    proxy, front = free_port(), free_port()
    serving = serving_settings().model_copy(
        update={"address_rate_per_minute": 6000, "metrics_rate_per_minute": 60}
    )
    share = address_slice_limit(60)
    with (
        replica(ports[0], "first"),
        replica(proxy, "proxy"),
        front_running(tmp_path, front, ports, proxy, serving),
        httpx.Client(base_url=f"http://127.0.0.1:{front}", timeout=10) as http,
    ):
        time.sleep(1.0)  # the replica's first check marks it up
        scrapes = [http.get("/metrics") for _ in range(share + 5)]
        other = [http.get("/healthz") for _ in range(share + 5)]
    assert [a.status_code for a in scrapes[:share]] == [200] * share
    assert {a.status_code for a in scrapes[share:]} == {429}
    assert scrapes[share].json()["detail"] == (
        f"more than {share} GET /metrics in {ADDRESS_SLICE_S} s from 127.0.0.1"
    )
    assert {a.status_code for a in other} == {200}
