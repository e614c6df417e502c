"""Serving latency and throughput, one model and one request set, in one run
(`python -m benchmarks.serve_latency [--duration 10] [--out reports/benchmarks/serve_latency.json]`).

* in-process: feature assembly + `predict_proba` for one fixture, as a handler would do it;
* plain: the same code behind FastAPI + uvicorn (benchmarks/plain_app.py), one process;
* Serve: `serve run conf/serve.yaml` on a fresh local Ray, cache miss and cache hit, through the
  front clients are told to use (HAProxy, serve_app/front.py, before the Ingress replica's
  direct-ingress port), Serve's HTTP proxy (the front's backup; port 8000 before the front) and
  the Ingress replica's direct-ingress port itself (the front without its hop), once per Serve
  setting tried (`SETTINGS`). The batch route goes through the front.

Load comes from Debian's `wrk` with one thread (so it leaves the server most of a core), driven
by a Lua script that makes every miss request unique (the fixture's odds are nudged per
request) and reports p50/p95; its CPU time is read from the kernel (`RUSAGE_CHILDREN`) and
reported as a share of the machine. Needs the pipeline's outputs (team state, champion) and
`redis-server`, `wrk` on PATH. Writes JSON atomically and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.ray_head import RayHead, start_head
from serve_app.front import direct_ingress_ports, start_front
from serve_app.local import (
    free_port,
    free_port_range,
    serve_environment,
    start_redis,
    start_serve,
    stop_serve,
    wait_for_port,
)
from soccerpredict.config import PROJECT_ROOT, Config, load_config
from soccerpredict.io import write_json

# What is tried on the Serve side: the environment of the Ray cluster's processes.
# each Serve setting tried: its environment and its number of Ingress replicas (the front
# balances them; conf/serve.yaml has the one chosen)
# the shipped setting (conf/serve.env, conf/serve.yaml's Ingress replicas: None), and one
# Ingress replica beside it
SETTINGS: dict[str, tuple[Callable[[], dict[str, str]], int | None]] = {
    "serve.env": (serve_environment, None),
    "serve.env, 1 Ingress replica": (serve_environment, 1),
}
BATCH_SIZES = (1, 10, 100)
# the table's names of the addresses measured
PATHS = {
    "front": "front (HAProxy; :8000, clients)",
    "proxy": "Serve proxy (:8001; :8000 before the front)",
    "direct_ingress": "direct ingress (no front)",
}
LUA = r"""
local fixtures = {FIXTURES}
local counter = 0
local mode, offset, size = "miss", 0, 1
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{KEY}"
function init(args)
  mode = args[1] or "miss"
  offset = tonumber(args[2] or "0")
  size = tonumber(args[3] or "1")
end
local function fixture(n)
  -- a miss must be a never-seen vector: the draw price moves by 1e-6 per pass over the fixtures
  local i = (mode == "hit") and 1 or (n % #fixtures) + 1
  local nudge = (mode == "hit") and 0 or (offset + math.floor(n / #fixtures)) * 1e-6
  local f = fixtures[i]
  return string.format(
    '{"league":"%s","home_team":"%s","away_team":"%s","kickoff":"%s",' ..
    '"odds":{"home":%.6f,"draw":%.6f,"away":%.6f}}',
    f[1], f[2], f[3], f[4], f[5], f[6] + nudge, f[7])
end
function request()
  counter = counter + 1
  if mode == "batch" then  -- `size` never-seen fixtures in one call
    local parts = {}
    for k = 1, size do parts[k] = fixture(counter * size + k) end
    local body = '{"fixtures":[' .. table.concat(parts, ",") .. ']}'
    return wrk.format(nil, "/predict/batch", nil, body)
  end
  return wrk.format(nil, "/predict", nil, fixture(counter))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %.1f %.1f %.1f\n", summary.requests,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def fixtures(cfg: Config) -> list[list[Any]]:
    """Upcoming fixtures with full pre-closing odds: the requests every server answers."""
    from soccerpredict.features.market import pre_closing_odds

    upcoming = pd.read_parquet(Path(cfg.runtime.paths.splits) / "upcoming.parquet")
    matches = pd.read_parquet(cfg.runtime.paths.interim).set_index("match_id")
    rows = matches.loc[upcoming["match_id"]].reset_index()
    out = []
    for row, odds in zip(rows.itertuples(), pre_closing_odds(rows), strict=True):
        if np.isfinite(odds).all():
            out.append(
                [
                    row.league,
                    row.home_team,
                    row.away_team,
                    row.kickoff_utc.date().isoformat(),
                    *map(float, odds),
                ]
            )
    if not out:
        raise SystemExit("no upcoming fixtures with odds: run the pipeline (`dvc repro`) first")
    return out


def lua_script(items: list[list[Any]], key: str, folder: Path) -> Path:
    def lua(v: Any) -> str:
        return f'"{v}"' if isinstance(v, str) else repr(v)

    table = "{" + ",".join("{" + ",".join(lua(v) for v in f) + "}" for f in items) + "}"
    path = folder / "predict.lua"
    path.write_text(LUA.replace("{FIXTURES}", table).replace("{KEY}", key))
    return path


def wrk(
    url: str,
    script: Path,
    connections: int,
    duration_s: int,
    mode: str,
    offset: int = 0,
    size: int = 1,
) -> dict[str, Any]:
    """One wrk run; latency in ms, the client's CPU as a share of all cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration_s}s",
            "-s",
            str(script),
            url,
            "--",
            mode,
            str(offset),
            str(size),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration_s + 60,
    ).stdout
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    n, duration_us, bad_status, socket_errors, p50, p95, p99 = line.split()[1:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "requests": int(n),
        "rps": int(n) / (int(duration_us) / 1e6),
        "p50_ms": float(p50) / 1000,
        "p95_ms": float(p95) / 1000,
        "p99_ms": float(p99) / 1000,
        "non_2xx": int(bad_status),
        "socket_errors": int(socket_errors),
        "client_cpu_share": cpu / (wall * (os.cpu_count() or 1)),
        "connections": connections,
    }


def measure(
    url: str, script: Path, duration_s: int, modes: tuple[str, ...], start: int = 0
) -> dict[str, Any]:
    """c=1 latency, c=32 throughput and (misses) c=64 latency under load for each mode, each
    miss run on never-seen requests. `start` (in passes over the fixtures) keeps addresses of
    one app apart: they share its cache, so a second address given the first one's requests
    would measure hits as misses."""
    out: dict[str, Any] = {}
    wrk(url, script, 4, 3, "hit")  # warm-up: connections, code paths, the one hit body cached
    for offset, mode in enumerate(modes):
        # offsets in passes over the fixtures (1e-6 each): no two runs share a vector, and the
        # draw price moves by at most about 0.06, so every request keeps a valid margin
        base = start + 6_000 * (offset + 1)
        out[mode] = {
            "c1": wrk(url, script, 1, duration_s, mode, base),
            "c32": wrk(url, script, 32, duration_s, mode, base + 2_000),
        }
        if mode == "miss":
            out[mode]["c64"] = wrk(url, script, 64, duration_s, mode, base + 4_000)
    return out


def batches(url: str, script: Path, duration_s: int, sizes: tuple[int, ...]) -> dict[str, Any]:
    """POST /predict/batch with `size` never-seen fixtures per call, 8 calls in flight: the
    fixtures answered per second at each size."""
    out: dict[str, Any] = {}
    for k, size in enumerate(sizes):
        run = wrk(url, script, 8, duration_s, "batch", 12_000 + 2_000 * k, size)
        out[str(size)] = run | {"fixtures_per_s": run["rps"] * size}
    return out


def peak_rss_mb(procs: list[Any]) -> dict[str, float]:
    """Each process's peak resident memory (VmHWM) in MB, keyed by its title."""
    import psutil

    out: dict[str, float] = {}
    for proc in procs:
        try:
            title = (proc.cmdline() or [proc.name()])[0].rsplit("/", 1)[-1]
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except (OSError, psutil.Error):  # a process gone meanwhile has no peak to report
            status = ""
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                name = title if title not in out else f"{title} ({proc.pid})"
                out[name] = round(int(line.split()[1]) / 1024, 1)
    return out


def in_process(cfg: Config, items: list[list[Any]], version: str, n: int = 2000) -> dict[str, Any]:
    import mlflow

    from soccerpredict import registry
    from soccerpredict.features.online import Fixture, TeamState

    mlflow.set_tracking_uri(cfg.runtime.mlflow.tracking_uri)
    predictor = registry.load_predictor(
        registry.tracking_client(cfg), cfg.runtime.mlflow.model_name, version
    )
    state = TeamState.load(cfg.runtime.paths.team_state)
    times = []
    for k in range(n):
        f = items[k % len(items)]
        fixture = Fixture(f[0], f[1], f[2], pd.Timestamp(f[3]).date(), (f[4], f[5], f[6]))
        started = time.perf_counter()
        state.check(fixture, 400)
        predictor.predict_proba(state.features([fixture]))
        times.append((time.perf_counter() - started) * 1000)
    q = statistics.quantiles(times, n=100)
    return {
        "p50_ms": q[49],
        "p95_ms": q[94],
        "calls": n,
        "per_core_rps": 1000 / statistics.mean(times),
    }


def plain(version: str, script: Path, duration_s: int) -> dict[str, Any]:
    import psutil

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.plain_app", "--port", str(port), "--version", version],
        cwd=PROJECT_ROOT,
    )
    try:
        wait_for_port(port, 120)
        out = measure(f"http://127.0.0.1:{port}", script, duration_s, ("miss",))["miss"]
        return out | {"peak_rss_mb": peak_rss_mb([psutil.Process(proc.pid)])}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def ingress_listeners(head: RayHead, ports: range) -> dict[int, int]:
    """Each Ingress replica's own HTTP port (direct ingress, in `ports`) and its process id,
    found among this cluster's processes: a scan of the range could find another app on a
    shared machine."""
    import psutil

    found: dict[int, int] = {}
    for proc in head.processes():
        try:
            if "ServeReplica:soccerpredict:Ingress" not in " ".join(proc.cmdline()):
                continue
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports:
                    found[int(conn.laddr.port)] = proc.pid
        except psutil.NoSuchProcess:
            continue
    return found


def direct_ingress_port(head: RayHead, ports: range) -> int | None:
    """The lowest Ingress replica port: the one the front fills first (`balance first`)."""
    return min(ingress_listeners(head, ports), default=None)


def write_app_config(
    folder: Path,
    redis_url: str,
    http_port: int,
    ingress_replicas: int | None = None,
    root: Path = PROJECT_ROOT,
) -> Path:
    """conf/serve.yaml and conf/runtime.yaml in `folder`, with this Redis and HTTP port (and
    `ingress_replicas` Ingress replicas if given); the rate limit is still checked (its Redis
    round trip is part of the cost), never reached. `root`: the checkout whose outputs (team
    state, registry, keys) the app serves."""
    runtime = yaml.safe_load((root / "conf/runtime.yaml").read_text())
    runtime["serving"].update(
        redis_url=redis_url,
        rate_limit_per_minute=10**9,
        address_rate_per_minute=10**9,
        address_in_flight=10**6,
        address_per_second=10**6,
    )
    (folder / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    config = yaml.safe_load((root / "conf/serve.yaml").read_text())
    config["http_options"]["port"] = http_port
    config["applications"][0]["args"]["conf"] = str(folder / "runtime.yaml")
    if root != PROJECT_ROOT:
        config["applications"][0]["args"]["root"] = str(root)
    for deployment in config["applications"][0]["deployments"]:
        if deployment["name"] == "Ingress" and ingress_replicas is not None:
            deployment["num_replicas"] = ingress_replicas
    (folder / "serve.yaml").write_text(yaml.safe_dump(config))
    return folder / "serve.yaml"


def app_runtime(folder: Path) -> Any:
    """The runtime settings `write_app_config` wrote to `folder`, through the one loader (the
    front takes its limits from them)."""
    return load_config(PROJECT_ROOT / "params.yaml", folder / "runtime.yaml", env={}).runtime


@dataclass
class RunningApp:
    """The app as the main command runs it, on a Ray head of its own: `serve run` of
    conf/serve.yaml (written to `folder` with this run's ports) and the front before it."""

    head: RayHead
    front: str  # the address clients call (HAProxy)
    proxy: str  # Serve's proxy, the front's backup
    ports: range  # the direct-ingress range of this run
    serve: subprocess.Popen[bytes]
    haproxy: subprocess.Popen[bytes]


@contextmanager
def running_app(
    setting: dict[str, str],
    redis_url: str,
    folder: Path,
    ingress_replicas: int | None = None,
    cache_url: str | None = None,
    dashboard: bool = False,
    root: Path = PROJECT_ROOT,
) -> Iterator[RunningApp]:
    """The app on a fresh local Ray with this environment, stopped on exit (the front, `serve
    run`, every process of the head). The direct-ingress range is a free one of the run's own,
    as long as the setting's (a replica of another app on the machine must not be a server of
    this front). `cache_url`: a cache instance apart from `redis_url` (the state one);
    `dashboard`: Ray's dashboard on 127.0.0.1 as the main command has it (a free port); `root`:
    the checkout the app serves from (its outputs, keys; `serve run` runs there)."""
    env = {  # a fresh cluster with exactly this setting (the token settings stay)
        k: v for k, v in os.environ.items() if not k.startswith(("RAY_SERVE_", "RAY_ADDRESS"))
    }
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        REDIS_URL=redis_url,
        REDIS_CACHE_URL=cache_url or redis_url,  # one instance for both roles unless given
        **setting,
    )
    ports = free_port_range(len(direct_ingress_ports(env)))
    env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] = str(ports.start)
    env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"] = str(ports.stop)
    ray_port, http_port, front_port = free_port(), free_port(), free_port()
    write_app_config(folder, redis_url, http_port, ingress_replicas, root)
    runtime = app_runtime(folder)
    resources = runtime.ray.resources  # `serve` for replicas
    head = start_head(ray_port, env, resources, free_port() if dashboard else None)
    env["RAY_ADDRESS"] = head.address
    proxy = f"http://127.0.0.1:{http_port}"  # Serve's proxy: the front's backup
    try:
        proc = start_serve(folder / "serve.yaml", proxy, root, env, folder / "serve.log")
    except BaseException:
        head.stop()
        raise
    haproxy = None
    try:
        haproxy = start_front(
            folder / "front.cfg",
            "127.0.0.1",
            front_port,
            ports,
            http_port,
            folder / "front.log",
            runtime.serving,  # this app's limits: the address's is out of the load's way
        )
        yield RunningApp(head, f"http://127.0.0.1:{front_port}", proxy, ports, proc, haproxy)
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(timeout=10)
        stop_serve(proc)
        head.stop()


def serve(
    setting: dict[str, str],
    redis_url: str,
    script: Path,
    duration_s: int,
    folder: Path,
    ingress_replicas: int | None = None,
) -> dict[str, Any]:
    """The app (`running_app`) with this environment: the front clients are told to use
    (HAProxy before the Ingress replica's own server), Serve's proxy and the direct-ingress port
    itself, misses and hits; the batch route through the front; every Serve process's and the
    front's peak RSS."""
    import psutil

    with running_app(setting, redis_url, folder, ingress_replicas) as app:
        time.sleep(6)  # let the Model publish its version, so hits can happen
        out: dict[str, Any] = {"front": measure(app.front, script, duration_s, ("miss", "hit"))}
        out["proxy"] = measure(app.proxy, script, duration_s, ("miss", "hit"), 20_000)
        out["batch"] = batches(app.front, script, duration_s, BATCH_SIZES)
        port = direct_ingress_port(app.head, app.ports)
        if port is not None:
            direct = f"http://127.0.0.1:{port}"
            out["direct_ingress"] = measure(direct, script, duration_s, ("miss", "hit"), 40_000)
        procs = [psutil.Process(app.serve.pid), psutil.Process(app.haproxy.pid)]
        out["peak_rss_mb"] = peak_rss_mb([*procs, *app.head.processes()])
        return out


def _errors(modes: dict[str, Any]) -> int:
    runs = [r for r in modes.values() if isinstance(r, dict) and "non_2xx" in r]
    return sum(r["non_2xx"] + r["socket_errors"] for r in runs)


def _row(server: str, path: str, cache: str, m: dict[str, Any], plain: dict[str, Any]) -> str:
    c1, c32, c64 = m["c1"], m["c32"], m.get("c64")
    ratio = (
        f"p50 {c1['p50_ms'] / plain['c1']['p50_ms']:.2f}×, "
        f"{c32['rps'] / plain['c32']['rps']:.2f}× req/s"
    )
    under_load = f"{c64['p95_ms']:.1f} / {c64['p99_ms']:.1f}" if c64 else "-"
    return (
        f"| {server} | {path} | {cache} | {c1['p50_ms']:.2f} | {c1['p99_ms']:.2f} | "
        f"{c32['rps']:.0f} | {under_load} | {ratio} | {c32['client_cpu_share']:.0%} | "
        f"{_errors(m)} |"
    )


def table(result: dict[str, Any]) -> str:
    lines = [
        (
            "| server | path | cache | p50 ms c=1 | p99 ms c=1 | req/s c=32 | p95 / p99 ms c=64 "
            "| vs plain | client CPU | errors |"
        ),
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    ip, p = result["in_process"], result["plain"]
    lines.append(
        f"| in-process predict_proba | - | - | {ip['p50_ms']:.2f} | - | "
        f"({ip['per_core_rps']:.0f}/core) | - | - | - | - |"
    )
    lines.append(_row("plain FastAPI + uvicorn", "direct", "none", p, p))
    batch_lines = ["", "| fixtures per call | calls/s (c=8) | fixtures/s | p50 ms | errors |"]
    batch_lines.append("|---:|---:|---:|---:|---:|")
    rss = ["", f"peak RSS MB: plain {p['peak_rss_mb']}"]
    for setting, paths in result["serve"].items():
        for path in ("front", "proxy", "direct_ingress"):
            for mode, m in paths.get(path, {}).items():
                lines.append(_row(f"Serve, {setting}", PATHS[path], mode, m, p))
        for size, b in paths["batch"].items():
            batch_lines.append(
                f"| {size} | {b['rps']:.0f} | {b['fixtures_per_s']:.0f} | {b['p50_ms']:.1f} | "
                f"{b['non_2xx'] + b['socket_errors']} |"
            )
        rss.append(f"peak RSS MB, Serve {setting}: {paths['peak_rss_mb']}")
    return "\n".join(lines + batch_lines + rss)


def main(argv: list[str] | None = None) -> None:
    import mlflow
    import redis as redis_client
    from mlflow import MlflowClient

    from serve_app.keys import KeyStore

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--calls", type=int, default=2000, help="in-process calls timed")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks/serve_latency.json"))
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args(argv)
    # a handler (not "ignored", as under a background shell) so `serve run` children can be
    # stopped with SIGINT: handlers reset to the default across exec, "ignored" would not
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for tool in ("wrk", "redis-server", "ray", "serve"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH")
    cfg = load_config(PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml").rooted(
        PROJECT_ROOT
    )
    mlflow.set_tracking_uri(cfg.runtime.mlflow.tracking_uri)
    version = str(
        MlflowClient().get_model_version_by_alias(cfg.runtime.mlflow.model_name, "champion").version
    )
    items = fixtures(cfg)
    key_id, key = KeyStore(cfg.runtime.serving.api_keys_file).create("benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        script = lua_script(items, key, folder)
        redis_port = free_port()
        redis = start_redis(redis_port, folder)
        try:
            result: dict[str, Any] = {
                "benchmark": "serve_latency",
                "model_version": version,
                "fixtures": len(items),
                "duration_s": args.duration,
                "cpus": os.cpu_count(),
                "in_process": in_process(cfg, items, version, args.calls),
                "plain": plain(version, script, args.duration),
                "serve": {},
            }
            for name in args.settings:
                print(f"== Serve, {name}", flush=True)
                environment, replicas = SETTINGS[name]
                url = f"redis://127.0.0.1:{redis_port}/0"
                redis_client.Redis.from_url(url).flushall()  # the last setting's cache: hits
                result["serve"][name] = serve(
                    environment(), url, script, args.duration, folder, replicas
                )
        finally:
            redis.terminate()
            KeyStore(cfg.runtime.serving.api_keys_file).revoke(key_id)
    write_json(result, args.out)  # first: a table that fails must not lose the figures
    print(table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
