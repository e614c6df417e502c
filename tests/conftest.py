"""Shared fixtures: the football-data folder (real when DATA_DIR names it, generated otherwise)
and one Ray instance on loopback for the whole test run."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_app.local import free_port_range, redis_server, serve_environment
from soccerpredict.config import PROJECT_ROOT as ROOT
from soccerpredict.config import load_config
from tests.served_app import app, key  # noqa: F401 - fixtures for the Serve-based modules
from tests.synthetic import write_synthetic_football_data


def pytest_configure(config: pytest.Config) -> None:
    """A run started in the background of a non-interactive shell has SIGINT ignored, and every
    child inherits that: `serve run` and the Tune driver, which the tests stop with SIGINT, would
    never hear it. A Python handler here is reset to the default in each child at exec."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def shared_data_dir() -> Path | None:
    value = os.environ.get("DATA_DIR")
    return Path(value) if value and Path(value, "E0").is_dir() else None


@pytest.fixture(scope="session")
def football_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real shared data when available, else small generated files of the same layout."""
    return shared_data_dir() or write_synthetic_football_data(
        tmp_path_factory.mktemp("football-data")
    )


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_football_data(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(autouse=True)
def _mlflow_uri_stays_in_its_test() -> Iterator[None]:
    """`mlflow.set_tracking_uri` also writes MLFLOW_TRACKING_URI into os.environ. Left there, one
    test's registry becomes every later child's: Ray's workers inherit it, and a Serve app
    started afterwards served the checkout's champion instead of its own project's."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One Ray for the whole run: num_cpus=2 on 127.0.0.1, shut down at the end."""
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Serve's production settings (conf/serve.env); workers inherit them from here. The
    # direct-ingress ports are a free range of this run's own: on a shared machine another
    # run's replica in conf/serve.env's range would be a server of this run's front.
    ports = free_port_range(16)
    os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] = str(ports.start)
    os.environ["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"] = str(ports.stop)
    for name, value in serve_environment().items():
        os.environ.setdefault(name, value)
    # every test names its own registry; one from the shell must not reach the workers
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    # "local": always a new instance of our own, never one left running on the machine
    # (ray.init() with no address would join the latest cluster in /tmp/ray and refuse num_cpus)
    # the custom resources conf/runtime.yaml gives a local Ray: Serve replicas need `serve`
    resources = load_config(ROOT / "params.yaml", ROOT / "conf/runtime.yaml").runtime.ray.resources
    context = ray.init(address="local", num_cpus=2, resources=resources, include_dashboard=False)
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server on a free loopback port for the whole run: the state instance (AOF,
    noeviction) that holds jobs, rate limits and the prediction log."""
    with redis_server(tmp_path_factory.mktemp("redis"), "state") as (port, _):
        yield port


@pytest.fixture(scope="session")
def cache_redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The cache instance beside it (maxmemory, allkeys-lru)."""
    with redis_server(tmp_path_factory.mktemp("redis-cache"), "cache") as (port, _):
        yield port
