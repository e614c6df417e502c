"""The old WhoScored mobile-app API (mapi01.whoscored.com, 2015-2018): stage and match files.

`GET /Stages/Show/{stageId}` lists a stage's fixtures with scores; `GET /Matches/Show/{id}`
one match with `periodResults` ("HT 1:0 - FT 1:3"). Status codes are the site's (STATUS).
The API carries no season label, only the season id inside `wsStatisticsUrl`, so the label
comes from the fixtures' dates.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from soccerpredict.seasons import season_of
from soccerpredict.whoscored.model import (
    UK_TZ,
    PageStructureError,
    ScrapedMatch,
    load_json,
    parse_utc,
    require,
    status_name,
)

# (regionCode, tournamentId) -> football-data code, for the five leagues football-data covers
TOP_LEAGUES: dict[tuple[str, int], str] = {
    ("gb-eng", 2): "E0",
    ("es", 4): "SP1",
    ("it", 5): "I1",
    ("de", 3): "D1",
    ("fr", 22): "F1",
}
_STATS_URL_RE = re.compile(
    r"/Regions/(\d+)/Tournaments/(\d+)/Seasons/(\d+)/Stages/(\d+)", re.IGNORECASE
)
_HALF_TIME_RE = re.compile(r"\bHT\s*(\d+)\s*:\s*(\d+)")


def parse_legacy_stage(text: str) -> tuple[dict[str, Any], list[ScrapedMatch]]:
    """A /Stages/Show/{id} response -> (stage info, its fixtures)."""
    doc = load_json(text.lstrip("\ufeff"), None, "legacy stage")
    fixtures = require(doc, "fixtures", list, None, "legacy stage")
    info = _stage_info(doc)
    matches = [_fixture(raw, info["stageId"]) for raw in fixtures]
    info["season"] = _season_label([m.kickoff_utc for m in matches])
    return info, matches


def legacy_league_season(info: dict[str, Any]) -> tuple[str, str] | None:
    """(football-data code, "YYYY-YYYY") for a top-5 league stage, None for cups and others."""
    league = TOP_LEAGUES.get((info.get("regionCode", ""), info.get("tournamentId", -1)))
    season = info.get("season")
    return (league, season) if league and season else None


def parse_legacy_match(text: str) -> ScrapedMatch:
    """A /Matches/Show/{id} response -> ScrapedMatch, half-time from `periodResults`."""
    doc = load_json(text.lstrip("\ufeff"), None, "legacy match")
    info = require(doc, "info", dict, None, "legacy match")
    match_id = str(require(doc, "id", (int, str), None, "legacy match"))
    base = _fixture(info | {"id": match_id}, info.get("stageId"))
    half = _HALF_TIME_RE.search(info.get("periodResults") or "")
    if base.status != "finished" or half is None:
        return base
    return replace(base, ht_home_goals=int(half[1]), ht_away_goals=int(half[2]))


def _stage_info(doc: dict[str, Any]) -> dict[str, Any]:
    url = doc.get("wsStatisticsUrl") or ""
    ids = _STATS_URL_RE.search(url)
    if ids is None:
        raise PageStructureError(
            None,
            f"legacy stage: wsStatisticsUrl {url!r} has no "
            "/Regions/{r}/Tournaments/{t}/Seasons/{s}/Stages/{id}",
        )
    return {
        "name": doc.get("name"),
        "regionCode": doc.get("regionCode"),
        "tournamentId": doc.get("tournamentId"),
        "regionId": int(ids[1]),
        "seasonId": int(ids[3]),
        "stageId": int(ids[4]),
        "wsStatisticsUrl": url,
    }


def _fixture(raw: Any, stage_id: int | None) -> ScrapedMatch:
    mid = str(require(raw, "id", (int, str), None, "legacy fixture"))
    where = f"legacy fixture {mid}"
    status = status_name(raw.get("status"), mid, None)
    played = status == "finished"
    # cancelled fixtures carry 0-0 placeholders: scores count only when finished
    return ScrapedMatch(
        source_id=mid,
        stage_id=stage_id,
        kickoff_utc=parse_utc(require(raw, "startTimeUtc", str, None, where), None, where),
        home_team=require(raw, "homeName", str, None, where),
        away_team=require(raw, "awayName", str, None, where),
        status=status,
        home_goals=require(raw, "homeScore", int, None, where) if played else None,
        away_goals=require(raw, "awayScore", int, None, where) if played else None,
    )


def _season_label(kickoffs: list[datetime]) -> str | None:
    """The season of the earliest fixture, UK local: Aug 2012 -> "2012-2013"."""
    if not kickoffs:
        return None
    return season_of(min(kickoffs).astimezone(UK_TZ).date())
