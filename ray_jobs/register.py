"""Log the trained model to MLflow and register it as `challenger` (`python -m ray_jobs.register`).
`ray_jobs.promote` then decides whether it becomes `champion`.

The version carries the predictor's data files (UBJ boosters, JSON) inside a pyfunc model, for
people who load it in MLflow, and a tag with each file's sha256: Serve and the batch stages load
those files only, after checking them against the tag, and never unpickle the pyfunc.

Two predictors go in (ray_jobs/train.py): the one that serves (`artifacts/production`, the
pyfunc's), and the evaluated one (`artifacts/evaluated`), whose test scores are the run's metrics
and which promotion re-scores. The drift reference is the sample of the served one's training
rows that `train` drew (`paths.served_reference`); the seasons it was trained and validated on
are tags."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict import registry
from soccerpredict.config import Config
from soccerpredict.io import write_json
from soccerpredict.models.predictor import CONTRACT_FILE, Predictor

log = logging.getLogger(__name__)


def _flat_params(cfg: Config, trained_with: dict[str, Any]) -> dict[str, Any]:
    """What the model was made from: params.yaml's data window, features and split, and the
    model parameters that trained it (`train` wrote them: the tuned ones when a search ran)."""
    p = cfg.params
    out: dict[str, Any] = {"as_of": str(p.as_of)}
    for section in ("features", "split"):
        for key, value in getattr(p, section).model_dump().items():
            out[f"{section}.{key}"] = value
    return out | {f"model.{key}": value for key, value in trained_with.items()}


def _with_league(signature: Any) -> Any:
    """The signature with an optional `league` column: it routes a row to its price-free tier
    (`ratings_only` for the leagues it was trained on, `ratings_only_all_leagues` for the
    rest); a caller with the feature columns alone is still answered, by the first tier that
    fits."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([*signature.inputs.inputs, ColSpec("string", "league", required=False)])
    return ModelSignature(inputs=inputs, outputs=signature.outputs)


def _log_run(
    cfg: Config, predictor: Predictor, metrics: dict[str, Any], reference: pd.DataFrame
) -> Any:
    import mlflow
    from mlflow.models import infer_signature

    from soccerpredict.models.pyfunc import OutcomeModel

    paths = cfg.runtime.paths
    reports, served_dir = Path(paths.reports), Path(paths.production_dir)
    trained_with = json.loads(paths.train_summary.read_text())["params"]
    mlflow.log_params(_flat_params(cfg, trained_with))
    for name, scores in metrics["test"].items():
        mlflow.log_metrics({f"test_{name}_{k}": v for k, v in scores.items()})
    mlflow.log_metrics({f"test_{k}": v for k, v in metrics["test"]["model"].items()})
    mlflow.set_tags(registry.lineage(cfg))
    mlflow.log_dict(predictor.contract, CONTRACT_FILE)
    for path in [
        *reports.glob("*.json"),
        *(reports / "plots").glob("*.png"),
        cfg.runtime.paths.train_summary,
    ]:
        mlflow.log_artifact(str(path), artifact_path="reports")
    registry.log_artifact_frame(reference, "features.parquet")
    example = reference[predictor.columns].head(5)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=OutcomeModel(),
        artifacts={"predictor": str(served_dir), "evaluated": str(paths.model_dir)},
        signature=_with_league(infer_signature(example, predictor.predict_frame(example))),
        input_example=example,
        registered_model_name=cfg.runtime.mlflow.model_name,
        pip_requirements=["soccerpredict"],
    )


def run(cfg: Config) -> dict[str, Any]:
    client = registry.tracking_client(cfg)
    name = cfg.runtime.mlflow.model_name
    paths = cfg.runtime.paths
    metrics = json.loads(paths.metrics.read_text())
    served = json.loads(paths.train_summary.read_text())["production"]
    sha = registry.directory_sha256(paths.production_dir, paths.model_dir)
    known = registry.version_with_model(client, name, sha)
    if known is not None:  # DVC runs this stage every time: the registry is outside its view
        version, run_id = str(known.version), known.run_id
        log.info("%s v%s already holds these trained files", name, version)
    else:
        predictor = Predictor.load(paths.production_dir)
        reference = pd.read_parquet(paths.served_reference)
        with registry.fluent_run(cfg) as run_info:
            info = _log_run(cfg, predictor, metrics, reference)
        version, run_id = str(info.registered_model_version), run_info.info.run_id
        client.set_model_version_tag(name, version, registry.MODEL_SHA_TAG, sha)
        registry.record_manifest(client, name, version, paths.production_dir)
        registry.record_manifest(client, name, version, paths.model_dir, evaluated=True)
        for key in ("train_seasons", "validation_seasons"):
            client.set_model_version_tag(name, version, key, ",".join(served[key]))
    client.set_registered_model_alias(name, registry.CHALLENGER, version)
    summary = {"model_name": name, "alias": registry.CHALLENGER, "test": metrics["test"]["model"]}
    # the version and run id are run records: MLflow has them (and the log), git does not
    write_json(summary, cfg.runtime.paths.registry)
    log.info("registered %s v%s as %s (run %s)", name, version, registry.CHALLENGER, run_id)
    return summary | {"version": version, "run_id": run_id}


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
