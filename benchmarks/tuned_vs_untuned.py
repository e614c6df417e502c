"""Test RPS of the `ratings_only` tier with its hand-set params next to the Ray Tune search's,
on the same matches (`python -m benchmarks.tuned_vs_untuned [--out ...]`).

Both are fitted as the `train` stage fits the tier (`soccerpredict.tuning.validation_scores`
refits it, early stopping and calibration on validation) from the two param sets that
`reports/tune/best_params.json` records, and scored on the test split beside Elo. The search's
choice was made on validation; this only reports the test seasons and selects nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.backtest.summary import cluster_bootstrap
from soccerpredict.config import ModelParams, load_config
from soccerpredict.evaluation import elo_only
from soccerpredict.io import write_json
from soccerpredict.metrics.scoring import outcome_index, rps, score_all
from soccerpredict.models.forecasters import fit_forecaster
from soccerpredict.tuning import TUNED_COLUMNS, TUNED_TIER, tier_rows

ROWS = ("tuned", "hand_set", "elo_only")


def paired(a: np.ndarray, b: np.ndarray, frame: pd.DataFrame) -> dict[str, float]:
    """Mean RPS difference a - b per match, 95% interval resampling matchdays."""
    y = outcome_index(frame["result"])
    days = frame["league"] + "/" + frame["kickoff_utc"].dt.strftime("%Y-%m-%d")
    mean, low, high = cluster_bootstrap(rps(a, y) - rps(b, y), days, 1000, 42)
    return {"mean": mean, "low": low, "high": high}


def compare(
    train_df: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, record: dict[str, Any]
) -> dict[str, Any]:
    sets = {
        "validation": validation[validation["result"].notna()].reset_index(drop=True),
        "test": test[test["result"].notna()].reset_index(drop=True),
    }
    played = pd.concat([train_df, validation])
    played = played[played["result"].notna()]
    scores: dict[str, Any] = {"chosen_on_validation": record["chosen"]}
    probs: dict[str, dict[str, np.ndarray]] = {}
    for name in ("hand_set", "tuned"):
        params = ModelParams.model_validate(record[name]["params"])
        forecaster, _ = fit_forecaster(
            TUNED_TIER, TUNED_COLUMNS, None, tier_rows(train_df), tier_rows(validation), params
        )
        probs[name] = {k: forecaster.predict_proba(f) for k, f in sets.items()}
    for k, frame in sets.items():
        y = outcome_index(frame["result"])
        elo = elo_only(played if k == "test" else train_df[train_df["result"].notna()], frame)
        scores[k] = {name: score_all(probs[name][k], y) for name in ("hand_set", "tuned")} | {
            "elo_only": score_all(elo, y),
            "n": len(frame),
            "tuned-hand_set": paired(probs["tuned"][k], probs["hand_set"][k], frame),
        }
    return scores


def markdown(scores: dict[str, Any]) -> str:
    lines = ["| ratings_only | seasons | RPS | log-loss | ECE |", "|---|---|---:|---:|---:|"]
    for k in ("validation", "test"):
        for name in ROWS:
            s = scores[k][name]
            lines.append(
                f"| {name} | {k} | {s['rps']:.4f} | {s['log_loss']:.4f} | {s['ece']:.4f} |"
            )
    for k in ("validation", "test"):
        d = scores[k]["tuned-hand_set"]
        lines.append(
            f"\n{k} ({scores[k]['n']} matches): tuned - hand-set RPS {d['mean']:+.5f} "
            f"[{d['low']:+.5f}, {d['high']:+.5f}]"
        )
    return "\n".join(lines + [f"chosen on validation: {scores['chosen_on_validation']}"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("reports/benchmarks/tuned_vs_untuned.json")
    )
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--conf", default="conf/runtime.yaml")
    args = parser.parse_args(argv)
    cfg = load_config(args.params, args.conf)
    splits = Path(cfg.runtime.paths.splits)
    frames = [pd.read_parquet(splits / f"{n}.parquet") for n in ("train", "validation", "test")]
    record = json.loads(Path(cfg.runtime.paths.best_params).read_text())
    scores = compare(*frames, record)
    write_json(scores, args.out)
    print(markdown(scores))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
