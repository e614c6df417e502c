"""The arguments every job shares: where params and runtime conf live."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import date

from ray_jobs import params_reads
from soccerpredict.config import Config, project_config


def parse_config(description: str | None, argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=description)
    add_config_args(parser)
    args = parser.parse_args(argv)
    configure_logging()
    return job_config(args.params, args.conf)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="what changes results")
    parser.add_argument("--conf", default="conf/runtime.yaml", help="where things run")


def job_config(params: str, conf: str, today: date | None = None) -> Config:
    """The config, with relative paths taken from the project (`config.project_root`)."""
    return project_config(params, conf, today)


def configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for name in ("__main__", "ray_jobs", "soccerpredict"):  # ours at INFO; libraries stay quiet
        logging.getLogger(name).setLevel(logging.INFO)


def run_stage(
    job: Callable[[Config], object], description: str | None, argv: list[str] | None = None
) -> None:
    """Parse config, run the job; a failed validation gate ends it with its summary, exit 1."""
    from soccerpredict.validation.gates import GateFailed

    cfg = parse_config(description, argv)
    try:
        with params_reads.watched(cfg, sys.modules[job.__module__].__file__) as watched:
            job(watched)
    except GateFailed as failure:
        print(f"{failure.summary}\nreport: {failure.report_path}", file=sys.stderr)
        raise SystemExit(1) from None
