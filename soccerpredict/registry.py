"""MLflow tracking and registry: log a candidate, alias it `challenger`, promote by metric gates.

Every decision, promoted or refused, is kept as a tag on the model version with its figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from soccerpredict.config import Config, PromotionParams, is_uri
from soccerpredict.models.artifacts import ArtifactRefused

CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_SHA_TAG = "model_sha256"  # a version's trained files, hashed: registering is idempotent
MANIFEST_TAG = "predictor_manifest"  # each predictor file's sha256, checked at every load
# the same for the evaluated predictor (ray_jobs/train.py): what promotion re-scores on test
EVALUATED_MANIFEST_TAG = "evaluated_manifest"
SERVER_ARTIFACTS = "mlflow-artifacts:"  # the tracking server's proxied store, laid out by id


def tracking_client(cfg: Config) -> Any:
    """A client of the configured store, passed explicitly: no process-wide tracking URI."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=cfg.runtime.mlflow.tracking_uri)


def experiment_id(client: Any, cfg: Config) -> str:
    """The configured experiment, created with artifacts under the configured root if new. The
    root `mlflow-artifacts:/` leaves the place to a tracking server that proxies artifacts: it
    puts the experiment at `mlflow-artifacts:/<experiment id>`, the only layout in which
    MLflow's basic-auth app finds an artifact's experiment (any other path falls back to the
    default permission, NO_PERMISSIONS on the cluster: only the admin could read or write)."""
    name = cfg.runtime.mlflow.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        root = cfg.runtime.mlflow.artifact_root  # a URI as it is: Path() would fold its "//"
        if root.rstrip("/") == SERVER_ARTIFACTS:
            return str(client.create_experiment(name))
        location = root if is_uri(root) else Path(root).resolve().as_uri()
        return str(client.create_experiment(name, artifact_location=location))
    return str(experiment.experiment_id)


@contextmanager
def fluent_run(cfg: Config, **start_run: Any) -> Iterator[Any]:
    """A run for MLflow's fluent logging API (`log_params`, `pyfunc.log_model`), which takes no
    client: the configured tracking URI holds for the run only and is put back afterwards."""
    import mlflow

    uri, env_before = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    experiment = experiment_id(tracking_client(cfg), cfg)
    mlflow.set_tracking_uri(cfg.runtime.mlflow.tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment, **start_run) as run:
            yield run
    finally:
        mlflow.set_tracking_uri(uri)
        if env_before is None:  # set_tracking_uri also writes the variable
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env_before


def file_sha256(path: str | Path) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None


def directory_sha256(*paths: str | Path) -> str:
    """One hash over directories' files, names and bytes, in sorted order (each directory's
    files named relative to it, the directories in the order given)."""
    digest = hashlib.sha256()
    for k, path in enumerate(paths):
        root = Path(path)
        if k:
            digest.update(b"\0\0")  # where one directory ends and the next begins
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def version_with_model(client: Any, name: str, sha256: str) -> Any | None:
    """The latest version registered with exactly these trained files, if any."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    same = [v for v in versions if v.tags.get(MODEL_SHA_TAG) == sha256]
    return max(same, key=lambda v: int(v.version)) if same else None


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lineage(cfg: Config) -> dict[str, str]:
    return {
        "git_commit": git_commit(),
        "dvc_lock_sha256": file_sha256("dvc.lock") or "none",
        "data_version": file_sha256(cfg.runtime.paths.raw) or "none",
        "features_version": file_sha256(cfg.runtime.paths.features) or "none",
    }


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str]
    figures: dict[str, Any]


# test RPS of each tier re-scored on the same matches, validation RPS of each tier, and the
# backtest's mean RPS difference from each tier's baseline: a challenger may worsen none of them
TEST_TIERS = ("model", "with_market", "with_market_1x2", "ratings_only")


def tier_figures(
    metrics: dict[str, Any], train_summary: dict[str, Any] | None, backtest: dict[str, Any] | None
) -> dict[str, float]:
    """Every tier's figure the promotion compares, lower is better for all of them."""
    out = {
        f"test/{t}/rps": float(metrics["test"][t]["rps"])
        for t in TEST_TIERS
        if t in metrics.get("test", {})
    }
    for tier, summary in (train_summary or {}).items():
        if isinstance(summary, dict) and "validation_uncalibrated" in summary:
            out[f"validation/{tier}/rps"] = float(summary["validation_uncalibrated"]["rps"])
    overall = (backtest or {}).get("overall", {}).get("all", {})
    for pair, diff in overall.get("differences", {}).items():
        out[f"backtest/{pair}/rps"] = float(diff["rps"]["mean"])
    # the extra leagues' tier, against what it is measured beside there (Elo alone, prices)
    extra = (backtest or {}).get("extra_leagues", {}).get("by_league", {}).get("all", {})
    for pair, diff in extra.get("differences", {}).items():
        out[f"backtest/extra_leagues/{pair}/rps"] = float(diff["rps"]["mean"])
    return out


def decide(
    candidate: dict[str, float],
    gates: PromotionParams,
    champion_rps: float | None,
    tiers: dict[str, float] | None = None,
    champion_tiers: dict[str, float] | None = None,
) -> Decision:
    """Gates first, then no worse than the champion on the same matches (within a tolerance),
    tier by tier: the test seasons, the validation seasons and the backtest."""
    reasons = []
    for metric, limit in (
        ("log_loss", gates.max_logloss),
        ("ece", gates.max_ece),
        ("rps", gates.max_rps),
    ):
        if candidate[metric] > limit:
            reasons.append(f"{metric} {candidate[metric]:.4f} above gate {limit}")
    if champion_rps is not None and candidate["rps"] > champion_rps + gates.rps_tolerance:
        reasons.append(
            f"rps {candidate['rps']:.4f} worse than champion {champion_rps:.4f} "
            f"by more than {gates.rps_tolerance}"
        )
    for key, value in (tiers or {}).items():
        old = (champion_tiers or {}).get(key)
        if old is not None and value > old + gates.rps_tolerance:
            reasons.append(
                f"{key} {value:.4f} worse than champion {old:.4f} "
                f"by more than {gates.rps_tolerance}"
            )
    figures: dict[str, Any] = {
        "rps": candidate["rps"],
        "log_loss": candidate["log_loss"],
        "ece": candidate["ece"],
        "champion_rps": champion_rps,
        "tiers": tiers or {},
        "champion_tiers": champion_tiers or {},
    }
    return Decision(not reasons, reasons or ["passed all gates"], figures)


def champion_version(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def record_decision(client: Any, name: str, version: str, decision: Decision) -> None:
    client.set_model_version_tag(
        name, version, "promotion_decision", "promoted" if decision.promote else "refused"
    )
    client.set_model_version_tag(
        name, version, "promotion_details", json.dumps(asdict(decision), default=str)
    )
    if decision.promote:
        client.set_registered_model_alias(name, CHAMPION, version)


def reference_snapshot(
    features: pd.DataFrame,
    columns: list[str],
    last_seasons: int = 0,
    n: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """A fixed sample of training features: the drift reference logged with the model. Drawn
    from the latest `last_seasons` seasons of them (`drift.reference_last_seasons`; 0: all)."""
    if last_seasons:
        latest = sorted(features["season"].dropna().unique())[-last_seasons:]
        features = features[features["season"].isin(latest)]
    sample = features.sample(n=min(n, len(features)), random_state=seed)
    keep = ["match_id", "league", "season", *columns, "result"]  # the result: target drift
    return sample[[c for c in keep if c in sample.columns]].reset_index(drop=True)


def log_artifact_frame(frame: pd.DataFrame, name: str) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="reference")


def model_version(client: Any, name: str, alias_or_version: str) -> Any:
    """A ModelVersion by alias (`champion`) or by number (`3`)."""
    if alias_or_version.isdigit():
        return client.get_model_version(name, alias_or_version)
    return client.get_model_version_by_alias(name, alias_or_version)


def record_manifest(
    client: Any, name: str, version: str, directory: str | Path, evaluated: bool = False
) -> None:
    """Tag a version with its predictor files' sha256, as they are here: what loading checks.
    The tag lives in the registry's database, apart from the artifact store it vouches for.
    `evaluated`: the evaluated predictor's files (the served one's otherwise)."""
    from soccerpredict.models.artifacts import manifest

    recorded = manifest(directory, f"artifacts/{Path(directory).name}")
    tag = _manifest_tag(evaluated)
    client.set_model_version_tag(name, version, tag, json.dumps(recorded, sort_keys=True))


def _manifest_tag(evaluated: bool) -> str:
    return EVALUATED_MANIFEST_TAG if evaluated else MANIFEST_TAG


def load_predictor(client: Any, name: str, version: str, evaluated: bool = False) -> Any:
    """The Predictor of a registered version, built from data files only (UBJ boosters, JSON
    calibrators and contract) whose sha256 match the manifest recorded at registration; read
    through `client`'s registry. The pyfunc's pickle is never downloaded, let alone loaded.
    `evaluated`: the predictor the version's test scores are of (a version registered with one
    predictor has it serve and be evaluated both). Raises `ArtifactRefused` for a version
    without a manifest or with files that differ."""
    import mlflow

    from soccerpredict.models.artifacts import parse, verify
    from soccerpredict.models.predictor import Predictor

    where = f"{name} v{version}" + (" (evaluated)" if evaluated else "")
    mv = client.get_model_version(name, version)
    # a version registered before the evaluated predictor was kept apart serves the one it has
    tag = _manifest_tag(evaluated and EVALUATED_MANIFEST_TAG in mv.tags)
    recorded = parse(mv.tags.get(tag), where)
    uri = client.get_model_version_download_uri(name, version).rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{uri}/{recorded['root']}",
                dst_path=tmp,
                tracking_uri=client.tracking_uri,
            )
        except (OSError, mlflow.exceptions.MlflowException) as err:
            raise ArtifactRefused(f"{where}: its data files cannot be read ({err})") from err
        verify(local, recorded, where)
        return Predictor.load(local)
