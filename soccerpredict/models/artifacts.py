"""The predictor's files as data, hashed: what a registered version may be loaded from.

A predictor is saved as XGBoost UBJ boosters and JSON (calibrators, tiers, feature contract). The
manifest lists every file with its sha256; it is recorded outside the artifact store (an MLflow
version tag) when the version is registered, and a copy is loaded only if it holds exactly those
files, byte for byte. Nothing else is read, so a pickle in the store is never downloaded or run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

DATA_SUFFIXES = (".ubj", ".json")  # boosters as UBJ, everything else as JSON
MANIFEST_VERSION = 1


class ArtifactRefused(ValueError):
    """A registered version whose files are not the data files recorded when it was registered."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): _sha256(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def manifest(directory: str | Path, root: str) -> dict[str, Any]:
    """Every file of a saved predictor with its sha256; `root` is where the files sit inside the
    registered model's artifacts (MLflow copies a pyfunc artifact to `artifacts/<folder name>`)."""
    files = _files(Path(directory))
    odd = [name for name in files if not name.endswith(DATA_SUFFIXES)]
    if odd:
        raise ArtifactRefused(f"a predictor holds only {DATA_SUFFIXES} files, not {odd}")
    return {"version": MANIFEST_VERSION, "root": root, "files": files}


def parse(text: str | None, where: str) -> dict[str, Any]:
    """A manifest read back from the registry, checked before anything is downloaded."""
    if not text:
        raise ArtifactRefused(
            f"{where} has no artifact manifest: it was not registered by ray_jobs.register "
            "(a pickled model alone is never loaded)"
        )
    try:
        data = json.loads(text)
        root, files = str(data["root"]), dict(data["files"])
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactRefused(f"{where} has an unreadable artifact manifest: {err}") from err
    for name in [root, *files]:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts:
            raise ArtifactRefused(f"{where}: manifest path {name!r} leaves the model's artifacts")
    odd = [name for name in files if not name.endswith(DATA_SUFFIXES)]
    if odd or not files:
        raise ArtifactRefused(
            f"{where}: the manifest lists {odd or 'no files'}; only {DATA_SUFFIXES} are loaded"
        )
    return {"version": data.get("version"), "root": root, "files": files}


def verify(directory: str | Path, recorded: dict[str, Any], where: str) -> None:
    """Raise unless `directory` holds exactly the recorded files with the recorded hashes."""
    found = _files(Path(directory))
    expected: dict[str, str] = recorded["files"]
    problems = [f"{n} is missing" for n in sorted(set(expected) - set(found))]
    problems += [f"{n} was not registered" for n in sorted(set(found) - set(expected))]
    problems += [
        f"{n} has sha256 {found[n][:12]}…, registered {expected[n][:12]}…"
        for n in sorted(set(found) & set(expected))
        if found[n] != expected[n]
    ]
    if problems:
        raise ArtifactRefused(
            f"{where}: its artifacts differ from those registered ({'; '.join(problems)})"
        )
