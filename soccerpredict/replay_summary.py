"""The replayed alerts measured as detectors (pure): per design and alert, how often it fired,
how often without cause, how often when the model degraded, how soon in the known event.

- degraded: the model's RPS over the window exceeds its validation RPS by more than
  `monitor_replay.degraded_rps`;
- ordinary: a scored window, not degraded, outside the event season;
- behind: the model trails the market baseline over the window by more than the quality
  alert's margin (`monitoring.behind_margin_rps`): what the quality alert is for. The champion
  never does on the backtest, so the quality rule is also replayed on a stand-in that does
  (`replay.STAND_IN`, the ratings-only tier) to measure it as a detector.

The effect-size floor is chosen on the seasons before the event only (`choose_min_effect`):
the seasons from the event on are then held out, and their rates are reported apart. The
family-wise level is chosen on the same seasons by how soon each level's design detects known
shifts injected into them (`choose_level`, on `replay_inject.inject_season`'s rows); only then
is the chosen design shown on the event (`held_out`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.config import MonitorReplayParams
from soccerpredict.drift import drift_columns
from soccerpredict.replay import ALERTS, RECORDED, STAND_IN, Design

FLOOR_GRID = [round(0.01 * k, 2) for k in range(51)]  # 0.00 .. 0.50


def _rate(fired: pd.Series) -> float | None:
    return round(float(fired.mean()), 4) if len(fired) else None


def _first_week(rows: pd.DataFrame, column: str) -> int | None:
    weeks = rows.loc[rows[column].astype(bool), "week"]
    return int(weeks.min()) if len(weeks) else None


def detector_rates(
    rows: pd.DataFrame, column: str, margin: float, replay: MonitorReplayParams
) -> dict[str, Any]:
    scored = rows[rows["scored"]]
    degraded = scored["rps_change"] > replay.degraded_rps
    event = scored["season"] == replay.event_season
    behind = scored["excess_rps"] > margin
    fired = scored[column].astype(bool)
    ordinary = ~degraded & ~event
    earlier = scored["season"] < replay.event_season
    return {
        "fired": _rate(fired),
        "false_alarms": _rate(fired[ordinary]),
        "false_alarms_before_event": _rate(fired[ordinary & earlier]),
        "false_alarms_after_event": _rate(fired[ordinary & ~earlier]),
        "detection": _rate(fired[degraded]),
        "detection_behind": _rate(fired[behind]),
        "event_first_week": _first_week(scored[scored["season"] == replay.event_season], column),
    }


def alerts_at_floor(
    rows: pd.DataFrame, design: Design, floor: float, p_value: float | None = None
) -> tuple[pd.Series, pd.Series]:
    """(column alert, window alert) per row had the design's floor been `floor` (and its
    family-wise level `p_value`, if given): the same rule as drift_decision.decide, on the
    per-column statistics the rows recorded."""
    flagged = _flagged(rows, design, floor, p_value)
    n = flagged.sum(axis=1)
    return (
        pd.Series(n > 0, index=rows.index),
        pd.Series(n / flagged.shape[1] >= design.drift.drift_share, index=rows.index),
    )


def _flagged(
    rows: pd.DataFrame, design: Design, floor: float, p_value: float | None = None
) -> np.ndarray:
    """Rows x the design's columns: flagged at this floor and family-wise level."""
    columns = drift_columns(design.drift)
    level = design.drift.p_value if p_value is None else p_value
    p = rows[[f"p:{c}" for c in columns]].to_numpy(float)
    effect = rows[[f"effect:{c}" for c in columns]].to_numpy(float)
    with np.errstate(invalid="ignore"):  # NaN: an unscored window flags nothing
        return (p < level / len(columns)) & (effect >= floor)


def _ordinary_before_event(rows: pd.DataFrame, replay: MonitorReplayParams) -> pd.DataFrame:
    scored = rows[rows["scored"]]
    return scored[
        (scored["season"] < replay.event_season) & (scored["rps_change"] <= replay.degraded_rps)
    ]


def _false_alarms_by_floor(
    earlier: pd.DataFrame, design: Design, p_value: float | None = None
) -> dict[float, dict[str, float]]:
    rates = {}
    for floor in FLOOR_GRID:
        column, window = alerts_at_floor(earlier, design, floor, p_value)
        rates[floor] = {  # NaN without earlier windows: no floor is then chosen
            "column_drift": round(float(column.mean()), 4),
            "window_drift": round(float(window.mean()), 4),
        }
    return rates


def _smallest_meeting(rates: dict[float, dict[str, float]], target: float) -> float | None:
    meets = [f for f, r in rates.items() if all(v <= target for v in r.values())]
    return min(meets) if meets else None


def choose_min_effect(
    rows: pd.DataFrame, design: Design, replay: MonitorReplayParams
) -> dict[str, Any]:
    """The smallest floor on FLOOR_GRID whose column and window alerts both fire in at most
    `false_alarm_target` of the ordinary windows of the seasons before the event season."""
    earlier = _ordinary_before_event(rows, replay)
    rates = _false_alarms_by_floor(earlier, design)
    return {
        "rule": "smallest floor whose column and window alerts fire in at most "
        "false_alarm_target of the ordinary windows of the seasons before event_season",
        "chosen_on_seasons": sorted(earlier["season"].unique()),
        "ordinary_windows": len(earlier),
        "false_alarm_target": replay.false_alarm_target,
        "effect_size": design.drift.effect_size,
        "p_value": design.drift.p_value,
        "chosen": _smallest_meeting(rates, replay.false_alarm_target),
        "in_use": design.drift.min_effect,
        "false_alarms_by_floor": {str(f): r for f, r in rates.items()},
    }


def floors_by_p_value(
    rows: pd.DataFrame, design: Design, replay: MonitorReplayParams
) -> list[dict[str, Any]]:
    """For each family-wise level on `p_value_grid`: the floor the same rule chooses (on the
    seasons before the event only), and then, held out, how that design does on every season
    and on the event. The level is not chosen from this table: it shows what the level costs."""
    earlier = _ordinary_before_event(rows, replay)
    out = []
    for level in replay.p_value_grid:
        floor = _smallest_meeting(
            _false_alarms_by_floor(earlier, design, level), replay.false_alarm_target
        )
        entry: dict[str, Any] = {"p_value": level, "floor": floor}
        if floor is not None:
            entry |= held_out(rows, design, level, floor, replay)
        out.append(entry)
    return out


def held_out(
    rows: pd.DataFrame, design: Design, level: float, floor: float, replay: MonitorReplayParams
) -> dict[str, Any]:
    """How the drift alerts at this level and floor do on every season and on the event."""
    earlier = _ordinary_before_event(rows, replay)
    scored = rows[rows["scored"]]
    ordinary = ~(scored["rps_change"] > replay.degraded_rps) & (
        scored["season"] != replay.event_season
    )
    event = scored["season"] == replay.event_season
    out = {}
    for alert, fired in zip(
        ("column_drift", "window_drift"), alerts_at_floor(scored, design, floor, level), strict=True
    ):
        out[alert] = {
            "false_alarms_before_event": _rate(fired[earlier.index]),
            "false_alarms": _rate(fired[ordinary]),
            "false_alarms_after_event": _rate(
                fired[ordinary & (scored["season"] > replay.event_season)]
            ),
            "event_first_week": _first_week(scored[event].assign(fired=fired[event]), "fired"),
        }
    return out


_RUN = ["season", "scenario", "size", "start_week"]  # one injected shift, followed week by week


def injected_alerts(
    injected: pd.DataFrame, design: Design, level: float, floor: float
) -> tuple[pd.Series, pd.Series]:
    """(column alert on a shifted column, window alert) per injected row at this level and
    floor. Either counts only if it names a column the scenario shifted: a flag on another
    column is the season's own drift, not a detection of the shift."""
    columns = drift_columns(design.drift)
    flagged = _flagged(injected, design, floor, level)
    shifted = np.array(
        [[c in set(s.split(",")) for c in columns] for s in injected["shifted"]], dtype=bool
    ).reshape(flagged.shape)
    names_shift = (flagged & shifted).any(axis=1)
    return (
        pd.Series(names_shift, index=injected.index),
        pd.Series(
            names_shift & (flagged.sum(axis=1) / len(columns) >= design.drift.drift_share),
            index=injected.index,
        ),
    )


def weeks_to_detection(injected: pd.DataFrame, fired: pd.Series) -> pd.DataFrame:
    """Per injected run: the weeks from the shift's start to the alert's first firing (the
    shift's first week is 1; NaN: never) and the weeks the run was followed."""
    frame = injected[[*_RUN, "weeks_since_start"]].assign(fired=fired.to_numpy(bool))
    followed = frame.groupby(_RUN)["weeks_since_start"].max()
    first = frame[frame["fired"]].groupby(_RUN)["weeks_since_start"].min()
    return pd.DataFrame({"weeks": first.reindex(followed.index), "followed": followed})


def detection_summary(runs: pd.DataFrame) -> dict[str, Any]:
    """Share of runs detected and the weeks to detection; a run never detected counts as one
    week more than it was followed (so a design that misses is not scored as fast)."""
    if runs.empty:
        return {"runs": 0, "detected": None, "mean_weeks": None, "median_weeks": None}
    weeks = runs["weeks"].fillna(runs["followed"] + 1)
    return {
        "runs": len(runs),
        "detected": _rate(runs["weeks"].notna()),
        "mean_weeks": round(float(weeks.mean()), 3),
        "median_weeks": float(weeks.median()),
    }


def _by(runs: pd.DataFrame, level: str) -> dict[str, Any]:
    return {str(k): detection_summary(g) for k, g in runs.groupby(level=level)}


def choose_level(
    rows: pd.DataFrame, injected: pd.DataFrame, design: Design, replay: MonitorReplayParams
) -> dict[str, Any]:
    """The drift alert's family-wise level and floor, chosen on the seasons before the event
    only: at each level on `p_value_grid` the floor is the smallest meeting the false-alarm
    target on the unshifted ordinary windows (choose_min_effect's rule: at a given level a lower
    floor only detects more, so it is the best floor there); of those designs, the one whose
    column and window alerts detect the injected shifts soonest on average (ties: the stricter
    level). Neither the event season's rows nor anything after it is read."""
    earlier = _ordinary_before_event(rows, replay)
    shifted = injected[injected["season"] < replay.event_season]
    table = []
    for level in replay.p_value_grid:
        rates = _false_alarms_by_floor(earlier, design, level)
        floor = _smallest_meeting(rates, replay.false_alarm_target)
        entry: dict[str, Any] = {"p_value": level, "floor": floor}
        if floor is not None and not shifted.empty:
            entry["false_alarms_before_event"] = rates[floor]
            weeks = []
            for alert, fired in zip(
                ("column_drift", "window_drift"),
                injected_alerts(shifted, design, level, floor),
                strict=True,
            ):
                runs = weeks_to_detection(shifted, fired)
                entry[alert] = detection_summary(runs) | {
                    "by_size": _by(runs, "size"),
                    "by_scenario": _by(runs, "scenario"),
                    "by_start_week": _by(runs, "start_week"),
                }
                weeks.append(entry[alert]["mean_weeks"])
            entry["mean_weeks"] = round(float(np.mean(weeks)), 3)
        table.append(entry)
    scored = [e for e in table if "mean_weeks" in e]
    best = min(scored, key=lambda e: (e["mean_weeks"], e["p_value"])) if scored else None
    injection = replay.injection
    return {
        "rule": "at each level on p_value_grid the smallest floor meeting false_alarm_target on "
        "the ordinary windows before event_season; of those, the design whose column and window "
        "alerts detect the shifts injected into the seasons before event_season soonest (mean "
        "weeks, a miss counted as one week past the run's end; ties: the stricter level)",
        "chosen_on_seasons": sorted(shifted["season"].unique()),
        "ordinary_windows": len(earlier),
        "false_alarm_target": replay.false_alarm_target,
        "scenarios": injection.scenarios,
        "sizes": injection.sizes,
        "start_weeks": injection.start_weeks,
        "runs": len(shifted.groupby(_RUN)) if not shifted.empty else 0,
        "chosen": {"p_value": best["p_value"], "min_effect": best["floor"]} if best else None,
        "in_use": {"p_value": design.drift.p_value, "min_effect": design.drift.min_effect},
        "by_p_value": table,
    }


def stand_in_quality(rows: pd.DataFrame, name: str, margin: float) -> dict[str, Any]:
    """The quality rule on the stand-in: detection where it trails by more than the margin."""
    scored = rows[rows["scored"]]
    behind = scored[f"{STAND_IN}_excess_rps"] > margin
    fired = scored[f"{name}_quality_{STAND_IN}"].astype(bool)
    return {
        "forecaster": STAND_IN,
        "behind_windows": int(behind.sum()),
        "fired": _rate(fired),
        "detection_behind": _rate(fired[behind]),
        "fired_when_not_behind": _rate(fired[~behind]),
    }


def choose_rolling_matches(
    rows: pd.DataFrame, design: Design, replay: MonitorReplayParams
) -> dict[str, Any]:
    """The quality rule's window: of the grid, the one that detects the most stand-in windows
    behind by more than the margin, on the seasons before the event only, while firing in at
    most `false_alarm_target` of the windows not behind. Every season's figures beside it."""
    margin = design.monitoring.behind_margin_rps
    scored = rows[rows["scored"]]
    behind = scored[f"{STAND_IN}_excess_rps"] > margin
    earlier = scored["season"] < replay.event_season
    table, meets = {}, {}
    for n in replay.rolling_matches_grid:
        fired = scored[f"gap_{STAND_IN}_{n}"] > margin  # NaN (under 100 played): silent
        entry = {
            "detection_before_event": _rate(fired[behind & earlier]),
            "fired_when_not_behind_before_event": _rate(fired[~behind & earlier]),
            "detection": _rate(fired[behind]),
            "fired_when_not_behind": _rate(fired[~behind]),
        }
        table[str(n)] = entry
        quiet = entry["fired_when_not_behind_before_event"]
        if quiet is not None and quiet <= replay.false_alarm_target:
            meets[n] = entry["detection_before_event"] or 0.0
    return {
        "rule": "the window on rolling_matches_grid with the highest detection of stand-in "
        "windows behind by more than the margin, firing in at most false_alarm_target of "
        "the windows not behind, on the seasons before event_season",
        "forecaster": STAND_IN,
        "margin": margin,
        "chosen": max(meets, key=lambda n: (meets[n], -n)) if meets else None,
        "in_use": design.monitoring.rolling_matches,
        "by_rolling_matches": table,
    }


def summarise_replay(
    rows: pd.DataFrame,
    plan: dict[str, Design],
    replay: MonitorReplayParams,
    injected: pd.DataFrame | None = None,
) -> dict[str, Any]:
    scored = rows[rows["scored"]]
    degraded = scored["rps_change"] > replay.degraded_rps
    counts = {
        "windows": len(rows),
        "scored": len(scored),
        "degraded": int(degraded.sum()),
        "ordinary": int((~degraded & (scored["season"] != replay.event_season)).sum()),
    }
    for name, design in plan.items():
        counts[f"behind_{name}"] = int(
            (scored["excess_rps"] > design.monitoring.behind_margin_rps).sum()
        )
    report: dict[str, Any] = {
        "counts": counts,
        "definitions": {
            "degraded_rps": replay.degraded_rps,
            "event_season": replay.event_season,
            "step_days": replay.step_days,
        },
        "designs": {
            name: {
                "drift": design.drift.model_dump(mode="json"),
                "monitoring": design.monitoring.model_dump(mode="json"),
                "alerts": {
                    a: detector_rates(
                        rows, f"{name}_{a}", design.monitoring.behind_margin_rps, replay
                    )
                    for a in ALERTS
                },
            }
            for name, design in plan.items()
        },
    }
    for name, design in plan.items():
        if f"{name}_quality_{STAND_IN}" in rows:
            report["designs"][name]["alerts"]["quality"]["stand_in"] = stand_in_quality(
                rows, name, design.monitoring.behind_margin_rps
            )
    if RECORDED in plan and any(c.startswith("p:") for c in rows.columns):
        report["effect_floor"] = choose_min_effect(rows, plan[RECORDED], replay)
        report["effect_floor"]["by_p_value"] = floors_by_p_value(rows, plan[RECORDED], replay)
    if RECORDED in plan and injected is not None and any(c.startswith("p:") for c in rows.columns):
        # chosen first, on the seasons before the event; only then shown on every season
        report["injection"] = choose_level(rows, injected, plan[RECORDED], replay)
        for key in ("chosen", "in_use"):
            design = report["injection"][key]
            if design is not None:
                report["injection"][f"{key}_held_out"] = held_out(
                    rows, plan[RECORDED], design["p_value"], design["min_effect"], replay
                )
    if RECORDED in plan and any(c.startswith(f"gap_{STAND_IN}_") for c in rows.columns):
        report["quality_window"] = choose_rolling_matches(rows, plan[RECORDED], replay)
    return report
