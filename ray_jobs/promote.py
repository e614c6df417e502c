"""Move `champion` to the `challenger` if it passes the gates in params.yaml and is no worse than
the current champion on the same test matches (`python -m ray_jobs.promote`). Every decision,
promoted or refused, is a tag on the version and an entry in `reports/promotion.json`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict import registry
from soccerpredict.config import Config
from soccerpredict.evaluation import evaluate
from soccerpredict.io import write_json
from soccerpredict.models.predictor import ContractMismatch

log = logging.getLogger(__name__)


def score_version(client: Any, model_name: str, version: str, train: pd.DataFrame,
                  test: pd.DataFrame) -> float | None:
    """A registered version re-scored on today's test matches, so both are judged on the same games."""
    try:
        predictor = registry.load_predictor(client, model_name, version)
        metrics, _, _ = evaluate(predictor.predict_proba(test), train, test)
    except (ContractMismatch, OSError) as err:
        log.warning("v%s cannot be scored on these features: %s", version, err)
        return None
    scores = metrics["test"]
    assert isinstance(scores, dict)
    return float(scores["model"]["rps"])


def append_history(entry: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    history = json.loads(path.read_text()) if path.exists() else []
    history.append(entry)
    write_json(history, path)
    return history


def promote(cfg: Config) -> dict[str, Any]:
    client, name = registry.tracking_client(cfg), cfg.runtime.mlflow.model_name
    challenger = client.get_model_version_by_alias(name, registry.CHALLENGER)
    paths = cfg.runtime.paths
    train, test = pd.read_parquet(paths.split_file("train")), pd.read_parquet(paths.split_file("test"))
    metrics = json.loads(paths.metrics.read_text())
    incumbent = registry.champion_version(client, name)
    champion_rps = None
    if incumbent is not None and incumbent.version != challenger.version:
        champion_rps = score_version(client, name, incumbent.version, train, test)
    decision = registry.decide(metrics["test"]["model"], cfg.params.promotion, champion_rps)
    registry.record_decision(client, name, challenger.version, decision)
    entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "action": "promote",
             "version": str(challenger.version), "promoted": decision.promote,
             "previous_champion": None if incumbent is None else str(incumbent.version),
             "reasons": decision.reasons, "figures": decision.figures}
    append_history(entry, paths.promotion)
    log.info("v%s %s: %s", challenger.version,
             "promoted to champion" if decision.promote else "refused", "; ".join(decision.reasons))
    return entry


def main(argv: list[str] | None = None) -> None:
    run_stage(promote, __doc__, argv)


if __name__ == "__main__":
    main()
