"""What every WhoScored parser shares: the records, the errors and the small value readers.

`pages` re-exports the public names; they live here so the parser modules can share them
without importing each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

STATUS: dict[int, str] = {
    1: "upcoming",
    2: "postponed",
    6: "finished",
    7: "cancelled",
    8: "unknown",
}
UK_TZ = ZoneInfo("Europe/London")

# Block pages are small; searching only their opening keeps a 1 MB match page cheap and stops
# a user comment deep in a real page from looking like a challenge.
_BLOCK_SCAN_CHARS = 100_000
_BLOCK_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("incapsula", re.compile(r"Incapsula incident ID|_Incapsula_Resource", re.IGNORECASE)),
    # Not a bare "challenge-platform": Cloudflare also injects its passive bot script
    # (/cdn-cgi/challenge-platform/scripts/jsd/main.js) into ordinary pages. The interactive
    # challenge loads /cdn-cgi/challenge-platform/h/... and defines window._cf_chl_opt.
    (
        "cloudflare",
        re.compile(
            r"<title>\s*Just a moment\.\.\.\s*</title>|cf-browser-verification"
            r"|_cf_chl_opt|challenge-platform/h/",
            re.IGNORECASE,
        ),
    ),
)
_BLOCK_STATUSES = {401: "http-401", 403: "http-403", 429: "http-429"}
_SCORE_RE = re.compile(r"\s*(\d+)\s*:\s*(\d+)\s*")
_FRACTION_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


class PageStructureError(ValueError):
    """The page is not what the parser expects; `reason` says what is missing or malformed."""

    def __init__(self, url: str | None, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{reason} [{url}]" if url else reason)


class BlockedPage(Exception):
    """A bot-protection page: never to be read as "no fixtures"."""

    def __init__(self, url: str | None, kind: str) -> None:
        self.url = url
        self.kind = kind
        super().__init__(f"blocked by {kind}" + (f" at {url}" if url else ""))


@dataclass(frozen=True)
class ScrapedMatch:
    source_id: str
    stage_id: int | None
    kickoff_utc: datetime
    home_team: str
    away_team: str
    status: str
    home_goals: int | None
    away_goals: int | None
    ht_home_goals: int | None = None
    ht_away_goals: int | None = None
    odds_home: float | None = None
    odds_draw: float | None = None
    odds_away: float | None = None
    home_lineup: tuple[str, ...] = ()
    away_lineup: tuple[str, ...] = ()
    # the page's bookmaker code for the odds above (fixtures JSON `bookmakerCode`), if known
    odds_bookmaker: str | None = None


@dataclass(frozen=True)
class SeasonPage:
    region_id: int
    tournament_id: int
    season_id: int
    stage_id: int
    season_label: str
    months: list[str]
    seasons: dict[str, str]


def detect_block(html: str, url: str | None = None, http_status: int | None = None) -> None:
    """Raise BlockedPage for an Incapsula or Cloudflare challenge, or a refusing HTTP status."""
    head = html[:_BLOCK_SCAN_CHARS]
    for kind, marker in _BLOCK_MARKERS:
        if marker.search(head):
            raise BlockedPage(url, kind)
    if http_status in _BLOCK_STATUSES:
        raise BlockedPage(url, _BLOCK_STATUSES[http_status])


def load_json(text: str, url: str | None, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PageStructureError(
            url,
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}"
            f" column {exc.colno} (char {exc.pos})",
        ) from exc


def require(obj: Any, key: str, kind: type | tuple[type, ...], url: str | None, where: str) -> Any:
    """obj[key] checked against `kind`; a precise PageStructureError otherwise."""
    if not isinstance(obj, dict):
        raise PageStructureError(url, f"{where} is {type(obj).__name__}, expected an object")
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PageStructureError(url, f"{where} has no valid '{key}' (got {value!r})")
    return value


def status_name(code: Any, match_id: str, url: str | None) -> str:
    if isinstance(code, bool) or not isinstance(code, int) or code not in STATUS:
        raise PageStructureError(
            url, f"match {match_id}: unknown status code {code!r} (known: {sorted(STATUS)})"
        )
    return STATUS[code]


def parse_utc(text: str, url: str | None, where: str) -> datetime:
    """ISO instant ("…Z", or the legacy API's 7-digit fraction) -> tz-aware UTC."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise PageStructureError(url, f"{where}: bad UTC time {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def uk_local_to_utc(text: str, url: str | None, where: str) -> datetime:
    """WhoScored's local wall clock (Europe/London) -> UTC.

    fold=1 reads the repeated October hour as GMT, as the football-data reader does.
    """
    try:
        local = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise PageStructureError(url, f"{where}: bad local time {text!r}") from exc
    return local.replace(tzinfo=UK_TZ, fold=1).astimezone(UTC)


def parse_score(text: Any, url: str | None, where: str) -> tuple[int, int] | None:
    """ "1 : 3" -> (1, 3); "" or None -> None."""
    if text is None or text == "":
        return None
    match = _SCORE_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise PageStructureError(url, f"{where}: bad score {text!r}")
    return int(match[1]), int(match[2])


def decimal_odds(value: Any) -> float | None:
    """A price as shown: decimal ("1.57"), fractional ("4/7") or "EVS"; else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 1 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.upper() in {"EVS", "EVENS"}:
        return 2.0
    fraction = _FRACTION_RE.fullmatch(text)
    if fraction and int(fraction[2]) > 0:
        return round(1 + int(fraction[1]) / int(fraction[2]), 4)
    try:
        price = float(text)
    except ValueError:
        return None
    return price if price > 1 else None
