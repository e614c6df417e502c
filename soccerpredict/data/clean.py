"""Raw → interim: canonical names, configured seasons only, results after `as_of` hidden."""

from __future__ import annotations

from datetime import date

import pandas as pd

from soccerpredict.data.contract import MATCH_COLUMNS, MIN_TEAMS_PER_SEASON
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


# a team is a member of a league's season when it plays at least this share of the season's
# median number of games per team; games with a non-member are play-offs against another
# division's team (or an expunged team's games)
MEMBER_SHARE = 0.5
# a pair meeting home and away at most this many days apart, while fewer than TIE_SHARE of the
# season's member teams play between the two legs, is a two-legged knockout tie (a league round
# has every team playing within a week, a play-off only the teams still in it)
TIE_DAYS = 8
TIE_SHARE = 0.5


def league_games_only(matches: pd.DataFrame) -> pd.DataFrame:
    """Drop cup and play-off games from a league's table, by one rule for every country.

    Per (league, season), with the season's games as the file gives them:
    1. a game with a team that plays fewer than MEMBER_SHARE x the median games per team of that
       season is dropped (promotion/relegation play-offs against a lower division's team);
    2. a pair that meets home and away within TIE_DAYS is a two-legged knockout tie when fewer
       than TIE_SHARE of the members play from the first leg's day to the second's (a
       Liguilla-style play-off between two halves of a season), or when the second leg is within
       TIE_DAYS of the season's last game (European play-offs, play-off finals, while the last
       league round is still played): both legs are dropped. A championship or relegation
       round mid-season, where every team still plays, is kept.
    Scheduled fixtures count as games (a season in progress is judged on what is known). A
    season with fewer than MIN_TEAMS_PER_SEASON member teams (a file ending just after a season
    began) is left out whole: the interim gate would refuse it for every league.
    """
    if matches.empty:
        return matches
    keep = pd.Series(True, index=matches.index)
    for _, season in matches.groupby(["league", "season"], sort=False):
        teams = pd.concat([season["home_team"], season["away_team"]])
        games = teams.value_counts()
        members = set(games.index[games >= MEMBER_SHARE * games.median()])
        outsider = ~(season["home_team"].isin(members) & season["away_team"].isin(members))
        keep[season.index[outsider]] = False
        if len(members) < MIN_TEAMS_PER_SEASON:  # a season only begun: too few to be a league
            keep[season.index] = False
            continue
        day = season["kickoff_utc"].dt.normalize()
        last = day.max()
        legs = pd.DataFrame({"home": season["home_team"], "away": season["away_team"], "day": day})
        pairs = legs.reset_index(names="first").merge(
            legs.reset_index(names="second"),
            left_on=["home", "away"],
            right_on=["away", "home"],
            suffixes=("", "_2"),
        )
        gap = (pairs["day_2"] - pairs["day"]).dt.days
        pairs = pairs[(gap > 0) & (gap <= TIE_DAYS)]
        for first, second, start, end in zip(
            pairs["first"], pairs["second"], pairs["day"], pairs["day_2"], strict=True
        ):
            within = legs[(legs["day"] >= start) & (legs["day"] <= end)]
            playing = set(within["home"]) | set(within["away"])
            at_end = (last - end).days <= TIE_DAYS
            if at_end or len(playing & members) < TIE_SHARE * len(members):
                keep[first] = keep[second] = False
    return matches[keep]


def in_season_range(matches: pd.DataFrame, first: date, last: date) -> pd.Series:
    """Rows whose kickoff day is within [first, last]: seasons selected by date, not by name."""
    day = matches["kickoff_utc"].dt.date
    return (day >= first) & (day <= last)


def to_interim(
    raw: pd.DataFrame,
    leagues: list[str],
    seasons: list[str],
    as_of: date,
    extra_leagues: tuple[list[str], date, date] | None = None,
) -> pd.DataFrame:
    """The configured leagues' seasons (by name); the extra leagues (`(codes, first day, last
    day)`) by kickoff date, their league games only (`league_games_only`)."""
    table = raw[raw["league"].isin(leagues) & raw["season"].isin(seasons)]
    if extra_leagues is not None and extra_leagues[0]:
        codes, first, last = extra_leagues
        extra = raw[raw["league"].isin(codes) & ~raw["league"].isin(leagues)]
        extra = league_games_only(extra[in_season_range(extra, first, last)])
        table = pd.concat([table, extra])
    table = table.copy()
    for side in ("home_team", "away_team"):
        table[side] = table[side].map(canonical_team)
    table = mask_results_after(table, as_of)
    return table[MATCH_COLUMNS].sort_values(
        ["kickoff_utc", "league", "match_id"], ignore_index=True
    )
