"""The HTTP face of the app: FastAPI behind `@serve.ingress`.

The hot path is one hop at most. The Features component lives in each Ingress replica: the
vector of a fixture costs 0.1 ms, a hop to another deployment 1.7 ms (benchmarks/). The ingress
then reads the served model version and the cached answer from Redis in one round trip; only a
miss goes on to the Model deployment. Auth, rate limits and request metrics are a middleware;
`/healthz`, `/metrics`, the OpenAPI documents and the page for people (`/`, `/static/`, its
read routes in `serve_app.web` need the key) are open.

No `from __future__ import annotations` here: FastAPI reads the route signatures at runtime.
"""

import asyncio
import json
import logging
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from ray import serve
from starlette.exceptions import HTTPException

from serve_app.keys import KeyStore
from serve_app.metrics import AppMetrics, merge_exposition
from serve_app.monitor import PredictionLog, ReportGauges, log_entry
from serve_app.redis_state import RedisState, features_hash
from serve_app.schemas import (
    BatchIn,
    BatchOut,
    FixtureIn,
    JobAccepted,
    JobStatus,
    ModelInfo,
    Prediction,
    Probabilities,
    Problem,
    UpcomingPrediction,
)
from serve_app.services import FeatureService, UpcomingPredictions
from serve_app.web import WebData, router, upcoming_prediction
from soccerpredict.config import ServingConf
from soccerpredict.features.online import Fixture, FixtureError
from soccerpredict.metrics.implied import fair_odds

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs
OPEN_PATHS = {"/healthz", "/metrics", "/docs", "/redoc", "/openapi.json"}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 404, 413, 422, 429, 503)}

api = FastAPI(title="SoccerPredict", version="1",
              description="Home / draw / away probabilities for soccer fixtures. Send your key in "
                          "`X-API-Key`; `/healthz`, `/metrics` and the page at `/` are open.")


class Refused(Exception):
    """A request answered with a 4xx/5xx Problem."""

    def __init__(self, status: int, detail: str, field: str | None = None,
                 suggestions: list[str] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.headers = status, headers
        self.problem = Problem(detail=detail, field=field, suggestions=suggestions or [])


def _problem(status: int, problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.model_dump(), status_code=status, headers=headers)


@api.exception_handler(Refused)
async def _refused(_: Request, err: Refused) -> JSONResponse:
    return _problem(err.status, err.problem, err.headers)


@api.exception_handler(RequestValidationError)
async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
    def place(loc: tuple[Any, ...]) -> str:
        names = [str(p) for p in loc if p != "body" and not isinstance(p, int)]
        return ".".join(names) or "body"

    reasons = "; ".join(f"{place(e['loc'])}: {e['msg']}" for e in err.errors())
    field = place(err.errors()[0]["loc"]) if err.errors() else None
    return _problem(422, Problem(detail=reasons or "invalid request", field=field))


@api.exception_handler(HTTPException)
async def _http(_: Request, err: HTTPException) -> JSONResponse:
    return _problem(err.status_code, Problem(detail=str(err.detail)))


class Guard:
    """API key, per-key rate limit, and the request metrics of every route.

    A plain ASGI middleware: Starlette's `BaseHTTPMiddleware` runs each request through an extra
    task and memory stream, a cost paid on every request of the hot path.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        ingress: Ingress = scope["app"].state.ingress  # the replica's app, not this module's

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if not _is_open(scope["path"]):
                key = dict(scope["headers"]).get(b"x-api-key")
                await ingress.admit(key.decode("latin-1") if key else None)
            await self.app(scope, receive, send_and_note)
        except Refused as err:
            await _problem(err.status, err.problem, err.headers)(scope, receive, send_and_note)
        route = getattr(scope.get("route"), "path", "unmatched")
        ingress.record(route, scope["method"], status, time.perf_counter() - started)


api.add_middleware(Guard)
api.include_router(router)  # the page at / and its read routes (serve_app/web.py)


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == "/" or path.startswith("/static/")


def _prediction(fixture: Fixture, answer: dict[str, Any], cached: bool) -> Prediction:
    probs = answer["probabilities"]
    fair = fair_odds(probs)
    return Prediction(league=fixture.league, home_team=fixture.home_team,
                      away_team=fixture.away_team, kickoff=fixture.kickoff,
                      probabilities=Probabilities(home=probs[0], draw=probs[1], away=probs[2]),
                      fair_odds=Probabilities(home=fair[0], draw=fair[1], away=fair[2]),
                      model_version=answer["model_version"], cached=cached)


# Helpers the routes use are defined above the class: @serve.ingress captures it as it stands.
def _cluster_metrics() -> str:
    """Every alive node's Ray metrics agent, merged (the app's replicas may be on any node)."""
    import httpx
    import ray

    texts = []
    for node in ray.nodes():
        if node.get("Alive") and node.get("MetricsExportPort"):
            url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
            try:
                texts.append(httpx.get(url, timeout=2.0).text)
            except httpx.HTTPError as err:
                log.warning("metrics of node %s unreachable: %s", node["NodeManagerAddress"], err)
    return merge_exposition(texts)


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.25})
@serve.ingress(api)
class Ingress:
    def __init__(self, model: Any, serving: dict[str, Any], team_state_path: str,
                 predictions_path: str, reports: dict[str, str], model_alias: str = "champion"
                 ) -> None:
        self.model, self.alias = model, model_alias
        self.conf = ServingConf.model_validate(serving)
        self.metrics = AppMetrics()
        self.features = FeatureService(Path(team_state_path), self.conf.reload_interval_s,
                                       self.conf.max_horizon_days)
        self.redis = RedisState(self.conf.redis_url, on_error=self._redis_failed)
        self.keys = KeyStore(self.conf.api_keys_file)
        self.upcoming = UpcomingPredictions(predictions_path, self.conf.reload_interval_s)
        self.served_log = PredictionLog()
        self.gauges = ReportGauges(self.metrics, Path(reports["drift"]), Path(reports["quality"]),
                                   self.conf.reload_interval_s)
        self.web = WebData(self.features, self.upcoming, self.model, self.gauges.drift,
                           Path(reports["promotion"]), self.conf.reload_interval_s)
        self.replica = serve.get_replica_context().replica_tag
        self.metrics.replica_up.set(1.0, tags={"deployment": "Ingress", "replica": self.replica})
        self._local_hits: dict[tuple[str, int], int] = {}
        self._jobs: set[asyncio.Task[None]] = set()
        self._housekeeping: asyncio.Task[None] | None = None
        api.state.ingress = self

    # ---------------------------------------------------------------- housekeeping
    async def check_health(self) -> None:
        """Serve calls this every few seconds: it also keeps the housekeeping task alive."""
        self.ensure_housekeeping()

    def ensure_housekeeping(self) -> None:
        if self._housekeeping is None or self._housekeeping.done():
            self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep())

    async def _housekeep(self) -> None:
        """Once a second: send the served-prediction log, refresh the report gauges; every 5 s
        set the gauges again (Ray drops a gauge from its export ~20 s after its last set)."""
        tick = 0
        while True:
            await self.served_log.flush(self.redis)
            self.gauges.refresh()
            if tick % 5 == 0:
                self.metrics.republish()
            tick += 1
            await asyncio.sleep(1.0)

    # ---------------------------------------------------------------- guard
    def _redis_failed(self, operation: str, err: Exception) -> None:
        self.metrics.redis_errors.inc(tags={"operation": operation})

    async def admit(self, presented: str | None) -> None:
        key_id = self.keys.verify(presented)
        if key_id is None:
            self.metrics.rejected.inc(tags={"reason": "auth"})
            raise Refused(401, "missing or invalid API key (send it in X-API-Key)", "X-API-Key")
        hits = await self.redis.hits_this_minute(key_id)
        if hits is None:  # Redis down: limit per replica rather than not at all
            minute = int(time.time() // 60)
            hits = self._local_hits[(key_id, minute)] = self._local_hits.get((key_id, minute), 0) + 1
            self._local_hits = {k: v for k, v in self._local_hits.items() if k[1] >= minute}
        if hits > self.conf.rate_limit_per_minute:
            self.metrics.rejected.inc(tags={"reason": "rate_limit"})
            raise Refused(429, f"rate limit of {self.conf.rate_limit_per_minute} requests per "
                          "minute exceeded", headers={"Retry-After": str(60 - int(time.time()) % 60)})

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        self.metrics.requests.inc(tags={"route": route, "method": method, "status": str(status)})
        self.metrics.latency.observe(seconds, tags={"route": route})

    # ---------------------------------------------------------------- the prediction path
    def _vectors(self, fixtures: list[Fixture]) -> tuple[list[Any], date]:
        """Each fixture's feature vector and the `as_of` of the team state that built them (one
        state for all: a reload in between cannot mix them); an unanswerable fixture is a 422."""
        state = self.features.current()
        for fixture in fixtures:
            try:
                state.check(fixture, self.features.max_horizon_days)
            except FixtureError as err:
                raise Refused(422, err.message, err.field, err.suggestions) from None
        return list(state.feature_matrix(fixtures)), state.as_of

    async def _answers(self, vectors: list[Any]) -> list[tuple[dict[str, Any], bool]]:
        """Each vector's model answer and whether the cache gave it."""
        hashes = [features_hash(v) for v in vectors]
        _, cached = await self.redis.lookup(self.alias, hashes)
        misses = [i for i, c in enumerate(cached) if c is None]
        for result, count in (("hit", len(vectors) - len(misses)), ("miss", len(misses))):
            if count:
                self.metrics.cache.inc(count, tags={"result": result})
        fresh: list[dict[str, Any]] = []
        if len(misses) == 1:
            fresh = [await self.model.predict.remote(vectors[misses[0]])]
        elif misses:
            import numpy as np

            fresh = await self.model.predict_many.remote(np.vstack([vectors[i] for i in misses]))
        out: list[tuple[dict[str, Any], bool]] = [(c, True) if c else ({}, False) for c in cached]
        to_cache = {}
        for i, answer in zip(misses, fresh, strict=True):
            out[i] = (answer, False)
            to_cache[RedisState.prediction_key(answer["model_version"], hashes[i])] = answer
        await self.redis.set_predictions(to_cache, self.conf.cache_ttl_s)
        return out

    async def _predict(self, fixtures: list[Fixture], mode: str) -> list[Prediction]:
        vectors, as_of = self._vectors(fixtures)
        answers = await self._answers(vectors)
        self.metrics.predictions.inc(len(fixtures), tags={"mode": mode})
        self._log(fixtures, [a for a, _ in answers], mode, as_of)
        return [_prediction(f, a, hit) for f, (a, hit) in zip(fixtures, answers, strict=True)]

    def _log(self, fixtures: list[Fixture], answers: list[dict[str, Any]], mode: str,
             as_of: date) -> None:
        """`as_of`: what the features knew (scoring keeps only predictions made before kickoff)."""
        self.served_log.add([log_entry(f, a["probabilities"], a["model_version"], mode, as_of)
                             for f, a in zip(fixtures, answers, strict=True)])
        self.ensure_housekeeping()

    # ---------------------------------------------------------------- routes
    @api.post("/predict", response_model=Prediction, responses=ERRORS,
              summary="Probabilities for one fixture")
    async def predict(self, body: FixtureIn) -> Prediction:
        return (await self._predict([body.fixture()], "sync"))[0]

    @api.post("/predict/batch", response_model=BatchOut, responses=ERRORS,
              summary="Probabilities for several fixtures in one call")
    async def predict_batch(self, body: BatchIn) -> BatchOut:
        if len(body.fixtures) > self.conf.max_batch_fixtures:
            raise Refused(413, f"{len(body.fixtures)} fixtures in one call; at most "
                          f"{self.conf.max_batch_fixtures}", "fixtures")
        return BatchOut(predictions=await self._predict([f.fixture() for f in body.fixtures],
                                                        "batch"))

    @api.post("/predict/async", response_model=JobAccepted, status_code=202, responses=ERRORS,
              summary="Submit a fixture; poll its status")
    async def predict_async(self, body: FixtureIn) -> JobAccepted:
        fixture = body.fixture()
        vectors, as_of = self._vectors([fixture])  # bad input: a 422 now, not a failed job
        job_id = uuid.uuid4().hex
        if not await self.redis.create_job(job_id, self.conf.job_ttl_s, self.conf.async_timeout_s):
            raise Refused(503, "async jobs need Redis, which is unreachable; POST /predict works")
        task = asyncio.get_running_loop().create_task(self._run_job(job_id, fixture, vectors[0],
                                                                    as_of))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        self.metrics.async_in_flight.set(len(self._jobs), tags={"replica": self.replica})
        return JobAccepted(job_id=job_id, status_url=f"/predict/async/{job_id}")

    async def _run_job(self, job_id: str, fixture: Fixture, vector: Any, as_of: date) -> None:
        try:
            answer, hit = (await self._answers([vector]))[0]
            self._log([fixture], [answer], "async", as_of)
            payload = _prediction(fixture, answer, hit).model_dump(mode="json")
            finished = await self.redis.finish_job(job_id, "done", payload)
            self.metrics.predictions.inc(tags={"mode": "async"})
            outcome = "done" if finished else "late"
        except Exception as err:  # noqa: BLE001 - any failure of the work is the job's reason
            log.warning("async job %s failed: %s", job_id, err)
            await self.redis.finish_job(job_id, "failed", {"reason": f"{type(err).__name__}: "
                                                                     f"{err}"})
            outcome = "failed"
        self.metrics.async_finished.inc(tags={"outcome": outcome})
        self.metrics.async_in_flight.set(len(self._jobs) - 1, tags={"replica": self.replica})

    @api.get("/predict/async/{job_id}", response_model=JobStatus, responses=ERRORS,
             summary="Status of an async job: pending, done with the result, or failed")
    async def job_status(self, job_id: str) -> JobStatus:
        if not self.redis.available:
            raise Refused(503, "job status lives in Redis, which is unreachable")
        job = await self.redis.get_job(job_id)
        if job is None:
            raise Refused(404, f"no job {job_id!r} (unknown, or expired after "
                          f"{self.conf.job_ttl_s} s)", "job_id")
        if job.get("timed_out"):
            self.metrics.async_finished.inc(tags={"outcome": "timed_out"})
        payload = json.loads(job["payload"]) if job.get("payload") else {}
        return JobStatus(job_id=job_id, status=job["status"], submitted_at=job["submitted_at"],
                         result=payload if job["status"] == "done" else None,
                         reason=payload.get("reason") if job["status"] == "failed" else None)

    @api.get("/predict/{match_id}", response_model=UpcomingPrediction, responses=ERRORS,
             summary="The batch prediction of an upcoming match")
    async def lookup(self, match_id: str) -> UpcomingPrediction:
        row = self.upcoming.get(match_id)
        if row is None:
            raise Refused(404, f"no batch prediction for match {match_id!r}; upcoming matches "
                          "are predicted by the batch_predict stage", "match_id")
        self.metrics.predictions.inc(tags={"mode": "lookup"})
        return upcoming_prediction(row)

    @api.get("/model", response_model=ModelInfo, responses=ERRORS,
             summary="The model being served: version, alias, contract, test metrics")
    async def model_info(self) -> ModelInfo:
        return ModelInfo.model_validate(await self.model.info.remote())

    @api.get("/healthz", summary="Liveness: open, no key needed")
    async def healthz(self) -> dict[str, Any]:
        return {"status": "ok", "redis": await self.redis.ping()}

    @api.get("/metrics", response_class=PlainTextResponse,
             summary="Prometheus text: the app's and Serve's metrics from every node")
    async def metrics_text(self) -> PlainTextResponse:
        return PlainTextResponse(await asyncio.to_thread(_cluster_metrics),
                                 media_type="text/plain; version=0.0.4")
