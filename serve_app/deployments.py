"""The two Serve deployments, thin wrappers that build their parts from the one `ServeSettings`
(`serve_app.app.build_app`): Model around `ServedModel`, Ingress around `Ingress` and its
FastAPI app, with a `ServedModel` of its own for `POST /predict`.

The Model batches concurrent requests (`@serve.batch`), so 32 requests in flight cost one model
call; it answers async jobs and `POST /predict/batch`. Both follow the alias every
`reload_interval_s`, swapping versions in place.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from ray import serve

from serve_app.settings import ServeSettings

if TYPE_CHECKING:
    from serve_app.metrics import AppMetrics
    from serve_app.served_model import ServedModel

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs


def _replica() -> str:
    return str(serve.get_replica_context().replica_tag)


async def served_model(
    settings: ServeSettings, metrics: AppMetrics, deployment: str
) -> ServedModel:
    """The registered model behind the alias, loaded and followed (every `reload_interval_s`)
    in this replica: the Model deployment's, and the one each Ingress replica answers
    `POST /predict` with (one loader, one reload rule)."""
    from mlflow import MlflowClient

    from serve_app.redis_state import RedisState
    from serve_app.served_model import ServedModel
    from serve_app.services import ModelService, current_version, mlflow_loader

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    service = ModelService(
        mlflow_loader(client, settings.model_name),
        current_version(client, settings.model_name),
        settings.alias,
    )
    redis = RedisState.from_conf(
        settings.serving,
        on_error=lambda op, _: metrics.redis_errors.inc(tags={"operation": op}),
    )
    served = ServedModel(service, settings, client, redis, metrics, _replica(), deployment)
    await served.start()
    return served


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.5})
class Model:
    """The registered model behind the alias; a version whose contract does not fit is refused
    and the one already loaded keeps serving."""

    async def __init__(self, settings: ServeSettings) -> None:  # type: ignore[misc]  # Serve awaits it
        from serve_app.binding import bind_replica_grpc_to_node_ip
        from serve_app.metrics import AppMetrics

        bind_replica_grpc_to_node_ip()
        self.served = await served_model(settings, AppMetrics(), "Model")

    async def check_health(self) -> None:
        """Serve calls this every few seconds: it also keeps the alias watcher alive."""
        self.served.ensure_watching()

    # no waiting for company: under load requests queue while a batch runs and form the next one
    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def predict(self, vectors: list[np.ndarray]) -> list[dict[str, Any]]:
        """One feature vector per call; concurrent calls share one model call."""
        return self.served.predict_matrix(np.vstack(vectors))

    def predict_many(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        return self.served.predict_matrix(matrix)

    async def info(self) -> dict[str, Any]:
        return await self.served.info()

    async def report_file(self, name: str) -> bytes | None:
        return await self.served.report_file(name)


@serve.deployment(name="Ingress", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.25})
@serve.ingress()
class IngressDeployment:
    """The Ingress with its collaborators and its FastAPI app, built in the replica."""

    async def __init__(self, model: Any, settings: ServeSettings) -> None:  # type: ignore[misc]
        from serve_app.binding import bind_replica_grpc_to_node_ip
        from serve_app.ingress import Ingress
        from serve_app.metrics import AppMetrics
        from serve_app.served_model import HandleClient

        bind_replica_grpc_to_node_ip()
        metrics = AppMetrics()
        # POST /predict is answered here, without a hop; async and batch work go to the Model
        self.local = await served_model(settings, metrics, "Ingress")
        self.ingress = Ingress.from_settings(
            HandleClient(model), settings, _replica(), local=self.local, metrics=metrics
        )

    def __serve_build_asgi_app__(self) -> Any:
        from serve_app.api import build_api
        from serve_app.cluster import cluster_metrics

        return build_api(self.ingress, cluster_metrics)

    async def check_health(self) -> None:
        """Serve calls this every few seconds: it also keeps the housekeeping task and the
        in-process model's alias watcher alive."""
        self.ingress.ensure_housekeeping()
        self.local.ensure_watching()
