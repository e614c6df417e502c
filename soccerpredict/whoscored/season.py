"""One league season from WhoScored, whatever fetches the pages: the pages a season needs, the
cache that spares re-fetching what cannot change, parsing with a report of what failed, and the
upsert of the matches. No Ray: `ray_jobs.scrape` supplies a `fetch` backed by browser actors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from soccerpredict.io import write_parquet
from soccerpredict.seasons import CURRENT, season_of
from soccerpredict.whoscored.cache import PageCache
from soccerpredict.whoscored.leagues import League, season_label
from soccerpredict.whoscored.pages import (
    PageStructureError,
    ScrapedMatch,
    SeasonPage,
    parse_fixtures_json,
    parse_livescores,
    parse_match_centre,
    parse_season_page,
)
from soccerpredict.whoscored.records import SCRAPED_SCHEMA

DECIDED = {"finished", "cancelled"}


@dataclass(frozen=True)
class Request:
    path: str
    kind: str = "document"  # "document": navigate; "data": fetched inside the page


@dataclass
class Report:
    league: str
    season: str
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    pages_fetched: int = 0
    pages_from_cache: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    matches: dict[str, int] = field(default_factory=dict)
    rows_written: int = 0
    browsers_started: int = 0
    seconds: float = 0.0


Fetch = Callable[[list[Request]], list[dict[str, Any]]]


class SeasonScraper:
    """One league and season: fetch, parse, cache, report.

    `fetch` takes requests and returns, for each, `{"path", "ok": True, "text", ...}` or
    `{"path", "ok": False, "kind", "attempts", "detail"}`, in any order.
    """

    def __init__(self, fetch: Fetch, report: Report, cache: PageCache, failed_copies: Path) -> None:
        self.fetch, self.report, self.cache = fetch, report, cache
        self.failed_copies = failed_copies

    def pages(self, requests: list[Request]) -> dict[str, str]:
        """Text of every page that could be had, from the cache when final, else fetched."""
        texts: dict[str, str] = {}
        todo = []
        for request in requests:
            cached = self.cache.final(request.path)
            if cached is not None:
                texts[request.path] = cached
                self.report.pages_from_cache += 1
            else:
                todo.append(request)
        for result in self.fetch(todo) if todo else []:
            if result["ok"]:
                texts[result["path"]] = result["text"]
                self.cache.put(result["path"], result["text"], final=False)
                self.report.pages_fetched += 1
            else:
                self.report.failures.append({k: v for k, v in result.items() if k != "ok"})
        return texts

    def parse(self, path: str, text: str, parse: Any) -> Any:
        """Parse one page; a page whose structure changed is reported with a copy, not fatal."""
        try:
            return parse(text, path)
        except PageStructureError as err:
            copy = self.cache.keep_copy(path, text, self.failed_copies)
            self.report.failures.append(
                {
                    "path": path,
                    "kind": "page-structure",
                    "detail": err.reason,
                    "saved_copy": str(copy),
                }
            )
            return None

    def season_page(self, lg: League, season: str) -> tuple[SeasonPage, bool]:
        """The season's page and whether the season is over (its pages can then be cached)."""
        current_path = lg.tournament_path
        current = self.pages([Request(current_path)]).get(current_path)
        page = self.parse(current_path, current, parse_season_page) if current else None
        if page is None:
            raise SystemExit(f"cannot read {current_path}; see the report")
        if season == CURRENT:
            # the shared calendar rule picks the season; the site's own current page serves
            # until the site lists it (in July the new season may not be up yet)
            season = season_of(datetime.now(UTC).date())
            if season_label(season) not in page.seasons:
                return page, False
        label = season_label(season)
        if label not in page.seasons:
            raise SystemExit(
                f"{lg.code} has no season {label} on WhoScored; "
                f"seasons: {', '.join(sorted(page.seasons))}"
            )
        path = page.seasons[label]
        text = self.pages([Request(path)]).get(path)
        chosen = self.parse(path, text, parse_season_page) if text else None
        if chosen is None:
            raise SystemExit(f"cannot read the {label} season page {path}; see the report")
        over = label != page.season_label
        if over:
            self.cache.mark_final(path)
        return chosen, over

    def fixtures(self, page: SeasonPage, over: bool) -> list[ScrapedMatch]:
        """Every month's fixtures; a month that is over with every match decided is final."""
        months = {
            f"/tournaments/{page.stage_id}/data/?d={m}&isAggregate=false": m for m in page.months
        }
        this_month = datetime.now(UTC).strftime("%Y%m")
        matches: list[ScrapedMatch] = []
        texts = self.pages([Request(path, "data") for path in months])
        for path, text in sorted(texts.items()):
            found = self.parse(path, text, parse_fixtures_json)
            if found is None:
                continue
            matches += found
            decided = all(m.status in DECIDED for m in found)
            if over or (decided and months[path] < this_month):
                self.cache.mark_final(path)
        return matches

    def match_centres(self, match_ids: list[str]) -> list[ScrapedMatch]:
        paths = [f"/Matches/{i}/Live" for i in match_ids]
        found = []
        for path, text in self.pages([Request(p) for p in paths]).items():
            match = self.parse(path, text, parse_match_centre)
            if match is not None:
                found.append(match)
                if match.status == "finished":
                    self.cache.mark_final(path)
        return found

    def livescore_odds(self) -> dict[str, tuple[float, float, float]]:
        """1X2 prices of today's matches from the livescores page (never cached: they move)."""
        text = self.pages([Request("/LiveScores")]).get("/LiveScores")
        odds = text and self.parse("/LiveScores", text, lambda html, _: parse_livescores(html))
        return odds or {}


def merge(
    matches: list[ScrapedMatch],
    centres: list[ScrapedMatch],
    odds: dict[str, tuple[float, float, float]],
) -> list[ScrapedMatch]:
    """One record per WhoScored id: a match centre (half-time, line-ups) over the fixture list,
    live 1X2 odds over none."""
    by_id = {m.source_id: m for m in matches}
    for centre in centres:
        by_id[centre.source_id] = centre
    for match_id, (home, draw, away) in odds.items():
        if match_id in by_id and by_id[match_id].odds_home is None:
            by_id[match_id] = replace(
                by_id[match_id], odds_home=home, odds_draw=draw, odds_away=away
            )
    return sorted(by_id.values(), key=lambda m: (m.kickoff_utc, m.source_id))


def upsert(table: pd.DataFrame, target: Path) -> pd.DataFrame:
    """Replace rows by WhoScored id (it survives a rescheduling; the match id, which holds the
    date, does not), keep every other row, write atomically."""
    if target.exists():
        stored = pd.read_parquet(target)
        stored = stored[~stored["source_id"].isin(table["source_id"])]
        table = pd.concat([stored, table], ignore_index=True)
    table = table.sort_values(["kickoff_utc", "league", "source_id"], ignore_index=True)
    write_parquet(table, target, schema=SCRAPED_SCHEMA)
    return table
