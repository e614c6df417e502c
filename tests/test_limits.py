"""What the probes of issue 16 found, each as a test of the app's routes (no Ray): body size,
methods and the schema, job ownership, a replica without team state, per-address and per-fixture
limits, the async backlog and its timeouts, the /metrics cache. Real Redis (both instances), a
real team state and real predictors, as in tests/test_ingress.py; a frozen or failing Model is
the real one behind a fault (as SIGSTOP or a crash would make it)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, cast

import numpy as np

from serve_app.served_model import ServedModel
from serve_app.settings import ServeSettings
from tests import test_ingress
from tests.test_ingress import BODY, Registry, deploy, run, tuned

# the app of tests/test_ingress.py: its registry, settings, key and an empty Redis per test
predictors = test_ingress.predictors
settings = test_ingress.settings
key = test_ingress.key
_empty_redis = test_ingress._empty_redis


class Frozen:
    """The Model, frozen until `thawed` is set; counts the calls cancelled while waiting."""

    def __init__(self, model: ServedModel) -> None:
        self.model, self.thawed, self.cancelled = model, asyncio.Event(), 0

    async def _wait(self) -> None:
        try:
            await self.thawed.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def predict_one(self, vector: np.ndarray) -> dict[str, Any]:
        await self._wait()
        return await self.model.predict_one(vector)

    async def predict_many(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        await self._wait()
        return await self.model.predict_many(matrix)

    async def info(self) -> dict[str, Any]:
        return await self.model.info()

    async def report_file(self, name: str) -> bytes | None:
        return await self.model.report_file(name)


class Broken(Frozen):
    """The Model failing with an internal error whose text must not reach a client."""

    async def _wait(self) -> None:
        raise ConnectionError("10.0.0.7:6379 refused; see /srv/app/secret.conf")


def _registry(predictors: Any) -> Registry:
    return Registry(predictors, {"champion": "1"})


async def _poll(app: Any, url: str, headers: dict[str, str]) -> dict[str, Any]:
    status: dict[str, Any] = {"status": "pending"}
    for _ in range(200):
        status = (await app.http.get(url, headers=headers)).json()
        if status["status"] != "pending":
            break
        await asyncio.sleep(0.02)
    return status


def test_a_body_over_the_limit_is_a_413_before_it_is_read(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors))
        headers = {"X-API-Key": key, "content-type": "application/json"}
        big = json.dumps({"fixtures": [BODY] * 100}).encode()  # > 4096 bytes
        declared = await app.http.post("/predict/batch", content=big, headers=headers)
        assert declared.status_code == 413 and "4096 bytes" in declared.json()["detail"]
        sent: list[int] = []

        async def stream() -> Any:  # no Content-Length: counted as it arrives
            for i in range(0, len(big), 1000):
                sent.append(i)
                yield big[i : i + 1000]

        streamed = await app.http.post("/predict/batch", content=stream(), headers=headers)
        assert streamed.status_code == 413 and streamed.json()["field"] == "body"
        small = await app.http.post("/predict", json=BODY, headers={"X-API-Key": key})
        assert small.status_code == 200

    run(scenario)


def test_an_undeclared_method_is_a_405_that_says_what_is_allowed(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors))
        answer = await app.http.delete("/predict", headers={"X-API-Key": key})
        assert answer.status_code == 405 and answer.headers["allow"] == "POST"
        assert "detail" in answer.json()

    run(scenario)


def test_the_schema_lists_every_status_a_route_answers(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors))
        headers = {"X-API-Key": key, "content-type": "application/json"}
        schema = (await app.http.get("/openapi.json")).json()
        not_utf8 = await app.http.post("/predict", content=b'{"league": "\xff"}', headers=headers)
        bad_query = await app.http.get("/fixtures?days=nope", headers=headers)
        responses = schema["paths"]["/predict"]["post"]["responses"]
        assert str(not_utf8.status_code) in responses and not_utf8.status_code < 500
        assert {"400", "401", "413", "422", "429", "503"} <= set(responses)
        fixtures = schema["paths"]["/fixtures"]["get"]["responses"]
        if bad_query.status_code == 422:  # the Problem body, as the schema now says
            assert fixtures["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
                "/Problem"
            ) and set(bad_query.json()) >= {"detail", "field"}
        health = schema["paths"]["/healthz"]["get"]["responses"]
        assert {"200", "503"} <= set(health)
        assert (await app.http.get("/docs", headers=headers)).status_code == 404  # no CDN page

    run(scenario)


def test_a_refused_metrics_scrape_is_documented_as_the_json_it_is(
    settings: ServeSettings, predictors: Any
) -> None:
    """schemathesis (the reliability suite): /metrics's 429 came as JSON, documented text/plain."""
    limited = tuned(settings, address_rate_per_minute=1)

    async def scenario() -> None:
        app = await deploy(limited, _registry(predictors))
        answers = [await app.http.get("/metrics") for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 429]
        sent = answers[1].headers["content-type"].split(";")[0]
        unlimited = await deploy(settings, _registry(predictors))
        schema = (await unlimited.http.get("/openapi.json")).json()
        documented = schema["paths"]["/metrics"]["get"]["responses"]["429"]["content"]
        assert set(documented) == {sent} == {"application/json"}
        assert documented[sent]["schema"]["$ref"].endswith("/Problem")

    run(scenario)


def test_numbers_and_dates_of_another_json_type_are_refused_as_the_schema_says(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    """schemathesis (the reliability suite): `"line": false` was taken as 0 (a 200 for a body
    the schema refuses); a price as text or a kickoff as a number the same."""
    prices = {"home": 2.1, "draw": 3.5, "away": 3.4}
    bodies = [
        BODY | {"asian_handicap": {"line": False, "home": 1.95, "away": 1.93}},
        BODY | {"odds": prices | {"home": "2.1"}},
        BODY | {"over_under_25": {"over": True, "under": 2.05}},
        BODY | {"kickoff": 1651881600},  # 2022-05-07 as a Unix time
    ]

    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors))
        headers = {"X-API-Key": key}
        fine = await app.http.post("/predict", json=BODY | {"odds": prices}, headers=headers)
        assert fine.status_code == 200
        for body in bodies:
            answer = await app.http.post("/predict", json=body, headers=headers)
            assert answer.status_code == 422, (body, answer.text)

    run(scenario)


def test_a_job_is_read_only_with_its_key_and_a_failure_tells_no_internals(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    from serve_app.keys import KeyStore

    other = KeyStore(settings.serving.api_keys_file).create("someone else")[1]
    settings = tuned(settings, rate_limit_per_minute=500)

    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors))
        mine = (await app.http.post("/predict/async", json=BODY, headers={"X-API-Key": key})).json()
        done = await _poll(app, mine["status_url"], {"X-API-Key": key})
        assert done["status"] == "done"
        theirs = await app.http.get(mine["status_url"], headers={"X-API-Key": other})
        assert theirs.status_code == 404 and "result" not in theirs.json()

        broken = await deploy(settings, _registry(predictors), faults=Broken)  # type: ignore[arg-type]
        job = await broken.http.post(
            "/predict/async", json=BODY | {"away_team": "Bees"}, headers={"X-API-Key": key}
        )
        failed = await _poll(broken, job.json()["status_url"], {"X-API-Key": key})
        assert failed["status"] == "failed" and job.json()["job_id"] in failed["reason"]
        assert not any(s in failed["reason"] for s in ("10.0.0.7", "secret", "ConnectionError"))

    run(scenario)


def test_a_replica_without_team_state_answers_503_and_says_it_cannot_serve(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    settings.team_state.unlink()  # as an interrupted `dvc repro -f features` left it

    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors))
        answer = await app.http.post("/predict", json=BODY, headers={"X-API-Key": key})
        assert answer.status_code == 503 and "team state" in answer.json()["detail"]
        assert "retry-after" in answer.headers
        health = await app.http.get("/healthz")
        assert health.status_code == 503 and health.json()["can_serve"] is False
        assert "team_state.json" in health.json()["reasons"][0]

    run(scenario)


def test_a_flood_from_one_address_is_refused_before_keys_and_others_are_served(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    limited = tuned(settings, address_rate_per_minute=3)

    async def scenario() -> None:
        flood = await deploy(limited, _registry(predictors), client=("127.0.0.2", 5000))
        codes = [(await flood.http.post("/predict", json=BODY)).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]  # refused without a key check
        served = await deploy(limited, _registry(predictors), client=("127.0.0.1", 5000))
        served.ingress._by_address = flood.ingress._by_address  # one replica's memory
        ok = await served.http.post("/predict", json=BODY, headers={"X-API-Key": key})
        assert ok.status_code == 200
        spoofed = await flood.http.get("/healthz", headers={"X-Forwarded-For": "10.9.9.9"})
        assert spoofed.status_code == 429  # no header is trusted unless configured

    run(scenario)


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(
    settings: ServeSettings, predictors: Any
) -> None:
    behind = tuned(
        settings,
        address_rate_per_minute=2,
        forwarded_header="X-Forwarded-For",
        trusted_proxies=["127.0.0.1"],
    )

    async def scenario() -> None:
        proxy = await deploy(behind, _registry(predictors), client=("127.0.0.1", 5000))
        for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            headers = {"X-Forwarded-For": f"6.6.6.6, {client}"}  # the proxy's own hop last
            codes = [(await proxy.http.get("/healthz", headers=headers)).status_code]
            codes.append((await proxy.http.get("/healthz", headers=headers)).status_code)
            assert codes == [200, 200], client  # each client has its own allowance
        assert (await proxy.http.get("/healthz", headers=headers)).status_code == 429

    run(scenario)


def test_a_batch_spends_one_allowance_per_fixture(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors))  # 5 a minute, batches of 3
        headers = {"X-API-Key": key}
        first = await app.http.post(
            "/predict/batch", json={"fixtures": [BODY] * 3}, headers=headers
        )
        second = await app.http.post(
            "/predict/batch", json={"fixtures": [BODY] * 3}, headers=headers
        )
        assert first.status_code == 200 and second.status_code == 429
        assert "fixtures per minute" in second.json()["detail"] and "retry-after" in second.headers

    run(scenario)


def test_the_async_backlog_is_bounded_and_stuck_work_is_cancelled_and_failed(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    bounded = tuned(settings, async_backlog=2, async_timeout_s=0.5, rate_limit_per_minute=50)

    async def scenario() -> None:
        app = await deploy(bounded, _registry(predictors), faults=Frozen)
        frozen = cast(Frozen, app.ingress.model)  # what the Ingress calls for async work
        headers = {"X-API-Key": key}
        days = ["2022-05-01", "2022-05-02", "2022-05-03"]
        answers = [
            await app.http.post("/predict/async", json=BODY | {"kickoff": d}, headers=headers)
            for d in days
        ]
        assert [a.status_code for a in answers] == [202, 202, 503]
        assert answers[2].headers["retry-after"] == "1" and "in flight" in answers[2].text
        await asyncio.sleep(1.0)  # past the timeout: the work is cancelled, the job failed
        jobs = [
            (await app.http.get(a.json()["status_url"], headers=headers)).json()
            for a in answers[:2]
        ]
        assert [j["status"] for j in jobs] == ["failed", "failed"]
        assert all("within 0.5 s" in j["reason"] for j in jobs) and frozen.cancelled == 2
        frozen.thawed.set()
        again = await app.http.post("/predict/async", json=BODY, headers=headers)
        assert again.status_code == 202  # the slots were freed
        assert (await _poll(app, again.json()["status_url"], headers))["status"] == "done"

    run(scenario)


def test_concurrent_async_posts_take_no_more_than_the_backlog(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    """The reliability probe's flood (c=32) had 261 jobs accepted with a backlog of 256: posts
    that arrive while others wait on Redis must count against it too."""
    bounded = tuned(settings, async_backlog=2, async_timeout_s=5, rate_limit_per_minute=50)

    async def scenario() -> None:
        app = await deploy(bounded, _registry(predictors), faults=Frozen)
        frozen = cast(Frozen, app.ingress.model)  # what the Ingress calls for async work
        headers = {"X-API-Key": key}
        days = [f"2022-05-0{d}" for d in range(1, 7)]
        answers = await asyncio.gather(
            *[
                app.http.post("/predict/async", json=BODY | {"kickoff": d}, headers=headers)
                for d in days
            ]
        )
        assert sorted(a.status_code for a in answers) == [202, 202, 503, 503, 503, 503]
        frozen.thawed.set()
        done = [a for a in answers if a.status_code == 202]
        for a in done:
            assert (await _poll(app, a.json()["status_url"], headers))["status"] == "done"

    run(scenario)


def test_a_flood_of_metrics_scrapes_gathers_once(settings: ServeSettings, predictors: Any) -> None:
    gathered: list[float] = []
    lock = threading.Lock()

    def cluster_metrics() -> str:  # the agents' text, slow as it is under load
        with lock:
            gathered.append(time.monotonic())
        time.sleep(0.2)
        return "ray_soccerpredict_x 1\n"

    async def scenario() -> None:
        app = await deploy(settings, _registry(predictors), cluster_metrics=cluster_metrics)
        answers = await asyncio.gather(*[app.http.get("/metrics") for _ in range(30)])
        assert {a.status_code for a in answers} == {200}
        assert {a.text for a in answers} == {"ray_soccerpredict_x 1\n"} and len(gathered) == 1

    run(scenario)


def test_without_the_state_redis_async_is_a_503_that_says_when_to_retry(
    settings: ServeSettings, predictors: Any, key: str
) -> None:
    from serve_app.local import free_port

    gone = tuned(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")

    async def scenario() -> None:
        app = await deploy(gone, _registry(predictors))
        headers = {"X-API-Key": key}
        served = await app.http.post("/predict", json=BODY, headers=headers)
        refused = await app.http.post("/predict/async", json=BODY, headers=headers)
        assert served.status_code == 200  # the key's limit counted in this replica meanwhile
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"

    run(scenario)
