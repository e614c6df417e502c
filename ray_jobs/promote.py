"""Move `champion` to the `challenger` if it passes the gates in params.yaml and no tier is worse
than the current champion's (test matches re-scored, validation seasons, backtest)
(`python -m ray_jobs.promote`). Every decision, promoted or refused, is a tag on the version and
an entry in the promotion history (`paths.promotion_history`, outside git);
`reports/promotion.json` holds this model's decision without times or version numbers, so the
same model gives the same file."""

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


def score_version(
    client: Any, model_name: str, version: str, train: pd.DataFrame, test: pd.DataFrame
) -> dict[str, Any] | None:
    """A registered version's evaluated predictor (never trained on the test seasons, unlike the
    one that serves) re-scored on today's test matches, so both are judged on the same games;
    None when its feature contract cannot be fed today's features."""
    try:
        predictor = registry.load_predictor(client, model_name, version, evaluated=True)
        metrics, _, _ = evaluate(predictor, train, test)
    except (ContractMismatch, OSError, KeyError) as err:
        log.warning("v%s cannot be scored on these features: %s", version, err)
        return None
    return metrics


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def champion_tiers(
    rescored: dict[str, Any] | None, history: list[dict[str, Any]], version: str | None
) -> dict[str, float]:
    """The champion's figures: test tiers re-scored now, validation and backtest tiers as
    recorded when it was promoted."""
    recorded: dict[str, float] = {}
    for entry in history:
        if entry.get("version") == version and entry.get("promoted"):
            recorded = {
                k: v
                for k, v in entry.get("figures", {}).get("tiers", {}).items()
                if not k.startswith("test/")
            }
    current = registry.tier_figures(rescored, None, None) if rescored else {}
    return recorded | current


def read_history(path: Path) -> list[dict[str, Any]]:
    """The promotion history, oldest first; empty before the first promotion."""
    return json.loads(path.read_text()) if path.exists() else []


def append_history(entry: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    history = read_history(path)
    history.append(entry)
    write_json(history, path)
    return history


def promote(cfg: Config) -> dict[str, Any]:
    client, name = registry.tracking_client(cfg), cfg.runtime.mlflow.model_name
    challenger = client.get_model_version_by_alias(name, registry.CHALLENGER)
    paths = cfg.runtime.paths
    train, test = (
        pd.read_parquet(paths.split_file("train")),
        pd.read_parquet(paths.split_file("test")),
    )
    reports = Path(paths.reports)
    metrics = json.loads(paths.metrics.read_text())
    tiers = registry.tier_figures(
        metrics, _read(paths.train_summary), _read(reports / "backtest.json")
    )
    incumbent = registry.champion_version(client, name)
    champion_rps, old_tiers = None, None
    if incumbent is not None and incumbent.version != challenger.version:
        rescored = score_version(client, name, incumbent.version, train, test)
        champion_rps = None if rescored is None else float(rescored["test"]["model"]["rps"])
        old_tiers = champion_tiers(
            rescored, read_history(paths.promotion_history), str(incumbent.version)
        )
    decision = registry.decide(
        metrics["test"]["model"], cfg.params.promotion, champion_rps, tiers, old_tiers
    )
    write_json(
        {
            "promoted": decision.promote,
            "reasons": decision.reasons,
            "figures": {k: v for k, v in decision.figures.items() if not k.startswith("champion")},
        },  # the registry's state: history
        paths.promotion,
    )
    if incumbent is not None and incumbent.version == challenger.version:
        log.info("v%s is the champion already: nothing to decide", challenger.version)
        return {"action": "none", "version": str(challenger.version)}
    registry.record_decision(client, name, challenger.version, decision)
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": "promote",
        "version": str(challenger.version),
        "promoted": decision.promote,
        "previous_champion": None if incumbent is None else str(incumbent.version),
        "reasons": decision.reasons,
        "figures": decision.figures,
    }
    append_history(entry, paths.promotion_history)
    log.info(
        "v%s %s: %s",
        challenger.version,
        "promoted to champion" if decision.promote else "refused",
        "; ".join(decision.reasons),
    )
    return entry


def main(argv: list[str] | None = None) -> None:
    run_stage(promote, __doc__, argv)


if __name__ == "__main__":
    main()
