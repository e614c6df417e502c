"""The routes and the model service without Ray: the app's FastAPI over an `Ingress` with a real
redis-server, a real published team state and real XGBoost predictors; a `ServedModel` in the same
process takes the place of the Model deployment's handle."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from serve_app.api import build_api
from serve_app.ingress import Ingress
from serve_app.keys import KeyStore
from serve_app.metrics import AppMetrics
from serve_app.redis_state import RedisState
from serve_app.served_model import ServedModel
from serve_app.services import FeatureService, LoadedModel, ModelService, UpcomingPredictions
from serve_app.settings import ServeSettings
from soccerpredict.config import FeatureParams, ModelParams, ServingConf
from soccerpredict.features.build import FEATURE_COLUMNS, feature_contract
from soccerpredict.features.online import Fixture, TeamState, snapshot
from soccerpredict.features.state import LeagueState
from soccerpredict.io import write_json
from soccerpredict.models import Calibrator, train_booster
from soccerpredict.models.predictor import (
    RATINGS_ONLY,
    RATINGS_ONLY_ALL,
    ContractMismatch,
    Forecaster,
    Predictor,
)

BODY = {"league": "L1", "home_team": "A", "away_team": "B", "kickoff": "2022-05-07"}
NOW = 1_699_999_995.0  # the injected clock: 45 s left in its minute


@pytest.fixture(scope="module")
def predictors() -> dict[str, Predictor]:
    return small_predictors()


def small_predictors() -> dict[str, Predictor]:
    """Registered versions: 1 and 2 answer differently, 3 was trained on other features."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    y = rng.integers(0, 3, 300)
    fast = ModelParams(n_estimators=5, early_stopping_rounds=5)
    booster = train_booster(X[:200], y[:200], X[200:], y[200:], fast)
    contract = feature_contract()

    def one_tier(calibrator: Calibrator, contract: dict[str, object]) -> Predictor:
        tier = Forecaster(RATINGS_ONLY, booster, calibrator, list(FEATURE_COLUMNS))
        return Predictor({RATINGS_ONLY: tier}, contract)

    # 4: `ratings_only` trained on another league, the all-leagues tier answers the rest
    top = Forecaster(RATINGS_ONLY, booster, Calibrator(), list(FEATURE_COLUMNS), leagues=("L0",))
    wide = Forecaster(
        RATINGS_ONLY_ALL,
        booster,
        Calibrator("temperature", {"temperature": 2.0}),
        list(FEATURE_COLUMNS),
    )
    return {
        "1": one_tier(Calibrator("temperature", {"temperature": 1.0}), contract),
        "2": one_tier(Calibrator("temperature", {"temperature": 3.0}), contract),
        "3": one_tier(Calibrator(), {**contract, "schema_version": "other"}),
        "4": Predictor({RATINGS_ONLY: top, RATINGS_ONLY_ALL: wide}, contract),
    }


@dataclass
class Registry:
    """Aliases and versions, as the MLflow registry would answer them."""

    predictors: dict[str, Predictor]
    aliases: dict[str, str]

    def load(self, version: str) -> LoadedModel:
        return LoadedModel(self.predictors[version], version, "2022-04-30T00:00:00+00:00", None, {})

    def service(self, alias: str) -> ModelService:
        return ModelService(self.load, self.aliases.__getitem__, alias)


@pytest.fixture
def settings(tmp_path: Path, redis_port: int, cache_redis_port: int) -> ServeSettings:
    return ingress_settings(
        tmp_path,
        {
            "redis_url": f"redis://127.0.0.1:{redis_port}/3",
            "cache_redis_url": f"redis://127.0.0.1:{cache_redis_port}/3",
            "rate_limit_per_minute": 5,
            "max_batch_fixtures": 3,
            "max_body_bytes": 4096,
            "address_rate_per_minute": 50,
            "async_timeout_s": 5,
        },
    )


def ingress_settings(folder: Path, serving: dict[str, Any]) -> ServeSettings:
    """Settings over a team state of three teams published in `folder` (also the benchmarks')."""
    state = LeagueState(FeatureParams())
    state.start_season("2021-2022", {"A", "B", "Bees"})
    state.elo = {"A": 1600.0, "B": 1500.0, "Bees": 1450.0}
    write_json(
        snapshot({"L1": state}, FeatureParams(), date(2022, 4, 30)), folder / "team_state.json"
    )
    return ServeSettings(
        alias="champion",
        model_name="m",
        tracking_uri="sqlite:///unused.db",
        serving=ServingConf.model_validate({"api_keys_file": folder / "keys.json", **serving}),
        team_state=folder / "team_state.json",
        predictions=folder / "none.parquet",
        drift_summary=folder / "none.json",
        quality=folder / "none.json",
        promotion_history=folder / "none.json",
    )


def tuned(settings: ServeSettings, **serving: Any) -> ServeSettings:
    """The same settings with other serving limits."""
    return settings.model_copy(update={"serving": settings.serving.model_copy(update=serving)})


@dataclass
class Deployed:
    """One deploy of the app: its model, its ingress and an HTTP client of its routes."""

    model: ServedModel
    ingress: Ingress
    http: httpx.AsyncClient


async def deploy(
    settings: ServeSettings,
    registry: Registry,
    clock: Callable[[], float] = time.time,
    faults: Callable[[ServedModel], Any] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 40000),
    cluster_metrics: Callable[[], str] = lambda: "",
) -> Deployed:
    """What `build_app` wires in the cluster, in this process: both get the same settings.
    `faults` wraps the model the Ingress talks to (a frozen or failing Model)."""
    metrics = AppMetrics()
    model = ServedModel(
        registry.service(settings.alias),
        settings,
        None,
        RedisState.from_conf(settings.serving),
        metrics,
        "model-1",
    )
    await model.refresh()  # loads the alias's version and publishes it
    ingress = Ingress(
        faults(model) if faults else model,
        settings,
        features=FeatureService(settings.team_state, 60, 400),
        redis=RedisState.from_conf(settings.serving, clock=clock),
        keys=KeyStore(settings.serving.api_keys_file),
        upcoming=UpcomingPredictions(settings.predictions, 60),
        metrics=metrics,
        clock=clock,
    )
    transport = httpx.ASGITransport(app=build_api(ingress, cluster_metrics), client=client)
    return Deployed(model, ingress, httpx.AsyncClient(transport=transport, base_url="http://app"))


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """The scenario, then the apps' background tasks (housekeeping, jobs) stopped and awaited,
    as a replica's end would."""

    async def main() -> None:
        await scenario()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=10)

    asyncio.run(main())


@pytest.fixture
def key(settings: ServeSettings) -> str:
    return KeyStore(settings.serving.api_keys_file).create("test")[1]


@pytest.fixture(autouse=True)
def _empty_redis(settings: ServeSettings) -> Iterator[None]:
    async def flush() -> None:
        state = RedisState.from_conf(settings.serving)
        await state.client.flushdb()
        await state.cache_client.flushdb()
        await state.close()

    run(flush)
    yield


def test_a_deploy_under_another_alias_serves_that_alias_not_the_old_cache(
    settings: ServeSettings, predictors: dict[str, Predictor], key: str
) -> None:
    """The Model publishes the version it serves under its alias and the Ingress reads it under
    its own: when they differed (the Ingress always read `champion`), a deploy serving
    `challenger` kept answering from the stale `model:champion:version` and its cache."""
    registry = Registry(predictors, {"champion": "1", "challenger": "2"})

    async def scenario() -> None:
        first = await deploy(settings, registry)
        answers = [
            (await first.http.post("/predict", json=BODY, headers={"X-API-Key": key})).json()
            for _ in range(2)
        ]
        assert [(a["model_version"], a["cached"]) for a in answers] == [("1", False), ("1", True)]
        second = await deploy(settings.model_copy(update={"alias": "challenger"}), registry)
        answer = (await second.http.post("/predict", json=BODY, headers={"X-API-Key": key})).json()
        assert (answer["model_version"], answer["cached"]) == ("2", False)
        assert answer["probabilities"] != answers[0]["probabilities"]
        ttl = await second.ingress.redis.cache_client.ttl(RedisState.version_key("champion"))
        assert 0 < ttl <= first.model.version_ttl_s  # an alias nobody serves any more expires

    run(scenario)


def test_keys_rate_limits_and_open_routes(
    settings: ServeSettings, predictors: dict[str, Predictor], key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, Registry(predictors, {"champion": "1"}), clock=lambda: NOW)
        assert (await app.http.post("/predict", json=BODY)).status_code == 401
        wrong = await app.http.post("/predict", json=BODY, headers={"X-API-Key": "sp_0_x"})
        assert wrong.status_code == 401 and wrong.json()["field"] == "X-API-Key"
        health = (await app.http.get("/healthz")).json()
        assert (health["status"], health["can_serve"], health["redis"]) == ("ok", True, True)
        codes = [await app.http.get("/model", headers={"X-API-Key": key}) for _ in range(6)]
        assert [r.status_code for r in codes] == [200] * 5 + [429]
        assert codes[-1].headers["retry-after"] == "60"  # all five spent this very second
        assert codes[0].json()["version"] == "1" and codes[0].json()["alias"] == "champion"

    run(scenario)


def test_bad_input_and_the_batch_limit(
    settings: ServeSettings, predictors: dict[str, Predictor], key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(
            tuned(settings, rate_limit_per_minute=20), Registry(predictors, {"champion": "1"})
        )
        headers = {"X-API-Key": key}
        unknown = await app.http.post("/predict", json=BODY | {"home_team": "Bee"}, headers=headers)
        assert unknown.status_code == 422 and "Bees" in unknown.json()["suggestions"]
        missing = await app.http.post("/predict", json={"league": "L1"}, headers=headers)
        assert missing.status_code == 422 and "home_team" in missing.json()["detail"]
        batch = await app.http.post(
            "/predict/batch", json={"fixtures": [BODY] * 4}, headers=headers
        )
        assert batch.status_code == 413 and "at most 3" in batch.json()["detail"]
        ok = await app.http.post("/predict/batch", json={"fixtures": [BODY] * 3}, headers=headers)
        assert [p["model_version"] for p in ok.json()["predictions"]] == ["1"] * 3
        assert (await app.http.get("/predict/nothing", headers=headers)).status_code == 404

    run(scenario)


def test_an_async_job_is_done_through_redis(
    settings: ServeSettings, predictors: dict[str, Predictor], key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, Registry(predictors, {"champion": "1"}))
        headers = {"X-API-Key": key}
        accepted = await app.http.post("/predict/async", json=BODY, headers=headers)
        assert accepted.status_code == 202
        status: dict[str, Any] = {"status": "pending"}
        for _ in range(100):
            status = (await app.http.get(accepted.json()["status_url"], headers=headers)).json()
            if status["status"] != "pending":
                break
            await asyncio.sleep(0.02)
        assert status["status"] == "done" and status["result"]["model_version"] == "1"
        unknown = await app.http.get("/predict/async/nope", headers=headers)
        assert unknown.status_code == 404

    run(scenario)


def test_a_version_with_another_contract_is_refused_and_the_loaded_one_serves(
    settings: ServeSettings, predictors: dict[str, Predictor]
) -> None:
    registry = Registry(predictors, {"champion": "1"})

    async def scenario() -> None:
        app = await deploy(settings, registry)
        registry.aliases["champion"] = "3"
        assert not await app.model.refresh()
        assert app.model.version() == "1" and "other" in app.model.service.refused["3"]
        registry.aliases["champion"] = "2"
        assert await app.model.refresh() and app.model.version() == "2"
        published, _ = await app.ingress.redis.lookup("champion", [])
        assert published == "2"

    run(scenario)


def test_nothing_usable_registered_fails_the_first_load(predictors: dict[str, Predictor]) -> None:
    service = Registry(predictors, {"champion": "3"}).service("champion")
    with pytest.raises(ContractMismatch):
        service.refresh()


def test_the_settings_come_from_the_apps_config_files_once() -> None:
    from serve_app.settings import load_settings
    from soccerpredict.config import PROJECT_ROOT

    settings = load_settings({"alias": "challenger"})
    assert settings.alias == "challenger" and settings.reload_interval_s > 0
    assert settings.team_state.is_absolute() and settings.team_state.is_relative_to(PROJECT_ROOT)
    assert os.fspath(settings.promotion_history).endswith("promotion_history.json")


def test_every_answer_names_its_forecaster(
    settings: ServeSettings, predictors: dict[str, Predictor], key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, Registry(predictors, {"champion": "1"}))
        headers = {"X-API-Key": key}
        one = (await app.http.post("/predict", json=BODY | {"odds": None}, headers=headers)).json()
        batch = await app.http.post(
            "/predict/batch", json={"fixtures": [BODY] * 2}, headers=headers
        )
        info = (await app.http.get("/model", headers=headers)).json()
        assert one["forecaster"] == RATINGS_ONLY
        assert [p["forecaster"] for p in batch.json()["predictions"]] == [RATINGS_ONLY] * 2
        assert info["forecasters"] == [RATINGS_ONLY]
        # every answer says how old its league's data is (the extra leagues' end in 2020)
        teams = (await app.http.get("/teams", headers=headers)).json()
        ends = {lg["league"]: lg["data_ends"] for lg in teams["leagues"]}
        assert one["data_ends"] == ends[BODY["league"]]
        age = date.fromisoformat(BODY["kickoff"]) - date.fromisoformat(one["data_ends"])
        assert one["data_age_days"] == age.days > 0

    run(scenario)


def test_a_league_ratings_only_was_not_trained_on_gets_the_all_leagues_tier(
    settings: ServeSettings, predictors: dict[str, Predictor], key: str
) -> None:
    """The league rides with the served vector (`league_code`): the Model routes on it."""

    async def scenario() -> None:
        app = await deploy(settings, Registry(predictors, {"champion": "4"}))
        headers = {"X-API-Key": key}
        one = (await app.http.post("/predict", json=BODY, headers=headers)).json()
        batch = await app.http.post(
            "/predict/batch", json={"fixtures": [BODY] * 2}, headers=headers
        )
        info = (await app.http.get("/model", headers=headers)).json()
        assert one["forecaster"] == RATINGS_ONLY_ALL
        assert [p["forecaster"] for p in batch.json()["predictions"]] == [RATINGS_ONLY_ALL] * 2
        assert info["forecasters"] == [RATINGS_ONLY, RATINGS_ONLY_ALL]
        state = TeamState.load(settings.team_state)
        row = state.features([Fixture("L1", "A", "B", date(2022, 5, 7))]).assign(league="L1")
        expected = predictors["4"].forecasters[RATINGS_ONLY_ALL].predict_proba(row)[0]
        got = [one["probabilities"][k] for k in ("home", "draw", "away")]
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        assert list(predictors["4"].tiers(row.assign(league="L0"))) == [RATINGS_ONLY]

    run(scenario)


class _GoneModel:
    """The Model deployment with its replica SIGKILLed mid-call: Serve's handle raises Ray's
    ActorDiedError for the calls that replica had (benchmarks/reliability.py found them as 500s)."""

    def __init__(self, model: ServedModel) -> None:
        self.model = model

    async def predict_one(self, vector: Any) -> dict[str, Any]:
        from ray.exceptions import ActorDiedError

        raise ActorDiedError()

    async def predict_many(self, matrix: Any) -> list[dict[str, Any]]:
        from ray.exceptions import ActorDiedError

        raise ActorDiedError()

    async def info(self) -> dict[str, Any]:
        return await self.model.info()

    async def report_file(self, name: str) -> bytes | None:
        return await self.model.report_file(name)


def test_a_model_replica_that_died_mid_call_is_a_503_with_retry_after(
    settings: ServeSettings, predictors: dict[str, Predictor], key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, Registry(predictors, {"champion": "1"}), faults=_GoneModel)
        headers = {"X-API-Key": key}
        batch = await app.http.post("/predict/batch", json={"fixtures": [BODY]}, headers=headers)
        assert batch.status_code == 503, batch.text
        assert batch.headers["retry-after"] and "retry" in batch.json()["detail"]

    run(scenario)
