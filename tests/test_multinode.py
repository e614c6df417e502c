"""Beyond one node, for real: a Ray cluster of two nodes on this machine (loopback) runs the
project's Tune trials and a Serve deployment with conf/serve.yaml's placement on both nodes,
and a custom resource decides where a task goes (tests/multinode.py, in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("multinode") / "result.json"
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    }  # Serve as it runs in production
    env.pop("RAY_ADDRESS", None)  # a cluster of its own, never one found on the machine
    proc = subprocess.run(
        [sys.executable, "-m", "tests.multinode", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_two_nodes_both_on_loopback(run: dict) -> None:
    assert len(run["nodes"]) == 2
    assert set(run["nodes"].values()) == {"127.0.0.1"}
    assert {run["head"], run["worker"]} == set(run["nodes"])


def test_tune_trials_ran_on_both_nodes(run: dict) -> None:
    assert run["tune"]["trials"] == 4 and run["tune"]["errors"] == 0
    assert set(run["tune"]["nodes"]) == set(run["nodes"])


def test_serve_replicas_placed_by_the_serve_resource_answer_from_both_nodes(run: dict) -> None:
    assert run["serve"]["actor_options"]["num_cpus"] == 0
    assert run["serve"]["actor_options"]["resources"] == {"serve": 0.5}
    assert set(run["serve"]["nodes"]) == set(run["nodes"])
    assert run["serve"]["probs_sum"] == [1.0]


def test_a_custom_resource_decides_the_node(run: dict) -> None:
    assert run["batch_task_node"] == run["worker"]
