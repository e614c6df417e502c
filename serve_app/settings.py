"""What the Serve app is told, read once by `build_app` and handed to every deployment.

`args:` of the application in conf/serve.yaml say which config files to read and which alias to
serve; conf/runtime.yaml says where the model, the team state, the reports and Redis live and
what the limits are. Relative paths are anchored at the project root, because replicas do not run
in the directory the command was started from. Environment variables override endpoints as
everywhere: `MLFLOW_TRACKING_URI`, `REDIS_URL`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from soccerpredict.config import PROJECT_ROOT, ServingConf, load_config
from soccerpredict.registry import CHAMPION


class AppArgs(BaseModel):
    """`args:` of the application in conf/serve.yaml."""

    model_config = ConfigDict(extra="forbid")

    params: str = "params.yaml"
    conf: str = "conf/runtime.yaml"
    root: str | None = None  # where relative paths start; the project checkout by default
    alias: str = CHAMPION  # the registry alias served; `serve deploy` with another one switches


class ServeSettings(BaseModel):
    """Everything a deployment of the app reads from configuration: one object, one source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alias: str
    model_name: str
    tracking_uri: str
    serving: ServingConf  # Redis, TTLs, limits, reload interval, the API keys file
    team_state: Path
    predictions: Path
    drift_summary: Path
    quality: Path
    promotion_history: Path  # the model card's "promoted when and why"

    @property
    def reload_interval_s(self) -> float:
        return self.serving.reload_interval_s


def load_settings(args: dict[str, object] | AppArgs) -> ServeSettings:
    args = AppArgs.model_validate(args) if isinstance(args, dict) else args
    root = Path(args.root) if args.root else PROJECT_ROOT
    cfg = load_config(root / args.params, root / args.conf).rooted(root)
    paths, mlflow = cfg.runtime.paths, cfg.runtime.mlflow
    return ServeSettings(
        alias=args.alias,
        model_name=mlflow.model_name,
        tracking_uri=mlflow.tracking_uri,
        serving=cfg.runtime.serving,
        team_state=paths.team_state,
        predictions=paths.predictions,
        drift_summary=paths.drift_summary,
        quality=paths.quality,
        promotion_history=paths.promotion_history,
    )
