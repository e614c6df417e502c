"""Interim matches → point-in-time features on Ray (`python -m ray_jobs.features`).

Leagues are independent histories, so each league is one Ray task running the shared
`soccerpredict.features` code; the driver gathers, gates and writes one Parquet file, and
publishes each league's final team state as the versioned snapshot Serve answers fixtures from.
The extra leagues' rows (`data.extra_leagues`) are written to their own table.
"""

from __future__ import annotations

import logging

import pandas as pd

from ray_jobs.cli import run_stage
from ray_jobs.runtime import ray_session
from soccerpredict.config import Config, FeatureParams
from soccerpredict.features.build import (
    FEATURE_COLUMNS,
    build_features_and_states,
    feature_contract,
)
from soccerpredict.features.online import snapshot
from soccerpredict.features.state import LeagueState
from soccerpredict.io import write_json, write_parquet

log = logging.getLogger(__name__)


def features_on_ray(
    matches: pd.DataFrame, params: FeatureParams
) -> tuple[pd.DataFrame, dict[str, LeagueState]]:
    import ray
    from tqdm import tqdm

    task = ray.remote(num_cpus=1)(build_features_and_states)
    params_ref = ray.put(params)
    refs = [task.remote(group, params_ref) for _, group in matches.groupby("league", sort=True)]
    parts: list[pd.DataFrame] = []
    states: dict[str, LeagueState] = {}
    for ref in tqdm(refs, desc="features by league", unit="league"):
        table, league_states = ray.get(ref)
        parts.append(table)
        states |= league_states
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values(["kickoff_utc", "league", "match_id"], ignore_index=True), states


def run(cfg: Config) -> pd.DataFrame:
    from soccerpredict.validation.gates import run_gate

    matches = pd.read_parquet(cfg.runtime.paths.interim)
    with ray_session(cfg):
        table, states = features_on_ray(matches, cfg.params.features)
    run_gate("features", table, cfg.runtime.paths.reports, feature_columns=FEATURE_COLUMNS)
    # the extra leagues apart: only the split stage and what reads its extra tables see them
    extra = table["league"].isin(cfg.params.data.extra_leagues)
    write_parquet(table[~extra].reset_index(drop=True), cfg.runtime.paths.features)
    write_parquet(table[extra].reset_index(drop=True), cfg.runtime.paths.features_extra)
    write_json(feature_contract(), cfg.runtime.paths.feature_contract)
    published = snapshot(states, cfg.params.features, cfg.params.as_of)
    write_json(published, cfg.runtime.paths.team_state, digits=None)  # exact: Serve replays it
    log.info(
        "features: %d rows x %d columns; team state %s published",
        len(table),
        len(FEATURE_COLUMNS),
        published["version"],
    )
    return table


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
