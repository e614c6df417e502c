"""WhoScored parsers on the saved pages (the real files when WHOSCORED_DIR or DATA_DIR point at
them, generated files of the same formats otherwise), and bad input written in the tests."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from soccerpredict.whoscored.legacy import parse_legacy_match
from soccerpredict.whoscored.pages import (
    BlockedPage,
    PageStructureError,
    ScrapedMatch,
    calendar_months,
    detect_block,
    parse_fixtures_json,
    parse_livescores,
    parse_match_centre,
    parse_match_centre_data,
    parse_season_page,
)
from soccerpredict.whoscored.teams import canonical
from tests import whoscored_data as wsd
from tests.whoscored_data import WhoScoredFiles, whoscored_files

REAL_MONTHS = [
    "202009",
    "202010",
    "202011",
    "202012",
    "202101",
    "202102",
    "202103",
    "202104",
    "202105",
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> WhoScoredFiles:
    return whoscored_files(tmp_path_factory.mktemp("whoscored"))


def month_of(path: Path) -> str:
    """…_monthMM.json -> "YYYYMM": MM is the JS (0-based) month of the 2020/21 season."""
    js_month = int(path.stem[-2:])
    return f"{2020 if js_month >= 7 else 2021}{js_month + 1:02d}"


def read_months(root: Path) -> list[ScrapedMatch]:
    return [
        m
        for path in sorted(root.glob(wsd.MONTHS_GLOB))
        for m in parse_fixtures_json(path.read_text(encoding="utf-8"), str(path))
    ]


def fixtures_json(matches: list[dict[str, object]], bookmaker: str = "B3") -> str:
    return json.dumps(
        {
            "tournaments": [{"stageId": 18685, "matches": matches}],
            "bookmakerCode": bookmaker,
            "bookmakers": ["B3", "SK"],
        }
    )


def raw_fixture(match_id: int = 1, status: int = 6, **more: object) -> dict[str, object]:
    return {
        "id": match_id,
        "stageId": 18685,
        "status": status,
        "homeTeamName": "Burnley",
        "awayTeamName": "Manchester United",
        "startTimeUtc": "2021-01-12T20:15:00Z",
        "homeScore": 0,
        "awayScore": 1,
        "bets": None,
    } | more


# ------------------------------------------------------------------ fixtures JSON


def test_month_files_give_distinct_finished_matches_with_scores(files: WhoScoredFiles) -> None:
    matches = read_months(files.root)
    assert len({m.source_id for m in matches}) == len(matches) > 0
    assert all(
        m.status == "finished" and m.home_goals is not None and m.away_goals is not None
        for m in matches
    )
    assert all(m.kickoff_utc.tzinfo is not None and m.stage_id == 18685 for m in matches)
    if files.real:
        assert len(matches) == 380
        assert sorted(month_of(p) for p in files.root.glob(wsd.MONTHS_GLOB)) == REAL_MONTHS


def test_fixtures_start_time_is_uk_local_and_utc_is_utc(files: WhoScoredFiles) -> None:
    """The evidence for the time zones: startTime = startTimeUtc in Europe/London, BST too."""
    offsets = set()
    for path in files.root.glob(wsd.MONTHS_GLOB):
        for raw in json.loads(path.read_text(encoding="utf-8"))["tournaments"][0]["matches"]:
            utc = datetime.fromisoformat(raw["startTimeUtc"])
            assert datetime.fromisoformat(raw["startTime"]) == utc.astimezone(wsd.UK).replace(
                tzinfo=None
            )
            offsets.add(utc.astimezone(wsd.UK).utcoffset().total_seconds())
    assert offsets == {0.0, 3600.0}  # both GMT and BST months are covered


def test_upcoming_match_with_bets_gives_odds_in_the_assumed_schema() -> None:
    # no saved response has `bets` filled; this is the schema assumed in pages.py
    bets = {
        "home": {"oddsDecimal": 1.57, "oddsFractional": "4/7"},
        "draw": {"oddsDecimal": 4.33, "oddsFractional": "10/3"},
        "away": {"oddsFractional": "9/2"},
    }
    upcoming = raw_fixture(7, status=1, homeScore=None, awayScore=None, bets=bets)
    [match] = parse_fixtures_json(fixtures_json([upcoming]))
    assert (match.status, match.home_goals, match.away_goals) == ("upcoming", None, None)
    assert (match.odds_home, match.odds_draw, match.odds_away) == (1.57, 4.33, 5.5)
    assert match.odds_bookmaker == "B3"
    nested = raw_fixture(8, status=1, bets={"B3": {"home": 2.1, "draw": "3.4", "away": "EVS"}})
    [match] = parse_fixtures_json(fixtures_json([nested]))
    assert (match.odds_home, match.odds_draw, match.odds_away) == (2.1, 3.4, 2.0)
    odd_shape = raw_fixture(9, status=1, bets={"homeWin": 2.0})
    assert parse_fixtures_json(fixtures_json([odd_shape]))[0].odds_home is None


def test_empty_month_is_no_fixtures_not_a_block() -> None:
    assert parse_fixtures_json(fixtures_json([])) == []
    assert parse_fixtures_json('{"tournaments": [], "bookmakerCode": "B3"}') == []


# ------------------------------------------------------------------ season pages


def test_season_page_2020_21(files: WhoScoredFiles) -> None:
    path = files.root / wsd.SEASON_2020
    page = parse_season_page(
        path.read_text(encoding="utf-8"),
        "https://www.whoscored.com/Regions/252/Tournaments/2/Seasons/8228",
    )
    assert (page.region_id, page.tournament_id, page.season_id, page.stage_id) == (
        252,
        2,
        8228,
        18685,
    )
    assert page.season_label == "2020/2021"
    assert "2020/2021" in page.seasons and "/Seasons/8228/" in page.seasons["2020/2021"]
    assert page.months == sorted(month_of(p) for p in files.root.glob(wsd.MONTHS_GLOB))
    mask = json.loads((files.root / wsd.CALENDAR).read_text(encoding="utf-8"))["mask"]
    assert calendar_months(mask) == page.months
    if files.real:
        assert page.months == REAL_MONTHS


def test_default_season_page_is_2024_25(files: WhoScoredFiles) -> None:
    page = parse_season_page(
        (files.root / wsd.SEASON_DEFAULT).read_text(encoding="utf-8"),
        "https://www.whoscored.com/Regions/252/Tournaments/2",
    )
    assert (page.season_id, page.stage_id, page.season_label) == (10316, 23400, "2024/2025")
    assert page.months == [f"2024{m:02d}" for m in range(8, 13)] + [
        f"2025{m:02d}" for m in range(1, 6)
    ]
    assert page.seasons["2020/2021"].endswith("/Seasons/8228/england-premier-league")


def test_season_page_without_calendar_or_fixtures_link_says_what_is_missing() -> None:
    select = (
        '<select id="seasons"><option selected="selected" value="/Regions/252/'
        'Tournaments/2/Seasons/8228/x">2020/2021</option></select>'
    )
    with pytest.raises(PageStructureError, match="Fixtures link"):
        parse_season_page(select)
    with pytest.raises(PageStructureError, match="wsCalendar"):
        parse_season_page(
            select + '<a href="/regions/252/tournaments/2/seasons/8228/stages/'
            '18685/fixtures/x">Fixtures</a>'
        )


# ------------------------------------------------------------------ match centre


def test_laliga_raw_html_match_centre(files: WhoScoredFiles) -> None:
    html = gzip.decompress((files.root / wsd.MC_HTML).read_bytes()).decode("utf-8")
    match = parse_match_centre(html, "https://www.whoscored.com/matches/1650630/live")
    assert (match.source_id, match.home_team, match.away_team) == (
        "1650630",
        "Barcelona",
        "Rayo Vallecano",
    )
    assert (match.status, match.home_goals, match.away_goals) == ("finished", 0, 0)
    assert (match.ht_home_goals, match.ht_away_goals) == (0, 0)
    assert len(match.home_lineup) == len(match.away_lineup) == 11
    assert all(name.strip() for name in match.home_lineup + match.away_lineup)
    # 13 Aug 2022, 20:00 UK (BST) = 21:00 in Barcelona = 19:00 UTC
    assert match.kickoff_utc == datetime(2022, 8, 13, 19, 0, tzinfo=UTC)


def test_epl_match_centre_json_and_its_kickoff_against_the_fixtures_json(
    files: WhoScoredFiles,
) -> None:
    data = json.loads((files.root / wsd.MC_EPL).read_text(encoding="utf-8"))
    match = parse_match_centre_data(data, "1485184")
    assert (match.home_team, match.away_team, match.home_goals, match.away_goals) == (
        "Burnley",
        "Man Utd",
        0,
        1,
    )
    assert (match.ht_home_goals, match.ht_away_goals) == (0, 0)
    assert len(match.home_lineup) == len(match.away_lineup) == 11
    [listed] = [m for m in read_months(files.root) if m.source_id == "1485184"]
    assert listed.kickoff_utc == match.kickoff_utc == datetime(2021, 1, 12, 20, 15, tzinfo=UTC)
    assert canonical("E0", match.away_team) == canonical("E0", listed.away_team) == "Man United"


def test_serie_a_match_centre_json_agrees_with_the_legacy_api(files: WhoScoredFiles) -> None:
    data = json.loads((files.root / wsd.MC_SERIE_A).read_text(encoding="utf-8"))
    match = parse_match_centre_data(data)  # socceraction's game_id gives the id
    assert (match.source_id, match.home_team, match.away_team) == ("1005916", "Empoli", "Chievo")
    assert (match.home_goals, match.away_goals, match.ht_home_goals, match.ht_away_goals) == (
        1,
        3,
        1,
        0,
    )
    legacy = parse_legacy_match(
        (files.root / wsd.LEGACY / "matches" / "1005916.txt").read_text(encoding="utf-8")
    )
    assert (legacy.home_goals, legacy.away_goals, legacy.ht_home_goals, legacy.ht_away_goals) == (
        1,
        3,
        1,
        0,
    )
    # match centre startTime 19:45 is UK local (BST); the API's 18:45Z is the same instant
    assert legacy.kickoff_utc == match.kickoff_utc == datetime(2015, 8, 23, 18, 45, tzinfo=UTC)


def test_old_single_quoted_args_and_a_page_without_match_centre_data() -> None:
    data = wsd.centre(("Arsenal", "Leicester"), "2017-08-11T19:45:00", (4, 3), (2, 2))
    match = parse_match_centre(wsd.match_centre_page(1190174, data, quote="'"))
    assert (match.source_id, match.home_goals, match.ht_home_goals) == ("1190174", 4, 2)
    with pytest.raises(PageStructureError, match="matchCentreData") as missing:
        parse_match_centre(wsd.match_centre_page(1190174, None), "https://x.test/Matches/1190174")
    assert missing.value.url == "https://x.test/Matches/1190174"
    null = wsd.match_centre_page(1, data).replace(json.dumps(data, separators=(",", ":")), "null")
    with pytest.raises(PageStructureError, match="matchCentreData is null"):
        parse_match_centre(null)
    with pytest.raises(PageStructureError, match="not a match-centre page"):
        parse_match_centre("<html><body>Preview</body></html>")


def test_broken_match_centre_json_reports_its_position() -> None:
    page = wsd.match_centre_page(1, wsd.centre(("A", "B"), "2021-01-01T15:00:00", (1, 0), (0, 0)))
    broken = page.replace('"statusCode":6', '"statusCode":6,,')
    with pytest.raises(
        PageStructureError, match=r"value of matchCentreData is not valid JSON: .* at char \d+"
    ):
        parse_match_centre(broken)


# ------------------------------------------------------------------ livescores and odds


def test_livescores_odds(files: WhoScoredFiles) -> None:
    odds = parse_livescores((files.root / wsd.LIVESCORES).read_text(encoding="utf-8"))
    assert odds["1821099"] == (1.57, 4.33, 5.50)


def test_livescores_fractional_prices_and_a_suspended_match() -> None:
    html = wsd.livescores_fragment("11", ("4/7", "10/3", "EVS")) + wsd.livescores_fragment(
        "12", ("2.10", "-", "3.00")
    )
    assert parse_livescores(html) == {"11": (round(1 + 4 / 7, 4), round(1 + 10 / 3, 4), 2.0)}


# ------------------------------------------------------------------ bad input


def test_malformed_fixtures_json_names_the_position() -> None:
    with pytest.raises(PageStructureError, match=r"line 1 column \d+ \(char \d+\)") as err:
        parse_fixtures_json('{"tournaments": [{"matches": [}', "https://x.test/d=202101")
    assert err.value.url == "https://x.test/d=202101"


def test_unknown_status_code_names_the_code_and_the_match() -> None:
    with pytest.raises(PageStructureError, match=r"match 4242: unknown status code 99"):
        parse_fixtures_json(fixtures_json([raw_fixture(4242, status=99)]))
    data = wsd.centre(("A", "B"), "2021-01-01T15:00:00", (1, 0), (0, 0)) | {"statusCode": 99}
    with pytest.raises(PageStructureError, match="match 5: unknown status code 99"):
        parse_match_centre_data(data, "5")


def test_finished_fixture_without_a_score_is_a_structure_error() -> None:
    with pytest.raises(PageStructureError, match="homeScore"):
        parse_fixtures_json(fixtures_json([raw_fixture(3, homeScore=None)]))
    with pytest.raises(PageStructureError, match="'tournaments'"):
        parse_fixtures_json('{"matches": []}')


INCAPSULA = (
    '<html style="height:100%"><head><META NAME="ROBOTS" CONTENT="NOINDEX, NOFOLLOW">'
    '<meta name="format-detection" content="telephone=no"></head><body style="margin:0px;'
    'height:100%"><iframe id="main-iframe" src="/_Incapsula_Resource?CWUDNSAI=24&xinfo=9-'
    "1234567-0%200NNN%20RT%281700000000000%20111%29&incident_id=123000450012345678-"
    '98765432109876543&edet=12&cinfo=04000000&rpinfo=0&mth=GET" frameborder=0 width="100%" '
    'height="100%" marginheight="0px" marginwidth="0px">Request unsuccessful. Incapsula '
    "incident ID: 123000450012345678-98765432109876543</iframe></body></html>"
)
CLOUDFLARE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title><meta '
    'http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta name="robots" '
    'content="noindex,nofollow"></head><body><div class="main-wrapper" role="main"><div '
    'class="main-content"><h1 class="zone-name-title h1">www.whoscored.com</h1><h2 class="h2"'
    ' id="challenge-running">Checking if the site connection is secure</h2><noscript>Enable '
    "JavaScript and cookies to continue</noscript></div></div><script>(function(){window."
    "_cf_chl_opt={cvId: '3',cZone: 'www.whoscored.com',cType: 'managed'};var cpo=document."
    "createElement('script');cpo.src='/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/"
    "v1?ray=8a1b2c3d4e5f6789';document.getElementsByTagName('head')[0].appendChild(cpo);}());"
    "</script></body></html>"
)


def test_block_pages_are_blocked_never_parsed() -> None:
    for page, kind in ((INCAPSULA, "incapsula"), (CLOUDFLARE, "cloudflare")):
        with pytest.raises(BlockedPage) as blocked:
            detect_block(page, "https://www.whoscored.com/x")
        assert (blocked.value.kind, blocked.value.url) == (kind, "https://www.whoscored.com/x")
        for parse in (parse_fixtures_json, parse_season_page, parse_match_centre):
            with pytest.raises(BlockedPage):
                parse(page, "https://www.whoscored.com/x")
    with pytest.raises(BlockedPage, match="http-403"):
        detect_block("<html><body>Forbidden</body></html>", http_status=403)


def test_cloudflare_passive_script_on_a_real_page_is_not_a_block(files: WhoScoredFiles) -> None:
    passive = '<script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js"></script>'
    html = gzip.decompress((files.root / wsd.MC_HTML).read_bytes()).decode("utf-8")
    detect_block(html.replace("<head>", "<head>" + passive, 1), http_status=200)
    detect_block(fixtures_json([]))
