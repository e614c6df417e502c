"""What the app keeps in Redis: cached predictions, async jobs, rate-limit windows.

Redis is shared by every replica, so a job's status survives the ingress replica that took it.
When Redis is unreachable the calls answer "unknown" (None) instead of raising: predictions are
served uncached, and after one failure Redis is left alone for `cooldown_s` so an outage costs
one short timeout, not one per request. `on_error` counts and logs each outage.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs
T = TypeVar("T")

# Finish a job only while it is still pending: a late result must not revive a timed-out job.
_FINISH = """
if redis.call('HGET', KEYS[1], 'status') == 'pending' then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'payload', ARGV[2])
  return 1
end
return 0
"""


# The version the Model deployment serves and the cached answers of that version, in one trip:
# a hit is never keyed by a version the Model has already replaced.
_LOOKUP = """
local version = redis.call('GET', KEYS[1])
if not version then return {false} end
local out = {version}
for i, h in ipairs(ARGV) do out[i + 1] = redis.call('GET', 'pred:' .. version .. ':' .. h) end
return out
"""


def features_hash(row: np.ndarray) -> str:
    """A stable hash of one feature vector (every NaN made the same NaN first)."""
    vector = np.array(row, dtype=np.float64)
    vector[np.isnan(vector)] = np.nan
    return hashlib.sha256(vector.tobytes()).hexdigest()[:32]


def _text(value: bytes | str) -> str:
    """A Redis reply as text: bytes from this client, str from one made with decode_responses."""
    return value.decode() if isinstance(value, bytes) else value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RedisState:
    def __init__(
        self,
        url: str,
        *,
        cooldown_s: float = 5.0,
        timeout_s: float = 0.25,
        on_error: Callable[[str, Exception], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis.asyncio as aioredis

        self.client = aioredis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.cooldown_s, self.on_error, self.clock = cooldown_s, on_error, clock
        self._down_until = 0.0
        self._finish = self.client.register_script(_FINISH)
        self._lookup = self.client.register_script(_LOOKUP)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    async def _call(self, what: str, make: Callable[[], Awaitable[T]]) -> T | None:
        import redis

        if not self.available:
            return None
        try:
            return await make()
        except (redis.RedisError, OSError) as err:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # redis-py turns a cancel into an error
                raise asyncio.CancelledError from err
            self._down_until = time.monotonic() + self.cooldown_s
            log.warning(
                "redis unavailable during %s (%s); skipping it for %.0f s",
                what,
                err,
                self.cooldown_s,
            )
            if self.on_error:
                self.on_error(what, err)
            return None

    # ---------------------------------------------------------------- prediction cache
    @staticmethod
    def prediction_key(model_version: str, vector_hash: str) -> str:
        return f"pred:{model_version}:{vector_hash}"  # a new version never reads an old entry

    @staticmethod
    def version_key(alias: str) -> str:
        return f"model:{alias}:version"

    async def publish_version(self, alias: str, version: str, ttl_s: int) -> None:
        """Called by every Model replica after it loads a version and again on each watch; a
        key nobody renews (the alias is no longer served) expires after `ttl_s`."""
        await self._call(
            "version publish", lambda: self.client.set(self.version_key(alias), version, ex=ttl_s)
        )

    async def lookup(
        self, alias: str, hashes: list[str]
    ) -> tuple[str | None, list[dict[str, Any] | None]]:
        """The served version and, for each feature hash, its cached answer under that version."""
        raw = await self._call(
            "cache read", lambda: self._lookup(keys=[self.version_key(alias)], args=hashes)
        )
        if not raw or raw[0] is None:
            return None, [None] * len(hashes)
        values = list(raw[1:]) + [None] * (len(hashes) - len(raw) + 1)  # Lua drops trailing nils
        return raw[0].decode(), [json.loads(v) if v else None for v in values]

    async def set_predictions(self, items: dict[str, dict[str, Any]], ttl_s: int) -> None:
        async def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, json.dumps(value), ex=ttl_s)
            await pipe.execute()

        if items:
            await self._call("cache write", write)

    # ---------------------------------------------------------------- async jobs
    async def create_job(self, job_id: str, ttl_s: int, timeout_s: float) -> bool:
        """False when the job could not be stored (Redis down): the caller must refuse it."""
        fields: dict[FieldT, EncodableT] = {  # redis-py's Mapping key is invariant
            "status": "pending",
            "submitted_at": _now(),
            "deadline": str(self.clock() + timeout_s),
        }

        async def write() -> bool:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(f"job:{job_id}", mapping=fields)
            pipe.expire(f"job:{job_id}", ttl_s)
            await pipe.execute()
            return True

        return bool(await self._call("job create", write))

    async def finish_job(self, job_id: str, status: str, payload: dict[str, Any]) -> bool:
        done = await self._call(
            "job finish",
            lambda: self._finish(keys=[f"job:{job_id}"], args=[status, json.dumps(payload)]),
        )
        return bool(done)

    async def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The job as stored, with a pending job past its deadline failed on the spot."""
        raw = await self._call("job read", lambda: self.client.hgetall(f"job:{job_id}"))
        if not raw:
            return None
        job = {_text(k): _text(v) for k, v in raw.items()}
        if job["status"] == "pending" and self.clock() > float(job["deadline"]):
            reason = "no result before the deadline: the work was lost or is stuck"
            await self.finish_job(job_id, "failed", {"reason": reason})
            job = {
                **job,
                "status": "failed",
                "payload": json.dumps({"reason": reason}),
                "timed_out": "1",
            }
        return job

    # ---------------------------------------------------------------- rate limits
    async def hits_this_minute(self, key_id: str) -> int | None:
        """Requests of this key in the current minute, this one included; None if unknown."""
        window = f"rate:{key_id}:{int(self.clock() // 60)}"

        async def count() -> int:
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(window)
            pipe.expire(window, 120)
            hits, _ = await pipe.execute()
            return int(hits)

        return await self._call("rate limit", count)

    # ---------------------------------------------------------------- streams
    async def append(self, stream: str, entries: list[dict[str, str]], max_len: int) -> bool:
        """Add entries to a capped stream in one round trip; False when Redis is down."""

        async def send() -> bool:
            pipe = self.client.pipeline(transaction=False)
            for entry in entries:
                fields: dict[FieldT, EncodableT] = dict(entry.items())
                pipe.xadd(stream, fields, maxlen=max_len, approximate=True)
            await pipe.execute()
            return True

        return bool(await self._call("stream append", send))

    async def ping(self) -> bool:
        return bool(await self._call("ping", self.client.ping))

    async def close(self) -> None:
        await self.client.aclose()
