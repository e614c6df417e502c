"""WhoScored parsers: page text in, typed records out. No network, no Ray, no browser.

Every parser first refuses a bot-protection page (BlockedPage), so a challenge is never read as
"no fixtures", then refuses what it does not recognise (PageStructureError saying precisely
what is missing). The match-centre parser lives in `match_centre`, the shared records and
errors in `model`; all are importable from here.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from soccerpredict.whoscored.match_centre import (
    parse_match_centre,
    parse_match_centre_data,
    read_js_object,
)
from soccerpredict.whoscored.model import (
    STATUS,
    BlockedPage,
    PageStructureError,
    ScrapedMatch,
    SeasonPage,
    decimal_odds,
    detect_block,
    load_json,
    parse_utc,
    require,
    status_name,
)

SIDES = ("home", "draw", "away")

# ------------------------------------------------------------------ fixtures JSON

# `bets` is null in every saved month (finished matches carry no odds) and no saved response
# shows it filled, so its schema is an assumption, modelled on what the livescores page renders
# from the same feed (one 1X2 price per side, in the response's top-level `bookmakerCode`):
#     "bets": {"home": {"oddsDecimal": 1.57, "oddsFractional": "4/7"}, "draw": {…}, "away": {…}}
# Also read: bare prices ("home": 1.57 or "4/7") and the same object nested under the
# bookmaker code ("bets": {"B3": {"home": …}}). Anything else gives no odds rather than losing
# the fixture: results matter more than prices, and a test pins the assumed form.
_PRICE_KEYS = ("oddsDecimal", "decimal", "odds", "price", "oddsFractional", "fractional")


def parse_fixtures_json(text: str, url: str | None = None) -> list[ScrapedMatch]:
    """GET /tournaments/{stageId}/data/?d=YYYYMM -> its matches (an empty month is fine)."""
    detect_block(text, url)
    doc = load_json(text, url, "fixtures response")
    tournaments = require(doc, "tournaments", list, url, "fixtures response")
    bookmaker = doc.get("bookmakerCode")
    bookmaker = bookmaker if isinstance(bookmaker, str) and bookmaker else None
    return [
        _fixture(raw, bookmaker, url)
        for tournament in tournaments
        for raw in require(tournament, "matches", list, url, "tournament")
    ]


def _fixture(raw: Any, bookmaker: str | None, url: str | None) -> ScrapedMatch:
    mid = str(require(raw, "id", (int, str), url, "fixture"))
    where = f"fixture {mid}"
    status = status_name(raw.get("status"), mid, url)
    played = status == "finished"
    odds = _bets_odds(raw.get("bets"), bookmaker)
    stage = raw.get("stageId")
    return ScrapedMatch(
        source_id=mid,
        stage_id=stage if isinstance(stage, int) else None,
        kickoff_utc=parse_utc(require(raw, "startTimeUtc", str, url, where), url, where),
        home_team=require(raw, "homeTeamName", str, url, where),
        away_team=require(raw, "awayTeamName", str, url, where),
        status=status,
        # a finished match without both scores is a broken response, not a missing result
        home_goals=require(raw, "homeScore", int, url, where) if played else None,
        away_goals=require(raw, "awayScore", int, url, where) if played else None,
        odds_home=odds[0] if odds else None,
        odds_draw=odds[1] if odds else None,
        odds_away=odds[2] if odds else None,
        odds_bookmaker=bookmaker if odds else None,
    )


def _bets_odds(bets: Any, bookmaker: str | None) -> tuple[float, float, float] | None:
    if not isinstance(bets, dict):
        return None
    if bookmaker and isinstance(bets.get(bookmaker), dict):
        bets = bets[bookmaker]
    home, draw, away = (_price(bets.get(side)) for side in SIDES)
    return (home, draw, away) if home and draw and away else None


def _price(value: Any) -> float | None:
    if isinstance(value, dict):
        value = next((value[k] for k in _PRICE_KEYS if value.get(k) is not None), None)
    return decimal_odds(value)


# ------------------------------------------------------------------ season page

_SEASON_SELECT_RE = re.compile(
    r'<select\b[^>]*\bid="seasons"[^>]*>(.*?)</select>', re.DOTALL | re.IGNORECASE
)
_OPTION_RE = re.compile(r"<option\b([^>]*)>(.*?)</option>", re.DOTALL | re.IGNORECASE)
_VALUE_RE = re.compile(r'\bvalue="([^"]*)"', re.IGNORECASE)
_SELECTED_RE = re.compile(r"\bselected\b", re.IGNORECASE)
_SEASON_PATH_RE = re.compile(r"/Regions/(\d+)/Tournaments/(\d+)(?:/Seasons/(\d+))?", re.IGNORECASE)
_CALENDAR_RE = re.compile(r"\bvar\s+wsCalendar\s*=\s*\{")
_MASK_RE = re.compile(r"\bmask\s*:\s*(?=\{)")
_NUMBER_KEY_RE = re.compile(r"([{,]\s*)(\d+)\s*:")


def parse_season_page(html: str, url: str | None = None) -> SeasonPage:
    """A tournament/season page -> ids, the stage, the months with fixtures, all seasons."""
    detect_block(html, url)
    options = _season_options(html, url)
    label, path = _chosen_season(options, url)
    region_id, tournament_id, season_id = _season_ids(path, url)
    return SeasonPage(
        region_id=region_id,
        tournament_id=tournament_id,
        season_id=season_id,
        stage_id=_stage_id(html, season_id, url),
        season_label=label,
        months=_calendar_months(html, url),
        seasons={name: value for name, value, _ in options},
    )


def _season_options(html: str, url: str | None) -> list[tuple[str, str, bool]]:
    select = _SEASON_SELECT_RE.search(html)
    if select is None:
        raise PageStructureError(url, 'no <select id="seasons">: not a season page')
    options = []
    for attrs, text in _OPTION_RE.findall(select[1]):
        value = _VALUE_RE.search(attrs)
        if value:
            options.append(
                (
                    html_lib.unescape(text).strip(),
                    html_lib.unescape(value[1]),
                    bool(_SELECTED_RE.search(attrs)),
                )
            )
    if not options:
        raise PageStructureError(url, '<select id="seasons"> has no options with a value')
    return options


def _chosen_season(options: list[tuple[str, str, bool]], url: str | None) -> tuple[str, str]:
    chosen = [(label, path) for label, path, selected in options if selected]
    if not chosen and url and (found := _SEASON_PATH_RE.search(url)) and found[3]:
        chosen = [
            (label, path)
            for label, path, _ in options
            if f"/Seasons/{found[3]}/".lower() in path.lower() + "/"
        ]
    if not chosen:
        raise PageStructureError(url, "no selected season option and no season id in the URL")
    return chosen[0]


def _season_ids(path: str, url: str | None) -> tuple[int, int, int]:
    found = _SEASON_PATH_RE.search(path)
    if found is None or found[3] is None:
        raise PageStructureError(
            url, f"season option {path!r} has no /Regions/{{r}}/Tournaments/{{t}}/Seasons/{{s}}"
        )
    return int(found[1]), int(found[2]), int(found[3])


def _stage_id(html: str, season_id: int, url: str | None) -> int:
    link = re.search(
        rf'href="[^"]*/seasons/{season_id}/stages/(\d+)/fixtures/', html, re.IGNORECASE
    )
    if link is None:
        raise PageStructureError(
            url,
            f"no Fixtures link …/seasons/{season_id}/stages/"
            "{stageId}/fixtures/… to take the stage id from",
        )
    return int(link[1])


def _calendar_months(html: str, url: str | None) -> list[str]:
    calendar = _CALENDAR_RE.search(html)
    if calendar is None:
        raise PageStructureError(url, "no `var wsCalendar = {…}` on the page")
    mask = _MASK_RE.search(html, calendar.end())
    script_end = html.find("</script>", calendar.end())
    if mask is None or (script_end != -1 and mask.start() > script_end):
        raise PageStructureError(url, "wsCalendar has no mask")
    literal = html[mask.end() : _closing_brace(html, mask.end(), url) + 1]
    # the mask is a JS literal with bare numeric keys: {2020:{8:{12:1}}}
    parsed = load_json(_NUMBER_KEY_RE.sub(r'\1"\2":', literal), url, "wsCalendar mask")
    return calendar_months(parsed, url)


def _closing_brace(text: str, start: int, url: str | None) -> int:
    depth = 0
    for pos in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        if depth == 0:
            return pos
    raise PageStructureError(url, f"unbalanced braces in the object at char {start}")


def calendar_months(mask: Any, url: str | None = None) -> list[str]:
    """wsCalendar mask {year: {month: {day: 1}}} -> sorted "YYYYMM"; its months are JS 0-based."""
    if not isinstance(mask, dict) or not all(isinstance(v, dict) for v in mask.values()):
        raise PageStructureError(
            url, f"wsCalendar mask is not {{year: {{month: …}}}}: {str(mask)[:60]}"
        )
    return sorted(
        f"{int(year)}{int(month) + 1:02d}"
        for year, months in mask.items()
        for month, days in months.items()
        if days
    )


# ------------------------------------------------------------------ livescores

# the CSS-module class names are hashed per build; the element ids are stable
_ODDS_BUTTON_RE = re.compile(
    r'id="oddsBtn-(\d+)-(home|draw|away)"((?:(?!id="oddsBtn-\d).)*?)</button>', re.DOTALL
)
_TEXT_RE = re.compile(r">([^<>]*)<")


def parse_livescores(html: str) -> dict[str, tuple[float, float, float]]:
    """match id -> (home, draw, away) decimal odds; matches missing a price are left out."""
    detect_block(html)
    prices: dict[str, dict[str, float | None]] = {}
    for match_id, side, inner in _ODDS_BUTTON_RE.findall(html):
        texts = [t.strip() for t in _TEXT_RE.findall(inner) if t.strip()]
        prices.setdefault(match_id, {})[side] = decimal_odds(texts[-1]) if texts else None
    out = {}
    for match_id, by_side in prices.items():
        home, draw, away = (by_side.get(side) for side in SIDES)
        if home and draw and away:
            out[match_id] = (home, draw, away)
    return out


__all__ = [
    "STATUS",
    "BlockedPage",
    "PageStructureError",
    "ScrapedMatch",
    "SeasonPage",
    "calendar_months",
    "detect_block",
    "parse_fixtures_json",
    "parse_livescores",
    "parse_match_centre",
    "parse_match_centre_data",
    "parse_season_page",
    "read_js_object",
]
