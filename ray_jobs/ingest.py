"""Ingest football-data.co.uk files on Ray into the raw match table (`python -m ray_jobs.ingest`).

Each file is fetched and parsed by a Ray task; the driver gathers them, runs the raw gate and
writes one deterministic Parquet file. Nothing is written unless the gate passes.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd

from ray_jobs.cli import run_stage
from ray_jobs.runtime import ray_session
from soccerpredict.config import Config
from soccerpredict.data.contract import MATCH_SCHEMA
from soccerpredict.data.readers import read_football_data_csv
from soccerpredict.data.sources import Source, fetch_bytes, list_sources, season_range
from soccerpredict.io import write_json, write_parquet

log = logging.getLogger(__name__)


def read_source(source: Source) -> tuple[pd.DataFrame, dict[str, object]]:
    """Fetch and parse one file; the digest records exactly which bytes were read."""
    data = fetch_bytes(source.location)
    league = None if source.kind == "fixtures" else source.league  # fixtures: the Div column
    frame = read_football_data_csv(data, league=league, season=source.season)
    entry: dict[str, object] = {
        "league": source.league,
        "season": source.season,
        "location": source.location,
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": len(frame),
        "missing_columns": list(frame.attrs.get("missing_columns", [])),
    }
    if "competitions" in frame.attrs:  # extra leagues: the League names, whitespace stripped
        entry["competitions"] = list(frame.attrs["competitions"])
        entry["benchmark_prices_dropped"] = int(frame.attrs.get("benchmark_prices_dropped", 0))
        entry["rows_dropped"] = int(frame.attrs.get("rows_dropped", 0))  # not whole matches
    return frame, entry


def sources_for(cfg: Config) -> list[Source]:
    d, r = cfg.params.data, cfg.runtime.data
    fixtures_url = r.fixtures_url if cfg.calendar.last_season_in_progress else None
    return list_sources(
        d.leagues,
        season_range(d.first_season, d.last_season),
        d.extra_leagues,
        r.dir,
        r.url_template,
        r.extra_url_template,
        fixtures_url,
    )


def with_fixtures(matches: pd.DataFrame, leagues: list[str]) -> pd.DataFrame:
    """Keep the fixtures file's rows of our leagues that the season files do not have yet."""
    from_fixtures = matches["source_file_kind"] == "fixtures"
    keep = ~from_fixtures | (
        matches["league"].isin(leagues)
        & ~matches["match_id"].isin(matches.loc[~from_fixtures, "match_id"])
    )
    return matches[keep].drop(columns="source_file_kind")


def read_all_on_ray(sources: list[Source]) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    import ray
    from tqdm import tqdm

    task = ray.remote(num_cpus=1, max_retries=2)(read_source)
    pending = {task.remote(s): s for s in sources}
    results: dict[Source, tuple[pd.DataFrame, dict[str, object]]] = {}
    with tqdm(total=len(pending), desc="ingest files", unit="file") as bar:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            results[pending.pop(done[0])] = ray.get(done[0])
            bar.update(1)
    ordered = [results[s] for s in sources]  # file order, not completion order: determinism
    frames = [
        f.assign(source_file_kind=s.kind)
        for s, (f, _) in zip(sources, ordered, strict=True)
        if len(f)
    ]
    matches = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return matches, [e for _, e in ordered]


def ingest(cfg: Config) -> pd.DataFrame:
    from soccerpredict.validation.gates import run_gate

    matches, manifest = read_all_on_ray(sources_for(cfg))
    matches = with_fixtures(matches, cfg.params.data.leagues)
    matches = matches.sort_values(["kickoff_utc", "league", "match_id"], ignore_index=True)
    run_gate("raw", matches, cfg.runtime.paths.reports)  # raises before anything is written
    raw_path = Path(cfg.runtime.paths.raw)
    write_parquet(matches, raw_path, schema=MATCH_SCHEMA)
    write_json({"files": manifest, "rows": len(matches)}, raw_path.with_name("manifest.json"))
    log.info("ingested %d matches from %d files", len(matches), len(manifest))
    return matches


def run(cfg: Config) -> pd.DataFrame:
    with ray_session(cfg):
        return ingest(cfg)


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
