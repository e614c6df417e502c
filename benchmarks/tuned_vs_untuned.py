"""Test RPS of the tuned model next to the untuned one and the bookmakers', on the same matches
(`python -m benchmarks.tuned_vs_untuned [--out reports/benchmarks/tuned_vs_untuned.json]`).

Both models are trained by `ray_jobs.train.train` on the same train/validation splits: "untuned"
with params.yaml's `model` section as written, "tuned" with `reports/tune/best_params.json`
applied over it (what the `train` stage does). Both are scored by `soccerpredict.evaluation` on
the test matches that every forecaster has prices for. Nothing is logged or registered.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.train import model_params, train
from soccerpredict.config import ForecasterParams, load_config
from soccerpredict.evaluation import evaluate
from soccerpredict.io import write_json

ROWS = ("tuned", "untuned", "pinnacle_closing", "pre_closing_market", "elo_only")


def compare(
    train_df: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    untuned: Any,
    tuned: Any,
    ratings_only: Any,
) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    for name, params in (("untuned", untuned), ("tuned", tuned)):
        # the with_market tier trained with these booster parameters, ratings_only as configured
        tiers = ForecasterParams(ratings_only=ratings_only, with_market=params)
        predictor, summary = train(train_df, validation, tiers)
        metrics, _, _ = evaluate(predictor, train_df, test)
        scores[name] = metrics["test"]["with_market"] | {
            "best_iteration": summary["with_market"]["best_iteration"],
            "calibration": summary["with_market"]["calibration"],
        }
        scores |= {k: v for k, v in metrics["test"].items() if k != "model"}  # same every time
        scores["n_common"] = metrics["n_common"]
    return scores


def markdown(scores: dict[str, Any]) -> str:
    lines = ["| forecaster | RPS | log-loss | ECE | accuracy |", "|---|---:|---:|---:|---:|"]
    for name in ROWS:
        s = scores[name]
        lines.append(
            f"| {name} | {s['rps']:.4f} | {s['log_loss']:.4f} | {s['ece']:.4f} | "
            f"{s['accuracy']:.3f} |"
        )
    return "\n".join(lines + [f"\n{scores['n_common']} test matches"])


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
    scores = compare(
        *frames,
        untuned=cfg.params.model,
        tuned=model_params(cfg),
        ratings_only=cfg.params.forecasters.ratings_only,
    )
    write_json(scores, args.out)
    print(markdown(scores))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
