"""The application `serve run conf/serve.yaml` builds: Ingress (with the Features component
in-process) → Model.

`build_app` reads the same typed config as the pipeline (params.yaml, conf/runtime.yaml) and
anchors its relative paths at the project root, because replicas do not run in the directory
the command was started from. Environment variables override endpoints as everywhere:
`MLFLOW_TRACKING_URI`, `REDIS_URL`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from ray.serve import Application

from soccerpredict.config import PROJECT_ROOT, load_config


class AppArgs(BaseModel):
    """`args:` of the application in conf/serve.yaml."""

    model_config = ConfigDict(extra="forbid")

    params: str = "params.yaml"
    conf: str = "conf/runtime.yaml"
    root: str | None = None  # where relative paths start; the project checkout by default


def build_app(args: dict[str, object] | AppArgs) -> Application:
    from serve_app.deployments import Model
    from serve_app.ingress import Ingress

    args = AppArgs.model_validate(args) if isinstance(args, dict) else args
    root = Path(args.root) if args.root else PROJECT_ROOT
    cfg = load_config(root / args.params, root / args.conf).rooted(root)
    serving, paths = cfg.runtime.serving, cfg.runtime.paths
    model = Model.bind(cfg.runtime.mlflow.tracking_uri, cfg.runtime.mlflow.model_name,
                       serving.redis_url)
    reports = {"drift": str(paths.drift_reports / "summary.json"),
               "quality": str(paths.reports / "quality.json"),
               "promotion": str(paths.promotion_history)}  # the model card's history
    return Ingress.bind(model, serving.model_dump(mode="json"), str(paths.team_state),
                        str(paths.predictions), reports)
