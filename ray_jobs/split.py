"""Features → train / validation / test / upcoming Parquet files, and the extra leagues'
extra_train / extra_validation / extra_test (`python -m ray_jobs.split`), by kickoff date."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict.config import Config
from soccerpredict.io import write_json, write_parquet
from soccerpredict.split import extra_split, temporal_split

log = logging.getLogger(__name__)


def run(cfg: Config) -> dict[str, int]:
    features = pd.read_parquet(cfg.runtime.paths.features)
    parts = temporal_split(features, cfg.params.split)
    out = Path(cfg.runtime.paths.splits)
    extra_path = cfg.runtime.paths.features_extra
    if extra_path.exists():  # every run of `features` writes it (empty without extra leagues)
        parts |= extra_split(pd.read_parquet(extra_path), cfg.params.split)
    for name, frame in parts.items():
        write_parquet(frame, cfg.runtime.paths.split_file(name))
    sizes = {name: len(frame) for name, frame in parts.items()}
    write_json(sizes, out / "sizes.json")
    log.info("split sizes: %s", sizes)
    return sizes


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
