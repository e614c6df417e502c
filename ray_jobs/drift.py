"""Drift of recent matches against the reference (`python -m ray_jobs.drift`): the features and
results of the current window beside the training snapshot the champion logged in MLflow (or
`drift.reference_seasons` of the feature table). Writes `reports/drift/report.html` and
`summary.json` (the app's gauge) and logs both to MLflow; on bad input it exits 1 with the
reason and leaves the previous report and summary as they were.

No Ray here: a few thousand rows are tested in seconds on the driver. The RayCronJob submits
this entrypoint to the shared cluster, where it runs as the job's driver.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs import params_reads
from ray_jobs.cli import add_config_args, configure_logging, job_config
from soccerpredict import registry
from soccerpredict.config import Config
from soccerpredict.drift import (
    OUTPUT_COLUMNS,
    DriftInputError,
    current_window,
    drift_columns,
    drift_report,
    reference_window,
)
from soccerpredict.io import write_json, write_text

log = logging.getLogger(__name__)
REFERENCE_ARTIFACT = "reference/features.parquet"


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def champion(cfg: Config) -> Any | None:
    """The champion's ModelVersion, or None when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return registry.champion_version(
            registry.tracking_client(cfg), cfg.runtime.mlflow.model_name
        )
    except MlflowException as err:
        raise DriftInputError(
            f"MLflow at {cfg.runtime.mlflow.tracking_uri} cannot be read: {_first_line(err)}"
        ) from err


def champion_reference(cfg: Config, version: Any | None) -> pd.DataFrame:
    """The training snapshot the champion's run logged; DriftInputError if it cannot be read."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name = cfg.runtime.mlflow.model_name
    if version is None:
        raise DriftInputError(
            f"no champion for model {name!r} in {cfg.runtime.mlflow.tracking_uri}"
            ": promote one, or set drift.reference_seasons"
        )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=version.run_id,
                artifact_path=REFERENCE_ARTIFACT,
                dst_path=tmp,
                tracking_uri=cfg.runtime.mlflow.tracking_uri,
            )
            return pd.read_parquet(path)
    except (MlflowException, OSError, ValueError) as err:
        raise DriftInputError(
            f"cannot load {REFERENCE_ARTIFACT} of {name} v{version.version} "
            f"(run {version.run_id}): {_first_line(err)}"
        ) from err


def with_model_outputs(
    cfg: Config, version: Any | None, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both windows with the champion's forecasts on them (`model_home`, ...), when the drift
    columns name them: output drift is the champion's answers on the current matches beside
    its answers on its reference."""
    if not set(OUTPUT_COLUMNS) & set(drift_columns(cfg.params.drift)):
        return reference, current
    name = cfg.runtime.mlflow.model_name
    if version is None:
        raise DriftInputError(f"no champion for model {name!r}: its output cannot be compared")
    try:
        predictor = registry.load_predictor(
            registry.tracking_client(cfg), name, str(version.version)
        )
        outputs = [predictor.predict_proba(frame) for frame in (reference, current)]
    except Exception as err:  # any failure to score is bad input, said in one line
        raise DriftInputError(
            f"cannot score the windows with {name} v{version.version}: {_first_line(err)}"
        ) from err
    ref, cur = (
        frame.assign(**{c: probs[:, k] for k, c in enumerate(OUTPUT_COLUMNS)})
        for frame, probs in zip((reference, current), outputs, strict=True)
    )
    return ref, cur


def load_windows(cfg: Config, as_of: date) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Reference, current window, and where each came from."""
    params, path = cfg.params.drift, Path(cfg.runtime.paths.features)
    try:
        features = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise DriftInputError(f"cannot read the feature table {path}: {err}") from err
    version = champion(cfg)
    model_version = "none" if version is None else str(version.version)
    if params.reference_seasons:
        reference = reference_window(features, params.reference_seasons, as_of)
        ref_source = f"seasons {', '.join(params.reference_seasons)} of {path}"
    else:
        reference = champion_reference(cfg, version)
        ref_source = f"{REFERENCE_ARTIFACT} of {cfg.runtime.mlflow.model_name} v{model_version}"
    current = current_window(features, params, as_of)
    window = (
        f"seasons {', '.join(params.current_seasons)}"
        if params.current_seasons
        else f"the {params.window_days} days to {as_of}"
    )
    if current.empty:
        raise DriftInputError(
            f"the current window is empty: no played matches in {window} of {path}"
        )
    reference, current = with_model_outputs(cfg, version, reference, current)
    return (
        reference,
        current,
        {
            "model_version": model_version,
            "reference": ref_source,
            "current": f"played matches of {window}",
        },
    )


def log_to_mlflow(cfg: Config, summary: dict[str, Any], files: list[Path]) -> str:
    import mlflow

    with registry.fluent_run(cfg, run_name="drift") as run:
        mlflow.set_tags({"stage": "drift", "model_version": summary["model_version"]})
        mlflow.log_params(
            {
                "reference": summary["reference"]["source"][:500],
                "current": summary["current"]["source"][:500],
                "p_value": summary["p_value"],
                "drift_share_threshold": summary["drift_share_threshold"],
            }
        )
        mlflow.log_metrics(
            {
                "drift_share": summary["drift_share"],
                "drifted": float(summary["drifted"]),
                "drifted_columns": float(len(summary["drifted_columns"])),
            }
        )
        mlflow.log_metrics({f"p_value.{c}": v["p_value"] for c, v in summary["columns"].items()})
        for path in files:
            mlflow.log_artifact(str(path), artifact_path="drift")
        return str(run.info.run_id)


def run(cfg: Config, as_of: date | None = None) -> dict[str, Any]:
    """The whole job; DriftInputError before anything is written when the input is bad."""
    as_of = as_of or cfg.params.as_of
    reference, current, sources = load_windows(cfg, as_of)
    summary, snapshot = drift_report(reference, current, cfg.params.drift)
    summary["reference"]["source"], summary["current"]["source"] = (
        sources["reference"],
        sources["current"],
    )
    summary |= {
        "as_of": str(as_of),
        "model_version": sources["model_version"],
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = Path(cfg.runtime.paths.drift_reports)
    html = write_text(snapshot.get_html_str(as_iframe=False), out / "report.html")
    summary_path = write_json(summary, cfg.runtime.paths.drift_summary)  # last: the gauge reads it
    summary["mlflow_run_id"] = log_to_mlflow(cfg, summary, [html, summary_path])
    log.info("drift summary %s, MLflow run %s", summary_path, summary["mlflow_run_id"])
    return summary


def human_summary(summary: dict[str, Any]) -> str:
    verdict = "DRIFTED" if summary["drifted"] else "no drift"
    head = (
        f"{verdict}: {len(summary['drifted_columns'])}/{summary['n_columns']} columns "
        f"(share {summary['drift_share']:.2f}, threshold {summary['drift_share_threshold']}"
        f"; each column at p < {summary['column_threshold']:.2g})"
    )
    lines = [
        head,
        f"reference: {summary['reference']['source']} ({summary['reference']['rows']} rows)",
        f"current:   {summary['current']['source']} ({summary['current']['rows']} rows)",
    ]
    for column in summary["drifted_columns"]:
        entry = summary["columns"][column]
        lines.append(f"  {column:<24} {entry['test']:<18} p = {entry['p_value']:.2g}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[Config, date | None]:
    parser = argparse.ArgumentParser(description=__doc__)
    add_config_args(parser)
    parser.add_argument(
        "--reference-seasons",
        nargs="+",
        metavar="YYYY-YYYY",
        help="compare with these seasons instead of the champion's snapshot",
    )
    parser.add_argument(
        "--current-seasons",
        nargs="+",
        metavar="YYYY-YYYY",
        help="the current window: these seasons instead of the last window_days",
    )
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="the last day of the current window (default: params as_of)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    cfg = job_config(args.params, args.conf)
    update = {
        k: v
        for k, v in (
            ("reference_seasons", args.reference_seasons),
            ("current_seasons", args.current_seasons),
        )
        if v
    }
    if update:
        drift = cfg.params.drift.model_copy(update=update)
        cfg = cfg.model_copy(update={"params": cfg.params.model_copy(update={"drift": drift})})
    return cfg, args.as_of


def main(argv: list[str] | None = None) -> None:
    cfg, as_of = parse_args(argv)
    try:
        with params_reads.watched(cfg, __file__) as watched:
            summary = run(watched, as_of)
    except DriftInputError as err:
        print(f"drift: not scored, summary left as it was: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(human_summary(summary))


if __name__ == "__main__":
    main()
