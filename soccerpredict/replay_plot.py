"""The replay's picture: per design, a season-by-week strip of the model's excess RPS over the
market baseline, with a mark in each week an alert fired."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from soccerpredict.plots import _pyplot, _save
from soccerpredict.replay import ALERTS

_MARKS = {"window_drift": ("s", 0.3), "column_drift": ("o", 0.0), "quality": ("^", -0.3)}


def plot_replay(rows: pd.DataFrame, designs: list[str], target: Path) -> Path:
    plt = _pyplot()
    seasons = sorted(rows["season"].unique())
    grid = rows.pivot(index="season", columns="week", values="excess_rps").reindex(seasons)
    limit = float(np.nanmax(np.abs(grid.to_numpy()))) or 0.01
    fig, axes = plt.subplots(
        1,
        len(designs),
        figsize=(7 * len(designs), 0.45 * len(seasons) + 2),
        sharey=True,
        squeeze=False,
    )
    for ax, design in zip(axes[0], designs, strict=True):
        image = ax.imshow(
            grid.to_numpy(),
            aspect="auto",
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            extent=(0.5, grid.shape[1] + 0.5, len(seasons) - 0.5, -0.5),
        )
        for alert in ALERTS:
            marker, offset = _MARKS[alert]
            fired = rows[rows[f"{design}_{alert}"].astype(bool)]
            ax.scatter(
                fired["week"],
                [seasons.index(s) - offset for s in fired["season"]],
                marker=marker,
                s=14,
                c="black",
                label=alert.replace("_", " "),
            )
        ax.set_title(f"{design}: alerts over the model's excess RPS")
        ax.set_xlabel("week of the season (window end)")
        ax.set_yticks(range(len(seasons)), seasons)
    axes[0][0].legend(loc="lower left", fontsize=7, ncol=3)
    fig.colorbar(image, ax=axes[0].tolist(), label="model RPS - market baseline RPS, window")
    return _save(fig, target)
