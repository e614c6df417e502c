"""Production's drift and quality alerts replayed over every backtest season
(`python -m ray_jobs.monitor_replay`, DVC stage `monitor_replay`): one Ray task per season, on
the backtest's fold forecasts and fold models' snapshots (no retraining). Writes
`reports/monitor_replay.json` (each alert as a detector, today's design beside the current one;
the drift level chosen on shifts injected into the seasons before the event, `injection`),
the weekly rows (`reports/monitor_replay_windows.csv`) and `reports/plots/monitor_replay.png`;
on bad input it exits 1 and writes nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from ray_jobs.runtime import ray_session
from soccerpredict.config import Config
from soccerpredict.io import write_json, write_text
from soccerpredict.replay import RECORDED, Design, designs, replay_season
from soccerpredict.replay_inject import inject_season
from soccerpredict.replay_plot import plot_replay
from soccerpredict.replay_summary import summarise_replay

log = logging.getLogger(__name__)


def _read(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise SystemExit(
            f"monitor_replay: cannot read {what} {path}: {err}; run the backtest stage first"
        ) from None


def season_inputs(
    features: pd.DataFrame, forecasts: pd.DataFrame, references: pd.DataFrame, season: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the season's forecasts with their features, the fold model's snapshot with its
    features and forecasts)"""
    current = forecasts[forecasts["season"] == season]
    extra = ["match_id", *[c for c in features.columns if c not in current.columns]]
    current = current.merge(features[extra], on="match_id", how="left")
    snapshot = references[references["fold_season"] == season]
    extra = ["match_id", *[c for c in features.columns if c not in snapshot.columns]]
    reference = snapshot.merge(features[extra], on="match_id", how="left")
    if current.empty or reference.empty:
        raise SystemExit(f"monitor_replay: season {season} has no forecasts or no reference")
    return current.reset_index(drop=True), reference


def replay_on_ray(
    inputs: dict[str, tuple[pd.DataFrame, pd.DataFrame]], plan: dict[str, Design], cfg: Config
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the weekly rows of every season, the injected shifts' rows of the seasons before the
    event): a Ray task per season for each."""
    import ray

    replay = cfg.params.monitor_replay
    task = ray.remote(num_cpus=1)(replay_season)
    refs = {
        season: task.remote(current, reference, plan, replay)
        for season, (current, reference) in inputs.items()
    }
    inject = ray.remote(num_cpus=1)(inject_season)
    injected_refs = {
        season: inject.remote(current, reference, plan[RECORDED], replay)
        for season, (current, reference) in inputs.items()
        if season < replay.event_season and replay.injection.scenarios
    }
    parts = []
    for season, ref in refs.items():
        parts.append(ray.get(ref))
        log.info("season %s: %d weekly steps", season, len(parts[-1]))
    injected = []
    for season, ref in injected_refs.items():
        injected.append(ray.get(ref))
        log.info("season %s: %d injected weekly steps", season, len(injected[-1]))
    return (
        pd.concat(parts, ignore_index=True),
        pd.concat(injected, ignore_index=True) if injected else pd.DataFrame(),
    )


def run(cfg: Config) -> dict[str, Any]:
    paths, replay = cfg.runtime.paths, cfg.params.monitor_replay
    forecasts = _read(paths.backtest_forecasts, "the backtest's forecasts")
    references = _read(paths.backtest_references, "the backtest's fold snapshots")
    features = _read(paths.features, "the feature table")
    seasons = sorted(s for s in forecasts["season"].unique() if s >= replay.first_season)
    if not seasons:
        raise SystemExit(f"monitor_replay: no backtest season from {replay.first_season} on")
    inputs = {s: season_inputs(features, forecasts, references, s) for s in seasons}
    plan = designs(cfg.params.drift, cfg.params.monitoring, replay)
    with ray_session(cfg):
        rows, injected = replay_on_ray(inputs, plan, cfg)
    report = summarise_replay(rows, plan, replay, injected if len(injected) else None) | {
        "seasons": seasons
    }
    reports = Path(paths.reports)
    write_text(
        rows.to_csv(index=False, float_format="%.6g"), reports / "monitor_replay_windows.csv"
    )
    plot_replay(rows, list(plan), reports / "plots" / "monitor_replay.png")
    write_json(report, reports / "monitor_replay.json")
    return report


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
