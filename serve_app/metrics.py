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
BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128]
EXPORTED = re.compile(r"^(# (HELP|TYPE) )?ray_(soccerpredict_|serve_)")


class AppMetrics:
    """Every metric the app records; names are exported with Ray's `ray_` prefix."""

    def __init__(self) -> None:
        from ray.util.metrics import Counter, Gauge, Histogram

        self.requests = Counter("soccerpredict_http_requests", "HTTP requests by route and status",
                                tag_keys=("route", "method", "status"))
        self.latency = Histogram("soccerpredict_http_request_latency_seconds",
                                 "HTTP request latency", boundaries=LATENCY_BUCKETS_S,
                                 tag_keys=("route",))
        self.predictions = Counter("soccerpredict_predictions",
                                   "Predictions served, by mode (sync, async, batch, lookup)",
                                   tag_keys=("mode",))
        self.cache = Counter("soccerpredict_cache_requests", "Prediction cache lookups",
                             tag_keys=("result",))  # hit / miss
        self.redis_errors = Counter("soccerpredict_redis_errors",
                                    "Redis calls that failed (the app went on without Redis)",
                                    tag_keys=("operation",))
        self.async_in_flight = Gauge("soccerpredict_async_jobs_in_flight",
                                     "Async jobs accepted by this ingress replica and not finished",
                                     tag_keys=("replica",))
        self.async_finished = Counter("soccerpredict_async_jobs", "Async jobs by outcome",
                                      tag_keys=("outcome",))  # done / failed / timed_out
        self.rejected = Counter("soccerpredict_rejected_requests",
                                "Requests refused before any work", tag_keys=("reason",))
        self.inference_latency = Histogram("soccerpredict_model_inference_latency_seconds",
                                           "One vectorised model call", boundaries=LATENCY_BUCKETS_S)
        self.batch_size = Histogram("soccerpredict_model_batch_size",
                                    "Fixtures per vectorised model call", boundaries=BATCH_BUCKETS)
        self.confidence = Histogram("soccerpredict_prediction_confidence",
                                    "Probability of the most likely outcome",
                                    boundaries=CONFIDENCE_BUCKETS)
        self.model_version = Gauge("soccerpredict_model_version_info",
                                   "1 for the model version a Model replica serves",
                                   tag_keys=("version", "replica"))
        self.model_registered = Gauge("soccerpredict_model_registered_timestamp_seconds",
                                      "When the served model version was registered",
                                      tag_keys=("replica",))
        self.model_reloads = Counter("soccerpredict_model_reloads",
                                     "Model swaps and refusals by outcome",
                                     tag_keys=("outcome",))  # loaded / refused


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
