"""Build the feature table: one row per match, each feature known before its kickoff."""

from __future__ import annotations

import math
from itertools import groupby
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.config import FeatureParams
from soccerpredict.data.contract import ID_COLUMNS
from soccerpredict.features.market import (
    EXTRA_MARKET_FEATURES,
    MARKET_FEATURES,
    extra_market_features,
    market_features,
)
from soccerpredict.features.state import LeagueState

# 2: online Poisson goal and shot ratings, extra-market features, the baseline books' prices
FEATURE_SCHEMA_VERSION = "2"

STATE_FEATURES: list[str] = [
    "elo_home",
    "elo_away",
    "elo_diff",
    "elo_expected_home",
    "pi_home",
    "pi_away",
    "pi_expected_gd",
    "gm_lambda_home",
    "gm_lambda_away",
    "gm_prob_home",
    "gm_prob_draw",
    "gm_prob_away",
    "sot_lambda_home",
    "sot_lambda_away",
    *[
        f"form_{name}_{side}"
        for side in ("home", "away")
        for name in ("n", "goals_for", "goals_against", "points", "sot")
    ],
    "rest_days_home",
    "rest_days_away",
    "h2h_n",
    "h2h_points_home",
    "h2h_goal_diff_home",
]
# the pre-closing 1X2 prices the market baseline chooses among (never closing ones)
BASELINE_BOOKS: tuple[str, ...] = ("ps", "avg", "max")
PRICE_COLUMNS: list[str] = [
    f"{book}_{side}" for book in BASELINE_BOOKS for side in ("home", "draw", "away")
]
FEATURE_COLUMNS: list[str] = (
    STATE_FEATURES + MARKET_FEATURES + EXTRA_MARKET_FEATURES + PRICE_COLUMNS
)
# what `ratings_only` may read: no price and nothing derived from one
RATINGS_COLUMNS: list[str] = list(STATE_FEATURES)

# carried along for evaluation only: the target and the closing line
EVAL_COLUMNS = ["result", "home_goals", "away_goals", "psc_home", "psc_draw", "psc_away"]


def feature_contract() -> dict[str, object]:
    """What a model trained on these features expects; logged with the model, checked by Serve."""
    return {"schema_version": FEATURE_SCHEMA_VERSION, "columns": list(FEATURE_COLUMNS)}


_REPLAY_COLUMNS = [
    "match_id",
    "season",
    "home_team",
    "away_team",
    "result",
    "home_goals",
    "away_goals",
    "home_shots_on_target",
    "away_shots_on_target",
]


def _records(league: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain dicts, one per match, in kickoff order: row access through pandas is 50x slower."""
    frame = league.sort_values(["kickoff_utc", "match_id"])
    cols = [c for c in _REPLAY_COLUMNS if c in frame.columns]
    # pandas-stubs leave None out of `where`'s `other`, which pandas accepts (None cells)
    cells = frame[cols].astype(object).where(frame[cols].notna(), None)  # type: ignore[call-overload]
    records: list[dict[str, Any]] = cells.to_dict("records")
    for record, day in zip(records, frame["kickoff_utc"].dt.date, strict=True):
        record["day"] = day
    return records


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _learn(state: LeagueState, match: dict[str, Any]) -> None:
    if match["result"] is None or match["home_goals"] is None:
        return  # upcoming or unfinished: nothing to learn
    state.update(
        str(match["home_team"]),
        str(match["away_team"]),
        match["day"],
        int(match["home_goals"]),
        int(match["away_goals"]),
        _float(match.get("home_shots_on_target")),
        _float(match.get("away_shots_on_target")),
    )


def replay_league(league: pd.DataFrame, params: FeatureParams) -> tuple[pd.DataFrame, LeagueState]:
    """Replay one league day by day: read every fixture of a day, then learn its results.

    Learning a whole day only after reading it keeps same-day results out of same-day features.
    """
    teams_by_season = {
        s: set(g["home_team"]) | set(g["away_team"]) for s, g in league.groupby("season")
    }
    state, rows = LeagueState(params), []
    for _, fixtures in groupby(_records(league), key=lambda m: m["day"]):
        day_matches = list(fixtures)
        for match in day_matches:
            if match["season"] != state.season:
                state.start_season(str(match["season"]), teams_by_season[match["season"]])
            rows.append(
                {"match_id": match["match_id"]}
                | state.features(str(match["home_team"]), str(match["away_team"]), match["day"])
            )
        for match in day_matches:
            _learn(state, match)
    return pd.DataFrame(rows, columns=["match_id", *STATE_FEATURES]), state


def build_features(matches: pd.DataFrame, params: FeatureParams) -> pd.DataFrame:
    """Features for every match of the given leagues (pure: no I/O, no Ray)."""
    return build_features_and_states(matches, params)[0]


def build_features_and_states(
    matches: pd.DataFrame, params: FeatureParams
) -> tuple[pd.DataFrame, dict[str, LeagueState]]:
    """The feature table and each league's state after its last match (what Serve answers from).

    The caller's index is ignored: frames concatenated from several files repeat index labels,
    and the market join must not pair one file's rows with another's.
    """
    matches = matches.reset_index(drop=True)
    replays = {
        str(league): replay_league(group, params)
        for league, group in matches.groupby("league", sort=True)
    }
    parts = [table for table, _ in replays.values()]
    state = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["match_id", *STATE_FEATURES])
    )
    base = matches[[c for c in ID_COLUMNS + EVAL_COLUMNS if c in matches.columns]]
    prices = matches.reindex(columns=PRICE_COLUMNS).astype(np.float64)
    table = (
        base.join(market_features(matches))
        .join(extra_market_features(matches))
        .join(prices)
        .merge(state, on="match_id", how="left")
    )
    table[FEATURE_COLUMNS] = table[FEATURE_COLUMNS].astype(np.float64)
    table = table[[*base.columns, *FEATURE_COLUMNS]].sort_values(
        ["kickoff_utc", "league", "match_id"], ignore_index=True
    )
    return table, {league: st for league, (_, st) in replays.items()}
