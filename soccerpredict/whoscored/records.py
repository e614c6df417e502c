"""Parsed WhoScored matches -> the raw match contract (MATCH_COLUMNS) plus a `status` column.

Odds: the contract's odds columns each name one bookmaker (b365, ps) or football-data's market
average (avg, psc), so a WhoScored price goes in only where it is provably that bookmaker's:
b365_* when the response's `bookmakerCode` is bet365's, nothing otherwise. WhoScored's
price is a snapshot at scrape time, not football-data's collection time; see the report.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from soccerpredict.data.contract import MATCH_COLUMNS, MATCH_SCHEMA
from soccerpredict.data.ids import make_match_id
from soccerpredict.whoscored.model import UK_TZ, ScrapedMatch
from soccerpredict.whoscored.teams import canonical

SOURCE = "whoscored"
STATUS_COLUMN = "status"
# the scraped table on disk: the match contract plus each match's status (postponed and
# cancelled matches are kept, with no result)
SCRAPED_SCHEMA = MATCH_SCHEMA.append(pa.field(STATUS_COLUMN, pa.string(), nullable=False))
# WhoScored's feed names bookmakers by Oddschecker's codes: B3 is bet365 (SK is Sky Bet).
# Seen as `bookmakerCode: "B3"`, `bookmakers: ["B3", "SK"]` in every saved fixtures response.
BET365_CODES = frozenset({"B3"})

_GOALS = ["home_goals", "away_goals", "ht_home_goals", "ht_away_goals"]
_TEXT = [
    "match_id",
    "source_id",
    "source",
    "league",
    "season",
    "home_team",
    "away_team",
    "result",
    STATUS_COLUMN,
]


def to_match_table(matches: list[ScrapedMatch], league: str, season: str) -> pd.DataFrame:
    """One row per WhoScored match id (a later copy wins: re-fetched months are newer).

    Postponed, cancelled and upcoming matches stay, with no goals and no result.
    """
    unique = {m.source_id: m for m in matches}
    rows = [_row(m, league, season) for m in unique.values()]
    return _typed(pd.DataFrame(rows, columns=[*MATCH_COLUMNS, STATUS_COLUMN]))


def _row(m: ScrapedMatch, league: str, season: str) -> dict[str, Any]:
    home, away = canonical(league, m.home_team), canonical(league, m.away_team)
    kickoff = m.kickoff_utc.astimezone(UTC)
    # ids use the UK-local date, as football-data's do: a 23:30 UTC kickoff in BST is the next day
    uk_date = kickoff.astimezone(UK_TZ).date()
    played = m.status == "finished"
    row: dict[str, Any] = dict.fromkeys(MATCH_COLUMNS)
    row |= {
        "match_id": make_match_id(league, uk_date, home, away),
        "source_id": m.source_id,
        "source": SOURCE,
        "league": league,
        "season": season,
        "kickoff_utc": kickoff,
        "home_team": home,
        "away_team": away,
        STATUS_COLUMN: m.status,
    }
    if played:
        row |= {
            "home_goals": m.home_goals,
            "away_goals": m.away_goals,
            "ht_home_goals": m.ht_home_goals,
            "ht_away_goals": m.ht_away_goals,
            "result": _result(m.home_goals, m.away_goals),
        }
    if m.odds_bookmaker in BET365_CODES:
        row |= {"b365_home": m.odds_home, "b365_draw": m.odds_draw, "b365_away": m.odds_away}
    return row


def _result(home: int | None, away: int | None) -> str | None:
    if home is None or away is None:
        return None
    return "H" if home > away else "A" if away > home else "D"


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Column dtypes that pa.Table.from_pandas(frame, schema=MATCH_SCHEMA) accepts."""
    out = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        values = frame[name]
        if name == "kickoff_utc":
            out[name] = pd.to_datetime(values, utc=True).astype("datetime64[s, UTC]")
        elif name in _GOALS:
            # pandas-stubs leave None out of `where`'s `other`, which pandas accepts (None cells)
            cells = values.where(values.notna(), None).tolist()  # type: ignore[call-overload]
            out[name] = pd.array(cells, dtype="Int16")
        elif name in _TEXT:
            out[name] = values.astype(object).where(values.notna(), None)  # type: ignore[call-overload]
        else:
            out[name] = pd.to_numeric(values, errors="coerce").astype(np.float64)
    return out.reset_index(drop=True)
