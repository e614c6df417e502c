"""Serving latency while a Tune search shares the node
(`python -m benchmarks.serve_beside_tune [--duration 15] [--out reports/benchmarks/serve_beside_tune.json]`).

One local Ray (2 CPUs and conf/runtime.yaml's custom resources), `serve run conf/serve.yaml`
on it (replicas take no CPU, only `serve` units) behind the front clients call (HAProxy,
serve_app/front.py), a real Redis, and wrk against the front's /predict with
unique requests (cache misses: features + model on every request), in three phases:

* idle: nothing else runs;
* tune c=2: the project's search (ray_jobs.tune.build_tuner, no MLflow) with two one-CPU
  trials at a time, i.e. every Ray CPU of the node;
* tune c=1: the same with max_concurrent_trials=1, the limit that leaves Serve a core.

p50/p99 at c=1 (one request at a time) and c=8, trials finished per phase, and the resident
memory of the Serve processes (what one more replica costs during a rolling update). The
search runs in a driver process of its own that joins the cluster through RAY_ADDRESS.
Needs the pipeline's outputs (splits, team state, a champion) and redis-server, wrk.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.serve_latency import app_runtime, fixtures, lua_script, write_app_config, wrk
from serve_app.front import direct_ingress_ports, start_front
from serve_app.local import (
    free_port,
    free_port_range,
    serve_environment,
    start_redis,
    start_serve,
    stop_serve,
)
from soccerpredict.config import PROJECT_ROOT, load_config
from soccerpredict.io import write_json

PHASES = {"idle": 0, "tune c=2": 2, "tune c=1": 1}


def tune_driver(concurrency: int, seconds: float) -> None:
    """The search, in this process, on the cluster at RAY_ADDRESS; prints the trial count."""
    import ray

    from benchmarks.tune_overhead import load_splits
    from ray_jobs.tune import build_tuner

    cfg = load_config(PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml")
    cfg = cfg.rooted(PROJECT_ROOT)
    train, validation = load_splits(cfg)
    p = cfg.params.tune.model_copy(update={"num_samples": 10_000, "time_budget_s": seconds})
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        grid = build_tuner(
            train,
            validation,
            cfg.params.forecasters.ratings_only,
            p,
            Path(tmp, "search"),
            max_concurrent_trials=concurrency,
        ).fit()
    print(f"TRIALS {len(grid)}", flush=True)


def serve_rss_mib() -> dict[str, float]:
    import psutil

    out: dict[str, float] = {}
    for proc in psutil.process_iter(["cmdline", "memory_info"]):
        line = " ".join(proc.info["cmdline"] or [])
        for label in (
            "ServeReplica:soccerpredict:Model",
            "ServeReplica:soccerpredict:Ingress",
            "ServeController",
            "ProxyActor",
        ):
            if label in line and proc.info["memory_info"] is not None:
                out[label] = out.get(label, 0) + proc.info["memory_info"].rss / 2**20
    return out


def start_app(
    folder: Path, redis_url: str, gcs: str
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], str]:
    """`serve run` and the front clients call (HAProxy, serve_app/front.py) before it: the
    front's URL is the one measured."""
    port, front = free_port(), free_port()
    config = write_app_config(folder, redis_url, port)
    env = dict(os.environ, RAY_ADDRESS=gcs, REDIS_URL=redis_url, REDIS_CACHE_URL=redis_url)
    proc = start_serve(config, f"http://127.0.0.1:{port}", PROJECT_ROOT, env, folder / "serve.log")
    try:
        ports = direct_ingress_ports(dict(os.environ))
        haproxy = start_front(
            folder / "front.cfg",
            "127.0.0.1",
            front,
            ports,
            port,
            folder / "front.log",
            app_runtime(folder).serving,  # the app's limits: the address's out of the load's way
        )
    except BaseException:
        stop_serve(proc)
        raise
    time.sleep(6)  # the Model publishes its version
    return proc, haproxy, f"http://127.0.0.1:{front}"


def phase(
    url: str, script: Path, duration: int, concurrency: int, gcs: str, offset: int
) -> dict[str, Any]:
    search = None
    if concurrency:
        search = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.serve_beside_tune",
                "--tune-driver",
                str(concurrency),
                str(2 * duration + 30),
            ],
            cwd=PROJECT_ROOT,
            env=dict(os.environ, RAY_ADDRESS=gcs),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(15)  # the driver loads the splits and its first trials are running
    out = {
        "c1": wrk(url, script, 1, duration, "miss", offset),
        "c8": wrk(url, script, 8, duration, "miss", offset + 10_000),
        "loadavg_1m": os.getloadavg()[0],
    }
    if search is not None:
        search.send_signal(signal.SIGINT)  # Tune stops its trials and returns
        stdout, _ = search.communicate(timeout=120)
        out["trials"] = next(
            (int(x.split()[1]) for x in stdout.splitlines() if x.startswith("TRIALS")), None
        )
    return out


def table(result: dict[str, Any]) -> str:
    header = (
        "| phase | p50 ms c=1 | p99 ms c=1 | p50 ms c=8 | p99 ms c=8 | req/s c=8 | errors "
        "| trials |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["phases"].items():
        errors = sum(r[c]["non_2xx"] + r[c]["socket_errors"] for c in ("c1", "c8"))
        lines.append(
            f"| {name} | {r['c1']['p50_ms']:.1f} | {r['c1']['p99_ms']:.1f} | "
            f"{r['c8']['p50_ms']:.1f} | {r['c8']['p99_ms']:.1f} | {r['c8']['rps']:.0f} "
            f"| {errors} | {r.get('trials', '-')} |"
        )
    return "\n".join(lines)


def run(duration: int, out: Path) -> dict[str, Any]:
    import ray

    from serve_app.keys import KeyStore

    cfg = load_config(
        PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml", env={}
    ).rooted(PROJECT_ROOT)
    keys = KeyStore(cfg.runtime.serving.api_keys_file)
    key_id, key = keys.create("benchmark")
    # Serve's switches (conf/serve.env): the cluster's processes read them from this environment
    os.environ.update(serve_environment())
    # a direct-ingress range of the run's own: another app's replica must not serve its front
    ports = free_port_range(len(direct_ingress_ports(dict(os.environ))))
    os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] = str(ports.start)
    os.environ["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"] = str(ports.stop)
    ray.init(
        address="local", num_cpus=2, resources=cfg.runtime.ray.resources, include_dashboard=False
    )
    gcs = ray.get_runtime_context().gcs_address
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis_port = free_port()
        redis = start_redis(redis_port, folder)
        app = front = None
        try:
            script = lua_script(fixtures(cfg), key, folder)
            app, front, url = start_app(folder, f"redis://127.0.0.1:{redis_port}/0", gcs)
            wrk(url, script, 4, 3, "hit")  # warm-up
            result: dict[str, Any] = {
                "benchmark": "serve_beside_tune",
                "duration_s": duration,
                "cpus": os.cpu_count(),
                "ray": {"num_cpus": 2, "resources": cfg.runtime.ray.resources},
                "serve_rss_mib": serve_rss_mib(),
                "phases": {},
            }
            for i, (name, concurrency) in enumerate(PHASES.items()):
                print(f"== {name}", flush=True)
                result["phases"][name] = phase(url, script, duration, concurrency, gcs, i * 100_000)
        finally:
            if front is not None:
                front.terminate()
                front.wait(timeout=10)
            if app is not None:
                stop_serve(app)
            redis.terminate()
            keys.revoke(key_id)
            ray.shutdown()
    write_json(result, out)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument(
        "--out", type=Path, default=Path("reports/benchmarks/serve_beside_tune.json")
    )
    parser.add_argument(
        "--tune-driver", nargs=2, metavar=("CONCURRENCY", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.tune_driver:
        tune_driver(int(args.tune_driver[0]), float(args.tune_driver[1]))
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    result = run(args.duration, args.out)
    print(table(result))
    print(f"\nServe RSS (MiB): {result['serve_rss_mib']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
