"""WhoScored's old mobile-API stage files (2012-2018) as a second historical source
(`python -m ray_jobs.import_legacy --stages <folder of Stages/Show responses>`).

One Ray task per stage file parses it; the top-5 league stages go to
`data/raw/whoscored/legacy.parquet` (status kept) and are reconciled with football-data's table
on the same matches. Every disagreement is in `reports/legacy_reconciliation.json`. The legacy
table is not fed to the pipeline: its 2017/18 snapshots list fixtures that were later played on
other dates, and football-data already has every one of these seasons.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import add_config_args, configure_logging, job_config
from ray_jobs.runtime import ray_session
from soccerpredict.config import Config
from soccerpredict.io import write_json, write_parquet
from soccerpredict.whoscored.legacy import legacy_league_season, parse_legacy_stage
from soccerpredict.whoscored.reconcile import reconcile
from soccerpredict.whoscored.records import SCRAPED_SCHEMA, to_match_table

log = logging.getLogger(__name__)


def stage_table(text: str) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """One stage file → its info and, for a top-5 league season, its matches."""
    info, matches = parse_legacy_stage(text)
    league_season = legacy_league_season(info)
    if league_season is None:
        return info, None
    return info, to_match_table(matches, *league_season)


def import_stages(files: list[Path]) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    import ray
    from tqdm import tqdm

    task = ray.remote(num_cpus=1)(stage_table)
    refs = [task.remote(f.read_text(encoding="utf-8-sig")) for f in files]
    out = []
    for ref in tqdm(refs, desc="legacy stages", unit="stage"):
        info, table = ray.get(ref)
        if table is not None:
            out.append((info, table))
    return out


def stage_report(
    info: dict[str, Any], table: pd.DataFrame, football_data: pd.DataFrame
) -> dict[str, Any]:
    league, season = table["league"].iloc[0], table["season"].iloc[0]
    fd = football_data[(football_data["league"] == league) & (football_data["season"] == season)]
    result = reconcile(table, fd)
    return {
        "stage_id": info["stageId"],
        "name": info.get("name"),
        "league": league,
        "season": season,
        "matches": len(table),
        "matched": result.matched,
        "compared": result.compared,
        "agreement_rate": result.agreement_rate,
        "status": table["status"].value_counts().to_dict(),
        "only_whoscored": len(result.only_scraped),
        "only_football_data": len(result.only_football_data),
        "disagreements": result.disagreements.astype(str).to_dict(orient="records"),
    }


def run(cfg: Config, stages: Path) -> dict[str, Any]:
    files = sorted(stages.glob("*.txt"))
    if not files:
        raise SystemExit(f"no stage files (*.txt) in {stages}")
    with ray_session(cfg):
        imported = import_stages(files)
    football_data = pd.read_parquet(cfg.runtime.paths.raw)
    per_stage = [stage_report(info, table, football_data) for info, table in imported]
    table = pd.concat([t for _, t in imported], ignore_index=True)
    target = Path(cfg.runtime.paths.whoscored_matches).with_name("legacy.parquet")
    write_parquet(
        table.sort_values(["kickoff_utc", "source_id"], ignore_index=True),
        target,
        schema=SCRAPED_SCHEMA,
    )
    compared = sum(s["compared"] for s in per_stage)
    disagreeing = sum(len(s["disagreements"]) for s in per_stage)
    summary = {
        "stage_files": len(files),
        "league_stages": len(per_stage),
        "matches": len(table),
        "matched": sum(s["matched"] for s in per_stage),
        "compared": compared,
        "disagreements": disagreeing,
        "stages": per_stage,
    }
    write_json(summary, Path(cfg.runtime.paths.reports) / "legacy_reconciliation.json")
    log.info(
        "%d league stages, %d matches: %d compared with football-data, %d disagree",
        len(per_stage),
        len(table),
        compared,
        disagreeing,
    )
    for stage in per_stage:
        for row in stage["disagreements"]:
            log.warning("%s %s disagrees: %s", stage["league"], stage["season"], row)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stages",
        type=Path,
        required=True,
        help="the legacy_mobile_api/stages folder of the saved WhoScored data",
    )
    add_config_args(parser)
    args = parser.parse_args(argv)
    configure_logging()
    run(job_config(args.params, args.conf), args.stages)


if __name__ == "__main__":
    main()
