"""WhoScored fixtures, results and odds with headless Chromium on Ray
(`python -m ray_jobs.scrape --league ENG-Premier-League --season 2020-2021`).

A pool of Ray actors, each holding one browser (`soccerpredict.whoscored.browser.Fetcher`), fetches
the league's season page, its monthly fixtures JSON and any match-centre pages asked for, with a
polite delay and retries. The driver parses, keeps raw pages in a content-addressed cache (a page
that can no longer change is never fetched again), upserts the matches into
`data/raw/whoscored/matches.parquet` atomically and writes a report: pages, matches by status,
failures (with a saved copy of any page that did not parse) and time. A page that fails does not
stop the others; the job exits 1 only when the season itself cannot be read.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray

from ray_jobs import params_reads
from ray_jobs.cli import add_config_args, configure_logging, job_config
from ray_jobs.runtime import ray_session
from soccerpredict.config import Config, ScrapeConf
from soccerpredict.io import write_json, write_parquet
from soccerpredict.whoscored.cache import PageCache
from soccerpredict.whoscored.leagues import league
from soccerpredict.whoscored.records import SCRAPED_SCHEMA, to_match_table
from soccerpredict.whoscored.season import Report, Request, SeasonScraper, merge, upsert

log = logging.getLogger(__name__)


class BrowserPool:
    """`concurrency` Ray actors with one browser each; pages are spread over them."""

    def __init__(self, conf: ScrapeConf) -> None:
        from ray.util import ActorPool

        actor = ray.remote(num_cpus=conf.actor_cpus)(BrowserActor)
        self.actors = [
            actor.remote(conf.model_dump(mode="json"), seed) for seed in range(conf.concurrency)
        ]
        self.pool = ActorPool(self.actors)

    def fetch(self, requests: list[Request]) -> list[dict[str, Any]]:
        from tqdm import tqdm

        results = self.pool.map_unordered(lambda a, r: a.fetch.remote(r.path, r.kind), requests)
        return list(tqdm(results, total=len(requests), desc="pages", unit="page"))

    def browsers_started(self) -> int:
        return sum(ray.get([a.browsers_started.remote() for a in self.actors]))

    def close(self) -> None:
        ray.get([a.close.remote() for a in self.actors])


class BrowserActor:
    """Runs inside a Ray actor: one Fetcher (one Chromium), used by one request at a time."""

    def __init__(self, conf: dict[str, Any], seed: int) -> None:
        from soccerpredict.whoscored.browser import Fetcher

        c = ScrapeConf.model_validate(conf)
        self.fetcher = Fetcher(
            c.base_url,
            c.delay_s,
            c.jitter_s,
            c.retries,
            c.backoff_s,
            c.timeout_s,
            c.chromium,
            seed=seed,
        )

    @ray.method  # types `handle.<method>.remote()` for mypy; no runtime effect
    def fetch(self, path: str, kind: str) -> dict[str, Any]:
        from soccerpredict.whoscored.browser import FetchFailed

        try:
            page = self.fetcher.get(path, kind)
        except FetchFailed as err:
            return {
                "path": path,
                "ok": False,
                "kind": err.kind,
                "attempts": err.attempts,
                "detail": err.detail,
            }
        return {
            "path": path,
            "ok": True,
            "status": page.status,
            "text": page.text,
            "attempts": page.attempts,
        }

    @ray.method  # types `handle.<method>.remote()` for mypy; no runtime effect
    def browsers_started(self) -> int:
        return self.fetcher.browsers_started

    @ray.method  # types `handle.<method>.remote()` for mypy; no runtime effect
    def close(self) -> None:
        self.fetcher.close()


def scrape(
    cfg: Config, league_name: str, season: str, match_ids: list[str], livescores: bool
) -> Report:
    lg = league(league_name)
    report, started = Report(league_name, season), time.monotonic()
    with ray_session(cfg):
        pool = BrowserPool(cfg.runtime.scrape)
        job = SeasonScraper(
            pool.fetch,
            report,
            PageCache(cfg.runtime.paths.whoscored_cache),
            Path(cfg.runtime.paths.reports) / "scrape" / "failed",
        )
        try:
            page, over = job.season_page(lg, season)
            matches = job.fixtures(page, over)
            centres = job.match_centres(match_ids) if match_ids else []
            odds = job.livescore_odds() if livescores else {}
        finally:
            job.cache.save()
            report.browsers_started = pool.browsers_started()
            pool.close()
    records = merge(matches, centres, odds)
    label = page.season_label.replace("/", "-")
    table = to_match_table(records, lg.code, label)
    stored = upsert(table, Path(cfg.runtime.paths.whoscored_matches))
    report.rows_written = len(table)
    counts = table["status"].value_counts()
    report.matches = {str(k): int(n) for k, n in counts.items()} | {"stored": len(stored)}
    report.seconds = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--league", help="e.g. ENG-Premier-League (default: params scrape)")
    parser.add_argument("--season", help="YYYY-YYYY or current (default: params scrape)")
    parser.add_argument("--match-ids", nargs="*", default=[], help="match-centre pages to read")
    parser.add_argument("--livescores", action="store_true", help="read 1X2 odds from livescores")
    add_config_args(parser)
    args = parser.parse_args(argv)
    configure_logging()
    with params_reads.watched(job_config(args.params, args.conf), __file__) as cfg:
        _run(cfg, args)


def _run(cfg: Config, args: argparse.Namespace) -> None:
    targets = (
        [(args.league, args.season or "current")]
        if args.league
        else [(lg, s) for lg in cfg.params.scrape.leagues for s in cfg.params.scrape.seasons]
    )
    if not args.league and not cfg.params.scrape.enabled:
        log.info(
            "scraping is off (params.yaml scrape.enabled); %s left as it is",
            cfg.runtime.paths.whoscored_matches,
        )
        _ensure_outputs(cfg)
        return
    reports = [scrape(cfg, lg, season, args.match_ids, args.livescores) for lg, season in targets]
    for report in reports:
        name = f"{report.league}_{report.season}.json"
        write_json(asdict(report), Path(cfg.runtime.paths.reports) / "scrape" / name)
        log.info(
            "%s %s: %d pages fetched, %d from cache, %d failed, matches %s, %.1f s",
            report.league,
            report.season,
            report.pages_fetched,
            report.pages_from_cache,
            len(report.failures),
            report.matches,
            report.seconds,
        )
        for failure in report.failures:
            log.warning("failed: %s", failure)


def _ensure_outputs(cfg: Config) -> None:
    """What the `scrape` stage promises DVC, even when it scrapes nothing: the table, the cache."""
    target = Path(cfg.runtime.paths.whoscored_matches)
    if not target.exists():
        write_parquet(to_match_table([], "E0", "2000-2001"), target, schema=SCRAPED_SCHEMA)
    cache = PageCache(cfg.runtime.paths.whoscored_cache)
    if not (cache.root / "index.json").exists():
        cache.save()


if __name__ == "__main__":
    main()
