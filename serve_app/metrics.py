"""Application metrics through `ray.util.metrics`, so every replica on every node is exported by
its node's Ray metrics agent (as `ray_soccerpredict_*`), not by one process's registry.

Objects are created when a deployment starts (`AppMetrics()`), never at import. `GET /metrics`
on the app gathers the `soccerpredict` and `serve` families from every node's agent.
"""

from __future__ import annotations

import re
from typing import Any

LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
CONFIDENCE_BUCKETS = [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
BATCH_BUCKETS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]
EXPORTED = re.compile(r"^(# (HELP|TYPE) )?ray_(soccerpredict_|serve_)")


class HeldGauge:
    """A gauge that remembers what it was set to, so it can be set again.

    Ray 2.60's metrics agent stops exporting a gauge about 20 s after its last `set` (measured:
    set once, gone from the agent's /metrics within 30 s). A version loaded once, or a drift
    report published once, would vanish from Prometheus; `AppMetrics.republish` sets them again.
    """

    def __init__(self, gauge: Any) -> None:
        self.gauge = gauge
        self.values: dict[tuple[tuple[str, str], ...], float] = {}

    def set(self, value: float, tags: dict[str, str] | None = None) -> None:
        self.values[tuple(sorted((tags or {}).items()))] = value
        self.gauge.set(value, tags=tags)

    def forget(self) -> None:
        """Stop re-setting the values held so far (e.g. columns of a replaced report)."""
        self.values.clear()

    def republish(self) -> None:
        for tags, value in self.values.items():
            self.gauge.set(value, tags=dict(tags) or None)


class AppMetrics:
    """Every metric the app records; names are exported with Ray's `ray_` prefix."""

    def __init__(self) -> None:
        from ray.util.metrics import Counter, Histogram
        from ray.util.metrics import Gauge as RayGauge

        self.held: list[HeldGauge] = []

        def Gauge(*args: Any, **kwargs: Any) -> HeldGauge:  # reads like the other two
            held = HeldGauge(RayGauge(*args, **kwargs))
            self.held.append(held)
            return held

        self.requests = Counter(
            "soccerpredict_http_requests",
            "HTTP requests by route and status",
            tag_keys=("route", "method", "status"),
        )
        self.latency = Histogram(
            "soccerpredict_http_request_latency_seconds",
            "HTTP request latency",
            boundaries=LATENCY_BUCKETS_S,
            tag_keys=("route",),
        )
        self.predictions = Counter(
            "soccerpredict_predictions",
            "Predictions served, by mode (sync, async, batch, lookup)",
            tag_keys=("mode",),
        )
        self.cache = Counter(
            "soccerpredict_cache_requests", "Prediction cache lookups", tag_keys=("result",)
        )  # hit / miss
        self.redis_errors = Counter(
            "soccerpredict_redis_errors",
            "Redis calls that failed (the app went on without Redis)",
            tag_keys=("operation",),
        )
        self.async_in_flight = Gauge(
            "soccerpredict_async_jobs_in_flight",
            "Async jobs accepted by this ingress replica and not finished",
            tag_keys=("replica",),
        )
        self.async_finished = Counter(
            "soccerpredict_async_jobs", "Async jobs by outcome", tag_keys=("outcome",)
        )  # done / failed / timed_out
        self.rejected = Counter(
            "soccerpredict_rejected_requests",
            "Requests refused before any work",
            tag_keys=("reason",),
        )
        self.inference_latency = Histogram(
            "soccerpredict_model_inference_latency_seconds",
            "One vectorised model call",
            boundaries=LATENCY_BUCKETS_S,
        )
        self.batch_size = Histogram(
            "soccerpredict_model_batch_size",
            "Fixtures per vectorised model call",
            boundaries=BATCH_BUCKETS,
        )
        self.confidence = Histogram(
            "soccerpredict_prediction_confidence",
            "Probability of the most likely outcome",
            boundaries=CONFIDENCE_BUCKETS,
        )
        # 1 from each live replica, set again every 5 s: a dead replica's series leaves the export
        # ~20 s later, so `sum by (deployment)` counts live replicas (SoccerPredictNoReplica)
        self.replica_up = Gauge(
            "soccerpredict_replica_up",
            "1 per live replica of a deployment",
            tag_keys=("deployment", "replica"),
        )
        self.model_version = Gauge(
            "soccerpredict_model_version_info",
            "1 for the model version a Model replica serves",
            tag_keys=("version", "replica"),
        )
        self.model_registered = Gauge(
            "soccerpredict_model_registered_timestamp_seconds",
            "When the served model version was registered",
            tag_keys=("replica",),
        )
        self.model_reloads = Counter(
            "soccerpredict_model_reloads",
            "Model swaps and refusals by outcome",
            tag_keys=("outcome",),
        )  # loaded / refused
        # the monitoring reports (ray_jobs.drift, ray_jobs.quality), published by the Ingress
        self.drift_share = Gauge(
            "soccerpredict_drift_share", "Share of drifted columns in the last drift report"
        )
        self.drift_detected = Gauge(
            "soccerpredict_drift_detected", "1 when the last drift report called the window drifted"
        )
        self.feature_drift_p_value = Gauge(
            "soccerpredict_feature_drift_p_value",
            "A column's two-sample test p-value in the last drift report (low: drifted)",
            tag_keys=("column",),
        )
        self.feature_drifted = Gauge(
            "soccerpredict_feature_drifted",
            "1 when the column was flagged in the last drift report",
            tag_keys=("column",),
        )
        self.drift_report_timestamp = Gauge(
            "soccerpredict_drift_report_timestamp_seconds", "When the last drift report was made"
        )
        self.quality_rps = Gauge(
            "soccerpredict_quality_rps",
            "RPS of served predictions once results are known",
            tag_keys=("forecaster", "league", "window"),
        )
        self.quality_log_loss = Gauge(
            "soccerpredict_quality_log_loss",
            "Log-loss of served predictions once results are known",
            tag_keys=("forecaster", "league", "window"),
        )
        self.quality_matches = Gauge(
            "soccerpredict_quality_matches",
            "Matches scored in the quality report",
            tag_keys=("league", "window"),
        )
        self.quality_margin_rps = Gauge(
            "soccerpredict_quality_margin_rps", "RPS by which the model may trail the closing line"
        )
        self.quality_report_timestamp = Gauge(
            "soccerpredict_quality_report_timestamp_seconds",
            "When the last quality report was made",
        )

    def republish(self) -> None:
        """Every gauge's last values again (call it every few seconds: see HeldGauge)."""
        for gauge in self.held:
            gauge.republish()


def merge_exposition(texts: list[str]) -> str:
    """Prometheus text of several nodes as one: each family's HELP/TYPE once, then its samples.

    Only the app's (`ray_soccerpredict_*`) and Serve's (`ray_serve_*`) families are kept.
    """
    families: dict[str, dict[str, Any]] = {}
    for text in texts:
        family = None
        for line in text.splitlines():
            if not EXPORTED.match(line):
                continue
            if line.startswith("# "):
                family = line.split()[2]
                entry = families.setdefault(family, {"meta": {}, "samples": []})
                entry["meta"].setdefault(line.split()[1], line)
            else:
                name = line.split("{", 1)[0].split(" ", 1)[0]
                key = family if family and name.startswith(family) else name
                families.setdefault(key, {"meta": {}, "samples": []})["samples"].append(line)
    lines: list[str] = []
    for entry in families.values():
        lines += [entry["meta"][k] for k in ("HELP", "TYPE") if k in entry["meta"]]
        lines += entry["samples"]
    return "\n".join(lines) + "\n"
