"""The app's Redis state against a real redis-server: cache, versions, jobs, limits, outages."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from serve_app.local import free_port, start_redis
from serve_app.redis_state import RedisState, features_hash


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_nan_vectors_hash_alike() -> None:
    a = np.array([1.0, np.nan, 3.0])
    b = np.array([1.0, -np.nan, 3.0]) * np.array([1.0, 1.0, 1.0])
    assert features_hash(a) == features_hash(b)
    assert features_hash(a) != features_hash(np.array([1.0, np.nan, 3.5]))


def test_lookup_reads_only_the_published_version(redis_port: int) -> None:
    async def scenario() -> None:
        state = RedisState(f"redis://127.0.0.1:{redis_port}/1")
        await state.client.flushdb()
        assert await state.lookup("champion", ["h1"]) == (None, [None])  # nothing published
        await state.publish_version("champion", "1", ttl_s=60)
        await state.set_predictions({RedisState.prediction_key("1", "h1"): {"p": 1}}, 60)
        assert await state.lookup("champion", ["h1", "h2"]) == ("1", [{"p": 1}, None])
        await state.publish_version("champion", "2", ttl_s=60)  # moved: old entries unseen
        assert await state.lookup("champion", ["h1", "h2"]) == ("2", [None, None])
        await state.close()

    run(scenario())


def test_a_timed_out_job_fails_and_a_late_result_does_not_revive_it(redis_port: int) -> None:
    async def scenario() -> None:
        state = RedisState(f"redis://127.0.0.1:{redis_port}/1")
        assert await state.create_job("j1", ttl_s=60, timeout_s=0.2)
        assert (await state.get_job("j1"))["status"] == "pending"
        await asyncio.sleep(0.3)
        job = await state.get_job("j1")
        assert job["status"] == "failed" and "lost" in job["payload"]
        assert not await state.finish_job("j1", "done", {"x": 1})  # too late
        assert (await state.get_job("j1"))["status"] == "failed"
        assert await state.create_job("j2", ttl_s=60, timeout_s=30)
        assert await state.finish_job("j2", "done", {"x": 1})
        assert (await state.get_job("j2"))["status"] == "done"
        assert 0 < await state.client.ttl("job:j2") <= 60  # results expire
        await state.close()

    run(scenario())


def test_the_window_slides_and_counts_costs(redis_port: int) -> None:
    """A fixed minute let twice the limit through at its boundary and counted a batch as one."""
    now = [1_700_000_039.0]  # 1 s before a minute ends

    async def scenario() -> None:
        state = RedisState(f"redis://127.0.0.1:{redis_port}/1", clock=lambda: now[0])
        await state.client.delete("rate:k", "rate:k:sum", "rate:other", "rate:other:sum")
        assert await state.take("k", 3, limit=5, window_s=60) == 0.0  # a batch of 3
        now[0] += 0.5
        assert await state.take("k", 2, limit=5, window_s=60) == 0.0
        now[0] += 1.5  # a new minute: a fixed window would start again from zero
        assert await state.take("k", 1, limit=5, window_s=60) == pytest.approx(58.0)
        assert await state.take("other", 5, limit=5, window_s=60) == 0.0  # per key
        now[0] += 58.2  # the batch of 3 has left the window, the 2 have not
        assert await state.take("k", 3, limit=5, window_s=60) == 0.0
        assert await state.take("k", 1, limit=5, window_s=60) > 0  # the 2 are still in it
        await state.close()

    run(scenario())


def test_an_outage_opens_the_breaker_and_the_first_success_closes_it(tmp_path: Path) -> None:
    port = free_port()
    errors: list[str] = []

    async def scenario() -> None:
        state = RedisState(
            f"redis://127.0.0.1:{port}/0",
            failures_to_open=2,
            retry_after_s=0.5,
            on_error=lambda op, _: errors.append(op),
        )
        assert await state.lookup("champion", ["h"]) == (None, [None])  # down: a miss, no raise
        assert state.available  # one failure is not an outage
        assert not await state.create_job("j", 60, 5)
        assert not state.available
        assert not await state.create_job("j", 60, 5)  # open: not even tried
        assert errors == ["cache read", "job create"]
        proc = start_redis(port, tmp_path)
        try:
            await asyncio.sleep(0.6)
            assert await state.create_job("j", 60, 5)  # the first call after the wait closes it
            assert state.available and errors == ["cache read", "job create"]
        finally:
            proc.terminate()
            proc.wait()
        await state.close()

    started = time.monotonic()
    run(scenario())
    assert time.monotonic() - started < 10


def test_a_restarted_redis_is_not_met_with_stale_connections(tmp_path: Path) -> None:
    """Every pooled connection failed once after a restart, each failure a new outage."""
    port = free_port()
    errors: list[str] = []

    async def scenario() -> None:
        state = RedisState(f"redis://127.0.0.1:{port}/0", on_error=lambda op, _: errors.append(op))
        proc = start_redis(port, tmp_path)
        await asyncio.gather(*[state.ping() for _ in range(8)])  # eight pooled connections
        proc.kill()
        proc.wait()
        proc = start_redis(port, tmp_path)
        try:
            assert all(await asyncio.gather(*[state.ping() for _ in range(8)]))
            assert errors == [] and state.available
        finally:
            proc.terminate()
            proc.wait()
        await state.close()

    run(scenario())


def test_a_result_is_written_once_redis_is_back_and_accepted_jobs_survive_a_kill(
    tmp_path: Path,
) -> None:
    """The state instance writes an append-only file: SIGKILL loses no accepted job (after the
    one-second fsync), and a result finished during a short outage is retried until it lands."""
    port = free_port()

    async def scenario() -> None:
        state = RedisState(f"redis://127.0.0.1:{port}/0", write_retries=6)
        proc = start_redis(port, tmp_path, "state")
        assert await state.create_job("j", ttl_s=60, timeout_s=30, owner="k")
        await asyncio.sleep(1.2)  # appendfsync everysec
        proc.kill()
        proc.wait()
        finishing = asyncio.create_task(state.finish_job("j", "done", {"x": 1}))
        await asyncio.sleep(0.5)
        proc = start_redis(port, tmp_path, "state")
        try:
            assert await finishing is True
            job = await state.get_job("j")
            assert job is not None and (job["status"], job["owner"]) == ("done", "k")
        finally:
            proc.terminate()
            proc.wait()
        await state.close()

    run(scenario())
