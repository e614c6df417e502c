"""The API key store: no lost update under concurrent writers, and a corrupt file loses nothing."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from serve_app.keys import KeyFileCorrupt, KeyStore

WRITER = """
import sys
from serve_app.keys import KeyStore
store = KeyStore(__import__("pathlib").Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    store.create(f"proc-{i}")
"""


def test_parallel_creates_in_one_process_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    stores = [KeyStore(path), KeyStore(path)]  # two stores, as two replicas' threads would hold
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda i: stores[i % 2].create(f"k{i}"), range(400)))
    records = KeyStore(path).records()
    assert len(records) == 400 and {key_id for key_id, _ in made} == set(records)
    assert all(KeyStore(path).verify(key) == key_id for key_id, key in made[:20])


def test_parallel_creates_across_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), "100"]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert len(KeyStore(path).records()) == 300


def test_a_corrupt_file_keeps_the_last_good_keys_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    key_id, key = store.create("alice")
    assert store.verify(key) == key_id
    good = path.read_text()
    path.write_text(good[: len(good) // 2])  # a half-written file from some other tool
    assert store.verify(key) == key_id  # the replica keeps answering with what it knew
    with pytest.raises(KeyFileCorrupt, match="not valid JSON"):
        store.create("bob")
    assert path.read_text() == good[: len(good) // 2]  # refused, not replaced: nothing lost
    assert KeyStore(path).records() == {}  # a fresh reader has nothing good to fall back on
