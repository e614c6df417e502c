"""The calendar this run uses (`python -m ray_jobs.resolve`), the first stage of the pipeline.

`data.last_season: current` and `as_of: today` follow the date. This stage resolves them once
per `dvc repro` and writes the result to `data/calendar.yaml`, which the stages that read the
seasons or the cut-off depend on: they re-run when the date moves the resolution, and every
stage of one run sees the same day. With fixed settings (the default) the file never changes.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime

import yaml

from ray_jobs import params_reads
from ray_jobs.cli import add_config_args, configure_logging, job_config
from soccerpredict.config import Config, calendar_settings, project_root
from soccerpredict.io import write_text

log = logging.getLogger(__name__)


def write_calendar(cfg: Config, settings: dict[str, str]) -> None:
    document = {**cfg.calendar.to_dict(), "settings": settings}
    write_text(yaml.safe_dump(document, sort_keys=True), cfg.runtime.paths.calendar)
    log.info(
        "calendar: last season %s%s, as_of %s",
        cfg.calendar.last_season,
        " (in progress)" if cfg.calendar.last_season_in_progress else "",
        cfg.calendar.as_of,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_config_args(parser)
    args = parser.parse_args(argv)
    configure_logging()
    cfg = job_config(args.params, args.conf, today=datetime.now(UTC).date())
    raw = yaml.safe_load((project_root(args.params) / args.params).read_text())
    with params_reads.watched(cfg, __file__) as watched:
        # the two settings this stage resolves (read raw above, resolved through the loader)
        _ = (watched.params.data.last_season, watched.params.as_of)
        write_calendar(cfg, calendar_settings(raw))


if __name__ == "__main__":
    main()
