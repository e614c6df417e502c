"""The Model deployment's work without Serve: the registered model behind the alias, the version
it serves published to Redis for the Ingress's cache lookups, and the model metrics.

The Ingress talks to a model through `ModelClient`: the Serve deployment's handle in the app
(`HandleClient`, for async jobs and batches), or a `ServedModel` in the same process (the one
each Ingress replica answers `POST /predict` and `/model` with, and the unit tests').
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

from serve_app.metrics import AppMetrics
from serve_app.redis_state import RedisState
from serve_app.services import ModelService
from serve_app.settings import ServeSettings
from soccerpredict.features.build import FEATURE_COLUMNS
from soccerpredict.models.predictor import LEAGUE_CODE

# a served vector: the features, then the fixture's league as a number (Ingress._vectors)
SERVED_COLUMNS = [*FEATURE_COLUMNS, LEAGUE_CODE]

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs


class ModelClient(Protocol):
    """What the Ingress asks of the model."""

    async def predict_one(self, vector: np.ndarray) -> dict[str, Any]: ...

    async def predict_many(self, matrix: np.ndarray) -> list[dict[str, Any]]: ...

    async def info(self) -> dict[str, Any]: ...

    async def report_file(self, name: str) -> bytes | None: ...


class HandleClient:
    """The Model deployment behind its Serve handle (`predict` is batched across requests).

    A call whose replica died under it (`RayActorError`: SIGKILL, a lost node) is made once
    more: the handle sends it to another replica (conf/serve.yaml runs two), or waits for the
    replacement. Serve does not retry a call a replica may have started; every call here only
    reads, so a second try is safe. A second failure is the caller's (a 503, serve_app/api.py).
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def _call(self, method: str, *args: Any) -> Any:
        from ray.exceptions import RayActorError

        try:
            return await getattr(self.handle, method).remote(*args)
        except RayActorError:
            log.warning("a Model replica went away during %s; trying another", method)
            return await getattr(self.handle, method).remote(*args)

    async def predict_one(self, vector: np.ndarray) -> dict[str, Any]:
        return cast(dict[str, Any], await self._call("predict", vector))

    async def predict_many(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await self._call("predict_many", matrix))

    async def info(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._call("info"))

    async def report_file(self, name: str) -> bytes | None:
        return cast(bytes | None, await self._call("report_file", name))


class ServedModel:
    """A `ModelService` that follows its alias every `reload_interval_s` and says which version
    it serves: a version whose contract does not fit is refused, the loaded one keeps serving."""

    def __init__(
        self,
        service: ModelService,
        settings: ServeSettings,
        client: Any,
        redis: RedisState,
        metrics: AppMetrics,
        replica: str,
        deployment: str = "Model",  # or "Ingress", whose replicas answer POST /predict
    ) -> None:
        self.service, self.settings, self.client = service, settings, client
        self.redis, self.metrics, self.replica = redis, metrics, replica
        self.metrics.replica_up.set(1.0, tags={"deployment": deployment, "replica": replica})
        self._watcher: asyncio.Task[None] | None = None
        self._report_files: dict[tuple[str, str], bytes] = {}

    async def start(self) -> None:
        """The first load raises if nothing usable is registered: the replica then fails."""
        await self.refresh()
        self.ensure_watching()

    def ensure_watching(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def refresh(self) -> bool:
        before = set(self.service.refused)
        swapped = await asyncio.to_thread(self.service.refresh)
        if swapped:
            self._publish_version_metrics()
            self.metrics.model_reloads.inc(tags={"outcome": "loaded"})
        if set(self.service.refused) - before:
            self.metrics.model_reloads.inc(tags={"outcome": "refused"})
        # the cache is read under the version published here, so publish only what is served;
        # the key expires if no replica renews it (a replica gone, an alias no longer served)
        await self.redis.publish_version(
            self.service.alias, str(self.version()), ttl_s=self.version_ttl_s
        )
        return swapped

    @property
    def version_ttl_s(self) -> int:
        return max(30, int(6 * self.settings.reload_interval_s))

    async def _watch(self) -> None:
        interval, last = self.settings.reload_interval_s, time.monotonic()
        while True:
            # the version gauge is set again every 5 s: Ray drops a gauge not set for ~20 s
            await asyncio.sleep(min(interval, 5.0))
            self.metrics.republish()
            if time.monotonic() - last < interval:
                continue
            last = time.monotonic()
            try:
                await self.refresh()
            except Exception as err:  # noqa: BLE001 - the registry may be briefly unreachable
                log.warning("model refresh failed (%s); serving v%s", err, self.version())

    def _publish_version_metrics(self) -> None:
        model = self.service.model
        assert model is not None
        for version in {*self.service.refused, model.version}:
            self.metrics.model_version.set(
                1.0 if version == model.version else 0.0,
                tags={"version": version, "replica": self.replica},
            )
        registered = datetime.fromisoformat(model.registered_at).timestamp()
        self.metrics.model_registered.set(registered, tags={"replica": self.replica})

    def version(self) -> str | None:
        return self.service.model.version if self.service.model else None

    def predict_matrix(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        started = time.perf_counter()
        probs, version, tiers = self.service.predict(pd.DataFrame(matrix, columns=SERVED_COLUMNS))
        self.metrics.inference_latency.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(float(len(matrix)))
        for top in probs.max(axis=1):
            self.metrics.confidence.observe(float(top))
        return [
            {"probabilities": row.tolist(), "model_version": version, "forecaster": str(tier)}
            for row, tier in zip(probs, tiers, strict=True)
        ]

    # ------------------------------------------------------------ ModelClient, in process
    async def predict_one(self, vector: np.ndarray) -> dict[str, Any]:
        return self.predict_matrix(np.vstack([vector]))[0]

    async def predict_many(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        return self.predict_matrix(matrix)

    async def info(self) -> dict[str, Any]:
        m = self.service.model
        assert m is not None
        return {
            "name": self.settings.model_name,
            "alias": self.service.alias,
            "version": m.version,
            "registered_at": m.registered_at,
            "run_id": m.run_id,
            "forecasters": list(m.predictor.forecasters),
            "feature_contract": m.predictor.contract,
            "test_metrics": m.test_metrics,
            "trained_on": m.trained_on,
            "refused_versions": dict(self.service.refused),
        }

    async def report_file(self, name: str) -> bytes | None:
        """A file the pipeline logged with the served version's run (`reports/<name>`: the
        calibration plot, the feature importance), so the model card shows this version's."""
        m = self.service.model
        assert m is not None
        if (m.version, name) not in self._report_files:  # a run's artifacts never change
            data = await asyncio.to_thread(self._download_report, m.run_id, name)
            if data is None:
                return None
            self._report_files[(m.version, name)] = data
        return self._report_files[(m.version, name)]

    def _download_report(self, run_id: str | None, name: str) -> bytes | None:
        from mlflow.exceptions import MlflowException

        if run_id is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.client.download_artifacts(run_id, f"reports/{name}", tmp)
            except (MlflowException, OSError) as err:
                log.warning("run %s has no reports/%s: %s", run_id, name, err)
                return None
            return Path(path).read_bytes()
