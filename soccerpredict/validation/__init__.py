"""Great Expectations gates between pipeline stages: raw, interim and features tables."""

from soccerpredict.validation.gates import GATES, GateFailed, GateResult, run_gate

__all__ = ["GATES", "GateFailed", "GateResult", "run_gate"]
