"""Temporal split by season, seasons being date ranges; matches without a result are upcoming,
never trained on.

The settings name July-June seasons (`split.validation_seasons`, `split.test_seasons`), each a
date range (`soccerpredict.seasons.season_span`). A match of a July-June season ("2019-2020",
the top 5 and most extra leagues) goes with its season, whole: a season's late games, such as
2019-20's in July and August 2020, stay in it, so the top-5 split is exactly what it was. A
match of a calendar-year season ("2019": Scandinavia, Ireland, China ...) goes by its kickoff
date against the same ranges: such a season is cut where it crosses 1 July, like every other
league's calendar, so nothing after the cut is ever trained on. By name alone, "2019" sorts
after "2018-2019" and before "2019-2020", and fell in no split at all.
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
    season = features["season"].astype(str)
    first_held_out = min(params.validation_seasons + params.test_seasons)
    july_june = season.str.fullmatch(r"\d{4}-\d{4}")
    day = features["kickoff_utc"].dt.date
    by_date = {
        "train": day < validation_start,
        "validation": (day >= validation_start) & (day < test_start),
        "test": (day >= test_start) & (day <= test_end),
    }
    by_name = {
        "train": season < first_held_out,
        "validation": season.isin(params.validation_seasons),
        "test": season.isin(params.test_seasons),
    }
    masks = {
        name: played & ((july_june & by_name[name]) | (~july_june & by_date[name]))
        for name in by_date
    }
    masks["upcoming"] = ~played
    return {name: features[mask].reset_index(drop=True) for name, mask in masks.items()}


def extra_split(features: pd.DataFrame, params: SplitParams) -> dict[str, pd.DataFrame]:
    """The extra leagues' played matches by the same dates (their fixtures are not served in
    batch: their files end in 2020)."""
    parts = temporal_split(features, params)
    return {f"extra_{name}": parts[name] for name in ("train", "validation", "test")}
