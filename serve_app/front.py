"""The address clients call: HAProxy (Debian's `haproxy`) on the configured host and
`serving.front_port` (8000), in front of the Ingress replicas' own HTTP servers.

With `RAY_SERVE_THROUGHPUT_OPTIMIZED=1` every Ingress replica opens a server of its own (direct
ingress) on a port Ray takes from `RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT` up to, not including,
`RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT` (conf/serve.env; Ray's `PortAllocator` hands out the
lowest free one, and a released port is held back for `RAY_SERVE_PORT_QUARANTINE_S`). A
restarted replica gets another port of the range, so the front lists the whole range as
servers, health-checked on `/healthz`: a port nobody listens on is just marked down, and the
replica that opens it is up within a second. Serve's own proxy (conf/serve.yaml http_options,
8001) is the backup server: it answers while no replica is up (a restart, a rolling update) and
gives the app's own 503 when every replica says it cannot serve.

Why not Ray's `RAY_SERVE_ENABLE_HA_PROXY`: with it Ray binds every replica's HTTP server on all
interfaces ("forces host to all interfaces", serve/_private/constants.py) and its generated
config binds the stats and Prometheus frontends on all interfaces (haproxy_templates.py
`bind *:{stats_port}`, `bind :{metrics_port}`), with no setting for either. This config opens
one listening socket, the front, on the configured host only: no stats page, no admin socket.

`python -m serve_app.front [--host H] [--port P]` writes the config (temp + rename) and runs
HAProxy in the foreground in its place (scripts/serve.sh, the KubeRay head's `front` container);
`front_config` is the config alone (tests, benchmarks).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from serve_app.limits import over_address_limit, too_large
from serve_app.local import serve_environment, wait_for_port
from serve_app.schemas import Problem

if TYPE_CHECKING:
    from soccerpredict.config import ServingConf

# how fast a replica that went away is marked down and a new one up: checks every second
# (every 250 ms while a server is failing), down after 2 failures, up after 1 success
CHECK = (
    "check inter 1s fastinter 250ms downinter 1s fall 2 rise 1"
    # a connection refused (the replica is gone) marks the server down at once, so the retry
    # goes elsewhere; the checks bring it back when it answers again
    " observe layer4 error-limit 1 on-error mark-down"
)


# the body and header of the front's own 502 and 503 (no server could answer): the app's problem
# shape, and when to try again
FRONT_ERROR = (
    "content-type application/json"
    ' string \'{"detail": "no replica could answer; retry"}\' hdr Retry-After 1'
)


def body_too_large(limit: int) -> str:
    """The front's 413: the app's body (limits.too_large) and `Connection: close`, since the
    rest of the body is not read."""
    return (
        f"content-type application/json string '{too_large(limit).decode()}' hdr Connection close"
    )


# the front holds each client address to its allowance (serving.address_rate_per_minute) in
# slices of this many seconds: about the slice's share of the minute's requests admitted in
# any slice (HAProxy's rate is the current period's count plus the previous one's, weighted by
# the part of it still in the window). A client that spreads its requests never notices; a
# burst past the share is refused here, in HAProxy, and never reaches a replica's event loop
ADDRESS_SLICE_S = 10


# the client's address in HAProxy's log-format strings: the variable `client_rules` sets
CLIENT = "%[var(txn.client)]"
# the last address of a trusted proxy's header (HAProxy: -1 counts from the end); no address
# there (absent, or not an address): the connection's source
_FORWARDED = "req.hdr_ip(x-forwarded-for,-1)"


def client_rules(trusted_proxies: Sequence[str]) -> str:
    """The rules that name the client (`txn.client`): the connection's source, or, from an
    address or network of `trusted_proxies` (serving.front_trusted_proxies: an ingress
    controller in front of the front), the last address in its X-Forwarded-For: the one the
    proxy appended. A header from anyone else is never believed."""
    rules = ["http-request set-var(txn.client) src"]
    if trusted_proxies:
        networks = " ".join(str(ipaddress.ip_network(p, strict=False)) for p in trusted_proxies)
        rules += [
            f"acl from_trusted_proxy src {networks}",
            (
                f"http-request set-var(txn.client) {_FORWARDED} if from_trusted_proxy "
                f"{{ {_FORWARDED} -m found }}"
            ),
        ]
    return "\n    ".join(rules)


def address_slice_limit(rate_per_minute: int) -> int:
    """Requests one address may send in any `ADDRESS_SLICE_S` seconds."""
    return max(1, -(-rate_per_minute * ADDRESS_SLICE_S // 60))


def _refusal(detail: str, retry_after_s: int, condition: str) -> str:
    """The rule that answers the front's 429 when `condition` holds: the app's problem body
    with `detail` (naming the client's address, `CLIENT`) and when to try again."""
    body = Problem(detail=detail).model_dump_json()
    # in a log-format string `%` starts a sample and `'` would end the quoted text
    if body.count("%") != 1 or "'" in body:
        raise ValueError(f"the 429's body cannot be a HAProxy log-format string: {body}")
    return (
        f"http-request return status 429 content-type application/json lf-string '{body}'"
        f" hdr Retry-After {retry_after_s} if {condition}"
    )


def address_refusal(
    rate_per_minute: int, counter: str, what: str = "requests", acl: str = ""
) -> str:
    """The front's 429 once `counter` (a gpc of sc0) has admitted the slice's share of
    `rate_per_minute` (limits.over_address_limit's words); try again after the slice."""
    limit = address_slice_limit(rate_per_minute)
    detail = over_address_limit(limit, f"in {ADDRESS_SLICE_S} s", CLIENT, what)
    return _refusal(detail, ADDRESS_SLICE_S, f"{acl}{{ sc_{counter}_rate(0) ge {limit} }}")


def address_burst_refusal(per_second: int) -> str:
    """The front's 429 once sc1's gpc0 (the `per_second` table) has admitted `per_second`
    requests in the last second; try again in a second."""
    detail = over_address_limit(per_second, "in 1 s", CLIENT, "requests")
    return _refusal(detail, 1, f"{{ sc_gpc0_rate(1) ge {per_second} }}")


def address_concurrency_refusal(in_flight: int) -> str:
    """The front's 429 to a request past `in_flight` requests of its address still unanswered
    (sc0's trackers: each request tracks its address's entry from `track-sc0` to its end); try
    again in a second."""
    detail = over_address_limit(in_flight, "in flight", CLIENT, "requests")
    return _refusal(
        f"{detail}; wait for an answer before sending more",
        1,
        f"{{ sc_trackers(0) gt {in_flight} }}",
    )


def direct_ingress_ports(env: dict[str, str]) -> range:
    """The ports Ray gives Ingress replicas, as its PortAllocator reads them: min up to max,
    max excluded."""
    low = int(env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"])
    high = int(env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"])
    if not 0 < low < high <= 65536:
        raise ValueError(f"no direct-ingress ports between {low} and {high}")
    return range(low, high)


def front_config(
    host: str,
    port: int,
    replica_ports: range,
    proxy_port: int,
    max_body_bytes: int,
    replica_connections: int,
    address_rate_per_minute: int,
    metrics_rate_per_minute: int,
    address_in_flight: int,
    address_per_second: int,
    backend_host: str = "127.0.0.1",
    server_timeout_s: float = 60.0,
    trusted_proxies: Sequence[str] = (),
) -> str:
    """HAProxy's config: one frontend on host:port; every direct-ingress port of the range on
    `backend_host` (the replicas' node: this one), health-checked; Serve's proxy as backup."""
    servers = "\n".join(
        f"    server replica{p} {backend_host}:{p} maxconn {replica_connections} {CHECK}"
        for p in replica_ports
    )
    return f"""# written by serve_app/front.py; do not edit (python -m serve_app.front writes it again)
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    # loopback to this node's replicas: a connect takes microseconds; HAProxy waits
    # min(this, 1 s) before a retry, which a request on a killed replica pays once
    timeout connect 500ms
    timeout client 60s
    timeout server {int(server_timeout_s)}s
    # a request waits this long for a replica with a free slot (left out, it is `timeout
    # connect`: half a second, and a 503 for every request past the slots under a burst)
    timeout queue {int(server_timeout_s)}s
    timeout http-keep-alive 60s
    # a replica that vanished between two checks: the request is tried again on another server
    # (the backup when no other replica is up), when the connection failed and when the replica
    # closed it with no answer at all (SIGKILLed mid-request: benchmarks/reliability.py found
    # those as 502s). A request is retried only if it fits HAProxy's 16 kB buffer. A replica may
    # have started the request it did not answer: a route that is not idempotent (an async
    # post) may then run twice, as it would when the client retried the 503 below itself.
    # the whole request (up to the 16 kB buffer) before a server is picked: one that dies while
    # the body is still on its way would otherwise end the client's connection with no answer
    option http-buffer-request
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    # the front's own failure (no server could answer) is retryable: a 503 with Retry-After, in
    # the app's problem body, never a 502 (these replace only the front's own answers: the
    # app's 503s pass as they are, and it gives no 502)
    http-error status 502 {FRONT_ERROR}
    http-error status 503 {FRONT_ERROR}

frontend front
    bind {host}:{port}
    # each client address's admitted requests in the last {ADDRESS_SLICE_S} s (gpc0), and its
    # admitted `GET /metrics` (gpc1), both counted below the refusals: a refused request is not
    # counted, as in the app's window. Past the share of serving.address_rate_per_minute, or of
    # serving.metrics_rate_per_minute for /metrics (what Prometheus needs: the app's costliest
    # open route), a request is the front's own 429, before it is buffered or a replica is
    # picked. Entries of addresses gone quiet expire
    stick-table type ipv6 size 100k expire {2 * ADDRESS_SLICE_S}s store gpc0_rate({ADDRESS_SLICE_S}s),gpc1_rate({ADDRESS_SLICE_S}s)
    # the client: whose address every limit below counts, and the one the app is told
    {client_rules(trusted_proxies)}
    http-request track-sc0 var(txn.client)
    acl metrics path /metrics
    {address_refusal(metrics_rate_per_minute, "gpc1", "GET /metrics", "metrics ")}
    {address_refusal(address_rate_per_minute, "gpc0")}
    # and in any one second at most serving.address_per_second of them (a table of its own:
    # one period a table): the slice's share let a client send all of it in the slice's first
    # second (an async flood: 200 posts admitted at once, worked beside every other client's
    # requests on two cores)
    http-request track-sc1 var(txn.client) table per_second
    {address_burst_refusal(address_per_second)}
    # and at most serving.address_in_flight of its requests unanswered at once: a client that
    # opens many connections (a flood at c=32) would otherwise hold every replica's slots, and
    # each request of another client would wait its turn behind a replica's whole share of them
    {address_concurrency_refusal(address_in_flight)}
    http-request sc-inc-gpc1(0) if metrics
    http-request sc-inc-gpc0(0)
    http-request sc-inc-gpc0(1)
    # the client's address for the app's per-address limit (conf/runtime.yaml trusts this
    # header from 127.0.0.1 only); a client's own header is replaced, never passed on
    http-request set-header X-Forwarded-For {CLIENT}
    # a body declared larger than the app takes (conf/runtime.yaml serving.max_body_bytes) is
    # refused here, before any of it is buffered, with the app's own 413 and body: a replica
    # that refused it after HAProxy had buffered part of it closed the connection under the
    # rest, and the client sometimes got no answer (12 of 30 2 MB posts). A body with no
    # Content-Length (chunked) is counted by the app (serve_app/limits.py), as before
    http-request return status 413 {body_too_large(max_body_bytes)} if {{ req.hdr_val(content-length) gt {max_body_bytes} }}
    # the app answers a too-large body with 413 before reading it and closes the connection
    # (serve_app/limits.py); HAProxy keeps the client side open unless told, and the client's
    # next request on it would find it closed (tests/test_serve.py found it)
    http-after-response set-header Connection close if {{ status 413 }}
    # the front's 502 (above, in defaults) said as the retryable 503 it is
    http-after-response set-status 503 if {{ status 502 }}
    default_backend ingress

# each client address's admitted requests in the last second (sc1; see the frontend)
backend per_second
    stick-table type ipv6 size 100k expire 2s store gpc0_rate(1s)

backend ingress
    # the first replica (lowest port) up with a free slot: a lone client always meets the same
    # replica (alternating between two cost c=1 misses 1.4x in p50: benchmarks/README.md), and
    # load spills onto the next one at `replica_connections` (serving.front_replica_connections)
    balance first
    option httpchk GET /healthz
    http-check expect status 200
{servers}
    # no check: used whenever no replica is up, it gives the app's answer (its 503 included)
    server serve-proxy {backend_host}:{proxy_port} backup
"""


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)
    return path


def haproxy_binary() -> str:
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if binary is None:
        raise RuntimeError(
            "haproxy is not installed (apt-get install haproxy; scripts/system_packages.sh)"
        )
    return binary


def command(config: Path) -> list[str]:
    """HAProxy in the foreground (-db: no daemon, no master process), this config."""
    return [haproxy_binary(), "-db", "-f", str(config)]


def serving_settings() -> ServingConf:
    """conf/runtime.yaml's `serving` section, through the project's one loader."""
    from soccerpredict.config import PROJECT_ROOT, load_config

    return load_config(
        PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml"
    ).runtime.serving


def config_for(
    serving: ServingConf, host: str, port: int, replica_ports: range, proxy_port: int
) -> str:
    """`front_config` with the limits of `serving` (the fronted app's settings)."""
    return front_config(
        host,
        port,
        replica_ports,
        proxy_port,
        serving.max_body_bytes,
        serving.front_replica_connections,
        serving.address_rate_per_minute,
        serving.metrics_rate_per_minute,
        serving.address_in_flight,
        serving.address_per_second,
        trusted_proxies=serving.front_trusted_proxies,
    )


def start_front(
    config: Path,
    host: str,
    port: int,
    replica_ports: range,
    proxy_port: int,
    log: Path,
    serving: ServingConf | None = None,
) -> subprocess.Popen[bytes]:
    """HAProxy with `front_config` written to `config`, returned once it listens on
    127.0.0.1:`port` (tests, benchmarks; stop it with terminate()). Its limits (body size,
    address rate, connections per replica) are `serving`'s: the `serving` settings of the app
    it fronts, the project's (conf/runtime.yaml) unless given."""
    text = config_for(serving or serving_settings(), host, port, replica_ports, proxy_port)
    write_config(config, text)
    with log.open("w") as out:
        proc = subprocess.Popen(command(config), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 20)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the front did not start: {log.read_text()[-2000:]}") from None
    # HAProxy starts every server up; the ports nobody listens on are marked down by their first
    # two checks (250 ms apart), after which no request is tried on them
    time.sleep(1.5)
    return proc


def main(argv: list[str] | None = None) -> None:
    import yaml

    from soccerpredict.config import PROJECT_ROOT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve-config", type=Path, default=PROJECT_ROOT / "conf/serve.yaml")
    parser.add_argument("--host", help="where the front listens (default: http_options.host)")
    parser.add_argument("--port", type=int, help="default: conf/runtime.yaml serving.front_port")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "var/haproxy/front.cfg")
    parser.add_argument("--check", action="store_true", help="write and check the config only")
    args = parser.parse_args(argv)
    http = yaml.safe_load(args.serve_config.read_text())["http_options"]
    serving = serving_settings()
    port = args.port or serving.front_port
    env = serve_environment() | {k: v for k, v in os.environ.items() if k.startswith("RAY_SERVE_")}
    ports = direct_ingress_ports(env)
    host = args.host or http["host"]
    config = write_config(args.out, config_for(serving, host, port, ports, http["port"]))
    if args.check:
        os.execv(haproxy_binary(), [haproxy_binary(), "-c", "-q", "-f", str(config)])
    os.execv(haproxy_binary(), command(config))


if __name__ == "__main__":
    main()
