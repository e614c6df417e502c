"""What the app's front door does, without Serve or HTTP: admit a key, build the feature vectors,
answer from the cache or the model, log what was served, run async jobs.

The hot path has no hop. The Features component and, for `POST /predict`, a model (`local`)
live in each Ingress replica: the vector of a fixture costs 0.1 ms, a hop to another deployment
1.7 ms (benchmarks/). The ingress reads the served model version and the cached answer from
Redis in one round trip; only a miss goes on to the model, and its answer is written to the
cache without waiting for Redis. Async jobs and batches go to the Model deployment (`model`),
which batches requests across replicas and scales on its own. The routes (`serve_app.api`) and
the Serve deployment (`serve_app.deployments`) are thin layers over this class; every
collaborator is handed in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np

from serve_app.keys import KeyStore
from serve_app.limits import SlidingWindow, over_address_limit, retry_after
from serve_app.metrics import AppMetrics
from serve_app.monitor import PredictionLog, ReportGauges, log_entry
from serve_app.redis_state import RedisState, features_hash
from serve_app.schemas import (
    BatchIn,
    BatchOut,
    FixtureIn,
    Health,
    JobAccepted,
    JobStatus,
    ModelInfo,
    Prediction,
    Probabilities,
    Problem,
    UpcomingPrediction,
)
from serve_app.served_model import ModelClient
from serve_app.services import FeatureService, NotReady, UpcomingPredictions
from serve_app.settings import ServeSettings
from serve_app.web import WebData, upcoming_prediction
from soccerpredict.features.online import Fixture, FixtureError
from soccerpredict.metrics.implied import fair_odds
from soccerpredict.models.predictor import league_code

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs
Clock = Callable[[], float]  # seconds since the epoch: rate-limit windows, Retry-After
RATE_WINDOW_S = 60.0  # the limits are per minute: `rate_limit_per_minute`, `address_rate_...`


class Refused(Exception):
    """A request answered with a 4xx/5xx Problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        field: str | None = None,
        suggestions: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.headers = status, headers
        self.problem = Problem(detail=detail, field=field, suggestions=suggestions or [])


def prediction(
    fixture: Fixture, answer: dict[str, Any], cached: bool, data_ends: date | None = None
) -> Prediction:
    """The answer; `data_ends`, the league's latest result, says how old its ratings are."""
    probs = answer["probabilities"]
    fair = fair_odds(probs)
    return Prediction(
        league=fixture.league,
        home_team=fixture.home_team,
        away_team=fixture.away_team,
        kickoff=fixture.kickoff,
        probabilities=Probabilities(home=probs[0], draw=probs[1], away=probs[2]),
        fair_odds=Probabilities(home=fair[0], draw=fair[1], away=fair[2]),
        model_version=answer["model_version"],
        forecaster=answer.get("forecaster", ""),
        cached=cached,
        data_ends=data_ends,
        data_age_days=None if data_ends is None else (fixture.kickoff - data_ends).days,
    )


class Ingress:
    def __init__(
        self,
        model: ModelClient,
        settings: ServeSettings,
        *,
        features: FeatureService,
        redis: RedisState,
        keys: KeyStore,
        upcoming: UpcomingPredictions,
        metrics: AppMetrics,
        clock: Clock = time.time,
        replica: str = "local",
        local: ModelClient | None = None,
    ) -> None:
        # `local` answers the sync route and /model in this process; `model` takes the rest
        self.model, self.local = model, local or model
        self.settings, self.conf = settings, settings.serving
        self.features, self.redis, self.keys = features, redis, keys
        self.upcoming, self.metrics, self.clock, self.replica = upcoming, metrics, clock, replica
        interval = settings.reload_interval_s
        self.served_log = PredictionLog()
        self.gauges = ReportGauges(metrics, settings.drift_summary, settings.quality, interval)
        self.web = WebData(
            features, upcoming, self.local, self.gauges.drift, settings.promotion_history, interval
        )
        self.metrics.replica_up.set(1.0, tags={"deployment": "Ingress", "replica": replica})
        limit = self.conf.rate_limit_per_minute
        self._by_address = SlidingWindow(self.conf.address_rate_per_minute, RATE_WINDOW_S)
        self._by_key_locally = SlidingWindow(limit, RATE_WINDOW_S)  # while Redis is away
        self._jobs: set[asyncio.Task[None]] = set()
        self._admitting = 0  # async posts past the backlog check, not yet a job (Redis awaited)
        # cache writes nobody waits for, and their answers until Redis has them: a request
        # repeated within the write's round trip is still a hit on this replica
        self._writes: set[asyncio.Task[None]] = set()
        self._writing: dict[str, dict[str, Any]] = {}
        self._housekeeping: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        model: ModelClient,
        settings: ServeSettings,
        replica: str,
        clock: Clock = time.time,
        local: ModelClient | None = None,
        metrics: AppMetrics | None = None,
    ) -> Ingress:
        """The collaborators the app runs with, all from the one settings object."""
        metrics = metrics or AppMetrics()
        conf, interval = settings.serving, settings.reload_interval_s

        def redis_failed(operation: str, _: Exception) -> None:
            metrics.redis_errors.inc(tags={"operation": operation})

        return cls(
            model,
            settings,
            features=FeatureService(settings.team_state, interval, conf.max_horizon_days),
            redis=RedisState.from_conf(conf, on_error=redis_failed, clock=clock),
            keys=KeyStore(conf.api_keys_file),
            upcoming=UpcomingPredictions(settings.predictions, interval),
            metrics=metrics,
            clock=clock,
            replica=replica,
            local=local,
        )

    # ---------------------------------------------------------------- housekeeping
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
    def admit_address(self, address: str) -> None:
        """Every request, open routes too, before the key is looked at: a flood from one
        address is refused from memory, without a key check or a Redis trip."""
        wait = self._by_address.take(address, 1, self.clock())
        if wait is not None:
            self.metrics.rejected.inc(tags={"reason": "address_limit"})
            raise Refused(
                429,
                over_address_limit(self.conf.address_rate_per_minute, "a minute", address),
                headers=retry_after(wait),
            )

    async def admit(self, presented: str | None) -> str:
        """The key's id, once the key is valid and its window has room for this request."""
        key_id = self.keys.verify(presented)
        if key_id is None:
            self.metrics.rejected.inc(tags={"reason": "auth"})
            raise Refused(401, "missing or invalid API key (send it in X-API-Key)", "X-API-Key")
        await self.charge(key_id, 1)
        return key_id

    async def charge(self, key_id: str, fixtures: int) -> None:
        """Spend `fixtures` of the key's allowance over the last minute (a sliding window shared
        through Redis; per replica while Redis is away); over it, a 429 with Retry-After."""
        if fixtures <= 0:
            return
        limit = self.conf.rate_limit_per_minute
        wait = await self.redis.take(key_id, fixtures, limit, RATE_WINDOW_S)
        if wait is None:  # Redis down: limit per replica rather than not at all
            wait = self._by_key_locally.take(key_id, fixtures, self.clock()) or 0.0
        if wait > 0:
            self.metrics.rejected.inc(tags={"reason": "rate_limit"})
            raise Refused(
                429,
                f"rate limit of {limit} fixtures per minute exceeded"
                + (f" ({fixtures} in this request)" if fixtures > 1 else ""),
                headers=retry_after(wait),
            )

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
        matrix = state.feature_matrix(fixtures)
        codes = np.array([[league_code(f.league)] for f in fixtures], dtype=np.float64)
        # the league rides with the vector (SERVED_COLUMNS): it picks the tier, and two leagues'
        # fixtures with the same features are two cache entries
        return list(np.hstack([matrix, codes])), state.as_of

    async def _answers(
        self, vectors: list[Any], model: ModelClient
    ) -> list[tuple[dict[str, Any], bool]]:
        """Each vector's answer, from the cache or else from `model`, and whether the cache
        gave it. The misses are written to the cache in the background: the answer does not
        wait for Redis."""
        hashes = [features_hash(v) for v in vectors]
        version, cached = await self.redis.lookup(self.settings.alias, hashes)
        if self._writing and version is not None:
            cached = [
                c or self._writing.get(RedisState.prediction_key(version, h))
                for c, h in zip(cached, hashes, strict=True)
            ]
        misses = [i for i, c in enumerate(cached) if c is None]
        for result, count in (("hit", len(vectors) - len(misses)), ("miss", len(misses))):
            if count:
                self.metrics.cache.inc(count, tags={"result": result})
        fresh: list[dict[str, Any]] = []
        if len(misses) == 1:
            fresh = [await model.predict_one(vectors[misses[0]])]
        elif misses:
            fresh = await model.predict_many(np.vstack([vectors[i] for i in misses]))
        out: list[tuple[dict[str, Any], bool]] = [(c, True) if c else ({}, False) for c in cached]
        to_cache = {}
        for i, answer in zip(misses, fresh, strict=True):
            out[i] = (answer, False)
            to_cache[RedisState.prediction_key(answer["model_version"], hashes[i])] = answer
        if to_cache:
            self._write_in_background(to_cache)
        return out

    def _write_in_background(self, items: dict[str, dict[str, Any]]) -> None:
        self._writing.update(items)

        def written(task: asyncio.Task[None]) -> None:
            self._writes.discard(task)
            for key in items:
                self._writing.pop(key, None)

        write = asyncio.get_running_loop().create_task(
            self.redis.set_predictions(items, self.conf.cache_ttl_s)
        )
        self._writes.add(write)
        write.add_done_callback(written)

    async def _predict(
        self, fixtures: list[Fixture], mode: str, model: ModelClient
    ) -> list[Prediction]:
        vectors, as_of = self._vectors(fixtures)
        answers = await self._answers(vectors, model)
        self.metrics.predictions.inc(len(fixtures), tags={"mode": mode})
        self._log(fixtures, [a for a, _ in answers], mode, as_of)
        ends = self._data_ends(fixtures)
        return [
            prediction(f, a, hit, end)
            for f, (a, hit), end in zip(fixtures, answers, ends, strict=True)
        ]

    def _data_ends(self, fixtures: list[Fixture]) -> list[date | None]:
        """Each fixture's league's latest known result (checked fixtures: known leagues)."""
        state = self.features.current()
        return [state.data_ends(f.league) for f in fixtures]

    def _log(
        self, fixtures: list[Fixture], answers: list[dict[str, Any]], mode: str, as_of: date
    ) -> None:
        """`as_of`: what the features knew (scoring keeps only predictions made before kickoff)."""
        self.served_log.add(
            [
                log_entry(f, a["probabilities"], a["model_version"], mode, as_of)
                for f, a in zip(fixtures, answers, strict=True)
            ]
        )
        self.ensure_housekeeping()

    # ---------------------------------------------------------------- what the routes answer
    async def predict(self, body: FixtureIn) -> Prediction:
        return (await self._predict([body.fixture()], "sync", self.local))[0]

    async def predict_batch(self, body: BatchIn) -> BatchOut:
        if len(body.fixtures) > self.conf.max_batch_fixtures:
            raise Refused(
                413,
                f"{len(body.fixtures)} fixtures in one call; at most "
                f"{self.conf.max_batch_fixtures}",
                "fixtures",
            )
        return BatchOut(
            predictions=await self._predict(
                [f.fixture() for f in body.fixtures], "batch", self.model
            )
        )

    async def predict_async(self, body: FixtureIn, owner: str = "") -> JobAccepted:
        """Accept a job for `owner` (a key id, the only one that may read it); past
        `async_backlog` jobs in flight in this replica, a 503 with Retry-After instead."""
        in_flight = len(self._jobs) + self._admitting
        if in_flight >= self.conf.async_backlog:
            self.metrics.rejected.inc(tags={"reason": "async_backlog"})
            raise Refused(
                503,
                f"{in_flight} async jobs are in flight here, the most this replica takes; "
                "retry later",
                headers=retry_after(self.conf.async_timeout_s),
            )
        self._admitting += 1  # holds its slot while Redis is awaited: concurrent posts see it
        try:
            job_id = await self._admit(body, owner)
        finally:
            self._admitting -= 1
        return JobAccepted(job_id=job_id, status_url=f"/predict/async/{job_id}")

    async def _admit(self, body: FixtureIn, owner: str) -> str:
        """The job stored in Redis and its work started; its id."""
        fixture = body.fixture()
        vectors, as_of = self._vectors([fixture])  # bad input: a 422 now, not a failed job
        job_id = uuid.uuid4().hex
        created = await self.redis.create_job(
            job_id, self.conf.job_ttl_s, self.conf.async_timeout_s, owner
        )
        if not created:
            raise Refused(
                503,
                "async jobs need Redis, which is unreachable; POST /predict works",
                headers=retry_after(self.conf.redis_retry_after_s),
            )
        task = asyncio.get_running_loop().create_task(
            self._run_job(job_id, fixture, vectors[0], as_of)
        )
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        self.metrics.async_in_flight.set(len(self._jobs), tags={"replica": self.replica})
        return job_id

    async def _run_job(self, job_id: str, fixture: Fixture, vector: Any, as_of: date) -> None:
        """The work, cancelled after `async_timeout_s`; the outcome written with retries. A
        failure's reason says what happened, never the internal exception (that goes to the
        log with the job id)."""
        timeout = self.conf.async_timeout_s
        try:
            answer, hit = (await asyncio.wait_for(self._answers([vector], self.model), timeout))[0]
            self._log([fixture], [answer], "async", as_of)
            end = self._data_ends([fixture])[0]
            status, payload = "done", prediction(fixture, answer, hit, end).model_dump(mode="json")
        except TimeoutError:
            log.warning("async job %s: no answer within %.1f s, cancelled", job_id, timeout)
            status, payload = "failed", {"reason": f"no prediction within {timeout:g} s; retry"}
        except Exception:  # any failure of the work fails the job
            log.exception("async job %s failed", job_id)
            status, payload = "failed", {"reason": f"the prediction failed (job {job_id}); retry"}
        finished = await self.redis.finish_job(job_id, status, payload)
        if status == "done" and finished:
            self.metrics.predictions.inc(tags={"mode": "async"})
        outcome = {True: status, False: "late", None: "unwritten"}[finished]
        if finished is None:
            log.error("async job %s: its %s outcome could not be written to Redis", job_id, status)
        self.metrics.async_finished.inc(tags={"outcome": outcome})
        self.metrics.async_in_flight.set(len(self._jobs) - 1, tags={"replica": self.replica})

    async def job_status(self, job_id: str, owner: str = "") -> JobStatus:
        """A job of another key is answered like an unknown one: its existence is not told."""
        if not self.redis.available:
            raise Refused(
                503,
                "job status lives in Redis, which is unreachable",
                headers=retry_after(self.conf.redis_retry_after_s),
            )
        job = await self.redis.get_job(job_id)
        if job is None or job.get("owner", "") != owner:
            raise Refused(
                404,
                f"no job {job_id!r} of this key (unknown, or expired after "
                f"{self.conf.job_ttl_s} s)",
                "job_id",
            )
        if job.get("timed_out"):
            self.metrics.async_finished.inc(tags={"outcome": "timed_out"})
        payload = json.loads(job["payload"]) if job.get("payload") else {}
        return JobStatus(
            job_id=job_id,
            status=job["status"],
            submitted_at=job["submitted_at"],
            result=payload if job["status"] == "done" else None,
            reason=payload.get("reason") if job["status"] == "failed" else None,
        )

    async def lookup(self, match_id: str) -> UpcomingPrediction:
        row = self.upcoming.get(match_id)
        if row is None:
            raise Refused(
                404,
                f"no batch prediction for match {match_id!r}; upcoming matches "
                "are predicted by the batch_predict stage",
                "match_id",
            )
        self.metrics.predictions.inc(tags={"mode": "lookup"})
        return upcoming_prediction(row)

    async def model_info(self) -> ModelInfo:
        return ModelInfo.model_validate(await self.local.info())

    async def healthz(self) -> Health:
        """Whether this replica can answer predictions, and why not; Redis is reported but not
        needed (predictions are then served uncached)."""
        reasons = []
        try:
            self.features.current()
        except NotReady as err:
            reasons.append(str(err))
        return Health(
            status="ok" if not reasons else "unavailable",
            can_serve=not reasons,
            redis=await self.redis.ping(),
            reasons=reasons,
        )
