"""Scraped WhoScored rows against football-data: which matches pair up, where scores differ.

Pairs come from match_id first, then for what is left from the same league, home and away
team on UK-local dates at most one day apart (a kickoff time on either side can move a match
across midnight). Both inputs are MATCH_COLUMNS tables; a `status` column on the scraped side
is carried into the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from soccerpredict.whoscored.model import UK_TZ

_SCORES = {
    "full_time": ("home_goals", "away_goals"),
    "half_time": ("ht_home_goals", "ht_away_goals"),
}
_TEAM_KEYS = ["league", "home_team", "away_team"]
_REPORT = [
    "match_id",
    "source_id",
    "league",
    "season",
    "date_ws",
    "date_fd",
    "home_team",
    "away_team",
    "status",
]
_MAX_DATE_GAP = pd.Timedelta(days=1)


@dataclass
class Reconciliation:
    matched: int
    disagreements: pd.DataFrame  # one row per matched pair and score kind that differs
    only_scraped: pd.DataFrame
    only_football_data: pd.DataFrame
    fallback_matched: int = 0  # pairs found by teams and date, not by match_id
    compared: int = 0  # pairs with a full-time score on both sides
    # pairs where one side has a full-time score and the other none (upcoming, postponed…)
    one_sided_results: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def agreement_rate(self) -> float:
        """Share of the `compared` pairs whose full-time scores agree (nan when none)."""
        if not self.compared:
            return float("nan")
        wrong = int((self.disagreements["kind"] == "full_time").sum())
        return 1.0 - wrong / self.compared


def reconcile(scraped: pd.DataFrame, football_data: pd.DataFrame) -> Reconciliation:
    ws, fd = _with_uk_date(scraped), _with_uk_date(football_data)
    exact = _pairs_by_id(ws, fd)
    fallback = _pairs_by_teams(
        ws.drop(index=pd.Index(exact["ws"])), fd.drop(index=pd.Index(exact["fd"]))
    )
    pairs = pd.concat(
        [exact.assign(fallback=False), fallback.assign(fallback=True)], ignore_index=True
    )
    joined = _join(ws, fd, pairs)
    has_ws, has_fd = _has_score(joined, "_ws"), _has_score(joined, "_fd")
    return Reconciliation(
        matched=len(pairs),
        disagreements=_disagreements(joined),
        only_scraped=scraped.reset_index(drop=True).drop(index=pd.Index(pairs["ws"])),
        only_football_data=football_data.reset_index(drop=True).drop(index=pd.Index(pairs["fd"])),
        fallback_matched=int(pairs["fallback"].sum()),
        compared=int((has_ws & has_fd).sum()),
        one_sided_results=joined.loc[has_ws != has_fd].reset_index(drop=True),
    )


def _with_uk_date(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    kickoff = pd.to_datetime(out["kickoff_utc"], utc=True)
    return out.assign(_date=kickoff.dt.tz_convert(UK_TZ).dt.tz_localize(None).dt.normalize())


def _one_to_one(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs.drop_duplicates("ws").drop_duplicates("fd")[["ws", "fd"]]


def _pairs_by_id(ws: pd.DataFrame, fd: pd.DataFrame) -> pd.DataFrame:
    # pandas would pair missing ids with each other
    left = ws.loc[ws["match_id"].notna(), ["match_id"]].reset_index(names="ws")
    left["_played"] = ws["home_goals"].notna().to_numpy()[left["ws"]]
    right = fd.loc[fd["match_id"].notna(), ["match_id"]].reset_index(names="fd")
    pairs = left.merge(right, on="match_id")
    # two scraped rows on one id (WhoScored's void duplicates): the played one wins
    return _one_to_one(pairs.sort_values("_played", ascending=False, kind="stable"))


def _pairs_by_teams(ws: pd.DataFrame, fd: pd.DataFrame) -> pd.DataFrame:
    left = ws[[*_TEAM_KEYS, "_date"]].reset_index(names="ws")
    right = fd[[*_TEAM_KEYS, "_date"]].reset_index(names="fd")
    candidates = left.merge(right, on=_TEAM_KEYS, suffixes=("_ws", "_fd"))
    candidates["gap"] = (candidates["_date_ws"] - candidates["_date_fd"]).abs()
    close = candidates[candidates["gap"] <= _MAX_DATE_GAP]
    return _one_to_one(close.sort_values("gap", kind="stable"))


def _join(ws: pd.DataFrame, fd: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    a = ws.loc[pairs["ws"]].reset_index(drop=True)
    b = fd.loc[pairs["fd"]].reset_index(drop=True)
    status = a["status"] if "status" in a else pd.Series([None] * len(a), dtype=object)
    joined = pd.DataFrame(
        {
            "match_id": a["match_id"],
            "match_id_fd": b["match_id"],
            "source_id": a["source_id"],
            "league": a["league"],
            "season": a["season"],
            "date_ws": a["_date"].dt.date,
            "date_fd": b["_date"].dt.date,
            "home_team": a["home_team"],
            "away_team": a["away_team"],
            "status": status,
            "fallback": pairs["fallback"].to_numpy(dtype=bool),
        }
    )
    for home, away in _SCORES.values():
        for column in (home, away):
            joined[f"{column}_ws"] = a[column].astype("Int64")
            joined[f"{column}_fd"] = b[column].astype("Int64")
    return joined


def _has_score(joined: pd.DataFrame, suffix: str, kind: str = "full_time") -> pd.Series:
    home, away = _SCORES[kind]
    return joined[f"{home}{suffix}"].notna() & joined[f"{away}{suffix}"].notna()


def _score_text(rows: pd.DataFrame, kind: str, suffix: str) -> pd.Series:
    home, away = _SCORES[kind]
    return rows[f"{home}{suffix}"].astype(str) + "-" + rows[f"{away}{suffix}"].astype(str)


def _disagreements(joined: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for kind, (home, away) in _SCORES.items():
        both = _has_score(joined, "_ws", kind) & _has_score(joined, "_fd", kind)
        differ = (joined[f"{home}_ws"] != joined[f"{home}_fd"]) | (
            joined[f"{away}_ws"] != joined[f"{away}_fd"]
        )
        rows = joined[both & differ.fillna(False).astype(bool)]
        if len(rows):
            parts.append(
                rows[_REPORT].assign(
                    kind=kind,
                    scraped=_score_text(rows, kind, "_ws"),
                    football_data=_score_text(rows, kind, "_fd"),
                )
            )
    if not parts:
        return pd.DataFrame(columns=[*_REPORT, "kind", "scraped", "football_data"])
    return pd.concat(parts, ignore_index=True)
