"""Start or join the Ray cluster for a job, always on loopback when local."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from soccerpredict.config import Config

# Ray advertises the host's external interface unless told otherwise; local runs stay on 127.0.0.1.
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
}


@contextmanager
def ray_session(cfg: Config) -> Iterator[None]:
    """Join `RAY_ADDRESS` (or conf's address) if set; otherwise start a local instance.

    A driver already connected (a test's shared instance) is reused and left running.
    """
    # before `import ray`: the driver reads RAY_AUTH_MODE once, at import, while the GCS it starts
    # reads the environment later (set afterwards, the two disagree and the GCS refuses the driver)
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        yield
        return
    address = cfg.runtime.ray.address
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # "local": a new instance, never the latest cluster found in /tmp/ray (which would
        # also refuse num_cpus)
        ray.init(
            address="local",
            num_cpus=cfg.runtime.ray.num_cpus,
            resources=cfg.runtime.ray.resources,
            include_dashboard=False,
        )
    try:
        yield
    finally:
        ray.shutdown()
