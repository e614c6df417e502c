"""Known shifts injected into a season before the event, replayed week by week (pure: no Ray,
no I/O).

The drift alert's family-wise level cannot be chosen on the known event (2020-21) without
fitting the alert to the one event held out to judge it. Instead, a known, size-controlled
shift is injected into the inputs of each season before the event, from a known week on, and
every candidate design is scored on how soon it detects it
(`replay_summary.choose_level`). A scenario moves chosen drift columns:
- a numerical column by `size` standard deviations of the reference (a location shift: the
  normed Wasserstein distance it adds is `size`);
- the result, ordinal (home 0, draw 1, away 2, as RPS and the drift distance code it), by moving
  a random share of the matches one step towards the away side (home win to draw, draw to away
  win; towards the home side for a negative direction), the share set so that the mean code
  moves by `size` reference standard deviations.
A shifted probability (the market's, the goal model's, the model's own) is clipped to [0, 1]: a
price cannot leave it, so near the edges the shift is smaller than `size`.

Each row holds the week's per-column p-values and effect sizes with the shifted columns
replaced, so the alert rule can be applied at any level and floor without re-testing; the
columns not shifted keep the unshifted window's statistics (same matches, same values).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from soccerpredict.config import MonitorReplayParams
from soccerpredict.drift import OUTPUT_COLUMNS, drift_columns, is_categorical, with_differences
from soccerpredict.drift_decision import RESULT_ORDER, ColumnStat
from soccerpredict.replay import Design, recorded_stats, window_ends, window_stats

_CODES = {code: side for side, code in RESULT_ORDER.items()}


def is_probability(column: str) -> bool:
    """The columns that are probabilities: market and goal-model prices, the model's output."""
    return column in OUTPUT_COLUMNS or "_prob_" in column


def _shift_results(
    results: pd.Series,
    reference: pd.Series,
    size: float,
    rows: np.ndarray,
    rng: np.random.Generator,
) -> pd.Series:
    """The results with a share of `rows` moved one step: their mean code moves by `size`
    reference standard deviations (towards away if size > 0, home if < 0)."""
    codes = results.map(RESULT_ORDER).to_numpy(float)
    if np.isnan(codes[rows]).any() or reference.map(RESULT_ORDER).isna().any():
        raise ValueError("only results coded H, D, A can be shifted")
    step = 1.0 if size > 0 else -1.0
    movable = rows & (codes != (2.0 if step > 0 else 0.0))
    if not movable.any():
        return results.copy()
    wanted = abs(size) * float(np.std(reference.map(RESULT_ORDER).to_numpy(float)))
    share = min(1.0, wanted * rows.sum() / movable.sum())  # of the movable rows
    move = movable & (rng.random(len(codes)) < share)
    out = results.copy()
    out[move] = [_CODES[c + step] for c in codes[move]]
    return out


def shift_frame(
    frame: pd.DataFrame,
    reference: pd.DataFrame,
    shifts: dict[str, float],
    size: float,
    rows: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """`frame` with each column of `shifts` moved on `rows` by `direction * size` reference
    standard deviations (the result: towards the away side for a positive direction)."""
    out = frame.copy()
    for column, direction in shifts.items():
        if is_categorical(column, reference):
            out[column] = _shift_results(
                out[column], reference[column], direction * size, rows, rng
            )
            continue
        scale = float(np.std(reference[column].dropna().to_numpy(np.float64)))
        values = out[column].to_numpy(np.float64).copy()
        values[rows] += direction * size * scale
        out[column] = np.clip(values, 0.0, 1.0) if is_probability(column) else values
    return out


def inject_season(
    current: pd.DataFrame, reference: pd.DataFrame, design: Design, replay: MonitorReplayParams
) -> pd.DataFrame:
    """One row per scenario, size, start week and weekly step from the start on: the design's
    per-column statistics of the week's window with the scenario's shift injected."""
    injection = replay.injection
    current, reference = with_differences(current), with_differences(reference)
    columns = drift_columns(design.drift)
    for name, shifts in injection.scenarios.items():
        unknown = sorted(set(shifts) - set(columns))
        if unknown:
            raise ValueError(f"injection scenario {name}: {unknown} are not drift columns")
    season = str(current["season"].iloc[0])
    kickoff = pd.to_datetime(current["kickoff_utc"], utc=True)
    ends = window_ends(kickoff, replay.step_days)
    window_days = timedelta(days=design.drift.window_days)
    masks = [((kickoff < end) & (kickoff >= end - window_days)).to_numpy() for end in ends]
    first = min(injection.start_weeks, default=len(ends) + 1)
    base: dict[int, dict[str, ColumnStat]] = {
        week: window_stats(reference, current[mask], columns)
        for week, mask in enumerate(masks, start=1)
        if week >= first and mask.sum() >= design.drift.min_rows
    }
    rows = []
    for s, (name, shifts) in enumerate(injection.scenarios.items()):
        for k, size in enumerate(injection.sizes):
            for start in injection.start_weeks:
                if start > len(ends):
                    continue
                begins = ends[start - 1] - timedelta(days=replay.step_days)
                rng = np.random.default_rng([injection.seed, int(season[:4]), s, k, start])
                shifted = shift_frame(
                    current[list(shifts)],
                    reference,
                    shifts,
                    size,
                    (kickoff >= begins).to_numpy(),
                    rng,
                )
                for week in range(start, len(ends) + 1):
                    stats = dict(base.get(week, {}))
                    if stats:
                        stats |= window_stats(reference, shifted[masks[week - 1]], list(shifts))
                    rows.append(
                        {
                            "season": season,
                            "scenario": name,
                            "size": size,
                            "start_week": start,
                            "week": week,
                            "weeks_since_start": week - start + 1,
                            "scored": bool(stats),
                            "shifted": ",".join(shifts),
                        }
                        | recorded_stats(design, stats)
                    )
    return pd.DataFrame(rows)
