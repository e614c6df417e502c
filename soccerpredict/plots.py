"""Pictures a person would rather look at than a table. Each call writes one PNG atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.data.contract import OUTCOMES
from soccerpredict.io import atomic_path
from soccerpredict.metrics.scoring import calibration_table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; chosen at call time, not at import
    import matplotlib.pyplot as plt

    return plt


def _save(fig, target: Path) -> Path:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return target


def plot_feature_importance(importance: pd.Series, target: Path, top: int = 20) -> Path:
    plt = _pyplot()
    data = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(data) + 1))
    ax.barh(data.index, data.to_numpy())
    ax.set_xlabel("share of total gain")
    ax.set_title("XGBoost feature importance")
    return _save(fig, target)


def plot_calibration(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], target: Path, min_count: int = 20
) -> Path:
    """Reliability diagram per outcome for each named forecaster."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    for name, (probs, y) in curves.items():
        table = calibration_table(probs, y, n_bins=10)
        for outcome, ax in zip(OUTCOMES, axes, strict=True):
            # bins with a handful of matches are noise, not miscalibration
            rows = table[(table["class"] == outcome) & (table["count"] >= min_count)]
            ax.plot(rows["mean_predicted"], rows["observed_frequency"], marker="o", label=name)
    for outcome, ax in zip(OUTCOMES, axes, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set_title(f"outcome {outcome}")
        ax.set_xlabel("predicted probability")
    axes[0].set_ylabel("observed frequency")
    axes[0].legend()
    return _save(fig, target)


def plot_grouped_rps(table: pd.DataFrame, group: str, target: Path) -> Path:
    """Bars of mean RPS per group, one bar per forecaster (columns other than `group`/`n`)."""
    plt = _pyplot()
    forecasters = [c for c in table.columns if c not in (group, "n")]
    x = np.arange(len(table))
    width = 0.8 / max(1, len(forecasters))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(table)), 4))
    for i, name in enumerate(forecasters):
        ax.bar(x + i * width, table[name], width, label=name)
    ax.set_xticks(
        x + width * (len(forecasters) - 1) / 2,
        [f"{g}\n(n={n})" for g, n in zip(table[group], table["n"], strict=True)],
    )
    ax.set_ylabel("mean RPS (lower is better)")
    ax.set_ylim(bottom=max(0.0, float(table[forecasters].min().min()) - 0.03))
    ax.legend()
    return _save(fig, target)


def plot_backtest(by_season: list[dict[str, Any]], target: Path) -> Path:
    """Mean RPS per fold season of each forecaster minus the market baseline's."""
    plt = _pyplot()
    seasons = [str(row["season"]) for row in by_season]
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(seasons)), 4))
    for name in ("with_market", "ratings_only", "pinnacle_closing", "elo_only"):
        diff = [row[name]["rps"] - row["market_baseline"]["rps"] for row in by_season]
        ax.plot(seasons, diff, marker="o", label=name)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel("RPS minus market baseline (lower is better)")
    ax.set_title("Walk-forward backtest, one fold per season")
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    return _save(fig, target)
