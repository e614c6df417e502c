"""What the app keeps in Redis: cached predictions, async jobs, rate-limit windows.

Two instances: the cache (`cache_url`: bounded memory, LRU, may lose anything) holds the cached
predictions and the served version; the state instance (`url`: AOF, never evicts) holds jobs,
rate-limit windows and the prediction log. Both are shared by every replica, so a job's status
survives the ingress replica that took it.

When an instance is unreachable the calls answer "unknown" (None) instead of raising:
predictions are served uncached. Each instance has a circuit breaker: after
`failures_to_open` failures in a row it is left alone for `retry_after_s`, then calls try again
and the first success closes it. A connection error also drops the pool's idle connections, so
a restarted Redis is not met by one stale connection after another; each call has one immediate
retry on a fresh connection. `on_error` counts and logs each failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
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


# Sliding window: the costs spent in the last ARGV[2] seconds, as members "<id>:<cost>" of a sorted
# set scored by time (KEYS[1]), and their sum (KEYS[2]), so an admitted call costs the entries
# that expired, not the whole window. Refused: nothing is added, and the answer says when the
# cost would fit (the oldest entries walked until enough is freed). Lua numbers reach the client
# as integers, so the wait is sent back as text.
_TAKE = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local ttl = math.ceil(window) + 1
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #expired > 0 then
  for _, m in ipairs(expired) do used = used - tonumber(string.match(m, ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
end
if used < 0 or redis.call('ZCARD', KEYS[1]) == 0 then used = 0 end
if used + cost > limit then
  redis.call('SET', KEYS[2], used, 'EX', ttl)
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
    if used + cost - freed <= limit then return {0, tostring(entries[i + 1] + window - now)} end
  end
  return {0, tostring(window)}
end
redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. cost)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], used + cost, 'EX', ttl)
return {1, '0'}
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


class Breaker:
    """Open after `failures_to_open` failures in a row; `retry_after_s` later calls try again,
    and the first success closes it."""

    def __init__(self, failures_to_open: int, retry_after_s: float) -> None:
        self.failures_to_open, self.retry_after_s = failures_to_open, retry_after_s
        self.failures, self.open_until = 0, 0.0

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self.open_until

    def failed(self) -> bool:
        """Count a failure; True when it opened the breaker."""
        self.failures += 1
        if self.failures >= self.failures_to_open:
            self.open_until = time.monotonic() + self.retry_after_s
            return True
        return False

    def succeeded(self) -> None:
        self.failures, self.open_until = 0, 0.0


def _client(url: str, timeout_s: float) -> Any:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # one immediate retry on a new connection (a stale pooled one after a restart), never the
    # client's default of ten with backoff: the breaker decides when to try again
    return aioredis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
    )


class RedisState:
    def __init__(
        self,
        url: str,
        *,
        cache_url: str | None = None,
        timeout_s: float = 2.0,
        failures_to_open: int = 3,
        retry_after_s: float = 1.0,
        write_retries: int = 5,
        on_error: Callable[[str, Exception], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = _client(url, timeout_s)  # jobs, rate limits, the prediction log
        self.cache_client = _client(cache_url, timeout_s) if cache_url else self.client
        self.on_error, self.clock, self.write_retries = on_error, clock, write_retries
        self._breakers = {
            id(c): Breaker(failures_to_open, retry_after_s)
            for c in (self.client, self.cache_client)
        }
        self._finish = self.client.register_script(_FINISH)
        self._take = self.client.register_script(_TAKE)
        self._lookup = self.cache_client.register_script(_LOOKUP)

    @classmethod
    def from_conf(
        cls,
        serving: Any,
        on_error: Callable[[str, Exception], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> RedisState:
        """Both instances with the timeouts, breaker and retries of `ServingConf`."""
        return cls(
            serving.redis_url,
            cache_url=serving.cache_redis_url,
            timeout_s=serving.redis_timeout_s,
            failures_to_open=serving.redis_failures_to_open,
            retry_after_s=serving.redis_retry_after_s,
            write_retries=serving.job_write_retries,
            on_error=on_error,
            clock=clock,
        )

    @property
    def available(self) -> bool:
        """The state instance (jobs, limits) is not being skipped."""
        return self._breakers[id(self.client)].closed

    async def _call(
        self, what: str, make: Callable[[], Awaitable[T]], client: Any = None, force: bool = False
    ) -> T | None:
        """`make()`, or None when it failed or the breaker of `client` (the state instance by
        default) is open; `force` tries even then (probes, and writes that must not be lost)."""
        import redis

        client = client or self.client
        breaker = self._breakers[id(client)]
        if not (force or breaker.closed):
            return None
        try:
            result = await make()
        except (redis.RedisError, OSError) as err:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # redis-py turns a cancel into an error
                raise asyncio.CancelledError from err
            if isinstance(err, redis.ConnectionError | ConnectionError):
                await client.connection_pool.disconnect(inuse_connections=False)
            opened = breaker.failed()
            log.warning(
                "redis failed during %s (%s)%s",
                what,
                err,
                f"; skipping it for {breaker.retry_after_s:.1f} s" if opened else "",
            )
            if self.on_error:
                self.on_error(what, err)
            return None
        breaker.succeeded()
        return result

    async def _write(self, what: str, make: Callable[[], Awaitable[T]]) -> T | None:
        """A write that must not be dropped while Redis is up: tried `write_retries` more times
        with jittered backoff (0.05 s doubling), whatever the breaker says."""
        for attempt in range(self.write_retries + 1):
            result = await self._call(what, make, force=True)
            if result is not None:
                return result
            if attempt < self.write_retries:
                await asyncio.sleep(0.05 * 2**attempt * (0.5 + random.random()))
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
            "version publish",
            lambda: self.cache_client.set(self.version_key(alias), version, ex=ttl_s),
            self.cache_client,
        )

    async def lookup(
        self, alias: str, hashes: list[str]
    ) -> tuple[str | None, list[dict[str, Any] | None]]:
        """The served version and, for each feature hash, its cached answer under that version."""
        raw = await self._call(
            "cache read",
            lambda: self._lookup(keys=[self.version_key(alias)], args=hashes),
            self.cache_client,
        )
        if not raw or raw[0] is None:
            return None, [None] * len(hashes)
        values = list(raw[1:]) + [None] * (len(hashes) - len(raw) + 1)  # Lua drops trailing nils
        return raw[0].decode(), [json.loads(v) if v else None for v in values]

    async def set_predictions(self, items: dict[str, dict[str, Any]], ttl_s: int) -> None:
        async def write() -> None:
            pipe = self.cache_client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, json.dumps(value), ex=ttl_s)
            await pipe.execute()

        if items:
            await self._call("cache write", write, self.cache_client)

    # ---------------------------------------------------------------- async jobs
    async def create_job(self, job_id: str, ttl_s: int, timeout_s: float, owner: str = "") -> bool:
        """False when the job could not be stored (Redis down): the caller must refuse it.
        `owner`: the key id that submitted it, the only one that may read it."""
        fields: dict[FieldT, EncodableT] = {  # redis-py's Mapping key is invariant
            "status": "pending",
            "submitted_at": _now(),
            "deadline": str(self.clock() + timeout_s),
            "owner": owner,
        }

        async def write() -> bool:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(f"job:{job_id}", mapping=fields)
            pipe.expire(f"job:{job_id}", ttl_s)
            await pipe.execute()
            return True

        return bool(await self._call("job create", write))

    async def finish_job(self, job_id: str, status: str, payload: dict[str, Any]) -> bool | None:
        """True: finished now; False: it was no longer pending; None: Redis did not take it
        after every retry."""
        done = await self._write(
            "job finish",
            lambda: self._finish(keys=[f"job:{job_id}"], args=[status, json.dumps(payload)]),
        )
        return None if done is None else bool(done)

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
    async def take(self, key_id: str, cost: int, limit: int, window_s: float) -> float | None:
        """Spend `cost` in the key's sliding window shared by every replica: 0.0 if it fits,
        else the seconds until it would; None if unknown (Redis down)."""
        now = self.clock()
        member = f"{now:.6f}-{random.getrandbits(32):08x}"
        raw = await self._call(
            "rate limit",
            lambda: self._take(
                keys=[f"rate:{key_id}", f"rate:{key_id}:sum"],
                args=[repr(now), window_s, limit, cost, member],
            ),
        )
        if raw is None:
            return None
        return 0.0 if int(raw[0]) == 1 else float(raw[1])

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
        """Both instances answer; tried whatever the breakers say (a success closes them)."""
        state = await self._call("ping", self.client.ping, force=True)
        cache = await self._call("ping", self.cache_client.ping, self.cache_client, force=True)
        return bool(state and cache)

    async def close(self) -> None:
        await self.client.aclose()
        if self.cache_client is not self.client:
            await self.cache_client.aclose()
