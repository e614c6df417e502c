"""The pinned requirements of each image, from pyproject.toml's one list of pins
(`python docker/requirements.py serve|jobs|mlflow [pyproject.toml]`), and what the Dockerfile
installs: `python docker/requirements.py locked serve|jobs requirements.lock` prints the
image's part of the lock (its requirements and everything they need, by the lock's `# via`
lines), hashes included, for `pip install --require-hashes`. scripts/lock.sh uses
`build-requires` and `inputs-sha256 <lock file>`; scripts/setup_env.sh `block <lock> pip`.

* serve: what the Serve app imports (checked against serve_app's import closure by
  tests/test_kuberay.py), without the training-only packages below;
* jobs: every dependency, plus DVC's S3 remote (the `cluster-jobs` extra);
* mlflow: the tracking server on Postgres with artifacts in S3 (MinIO): the `mlflow` pin and
  the `cluster-mlflow` extra.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
from pathlib import Path

# Needed by the pipeline, the scrape or the drift job, never by a Serve replica.
TRAINING_ONLY = {"dvc", "great-expectations", "evidently", "optuna", "playwright", "matplotlib",
                 "tqdm"}
SERVE_RAY_EXTRAS = "serve"  # ray[serve,tune,data] for the jobs, ray[serve] for serving
MLFLOW_SERVER_EXTRAS = "auth"  # the basic-auth app needs Flask-WTF (kuberay/base/mlflow.yaml)
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def name_of(requirement: str) -> str:
    match = NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match[1].lower().replace("_", "-")


def pins(pyproject: Path) -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return project["dependencies"], project.get("optional-dependencies", {})


def image_requirements(image: str, pyproject: Path) -> list[str]:
    dependencies, extras = pins(pyproject)
    if image == "jobs":
        return dependencies + extras["cluster-jobs"]
    if image == "serve":
        kept = [r for r in dependencies if name_of(r) not in TRAINING_ONLY]
        return [re.sub(r"^ray\[[^\]]*\]", f"ray[{SERVE_RAY_EXTRAS}]", r) for r in kept]
    if image == "mlflow":
        server = [re.sub(r"^mlflow(?=[=<>~!])", f"mlflow[{MLFLOW_SERVER_EXTRAS}]", r)
                  for r in dependencies if name_of(r) == "mlflow"]
        return server + extras["cluster-mlflow"]
    raise SystemExit(f"unknown image {image!r}: serve, jobs or mlflow")


LOCK_INPUTS = {"requirements.lock": ("dev", "cluster-jobs"), "requirements-mlflow.lock": (),
               "requirements-s3-emulator.lock": ("s3-emulator",)}


# installed first, from the lock: the pip a fresh venv brings (23.2 with Python 3.11.7) fails
# on extras, such as pandas[parquet], under --require-hashes
TOOLS = ["pip"]


def build_requires(pyproject: Path) -> list[str]:
    """The project's build requirements (an editable install without build isolation needs
    them in the venv) and the installer itself."""
    return tomllib.loads(pyproject.read_text())["build-system"]["requires"] + TOOLS


def lock_inputs(lock_name: str, pyproject: Path) -> list[str]:
    """The requirements a lock file is compiled from."""
    dependencies, extras = pins(pyproject)
    if lock_name == "requirements-mlflow.lock":
        return image_requirements("mlflow", pyproject)
    if lock_name == "requirements-s3-emulator.lock":
        return extras["s3-emulator"]
    return dependencies + [r for e in LOCK_INPUTS[lock_name] for r in extras[e]] + \
        build_requires(pyproject)


def inputs_sha256(lock_name: str, pyproject: Path) -> str:
    text = "\n".join(sorted(lock_inputs(lock_name, pyproject)))
    return hashlib.sha256(text.encode()).hexdigest()


def lock_entries(lock_text: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (its block of the lock: pin and hashes; the names of what needs it)."""
    entries: dict[str, tuple[str, set[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock_text.strip()):
        if block.startswith("#"):
            continue
        lines = block.splitlines()
        pin = [line for line in lines if not line.lstrip().startswith("#")]
        via = {name_of(v.strip("# ").removeprefix("via ").strip()) for v in lines
               if v.lstrip().startswith("#") and NAME.match(v.strip("# ").removeprefix("via "))
               and v.strip("# ") != "via"}
        entries[name_of(lines[0])] = ("\n".join(pin), via)
    return entries


def locked(image: str, lock_text: str, pyproject: Path) -> str:
    """The image's requirements and their dependencies, as blocks of the lock."""
    entries = lock_entries(lock_text)
    needed = {name_of(r) for r in image_requirements(image, pyproject)}
    while True:
        more = {n for n, (_, via) in entries.items() if n not in needed and via & needed}
        if not more:
            break
        needed |= more
    missing = needed - set(entries)
    if missing:
        raise SystemExit(f"not in the lock: {sorted(missing)} (run scripts/lock.sh)")
    return "\n".join(entries[n][0] for n in sorted(needed)) + "\n"


def main(argv: list[str]) -> None:
    pyproject = Path("pyproject.toml")
    if argv[0] == "locked":
        if len(argv) > 3:
            pyproject = Path(argv[3])
        print(locked(argv[1], Path(argv[2]).read_text(), pyproject), end="")
    elif argv[0] == "block":   # block <lock> <name>: one package's pin and hashes
        print(lock_entries(Path(argv[1]).read_text())[argv[2]][0])
    elif argv[0] == "extra":   # extra <name>: the pins of one optional-dependencies list
        print("\n".join(pins(pyproject)[1][argv[1]]))
    elif argv[0] == "build-requires":
        print("\n".join(build_requires(pyproject)))
    elif argv[0] == "inputs-sha256":
        print(inputs_sha256(Path(argv[1]).name, pyproject))
    else:
        path = Path(argv[1]) if len(argv) > 1 else pyproject
        print("\n".join(image_requirements(argv[0], path)))


if __name__ == "__main__":
    main(sys.argv[1:])
