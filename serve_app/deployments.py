"""The Model deployment: a thin Serve wrapper around `serve_app.services.ModelService`.

It batches concurrent requests (`@serve.batch`), so 32 requests in flight cost one model call,
watches its alias and swaps versions in place; `user_config` (`alias`, `reload_interval_s`)
changes are applied by `reconfigure` without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from ray import serve

from serve_app.services import ModelService, current_version, mlflow_loader
from soccerpredict.features.build import FEATURE_COLUMNS

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs
# no waiting for company: under load requests queue while a batch runs and form the next one
BATCH = {"max_batch_size": 32, "batch_wait_timeout_s": 0.0}


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.5},
                  user_config={"alias": "champion", "reload_interval_s": 5.0})
class Model:
    """The registered model behind an alias; a version whose contract does not fit is refused
    and the one already loaded keeps serving."""

    def __init__(self, tracking_uri: str, model_name: str, redis_url: str) -> None:
        from serve_app.metrics import AppMetrics
        from serve_app.redis_state import RedisState

        self.tracking_uri, self.model_name = tracking_uri, model_name
        self.service: ModelService | None = None
        self.interval_s = 5.0
        self.metrics = AppMetrics()
        self.redis = RedisState(redis_url, on_error=lambda op, _: self.metrics.redis_errors.inc(
            tags={"operation": op}))
        self.replica = serve.get_replica_context().replica_tag
        self.metrics.replica_up.set(1.0, tags={"deployment": "Model", "replica": self.replica})
        self._watcher: asyncio.Task[None] | None = None
        self._report_files: dict[tuple[str, str], bytes] = {}

    async def reconfigure(self, config: dict[str, Any]) -> None:
        alias = str(config.get("alias", "champion"))
        self.interval_s = float(config.get("reload_interval_s", 5.0))
        if self.service is None or self.service.alias != alias:
            self.service = ModelService(mlflow_loader(self.tracking_uri, self.model_name),
                                        current_version(self.tracking_uri, self.model_name),
                                        alias)
            await self.refresh()  # the first load raises if nothing usable: the replica fails
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def refresh(self) -> bool:
        assert self.service is not None
        before = set(self.service.refused)
        swapped = await asyncio.to_thread(self.service.refresh)
        if swapped:
            self._publish_version()
            self.metrics.model_reloads.inc(tags={"outcome": "loaded"})
        if set(self.service.refused) - before:
            self.metrics.model_reloads.inc(tags={"outcome": "refused"})
        # the cache is read under the version published here, so publish only what is served
        await self.redis.publish_version(self.service.alias, str(self.version()))
        return swapped

    async def _watch(self) -> None:
        last = time.monotonic()
        while True:
            # the version gauge is set again every 5 s: Ray drops a gauge not set for ~20 s
            await asyncio.sleep(min(self.interval_s, 5.0))
            self.metrics.republish()
            if time.monotonic() - last < self.interval_s:
                continue
            last = time.monotonic()
            try:
                await self.refresh()
            except Exception as err:  # noqa: BLE001 - the registry may be briefly unreachable
                log.warning("model refresh failed (%s); serving v%s", err, self.version())

    def _publish_version(self) -> None:
        assert self.service is not None and self.service.model is not None
        for version in {*self.service.refused, self.service.model.version}:
            self.metrics.model_version.set(
                1.0 if version == self.service.model.version else 0.0,
                tags={"version": version, "replica": self.replica})
        from datetime import datetime

        registered = datetime.fromisoformat(self.service.model.registered_at).timestamp()
        self.metrics.model_registered.set(registered, tags={"replica": self.replica})

    def version(self) -> str | None:
        model = self.service.model if self.service else None
        return model.version if model else None

    @serve.batch(**BATCH)
    async def predict(self, vectors: list[np.ndarray]) -> list[dict[str, Any]]:
        """One feature vector per call; concurrent calls share one model call."""
        return self.predict_many(np.vstack(vectors))

    def predict_many(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        assert self.service is not None
        started = time.perf_counter()
        probs, version = self.service.predict(pd.DataFrame(matrix, columns=FEATURE_COLUMNS))
        self.metrics.inference_latency.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(float(len(matrix)))
        for top in probs.max(axis=1):
            self.metrics.confidence.observe(float(top))
        return [{"probabilities": row.tolist(), "model_version": version} for row in probs]

    def info(self) -> dict[str, Any]:
        assert self.service is not None and self.service.model is not None
        m = self.service.model
        return {"name": self.model_name, "alias": self.service.alias, "version": m.version,
                "registered_at": m.registered_at, "run_id": m.run_id,
                "feature_contract": m.predictor.contract, "test_metrics": m.test_metrics,
                "refused_versions": dict(self.service.refused)}

    async def report_file(self, name: str) -> bytes | None:
        """A file the pipeline logged with the served version's run (`reports/<name>`: the
        calibration plot, the feature importance), so the model card shows this version's."""
        assert self.service is not None and self.service.model is not None
        m = self.service.model
        if (m.version, name) not in self._report_files:  # a run's artifacts never change
            data = await asyncio.to_thread(_download_report, self.tracking_uri, m.run_id, name)
            if data is None:
                return None
            self._report_files[(m.version, name)] = data
        return self._report_files[(m.version, name)]


def _download_report(tracking_uri: str, run_id: str | None, name: str) -> bytes | None:
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow.exceptions import MlflowException

    if run_id is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"reports/{name}", dst_path=tmp,
                tracking_uri=tracking_uri)
        except (MlflowException, OSError) as err:
            log.warning("run %s has no reports/%s: %s", run_id, name, err)
            return None
        return Path(path).read_bytes()
