"""Serve and the batch stages load a registered version from data files only (UBJ boosters, JSON
calibrators and contract) checked against the sha256 recorded at registration: a real MLflow
registry (SQLite, local artifact store), real predictors, the real `ModelService`."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc.model import PythonModel

from serve_app.services import ModelService, current_version, mlflow_loader
from soccerpredict import registry
from soccerpredict.config import ModelParams
from soccerpredict.features.build import FEATURE_COLUMNS, feature_contract
from soccerpredict.models import Calibrator, train_booster
from soccerpredict.models.artifacts import ArtifactRefused
from soccerpredict.models.predictor import RATINGS_ONLY, Forecaster, Predictor
from soccerpredict.models.pyfunc import OutcomeModel

NAME = "outcome"


class Trap(PythonModel):
    """A pyfunc whose unpickling leaves a mark: proof that nothing on the load path unpickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).write_text("unpickled")
        self.__dict__.update(state)

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    y = rng.integers(0, 3, 300)
    booster = train_booster(X[:200], y[:200], X[200:], y[200:], ModelParams(n_estimators=5))
    tier = Forecaster(
        RATINGS_ONLY,
        booster,
        Calibrator("temperature", {"temperature": 2.0}),
        list(FEATURE_COLUMNS),
    )
    return Predictor({RATINGS_ONLY: tier}, feature_contract())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    client.create_experiment("e", artifact_location=(root / "artifacts").as_uri())
    return client


def _log(client: Any, model: PythonModel, artifacts: dict[str, str] | None = None) -> str:
    import mlflow

    mlflow.set_tracking_uri(client.tracking_uri)  # the conftest fixture puts it back
    with mlflow.start_run(experiment_id=client.get_experiment_by_name("e").experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            artifacts=artifacts,
            registered_model_name=NAME,
            pip_requirements=[],
        )
    return str(info.registered_model_version)


def register(client: Any, predictor: Predictor, tmp_path: Path) -> str:
    """What ray_jobs.register does: the predictor's files in a pyfunc, their hashes as a tag."""
    directory = predictor.save(tmp_path / f"v{len(list(tmp_path.glob('v*')))}" / "models")
    version = _log(client, OutcomeModel(), {"predictor": str(directory)})
    registry.record_manifest(client, NAME, version, directory)
    return version


def stored(client: Any, version: str) -> Path:
    """The version's predictor folder in the local artifact store."""
    uri = client.get_model_version_download_uri(NAME, version)
    return Path(uri.removeprefix("file://")) / "artifacts" / "models"


def _frame(n: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(rng.normal(size=(n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)


def test_a_registered_version_loads_from_its_data_files(
    client: Any, predictor: Predictor, tmp_path: Path
) -> None:
    version = register(client, predictor, tmp_path)
    tag = json.loads(client.get_model_version(NAME, version).tags[registry.MANIFEST_TAG])
    assert tag["root"] == "artifacts/models"
    assert sorted(tag["files"]) == sorted(
        ["feature_contract.json", "tiers.json"]
        + [f"ratings_only/{f}" for f in ("booster.ubj", "calibrator.json", "forecaster.json")]
    )
    loaded = registry.load_predictor(client, NAME, version)
    np.testing.assert_array_equal(loaded.predict_proba(_frame()), predictor.predict_proba(_frame()))


@pytest.mark.parametrize(
    ("file", "content", "reason"),
    [
        ("ratings_only/calibrator.json", b'{"method": "none", "params": {}}', "sha256"),
        ("ratings_only/booster.ubj", pickle.dumps(Trap("unused")), "sha256"),
        ("ratings_only/extra.pkl", pickle.dumps(Trap("unused")), "extra.pkl was not registered"),
    ],
    ids=["calibrator changed", "booster replaced by a pickle", "a pickle added"],
)
def test_tampered_artifacts_are_refused(
    client: Any, predictor: Predictor, tmp_path: Path, file: str, content: bytes, reason: str
) -> None:
    version = register(client, predictor, tmp_path)
    (stored(client, version) / file).write_bytes(content)
    with pytest.raises(ArtifactRefused, match=reason) as refused:
        registry.load_predictor(client, NAME, version)
    assert f"{NAME} v{version}" in str(refused.value)


def test_a_pickled_model_is_never_unpickled(client: Any, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    bare = _log(client, Trap(str(marker)))  # a pyfunc with no data files and no manifest
    with pytest.raises(ArtifactRefused, match="no artifact manifest"):
        registry.load_predictor(client, NAME, bare)
    pkl = stored(client, bare).parent / "python_model.pkl"
    forged = {"root": ".", "files": {"python_model.pkl": registry.file_sha256(pkl)}}
    client.set_model_version_tag(NAME, bare, registry.MANIFEST_TAG, json.dumps(forged))
    with pytest.raises(ArtifactRefused, match="only"):
        registry.load_predictor(client, NAME, bare)
    forged = {"root": "..", "files": {"tiers.json": "0" * 64}}
    client.set_model_version_tag(NAME, bare, registry.MANIFEST_TAG, json.dumps(forged))
    with pytest.raises(ArtifactRefused, match="leaves"):
        registry.load_predictor(client, NAME, bare)
    assert not marker.exists()
    import mlflow  # the trap works: MLflow's own loader springs it

    mlflow.pyfunc.load_model(client.get_model_version_download_uri(NAME, bare))
    assert marker.read_text() == "unpickled"


def test_the_serving_version_keeps_serving_when_the_next_is_refused(
    client: Any, predictor: Predictor, tmp_path: Path
) -> None:
    good = register(client, predictor, tmp_path)
    client.set_registered_model_alias(NAME, "champion", good)
    service = ModelService(mlflow_loader(client, NAME), current_version(client, NAME), "champion")
    assert service.refresh() and service.model is not None
    # served on one thread, whatever OMP_NUM_THREADS the process has (Predictor.single_threaded)
    for tier in service.model.predictor.forecasters.values():
        assert json.loads(tier.booster.save_config())["learner"]["generic_param"]["nthread"] == "1"
    before, _, _ = service.predict(_frame())
    tampered = register(client, predictor, tmp_path)
    (stored(client, tampered) / "ratings_only/booster.ubj").write_bytes(b"not a booster")
    marker = tmp_path / "marker"
    pickled = _log(client, Trap(str(marker)))
    for version in (tampered, pickled):
        client.set_registered_model_alias(NAME, "champion", version)
        assert service.refresh() is False
        probs, served, _ = service.predict(_frame())
        assert served == good and np.array_equal(probs, before)
    assert "sha256" in service.refused[tampered]
    assert "no artifact manifest" in service.refused[pickled]
    assert not marker.exists()
