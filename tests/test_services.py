"""Serving components without Serve: snapshots reload when republished; bad publishes are kept out."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path

import pytest

from serve_app.metrics import merge_exposition
from serve_app.services import FeatureService, FileBacked
from soccerpredict.config import FeatureParams
from soccerpredict.features.build import FEATURE_COLUMNS
from soccerpredict.features.online import Fixture, snapshot
from soccerpredict.features.state import LeagueState
from soccerpredict.io import write_json

ELO_HOME = FEATURE_COLUMNS.index("elo_home")


def _publish(path: Path, elo_home: float) -> str:
    state = LeagueState(FeatureParams())
    state.start_season("2021-2022", {"A", "B"})
    state.elo = {"A": elo_home, "B": 1500.0}
    document = snapshot({"L1": state}, FeatureParams(), date(2022, 4, 30))
    write_json(document, path)
    os.utime(path, ns=(time.time_ns(), time.time_ns()))  # a new mtime even within one tick
    return str(document["version"])


def test_a_republished_team_state_is_picked_up_and_a_broken_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "team_state.json"
    first = _publish(path, 1600.0)
    service = FeatureService(path, interval_s=0.0, max_horizon_days=400)
    fixture = Fixture("L1", "A", "B", date(2022, 5, 7))
    table, version = service.vectors([fixture])
    assert version == first and table[0, ELO_HOME] == 1600.0
    second = _publish(path, 1650.0)
    table, version = service.vectors([fixture])
    assert version == second != first and table[0, ELO_HOME] == 1650.0
    path.write_text("{not json")  # a half-written or corrupt publish
    table, version = service.vectors([fixture])
    assert (
        version == second and service.state.error and "could not be loaded" in service.state.error
    )


def test_a_missing_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    service = FeatureService(tmp_path / "nothing.json", interval_s=0.0, max_horizon_days=400)
    with pytest.raises(RuntimeError, match="does not exist"):
        service.current()


def test_file_backed_values_are_looked_at_no_more_than_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(json.dumps(1))
    value = FileBacked(path, lambda p: json.loads(p.read_text()), interval_s=60.0)
    assert value.get() == 1
    path.write_text(json.dumps(22))
    assert value.get() == 1  # not looked at again within the interval


def test_metrics_of_several_nodes_merge_into_valid_exposition() -> None:
    node = (
        "# HELP ray_soccerpredict_predictions_total Predictions\n"
        "# TYPE ray_soccerpredict_predictions_total counter\n"
        'ray_soccerpredict_predictions_total{{mode="sync",NodeAddress="{ip}"}} 3.0\n'
        "# HELP ray_other_metric x\n# TYPE ray_other_metric gauge\nray_other_metric 1\n"
    )
    merged = merge_exposition([node.format(ip="10.0.0.1"), node.format(ip="10.0.0.2")])
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(merged)}
    assert set(families) == {"ray_soccerpredict_predictions"}  # others left out
    assert len(families["ray_soccerpredict_predictions"].samples) == 2
    assert merged.count("# TYPE ray_soccerpredict_predictions_total") == 1


def test_held_gauges_set_their_last_values_again() -> None:
    """Ray stops exporting a gauge ~20 s after its last set: the app sets them again."""
    from serve_app.metrics import HeldGauge

    calls: list[tuple[float, dict[str, str] | None]] = []

    class Recorder:
        def set(self, value: float, tags: dict[str, str] | None = None) -> None:
            calls.append((value, tags))

    gauge = HeldGauge(Recorder())
    gauge.set(0.3, tags={"column": "result"})
    gauge.set(0.7, tags={"column": "result"})
    gauge.set(2.0)
    calls.clear()
    gauge.republish()
    assert sorted(calls, key=str) == sorted([(0.7, {"column": "result"}), (2.0, None)], key=str)
    gauge.forget()
    calls.clear()
    gauge.republish()
    assert calls == []
