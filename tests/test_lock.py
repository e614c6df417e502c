"""The lock files are in step with pyproject.toml: each was made from the pins it now holds
(the inputs hash in its header), names every pin at the same version, hashes every file, and
gives each image a closed part of it (docker/requirements.py `locked`)."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement

from tests.kuberay_schema import REPO
from tests.test_kuberay import images

LOCKS = ["requirements.lock", "requirements-mlflow.lock", "requirements-s3-emulator.lock"]
PYPROJECT = REPO / "pyproject.toml"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def locked_versions(text: str) -> dict[str, str]:
    return {images.name_of(name): version for name, version in PIN.findall(text)}


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_was_made_from_the_current_pins(lock: str) -> None:
    text = (REPO / lock).read_text()
    header = re.search(r"^# inputs-sha256: ([0-9a-f]{64})$", text, re.MULTILINE)
    assert header, f"{lock}: no inputs-sha256 line"
    assert header[1] == images.inputs_sha256(lock, PYPROJECT), (
        f"{lock} is older than pyproject.toml: run scripts/lock.sh"
    )


@pytest.mark.parametrize("lock", LOCKS)
def test_every_input_is_locked_at_a_version_it_allows(lock: str) -> None:
    versions = locked_versions((REPO / lock).read_text())
    for text in images.lock_inputs(lock, PYPROJECT):
        requirement = Requirement(text)
        name = images.name_of(requirement.name)
        assert name in versions, f"{lock}: {name} is not locked"
        assert requirement.specifier.contains(versions[name], prereleases=True), (
            f"{lock}: {name}=={versions[name]} does not satisfy {text}"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_has_hashes(lock: str) -> None:
    entries = images.lock_entries((REPO / lock).read_text())
    assert len(entries) > 50
    assert [n for n, (block, _) in entries.items() if "--hash=sha256:" not in block] == []


def test_each_ray_image_gets_a_closed_part_of_the_one_lock() -> None:
    text = (REPO / "requirements.lock").read_text()
    entries = images.lock_entries(text)
    serve = locked_versions(images.locked("serve", text, PYPROJECT))
    jobs = locked_versions(images.locked("jobs", text, PYPROJECT))
    assert serve.items() <= jobs.items()  # the same versions on every Ray node
    assert serve["ray"] == jobs["ray"] == "2.60.0"
    for part in (serve, jobs):  # closed: what a package of the part needs is in the part
        for name, (_, needed_by) in entries.items():
            assert not needed_by & set(part) or name in part, name
    assert {"dvc", "dvc-s3", "great-expectations", "optuna", "playwright"} <= set(jobs)
    assert {"dvc", "great-expectations", "optuna", "playwright", "pytest", "ruff"}.isdisjoint(serve)


def test_the_dockerfile_and_the_venv_install_only_from_the_locks() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^\n&]*)", dockerfile)
    assert installs and all("--require-hashes" in line for line in installs), installs
    assert "requirements.lock" in dockerfile and "requirements-mlflow.lock" in dockerfile
    setup = (REPO / "scripts/setup_env.sh").read_text()
    assert "--require-hashes -r requirements.lock" in setup
    assert "--no-deps --no-build-isolation -e ." in setup
