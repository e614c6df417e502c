"""Production's alerts replayed over one backtest season (pure: no Ray, no I/O).

The season's champion is the backtest fold's model: trained on the earlier seasons, its drift
reference the training snapshot the register stage would have logged (with the model's
forecasts on it). Every `step_days` the drift window (`drift.window_days` of played matches)
slides on; at each step this records whether each alert fires, under each design (each on its
own window length), and what happened to the model: its RPS change over the recorded design's
window (the current one: `RECORDED`), its excess RPS over the market baseline (and the
stand-in's) over `monitor_replay.quality_days`, the quality rule's horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.config import DriftParams, MonitoringParams, MonitorReplayParams
from soccerpredict.drift import drift_columns, is_categorical, with_differences
from soccerpredict.drift_decision import ColumnStat, column_stat, decide
from soccerpredict.metrics.scoring import outcome_index, rps

# conf/prometheus/rules/quality.yml: an RPS over fewer matches is too noisy to act on
QUALITY_MIN_MATCHES = 100
# the quality job's forecaster names, as the backtest's pooled forecasts call them: the fold's
# market baseline is a de-vigged pre-closing market, the one the model is built on
FORECAST_NAMES = {"pinnacle_closing": "pinnacle_closing", "pre_closing_market": "market_baseline"}
ALERTS = ("window_drift", "column_drift", "quality")
_SIDES = ("home", "draw", "away")
# A real forecaster that does trail the market baseline: the tier the app serves a fixture
# without odds. The quality rule replayed on it measures the alert where the champion gives it
# nothing to detect (the champion is the market plus small corrections).
STAND_IN = "ratings_only"
# the design whose per-column statistics the rows keep (`p:<column>`, `effect:<column>`), so
# its effect-size floor can be chosen from the replay (replay_summary.choose_min_effect)
RECORDED = "after"


@dataclass(frozen=True)
class Design:
    drift: DriftParams
    monitoring: MonitoringParams


def designs(
    drift: DriftParams, monitoring: MonitoringParams, replay: MonitorReplayParams
) -> dict[str, Design]:
    """`after`: params as they are; `before`: with `monitor_replay.before`'s overrides."""
    before = replay.before
    return {
        "before": Design(
            drift.model_copy(update=before.get("drift", {})),
            monitoring.model_copy(update=before.get("monitoring", {})),
        ),
        "after": Design(drift, monitoring),
    }


def match_rps(frame: pd.DataFrame, name: str) -> np.ndarray:
    probs = frame[[f"{name}_{side}" for side in _SIDES]].to_numpy(dtype=float)
    return rps(probs, outcome_index(frame["result"]))


def window_ends(kickoff: pd.Series, step_days: int) -> list[pd.Timestamp]:
    """Ends (exclusive) of the weekly steps, from a step after the season's first kickoff to
    the first step past its last."""
    first = kickoff.min().normalize()
    steps = int((kickoff.max() - first) / timedelta(days=step_days)) + 1
    return [first + timedelta(days=step_days * k) for k in range(1, steps + 1)]


def has_stand_in(frame: pd.DataFrame) -> bool:
    return all(f"{STAND_IN}_{side}" in frame.columns for side in _SIDES)


def outcome(window: pd.DataFrame, validation_rps: float) -> dict[str, float]:
    """What happened over the window: the model's RPS beside the market baseline's and beside
    the validation figure it was promoted on (and the stand-in's excess, when it is there)."""
    model = float(match_rps(window, "model").mean())
    baseline = float(match_rps(window, "market_baseline").mean())
    out = {
        "model_rps": model,
        "excess_rps": model - baseline,
        "rps_change": model - validation_rps,
    }
    if has_stand_in(window):
        out[f"{STAND_IN}_excess_rps"] = float(match_rps(window, STAND_IN).mean()) - baseline
    return out


def quality_alert(
    played: pd.DataFrame, monitoring: MonitoringParams, served: str = "model"
) -> dict[str, Any]:
    """The rule SoccerPredictModelBehindBookmakers on the last `rolling_matches` played, for
    the forecaster `served`."""
    last = played.sort_values("kickoff_utc").tail(monitoring.rolling_matches)
    if len(last) < QUALITY_MIN_MATCHES:
        return {"gap": float("nan"), "fires": False}
    baseline = FORECAST_NAMES[monitoring.baseline]
    gap = float(match_rps(last, served).mean() - match_rps(last, baseline).mean())
    return {"gap": gap, "fires": gap > monitoring.behind_margin_rps}


def window_stats(
    reference: pd.DataFrame, window: pd.DataFrame, columns: list[str]
) -> dict[str, ColumnStat]:
    return {c: column_stat(reference[c], window[c], is_categorical(c, reference)) for c in columns}


def _design_row(
    name: str, design: Design, stats: dict[str, ColumnStat], scored: bool, played: pd.DataFrame
) -> dict[str, Any]:
    verdict = decide({c: stats[c] for c in drift_columns(design.drift)}, design.drift)
    quality = quality_alert(played, design.monitoring)
    row = {
        f"{name}_window_drift": scored and verdict["drifted"],
        f"{name}_column_drift": scored and bool(verdict["drifted_columns"]),
        f"{name}_drifted_columns": ",".join(verdict["drifted_columns"]) if scored else "",
        f"{name}_quality": quality["fires"],
        f"{name}_quality_gap": quality["gap"],
    }
    if has_stand_in(played):
        row[f"{name}_quality_{STAND_IN}"] = quality_alert(played, design.monitoring, STAND_IN)[
            "fires"
        ]
    return row


def stand_in_gaps(played: pd.DataFrame, monitoring: MonitoringParams, grid: list[int]) -> dict:
    """The stand-in's gap to the baseline over the last N played, for each N on the grid: the
    quality rule's window chosen on the replay (replay_summary.choose_rolling_matches)."""
    if not has_stand_in(played):
        return {}
    return {
        f"gap_{STAND_IN}_{n}": quality_alert(
            played, monitoring.model_copy(update={"rolling_matches": n}), STAND_IN
        )["gap"]
        for n in grid
    }


def recorded_stats(design: Design, stats: dict[str, ColumnStat]) -> dict[str, float]:
    """The design's per-column p-values and effect sizes (NaN in an unscored window)."""
    out = {}
    for c in drift_columns(design.drift):
        stat = stats.get(c)
        out[f"p:{c}"] = stat.p(design.drift.result_test) if stat else float("nan")
        out[f"effect:{c}"] = stat.effect(design.drift.effect_size) if stat else float("nan")
    return out


def replay_season(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    plan: dict[str, Design],
    replay: MonitorReplayParams,
) -> pd.DataFrame:
    """One row per weekly step of the season: each design's alerts and what happened (over
    the recorded design's window, else the first design's)."""
    current, reference = with_differences(current), with_differences(reference)
    lengths = {(d.drift.window_days, d.drift.min_rows) for d in plan.values()}
    columns = {
        length: sorted(
            {
                c
                for d in plan.values()
                for c in drift_columns(d.drift)
                if (d.drift.window_days, d.drift.min_rows) == length
            }
        )
        for length in lengths
    }
    main = plan.get(RECORDED, next(iter(plan.values()))).drift
    kickoff = pd.to_datetime(current["kickoff_utc"], utc=True)
    validation_rps = float(current["model_validation_rps"].iloc[0])
    rows = []
    for week, end in enumerate(window_ends(kickoff, replay.step_days), start=1):
        played = current[kickoff < end]
        windows, scored, stats = {}, {}, {}
        for days, min_rows in lengths:
            window = played[kickoff[kickoff < end] >= end - timedelta(days=days)]
            windows[days, min_rows], scored[days, min_rows] = window, len(window) >= min_rows
            stats[days, min_rows] = (
                window_stats(reference, window, columns[days, min_rows])
                if scored[days, min_rows]
                else {}
            )
        key = (main.window_days, main.min_rows)
        row = {
            "season": str(current["season"].iloc[0]),
            "week": week,
            "end": end,
            "n": len(windows[key]),
            "scored": scored[key],
        } | outcome(windows[key], validation_rps)
        horizon = played[kickoff[kickoff < end] >= end - timedelta(days=replay.quality_days)]
        behind = outcome(horizon, validation_rps)
        row |= {k: v for k, v in behind.items() if k.endswith("excess_rps")}
        for name, design in plan.items():
            own = (design.drift.window_days, design.drift.min_rows)
            calm = dict.fromkeys(columns[own], _CALM)
            row |= _design_row(name, design, stats[own] or calm, scored[own], played)
        if RECORDED in plan:
            row |= recorded_stats(plan[RECORDED], stats[key])
            row |= stand_in_gaps(played, plan[RECORDED].monitoring, replay.rolling_matches_grid)
        rows.append(row)
    return pd.DataFrame(rows)


_CALM = ColumnStat(p_value=1.0, wasserstein=0.0, psi=0.0)  # an unscored window flags nothing
