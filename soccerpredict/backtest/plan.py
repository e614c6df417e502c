"""Which seasons each fold of the walk-forward backtest trains, validates and predicts on, and
the served predictor's fold, the walk-forward's next one (pure: seasons only, no models)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from soccerpredict.config import BacktestParams
from soccerpredict.seasons import season_span


@dataclass(frozen=True)
class Fold:
    season: str
    train_seasons: tuple[str, ...]
    validation_seasons: tuple[str, ...]
    # the drift reference is drawn from the latest this-many training seasons (0: all of them),
    # as the register stage draws the champion's (drift.reference_last_seasons)
    reference_last_seasons: int = 0


def make_folds(
    seasons: list[str], params: BacktestParams, reference_last_seasons: int = 0
) -> list[Fold]:
    """One fold per season in [first_season, last_season] with at least one training season."""
    ordered = sorted(set(seasons))
    folds = []
    for i, season in enumerate(ordered):
        if not params.first_season <= season <= params.last_season:
            continue
        train, val = _train_and_validation(ordered[:i], params.validation_seasons)
        if train and val:
            folds.append(Fold(season, train, val, reference_last_seasons))
    return folds[-params.max_folds :] if params.max_folds else folds


def _train_and_validation(
    earlier: list[str], validation_seasons: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    val = tuple(earlier[-validation_seasons:]) if earlier else ()
    return tuple(earlier[: len(earlier) - len(val)]), val


# the season a production fold is named for: after every season of its data
NEXT = "next"


def next_fold(seasons: list[str], params: BacktestParams, reference_last_seasons: int = 0) -> Fold:
    """The walk-forward's next fold, for the seasons after the data: trained on every season
    given but the last `validation_seasons`, validated on those (the served predictor)."""
    train, val = _train_and_validation(sorted(set(seasons)), params.validation_seasons)
    if not train:
        raise ValueError(
            f"refitting on the latest seasons needs more than {params.validation_seasons} "
            f"played season(s) (backtest.validation_seasons); the data has {sorted(set(seasons))}"
        )
    return Fold(NEXT, train, val, reference_last_seasons)


def extra_fold_tables(
    extra: pd.DataFrame | None, fold: Fold
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The extra leagues' played rows the fold may train and validate on, by date: before its
    validation seasons, and within them (calendar-year seasons fall where their dates do).

    When those seasons hold none of their matches (the extra leagues' files end in 2020; the
    served predictor's fold validates on later seasons), they validate on their own latest
    stretch as long as the validation seasons, up to their last played day before the fold's
    validation seasons end, and train on what comes before it."""
    if extra is None or extra.empty:
        return None
    played = extra[extra["result"].notna()]
    day = played["kickoff_utc"].dt.date
    start = season_span(fold.validation_seasons[0])[0]
    end = season_span(fold.validation_seasons[-1])[1]
    within = (day >= start) & (day <= end)
    if not within.any() and (day < start).any():
        last = day[day < start].max()
        start, end = last - (end - start), last
        within = (day >= start) & (day <= end)
    return played[day < start], played[within]
