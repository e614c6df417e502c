"""Parse football-data.co.uk CSV bytes into the normalized match table (MATCH_COLUMNS).

The reader is lenient on purpose: missing columns become nulls and unparseable dates become
NaT, and the Great Expectations gate downstream reports them. It only refuses input that is
not a football-data file at all (UnrecognizedFormatError).
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd

from soccerpredict.data.contract import BOOKS, MATCH_COLUMNS, MAX_GOALS, ODDS_RANGE
from soccerpredict.data.ids import make_match_id
from soccerpredict.seasons import SEASON_START_MONTH

SOURCE = "football-data"
UK_TZ = "Europe/London"
# Files before 2019-20 carry no Time column; 15:00 UK local is the traditional Saturday
# kickoff, so the UTC instant is right for most matches and at worst a few hours off.
DEFAULT_KICKOFF_TIME = "15:00"

# the extra leagues' Pinnacle prices (closing or of unknown timing): the benchmark, psc_*
_EXTRA_PRICES = {"home": "PH", "draw": "PD", "away": "PA"}
MAIN_REQUIRED = ["Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR"]
EXTRA_REQUIRED = ["Date", "Home", "Away", "HG", "AG", "Res"]
_EXTRA_MARKERS = {"Country", "League", "Season", "Home", "Away", "Res"}

# Alternatives in order of preference; the first one present in the header wins.
_TEAM_ALIASES = {"HomeTeam": ["HomeTeam", "Home", "HT"], "AwayTeam": ["AwayTeam", "Away", "AT"]}
_FLOAT_COLUMNS = {
    "home_shots": ["HS"],
    "away_shots": ["AS"],
    "home_shots_on_target": ["HST"],
    "away_shots_on_target": ["AST"],
    "b365_home": ["B365H"],
    "b365_draw": ["B365D"],
    "b365_away": ["B365A"],
    "ps_home": ["PSH"],
    "ps_draw": ["PSD"],
    "ps_away": ["PSA"],
    # Betbrain average up to 2018-19, the provider's own average from 2019-20 on
    "avg_home": ["AvgH", "BbAvH"],
    "avg_draw": ["AvgD", "BbAvD"],
    "avg_away": ["AvgA", "BbAvA"],
    "max_home": ["MaxH", "BbMxH"],
    "max_draw": ["MaxD", "BbMxD"],
    "max_away": ["MaxA", "BbMxA"],
    **{
        f"{book}_{side}": [f"{book.upper()}{side[0].upper()}"]
        for book in BOOKS
        for side in ("home", "draw", "away")
    },
    # both header forms: the provider's `Avg>2.5` and the shared copies' `Avg_2_5` (`<` -> `_1`)
    "avg_over25": ["Avg>2.5", "Avg_2_5", "BbAv>2.5", "BbAv_2_5"],
    "avg_under25": ["Avg<2.5", "Avg_2_5_1", "BbAv<2.5", "BbAv_2_5_1"],
    "ah_line": ["AHh", "BbAHh"],
    "avg_ah_home": ["AvgAHH", "BbAvAHH"],
    "avg_ah_away": ["AvgAHA", "BbAvAHA"],
    "psc_home": ["PSCH"],
    "psc_draw": ["PSCD"],
    "psc_away": ["PSCA"],
}
_GOAL_COLUMNS = {
    "home_goals": ["FTHG"],
    "away_goals": ["FTAG"],
    "ht_home_goals": ["HTHG"],
    "ht_away_goals": ["HTAG"],
}


class UnrecognizedFormatError(ValueError):
    """The bytes are not a football-data main-format or extra-leagues CSV."""


# ---------------------------------------------------------------- raw text -> string frame


def decode(data: bytes) -> str:
    """Provider files are UTF-8 with a BOM or latin-1; utf-8-sig also reads BOM-less UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_string_frame(text: str) -> pd.DataFrame:
    """All cells as strings ("" when empty), blank and comma-only rows dropped.

    csv instead of pandas.read_csv: provider rows sometimes carry more fields than the
    header, which pandas rejects; here they are padded or cut to the header's width.
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return pd.DataFrame()
    header = [h.strip() for h in rows[0]]
    width = len(header)
    body = [(r + [""] * width)[:width] for r in rows[1:] if any(c.strip() for c in r)]
    frame = pd.DataFrame(body, columns=header, dtype=object)
    return frame.loc[:, [bool(h) and not h.startswith("Unnamed") for h in header]]


def _pick(frame: pd.DataFrame, names: list[str]) -> pd.Series:
    """First of `names` present as a column (cells stripped), else an all-empty column."""
    for name in names:
        if name in frame.columns:
            col = frame[name]
            # duplicate header names give a frame: keep the first copy
            col = col.iloc[:, 0] if isinstance(col, pd.DataFrame) else col
            return col.str.strip()
    return pd.Series([""] * len(frame), index=frame.index, dtype=object)


# ---------------------------------------------------------------- typed columns


def to_float(values: pd.Series) -> pd.Series:
    # "" and other non-numbers coerce to NaN
    return pd.to_numeric(values, errors="coerce").astype("float64")


def to_int16(values: pd.Series) -> pd.Series:
    """Integers that may be written as floats ("6.0") -> nullable Int16."""
    return to_float(values).round().astype("Int16")


def to_text(values: pd.Series) -> pd.Series:
    """Stripped strings with None for empty cells."""
    stripped = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    # pandas-stubs leave None out of `where`'s `other`, which pandas accepts (None cells)
    return stripped.where(stripped != "", None).astype(object)  # type: ignore[call-overload]


def parse_dates(values: pd.Series) -> pd.Series:
    """Day-first dates in either dd/mm/yy or dd/mm/yyyy, per cell; anything else -> NaT."""
    text = values.astype(str).str.strip()
    long = pd.to_datetime(
        text.where(text.str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}")), format="%d/%m/%Y", errors="coerce"
    )
    short = pd.to_datetime(
        text.where(text.str.fullmatch(r"\d{1,2}/\d{1,2}/\d{2}")), format="%d/%m/%y", errors="coerce"
    )
    return long.fillna(short)


def parse_times(values: pd.Series) -> pd.Series:
    """ "HH:MM" -> timedelta; empty cells take DEFAULT_KICKOFF_TIME, garbage gives NaT."""
    text = values.astype(str).str.strip().replace("", DEFAULT_KICKOFF_TIME)
    ok = text.str.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?")
    text = text.where(~ok | (text.str.count(":") == 2), text + ":00")
    return pd.to_timedelta(text.where(ok), errors="coerce")


def uk_local_to_utc(dates: pd.Series, times: pd.Series) -> pd.Series:
    """Europe/London wall-clock date+time -> UTC instants at second resolution.

    Ambiguous wall times (the October fall-back hour) are read as GMT and nonexistent ones
    (the March spring-forward hour) shifted forward; no match kicks off at those hours.
    """
    local = (dates + times).dt.tz_localize(
        UK_TZ, ambiguous=np.zeros(len(dates), dtype=bool), nonexistent="shift_forward"
    )
    return local.dt.tz_convert("UTC").astype("datetime64[s, UTC]")


def season_from_date(dates: pd.Series) -> pd.Series:
    """`soccerpredict.seasons`' rule, vectorised: Aug 2019 -> "2019-2020", May 2020 -> "2019-2020".

    Caveat: the COVID-extended 2019-20 seasons ran into July/August 2020, which this rule
    labels 2020-2021; callers that know the season (from the file name) should pass it.
    """
    year = dates.dt.year.astype("Int64")
    start = year - (dates.dt.month.astype("Int64") < SEASON_START_MONTH).astype("Int64")
    labels = start.astype(str) + "-" + (start + 1).astype(str)
    return labels.where(dates.notna(), None).astype(object)


def match_ids(league: pd.Series, dates: pd.Series, home: pd.Series, away: pd.Series) -> pd.Series:
    """make_match_id per row; None where the league, date or a team is missing."""
    ids = [
        make_match_id(lg, d.date(), h, a)
        if isinstance(lg, str) and pd.notna(d) and isinstance(h, str) and isinstance(a, str)
        else None
        for lg, d, h, a in zip(league, dates, home, away, strict=True)
    ]
    return pd.Series(ids, index=home.index, dtype=object)


# ---------------------------------------------------------------- format detection


def is_extra_format(header: list[str]) -> bool:
    return _EXTRA_MARKERS.issubset(header)


def is_main_format(header: list[str]) -> bool:
    return "Date" in header or any(a in header for a in _TEAM_ALIASES["HomeTeam"][:2])


def _missing(frame: pd.DataFrame, required: list[str]) -> list[str]:
    present = set(frame.columns)
    # the team columns count as present under any of their aliases
    return [c for c in required if not set(_TEAM_ALIASES.get(c, [c])) & present]


# ---------------------------------------------------------------- assembling the table


def _assemble(
    core: dict[str, pd.Series], frame: pd.DataFrame, with_stats_and_odds: bool, missing: list[str]
) -> pd.DataFrame:
    """Fill every MATCH_COLUMN (odds/stats from `frame` or null) and fix the column order."""
    n = len(frame)
    out = pd.DataFrame(index=frame.index)
    for name in MATCH_COLUMNS:
        if name in core:
            out[name] = core[name]
        elif name in _FLOAT_COLUMNS:
            out[name] = (
                to_float(_pick(frame, _FLOAT_COLUMNS[name]))
                if with_stats_and_odds
                else pd.Series(np.full(n, np.nan), index=frame.index)
            )
        elif name in _GOAL_COLUMNS:
            out[name] = to_int16(_pick(frame, _GOAL_COLUMNS[name]))
        else:
            out[name] = pd.Series([None] * n, index=frame.index, dtype=object)
    out = out.reset_index(drop=True)
    out.attrs["missing_columns"] = missing
    return out


def _core_columns(
    league: pd.Series,
    season: pd.Series,
    dates: pd.Series,
    times: pd.Series,
    home: pd.Series,
    away: pd.Series,
    result: pd.Series,
) -> dict[str, pd.Series]:
    return {
        "match_id": match_ids(league, dates, home, away),
        "source": pd.Series([SOURCE] * len(home), index=home.index, dtype=object),
        "league": league,
        "season": season,
        "kickoff_utc": uk_local_to_utc(dates, times),
        "home_team": home,
        "away_team": away,
        "result": result,
    }


def _constant(value: str | None, index: pd.Index) -> pd.Series:
    return pd.Series([value] * len(index), index=index, dtype=object)


def read_football_data_csv(
    data: bytes, league: str | None = None, season: str | None = None
) -> pd.DataFrame:
    """One football-data CSV (main or extra-leagues format) -> MATCH_COLUMNS frame.

    `league` defaults to the Div column; `season` to the July-1 season of each kickoff date.
    Missing required columns are listed in `df.attrs["missing_columns"]`.
    """
    frame = read_string_frame(decode(data))
    header = list(frame.columns)
    if is_extra_format(header):
        return read_extra_league_csv(data, league)
    if not is_main_format(header):
        raise UnrecognizedFormatError(
            "not a football-data CSV: expected a 'Date' and a 'HomeTeam' (or 'Home') column "
            f"(main format) or Country,League,Season,Home,Away,Res (extra leagues); got "
            f"header {header[:12]}"
        )
    dates = parse_dates(_pick(frame, ["Date"]))
    lg = _constant(league, frame.index) if league else to_text(_pick(frame, ["Div"]))
    sn = _constant(season, frame.index) if season else season_from_date(dates)
    core = _core_columns(
        lg,
        sn,
        dates,
        parse_times(_pick(frame, ["Time"])),
        to_text(_pick(frame, _TEAM_ALIASES["HomeTeam"])),
        to_text(_pick(frame, _TEAM_ALIASES["AwayTeam"])),
        to_text(_pick(frame, ["FTR"])),
    )
    goals = {"FTHG": "home_goals", "FTAG": "away_goals"}
    core |= {dst: to_int16(_pick(frame, [src])) for src, dst in goals.items()}
    return _assemble(core, frame, True, _missing(frame, MAIN_REQUIRED))


def normalize_extra_season(values: pd.Series) -> pd.Series:
    """ "2012/2013" -> "2012-2013"; calendar-year seasons ("2012") stay as they are."""
    return to_text(values.astype(str).str.replace("/", "-", regex=False))


def read_extra_league_csv(data: bytes, league_code: str | None = None) -> pd.DataFrame:
    """football-data "extra leagues" file (one multi-season file per country) -> MATCH_COLUMNS.

    The 2020-vintage PH/PD/PA (and Max/Avg) have uncertain timing: newer versions of the same
    files label them closing prices (PSCH...). Used as pre-closing prices they would leak late
    market information into features, so no pre-closing column (ps_*, avg_*, max_*, ...) is
    filled. Pinnacle's PH/PD/PA go to psc_*, the closing-price columns: a benchmark to score
    forecasts against, never a feature (as for the main leagues' Pinnacle close). Max/Avg are
    not kept. There are no match stats (shots stay null).
    The Time column is taken as UK local time, as in the main files (the provider publishes
    one time convention), not the venue's local time.
    """
    frame = read_string_frame(decode(data))
    if not is_extra_format(list(frame.columns)):
        raise UnrecognizedFormatError(
            "not a football-data extra-leagues CSV: expected columns "
            f"Country,League,Season,Date,Time,Home,Away,HG,AG,Res; got {list(frame.columns)[:12]}"
        )
    dates = parse_dates(_pick(frame, ["Date"]))
    lg = _constant(league_code, frame.index) if league_code else to_text(_pick(frame, ["Country"]))
    core = _core_columns(
        lg,
        normalize_extra_season(_pick(frame, ["Season"])),
        dates,
        parse_times(_pick(frame, ["Time"])),
        to_text(_pick(frame, ["Home"])),
        to_text(_pick(frame, ["Away"])),
        to_text(_pick(frame, ["Res"])),
    )
    core |= {
        "home_goals": to_int16(_pick(frame, ["HG"])),
        "away_goals": to_int16(_pick(frame, ["AG"])),
    }
    out = _assemble(core, frame, False, _missing(frame, EXTRA_REQUIRED))
    prices = pd.DataFrame(
        {side: to_float(_pick(frame, [col])).to_numpy() for side, col in _EXTRA_PRICES.items()}
    )
    # a benchmark, not a record: a row with a price no book quotes (0, 1.0, a typo) has none,
    # rather than stopping the raw gate for a column no model reads
    usable = prices.apply(lambda c: c.between(*ODDS_RANGE)).all(axis=1)
    for side in _EXTRA_PRICES:
        out[f"psc_{side}"] = prices[side].where(usable).to_numpy()
    benchmark_dropped = (prices.notna().any(axis=1) & ~usable).to_numpy()
    # the schema has no competition column; keep the (whitespace-stripped) names for reports
    competitions = to_text(_pick(frame, ["League"])).dropna().unique()
    kept = _playable_extra_rows(out)
    out = out[kept].reset_index(drop=True)
    out.attrs["competitions"] = sorted(str(c) for c in competitions)
    out.attrs["missing_columns"] = _missing(frame, EXTRA_REQUIRED)
    out.attrs["benchmark_prices_dropped"] = int(benchmark_dropped[kept.to_numpy()].sum())
    out.attrs["rows_dropped"] = int((~kept).sum())
    return out


def _playable_extra_rows(table: pd.DataFrame) -> pd.Series:
    """The rows of an extra-leagues file that are whole matches: a date, both teams, goals and a
    result that agree (these files list played matches), once per match id. These files are
    other countries' and held back ones are read unseen: a broken row is dropped (and counted in
    the manifest) instead of stopping the raw gate for every league. The main leagues' files
    keep the strict gate."""
    home, away = table["home_goals"], table["away_goals"]
    expected = np.select(
        [
            (home > away).fillna(False).to_numpy(dtype=bool),
            (home < away).fillna(False).to_numpy(dtype=bool),
        ],
        ["H", "A"],
        "D",
    )
    whole = (
        table["match_id"].notna()
        & table["home_goals"].notna()
        & table["away_goals"].notna()
        & table["home_goals"].between(0, MAX_GOALS)
        & table["away_goals"].between(0, MAX_GOALS)
    ).fillna(False)
    agrees = table["result"].astype(object).eq(pd.Series(expected, index=table.index))
    ok = (whole & agrees).astype(bool)
    return ok & ~(table["match_id"].duplicated() & ok)


__all__ = [
    "DEFAULT_KICKOFF_TIME",
    "UnrecognizedFormatError",
    "read_extra_league_csv",
    "read_football_data_csv",
]
