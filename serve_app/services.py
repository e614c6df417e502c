"""What the deployments hold, without Serve: the team state, the champion, the batch predictions.

Each reloads itself when what it serves changes (a newer snapshot file, `champion` moving to a
new version) and keeps serving what it has when the new thing is unusable: a model whose feature
contract does not match, or whose files are not the data files hashed at registration (see
`soccerpredict.models.artifacts`), is refused, and the previous one goes on answering.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from soccerpredict.evaluation import FORECASTERS
from soccerpredict.features.build import feature_contract
from soccerpredict.features.online import Fixture, TeamState
from soccerpredict.models.artifacts import ArtifactRefused
from soccerpredict.models.predictor import ContractMismatch, Predictor

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs
T = TypeVar("T")


class FileBacked(Generic[T]):
    """A value loaded from a file, reloaded when the file's mtime or size changes (looked at
    most every `interval_s`); a file that fails to load leaves the previous value in place."""

    def __init__(self, path: Path, load: Callable[[Path], T], interval_s: float) -> None:
        self.path, self.load, self.interval_s = Path(path), load, interval_s
        self.value: T | None = None
        self.error: str | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    def get(self) -> T | None:
        now = time.monotonic()
        if now - self._checked >= self.interval_s or self.value is None:
            self._checked = now
            self._refresh()
        return self.value

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self.error = f"{self.path} does not exist (run the pipeline)"
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            self.value, self.error = self.load(self.path), None
            log.info("loaded %s", self.path)
        except (OSError, ValueError, KeyError, TypeError) as err:  # a bad publish keeps the old
            self.error = f"{self.path} could not be loaded: {err}"
            log.error("%s; still serving the previous one", self.error)
        self._stamp = stamp


@dataclass
class LoadedModel:
    predictor: Predictor
    version: str
    registered_at: str
    run_id: str | None
    test_metrics: dict[str, dict[str, float]]
    # the seasons the served predictor was trained and validated on (the version's tags)
    trained_on: dict[str, list[str]] = field(default_factory=dict)


def trained_on(tags: dict[str, str]) -> dict[str, list[str]]:
    """The version's `train_seasons` and `validation_seasons` tags (ray_jobs/register.py)."""
    keys = ("train_seasons", "validation_seasons")
    return {key: tags[key].split(",") for key in keys if tags.get(key)}


def mlflow_loader(client: Any, name: str) -> Callable[[str], LoadedModel]:
    """Load a registered version (by alias or number) with its registration time and metrics."""

    def load(alias_or_version: str) -> LoadedModel:
        from soccerpredict import registry

        mv = registry.model_version(client, name, alias_or_version)
        metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        return LoadedModel(
            registry.load_predictor(client, name, str(mv.version)),
            str(mv.version),
            _iso_ms(mv.creation_timestamp),
            mv.run_id,
            test_metrics(metrics),
            trained_on(mv.tags),
        )

    return load


def test_metrics(run_metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """`test_<forecaster>_<metric>` run metrics → {forecaster: {metric: value}}."""
    out: dict[str, dict[str, float]] = {}
    for key, value in run_metrics.items():
        for forecaster in FORECASTERS:
            if key.startswith(f"test_{forecaster}_"):
                out.setdefault(forecaster, {})[key.removeprefix(f"test_{forecaster}_")] = value
    return out


def current_version(client: Any, name: str) -> Callable[[str], str]:
    """The version an alias points at now: a cheap registry lookup, no model download."""

    def version(alias: str) -> str:
        return str(client.get_model_version_by_alias(name, alias).version)

    return version


class ModelService:
    """The model behind an alias; `refresh` swaps in a new version only if its files are the
    registered ones and its contract fits."""

    def __init__(
        self, load: Callable[[str], LoadedModel], resolve: Callable[[str], str], alias: str
    ) -> None:
        self.load, self.resolve, self.alias = load, resolve, alias
        self.model: LoadedModel | None = None
        self.refused: dict[str, str] = {}  # version -> why it was not loaded

    def refresh(self) -> bool:
        """Load the alias's version if it changed; True when a new model is now serving."""
        version = self.resolve(self.alias)
        if self.model is not None and version == self.model.version or version in self.refused:
            return False
        try:
            candidate = self.load(version)
            candidate.predictor.check_contract(feature_contract())
            candidate.predictor.single_threaded()  # whatever OMP_NUM_THREADS this process has
        except (ContractMismatch, ArtifactRefused) as err:
            self.refused[version] = str(err)
            log.error(
                "refused %s v%s: %s; v%s keeps serving",
                self.alias,
                version,
                err,
                self.model.version if self.model else "none",
            )
            if self.model is None:
                raise
            return False
        self.model = candidate
        log.info("serving %s v%s", self.alias, version)
        return True

    def predict(self, features: pd.DataFrame) -> tuple[np.ndarray, str, np.ndarray]:
        """Probabilities, the version, and per row the forecaster tier that answered it."""
        if self.model is None:
            raise RuntimeError("no model loaded")
        model = self.model  # one version for the whole batch, even if a reload swaps it
        predictor = model.predictor
        probs, tiers = predictor.predict_with_tiers(features)
        return probs, model.version, tiers


class NotReady(RuntimeError):
    """What a replica needs to answer is missing: a 503 with the reason, not a 500."""


class FeatureService:
    """Feature vectors of fixtures from the published team state, reloaded when republished."""

    def __init__(self, path: Path, interval_s: float, max_horizon_days: int) -> None:
        self.state = FileBacked(path, TeamState.load, interval_s)
        self.max_horizon_days = max_horizon_days

    def current(self) -> TeamState:
        state = self.state.get()
        if state is None:
            raise NotReady(
                f"no team state to build features from: {self.state.error or 'none published'}"
            )
        return state

    def vectors(self, fixtures: list[Fixture]) -> tuple[np.ndarray, str]:
        state = self.current()
        return state.feature_matrix(fixtures), state.version


class UpcomingPredictions:
    """The batch predictions of upcoming fixtures, by match id."""

    def __init__(self, path: Path, interval_s: float) -> None:
        self.table = FileBacked(path, _read_predictions, interval_s)

    def get(self, match_id: str) -> dict[str, Any] | None:
        table = self.table.get()
        if table is None or match_id not in table.index:
            return None
        return {"match_id": match_id, **{str(k): v for k, v in table.loc[match_id].items()}}

    def all(self) -> pd.DataFrame:
        table = self.table.get()
        return pd.DataFrame() if table is None else table.reset_index()


def _read_predictions(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).set_index("match_id")


def _iso_ms(ms: int | None) -> str:
    from datetime import UTC, datetime

    return (
        "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
    )
