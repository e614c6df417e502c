"""How the predictions that were served did, once the results are in (no Ray, no I/O).

A prediction is logged when it is served (sync, batch, async) or batch-predicted, keyed by the
match id of its fixture and stamped with `as_of`, the last day its features know of. What is
scored is the prediction of record: the `batch_predict` stage's (source `batch`), never one a
key holder asked for, which may rest on odds the client chose (logged with the `+client_odds`
suffix and only counted). When the match has a result, the last prediction of record whose
knowledge ends before kickoff is scored beside the bookmakers' prices for the same match: RPS and log-loss of the model, the Pinnacle closing line
and the pre-closing market, per league and over the last N matches. (Knowledge, not wall-clock
time, decides: this project replays seasons that are over.) Fixtures that never happened
(what-if requests) have no result and are never scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.evaluation import CLOSING_COLUMNS, common_mask
from soccerpredict.features.market import market_values, pre_closing_odds
from soccerpredict.metrics.implied import devig
from soccerpredict.metrics.scoring import log_loss, outcome_index, rps_average
from soccerpredict.models.predictor import PROBABILITY_COLUMNS
from soccerpredict.time_rules import known_before_kickoff

STREAM = "predictions:log"  # the Redis stream the Serve app logs served predictions to
RECORD_SOURCE = "batch"  # the batch_predict stage's rows: the predictions of record
CLIENT_ODDS = "+client_odds"  # suffix of a served row whose request carried the client's odds
LOG_COLUMNS = [
    "logged_at",
    "as_of",
    "source",
    "match_id",
    "league",
    "kickoff",
    "home_team",
    "away_team",
    "prob_home",
    "prob_draw",
    "prob_away",
    "model_version",
]
PROBS = PROBABILITY_COLUMNS


def log_row(
    match_id: str,
    league: str,
    kickoff: date,
    home_team: str,
    away_team: str,
    probabilities: Sequence[float],
    model_version: str,
    source: str,
    as_of: date,
) -> dict[str, Any]:
    """One prediction-log row, served or batch: `as_of` is the last day its features knew of."""
    values = [
        datetime.now(UTC).isoformat(timespec="milliseconds"),
        as_of.isoformat(),
        source,
        match_id,
        league,
        kickoff.isoformat(),
        home_team,
        away_team,
        *(float(p) for p in probabilities),
        str(model_version),
    ]
    return dict(zip(LOG_COLUMNS, values, strict=True))


def last_before_kickoff(log: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """Each played match once: the latest logged prediction that knew nothing of its day."""
    played = matches[matches["result"].notna()].set_index("match_id")
    joined = log[log["match_id"].isin(played.index)].copy()
    if joined.empty:
        return joined.assign(kickoff_utc=pd.Series(dtype="datetime64[ns, UTC]"))
    joined["kickoff_utc"] = played.loc[joined["match_id"], "kickoff_utc"].to_numpy()
    joined = joined[known_before_kickoff(joined["as_of"], joined["kickoff_utc"])]
    return (
        joined.sort_values("logged_at")
        .groupby("match_id", as_index=False)
        .last()
        .sort_values("kickoff_utc", ignore_index=True)
    )


def scored_forecasts(
    predictions: pd.DataFrame, matches: pd.DataFrame
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """The model's and the bookmakers' probabilities on the matches all three have."""
    rows = matches.set_index("match_id").loc[predictions["match_id"]].reset_index()
    if rows.empty:
        return {}, rows
    named = {
        "model": predictions[PROBS].to_numpy(dtype=float),
        "pinnacle_closing": devig(rows[CLOSING_COLUMNS].to_numpy(dtype=float)),
        "pre_closing_market": market_values(pre_closing_odds(rows))[:, :3],
    }
    mask = common_mask(named)
    return {k: v[mask] for k, v in named.items()}, rows[mask].reset_index(drop=True)


def _scores(named: dict[str, np.ndarray], y: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        name: {"rps": rps_average(p, y), "log_loss": log_loss(p, y)} for name, p in named.items()
    }


def _window(named: dict[str, np.ndarray], rows: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups = [("all", np.ones(len(rows), dtype=bool))] + [
        (league, (rows["league"] == league).to_numpy())
        for league in sorted(rows["league"].unique())
    ]
    for league, mask in groups:
        if mask.any():
            y = outcome_index(rows.loc[mask, "result"])
            out[league] = {
                "matches": int(mask.sum()),
                "forecasters": _scores({k: v[mask] for k, v in named.items()}, y),
            }
    return out


def quality_report(
    log: pd.DataFrame, matches: pd.DataFrame, rolling_matches: int, margin_rps: float
) -> dict[str, Any]:
    """Scores of every window: all scored matches, and the last `rolling_matches` of them.

    Nothing scored (no played match has a logged prediction yet) gives empty windows: no
    score rather than a zero that would look like one.
    """
    record = log[log["source"] == RECORD_SOURCE]
    named, rows = scored_forecasts(last_before_kickoff(record, matches), matches)
    recent = slice(max(0, len(rows) - rolling_matches), len(rows))
    windows: dict[str, Any] = {"all": {}, "rolling": {}}
    if named:
        windows = {
            "all": _window(named, rows),
            "rolling": _window(
                {k: v[recent] for k, v in named.items()}, rows.iloc[recent].reset_index(drop=True)
            ),
        }
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "logged_predictions": len(log),
        "served_predictions": len(log) - len(record),  # counted, not scored
        "served_with_client_odds": int(log["source"].str.endswith(CLIENT_ODDS).sum()),
        "scored_matches": len(rows),
        "rolling_matches": rolling_matches,
        "margin_rps": margin_rps,
        "windows": windows,
    }
