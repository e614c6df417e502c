"""The Serve app for the whole test run: `serve run` of conf/serve.yaml on the shared Ray, the
front clients call (HAProxy, serve_app/front.py) before it, a real Redis, and a registry trained
by `dvc repro` on a small project whose last season is partly upcoming. Used by the Serve,
monitoring and browser tests, which call the front."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from serve_app.front import direct_ingress_ports, start_front
from serve_app.keys import KeyStore
from serve_app.local import free_port, start_redis, start_serve, stop_serve
from soccerpredict.config import load_config
from soccerpredict.features.market import pre_closing_odds
from tests.projects import ROOT, make_project, run, small_params

AS_OF = "2020-02-29"  # the rest of 2019-20 is upcoming: the batch route has fixtures to serve
ASYNC_TIMEOUT_S = 3
RATE_LIMIT = 40


@dataclass
class App:
    url: str
    work: Path
    env: dict[str, str]
    redis_port: int
    redis: subprocess.Popen[bytes]
    cache_port: int
    cache_redis: subprocess.Popen[bytes]
    proxy_port: int  # Serve's proxy, the front's backup
    front_port: int  # the front: `url`

    def key(self) -> str:
        return KeyStore(self.work / "var/api_keys.json").create("test")[1]

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"X-API-Key": key} if key else {}
        )


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return small_params(params) | {"as_of": AS_OF}


@pytest.fixture(scope="session")
def app(
    tmp_path_factory: pytest.TempPathFactory, football_data_dir: Path, ray_address: str
) -> Iterator[App]:
    work = tmp_path_factory.mktemp("served")
    redis_port, cache_port = free_port(), free_port()
    redis = start_redis(redis_port, work / "redis-state", "state")
    cache_redis = start_redis(cache_port, work / "redis-cache", "cache")

    def runtime(conf: dict[str, Any]) -> dict[str, Any]:
        conf["serving"].update(
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            cache_redis_url=f"redis://127.0.0.1:{cache_port}/0",
            reload_interval_s=0.5,
            async_timeout_s=ASYNC_TIMEOUT_S,
            rate_limit_per_minute=RATE_LIMIT,
            address_rate_per_minute=100_000,  # every test's client is 127.0.0.1
            address_in_flight=1_000,
            address_per_second=100_000,
            metrics_rate_per_minute=100_000,  # tests/test_monitoring.py scrapes every second
            max_batch_fixtures=20,
        )
        return conf

    try:
        env = make_project(work, football_data_dir, ray_address, _params, runtime)
        run(["dvc", "repro"], work, env)
    except BaseException:  # the app never started: its Redis must not outlive the session
        redis.terminate()
        cache_redis.terminate()
        raise
    config = yaml.safe_load((ROOT / "conf/serve.yaml").read_text())
    proxy, front = free_port(), free_port()
    config["http_options"]["port"] = proxy  # Serve's proxy: the front's backup
    application = config["applications"][0]
    application["args"]["root"] = str(work)
    (work / "serve-test.yaml").write_text(yaml.safe_dump(config))
    served = App(
        f"http://127.0.0.1:{front}",
        work,
        env,
        redis_port,
        redis,
        cache_port,
        cache_redis,
        proxy,
        front,
    )
    try:
        proxy_url = f"http://127.0.0.1:{proxy}"
        proc = start_serve(work / "serve-test.yaml", proxy_url, work, env, work / "serve-run.log")
        try:
            # this run's direct-ingress range (tests/conftest.py sets it for the shared Ray)
            ports = direct_ingress_ports(dict(os.environ))
            serving = load_config(
                work / "params.yaml", work / "conf/runtime.yaml", env={}
            ).runtime.serving  # the test project's limits
            haproxy = start_front(
                work / "front.cfg", "127.0.0.1", front, ports, proxy, work / "front.log", serving
            )
            try:
                yield served
            finally:
                haproxy.terminate()
                haproxy.wait(timeout=10)
        finally:
            stop_serve(proc)
    finally:  # a `serve run` that does not stop must not leave Redis running either
        served.redis.terminate()  # the outage test may have replaced the first one
        served.cache_redis.terminate()
        served.redis.wait()
        served.cache_redis.wait()


@pytest.fixture
def key(app: App) -> str:
    return app.key()  # one per test, so rate limits and revocations stay apart


def request_body(row: Any, odds: np.ndarray) -> dict[str, Any]:
    """The request a client with every pre-closing price of a match-table row would send:
    its 1X2 price set as `odds`, every book, the totals and the handicap it has."""
    body: dict[str, Any] = {
        "league": row.league,
        "home_team": row.home_team,
        "away_team": row.away_team,
        "kickoff": row.kickoff_utc.date().isoformat(),
    }
    if np.isfinite(odds).all():
        body["odds"] = dict(zip(("home", "draw", "away"), map(float, odds), strict=True))
    values = row._asdict()

    def priced(names: dict[str, str]) -> dict[str, float] | None:
        got = {key: float(values.get(col, np.nan)) for key, col in names.items()}
        return got if all(np.isfinite(v) for v in got.values()) else None

    books = {
        book: prices
        for book in ("avg", "ps", "max", "b365", "bw", "iw", "wh", "vc")
        if (prices := priced({s: f"{book}_{s}" for s in ("home", "draw", "away")}))
    }
    markets = {
        "books": books or None,
        "over_under_25": priced({"over": "avg_over25", "under": "avg_under25"}),
        "asian_handicap": priced({"line": "ah_line", "home": "avg_ah_home", "away": "avg_ah_away"}),
    }
    return body | {k: v for k, v in markets.items() if v is not None}


def one_price_set(body: dict[str, Any]) -> dict[str, Any]:
    """The same request from a client with one 1X2 price set (the page's form)."""
    return {k: v for k, v in body.items() if k not in ("books", "over_under_25", "asian_handicap")}


def upcoming_requests(app: App) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The batch predictions and, for each, the request a client with every price the batch
    stage reads would send for it."""
    predictions = pd.read_parquet(app.work / "data/serving/upcoming_predictions.parquet")
    matches = pd.read_parquet(app.work / "data/interim/matches.parquet").set_index("match_id")
    rows = matches.loc[predictions["match_id"]].reset_index()
    bodies = [
        request_body(row, odds)
        for row, odds in zip(rows.itertuples(), pre_closing_odds(rows), strict=True)
    ]
    return predictions, bodies
