"""Running the app on this machine, for the tests and the benchmarks: free loopback ports, a
redis-server of its own, and `serve run` of a config started and waited for until it answers.

Everything binds 127.0.0.1. A start that never becomes healthy raises with the end of its log.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_range(n: int, low: int = 20000, high: int = 32000) -> range:
    """`n` consecutive loopback ports free now, below Linux's ephemeral range (32768+), so no
    client connection takes one meanwhile; for a direct-ingress range of a test run's own."""
    import random

    for _ in range(200):
        base = random.randrange(low, high - n)
        try:
            for port in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return range(base, base + n)
    raise RuntimeError(f"no {n} free consecutive ports between {low} and {high}")


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


def wait_until(
    check: Callable[[], bool], timeout_s: float, explain: Callable[[], str] = lambda: ""
) -> None:
    """Poll `check` until it is true; a check that raises an HTTP or assertion error is a no."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError, AssertionError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"not ready after {timeout_s} s\n{explain()}")


# The two instances the app uses, as kuberay/base/redis/*.conf configures them in the cluster:
# the cache bounded and lossy, the state instance persisted (AOF) and never evicting.
REDIS_ROLES = {
    "cache": ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru", "--appendonly", "no"],
    "state": [
        "--maxmemory-policy",
        "noeviction",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
    ],
}


def redis_command(port: int, workdir: Path, role: str = "state") -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed (apt-get install redis-server); "
            "the cache, job and rate-limit paths need a real one"
        )
    base = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir"]
    return [*base, str(workdir), *REDIS_ROLES[role]]


def start_redis(port: int, workdir: Path, role: str = "state") -> subprocess.Popen[bytes]:
    """A redis-server on 127.0.0.1:`port` configured for its role; its AOF (state) in
    `workdir`, so a restart in the same folder finds what was written."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        redis_command(port, workdir, role), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port)
    return proc


@contextmanager
def redis_server(
    workdir: Path, role: str = "state"
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = start_redis(port, workdir, role)
    try:
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def start_serve(
    config: Path, url: str, cwd: Path, env: dict[str, str], log: Path, timeout_s: float = 180.0
) -> subprocess.Popen[bytes]:
    """`serve run <config>`, returned once `<url>/healthz` answers 200; stopped and raising with
    the end of its log if it does not within `timeout_s`."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["serve", "run", str(config)], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
            timeout_s,
            lambda: log.read_text()[-3000:],
        )
    except BaseException:
        stop_serve(proc)
        raise
    return proc


def stop_serve(proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """`serve run` shuts the app down on Ctrl-C."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=timeout_s)


SERVE_ENV = Path(__file__).resolve().parent.parent / "conf/serve.env"


def serve_environment(path: Path = SERVE_ENV) -> dict[str, str]:
    """conf/serve.env as a dict (KEY=VALUE lines, # comments): Serve's switches, which Ray reads
    from its processes' environment."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env
