"""Raw → interim: canonical names, configured seasons only, results after `as_of` hidden."""

from __future__ import annotations

from datetime import date

import pandas as pd

from soccerpredict.data.contract import MATCH_COLUMNS
from soccerpredict.time_rules import played_by

# Columns that only exist once a match is played: hidden for fixtures after `as_of`.
RESULT_COLUMNS = [
    "home_goals",
    "away_goals",
    "result",
    "ht_home_goals",
    "ht_away_goals",
    "home_shots",
    "away_shots",
    "home_shots_on_target",
    "away_shots_on_target",
    "psc_home",
    "psc_draw",
    "psc_away",
]

# football-data spellings are stable across seasons; other sources map onto them here.
TEAM_ALIASES: dict[str, str] = {}


def canonical_team(name: str) -> str:
    name = " ".join(str(name).split())
    return TEAM_ALIASES.get(name, name)


def mask_results_after(matches: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Treat matches after `as_of` as upcoming: nothing learned after kickoff survives."""
    out = matches.copy()
    upcoming = ~played_by(out["kickoff_utc"], as_of)
    for column in RESULT_COLUMNS:
        out[column] = out[column].astype(out[column].dtype).where(~upcoming)
    return out


def with_scraped(raw: pd.DataFrame, scraped: pd.DataFrame) -> pd.DataFrame:
    """football-data's rows plus the scraped matches after its latest one in each league.

    football-data wins everywhere it has data (it carries odds and shot counts); the scraper
    adds what it does not have yet, the current season. Older scraped rows are left out: a
    fixture that moved by a day has another match id, and would come back as a second match.
    Of the scraped rows only finished and upcoming matches join: a postponed or cancelled match
    stays in the scraped table with its status.
    """
    latest = raw.groupby("league")["kickoff_utc"].max()
    cutoff = scraped["league"].map(latest)
    usable = scraped[
        scraped["status"].isin(["finished", "upcoming"])
        & (cutoff.isna() | (scraped["kickoff_utc"] > cutoff))
    ]
    new = usable[~usable["match_id"].isin(raw["match_id"])][MATCH_COLUMNS]
    if new.empty:
        return raw
    return pd.concat([raw, new.astype(raw[MATCH_COLUMNS].dtypes.to_dict())], ignore_index=True)


def to_interim(
    raw: pd.DataFrame, leagues: list[str], seasons: list[str], as_of: date
) -> pd.DataFrame:
    table = raw[raw["league"].isin(leagues) & raw["season"].isin(seasons)].copy()
    for side in ("home_team", "away_team"):
        table[side] = table[side].map(canonical_team)
    table = mask_results_after(table, as_of)
    return table[MATCH_COLUMNS].sort_values(
        ["kickoff_utc", "league", "match_id"], ignore_index=True
    )
