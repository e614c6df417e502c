"""Serving latency and throughput, one model and one request set, in one run
(`python -m benchmarks.serve_latency [--duration 10] [--out reports/benchmarks/serve_latency.json]`).

* in-process: feature assembly + `predict_proba` for one fixture, as a handler would do it;
* plain: the same code behind FastAPI + uvicorn (benchmarks/plain_app.py), one process;
* Serve: `serve run conf/serve.yaml` on a fresh local Ray, cache miss and cache hit, through the
  HTTP proxy and (when Serve opens one) the Ingress replica's direct-ingress port, once per
  Serve setting tried (`SETTINGS`).

Load comes from Debian's `wrk` with one thread (so it leaves the server most of a core), driven
by a Lua script that makes every miss request unique (the fixture's odds are nudged per
request) and reports p50/p95; its CPU time is read from the kernel (`RUSAGE_CHILDREN`) and
reported as a share of the machine. Needs the pipeline's outputs (team state, champion) and
`redis-server`, `wrk` on PATH. Writes JSON atomically and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from serve_app.local import free_port, start_redis, start_serve, stop_serve, wait_for_port
from soccerpredict.config import PROJECT_ROOT, Config, load_config
from soccerpredict.io import write_json

# What was tried on the Serve side: environment of the Ray cluster's processes.
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "throughput_optimized": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
}
LUA = r"""
local fixtures = {FIXTURES}
local counter = 0
local mode, offset = "miss", 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{KEY}"
function init(args)
  mode = args[1] or "miss"
  offset = tonumber(args[2] or "0")
end
function request()
  counter = counter + 1
  local i = (mode == "hit") and 1 or (counter % #fixtures) + 1
  -- a miss must be a never-seen vector: the draw price moves by 1e-6 per pass over the fixtures
  local nudge = (mode == "hit") and 0 or (offset + math.floor(counter / #fixtures)) * 1e-6
  local f = fixtures[i]
  local body = string.format(
    '{"league":"%s","home_team":"%s","away_team":"%s","kickoff":"%s",' ..
    '"odds":{"home":%.6f,"draw":%.6f,"away":%.6f}}',
    f[1], f[2], f[3], f[4], f[5], f[6] + nudge, f[7])
  return wrk.format(nil, "/predict", nil, body)
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
    url: str, script: Path, connections: int, duration_s: int, mode: str, offset: int = 0
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


def measure(url: str, script: Path, duration_s: int, modes: tuple[str, ...]) -> dict[str, Any]:
    """c=1 latency and c=32 throughput for each mode, each miss run on never-seen requests."""
    out: dict[str, Any] = {}
    wrk(url, script, 4, 3, "hit")  # warm-up: connections, code paths, the one hit body cached
    for offset, mode in enumerate(modes):
        out[mode] = {
            "c1": wrk(url, script, 1, duration_s, mode, offset * 20_000),
            "c32": wrk(url, script, 32, duration_s, mode, offset * 20_000 + 10_000),
        }
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
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.plain_app", "--port", str(port), "--version", version],
        cwd=PROJECT_ROOT,
    )
    try:
        wait_for_port(port, 120)
        return measure(f"http://127.0.0.1:{port}", script, duration_s, ("miss",))["miss"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def direct_ingress_port() -> int | None:
    """The Ingress replica's own HTTP port, when Serve's direct ingress is on."""
    for port in range(30000, 30050):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.3).status_code == 200:
                return port
        except httpx.HTTPError:
            continue
    return None


def write_app_config(folder: Path, redis_url: str, http_port: int) -> Path:
    """conf/serve.yaml and conf/runtime.yaml in `folder`, with this Redis and HTTP port; the
    rate limit is still checked (its Redis round trip is part of the cost), never reached."""
    runtime = yaml.safe_load((PROJECT_ROOT / "conf/runtime.yaml").read_text())
    runtime["serving"].update(
        redis_url=redis_url, rate_limit_per_minute=10**9, address_rate_per_minute=10**9
    )
    (folder / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    config = yaml.safe_load((PROJECT_ROOT / "conf/serve.yaml").read_text())
    config["http_options"]["port"] = http_port
    config["applications"][0]["args"]["conf"] = str(folder / "runtime.yaml")
    (folder / "serve.yaml").write_text(yaml.safe_dump(config))
    return folder / "serve.yaml"


def serve(
    setting: dict[str, str], redis_url: str, script: Path, duration_s: int, folder: Path
) -> dict[str, Any]:
    env = dict(
        os.environ,
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S="2",
        REDIS_URL=redis_url,
        REDIS_CACHE_URL=redis_url,  # one instance for both roles here: the latency, not the roles
        **setting,
    )
    for name in {"RAY_ADDRESS", *(v for s in SETTINGS.values() for v in s)} - set(setting):
        env.pop(name, None)  # a fresh cluster with exactly this setting
    ray_port, http_port = free_port(), free_port()
    write_app_config(folder, redis_url, http_port)
    resources = json.dumps(
        load_config(
            PROJECT_ROOT / "params.yaml", folder / "runtime.yaml", env={}
        ).runtime.ray.resources
    )  # `serve` for replicas
    subprocess.run(
        [
            "ray",
            "start",
            "--head",
            "--num-cpus=2",
            f"--port={ray_port}",
            f"--resources={resources}",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    env["RAY_ADDRESS"] = f"127.0.0.1:{ray_port}"
    url = f"http://127.0.0.1:{http_port}"
    try:
        proc = start_serve(folder / "serve.yaml", url, PROJECT_ROOT, env, folder / "serve.log")
    except BaseException:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, check=False)
        raise
    try:
        time.sleep(6)  # let the Model publish its version, so hits can happen
        out = {"proxy": measure(url, script, duration_s, ("miss", "hit"))}
        direct = direct_ingress_port()
        if direct is not None:
            out["direct_ingress"] = measure(
                f"http://127.0.0.1:{direct}", script, duration_s, ("miss", "hit")
            )
        return out
    finally:
        stop_serve(proc)
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, check=False)


def _errors(modes: dict[str, Any]) -> int:
    return sum(r["non_2xx"] + r["socket_errors"] for r in modes.values())


def table(result: dict[str, Any]) -> str:
    lines = [
        (
            "| server | path | cache | p50 ms (c=1) | p95 ms (c=1) | req/s (c=32) | client CPU "
            "| errors |"
        ),
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    ip = result["in_process"]
    lines.append(
        f"| in-process predict_proba | - | - | {ip['p50_ms']:.2f} | {ip['p95_ms']:.2f} | "
        f"({ip['per_core_rps']:.0f}/core) | - | - |"
    )
    p = result["plain"]
    lines.append(
        f"| plain FastAPI + uvicorn | direct | none | {p['c1']['p50_ms']:.2f} | "
        f"{p['c1']['p95_ms']:.2f} | {p['c32']['rps']:.0f} | "
        f"{p['c32']['client_cpu_share']:.0%} | {_errors(p)} |"
    )
    for setting, paths in result["serve"].items():
        for path, modes in paths.items():
            for mode, m in modes.items():
                lines.append(
                    f"| Serve, {setting} | {path} | {mode} | {m['c1']['p50_ms']:.2f} | "
                    f"{m['c1']['p95_ms']:.2f} | {m['c32']['rps']:.0f} | "
                    f"{m['c32']['client_cpu_share']:.0%} | {_errors(m)} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import mlflow
    from mlflow import MlflowClient

    from serve_app.keys import KeyStore

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
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
                "in_process": in_process(cfg, items, version),
                "plain": plain(version, script, args.duration),
                "serve": {},
            }
            for name in args.settings:
                print(f"== Serve, {name}", flush=True)
                result["serve"][name] = serve(
                    SETTINGS[name],
                    f"redis://127.0.0.1:{redis_port}/0",
                    script,
                    args.duration,
                    folder,
                )
        finally:
            redis.terminate()
            KeyStore(cfg.runtime.serving.api_keys_file).revoke(key_id)
    write_json(result, args.out)
    print(table(result))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
