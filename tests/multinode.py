"""A two-node Ray cluster on this machine, on loopback, running project code on both nodes
(`python -m tests.multinode OUT.json`; tests/test_multinode.py runs it in its own process,
since the test session's Ray would clash with a second cluster in the same driver).

* head: 1 CPU and 1 `serve` unit; worker: 1 CPU, 1 `serve` unit and 1 `batch` unit (a node's
  custom resources are whole numbers).
* Tune: ray_jobs.tune's search space and trial function, two trials at a time at one CPU each,
  so the two running trials cannot share a node. Each trial records the node it ran on.
* Serve: a deployment with the Model's placement from conf/serve.yaml (no CPU, half a `serve`
  unit), four replicas, so two per node, each answering with the project's de-vig.
* A task that asks for `batch` lands on the worker only: custom resources decide placement.

Writes the node ids seen by each part as JSON. Every component listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")


def features(n: int, seed: int) -> pd.DataFrame:
    """Random feature rows with a weak home-strength signal: enough for a boosting round."""
    from soccerpredict.features.build import FEATURE_COLUMNS

    rng = np.random.default_rng(seed)
    table = pd.DataFrame(rng.normal(size=(n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    p_home = 1 / (1 + np.exp(-table[FEATURE_COLUMNS[2]].to_numpy()))
    table["result"] = np.where(rng.random(n) < p_home, "H", rng.choice(["D", "A"], size=n))
    return table


def placed_trial(config: dict[str, Any], marks: str, **kwargs: Any) -> None:
    """ray_jobs.tune.trial, after noting which node runs it."""
    import ray

    from ray_jobs.tune import trial

    node = ray.get_runtime_context().get_node_id()
    Path(marks, f"{os.getpid()}-{node}").touch()
    trial(config, **kwargs)


def tune_nodes(marks: Path) -> dict[str, Any]:
    from ray import tune

    from ray_jobs.tune import tune_space
    from soccerpredict.config import ModelParams, TuneParams

    params = yaml.safe_load((ROOT / "params.yaml").read_text())["tune"]
    params.update(
        num_samples=4,
        max_concurrent_trials=2,
        early_stopping_rounds=10,
        report_every=10,
        grace_period=1,
        reuse_actors=True,
    )
    params["space"]["n_estimators"] = {"low": 20, "high": 40}
    p = TuneParams.model_validate(params)
    base = ModelParams(n_estimators=40, early_stopping_rounds=10)
    trainable = tune.with_resources(
        tune.with_parameters(
            placed_trial,
            marks=str(marks),
            train=features(600, 1),
            validation=features(300, 2),
            base=base,
            params=p,
        ),
        {"cpu": 1},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=tune_space(p.space),
        tune_config=tune.TuneConfig(
            metric=p.metric,
            mode="min",
            num_samples=p.num_samples,
            max_concurrent_trials=p.max_concurrent_trials,
            reuse_actors=p.reuse_actors,
        ),
        run_config=tune.RunConfig(storage_path=str(marks.parent / "tune"), verbose=0),
    )
    grid = tuner.fit()
    return {
        "trials": len(grid),
        "errors": grid.num_errors,
        "nodes": sorted({p.name.split("-", 1)[1] for p in marks.iterdir()}),
    }


def serve_nodes() -> dict[str, Any]:
    from ray import serve

    model = next(
        d
        for d in yaml.safe_load((ROOT / "conf/serve.yaml").read_text())["applications"][0][
            "deployments"
        ]
        if d["name"] == "Model"
    )

    @serve.deployment(num_replicas=4, ray_actor_options=model["ray_actor_options"])
    class Devig:
        def __call__(self, odds: list[float]) -> dict[str, Any]:
            import ray

            from soccerpredict.metrics.implied import devig

            probs = devig(np.asarray([odds]))[0]
            return {"node": ray.get_runtime_context().get_node_id(), "probs": probs.tolist()}

    serve.start(http_options={"host": "127.0.0.1", "port": 0}, proxy_location="Disabled")
    handle = serve.run(Devig.bind(), name="devig", route_prefix=None)

    async def ask() -> list[dict[str, Any]]:
        # inside an event loop: with RAY_SERVE_THROUGHPUT_OPTIMIZED (the tests' and production's
        # setting) a handle's router runs on the caller's loop, and shuts down on it too
        try:
            return list(
                await asyncio.wait_for(
                    asyncio.gather(*[handle.remote([2.1, 3.4, 3.6]) for _ in range(40)]), 60
                )
            )
        finally:
            await serve.shutdown_async()

    answers = asyncio.run(ask())
    return {
        "nodes": sorted({a["node"] for a in answers}),
        "probs_sum": [round(sum(a["probs"]), 9) for a in answers[:1]],
        "actor_options": model["ray_actor_options"],
    }


def main(out: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    started = time.monotonic()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"serve": 1}, "include_dashboard": False},
    )
    worker = cluster.add_node(num_cpus=1, resources={"serve": 1, "batch": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
        batch = ray.get(
            ray.remote(resources={"batch": 1}, num_cpus=0)(
                lambda: ray.get_runtime_context().get_node_id()
            ).remote()
        )
        with tempfile.TemporaryDirectory() as tmp:
            marks = Path(tmp, "marks")
            marks.mkdir()
            result = {
                "nodes": nodes,
                "head": cluster.head_node.node_id,
                "worker": worker.node_id,
                "batch_task_node": batch,
                "tune": tune_nodes(marks),
                "serve": serve_nodes(),
            }
    finally:
        ray.shutdown()
        cluster.shutdown()
    result["seconds"] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
