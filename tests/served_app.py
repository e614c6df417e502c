"""The Serve app for the whole test run: `serve run` of conf/serve.yaml on the shared Ray, a real
Redis, and a registry trained by `dvc repro` on a small project whose last season is partly
upcoming. Used by the Serve, monitoring and browser tests."""

from __future__ import annotations

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

from serve_app.keys import KeyStore
from serve_app.local import free_port, start_redis, start_serve, stop_serve
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
    proxy_port: int

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
    redis_port = free_port()
    redis = start_redis(redis_port, work)

    def runtime(conf: dict[str, Any]) -> dict[str, Any]:
        conf["serving"].update(
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            reload_interval_s=0.5,
            async_timeout_s=ASYNC_TIMEOUT_S,
            rate_limit_per_minute=RATE_LIMIT,
            max_batch_fixtures=20,
        )
        return conf

    try:
        env = make_project(work, football_data_dir, ray_address, _params, runtime)
        run(["dvc", "repro"], work, env)
    except BaseException:  # the app never started: its Redis must not outlive the session
        redis.terminate()
        raise
    config = yaml.safe_load((ROOT / "conf/serve.yaml").read_text())
    proxy = free_port()
    config["http_options"]["port"] = proxy  # Serve's proxy: the address clients call
    application = config["applications"][0]
    application["args"]["root"] = str(work)
    (work / "serve-test.yaml").write_text(yaml.safe_dump(config))
    served = App(f"http://127.0.0.1:{proxy}", work, env, redis_port, redis, proxy)
    try:
        proc = start_serve(work / "serve-test.yaml", served.url, work, env, work / "serve-run.log")
        try:
            yield served
        finally:
            stop_serve(proc)
    finally:  # a `serve run` that does not stop must not leave Redis running either
        served.redis.terminate()  # the outage test may have replaced the first one
        served.redis.wait()


@pytest.fixture
def key(app: App) -> str:
    return app.key()  # one per test, so rate limits and revocations stay apart


def upcoming_requests(app: App) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The batch predictions and, for each, the request a client would send for it."""
    predictions = pd.read_parquet(app.work / "data/serving/upcoming_predictions.parquet")
    matches = pd.read_parquet(app.work / "data/interim/matches.parquet").set_index("match_id")
    rows = matches.loc[predictions["match_id"]].reset_index()
    bodies = []
    for row, odds in zip(rows.itertuples(), pre_closing_odds(rows), strict=True):
        body = {
            "league": row.league,
            "home_team": row.home_team,
            "away_team": row.away_team,
            "kickoff": row.kickoff_utc.date().isoformat(),
        }
        if np.isfinite(odds).all():
            body["odds"] = dict(zip(("home", "draw", "away"), map(float, odds), strict=True))
        bodies.append(body)
    return predictions, bodies
