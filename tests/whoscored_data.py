"""WhoScored test files: the real shared folder (WHOSCORED_DIR, else DATA_DIR/../whoscored),
or, without it, generated files with the same layout, names and formats carrying the facts the
tests check (ids, teams, scores, odds), plus football-data CSVs that agree with them. Counts
differ: tests gate the real-only numbers on `files.real`."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.synthetic import round_robin

UK = ZoneInfo("Europe/London")
MONTHS_GLOB = "fixtures_json/soccerdata_epl-2020-21_stage18685_month*.json"
CALENDAR = "fixtures_json/soccerdata_epl-2020-21_wsCalendar.json"
SEASON_2020 = "season_pages/soccerdata_epl_season-2020-21.html"
SEASON_DEFAULT = "season_pages/soccerdata_epl_default-season-2024-25.html"
MC_HTML = "match_centre/raw_html/match_1650630_barcelona-rayo_laliga-2022-23_live.html.gz"
MC_EPL = "match_centre/json/soccerdata_1485184_burnley-manutd_epl-2020-21.json"
MC_SERIE_A = "match_centre/json/socceraction_1005916_empoli-chievo_seriea-2015-16.json"
LIVESCORES = "livescores_fragment/zaynvirkk_livescores_epl_fragment_with_1x2_odds.html"
LEGACY = "legacy_mobile_api"


@dataclass(frozen=True)
class WhoScoredFiles:
    root: Path
    football_data: Path | None  # the football-data folder that goes with `root`, if any
    real: bool


def whoscored_dir() -> Path | None:
    """The real saved WhoScored folder, or None (tests/test_scrape.py uses this too)."""
    value = os.environ.get("WHOSCORED_DIR")
    if value:
        return Path(value) if Path(value).is_dir() else None
    data = os.environ.get("DATA_DIR")
    guess = Path(data).parent / "whoscored" if data else None
    return guess if guess is not None and guess.is_dir() else None


def whoscored_files(tmp: Path) -> WhoScoredFiles:
    real = whoscored_dir()
    if real is not None:
        data = os.environ.get("DATA_DIR")
        football = Path(data) if data and Path(data, "E0").is_dir() else None
        return WhoScoredFiles(real, football, True)
    return WhoScoredFiles(
        write_whoscored(tmp / "whoscored"), write_football_data(tmp / "fd"), False
    )


# ------------------------------------------------------------------ the generated world


@dataclass(frozen=True)
class Fixture:
    match_id: int
    kickoff_utc: datetime
    home: tuple[str, str]  # (WhoScored name, football-data name)
    away: tuple[str, str]
    score: tuple[int, int] | None
    half_time: tuple[int, int] | None
    status: int = 6  # WhoScored's code
    fd_score: tuple[int, int] | None = None  # football-data's, when it differs (awarded)


def season(
    teams: dict[str, str], first: date, gap_days: int, first_id: int, seed: int
) -> list[Fixture]:
    rng = random.Random(seed)
    out: list[Fixture] = []
    for r, pairs in enumerate(round_robin(sorted(teams))):
        day = first + timedelta(days=r * gap_days)
        for i, (home, away) in enumerate(pairs):
            kickoff = datetime.combine(day, time((12, 15, 19)[i % 3]), tzinfo=UTC)
            hg, ag = rng.randint(0, 3), rng.randint(0, 3)
            out.append(
                Fixture(
                    first_id + len(out),
                    kickoff,
                    (home, teams[home]),
                    (away, teams[away]),
                    (hg, ag),
                    (rng.randint(0, hg), rng.randint(0, ag)),
                )
            )
    return out


def _override(fixtures: list[Fixture], home: str, away: str, **changes: Any) -> list[Fixture]:
    return [
        replace(f, **changes) if (f.home[0], f.away[0]) == (home, away) else f for f in fixtures
    ]


def epl_2020() -> list[Fixture]:
    teams = {
        "Burnley": "Burnley",
        "Manchester United": "Man United",
        "Manchester City": "Man City",
        "West Bromwich Albion": "West Brom",
        "Sheffield United": "Sheffield United",
        "Wolves": "Wolves",
    }
    out = season(teams, date(2020, 9, 12), 24, 1480000, seed=1)
    out = _override(
        out,
        "Burnley",
        "Manchester United",
        match_id=1485184,
        score=(0, 1),
        kickoff_utc=datetime(2021, 1, 12, 20, 15, tzinfo=UTC),
        half_time=(0, 0),
    )
    late = out[3]  # 23:30 UTC in BST is the next UK day: ids must take the UK date
    return _override(
        out, late.home[0], late.away[0], kickoff_utc=late.kickoff_utc.replace(hour=23, minute=30)
    )


# stage id -> (name, regionCode, its wsStatisticsUrl between /Regions/ and /Stages/)
LEGACY_HEADERS = {
    13796: ("Premier League", "gb-eng", "252/Tournaments/2/Seasons/6335"),
    6739: ("Serie A", "it", "108/Tournaments/5/Seasons/3512"),
    15177: ("Championship", "gb-eng", "252/Tournaments/7/Seasons/6848"),
}


def legacy_stages() -> dict[int, list[Fixture]]:
    epl = season(
        {
            "Man Utd": "Man United",
            "Arsenal": "Arsenal",
            "Tottenham": "Tottenham",
            "West Brom": "West Brom",
        },
        date(2016, 8, 13),
        14,
        1100000,
        seed=2,
    )
    serie_a = season(
        {"AC Milan": "Milan", "Robur Siena": "Siena", "Cagliari": "Cagliari", "Roma": "Roma"},
        date(2012, 9, 2),
        14,
        650000,
        seed=3,
    )
    # as in the real stage 6739: WhoScored says postponed, football-data has the 0-3 award
    serie_a = _override(
        serie_a, "Cagliari", "Roma", status=2, score=None, half_time=None, fd_score=(0, 3)
    )
    # a stage legacy_league_season must refuse (a cup group is checked in the tests)
    second = season({"Leeds": "Leeds", "Derby": "Derby"}, date(2017, 8, 5), 14, 1180000, 5)
    return {13796: epl, 6739: serie_a, 15177: second}


def write_football_data(root: Path) -> Path:
    stages = legacy_stages()
    for league, name, fixtures in (
        ("E0", "2020-2021", epl_2020()),
        ("E0", "2016-2017", stages[13796]),
        ("I1", "2012-2013", stages[6739]),
    ):
        rows = [_csv_row(league, f) for f in fixtures]
        _write(
            root / league / f"{name}.csv",
            "\n".join(
                ["Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,HTHG,HTAG"]
                + [",".join(str(cell) for cell in row) for row in rows]
            )
            + "\n",
        )
    return root


def _csv_row(league: str, f: Fixture) -> list[object]:
    local = f.kickoff_utc.astimezone(UK)
    hg, ag = f.fd_score or f.score or (0, 0)
    ht = f.half_time or ("", "")
    return [
        league,
        local.strftime("%d/%m/%Y"),
        local.strftime("%H:%M"),
        f.home[1],
        f.away[1],
        hg,
        ag,
        "H" if hg > ag else "A" if ag > hg else "D",
        *ht,
    ]


def write_whoscored(root: Path) -> Path:
    fixtures = epl_2020()
    _write_months(root, fixtures)
    _write(root / CALENDAR, {"isAggregate": False, "mask": mask_of(fixtures), "stageId": 18685})
    for stage_id, stage_fixtures in legacy_stages().items():
        name, code, path = LEGACY_HEADERS[stage_id]
        _write(
            root / LEGACY / "stages" / f"{stage_id}.txt",
            {
                "name": name,
                "regionCode": code,
                "tournamentId": int(path.split("/")[2]),
                "wsStatisticsUrl": f"http://www.whoscored.com/Regions/{path}/Stages/{stage_id}",
                "fixtures": [_legacy_fixture(f, code) for f in stage_fixtures],
                "id": stage_id,
            },
        )
    for match_id, info in LEGACY_MATCHES.items():
        _write(root / LEGACY / "matches" / f"{match_id}.txt", {"info": info, "id": match_id})
    _write(root / SEASON_2020, season_page(8228, 18685, "2020-2021", mask_of(fixtures)))
    _write(root / SEASON_DEFAULT, season_page(10316, 23400, "2024-2025", _MASK_2024))
    burnley = centre(("Burnley", "Man Utd"), "2021-01-12T20:15:00", (0, 1), (0, 0))
    _write(root / MC_EPL, burnley, sort_keys=True)  # soccerdata: sorted keys, one line
    empoli = centre(("Empoli", "Chievo"), "2015-08-23T19:45:00", (1, 3), (1, 0)) | {
        "url": "https://www.whoscored.com/Matches/1005916/Live/Italy-Serie-A-2015-2016-Empoli"
        "-Chievo",
        "game_id": 1005916,
        "season_id": "1516",
        "competition_id": 5,
    }
    _write(root / MC_SERIE_A, empoli, indent=2)  # socceraction: pretty, with its own keys
    barca = centre(("Barcelona", "Rayo Vallecano"), "2022-08-13T20:00:00", (0, 0), (0, 0))
    _write(root / MC_HTML, gzip.compress(match_centre_page(1650630, barca).encode()))
    _write(root / LIVESCORES, livescores_fragment("1821099", ("1.57", "4.33", "5.50")))
    return root


def _write(path: Path, content: str | bytes | dict[str, Any], **dump: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        text = content if isinstance(content, str) else json.dumps(content, **dump)
        path.write_text(text, encoding="utf-8")


def mask_of(fixtures: list[Fixture]) -> dict[str, Any]:
    """wsCalendar mask: {year: {JS month (0-based): {day: 1}}} of UK-local match days."""
    mask: dict[str, Any] = {}
    for f in fixtures:
        day = f.kickoff_utc.astimezone(UK)
        mask.setdefault(str(day.year), {}).setdefault(str(day.month - 1), {})[str(day.day)] = 1
    return mask


def _write_months(root: Path, fixtures: list[Fixture]) -> None:
    by_month: dict[int, list[dict[str, Any]]] = {}
    for f in fixtures:
        by_month.setdefault(f.kickoff_utc.astimezone(UK).month - 1, []).append(_fixture_json(f))
    for js_month, matches in by_month.items():
        _write(
            root / MONTHS_GLOB.replace("*", f"{js_month:02d}"),
            {
                "tournaments": [{"stageId": 18685, "seasonId": 8228, "matches": matches}],
                "bookmakerCode": "B3",
                "bookmakers": ["B3", "SK"],
                "timezoneOffset": 60,
            },
        )


def _fixture_json(f: Fixture) -> dict[str, Any]:
    score = f.score if f.status == 6 and f.score else (None, None)
    return {
        "stageId": 18685,
        "id": f.match_id,
        "status": f.status,
        "startTime": f.kickoff_utc.astimezone(UK).strftime("%Y-%m-%dT%H:%M:%S"),
        "startTimeUtc": f.kickoff_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "homeTeamName": f.home[0],
        "awayTeamName": f.away[0],
        "homeScore": score[0],
        "awayScore": score[1],
        "incidents": [],
        "bets": None,
    }


def _legacy_fixture(f: Fixture, region_code: str) -> dict[str, Any]:
    scores = {} if f.score is None else {"homeScore": f.score[0], "awayScore": f.score[1]}
    return {
        "id": f.match_id,
        "regionCode": region_code,
        "status": f.status,
        "startTimeUtc": f.kickoff_utc.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "homeName": f.home[0],
        "awayName": f.away[0],
    } | scores


# the real samples' facts; the cancelled one carries the API's 0-0 placeholder
LEGACY_MATCHES = {
    1005916: {
        "stageId": 12770,
        "homeName": "Empoli",
        "awayName": "Chievo",
        "status": 6,
        "startTimeUtc": "2015-08-23T18:45:00.0000000Z",
        "homeScore": 1,
        "awayScore": 3,
        "periodResults": "HT 1:0 - FT 1:3",
    },
    1190507: {
        "stageId": 15151,
        "homeName": "Tottenham",
        "awayName": "Newcastle",
        "status": 2,
        "startTimeUtc": "2018-03-16T20:00:00.0000000Z",
        "elapsed": "Post",
    },
    1083443: {
        "stageId": 13813,
        "homeName": "Skenderbeu",
        "awayName": "Ferencvaros",
        "status": 7,
        "startTimeUtc": "2016-07-13T18:00:00.0000000Z",
        "elapsed": "Can",
        "homeScore": 0,
        "awayScore": 0,
    },
}


def js_literal(obj: Any) -> str:
    """JSON with bare numeric keys, as WhoScored writes its wsCalendar mask."""
    return re.sub(r'"(\d+)":', r"\1:", json.dumps(obj, separators=(",", ":")))


# ------------------------------------------------------------------ page-shaped files

_SELECTED = ' selected="selected"'
_EPL_SEASONS = (
    ("2025/2026", 10743),
    ("2024/2025", 10316),
    ("2020/2021", 8228),
    ("2019/2020", 7811),
)
# the real 2024/25 calendar's months, Aug 2024 (JS month 7) to May 2025 (JS month 4)
_MASK_2024 = {
    "2024": {str(m): {"17": 1} for m in range(7, 12)},
    "2025": {str(m): {"17": 1} for m in range(5)},
}


def season_page(season_id: int, stage_id: int, slug: str, mask: dict[str, Any]) -> str:
    options = "\n".join(
        f'<option{_SELECTED * (sid == season_id)} value="/Regions/252/Tournaments/2/Seasons/'
        f'{sid}/england-premier-league">{label}</option>'
        for label, sid in _EPL_SEASONS
    )
    base = f"/regions/252/tournaments/2/seasons/{season_id}/stages/{stage_id}"
    return (
        '<html><head></head><body><div id="qc-cmp2-container">We value your privacy</div>'
        f'<span><select id="seasons" name="seasons">{options}</select></span>'
        f'<div id="sub-navigation"><ul><li><a href="{base}/show/england-premier-league-{slug}"'
        f' class="">Summary</a></li><li><a href="{base}/fixtures/england-premier-league-{slug}"'
        ' class="">Fixtures</a></li></ul></div>\n<script type="text/javascript">\n'
        f"    require.config.params['args'] = {{\n        stageId: {stage_id},\n"
        "        isAggregate: false,\n        tournamentTables: tables\n    };\n"
        "    var wsCalendar = {\n        min: (new Date(2020, 8, 12)).toString(),\n"
        f"        mask:{js_literal(mask)},\n        stageId: {stage_id},\n"
        "        isAggregate: false\n    };\n</script></body></html>"
    )


def centre(
    teams: tuple[str, str], start_local: str, score: tuple[int, int], half: tuple[int, int]
) -> dict[str, Any]:
    """A matchCentreData object: 11 starters and 5 substitutes a side, no events."""
    sides = {}
    for k, (field, name) in enumerate(zip(("home", "away"), teams, strict=True)):
        players = [
            {
                "playerId": 1000 * (k + 1) + n,
                "name": f"{name} Player {n}",
                "shirtNo": n,
                "isFirstEleven": n <= 11,
            }
            for n in range(1, 17)
        ]
        sides[field] = {
            "teamId": k + 1,
            "name": name,
            "field": field,
            "players": players,
            "scores": {"halftime": half[k], "fulltime": score[k]},
        }
    text = f"{score[0]} : {score[1]}"
    return sides | {
        "score": text,
        "ftScore": text,
        "htScore": f"{half[0]} : {half[1]}",
        "etScore": "",
        "pkScore": "",
        "statusCode": 6,
        "elapsed": "FT",
        "startTime": start_local,
        "startDate": f"{start_local[:10]}T00:00:00",
        "events": [],
        "playerIdNameDictionary": {},
        "venueName": "Stadium",
    }


def match_centre_page(match_id: int, data: dict[str, Any] | None, quote: str = '"') -> str:
    """The server HTML around require.config.params["args"] (data None: no matchCentreData)."""
    centre_line = (
        ""
        if data is None
        else "        matchCentreData: "
        f"{json.dumps(data, ensure_ascii=False, separators=(',', ':'))},\n"
    )
    return (
        '\n<!DOCTYPE html>\n<html lang="en">\n<head><title>Live</title></head><body>\n'
        f"<script>\n    require.config.params[{quote}args{quote}] = {{\n"
        f"        matchId:{match_id},\n{centre_line}"
        '        matchCentreEventTypeJson: {"shotSixYardBox":0,"shotPenaltyArea":1},\n'
        '        formationIdNameMappings:{"2":"442","3":"41212"}\n    };\n</script>\n'
        "</body></html>\n"
    )


def livescores_fragment(match_id: str, prices: tuple[str, str, str]) -> str:
    buttons = "".join(
        f'<div id="oddsBtn-{match_id}-{side}" class="Match-module_oddsButton__a1"><button '
        f'class="OddsButton-module_oddsButton__b2"><span id="oddsBtn" class="OddsButton-module_'
        f'oddsText__c3">{price}</span></button></div>'
        for side, price in zip(("home", "draw", "away"), prices, strict=True)
    )
    return (
        f'<div class="Match-module_match__d4"><a id="scoresBtn-{match_id}" href="/Matches/'
        f'{match_id}/Show/x"><span>-</span></a><div class="Odds__f6">{buttons}</div></div>'
    )
