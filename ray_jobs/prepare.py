"""Raw → interim match table (`python -m ray_jobs.prepare`): the configured seasons, canonical
names, results after `as_of` hidden; the interim gate must pass before anything is written."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time
from pathlib import Path

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict.config import Config
from soccerpredict.data.clean import to_interim, with_scraped
from soccerpredict.data.contract import MATCH_SCHEMA
from soccerpredict.data.sources import season_range
from soccerpredict.io import write_parquet
from soccerpredict.seasons import season_span

log = logging.getLogger(__name__)


def prepare(cfg: Config) -> pd.DataFrame:
    from soccerpredict.validation.gates import run_gate

    d = cfg.params.data
    raw = pd.read_parquet(cfg.runtime.paths.raw)
    scraped_path = Path(cfg.runtime.paths.whoscored_matches)
    if scraped_path.exists():  # WhoScored results football-data does not have yet
        before = len(raw)
        raw = with_scraped(raw, pd.read_parquet(scraped_path))
        log.info("%d scraped matches added to football-data's %d", len(raw) - before, before)
    interim = to_interim(
        raw,
        d.leagues,
        season_range(d.first_season, d.last_season),
        cfg.params.as_of,
        # the extra leagues' seasons are calendar years or July-June: selected by date
        (d.extra_leagues, season_span(d.first_season)[0], season_span(d.last_season)[1]),
    )
    # the interim table's "now" is the end of `as_of`: later results are hidden on purpose
    as_of_end = datetime.combine(cfg.params.as_of, time.max, tzinfo=UTC)
    run_gate("interim", interim, cfg.runtime.paths.reports, now=as_of_end)
    write_parquet(interim, cfg.runtime.paths.interim, schema=MATCH_SCHEMA)
    log.info(
        "interim table: %d matches, %d upcoming", len(interim), int(interim["result"].isna().sum())
    )
    return interim


def main(argv: list[str] | None = None) -> None:
    run_stage(prepare, __doc__, argv)


if __name__ == "__main__":
    main()
