"""What the Ingress does besides answering: log what it served, and publish the monitoring
reports (drift, production quality) as gauges.

Served predictions are buffered and sent to a Redis stream once a second, so logging costs the
hot path an append to a list; `ray_jobs.quality` exports the stream and scores it once results
are known. The reports are files the jobs write atomically; a report that is missing or does not
parse leaves the gauges as they were instead of publishing a misleading value.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

from serve_app.services import FileBacked
from soccerpredict.data.ids import make_match_id
from soccerpredict.features.online import Fixture
from soccerpredict.quality import CLIENT_ODDS, STREAM, log_row

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs
STREAM_MAX = 1_000_000  # approximate cap: unexported entries older than this are dropped


def log_entry(
    fixture: Fixture, probabilities: list[float], version: str, source: str, as_of: date
) -> dict[str, str]:
    """One served prediction, as the quality job reads it back (all values text, for Redis).
    A request with its own odds is marked: the quality job keeps it apart from what it scores."""
    match_id = make_match_id(fixture.league, fixture.kickoff, fixture.home_team, fixture.away_team)
    source = source + CLIENT_ODDS if fixture.odds is not None else source
    row = log_row(
        match_id,
        fixture.league,
        fixture.kickoff,
        fixture.home_team,
        fixture.away_team,
        probabilities,
        version,
        source,
        as_of,
    )
    return {key: repr(value) if isinstance(value, float) else value for key, value in row.items()}


class PredictionLog:
    def __init__(self) -> None:
        self.buffer: list[dict[str, str]] = []

    def add(self, entries: list[dict[str, str]]) -> None:
        self.buffer.extend(entries)

    async def flush(self, redis: Any) -> int:
        """Send the buffered entries in one round trip; kept for the next try if Redis is down."""
        entries, self.buffer = self.buffer, []
        if entries and not await redis.append(STREAM, entries, STREAM_MAX):
            self.buffer = entries[-10_000:] + self.buffer  # bounded: an outage must not eat memory
            return 0
        return len(entries)


def _json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


class ReportGauges:
    """The drift summary and the quality report, as gauges, whenever either file changes."""

    def __init__(self, metrics: Any, drift_summary: Path, quality: Path, interval_s: float) -> None:
        self.metrics = metrics
        self.drift = FileBacked(drift_summary, _json, interval_s)
        self.quality = FileBacked(quality, _json, interval_s)
        self._published: dict[str, int] = {}

    def refresh(self) -> None:
        for name, source, publish in (
            ("drift", self.drift, self._drift),
            ("quality", self.quality, self._quality),
        ):
            report = source.get()
            if report is not None and self._published.get(name) != id(report):
                try:
                    publish(report)
                    self._published[name] = id(report)
                except (KeyError, TypeError, ValueError) as err:  # a report of another shape
                    log.error("%s report not published: %s", name, err)

    def _drift(self, summary: dict[str, Any]) -> None:
        m = self.metrics
        m.drift_share.set(float(summary["drift_share"]))
        m.drift_detected.set(1.0 if summary["drifted"] else 0.0)
        m.drift_report_timestamp.set(_timestamp(summary, self.drift.path))
        m.feature_drift_p_value.forget()  # columns of the previous report are not re-set
        m.feature_drifted.forget()
        for column, result in summary["columns"].items():
            m.feature_drift_p_value.set(float(result["p_value"]), tags={"column": column})
            m.feature_drifted.set(1.0 if result["drifted"] else 0.0, tags={"column": column})

    def _quality(self, report: dict[str, Any]) -> None:
        m = self.metrics
        m.quality_margin_rps.set(float(report["margin_rps"]))
        m.quality_report_timestamp.set(_timestamp(report, self.quality.path))
        for window, leagues in report["windows"].items():
            for league, scores in leagues.items():
                m.quality_matches.set(
                    float(scores["matches"]), tags={"league": league, "window": window}
                )
                for forecaster, values in scores["forecasters"].items():
                    tags = {"forecaster": forecaster, "league": league, "window": window}
                    m.quality_rps.set(float(values["rps"]), tags=tags)
                    m.quality_log_loss.set(float(values["log_loss"]), tags=tags)


def _timestamp(report: dict[str, Any], path: Path) -> float:
    stamp = report.get("generated_at")
    return datetime.fromisoformat(stamp).timestamp() if stamp else path.stat().st_mtime
