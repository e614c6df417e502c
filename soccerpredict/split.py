"""Temporal split by kickoff date; matches without a result are upcoming, never trained on.

The settings name seasons (`split.validation_seasons`, `split.test_seasons`); they become date
ranges (`soccerpredict.seasons.season_span`), and every league's matches are assigned by their
kickoff date: validation from the first validation season's first day, test from the first
test season's first day to the last test season's last day, training everything before. One
cut for every league, so a calendar-year season ("2019": March to November) is split where it
crosses 1 July, and nothing of any league after the cut is ever trained on. For the top-5
leagues (seasons August to May, COVID's 2019-20 into August 2020, all test) this is exactly the
old assignment by season name.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from soccerpredict.config import SplitParams
from soccerpredict.seasons import season_span

SPLITS = ("train", "validation", "test", "upcoming")
# the extra leagues' tables (`data.extra_leagues`): played matches only, the same date ranges
EXTRA_SPLITS = ("extra_train", "extra_validation", "extra_test")


def split_dates(params: SplitParams) -> tuple[date, date, date]:
    """(first validation day, first test day, last test day) of the configured seasons."""
    validation = [season_span(s) for s in params.validation_seasons]
    test = [season_span(s) for s in params.test_seasons]
    if max(end for _, end in validation) >= min(start for start, _ in test):
        raise ValueError("validation seasons must all come before the test seasons")
    return (
        min(start for start, _ in validation),
        min(start for start, _ in test),
        max(end for _, end in test),
    )


def temporal_split(features: pd.DataFrame, params: SplitParams) -> dict[str, pd.DataFrame]:
    played = features["result"].notna()
    validation_start, test_start, test_end = split_dates(params)
    day = features["kickoff_utc"].dt.date
    masks = {
        "train": played & (day < validation_start),
        "validation": played & (day >= validation_start) & (day < test_start),
        "test": played & (day >= test_start) & (day <= test_end),
        "upcoming": ~played,
    }
    return {name: features[mask].reset_index(drop=True) for name, mask in masks.items()}


def extra_split(features: pd.DataFrame, params: SplitParams) -> dict[str, pd.DataFrame]:
    """The extra leagues' played matches by the same dates (their fixtures are not served in
    batch: their files end in 2020)."""
    parts = temporal_split(features, params)
    return {f"extra_{name}": parts[name] for name in ("train", "validation", "test")}
