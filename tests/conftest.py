"""Shared fixtures: the football-data folder (real when DATA_DIR names it, generated otherwise)
and one Ray instance on loopback for the whole test run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import redis_server
from tests.synthetic import write_synthetic_football_data


def shared_data_dir() -> Path | None:
    value = os.environ.get("DATA_DIR")
    return Path(value) if value and Path(value, "E0").is_dir() else None


@pytest.fixture(scope="session")
def football_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real shared data when available, else small generated files of the same layout."""
    return shared_data_dir() or write_synthetic_football_data(
        tmp_path_factory.mktemp("football-data"))


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_football_data(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One Ray for the whole run: num_cpus=2 on 127.0.0.1, shut down at the end."""
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Serve's production settings (see conf/serve.yaml); workers inherit them from here
    os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "2")
    context = ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server on a free loopback port for the whole run."""
    with redis_server(tmp_path_factory.mktemp("redis")) as (port, _):
        yield port
