"""The Serve app for real: `serve run` of conf/serve.yaml on the shared Ray, a real Redis, and a
registry trained by `dvc repro` on a small project whose last season is partly upcoming."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from benchmarks.reliability import bad_input_answers, bad_input_target, hostile_requests
from serve_app.front import direct_ingress_ports
from serve_app.keys import KeyStore
from serve_app.local import start_redis, wait_until
from soccerpredict import registry
from soccerpredict.evaluation import PRE_MATCH_PRICE_FEATURES
from soccerpredict.evaluation import one_price_set as offline_one_price_set
from soccerpredict.features.build import FEATURE_COLUMNS
from tests.served_app import ASYNC_TIMEOUT_S, RATE_LIMIT, App, one_price_set, upcoming_requests

pytestmark = [pytest.mark.slow, pytest.mark.ray]
MODEL = "soccer-match-outcome"


def _probs(answer: dict[str, Any]) -> list[float]:
    return [answer["probabilities"][k] for k in ("home", "draw", "away")]


# ------------------------------------------------------------------------------ predictions


def test_predict_matches_the_batch_prediction_then_hits_the_cache(app: App, key: str) -> None:
    predictions, bodies = upcoming_requests(app)
    with app.client(key) as http:
        first = http.post("/predict", json=bodies[0])
        second = http.post("/predict", json=bodies[0])
    assert first.status_code == 200, first.text
    a, b = first.json(), second.json()
    assert sum(_probs(a)) == pytest.approx(1.0)
    batch = predictions.iloc[0][["prob_home", "prob_draw", "prob_away"]].to_numpy(dtype=float)
    np.testing.assert_allclose(_probs(a), batch, rtol=1e-9)  # online path == batch path
    assert a["forecaster"] == predictions.iloc[0]["forecaster"]
    assert a["fair_odds"]["home"] == pytest.approx(1 / a["probabilities"]["home"])
    assert (a["cached"], b["cached"]) == (False, True) or a["cached"]  # an earlier test may warm it
    assert b["cached"] and _probs(b) == _probs(a) and b["model_version"] == a["model_version"]


def test_every_upcoming_fixture_online_gets_the_batch_stages_answer(app: App, key: str) -> None:
    """The batch stage predicts from the offline feature table, the app from the published team
    state and the request's prices (every book, totals and handicap the batch stage reads):
    equal answers for every upcoming fixture mean equal feature vectors (the vectors themselves
    are compared in tests/test_online_features.py) and the same tier."""
    predictions, bodies = upcoming_requests(app)
    answers = []
    for start in range(0, len(bodies), 20):  # the test app's batch limit
        # a batch spends one allowance per fixture, and a test key has RATE_LIMIT a minute:
        # each call comes from a key of its own, so the comparison does not wait on the limit
        with app.client(key if start == 0 else app.key()) as http:
            answers.append(
                http.post("/predict/batch", json={"fixtures": bodies[start : start + 20]})
            )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    online = [p for a in answers for p in a.json()["predictions"]]
    assert len(online) == len(predictions) > 20
    np.testing.assert_allclose(
        [_probs(p) for p in online],
        predictions[["prob_home", "prob_draw", "prob_away"]].to_numpy(float),
        rtol=1e-12,
    )
    assert [p["forecaster"] for p in online] == list(predictions["forecaster"])
    assert "with_market" in set(predictions["forecaster"])


def test_each_request_is_answered_by_the_tier_built_for_its_inputs(app: App, key: str) -> None:
    """Every price: with_market. One 1X2 price set: with_market_1x2. No odds (null included):
    ratings_only. Each answer equals the registered predictor's on the offline feature row
    stripped to what the request carries: online equals batch, tier by tier."""
    predictions, bodies = upcoming_requests(app)
    tiers = predictions["forecaster"]
    i = next(i for i, b in enumerate(bodies) if "odds" in b and tiers.iloc[i] == "with_market")
    body, match_id = bodies[i], predictions.iloc[i]["match_id"]
    with app.client(key) as http:
        model = http.get("/model").json()
        answers = {
            "with_market": http.post("/predict", json=body).json(),
            "with_market_1x2": http.post("/predict", json=one_price_set(body)).json(),
            "ratings_only": http.post("/predict", json=one_price_set(body) | {"odds": None}).json(),
        }
    assert model["forecasters"] == ["with_market", "with_market_1x2", "ratings_only"]
    assert {tier: a["forecaster"] for tier, a in answers.items()} == {t: t for t in answers}
    features = pd.read_parquet(app.work / "data/processed/features.parquet")
    row = features[features["match_id"] == match_id].reset_index(drop=True)
    predictor = registry.load_predictor(_registry(app), MODEL, model["version"])
    fed = {
        "with_market": row,
        "with_market_1x2": offline_one_price_set(row),
        "ratings_only": row.assign(**{c: np.nan for c in PRE_MATCH_PRICE_FEATURES}),
    }
    for tier, frame in fed.items():
        assert list(predictor.tiers(frame)) == [tier]
        np.testing.assert_allclose(
            _probs(answers[tier]), predictor.predict_proba(frame)[0], rtol=1e-12
        )


def test_batch_route_and_its_limit(app: App, key: str) -> None:
    _, bodies = upcoming_requests(app)
    with app.client(key) as http:
        ok = http.post("/predict/batch", json={"fixtures": bodies[:5]})
        too_many = http.post("/predict/batch", json={"fixtures": bodies[:1] * 21})
    assert ok.status_code == 200, ok.text
    assert [p["home_team"] for p in ok.json()["predictions"]] == [
        b["home_team"] for b in bodies[:5]
    ]
    assert too_many.status_code == 413 and "at most 20" in too_many.json()["detail"]


def test_lookup_of_an_upcoming_match(app: App, key: str) -> None:
    predictions, _ = upcoming_requests(app)
    row = predictions.iloc[3]
    with app.client(key) as http:
        found = http.get(f"/predict/{row['match_id']}")
        missing = http.get("/predict/0000000000000000")
    assert found.status_code == 200
    assert found.json()["probabilities"]["home"] == pytest.approx(row["prob_home"])
    assert found.json()["home_team"] == row["home_team"]
    assert missing.status_code == 404 and "batch_predict" in missing.json()["detail"]


def test_model_route_describes_the_champion(app: App, key: str) -> None:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(app.env["MLFLOW_TRACKING_URI"])
    champion = MlflowClient().get_model_version_by_alias(MODEL, "champion")
    with app.client(key) as http:
        info = http.get("/model").json()
    assert info["version"] == str(champion.version) and info["alias"] == "champion"
    assert info["feature_contract"]["columns"] == FEATURE_COLUMNS
    assert 0.15 < info["test_metrics"]["model"]["rps"] < 0.25
    assert "pinnacle_closing" in info["test_metrics"]


# ------------------------------------------------------------------------------ bad input


def _fixture(app: App, **changes: Any) -> dict[str, Any]:
    _, bodies = upcoming_requests(app)
    return {k: v for k, v in (bodies[0] | changes).items() if v is not None}


@pytest.mark.parametrize(
    "changes, status, text",
    [
        ({"home_team": "Nobody FC"}, 422, "unknown team"),
        ({"kickoff": "1990-01-01"}, 422, "latest result"),
        ({"kickoff": "2031-01-01"}, 422, "days after the data ends"),
        ({"kickoff": "next week"}, 422, "kickoff"),
        ({"league": None}, 422, "league: Field required"),
        ({"home_team": 7}, 422, "home_team"),
        ({"odds": {"home": 0.5, "draw": 3.0, "away": 3.0}}, 422, "odds.home"),
        ({"odds": {"home": 1.2, "draw": 1.3, "away": 1.4}}, 422, "margin"),
        ({"odds": {"home": 2.0, "draw": 3.0}}, 422, "odds.away"),
        ({"odds": {"home": -2.0, "draw": 3.0, "away": 3.0}}, 422, "odds.home"),
        ({"books": {"ps": {"home": 1.0, "draw": 3.0, "away": 3.0}}}, 422, "books.ps.home"),
        ({"books": {"avg": {"home": 9.0, "draw": 5.0, "away": 1.3}}}, 422, "differ from books.avg"),
        ({"books": {"pinnacle": {"home": 2.0, "draw": 3.0, "away": 4.0}}}, 422, "pinnacle"),
        ({"over_under_25": {"over": 1.1, "under": 1.1}}, 422, "over/under 2.5 prices imply"),
        ({"asian_handicap": {"line": 0.3, "home": 1.9, "away": 1.95}}, 422, "multiple of 0.25"),
        ({"asian_handicap": {"line": -0.5, "home": 1.9}}, 422, "asian_handicap.away"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
def test_bad_input_gets_a_4xx_with_the_reason(
    app: App, key: str, changes: dict[str, Any], status: int, text: str
) -> None:
    with app.client(key) as http:
        response = http.post("/predict", json=_fixture(app, **changes))
    assert response.status_code == status, response.text
    assert text in response.json()["detail"]


def test_every_hostile_input_is_a_4xx_with_a_reason(app: App, key: str) -> None:
    """The issue's hostile inputs (benchmarks/reliability.py runs the same list through the
    front): non-finite and overflowing prices, years 1 and 9999, huge and NUL names, arrays,
    empty and non-JSON bodies, invalid UTF-8, deep nesting, traversal in ids, an oversized
    batch, an undeclared method."""
    answers = bad_input_answers(app.url, key, _fixture(app))
    assert len(answers) == len(hostile_requests(_fixture(app)))
    row = bad_input_target(answers)["serve run: every bad input a 4xx with a reason"]
    assert row["met"], row["figure"]  # the figure names each answer that was not


def test_an_unknown_team_names_the_closest_known_ones(app: App, key: str) -> None:
    team = _fixture(app)["home_team"]
    with app.client(key) as http:
        response = http.post("/predict", json=_fixture(app, home_team=team[:-1]))
    body = response.json()
    assert response.status_code == 422 and body["field"] == "home_team"
    assert team in body["suggestions"] and team in body["detail"]


def test_not_json_is_a_422(app: App, key: str) -> None:
    with app.client(key) as http:
        response = http.post(
            "/predict", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422 and "JSON" in response.json()["detail"]


# ------------------------------------------------------------------------------ keys, limits


def test_keys_are_required_and_revocation_needs_no_restart(app: App) -> None:
    store = KeyStore(app.work / "var/api_keys.json")
    key_id, key = store.create("revoked-soon")
    body = _fixture(app)
    with (
        app.client() as anonymous,
        app.client("sp_00000000_wrong") as wrong,
        app.client(key) as http,
    ):
        assert anonymous.post("/predict", json=body).status_code == 401
        assert wrong.post("/predict", json=body).status_code == 401
        assert anonymous.get("/healthz").status_code == 200  # open
        assert anonymous.get("/metrics").status_code == 200  # open
        assert http.post("/predict", json=body).status_code == 200
        store.revoke(key_id)
        wait_until(lambda: http.post("/predict", json=body).status_code == 401, 5)


def test_a_key_over_its_rate_limit_gets_429(app: App, key: str) -> None:
    # 2L+1 requests fall in at most two minute windows, so one window must overflow
    with app.client(key) as http:
        codes = [http.get("/model") for _ in range(2 * RATE_LIMIT + 1)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and "rate limit" in limited[0].json()["detail"]
    assert 0 < int(limited[0].headers["retry-after"]) <= 60


# ------------------------------------------------------------------------------ async jobs


def _poll(
    http: httpx.Client, job_id: str, until: set[str], timeout_s: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = http.get(f"/predict/async/{job_id}").json()
        if status["status"] in until:
            return status
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {status['status']}")


def _replica_actors(deployment: str) -> list[str]:
    import ray

    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::soccerpredict#{deployment}#")
    ]


def _replaced(deployment: str, gone: list[str], keep: int = 0) -> bool:
    """`gone` replaced: as many replicas of `deployment` as `gone` and `keep` others, none of
    them from `gone`."""
    now = _replica_actors(deployment)
    return len(now) == len(gone) + keep and not set(now) & set(gone)


def test_async_job_survives_an_ingress_restart(app: App, key: str) -> None:
    import ray

    with app.client(key) as http:
        accepted = http.post("/predict/async", json=_fixture(app))
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        done = _poll(http, job_id, {"done", "failed"})
        assert done["status"] == "done" and sum(_probs(done["result"])) == pytest.approx(1)
        before = _replica_actors("Ingress")
        for old in before:  # every replica: the job is read by one that never saw it
            ray.kill(ray.get_actor(old, namespace="serve"), no_restart=True)
        wait_until(lambda: _replaced("Ingress", before), 60)
        wait_until(lambda: http.get(f"/predict/async/{job_id}").status_code == 200, 60)
        again = http.get(f"/predict/async/{job_id}").json()
    assert again["status"] == "done" and again["result"] == done["result"]


def test_a_model_replica_killed_under_batch_calls_costs_none_of_them(app: App) -> None:
    """conf/serve.yaml runs two Model replicas; the calls the killed one had are tried again
    on the other (served_model.HandleClient), never a 503, and the replica is replaced."""
    import ray

    before = _replica_actors("Model")
    assert len(before) == 2
    fixture = _fixture(app, books=None)  # one price set, nudged below: `odds` alone
    draw = fixture["odds"]["draw"]
    statuses: list[int] = []

    def client(n: int) -> None:
        # a key each, 15 calls of 2 fixtures: under the test rate limit; every fixture a cache
        # miss, so every call goes to a Model replica
        with app.client(app.key()) as http:
            for call in range(15):
                draws = (draw + (n * 1_000 + call * 2 + i) / 1e7 for i in range(2))
                fixtures = [fixture | {"odds": fixture["odds"] | {"draw": d}} for d in draws]
                answer = http.post("/predict/batch", json={"fixtures": fixtures}, timeout=30)
                statuses.append(answer.status_code)
                assert answer.status_code in (200, 503), answer.text
                time.sleep(0.2)

    with ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(client, n) for n in range(8)]
        time.sleep(1.0)
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
        for call in calls:
            call.result()
    assert len(statuses) == 120 and set(statuses) == {200}, statuses
    wait_until(lambda: _replaced("Model", [before[0]], keep=1), 60)


def test_lost_work_is_failed_after_the_timeout_and_stays_failed(app: App, key: str) -> None:
    import psutil

    frozen = [
        p
        for p in psutil.process_iter(["cmdline"])
        if any("ServeReplica:soccerpredict:Model" in part for part in (p.info["cmdline"] or []))
    ]
    assert frozen, "no Model replica process found"
    body = _fixture(app, kickoff="2020-05-30")  # not cached: the Model must answer
    with app.client(key) as http:
        for proc in frozen:
            proc.send_signal(signal.SIGSTOP)  # the worker hangs: its answer never comes
        try:
            job_id = http.post("/predict/async", json=body).json()["job_id"]
            assert http.get(f"/predict/async/{job_id}").json()["status"] == "pending"
            failed = _poll(http, job_id, {"failed", "done"}, timeout_s=ASYNC_TIMEOUT_S + 10)
        finally:
            for proc in frozen:
                proc.send_signal(signal.SIGCONT)
        # cancelled by the ingress at the timeout, or found past its deadline: either way failed
        assert failed["status"] == "failed"
        assert "lost" in failed["reason"] or "within" in failed["reason"]
        time.sleep(1.0)  # the thawed worker answers late; the job must not come back to life
        assert http.get(f"/predict/async/{job_id}").json()["status"] == "failed"
        assert http.get("/predict/async/nope").status_code == 404


# ------------------------------------------------------------------------------ hot reload


def _registry(app: App) -> Any:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(app.env["MLFLOW_TRACKING_URI"])
    return MlflowClient()


def test_a_new_champion_is_served_without_restart_and_old_cache_entries_are_not(
    app: App, key: str
) -> None:
    client = _registry(app)
    current = client.get_model_version_by_alias(MODEL, "champion")
    body = _fixture(app, kickoff="2020-06-06")
    with app.client(key) as http:
        http.post("/predict", json=body)
        assert http.post("/predict", json=body).json()["cached"] is True
        replicas = _replica_actors("Model")
        new = client.create_model_version(
            MODEL,
            source=current.source,
            run_id=current.run_id,
            tags={registry.MANIFEST_TAG: current.tags[registry.MANIFEST_TAG]},  # same files
        )
        client.set_registered_model_alias(MODEL, "champion", new.version)
        try:
            wait_until(lambda: http.get("/model").json()["version"] == str(new.version), 30)
            after = http.post("/predict", json=body).json()
            again = http.post("/predict", json=body).json()
        finally:  # the promoted champion again: later tests (the page's model card) expect it
            client.set_registered_model_alias(MODEL, "champion", current.version)
            wait_until(lambda: http.get("/model").json()["version"] == str(current.version), 30)
    assert after["model_version"] == str(new.version) and after["cached"] is False
    assert again["cached"] is True
    assert _replica_actors("Model") == replicas  # reloaded in place, not restarted


def _register_files(client: Any, current: Any, predictor_dir: Path) -> str:
    """A new version of the champion's model from these predictor files, its manifest recorded."""
    import mlflow

    from soccerpredict.models.pyfunc import OutcomeModel

    with mlflow.start_run(experiment_id=client.get_run(current.run_id).info.experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=OutcomeModel(),
            artifacts={"predictor": str(predictor_dir)},
            registered_model_name=MODEL,
            pip_requirements=[],
        )
    version = str(info.registered_model_version)
    registry.record_manifest(client, MODEL, version, predictor_dir)
    return version


def _refused_while_the_old_one_serves(
    app: App, key: str, client: Any, current: Any, version: str
) -> str:
    """Make `version` the champion; the app must refuse it and keep answering with the current
    one. Returns the reason it gives; the alias goes back whatever happens."""
    client.set_registered_model_alias(MODEL, "champion", version)
    try:
        with app.client(key) as http:
            wait_until(lambda: version in http.get("/model").json()["refused_versions"], 30)
            model = http.get("/model").json()
            answer = http.post("/predict", json=_fixture(app))
        assert model["version"] == str(current.version)
        assert answer.status_code == 200 and answer.json()["model_version"] == str(current.version)
        return str(model["refused_versions"][version])
    finally:
        client.set_registered_model_alias(MODEL, "champion", current.version)


def test_a_model_with_another_feature_contract_is_refused_and_the_old_one_serves(
    app: App, key: str, tmp_path: Path
) -> None:
    client = _registry(app)
    current = client.get_model_version_by_alias(MODEL, "champion")
    predictor = registry.load_predictor(client, MODEL, str(current.version))
    predictor.contract = {"schema_version": "0", "columns": FEATURE_COLUMNS[:-1]}
    predictor.save(tmp_path / "predictor")
    wrong = _register_files(client, current, tmp_path / "predictor")
    assert "schema" in _refused_while_the_old_one_serves(app, key, client, current, wrong)


def test_a_version_with_tampered_artifacts_is_refused_and_the_old_one_serves(
    app: App, key: str, tmp_path: Path
) -> None:
    """Its booster swapped for a pickle in the artifact store after registration: the hash
    recorded at registration no longer matches, so the version is refused before any load."""
    import pickle

    client = _registry(app)
    current = client.get_model_version_by_alias(MODEL, "champion")
    registry.load_predictor(client, MODEL, str(current.version)).save(tmp_path / "predictor")
    tampered = _register_files(client, current, tmp_path / "predictor")
    stored = client.get_model_version_download_uri(MODEL, tampered).removeprefix("file://")
    booster = Path(stored) / "artifacts/predictor/ratings_only/booster.ubj"
    booster.write_bytes(pickle.dumps({"not": "a booster"}))
    reason = _refused_while_the_old_one_serves(app, key, client, current, tampered)
    assert "ratings_only/booster.ubj has sha256" in reason


# ------------------------------------------------------------------------------ the schema


def test_openapi_describes_the_routes_and_their_answers(app: App, key: str) -> None:
    import jsonschema

    schema = httpx.get(f"{app.url}/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/predict",
        "/predict/batch",
        "/predict/async",
        "/predict/async/{job_id}",
        "/predict/{match_id}",
        "/model",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    assert paths["/predict/async"]["post"]["responses"].get("202")
    assert "422" in paths["/predict"]["post"]["responses"]
    components = schema["components"]["schemas"]
    with app.client(key) as http:
        answer = http.post("/predict", json=_fixture(app)).json()
        problem = http.post("/predict", json=_fixture(app, home_team="Nobody FC")).json()
    resolver = {"components": schema["components"]}
    for value, name in ((answer, "Prediction"), (problem, "Problem")):
        jsonschema.validate(value, components[name] | resolver)


def test_through_serve_a_large_body_is_413_and_a_wrong_method_405_with_allow(
    app: App, key: str
) -> None:
    with app.client(key) as http:
        big = http.post(
            "/predict/batch",
            content=b"x" * 2_000_000,
            headers={"content-type": "application/json"},
        )
        wrong = http.delete("/predict")
        health = http.get("/healthz")
    assert big.status_code == 413 and "bytes" in big.json()["detail"]
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert health.status_code == 200 and health.json()["can_serve"] is True


# ------------------------------------------------------------------------------ Redis outage


def test_without_redis_predictions_are_served_uncached_and_the_outage_counted(
    app: App, key: str
) -> None:
    body = _fixture(app, kickoff="2020-06-13")
    for proc in (app.redis, app.cache_redis):
        proc.terminate()
        proc.wait()
    try:
        with app.client(key) as http:
            first = http.post("/predict", json=body)
            second = http.post("/predict", json=body)
            refused = http.post("/predict/async", json=body)
            assert first.status_code == second.status_code == 200
            assert not first.json()["cached"] and not second.json()["cached"]
            assert refused.status_code == 503 and "Redis" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) >= 1  # retryable: says when
            health = http.get("/healthz")  # predictions still work: the replica can serve
            assert health.status_code == 200 and health.json()["redis"] is False
            wait_until(
                lambda: "ray_soccerpredict_redis_errors_total{" in http.get("/metrics").text, 30
            )
    finally:
        app.redis = start_redis(app.redis_port, app.work / "redis-state", "state")
        app.cache_redis = start_redis(app.cache_port, app.work / "redis-cache", "cache")
    with app.client(key) as http:  # back: the first success closes the breaker
        wait_until(lambda: http.get("/healthz").json()["redis"], 10)
        wait_until(lambda: http.post("/predict", json=body).json()["cached"], 30)


# ------------------------------------------------------------------------------ addresses


def _listening() -> list[tuple[str, str, int]]:
    """(process, address, port) of every listening TCP socket of this test run's processes:
    the Ray it started (its workers are the Serve replicas), `serve run`, Redis."""
    import psutil

    me = psutil.Process()
    out = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            name = " ".join(proc.cmdline()[:1]) or proc.name()
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    out.append((name, conn.laddr.ip, conn.laddr.port))
        except psutil.NoSuchProcess:
            continue
    return out


def test_every_socket_listens_on_loopback_and_the_proxy_answers_clients(app: App) -> None:
    with app.client() as http:  # the app is up
        assert http.get("/healthz").status_code == 200
    # every Ingress replica has bound its own server (the second may start after the first)
    wait_until(lambda: len(_ingress_ports()) == len(_replica_actors("Ingress")), 60)
    listening = _listening()
    replicas = [s for s in listening if "ServeReplica:soccerpredict" in s[0]]
    # each replica: its inter-deployment gRPC server and Ray's own worker port, at least
    assert len({s[0] for s in replicas}) >= 2 and len(replicas) >= 4
    # the front: HAProxy's one socket (no stats page, no admin socket), where clients call
    front = [s for s in listening if "haproxy" in s[0]]
    assert [s[1:] for s in front] == [("127.0.0.1", app.front_port)]
    # each Ingress replica's own server, in this run's direct-ingress range, on loopback
    ports = direct_ingress_ports(dict(os.environ))
    own = [s[1] for s in replicas if "Ingress" in s[0] and s[2] in ports]
    assert own == ["127.0.0.1"] * len(_replica_actors("Ingress"))
    loopback = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}
    assert any(s[2] == app.proxy_port and "ProxyActor" in s[0] for s in listening)
    assert [s for s in listening if s[1] not in loopback] == []


def _ingress_ports() -> set[int]:
    ports = direct_ingress_ports(dict(os.environ))
    found = [s[2] for s in _listening() if "ServeReplica:soccerpredict:Ingress" in s[0]]
    return {p for p in found if p in ports}


def test_the_front_keeps_answering_when_an_ingress_replica_is_killed(app: App, key: str) -> None:
    import ray

    with app.client(key) as http:
        assert http.post("/predict", json=_fixture(app)).status_code == 200
        before = _ingress_ports()
        replicas = _replica_actors("Ingress")
        assert len(before) == len(replicas) == 2  # conf/serve.yaml
        old = replicas[0]
        ray.kill(ray.get_actor(old, namespace="serve"), no_restart=True)
        # the same address throughout: the other replica answers (the front retries a request
        # the killed one dropped), and the replacement on another port of the range is found
        # by the front's health checks
        statuses: list[int] = []
        after: set[int] = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                statuses.append(http.get("/healthz", timeout=10).status_code)
            except httpx.HTTPError:
                statuses.append(0)
            after = _ingress_ports()
            now = _replica_actors("Ingress")
            if len(now) == 2 and old not in now and len(after) == 2 and after != before:
                break
            time.sleep(0.2)
        assert set(statuses) == {200}, statuses  # nothing lost: the other replica took them
        assert len(after) == 2 and after != before  # a new replica, on another port
        time.sleep(2.5)  # the old port marked down, the new one up
        answers = [http.post("/predict", json=_fixture(app)).status_code for _ in range(5)]
    assert answers == [200] * 5
