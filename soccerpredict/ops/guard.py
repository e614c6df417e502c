"""One run of a stage at a time, and not again too soon: the RayCronJob has no
concurrencyPolicy and replays every tick missed while the operator was down (v1.7.0
raycronjob_controller.go), so each run asks this guard first.

State lives in Redis (the state instance, AOF-persisted): `run:<stage>:lock` holds the running
run's id and expires after `hold_s` (the entrypoint deadline plus its grace), so a run killed
with its pod cannot block the next one for ever; `run:<stage>:started` is the last start (Unix
seconds). Both are read and written in one Lua call, so two runs starting together cannot
both pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder then return {'running', holder} end
local last = redis.call('GET', KEYS[2])
if last and tonumber(ARGV[4]) - tonumber(last) < tonumber(ARGV[3]) then
  return {'recent', last}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[4])
return {'ok', ''}
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str


@dataclass(frozen=True)
class RunGuard:
    redis: Any  # redis.Redis (decode_responses=True)
    stage: str
    hold_s: int
    min_interval_s: int

    def keys(self) -> list[str]:
        return [f"run:{self.stage}:lock", f"run:{self.stage}:started"]

    def acquire(self, run_id: str, now: float) -> Decision:
        state, detail = self.redis.eval(
            ACQUIRE, 2, *self.keys(), run_id, self.hold_s, self.min_interval_s, int(now)
        )
        if state == "running":
            return Decision(False, f"{self.stage}: run {detail} is still running")
        if state == "recent":
            ago = int(now) - int(detail)
            return Decision(
                False, f"{self.stage}: last run started {ago} s ago (< {self.min_interval_s} s)"
            )
        return Decision(True, f"{self.stage}: run {run_id} starts")

    def release(self, run_id: str) -> bool:
        """Frees the lock if this run still holds it (not after it expired and another took it)."""
        return bool(self.redis.eval(RELEASE, 1, self.keys()[0], run_id))
