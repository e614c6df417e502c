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


def test_rate_window_counts_per_key(redis_port: int) -> None:
    async def scenario() -> list[int | None]:
        state = RedisState(f"redis://127.0.0.1:{redis_port}/1")
        counts = [await state.hits_this_minute("k") for _ in range(3)]
        await state.close()
        return counts

    counts = run(scenario())
    assert counts[1] == counts[0] + 1 or counts[1] == 1  # a new minute may start in between


def test_an_outage_is_reported_then_left_alone_until_the_cooldown(tmp_path: Path) -> None:
    port = free_port()
    errors: list[str] = []

    async def scenario() -> None:
        state = RedisState(
            f"redis://127.0.0.1:{port}/0", cooldown_s=0.5, on_error=lambda op, _: errors.append(op)
        )
        assert await state.lookup("champion", ["h"]) == (None, [None])  # down: a miss, no raise
        assert not await state.create_job("j", 60, 5)
        assert errors == ["cache read"]  # the second call did not even try
        await asyncio.sleep(0.6)
        proc = start_redis(port, tmp_path)
        try:
            assert await state.ping()
            assert await state.create_job("j", 60, 5)
        finally:
            proc.terminate()
            proc.wait()
        await state.close()

    started = time.monotonic()
    run(scenario())
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("presented", [None, "", "sp_", "sp_nokey_secret", "xx_a_b"])
def test_nonsense_keys_are_refused(tmp_path: Path, presented: str | None) -> None:
    from serve_app.keys import KeyStore

    assert KeyStore(tmp_path / "keys.json").verify(presented) is None


def test_keys_are_stored_hashed_and_revocation_is_seen_by_other_readers(tmp_path: Path) -> None:
    from serve_app.keys import KeyStore

    path = tmp_path / "keys.json"
    writer, reader = KeyStore(path), KeyStore(path)  # two replicas of the app
    key_id, key = writer.create("alice")
    assert key not in path.read_text()  # only the hash is stored
    assert reader.verify(key) == key_id
    assert reader.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    writer.revoke(key_id)
    assert reader.verify(key) is None  # seen on the next request, no restart
    with pytest.raises(KeyError):
        writer.revoke("nope")
