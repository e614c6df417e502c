"""The normalized match table: one Arrow schema shared by every stage.

Outcomes are strings ("H", "D", "A"), never magic ints; `OUTCOMES` fixes their order in every
probability array of the project.
"""

from __future__ import annotations

import pyarrow as pa

# 2: more pre-closing books (max, BW, IW, WH, VC), over/under 2.5 and Asian-handicap prices
MATCH_SCHEMA_VERSION = "2"
OUTCOMES: tuple[str, str, str] = ("H", "D", "A")
# what names a match in every table derived from this one (features, splits, predictions)
ID_COLUMNS: list[str] = ["match_id", "league", "season", "kickoff_utc", "home_team", "away_team"]

_ODDS = pa.float64()
# decimal prices a gate accepts (the raw gate checks every odds column against it)
ODDS_RANGE = (1.01, 1000.0)
# goals a gate accepts in one team's score
MAX_GOALS = 20
# fewer distinct teams in a league's season than this is a broken season (the interim gate)
MIN_TEAMS_PER_SEASON = 5
# single books whose pre-closing 1X2 prices are kept besides Bet365 and Pinnacle (dispersion)
BOOKS: tuple[str, ...] = ("bw", "iw", "wh", "vc")

MATCH_SCHEMA = pa.schema(
    [
        pa.field("match_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("league", pa.string(), nullable=False),
        pa.field("season", pa.string(), nullable=False),
        pa.field("kickoff_utc", pa.timestamp("s", tz="UTC"), nullable=False),
        pa.field("home_team", pa.string(), nullable=False),
        pa.field("away_team", pa.string(), nullable=False),
        pa.field("home_goals", pa.int16()),
        pa.field("away_goals", pa.int16()),
        pa.field("result", pa.string()),
        pa.field("ht_home_goals", pa.int16()),
        pa.field("ht_away_goals", pa.int16()),
        pa.field("home_shots", pa.float64()),
        pa.field("away_shots", pa.float64()),
        pa.field("home_shots_on_target", pa.float64()),
        pa.field("away_shots_on_target", pa.float64()),
        # pre-closing prices
        pa.field("b365_home", _ODDS),
        pa.field("b365_draw", _ODDS),
        pa.field("b365_away", _ODDS),
        pa.field("ps_home", _ODDS),
        pa.field("ps_draw", _ODDS),
        pa.field("ps_away", _ODDS),
        pa.field("avg_home", _ODDS),
        pa.field("avg_draw", _ODDS),
        pa.field("avg_away", _ODDS),
        pa.field("max_home", _ODDS),
        pa.field("max_draw", _ODDS),
        pa.field("max_away", _ODDS),
        *[pa.field(f"{book}_{side}", _ODDS) for book in BOOKS for side in ("home", "draw", "away")],
        # market average over / under 2.5 goals, Asian handicap (home line, average prices)
        pa.field("avg_over25", _ODDS),
        pa.field("avg_under25", _ODDS),
        pa.field("ah_line", pa.float64()),
        pa.field("avg_ah_home", _ODDS),
        pa.field("avg_ah_away", _ODDS),
        # Pinnacle closing prices: an evaluation benchmark, never a feature
        pa.field("psc_home", _ODDS),
        pa.field("psc_draw", _ODDS),
        pa.field("psc_away", _ODDS),
    ],
    metadata={"schema_version": MATCH_SCHEMA_VERSION},
)

MATCH_COLUMNS: list[str] = MATCH_SCHEMA.names
CLOSING_ODDS_COLUMNS = ["psc_home", "psc_draw", "psc_away"]
ODDS_COLUMNS = [
    n
    for n in MATCH_COLUMNS
    if n.endswith(("_home", "_draw", "_away", "25"))
    and n.split("_")[0] in {"b365", "ps", "avg", "max", "psc", *BOOKS}
]
# every price known before the close: what `with_market` may read and `ratings_only` never does
PRE_CLOSING_PRICE_COLUMNS = [n for n in ODDS_COLUMNS if n not in CLOSING_ODDS_COLUMNS] + ["ah_line"]
