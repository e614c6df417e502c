"""The reliability suite's smoke run: `benchmarks.reliability --quick` against the real app in a
child process, both Redis instances and loopback clients; the figures are for the README, the
test checks that every probe ran and that the targets that do not depend on speed are met."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_quick_suite_runs_every_probe_and_writes_its_report(tmp_path: Path) -> None:
    from benchmarks.reliability import main

    out = tmp_path / "reliability.json"
    main(["--quick", "--out", str(out)])
    report = json.loads(out.read_text())
    assert {"idle", "unauthenticated_flood", "metrics_flood", "big_body"} <= set(report)
    assert report["not_run"], "the probes still missing are named"
    targets = report["targets"]
    for name in (
        "33 MB body: 413, RSS within +50 MB",
        "Redis gone: 0 failed sync",
        "jobs instance killed: every accepted job readable",
        "0 lost key updates",
    ):
        assert targets[name]["met"], (name, targets[name])
    assert report["unauthenticated_flood"]["flood_statuses"].keys() <= {"401", "429"}
