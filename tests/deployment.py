"""What the deployment files say, read without a cluster: the kustomizations' objects, the
Secrets' names and keys (values stay encrypted), .dockerignore, and the third-party imports of
the Serve app. Used by tests/test_kuberay.py and tests/test_secrets.py."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.kuberay_schema import REPO

KUBERAY = REPO / "kuberay"
BASE, DEV, JOBS = KUBERAY / "base", KUBERAY / "overlays" / "dev", KUBERAY / "jobs"
SECRETS = DEV / "secrets.enc.yaml"
FIRST_PARTY = {"soccerpredict", "ray_jobs", "serve_app"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def kustomization(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def resource_files(folder: Path) -> list[Path]:
    """The YAML files a kustomization applies, following folders that are kustomizations."""
    files = []
    for entry in kustomization(folder).get("resources", []):
        path = (folder / entry).resolve()
        files += resource_files(path) if path.is_dir() else [path]
    return files


def generator_files(folder: Path) -> list[Path]:
    """Files read by the configMapGenerators of a kustomization and those below it."""
    k = kustomization(folder)
    out = [
        (folder / f.split("=")[-1]).resolve()
        for gen in k.get("configMapGenerator", [])
        for f in gen.get("files", [])
    ]
    for entry in k.get("resources", []):
        if (folder / entry).is_dir():
            out += generator_files((folder / entry).resolve())
    return out


def generated_configmaps(folder: Path) -> set[str]:
    k = kustomization(folder)
    names = {gen["name"] for gen in k.get("configMapGenerator", [])}
    for entry in k.get("resources", []):
        if (folder / entry).is_dir():
            names |= generated_configmaps((folder / entry).resolve())
    return names


def objects(files: list[Path]) -> list[dict[str, Any]]:
    return [doc for f in files for doc in documents(f) if "kind" in doc]


def secret_keys(path: Path = SECRETS) -> dict[str, set[str]]:
    """Secret name -> its keys; SOPS leaves both readable (encrypted_regex: data|stringData)."""
    return {
        d["metadata"]["name"]: set(d.get("stringData") or {}) | set(d.get("data") or {})
        for d in documents(path)
        if d.get("kind") == "Secret"
    }


# -- .dockerignore --------------------------------------------------------------------------


def dockerignore_patterns(path: Path = REPO / ".dockerignore") -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line.lstrip("/") for line in lines if line and not line.startswith("#")]


def docker_excluded(relative: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a directory's pattern covers its files."""
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate, glob = pattern.startswith("!"), pattern.lstrip("!")
        if any(glob_match(glob, p) for p in prefixes):
            excluded = not negate
    return excluded


def glob_match(glob: str, path: str) -> bool:
    regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
    regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    return re.fullmatch(regex, path) is not None


# -- what the Serve app imports -------------------------------------------------------------


def module_file(module: str) -> Path | None:
    path = REPO / Path(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def third_party_imports(package: str) -> frozenset[str]:
    """Top-level names of non-project modules imported anywhere (function bodies included)
    by `package` and the project modules it imports, transitively."""
    stack = [f"{package}.{p.stem}" for p in (REPO / package).glob("*.py")]
    seen: set[str] = set()
    found: set[str] = set()
    while stack:
        module = stack.pop()
        file = module_file(module)
        if module in seen or file is None:
            continue
        seen.add(module)
        for name in imported_names(file):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                parts = name.split(".")
                stack += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return frozenset(found)


def imported_names(file: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def distribution_closure(requirements: list[str]) -> set[str]:
    """Normalised names of the distributions `requirements` install, as installed here."""
    from packaging.requirements import Requirement

    todo = [Requirement(r) for r in requirements]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        key = normalise(req.name)
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = md.requires(req.name) or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            extras = req.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return seen


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
