"""The replayed alerts measured as detectors (pure): per design and alert, how often it fired,
how often without cause, how often when the model degraded, how soon in the known event.

- degraded: the model's RPS over the window exceeds its validation RPS by more than
  `monitor_replay.degraded_rps`;
- ordinary: a scored window, not degraded, outside the event season;
- behind: the model trails the market baseline over the window by more than the quality
  alert's margin (`monitoring.behind_margin_rps`): what the quality alert is for.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from soccerpredict.config import MonitorReplayParams
from soccerpredict.replay import ALERTS, Design


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
    return {
        "fired": _rate(fired),
        "false_alarms": _rate(fired[~degraded & ~event]),
        "detection": _rate(fired[degraded]),
        "detection_behind": _rate(fired[behind]),
        "event_first_week": _first_week(scored[scored["season"] == replay.event_season], column),
    }


def summarise_replay(
    rows: pd.DataFrame, plan: dict[str, Design], replay: MonitorReplayParams
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
    return {
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
