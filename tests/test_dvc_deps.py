"""DVC re-runs a stage when one of its `deps` changes, so each stage must list exactly the project
files its module runs: a missing one (a change to RPS not re-running `evaluate`) is a stale result,
an extra one a needless re-run, and a whole package hides which files matter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.imports import PACKAGES, ROOT, import_closure

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_module(stage: dict[str, object]) -> str:
    cmd = str(stage["cmd"]).split()
    assert cmd[:2] == ["python", "-m"], f"a stage runs a module: {stage['cmd']}"
    return cmd[2]


def code_deps(stage: dict[str, object]) -> set[Path]:
    deps = [next(iter(d)) if isinstance(d, dict) else d for d in stage.get("deps", [])]
    return {Path(d) for d in deps if Path(d).parts[0] in PACKAGES}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_lists_the_files_its_module_imports(name: str) -> None:
    stage = STAGES[name]
    listed = code_deps(stage)
    packages = sorted(str(p) for p in listed if (ROOT / p).is_dir())
    assert not packages, f"{name}: list the files, not whole packages: {packages}"
    code = {p for p in listed if p.suffix == ".py"}  # other files (team_names.yaml) are data
    closure = import_closure(stage_module(stage))
    missing, extra = sorted(map(str, closure - code)), sorted(map(str, code - closure))
    assert not missing and not extra, f"{name}: missing {missing}, not imported {extra}"


def test_the_closure_follows_function_level_and_package_imports() -> None:
    closure = {str(p) for p in import_closure("ray_jobs.evaluate")}
    assert "soccerpredict/metrics/scoring.py" in closure  # RPS itself
    assert "ray_jobs/runtime.py" not in closure or "ray_jobs/evaluate.py" in closure
    assert not {p for p in closure if p.endswith("__init__.py")} - {
        "soccerpredict/__init__.py",
        "soccerpredict/metrics/__init__.py",
        "soccerpredict/models/__init__.py",
        "soccerpredict/validation/__init__.py",
    }


def _under(key: str, section: str) -> bool:
    return key == section or key.startswith(section + ".")


def params_mismatch(listed: list[str], read: list[str]) -> tuple[list[str], list[str]]:
    """Keys read that no listed entry covers, and listed entries nothing read falls under."""
    unlisted = [r for r in read if not any(_under(r, p) for p in listed)]
    unread = [p for p in listed if not any(_under(r, p) or _under(p, r) for r in read)]
    return unlisted, unread


def check_params_reads(reads_dir: Path) -> None:
    """Every stage's recorded reads (`ray_jobs.params_reads`) against its `params:`."""
    problems = {}
    for name, stage in STAGES.items():
        record = reads_dir / f"{stage_module(stage).rpartition('.')[2]}.json"
        assert record.exists(), f"{name} recorded no params reads"
        unlisted, unread = params_mismatch(stage.get("params", []), json.loads(record.read_text()))
        if unlisted or unread:
            problems[name] = {"read but not in params": unlisted, "in params, never read": unread}
    assert not problems, problems


def test_params_reads_are_recorded_key_by_key_and_whole_when_handed_on() -> None:
    import pickle

    from ray_jobs.params_reads import recording
    from soccerpredict.config import load_config

    cfg, reads = recording(load_config(ROOT / "params.yaml", ROOT / "conf/runtime.yaml"))
    assert isinstance(cfg.params.forecasters.ratings_only.seed, int)
    pickle.dumps(cfg.params.features)  # sent to a Ray task
    cfg.params.split.model_dump()
    dict(cfg.params.tune.space)  # iterated
    assert reads == {"forecasters.ratings_only.seed", "features", "split", "tune.space"}
    assert params_mismatch(["forecasters", "as_of", "tune"], sorted(reads)) == (
        ["features", "split"],
        ["as_of"],
    )


def test_the_domain_library_imports_neither_ray_nor_the_layers_above_it() -> None:
    """soccerpredict/ is what offline and online share: no Ray, no Serve, no job entry points,
    not even inside a function."""
    from tests.imports import imported_names

    above = {"ray", "ray_jobs", "serve_app"}
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "soccerpredict").rglob("*.py"))
        for name in imported_names(path)
        if name.split(".")[0] in above
    }
    assert not found, sorted(found)
