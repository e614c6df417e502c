"""Reliability probes of issue 16, bounded and on loopback only (a partial suite, see the README).

    python -m benchmarks.reliability                       # every part; reports/reliability.json
    python -m benchmarks.reliability --parts serve retrain # some parts; the others' figures kept
    python -m benchmarks.reliability --quick --out /tmp/r.json   # the smoke run (uvicorn part)

The uvicorn part: the app's real FastAPI over a real `Ingress`, served by uvicorn in a child
process on 127.0.0.1, with both Redis instances (state: AOF, noeviction; cache: LRU) as
`scripts/serve.sh` starts them, a published team state and a small XGBoost predictor, and the
front (serve_app/front.py, HAProxy with the app's limits) before it: every probe calls the
front, the address users call. Probes: a
keyed client alone (idle), then beside a flood of bad-key requests and beside a flood of
`/metrics` scrapes, both from 127.0.0.2 (the keyed client is 127.0.0.1); a 33 MB body (413 and
the server's RSS); Redis state killed and restarted (accepted jobs still readable, healthy again
after how long); parallel key writes in one process and across processes.

The serve part: the app as the main command starts it (benchmarks/serve_latency.py
`running_app`: a Ray head of its own with conf/serve.env, `serve run` of conf/serve.yaml, the
front before it; both Redis instances; the pipeline's team state and champion), every request
through the front. Probes: `POST /predict` cache misses at c=64 for `LOAD_S` (wrk with the
latency benchmark's unique-miss script, about 20,000 requests) and whether the app declared a
Redis outage meanwhile; an Ingress replica, then a Model replica, SIGKILLed 3 s into a c=16 load
of never-seen fixtures (httpx, each request's status and times); every listening socket of the
app's processes (the Ray head's, `serve run`, the front, Redis) and its owner; every Model
replica SIGSTOPped for 25 s while 2,000 async posts come from 127.0.0.2 (c=32) beside the keyed
client from 127.0.0.1, then SIGCONT and every accepted job read until it ends (Ingress RSS,
refusals, each job's end, results dropped, the keyed p50/p99 against idle): once through a
front with the project's address limits, once with them lifted (refusals past `async_backlog`);
schemathesis over the app's own OpenAPI document through the front, with the key, 100 examples
per operation and every phase (examples, coverage, fuzzing, stateful links), its positive data
brought inside the app's rules by benchmarks/schemathesis_hooks.py.

The retrain part: the app as above, serving a copy of the checkout (`--root`, default this one;
never written to), a c=4 load of never-seen `POST /predict` throughout; `dvc repro -f -s features`
runs in the copy on the app's Ray and gets Ctrl-C (SIGINT to its process group) 0.5 s into the
stage's Ray work; then the Ingress replica is SIGKILLed and its replacement (reading what the
stage left) loaded. The answers by phase, and which of the stage's outputs are left.

"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.pool
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.ray_head import RayHead
from benchmarks.serve_latency import (
    RunningApp,
    fixtures,
    ingress_listeners,
    lua_script,
    running_app,
    wrk,
)
from serve_app.front import serving_settings, start_front
from serve_app.local import (
    free_port,
    serve_environment,
    start_redis,
    wait_for_port,
    wait_until,
)
from soccerpredict.io import write_json

LOAD_S = 90  # wrk's duration for the c=64 load: about 20,000 misses at the front's ~220 req/s
FIXTURE = {"league": "L1", "home_team": "A", "away_team": "B", "kickoff": "2022-05-07"}
NOT_RUN = {
    "load_20k_c64": "the serve part (`--parts serve`)",
    "replica_kills": "the serve part (`--parts serve`)",
    "async_flood_frozen_model": "the serve part (`--parts serve`)",
    "schemathesis": "the serve part (`--parts serve`)",
    "interrupted_retrain": "the retrain part (`--parts retrain`)",
    "listening_sockets": "the serve part (`--parts serve`)",
}


# ---------------------------------------------------------------------------- the app process
def _serving_conf(folder: Path, state_port: int, cache_port: int) -> dict[str, Any]:
    project = serving_settings()  # conf/runtime.yaml's
    return {
        "redis_url": f"redis://127.0.0.1:{state_port}/0",
        "cache_redis_url": f"redis://127.0.0.1:{cache_port}/0",
        "api_keys_file": str(folder / "keys.json"),
        "rate_limit_per_minute": 10**6,  # the key's limit is not what these probes measure
        # the project's address limit, which the flood's address meets, and the header the
        # front names each client in, trusted from the front only
        "address_rate_per_minute": project.address_rate_per_minute,
        "metrics_rate_per_minute": project.metrics_rate_per_minute,
        "forwarded_header": project.forwarded_header,
        "trusted_proxies": project.trusted_proxies,
    }


def _app_process(folder: str, port: int, serving: dict[str, Any]) -> None:
    """Build the app as tests/test_ingress.py does and serve it with uvicorn on 127.0.0.1."""
    import uvicorn

    from serve_app.api import build_api
    from tests.test_ingress import Registry, deploy, ingress_settings, small_predictors

    settings = ingress_settings(Path(folder), serving)

    async def main() -> None:
        app = await deploy(settings, Registry(small_predictors(), {"champion": "1"}))
        # the model renews its published version as a Model replica does (ServedModel.start):
        # without it the version expires after 30 s and every request misses the cache
        app.model.ensure_watching()
        api = build_api(app.ingress, lambda: "ray_soccerpredict_up 1\n")
        config = uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning")
        await uvicorn.Server(config).serve()

    asyncio.run(main())


# ---------------------------------------------------------------------------- measuring
def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
    }


async def _keyed(url: str, key: str, duration_s: float, pause_s: float = 0.1) -> list[float]:
    """One keyed client from 127.0.0.1, one request at a time with `pause_s` between (a client
    within its address's allowance), for `duration_s`."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
    took: list[float] = []
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as http:
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            started = time.perf_counter()
            answer = await http.post("/predict", json=FIXTURE, headers={"X-API-Key": key})
            answer.raise_for_status()
            took.append(time.perf_counter() - started)
            await asyncio.sleep(pause_s)
    return took


# a flood comes from a process of its own, as an attacker's would: in the keyed client's event
# loop its workers would delay the keyed requests themselves. It starts this long after the
# call (a spawned interpreter's imports), at the same monotonic instant (one clock per machine)
# as the keyed client
SPAWN_S = 10.0
# ... at the lowest CPU priority: it stands in for clients on other machines, whose own CPU is
# not the server's. On this 2-core machine a Python flood at full priority takes a core from
# the app and the keyed client (the app, HAProxy, the keyed client and the flood on 2 cores),
# which no remote attacker can;
# at nice 19 it still gets every cycle they leave idle (its rate is in the report)
FLOOD_NICE = 19


def _run_async(make: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Any:
    os.nice(FLOOD_NICE)
    return asyncio.run(make(*args))


@contextlib.contextmanager
def _in_another_process(
    make: Callable[..., Awaitable[Any]], *args: Any
) -> Iterator[multiprocessing.pool.AsyncResult[Any]]:
    """`make(*args)` run in a fresh (spawned) process; its result in the yielded AsyncResult.
    The process is stopped on leaving the block, done or not."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        yield pool.apply_async(_run_async, (make, args))
    finally:
        pool.terminate()
        pool.join()


async def _until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))


def bad_key(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return http.post("/predict", json=FIXTURE, headers={"X-API-Key": "sp_bad_key"})


def scrape(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return http.get("/metrics")


async def _flood(
    url: str,
    request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    c: int,
    s: float,
    at: float,
) -> tuple[dict[str, int], float, float]:
    """`c` concurrent clients from 127.0.0.2 for `s` seconds from `at` (monotonic); the
    statuses they got, and when (monotonic) they began and ended."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    limits = httpx.Limits(max_connections=c)
    codes: dict[str, int] = {}
    async with httpx.AsyncClient(
        base_url=url, transport=transport, timeout=30, limits=limits
    ) as http:
        await _until(at)
        began = time.monotonic()
        end = began + s

        async def worker() -> None:
            while time.monotonic() < end:
                try:
                    status = str((await request(http)).status_code)
                except httpx.HTTPError as err:
                    status = type(err).__name__
                codes[status] = codes.get(status, 0) + 1

        await asyncio.gather(*[worker() for _ in range(c)])
    return codes, began, time.monotonic()


def _beside(url: str, key: str, flood: Any, c: int, s: float) -> dict[str, Any]:
    """The keyed client for `s` seconds while `flood` comes from another process."""
    at = time.monotonic() + SPAWN_S
    with _in_another_process(_flood, url, flood, c, s, at) as flooding:
        time.sleep(max(0.0, at - time.monotonic()))
        took = asyncio.run(_keyed(url, key, s))
        statuses, began, ended = flooding.get(timeout=s + 120)
    return {
        "flood_statuses": statuses,
        "flood_req_per_s": round(sum(statuses.values()) / (ended - began)),
        "flood_began_late_s": round(began - at, 2),  # after the keyed client began
        "keyed": _percentiles(took),
    }


def _rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


async def _big_body(url: str, key: str, pid: int, megabytes: int) -> dict[str, Any]:
    chunk = b"x" * 2**20

    async def body() -> Any:
        for _ in range(megabytes):
            yield chunk

    before = _rss_mb(pid)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        try:
            answer = await http.post(
                "/predict/batch",
                content=body(),
                headers={"X-API-Key": key, "content-type": "application/json"},
            )
            status: int | str = answer.status_code
        except httpx.HTTPError as err:  # the server may close before the upload ends
            status = type(err).__name__
    return {
        "megabytes": megabytes,
        "status": status,
        "seconds": round(time.perf_counter() - started, 2),
        "rss_delta_mb": round(_rss_mb(pid) - before, 1),
    }


# ---------------------------------------------------------------------------- Redis
def _redis_kill(url: str, key: str, state: subprocess.Popen[bytes], port: int, folder: Path) -> Any:
    with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": key}) as http:
        jobs = [http.post("/predict/async", json=FIXTURE).json()["job_id"] for _ in range(20)]
        time.sleep(1.2)  # appendfsync everysec
        state.kill()
        state.wait()
        during = [http.post("/predict", json=FIXTURE).status_code for _ in range(20)]
        time.sleep(2.0)
        state = start_redis(port, folder / "redis-state", "state")
        back = time.monotonic()
        wait_until(lambda: http.get("/healthz").json()["redis"] is True, 30)
        healthy_after = time.monotonic() - back
        readable = [http.get(f"/predict/async/{j}").status_code for j in jobs]
    return state, {
        "sync_failed_while_down": sum(code != 200 for code in during),
        "healthy_after_restart_s": round(healthy_after, 2),
        "jobs_accepted": len(jobs),
        "jobs_readable_after_restart": sum(code == 200 for code in readable),
    }


# ---------------------------------------------------------------------------- key writes
WRITER = (
    "import sys, pathlib\nfrom serve_app.keys import KeyStore\n"
    "s = KeyStore(pathlib.Path(sys.argv[1]))\n"
    "for i in range(int(sys.argv[2])): s.create(f'p{i}')\n"
)


def _key_writes(folder: Path, n: int) -> dict[str, int]:
    from serve_app.keys import KeyStore

    threads = folder / "threads.json"
    stores = [KeyStore(threads), KeyStore(threads)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: stores[i % 2].create(f"k{i}"), range(2 * n)))
    procs_path = folder / "procs.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(procs_path), str(n)]) for _ in range(3)
    ]
    for proc in procs:
        proc.wait(timeout=300)
    return {
        "in_process_lost": 2 * n - len(KeyStore(threads).records()),
        "across_processes_lost": 3 * n - len(KeyStore(procs_path).records()),
    }


# ---------------------------------------------------------------------------- `serve run`
# The app as the main command starts it (benchmarks/serve_latency.py `running_app`: a Ray head of
# its own, `serve run` of conf/serve.yaml, the front), loaded through the front.
SLOW_S = 1.0  # a request slower than this, or not a 200, is a disturbed one (recovery)


def _replica_pids(head: RayHead, deployment: str) -> set[int]:
    """The processes of this cluster titled `ray::ServeReplica:soccerpredict:<deployment>`."""
    import psutil

    title = f"ServeReplica:soccerpredict:{deployment}"
    out = set()
    for proc in head.processes():
        try:
            if title in " ".join(proc.cmdline()):
                out.add(proc.pid)
        except psutil.Error:
            continue
    return out


def _redis_logged(head: RayHead) -> dict[str, int]:
    """What the replicas logged about Redis (serve_app/redis_state.py): failed calls, and the
    outages declared (a breaker opened: "skipping it for ... s")."""
    failed = opened = 0
    for path in (Path(head.temp_dir) / "session_latest/logs/serve").glob("replica_*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if "redis failed during" in line:
                failed += 1
                opened += "skipping it for" in line
    return {"redis_failures_logged": failed, "outages_declared": opened}


def _redis_error_metric(url: str) -> float | None:
    """The sum of `soccerpredict_redis_errors` in `GET /metrics`; None when the app's metrics
    are not in the export at all (a counter never incremented has no series: 0)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=60).text
    except httpx.HTTPError:
        return None
    samples = [line for line in text.splitlines() if line.startswith("ray_soccerpredict_")]
    if not samples:
        return None
    errors = [line for line in samples if "soccerpredict_redis_errors" in line.split("{")[0]]
    return sum(float(line.rsplit(None, 1)[1]) for line in errors)


def _healthz_redis_false(url: str, stop: threading.Event, seen: list[bool | None]) -> None:
    """`/healthz`'s `redis` once a second until `stop`: False is an outage the app reports,
    None a poll that got no answer."""
    while not stop.wait(1.0):
        try:
            seen.append(bool(httpx.get(f"{url}/healthz", timeout=10).json()["redis"]))
        except (httpx.HTTPError, ValueError, KeyError):
            seen.append(None)


def _load_20k(app: RunningApp, script: Path, duration_s: int, metrics_wait_s: float) -> Any:
    """POST /predict cache misses through the front, wrk at c=64 for `duration_s` (≈ 20k
    requests at the front's miss rate), and whether the app declared a Redis outage meanwhile:
    breaker openings in the replica logs, `soccerpredict_redis_errors` before and after (Ray
    exports metrics every few seconds: read again `metrics_wait_s` later), `/healthz` polled."""
    before = _redis_error_metric(app.front)
    stop, seen = threading.Event(), list[bool | None]()
    poller = threading.Thread(target=_healthz_redis_false, args=(app.front, stop, seen))
    poller.start()
    try:
        run = wrk(app.front, script, 64, duration_s, "miss")
    finally:
        stop.set()
        poller.join(30)
    time.sleep(metrics_wait_s)
    after = _redis_error_metric(app.front)
    delta = None if before is None or after is None else after - before
    return (
        run
        | _redis_logged(app.head)
        | {
            "redis_errors_metric_delta": delta,
            "healthz_redis_false": sum(ok is False for ok in seen),
            "healthz_unanswered": sum(ok is None for ok in seen),
            "healthz_polls": len(seen),
        }
    )


def _body(item: list[Any], nudge: float) -> dict[str, Any]:
    league, home, away, kickoff, h, d, a = item
    odds = {"home": h, "draw": round(d + nudge, 6), "away": a}
    return {"league": league, "home_team": home, "away_team": away, "kickoff": kickoff} | {
        "odds": odds
    }


def _never_seen(items: list[list[Any]], offset: int, n: int) -> dict[str, Any]:
    """The `n`-th request of a client starting at `offset`: the fixtures in turn, each round
    with its draw price nudged again, so none is a cache hit (offsets keep clients apart)."""
    return _body(items[n % len(items)], (offset + n // len(items)) * 1e-6)


def hostile_requests(body: dict[str, Any]) -> list[tuple[str, str, str, bytes, dict[str, str]]]:
    """The issue's hostile inputs around one valid `POST /predict` body: (name, method, path,
    content, headers). Each must be a 4xx whose body says why, never a 5xx."""
    as_json = {"content-type": "application/json"}

    def post(name: str, content: bytes | str, headers: dict[str, str] | None = None) -> Any:
        raw = content.encode() if isinstance(content, str) else content
        return (name, "POST", "/predict", raw, headers or as_json)

    def changed(name: str, **fields: Any) -> Any:
        return post(name, json.dumps(body | fields))

    def priced(name: str, home: str) -> Any:  # a literal JSON number (or not) as the home price
        prices = body.get("odds") or {"home": 2.0, "draw": 3.4, "away": 3.8}
        odds = json.dumps(prices | {"home": "HOME"}).replace('"HOME"', home)
        return post(name, json.dumps(body | {"odds": "ODDS"}).replace('"ODDS"', odds))

    nested = "[" * 100_000 + "]" * 100_000
    return [
        priced("NaN price", "NaN"),
        priced("Infinity price", "Infinity"),
        priced("-Infinity price", "-Infinity"),
        priced("1e309 price (overflows to inf)", "1e309"),
        priced("a 400-digit integer price", "9" * 400),
        priced("a price as text", '"two"'),
        changed("kickoff in year 1", kickoff="0001-01-01"),
        changed("kickoff in year 9999", kickoff="9999-12-31"),
        changed("a 10,000-character team", home_team="A" * 10_000),
        changed("a unicode team", home_team="Ювентус ⚽"),
        changed("a NUL in the team", home_team="Juven\x00tus"),
        changed("the same team twice", away_team=body["home_team"]),
        changed("an unknown field", colour="red"),
        changed("a league that does not exist", league="../../etc"),
        post("an array body", json.dumps([body])),
        post("a JSON null body", "null"),
        post("an empty body", b""),
        post("text/plain", json.dumps(body), {"content-type": "text/plain"}),
        post("a form body", "league=E0", {"content-type": "application/x-www-form-urlencoded"}),
        post("invalid UTF-8", b'{"league": "\xff\xfe"}'),
        post("deep nesting", f'{{"league": {nested}}}'),
        post("not JSON", "{not json"),
        ("a traversal in a job id", "GET", "/predict/async/..%2F..%2Fetc%2Fpasswd", b"", {}),
        ("a traversal in a match id", "GET", "/predict/..%2F..%2Fparams.yaml", b"", {}),
        ("a 10,000-character job id", "GET", "/predict/async/" + "a" * 10_000, b"", {}),
        (
            "101 fixtures in one batch",
            "POST",
            "/predict/batch",
            json.dumps({"fixtures": [body] * 101}).encode(),
            as_json,
        ),
        ("an empty batch", "POST", "/predict/batch", b'{"fixtures": []}', as_json),
        ("a method the route has not", "PUT", "/predict", json.dumps(body).encode(), as_json),
    ]


def bad_input_answers(url: str, key: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Each hostile request of `hostile_requests` through `url` with the key: its status and
    the reason the answer gave (the problem body's `detail`)."""
    out = []
    with httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": key}) as http:
        for name, method, path, content, headers in hostile_requests(body):
            answer = http.request(method, path, content=content, headers=headers)
            try:
                detail = str(answer.json().get("detail") or "")
            except (ValueError, AttributeError):
                detail = ""
            out.append({"input": name, "status": answer.status_code, "reason": detail[:200]})
    return out


def bad_input_target(answers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    bad = [a for a in answers if not (400 <= a["status"] < 500 and a["reason"])]
    statuses = dict(Counter(str(a["status"]) for a in answers))
    return {
        "serve run: every bad input a 4xx with a reason": {
            "figure": f"{len(answers) - len(bad)} of {len(answers)} ({statuses})"
            + (f"; not: {[(a['input'], a['status']) for a in bad]}" if bad else ""),
            "met": bool(answers) and not bad,
        }
    }


async def _under_kill(
    url: str,
    key: str,
    items: list[list[Any]],
    c: int,
    duration_s: float,
    kill_at_s: float,
    kill: Callable[[], None],
    offset: int,
    route: str,
) -> tuple[list[tuple[float, float, str, bool]], float]:
    """`c` clients posting never-seen fixtures to `route` (`/predict`, or `/predict/batch` with
    one fixture a call) for `duration_s`; `kill()` at `kill_at_s`. Each request's (start, end,
    status or error name, Retry-After present), and when the kill was."""
    records: list[tuple[float, float, str, bool]] = []
    counter = iter(range(10**9))
    killed_at = float("inf")
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        started = time.monotonic()
        end = started + duration_s

        async def worker() -> None:
            while time.monotonic() < end:
                n = next(counter)
                body = _never_seen(items, offset, n)
                if route == "/predict/batch":
                    body = {"fixtures": [body]}
                t0 = time.monotonic()
                try:
                    answer = await http.post(route, json=body, headers=headers)
                    status, retry = str(answer.status_code), "retry-after" in answer.headers
                except httpx.HTTPError as err:
                    status, retry = type(err).__name__, False
                records.append((t0, time.monotonic(), status, retry))

        async def killer() -> None:
            nonlocal killed_at
            await asyncio.sleep(kill_at_s)
            killed_at = time.monotonic()
            kill()

        await asyncio.gather(killer(), *[worker() for _ in range(c)])
    return records, killed_at


def kill_summary(records: list[tuple[float, float, str, bool]], killed_at: float) -> dict[str, Any]:
    """What the clients saw around a kill: answers by status; failures (not a 200), the 500s,
    and those that are not a retryable 503 with Retry-After; the longest request; recovery, the
    end of the last disturbed request (not a 200, or slower than `SLOW_S`) after the kill."""
    statuses: dict[str, int] = {}
    for _, _, status, _ in records:
        statuses[status] = statuses.get(status, 0) + 1
    failed = [r for r in records if r[2] != "200"]
    disturbed = [
        r for r in records if r[1] >= killed_at and (r[2] != "200" or r[1] - r[0] > SLOW_S)
    ]
    return {
        "requests": len(records),
        "statuses": statuses,
        "failed": len(failed),
        "failed_share": len(failed) / max(len(records), 1),
        "answers_500": statuses.get("500", 0),
        "not_503_with_retry_after": sum(not (r[2] == "503" and r[3]) for r in failed),
        "longest_s": round(max((r[1] - r[0] for r in records), default=0.0), 3),
        "recovery_s": round(max((r[1] for r in disturbed), default=killed_at) - killed_at, 3),
    }


def _kill_replica(
    app: RunningApp,
    key: str,
    items: list[list[Any]],
    deployment: str,
    duration_s: float,
    offset: int,
) -> dict[str, Any]:
    """SIGKILL one replica of `deployment` 3 s into a c=16 load through the front: `POST
    /predict` for the Ingress (its own local model answers it), `POST /predict/batch` of one
    fixture for the Model (the route that calls the Model deployment)."""
    route = "/predict" if deployment == "Ingress" else "/predict/batch"
    before = _replica_pids(app.head, deployment)
    if not before:
        return {"error": f"no {deployment} replica process found"}
    # the Ingress replica the front fills first (the lowest port: `balance first`) carries
    # the load; a Model replica: either
    listeners = ingress_listeners(app.head, app.ports) if deployment == "Ingress" else {}
    victim = listeners[min(listeners)] if listeners else min(before)
    replaced: list[float] = []

    def kill() -> None:
        os.kill(victim, signal.SIGKILL)

        def watch() -> None:  # a new replica process of the deployment: when it appeared
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                if _replica_pids(app.head, deployment) - before:
                    replaced.append(time.monotonic() - t0)
                    return
                time.sleep(0.25)

        threading.Thread(target=watch, daemon=True).start()

    records, killed_at = asyncio.run(
        _under_kill(app.front, key, items, 16, duration_s, 3.0, kill, offset, route)
    )
    time.sleep(0.5)
    return kill_summary(records, killed_at) | {
        "route": route,
        "replicas_before": len(before),
        "replacement_process_s": round(replaced[0], 2) if replaced else None,
    }


# ---------------------------------------------------------------------------- async flood
POLL_S = 0.5  # how often the accepted jobs are read after the Model is back


async def _keyed_misses(
    url: str, key: str, items: list[list[Any]], duration_s: float, offset: int
) -> tuple[list[float], dict[str, int]]:
    """One keyed client from 127.0.0.1 through the front, never-seen fixtures on `POST
    /predict` (the Ingress's local model answers), one at a time 0.1 s apart: the times of the
    200s, and the other answers by status."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
    took: list[float] = []
    other: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as http:
        end, n = time.monotonic() + duration_s, 0
        while time.monotonic() < end:
            body = _never_seen(items, offset, n)
            n += 1
            started = time.perf_counter()
            try:
                answer = await http.post("/predict", json=body, headers={"X-API-Key": key})
                status = str(answer.status_code)
            except httpx.HTTPError as err:
                status = type(err).__name__
            if status == "200":
                took.append(time.perf_counter() - started)
            else:
                other[status] = other.get(status, 0) + 1
            await asyncio.sleep(0.1)
    return took, other


async def _async_posts(
    url: str,
    key: str,
    items: list[list[Any]],
    n: int,
    c: int,
    at: float,
    until: float,
    offset: int,
) -> list[tuple[str, bool, str | None]]:
    """At most `n` `POST /predict/async` of never-seen fixtures from 127.0.0.2, `c` at a time,
    from `at` until `until` (monotonic): each answer's status, Retry-After present, job id."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    posts: list[tuple[str, bool, str | None]] = []
    counter = iter(range(n))
    async with httpx.AsyncClient(
        base_url=url, transport=transport, timeout=30, limits=limits
    ) as http:
        await _until(at)

        async def worker() -> None:
            for i in counter:
                if time.monotonic() >= until:
                    return
                body = _never_seen(items, offset, i)
                try:
                    answer = await http.post(
                        "/predict/async", json=body, headers={"X-API-Key": key}
                    )
                    status = str(answer.status_code)
                    job = answer.json().get("job_id") if status == "202" else None
                    posts.append((status, "retry-after" in answer.headers, job))
                except (httpx.HTTPError, ValueError) as err:
                    posts.append((type(err).__name__, False, None))

        await asyncio.gather(*[worker() for _ in range(c)])
    return posts


async def _read_jobs(
    url: str, key: str, jobs: list[str], resumed_at: float, bound_s: float
) -> dict[str, tuple[str, str | None, float | None]]:
    """Each job read every `POLL_S` until it is no longer pending or `bound_s` after
    `resumed_at`: (its last status, its reason, when it was first seen ended, relative to
    `resumed_at`). A status that is not a JobStatus is kept as the HTTP status or error name."""
    seen: dict[str, tuple[str, str | None, float | None]] = {
        j: ("pending", None, None) for j in jobs
    }
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=limits, headers={"X-API-Key": key}
    ) as http:
        gate = asyncio.Semaphore(16)

        async def read(job: str) -> None:
            async with gate:
                try:
                    answer = await http.get(f"/predict/async/{job}")
                except httpx.HTTPError as err:
                    seen[job] = (type(err).__name__, None, None)
                    return
            if answer.status_code != 200:
                seen[job] = (str(answer.status_code), None, None)
                return
            state = answer.json()
            ended = state["status"] != "pending"
            seen[job] = (
                state["status"],
                state.get("reason"),
                round(time.monotonic() - resumed_at, 2) if ended else None,
            )

        while time.monotonic() < resumed_at + bound_s:
            open_jobs = [j for j, (status, _, _) in seen.items() if status not in ENDED]
            if not open_jobs:
                break
            await asyncio.gather(*[read(j) for j in open_jobs])
            await asyncio.sleep(POLL_S)
    return seen


ENDED = ("done", "failed")


def async_flood_summary(
    posts: list[tuple[str, bool, str | None]],
    jobs: dict[str, tuple[str, str | None, float | None]],
    unwritten_logged: int,
) -> dict[str, Any]:
    """What a flood of async posts with the Model frozen came to: posts accepted (202) and
    refused (by status; those without Retry-After, or neither a 429 nor a 503); each accepted
    job's end (done, failed with or without a reason, still pending, or unreadable), the
    reasons, when the last one ended after the Model was back; results dropped: outcomes the
    replicas logged as unwritten, jobs unreadable or still pending at the end."""
    refused: dict[str, int] = {}
    for status, _, _ in posts:
        if status != "202":
            refused[status] = refused.get(status, 0) + 1
    ends: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for status, reason, _ in jobs.values():
        ends[status] = ends.get(status, 0) + 1
        if status == "failed":
            reasons[reason or ""] = reasons.get(reason or "", 0) + 1
    ended_at = [at for status, _, at in jobs.values() if status in ENDED and at is not None]
    unreadable = sum(n for status, n in ends.items() if status not in (*ENDED, "pending"))
    return {
        "posts": len(posts),
        "accepted": sum(status == "202" for status, _, _ in posts),
        "refused": refused,
        "refused_not_retryable": sum(
            not (status in ("429", "503") and retry)
            for status, retry, _ in posts
            if status != "202"
        ),
        "done": ends.get("done", 0),
        "failed": ends.get("failed", 0),
        "failed_without_reason": reasons.get("", 0),
        "failure_reasons": {r: n for r, n in reasons.items() if r},
        "pending_at_end": ends.get("pending", 0),
        "unreadable": unreadable,
        "last_ended_after_resume_s": max([0.0, *ended_at]),
        "unwritten_logged": unwritten_logged,
        "dropped": unwritten_logged + unreadable + ends.get("pending", 0),
    }


def _unwritten_logged(head: RayHead) -> int:
    """Async outcomes the replicas could not write to Redis (serve_app/ingress.py logs each)."""
    return sum(
        path.read_text(errors="replace").count("could not be written to Redis")
        for path in (Path(head.temp_dir) / "session_latest/logs/serve").glob("replica_*.log")
    )


def _async_flood(
    app: RunningApp,
    front: str,
    key: str,
    items: list[list[Any]],
    posts: int,
    freeze_s: float,
    timeout_s: float,
    offset: int = 0,
) -> dict[str, Any]:
    """Every Model replica SIGSTOPped (one that starts meanwhile too) for `freeze_s`; meanwhile
    at most `posts` async posts from 127.0.0.2 at c=32 (another process) and the keyed client
    from 127.0.0.1, both from the freeze's first second, both through `front` (a front with the
    project's address limits; the jobs are read through the app's own);
    then SIGCONT and every accepted job read until it ends (at most `timeout_s` + 5 s). Each
    flood of a run has its own `offset`: fixtures another one posted would be cache hits. The
    Ingress replica's RSS idle and its peak from the freeze to the end; the keyed client alone
    for `freeze_s` before, as the baseline (p99s of equal counts)."""
    import psutil

    ingress = _replica_pids(app.head, "Ingress")
    if not ingress:
        return {"error": "no Ingress replica process found"}
    ingress_pid = min(ingress)
    idle, idle_other = asyncio.run(_keyed_misses(front, key, items, freeze_s, offset + 30_000))
    rss_idle = _rss_mb(ingress_pid)
    peak = [rss_idle]
    stopped: set[int] = set()
    freezing = threading.Event()
    freezing.set()

    def freeze() -> None:  # SIGSTOP each Model replica, and any that starts during the freeze
        while freezing.is_set():
            for pid in _replica_pids(app.head, "Model") - stopped:
                os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
            with contextlib.suppress(psutil.Error):  # the replica gone: the peak so far stands
                peak.append(_rss_mb(ingress_pid))
            time.sleep(0.25)

    watcher = threading.Thread(target=freeze, daemon=True)
    replicas = len(ingress)
    # the posts from a process of their own (SPAWN_S to start), the keyed client here, both
    # from `at`; the freeze from a second before `at` to `until`
    at = time.monotonic() + SPAWN_S
    until = at + freeze_s
    frozen_at = time.monotonic()
    with _in_another_process(
        _async_posts, front, key, items, posts, 32, at, until, offset + 40_000
    ) as flooding:
        try:
            time.sleep(max(0.0, at - 1.0 - time.monotonic()))
            watcher.start()
            wait_until(lambda: bool(stopped), 10)
            frozen_at = time.monotonic()
            time.sleep(max(0.0, at - time.monotonic()))
            busy, busy_other = asyncio.run(
                _keyed_misses(front, key, items, freeze_s, offset + 50_000)
            )
            sent = flooding.get(timeout=freeze_s + 120)
            time.sleep(max(0.0, until - time.monotonic()))
        finally:
            freezing.clear()
            watcher.join(10)
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
    resumed_at = time.monotonic()
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.5):
            try:
                peak.append(_rss_mb(ingress_pid))
            except psutil.Error:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    accepted = [job for status, _, job in sent if status == "202" and job]
    jobs = asyncio.run(_read_jobs(app.front, key, accepted, resumed_at, timeout_s + 5))
    sampling.set()
    sampler.join(10)
    time.sleep(2)  # the replicas' logs are flushed
    return async_flood_summary(sent, jobs, _unwritten_logged(app.head)) | {
        "freeze_s": freeze_s,
        "frozen_s": round(resumed_at - frozen_at, 1),  # from the last SIGSTOP's first round
        "model_replicas_stopped": len(stopped),
        "ingress_replicas": replicas,
        "rss_idle_mb": round(rss_idle, 1),
        "rss_peak_mb": round(max(peak), 1),
        "keyed_idle": _percentiles(idle) | {"other": idle_other},
        "keyed_during": _percentiles(busy) | {"other": busy_other},
    }


def listening(procs: list[Any], host: str = "127.0.0.1") -> list[dict[str, Any]]:
    """Every listening TCP socket (and bound UDP one) of these psutil processes: owner, pid,
    address, port, and whether it is on `host`."""
    import psutil

    out = []
    for proc in procs:
        try:
            argv = proc.cmdline() or [proc.name()]
            owner = argv[0].rsplit("/", 1)[-1] if argv[0].startswith("/") else argv[0]
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        for conn in conns:
            bound = conn.status == psutil.CONN_LISTEN or (
                conn.type == socket.SOCK_DGRAM and conn.laddr and not conn.raddr
            )
            if bound:
                ip = conn.laddr.ip.removeprefix("::ffff:")
                out.append(
                    {
                        "owner": owner[:80],
                        "pid": proc.pid,
                        "address": ip,
                        "port": conn.laddr.port,
                        "udp": conn.type == socket.SOCK_DGRAM,
                        "on_host": ip == host,
                    }
                )
    return out


def _app_sockets(app: RunningApp, redis: list[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    import psutil

    serve = psutil.Process(app.serve.pid)
    procs = [serve, *serve.children(recursive=True), psutil.Process(app.haproxy.pid)]
    procs += [psutil.Process(r.pid) for r in redis] + app.head.processes()
    return listening(list({p.pid: p for p in procs}.values()))


@contextlib.contextmanager
def project_front(app: RunningApp, folder: Path) -> Iterator[str]:
    """A second front over the app's replicas with the project's limits (conf/runtime.yaml),
    where `app.front` has the address limits lifted for the one-address load: a flood from one
    address meets what it would meet on the main command's front."""
    port = free_port()
    proc = start_front(
        folder / "front-project.cfg",
        "127.0.0.1",
        port,
        app.ports,
        int(app.proxy.rsplit(":", 1)[1]),
        folder / "front-project.log",
        serving_settings(),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def ingress_replicas() -> int:
    import yaml

    from soccerpredict.config import PROJECT_ROOT

    config = yaml.safe_load((PROJECT_ROOT / "conf/serve.yaml").read_text())
    deployments = config["applications"][0]["deployments"]
    return int(next(d for d in deployments if d["name"] == "Ingress").get("num_replicas", 1))


def run_serve(
    load_s: int,
    kill_s: float,
    metrics_wait_s: float,
    flood_posts: int = 2000,
    freeze_s: float = 25.0,
    examples: int = 100,
) -> dict[str, Any]:
    """The `serve run` probes: the load with its Redis outages, both replica kills, the
    listening sockets, the async flood with the Model frozen. Needs the pipeline's outputs
    (team state, champion), `wrk`."""
    from serve_app.keys import KeyStore
    from soccerpredict.config import PROJECT_ROOT, load_config

    cfg = load_config(PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml").rooted(
        PROJECT_ROOT
    )
    items = fixtures(cfg)
    keys = KeyStore(cfg.runtime.serving.api_keys_file)
    key_id, key = keys.create("reliability")
    folder = Path(tempfile.mkdtemp(prefix="reliability-serve-"))
    state_port, cache_port = free_port(), free_port()
    redis = [
        start_redis(state_port, folder / "redis-state", "state"),
        start_redis(cache_port, folder / "redis-cache", "cache"),
    ]
    out: dict[str, Any] = {
        "setting": f"conf/serve.env, conf/serve.yaml ({ingress_replicas()} Ingress replicas), "
        "the front, Ray's dashboard on 127.0.0.1",
        "fixtures": len(items),
    }
    try:
        script = lua_script(items, key, folder)
        with running_app(
            serve_environment(),
            f"redis://127.0.0.1:{state_port}/0",
            folder,
            cache_url=f"redis://127.0.0.1:{cache_port}/0",
            dashboard=True,  # as scripts/run_pipeline.sh starts the head
        ) as app:
            time.sleep(6)  # the Model publishes its version
            out["load_c64"] = _load_20k(app, script, load_s, metrics_wait_s)
            sockets = _app_sockets(app, redis)
            for k, deployment in enumerate(("Ingress", "Model")):
                wait_until(lambda: httpx.get(f"{app.front}/healthz").status_code == 200, 60)
                time.sleep(3)
                out[f"kill_{deployment.lower()}"] = _kill_replica(
                    app, key, items, deployment, kill_s, 10_000 * (k + 1)
                )
            seen = {(s["pid"], s["port"]) for s in sockets}
            sockets += [s for s in _app_sockets(app, redis) if (s["pid"], s["port"]) not in seen]
            out["listening"] = sockets
            wait_until(lambda: httpx.get(f"{app.front}/healthz").status_code == 200, 60)
            time.sleep(3)
            serving = cfg.runtime.serving
            settings = {
                "async_backlog": serving.async_backlog,
                "async_timeout_s": serving.async_timeout_s,
            }

            def flood(front: str, offset: int, setting: str) -> dict[str, Any]:
                return (
                    _async_flood(
                        app,
                        front,
                        key,
                        items,
                        flood_posts,
                        freeze_s,
                        settings["async_timeout_s"],
                        offset,
                    )
                    | settings
                    | {"front": setting}
                )

            # the flood from one address as the main command's front meets it (its address
            # limits), then the same flood with them lifted, as from many addresses: past the
            # replicas' backlog (fixtures of its own: the first flood's are cache hits now)
            with project_front(app, folder) as front:
                out["async_flood"] = flood(
                    front,
                    0,
                    f"the project's, per address: {serving.address_rate_per_minute} requests "
                    f"a minute, {serving.address_per_second} in any second and "
                    f"{serving.address_in_flight} in flight",
                )
            wait_until(lambda: httpx.get(f"{app.front}/healthz").status_code == 200, 60)
            time.sleep(3)
            out["async_flood_past_backlog"] = flood(app.front, 100_000, "address limits lifted")
            out["bad_input"] = bad_input_answers(app.front, key, _body(items[0], 0.0))
            out["schemathesis"] = _schemathesis(app.front, key, folder, examples)
    finally:
        for proc in redis:
            proc.terminate()
            proc.wait(timeout=10)
        keys.revoke(key_id)
    return out


# ---------------------------------------------------------------------------- schemathesis
LINKS = re.compile(r"API Links:\s+(\d+) covered / (\d+) selected / (\d+) total")


def schemathesis_summary(report: dict[str, Any], output: str) -> dict[str, Any]:
    """What a `schemathesis run` came to, from its JSON report (`--report-json-path`) and its
    output (the stateful phase's links are only printed): cases generated, operations tested,
    each failed check with its count and operations, each phase's status, the links covered."""
    links = LINKS.search(output)
    covered, selected, total = (int(x) for x in links.groups()) if links else (0, 0, 0)
    return {
        "cases": report["test_cases"]["generated"],
        "operations": f"{report['operations']['tested']} of {report['operations']['total']}",
        "failures": {
            f"{f['code']} {f['title']}": {"count": f["count"], "operations": f["operations"]}
            for f in report["failures"]
        },
        "errors": len(report["errors"]),
        "phases": {name: phase["status"] for name, phase in report["phases"].items()},
        "links_covered": covered,
        "links_total": total,
        "links_selected": selected,
        "warnings": {k: v for k, v in report["warnings"].items() if v},
    }


def _schemathesis(url: str, key: str, folder: Path, examples: int) -> dict[str, Any]:
    """`schemathesis run` of the app's own OpenAPI document through the front, with the key,
    `examples` per operation and every phase (examples, coverage, fuzzing, stateful links).
    Its positive data is brought inside the app's rules JSON Schema cannot state
    (benchmarks/schemathesis_hooks.py); what that moved or dropped, by rule, is reported."""
    from benchmarks import schemathesis_hooks as hooks
    from soccerpredict.config import PROJECT_ROOT

    report, counts = folder / "schemathesis.json", folder / "schemathesis_moved.json"
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": hooks.__name__,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
        hooks.URL: url,
        hooks.KEY: key,
        hooks.COUNTS: str(counts),
    }
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"X-API-Key: {key}",
        "--max-examples",
        str(examples),
        "--seed",
        "16",
        "--request-timeout",
        "30",
        "--report-json-path",
        str(report),
    ]
    try:
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=900, cwd=folder, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": "schemathesis ran past 900 s"}
    if not report.exists():
        return {"error": f"no report; exit {done.returncode}: {done.stdout[-500:]}"}
    out = schemathesis_summary(json.loads(report.read_text()), done.stdout)
    failures = done.stdout.split("= FAILURES =", 1)[-1].split("= WARNINGS =")[0]
    failures = failures.split("= SUMMARY =")[0] if "= FAILURES =" in done.stdout else ""
    return out | {
        "exit": done.returncode,
        "max_examples": examples,
        "positive_cases_moved": json.loads(counts.read_text()) if counts.exists() else {},
        "failure_cases": failures.strip("= \n").replace(key, "[key]")[:8000],
    }


def schemathesis_targets(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    name = "serve run, schemathesis over every route"
    if "error" in r:
        return {name: {"figure": r["error"], "met": False}}
    failed = sum(f["count"] for f in r["failures"].values())
    return {
        f"{name}: 0 failures of any check": {
            "figure": f"{failed} failures"
            + (
                ": "
                + "; ".join(
                    f"{c} × {f['count']} {f['operations']}" for c, f in r["failures"].items()
                )
                if failed
                else ""
            )
            + f"; {r['errors']} errors; operations {r['operations']}",
            "met": failed == 0 and r["errors"] == 0,
        },
        f"{name}: ≥ 1,000 cases with stateful links": {
            "figure": f"{r['cases']} cases; API links {r['links_covered']} covered of "
            f"{r['links_total']}; phases {r['phases']}",
            "met": r["cases"] >= 1000 and r["links_covered"] > 0,
        },
    }


# ---------------------------------------------------------------------------- interrupted retrain
# The checkout is copied (its DVC project, outputs, registry, keys; not .venv): `dvc repro` in
# it may delete outputs, and the checkout the suite runs from is never touched.
COPY_SKIP = (".venv", "ray_results", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".dvcstore")
RETRAIN = ["-m", "dvc", "repro", "-f", "-s", "features"]  # -s: features alone, not ingest before
WORKING = "features by league"  # the stage's progress line: its Ray work has begun


async def _steady(
    url: str, key: str, items: list[list[Any]], c: int, stop: threading.Event, offset: int
) -> list[tuple[float, float, str]]:
    """`c` clients posting never-seen fixtures to `POST /predict` through the front until
    `stop`: each request's (start, end, status or error name)."""
    records: list[tuple[float, float, str]] = []
    counter = iter(range(10**9))
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"X-API-Key": key}) as http:

        async def worker() -> None:
            while not stop.is_set():
                n = next(counter)
                body = _never_seen(items, offset, n)
                t0 = time.monotonic()
                try:
                    status = str((await http.post("/predict", json=body)).status_code)
                except httpx.HTTPError as err:
                    status = type(err).__name__
                records.append((t0, time.monotonic(), status))
                await asyncio.sleep(0.05)

        await asyncio.gather(*[worker() for _ in range(c)])
    return records


def retrain_summary(
    records: list[tuple[float, float, str]], phases: dict[str, float]
) -> dict[str, Any]:
    """The answers by status in each phase, by when a request started: `during_repro` from
    `repro_started` to `killed` (the stage, its interruption, what it left), `restart` from
    `killed` to `ready` (the Ingress replica replaced), `after_restart` from `ready` on."""
    bounds = {
        "before": (float("-inf"), phases["repro_started"]),
        "during_repro": (phases["repro_started"], phases["killed"]),
        "restart": (phases["killed"], phases["ready"]),
        "after_restart": (phases["ready"], float("inf")),
    }
    out: dict[str, Any] = {}
    for name, (lo, hi) in bounds.items():
        statuses: dict[str, int] = {}
        for start, _, status in records:
            if lo <= start < hi:
                statuses[status] = statuses.get(status, 0) + 1
        out[name] = statuses
    out["longest_s"] = round(max((end - start for start, end, _ in records), default=0.0), 3)
    return out


def _stage_process(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the stage's own command (`python -m ray_jobs.features`) runs under `proc`."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        return False
    for child in children:
        try:
            if "ray_jobs.features" in " ".join(child.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def _interrupted_repro(
    app: RunningApp, copy: Path, interrupt_after_s: float, log: Path
) -> dict[str, Any]:
    """`dvc repro -f -s features` in `copy` on the app's own Ray (as the main command runs the
    pipeline beside Serve), Ctrl-C (SIGINT to its process group) `interrupt_after_s` after the
    stage's work began (its progress line in the log; at most 60 s after its command started);
    what DVC answered."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
    env["RAY_ADDRESS"] = app.head.address
    with log.open("w") as out:
        dvc = subprocess.Popen(
            [sys.executable, *RETRAIN],
            cwd=copy,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
        )
    started = time.monotonic()
    while dvc.poll() is None and not _stage_process(dvc) and time.monotonic() - started < 300:
        time.sleep(0.1)
    stage_at = time.monotonic() - started
    while dvc.poll() is None and WORKING not in log.read_text(errors="replace"):
        if time.monotonic() - started > stage_at + 60:
            break
        time.sleep(0.05)
    working_at = time.monotonic() - started
    time.sleep(interrupt_after_s)
    running = dvc.poll() is None
    if running:
        os.killpg(dvc.pid, signal.SIGINT)
    try:
        code = dvc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(dvc.pid, signal.SIGKILL)
        code = dvc.wait()
    return {
        "command": "dvc " + " ".join(RETRAIN[2:]),
        "stage_started_s": round(stage_at, 2),
        "stage_working_s": round(working_at, 2),
        "interrupt_after_s": interrupt_after_s,
        "interrupted": running,
        "dvc_exit": code,
        "dvc_log_tail": log.read_text(errors="replace")[-600:],
    }


def run_retrain(root: Path, before_s: float, interrupt_after_s: float, after_s: float) -> Any:
    """Serving through an interrupted `dvc repro -f -s features` and an Ingress replica
    restarted after it: the app (`running_app`, one Ingress replica) serves a copy of `root`
    (a checkout where the pipeline ran), a c=4 load of never-seen `POST /predict` throughout;
    the stage runs in the copy and is interrupted; then the Ingress replica is SIGKILLed and
    the new one (which reads the team state the stage left) is loaded for `after_s`."""
    import shutil

    from serve_app.keys import KeyStore
    from soccerpredict.config import load_config

    folder = Path(tempfile.mkdtemp(prefix="reliability-retrain-"))
    copy = folder / "checkout"
    shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns(*COPY_SKIP))
    cfg = load_config(copy / "params.yaml", copy / "conf/runtime.yaml").rooted(copy)
    team_state = Path(cfg.runtime.paths.team_state)
    if not team_state.exists():
        return {"error": f"no team state in {root}: run the pipeline there first"}
    items = fixtures(cfg)
    key = KeyStore(cfg.runtime.serving.api_keys_file).create("reliability")[1]
    state_port, cache_port = free_port(), free_port()
    redis = [
        start_redis(state_port, folder / "redis-state", "state"),
        start_redis(cache_port, folder / "redis-cache", "cache"),
    ]
    out: dict[str, Any] = {"checkout": f"a copy of {root}"}
    before = team_state.read_bytes()
    try:
        with running_app(
            serve_environment(),
            f"redis://127.0.0.1:{state_port}/0",
            folder,
            cache_url=f"redis://127.0.0.1:{cache_port}/0",
            dashboard=True,
            root=copy,
        ) as app:
            time.sleep(6)  # the Model publishes its version
            stop, records = threading.Event(), list[tuple[float, float, str]]()
            load = threading.Thread(
                target=lambda: records.extend(
                    asyncio.run(_steady(app.front, key, items, 4, stop, 60_000))
                )
            )
            load.start()
            try:
                time.sleep(before_s)
                phases = {"repro_started": time.monotonic()}
                out["repro"] = _interrupted_repro(app, copy, interrupt_after_s, folder / "dvc.log")
                stage_outs = ("features", "feature_contract", "team_state")
                out["outputs_left"] = {
                    name: Path(getattr(cfg.runtime.paths, name)).exists() for name in stage_outs
                }
                out["team_state_unchanged"] = (
                    team_state.exists() and team_state.read_bytes() == before
                )
                time.sleep(2)
                pids = _replica_pids(app.head, "Ingress")
                phases["killed"] = time.monotonic()
                os.kill(min(pids), signal.SIGKILL)
                wait_until(lambda: bool(_replica_pids(app.head, "Ingress") - pids), 120)
                wait_until(lambda: httpx.get(f"{app.front}/healthz").status_code == 200, 120)
                phases["ready"] = time.monotonic()
                out["healthz_after_restart"] = httpx.get(f"{app.front}/healthz").json()
                time.sleep(after_s)
            finally:
                stop.set()
                load.join(60)
            out |= retrain_summary(records, phases)
            out["phase_s"] = {k: round(v - phases["repro_started"], 2) for k, v in phases.items()}
    finally:
        for proc in redis:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    return out


def retrain_targets(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The interrupted retrain's rows: 200s throughout it, and after the Ingress restart."""
    name = "interrupted `dvc repro -f features`"
    if "error" in r:
        return {name: {"figure": r["error"], "met": False}}
    during, after = r["during_repro"], r["after_restart"]
    repro = r["repro"]
    interrupted = repro["interrupted"] and repro["dvc_exit"] != 0
    return {
        f"{name}: serving answers 200 throughout": {
            "figure": f"{during} (SIGINT {repro['interrupt_after_s']} s into the stage's Ray work, "
            f"{repro['stage_working_s']} s after dvc started; dvc exit {repro['dvc_exit']}; team_state.json kept unchanged: "
            f"{r['team_state_unchanged']}; outputs left {r['outputs_left']})",
            "met": interrupted and set(during) == {"200"},
        },
        f"{name}: 200 after an Ingress replica restart within it": {
            "figure": f"{after} after the new replica was ready (during the restart "
            f"{r['restart']}; /healthz can_serve {r['healthz_after_restart'].get('can_serve')})",
            "met": interrupted and set(after) == {"200"},
        },
    }


# ---------------------------------------------------------------------------- the suite
UVICORN_PROBES = (
    "idle",
    "unauthenticated_flood",
    "metrics_flood",
    "big_body",
    "redis_state_kill",
    "key_writes",
)


def run_uvicorn(flood_s: float, concurrency: int, body_mb: int, key_writes: int) -> Any:
    """The probes against the app under uvicorn: floods, the big body, Redis, key writes."""
    from serve_app.keys import KeyStore

    folder = Path(tempfile.mkdtemp(prefix="reliability-"))
    state_port, cache_port, port = free_port(), free_port(), free_port()
    state = start_redis(state_port, folder / "redis-state", "state")
    cache = start_redis(cache_port, folder / "redis-cache", "cache")
    serving = _serving_conf(folder, state_port, cache_port)
    key = KeyStore(Path(serving["api_keys_file"])).create("reliability")[1]
    ctx = multiprocessing.get_context("spawn")
    server = ctx.Process(target=_app_process, args=(str(folder), port, serving), daemon=True)
    server.start()
    front_port = free_port()
    url = f"http://127.0.0.1:{front_port}"
    report: dict[str, Any] = {}
    front = None
    try:
        wait_for_port(port, 120)
        assert server.pid is not None
        limits = serving_settings().model_copy(update=serving)  # the app's, for its front
        front = start_front(
            folder / "front.cfg",
            "127.0.0.1",
            front_port,
            range(port, port + 1),
            port,
            folder / "front.log",
            limits,
        )
        report["idle"] = {"keyed": _percentiles(asyncio.run(_keyed(url, key, flood_s)))}

        for name, flood in (("unauthenticated_flood", bad_key), ("metrics_flood", scrape)):
            time.sleep(1)
            report[name] = _beside(url, key, flood, concurrency, flood_s)
        report["big_body"] = asyncio.run(_big_body(url, key, server.pid, body_mb))
        state, report["redis_state_kill"] = _redis_kill(url, key, state, state_port, folder)
        report["key_writes"] = _key_writes(folder, key_writes)
    finally:
        if front is not None:
            front.terminate()
            front.wait(10)
        server.terminate()
        server.join(10)
        for proc in (state, cache):
            proc.terminate()
            proc.wait()
    return report


def run(out: Path, parts: list[str], quick: bool, root: Path | None = None) -> Any:
    """The parts asked for; a part not run keeps its sections from the report already at `out`
    (each part's sections say when they were measured)."""
    old = json.loads(out.read_text()) if out.exists() else {}
    keep = {"uvicorn": UVICORN_PROBES, "serve": ("serve_run",), "retrain": ("retrain",)}
    report: dict[str, Any] = {"machine": "shared, 2 cores: read the ratios"}
    measured = dict(old.get("measured", {}))
    for part, names in keep.items():
        if part not in parts:
            report |= {name: old[name] for name in names if name in old}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if "uvicorn" in parts:
        sizes = (2.0, 16, 3, 20) if quick else (20.0, 100, 33, 200)
        report |= run_uvicorn(*sizes)
        measured["uvicorn"] = stamp + (" (--quick)" if quick else "")
    if "serve" in parts:
        sizes = (10, 10.0, 6.0, 400, 8.0, 20) if quick else (LOAD_S, 23.0, 12.0, 2000, 25.0, 100)
        report["serve_run"] = run_serve(*sizes)
        measured["serve"] = stamp + (" (--quick)" if quick else "")
    if "retrain" in parts:
        from soccerpredict.config import PROJECT_ROOT

        sizes = (3.0, 0.5, 8.0) if quick else (10.0, 0.5, 20.0)
        report["retrain"] = run_retrain(root or PROJECT_ROOT, *sizes)
        measured["retrain"] = stamp + (" (--quick)" if quick else "")
    if "idle" in report:  # a report written before `measured` was kept
        measured.setdefault("uvicorn", "not recorded (an earlier run)")
    report["measured"] = {part: measured[part] for part in keep if part in measured}
    serve_done = {"load_20k_c64", "replica_kills", "listening_sockets"}
    for probe, name in (
        ("async_flood", "async_flood_frozen_model"),
        ("schemathesis", "schemathesis"),
    ):
        if probe in report.get("serve_run", {}):  # a serve report from before it had none
            serve_done.add(name)
    done = set(report) | (serve_done if "serve_run" in report else set())
    done |= {"interrupted_retrain"} if "retrain" in report else set()
    report["not_run"] = {name: why for name, why in NOT_RUN.items() if name not in done}
    report["targets"] = targets(report)
    write_json(report, out)
    return report


def _uvicorn_targets(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    idle = r["idle"]["keyed"]

    def ratio(name: str, q: str) -> float:
        return round(r[name]["keyed"][q] / max(idle[q], 1e-9), 2)

    rows = {
        f"{name} keyed {q} ≤ 2× idle": ratio(name, q)
        for name in ("unauthenticated_flood", "metrics_flood")
        for q in ("p50_ms", "p99_ms")
    }
    out = {name: {"figure": v, "met": v <= 2.0} for name, v in rows.items()}
    body, kill, keys = r["big_body"], r["redis_state_kill"], r["key_writes"]
    out["33 MB body: 413, RSS within +50 MB"] = {
        "figure": f"{body['status']}, {body['rss_delta_mb']} MB",
        "met": body["status"] == 413 and body["rss_delta_mb"] <= 50,
    }
    out["Redis gone: 0 failed sync"] = {
        "figure": kill["sync_failed_while_down"],
        "met": kill["sync_failed_while_down"] == 0,
    }
    out["Redis back: healthy within 2 s"] = {
        "figure": kill["healthy_after_restart_s"],
        "met": kill["healthy_after_restart_s"] <= 2.0,
    }
    out["jobs instance killed: every accepted job readable"] = {
        "figure": f"{kill['jobs_readable_after_restart']}/{kill['jobs_accepted']}",
        "met": kill["jobs_readable_after_restart"] == kill["jobs_accepted"],
    }
    out["0 lost key updates"] = {
        "figure": keys,
        "met": keys["in_process_lost"] == 0 and keys["across_processes_lost"] == 0,
    }
    return out


def _serve_targets(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    load = s["load_c64"]
    errors = load["non_2xx"] + load["socket_errors"]
    out = {
        "serve run, POST /predict misses at c=64 through the front: 0 errors": {
            "figure": f"{errors} of {load['requests']} ({load['rps']:.0f} req/s)",
            "met": errors == 0,
        },
        "serve run, the same load: p95 ≤ 500 ms": {
            "figure": f"p95 {load['p95_ms']:.0f} ms (p50 {load['p50_ms']:.0f}, p99 "
            f"{load['p99_ms']:.0f})",
            "met": load["p95_ms"] <= 500,
        },
        "serve run, healthy Redis under that load: 0 outages declared": {
            "figure": f"{load['outages_declared']} breaker openings, "
            f"{load['redis_failures_logged']} failed calls logged, redis_errors metric "
            f"+{load['redis_errors_metric_delta']}, /healthz redis false "
            f"{load['healthz_redis_false']} of {load['healthz_polls']} polls "
            f"({load['healthz_unanswered']} unanswered)",
            "met": load["outages_declared"] == 0 and load["healthz_redis_false"] == 0,
        },
    }
    for deployment in ("Ingress", "Model"):
        k = s[f"kill_{deployment.lower()}"]
        name = f"serve run, {deployment} replica SIGKILLed under c=16 ({k.get('route')})"
        if "error" in k:
            out[name] = {"figure": k["error"], "met": False}
            continue
        out[f"{name}: 0 × 500, a failure is a 503 with Retry-After"] = {
            "figure": f"{k['answers_500']} × 500, {k['not_503_with_retry_after']} failures "
            f"not a 503 with Retry-After; statuses {k['statuses']}",
            "met": k["answers_500"] == 0 and k["not_503_with_retry_after"] == 0,
        }
        out[f"{name}: < 0.1% failed"] = {
            "figure": f"{k['failed']} of {k['requests']} ({k['failed_share']:.2%})",
            "met": k["failed_share"] < 0.001,
        }
        out[f"{name}: no request held > 2 s"] = {
            "figure": f"longest {k['longest_s']} s",
            "met": k["longest_s"] <= 2.0,
        }
        out[f"{name}: recovery < 5 s"] = {
            "figure": f"{k['recovery_s']} s (new replica process after "
            f"{k['replacement_process_s']} s)",
            "met": k["recovery_s"] < 5.0,
        }
    if "async_flood" in s:
        out |= async_flood_targets(s["async_flood"], backlog=False)
    if "async_flood_past_backlog" in s:
        out |= async_flood_targets(s["async_flood_past_backlog"], FLOOD_PAST_BACKLOG, keyed=False)
    if "bad_input" in s:
        out |= bad_input_target(s["bad_input"])
    if "schemathesis" in s:
        out |= schemathesis_targets(s["schemathesis"])
    off = [x for x in s["listening"] if not x["on_host"]]
    out["serve run: nothing listening outside 127.0.0.1"] = {
        "figure": f"{len(off)} of {len(s['listening'])} sockets"
        + (
            ": " + ", ".join(f"{x['owner']} {x['address']}:{x['port']}" for x in off) if off else ""
        ),
        "met": not off,
    }
    return out


FLOOD = "serve run, async flood with the Model frozen"
FLOOD_PAST_BACKLOG = "serve run, async flood past the backlog (address limits lifted)"


def async_flood_targets(
    a: dict[str, Any], name: str = FLOOD, keyed: bool = True, backlog: bool = True
) -> dict[str, dict[str, Any]]:
    """The async flood's rows: Ingress RSS, refusals (past the backlog if `backlog`, else
    retryable), every accepted job ended within `async_timeout_s` of the Model's return, no
    result dropped, the keyed client against idle (if `keyed`)."""
    if "error" in a:
        return {name: {"figure": a["error"], "met": False}}
    most = a["async_backlog"] * a["ingress_replicas"]
    rss = round(a["rss_peak_mb"] - a["rss_idle_mb"], 1)
    timeout = a["async_timeout_s"]
    out = {
        f"{name}: Ingress RSS within +100 MB of idle": {
            "figure": f"+{rss} MB (idle {a['rss_idle_mb']}, peak {a['rss_peak_mb']} MB)",
            "met": rss <= 100,
        },
        f"{name}: a 429/503 with Retry-After past the backlog"
        if backlog
        else f"{name}: every refusal a 429/503 with Retry-After": {
            "figure": f"{a['accepted']} of {a['posts']} accepted (backlog {most}); refused "
            f"{a['refused']}, {a['refused_not_retryable']} not a 429/503 with Retry-After",
            "met": (not backlog or a["accepted"] <= most and a["refused"].get("503", 0) > 0)
            and sum(a["refused"].values()) > 0
            and a["refused_not_retryable"] == 0,
        },
        f"{name}: every accepted job done, or failed with a reason, within async_timeout_s "
        "of the Model's return": {
            "figure": f"{a['done']} done, {a['failed']} failed "
            f"({a['failed_without_reason']} without a reason), {a['pending_at_end']} pending, "
            f"{a['unreadable']} unreadable; the last ended {a['last_ended_after_resume_s']} s "
            f"after SIGCONT (timeout {timeout:g} s)",
            "met": a["pending_at_end"] == 0
            and a["unreadable"] == 0
            and a["failed_without_reason"] == 0
            and a["last_ended_after_resume_s"] <= timeout + POLL_S,
        },
        f"{name}: no result dropped while Redis is up": {
            "figure": f"{a['dropped']} dropped ({a['unwritten_logged']} unwritten outcomes "
            f"logged, {a['unreadable']} unreadable, {a['pending_at_end']} still pending)",
            "met": a["dropped"] == 0,
        },
    }
    idle, busy = a["keyed_idle"], a["keyed_during"]
    for q in ("p50_ms", "p99_ms") if keyed else ():
        ratio = round(busy.get(q, float("inf")) / max(idle.get(q, 0.0), 1e-9), 2)
        out[f"{name}: keyed {q[:3]} ≤ 2× idle (flood from 127.0.0.2)"] = {
            "figure": f"{ratio}× ({busy.get(q)} against {idle.get(q)} ms; keyed failures "
            f"{busy['other'] or 0})",
            "met": ratio <= 2.0 and not busy["other"],
        }
    return out


def targets(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of issue 16 this suite measures: met or not, with the figure."""
    out = _uvicorn_targets(r) if "idle" in r else {}
    out |= _serve_targets(r["serve_run"]) if "serve_run" in r else {}
    return out | (retrain_targets(r["retrain"]) if "retrain" in r else {})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/reliability.json"))
    parser.add_argument("--quick", action="store_true", help="short floods, small bodies")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("uvicorn", "serve", "retrain"),
        help="default: all three; uvicorn alone with --quick",
    )
    parser.add_argument(
        "--root",
        type=Path,
        help="retrain: the checkout whose copy the app serves and the stage runs in (a "
        "checkout where the pipeline ran; default: this one). It is never written to",
    )
    args = parser.parse_args(argv)
    # a handler (not "ignored", as under a background shell) so `serve run` can be stopped
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parts = args.parts or (["uvicorn"] if args.quick else ["uvicorn", "serve", "retrain"])
    report = run(args.out, parts, args.quick, args.root)
    for name, row in report["targets"].items():
        print(f"{'met' if row['met'] else 'NOT met':8} {name}: {row['figure']}")


if __name__ == "__main__":
    main()
