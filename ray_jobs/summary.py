"""What the main command prints after `dvc repro` (`python -m ray_jobs.summary`): the test
seasons' scores of every forecaster on the same matches, best first, and the walk-forward
backtest's headline differences. Reads `reports/metrics.json` and `reports/backtest.json`;
`dvc metrics show` still shows every figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray_jobs.cli import parse_config


def lines(metrics: dict[str, Any], backtest: dict[str, Any] | None) -> list[str]:
    test = metrics["test"]
    out = [
        f"test seasons, {metrics['n_common']} matches every forecaster has prices for:",
        f"  {'forecaster':<20} {'RPS':>7} {'log-loss':>9} {'ECE':>7}",
    ]
    for name, s in sorted(test.items(), key=lambda kv: kv[1]["rps"]):
        out.append(f"  {name:<20} {s['rps']:7.4f} {s['log_loss']:9.4f} {s['ece']:7.4f}")
    without = metrics.get("model_without_prices")
    if without:
        out.append(
            f"  the model fed no prices: RPS {without['rps']:.4f} (answered by ratings_only)"
        )
    if backtest:
        out.append(
            f"walk-forward backtest, {len(backtest['folds'])} folds, {backtest['n_matches']} "
            "matches; mean difference in RPS [95% interval]:"
        )
        for period, block in backtest["overall"].items():
            for pair, d in block["differences"].items():
                r = d["rps"]
                out.append(
                    f"  {period:<16} {pair:<32} {r['mean']:+.5f} [{r['low']:+.5f}, {r['high']:+.5f}]"
                )
    return out


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(__doc__, argv)
    metrics = json.loads(Path(cfg.runtime.paths.metrics).read_text())
    backtest_file = Path(cfg.runtime.paths.reports) / "backtest.json"
    backtest = json.loads(backtest_file.read_text()) if backtest_file.exists() else None
    print("\n".join(lines(metrics, backtest)))


if __name__ == "__main__":
    main()
