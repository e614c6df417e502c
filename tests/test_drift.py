"""Drift: the tests chosen per column, the refusals, the job's outputs and its RayCronJob; on real
data, the 2020-21 loss of home advantage is flagged and windows drawn from the reference are not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from ray_jobs.drift import main
from soccerpredict.config import DriftParams
from soccerpredict.drift import (
    DEFAULT_COLUMNS,
    OUTPUT_COLUMNS,
    DriftInputError,
    _chi2_two_sample,
    drift_report,
    p_values,
    reference_window,
)
from soccerpredict.features.build import FEATURE_COLUMNS
from tests.conftest import shared_data_dir
from tests.kuberay_schema import CRD_DIR, CRD_FILES, REPO, validate_file

SMALL = ["elo_diff", "market_prob_home", "result"]
SMALL_PARAMS = DriftParams(columns=SMALL, min_rows=50)
# the default inputs without the champion's output (a feature table holds no forecasts)
INPUTS = DriftParams(columns=[c for c in DEFAULT_COLUMNS if c not in OUTPUT_COLUMNS])
REFERENCE, CURRENT = "2018-2019", "2019-2020"


def window(
    n: int, season: str, seed: int, home_rate: float = 0.46, market_shift: float = 0.0
) -> pd.DataFrame:
    """Generated played matches of one season: features, result, ids and kickoffs."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    frame["market_prob_home"] = rng.beta(4.5, 5.5, n) + market_shift
    frame["result"] = rng.choice(["H", "D", "A"], size=n, p=[home_rate, 0.26, 0.74 - home_rate])
    frame["season"], frame["league"] = season, "E0"
    frame["match_id"] = [f"E0-{season}-{i}" for i in range(n)]
    start = pd.Timestamp(f"{season[:4]}-08-10 15:00", tz="UTC")
    frame["kickoff_utc"] = start + pd.to_timedelta(rng.integers(0, 280, n), unit="D")
    return frame


# --- the tests themselves, on generated windows --------------------------------------------


def test_noise_is_not_flagged_and_a_fall_in_home_advantage_is() -> None:
    reference = window(2000, REFERENCE, seed=1)
    same, _ = drift_report(reference, window(600, CURRENT, seed=2), SMALL_PARAMS)
    assert same["drifted_columns"] == [] and not same["drifted"]
    moved, _ = drift_report(
        reference, window(600, CURRENT, seed=2, home_rate=0.36, market_shift=-0.04), SMALL_PARAMS
    )
    assert moved["drifted_columns"] == ["market_prob_home", "result"]
    assert moved["columns"]["result"]["test"] == "chisquare_2sample"
    assert moved["columns"]["market_prob_home"]["test"] == "ks"
    assert moved["column_threshold"] == pytest.approx(0.01 / 3)  # Bonferroni over 3 columns
    assert moved["drift_share"] == pytest.approx(2 / 3) and moved["drifted"]


def test_the_ordinal_result_test_decides_and_is_the_one_evidently_runs() -> None:
    reference = window(2000, REFERENCE, seed=1)
    moved = window(600, CURRENT, seed=2, home_rate=0.36)
    params = SMALL_PARAMS.model_copy(update={"result_test": "ordinal"})
    summary, snapshot = drift_report(reference, moved, params)
    result = summary["columns"]["result"]
    assert result["test"] == "mannwhitney_ordinal" and result["drifted"]
    assert p_values(snapshot)["result"] == pytest.approx(result["p_value"])
    chi2, _ = drift_report(reference, moved, SMALL_PARAMS)
    assert result["p_value"] < chi2["columns"]["result"]["p_value"]


def test_two_sample_chi_square_is_symmetric_and_calm_on_one_category() -> None:
    a, b = pd.Series(list("HHHDA") * 40), pd.Series(list("HDDAA") * 30)
    assert _chi2_two_sample(a, b, None, 0.01)[0] == pytest.approx(
        _chi2_two_sample(b, a, None, 0.01)[0]
    )
    assert _chi2_two_sample(a, a, None, 0.01) == (pytest.approx(1.0), False)
    assert _chi2_two_sample(pd.Series(["H"] * 9), pd.Series(["H"] * 5), None, 0.01) == (1.0, False)


def test_default_columns_are_what_the_model_reads_its_output_and_the_result() -> None:
    assert DEFAULT_COLUMNS[-1] == "result" and "market_prob_home" in DEFAULT_COLUMNS
    assert {"elo_diff", "model_home", "sot_lambda_diff"} <= set(DEFAULT_COLUMNS)
    assert not {
        "h2h_n",
        "market_overround",
        "rest_days_home",
        "form_n_away",
        "elo_home",
        "pi_home",
        "form_sot_home",
    } & set(DEFAULT_COLUMNS)


def _repeat(values: list[Any], n: int) -> np.ndarray:
    return np.array((values * n)[:n], dtype=object)


def spoil(
    case: str, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current window with one thing wrong."""
    match case:
        case "empty current":
            return reference, current.iloc[:0]
        case "too few rows":
            return reference, current.iloc[:20]
        case "missing column":
            return reference, current.drop(columns="market_prob_home")
        case "mixed dtype":
            return reference, current.assign(elo_diff=_repeat([1.5, "n/a"], len(current)))
        case "results as numbers":
            return reference, current.assign(result=np.resize([0, 1, 2], len(current)))
        case "no values":
            return reference.assign(market_prob_home=np.nan), current
    raise ValueError(case)


BAD_INPUT = {
    "empty current": "the current window is empty: nothing to compare",
    "too few rows": "the current window has 20 rows, fewer than min_rows 50",
    "missing column": "the current window lacks columns: market_prob_home",
    "mixed dtype": "numerical columns hold other values in the current window: elo_diff (object)",
    "results as numbers": "numbers in one window and labels in the other: result",
    "no values": "the reference has no values in: market_prob_home",
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_refused_with_the_reason(case: str) -> None:
    reference, current = spoil(case, window(300, REFERENCE, seed=1), window(300, CURRENT, seed=2))
    with pytest.raises(DriftInputError) as refused:
        drift_report(reference, current, SMALL_PARAMS)
    assert str(refused.value) == BAD_INPUT[case]


# --- the job: files, MLflow, exit codes -----------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A feature table of two generated seasons, runtime paths and MLflow (SQLite) in tmp_path."""
    import mlflow

    features = pd.concat([window(400, REFERENCE, seed=1), window(300, CURRENT, seed=2)])
    features.to_parquet(tmp_path / "features.parquet", index=False)
    runtime = yaml.safe_load((REPO / "conf/runtime.yaml").read_text())
    runtime["paths"] = {k: str(tmp_path / v) for k, v in runtime["paths"].items()}
    runtime["paths"]["features"] = str(tmp_path / "features.parquet")
    (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["drift"].update(columns=SMALL, min_rows=50, current_seasons=[CURRENT])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # endpoints come from the environment first
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", str(tmp_path / "mlartifacts"))
    argv = ["--params", str(tmp_path / "params.yaml"), "--conf", str(tmp_path / "runtime.yaml")]
    yield {
        "argv": argv,
        "uri": uri,
        "features": features,
        "model": runtime["mlflow"]["model_name"],
        "experiment": runtime["mlflow"]["experiment"],
        "summary": Path(runtime["paths"]["drift_reports"]) / "summary.json",
    }
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # leave no URI for later tests


def test_a_run_writes_the_report_the_summary_and_an_mlflow_run(project: dict[str, Any]) -> None:
    import json

    from mlflow import MlflowClient

    main([*project["argv"], "--reference-seasons", REFERENCE])
    summary = json.loads(project["summary"].read_text())
    assert {
        "drift_share",
        "drifted",
        "drifted_columns",
        "generated_at",
        "as_of",
        "n_columns",
        "columns",
    } <= set(summary)
    assert set(summary["columns"]) == set(SMALL)
    assert all({"p_value", "drifted"} <= set(v) for v in summary["columns"].values())
    assert summary["reference"]["rows"] == 400 and summary["current"]["rows"] == 300
    assert "<html" in project["summary"].with_name("report.html").read_text()[:2000].lower()
    client = MlflowClient(project["uri"])
    experiment = client.get_experiment_by_name(project["experiment"])
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["stage"] == "drift"
    assert run.data.metrics["drift_share"] == summary["drift_share"]
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "drift")}
    assert logged == {"drift/report.html", "drift/summary.json"}


def test_the_champions_snapshot_is_the_default_reference(project: dict[str, Any]) -> None:
    import json

    import mlflow
    from mlflow import MlflowClient

    from soccerpredict import registry

    mlflow.set_tracking_uri(project["uri"])
    name = project["model"]
    reference = project["features"].query("season == @REFERENCE")
    with mlflow.start_run() as run:
        registry.log_artifact_frame(
            registry.reference_snapshot(reference, SMALL[:-1], n=350), "features.parquet"
        )
    client = MlflowClient(project["uri"])
    client.create_registered_model(name)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias(name, registry.CHAMPION, version.version)
    main(project["argv"])
    summary = json.loads(project["summary"].read_text())
    assert summary["model_version"] == "1" and summary["reference"]["rows"] == 350
    assert summary["reference"]["source"] == f"reference/features.parquet of {name} v1"


BAD_JOBS = [
    ("no champion", [], "no champion for model 'soccer-match-outcome'"),
    (
        "empty current window",
        ["--reference-seasons", REFERENCE, "--current-seasons", "2030-2031"],
        "the current window is empty: no played matches in seasons 2030-2031",
    ),
    (
        "too few matches",
        ["--reference-seasons", REFERENCE, "--as-of", "2019-08-20"],
        "fewer than min_rows 50",
    ),
]


def test_the_reference_snapshot_is_drawn_from_the_latest_training_seasons() -> None:
    from soccerpredict.registry import reference_snapshot

    seasons = ["2005-2006", "2006-2007", "2007-2008", "2008-2009"]
    features = pd.DataFrame(
        {
            "match_id": range(400),
            "season": [s for s in seasons for _ in range(100)],
            "elo_diff": np.arange(400.0),
            "result": "H",
        }
    )
    latest = reference_snapshot(features, ["elo_diff"], last_seasons=2, n=150)
    assert len(latest) == 150
    assert set(latest["season"]) == {"2007-2008", "2008-2009"}
    everything = reference_snapshot(features, ["elo_diff"], n=400)
    assert set(everything["season"]) == set(seasons)  # 0: every training season
    assert list(everything.columns) == ["match_id", "season", "elo_diff", "result"]


@pytest.mark.parametrize(("case", "args", "reason"), BAD_JOBS, ids=[b[0] for b in BAD_JOBS])
def test_bad_input_exits_1_and_leaves_the_summary_as_it_was(
    project: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    case: str,
    args: list[str],
    reason: str,
) -> None:
    project["summary"].parent.mkdir(parents=True)
    previous = b'{"drift_share": 0.1, "drifted": false}\n'
    project["summary"].write_bytes(previous)
    with pytest.raises(SystemExit) as stopped:
        main([*project["argv"], *args])
    assert stopped.value.code == 1
    assert reason in capsys.readouterr().err
    assert project["summary"].read_bytes() == previous
    assert not project["summary"].with_name("report.html").exists()


def test_a_table_without_the_columns_exits_1(
    project: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(project["argv"][3]).with_name("features.parquet")
    project["features"].drop(columns="market_prob_home").to_parquet(path, index=False)
    with pytest.raises(SystemExit):
        main([*project["argv"], "--reference-seasons", REFERENCE])
    assert "lacks columns: market_prob_home" in capsys.readouterr().err
    assert not project["summary"].exists()


def test_output_drift_without_a_champion_exits_1(
    project: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    params_path = Path(project["argv"][1])
    params = yaml.safe_load(params_path.read_text())
    params["drift"]["columns"] = [*SMALL, "model_home"]
    params_path.write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as stopped:
        main([*project["argv"], "--reference-seasons", REFERENCE])
    assert stopped.value.code == 1
    assert (
        "no champion for model 'soccer-match-outcome': its output cannot be compared"
        in capsys.readouterr().err
    )
    assert not project["summary"].exists()


# --- the RayCronJob ---------------------------------------------------------------------------


def test_the_drift_cronjob_validates_and_attaches_to_the_shared_cluster() -> None:
    path = REPO / "kuberay" / "base" / "ray-cronjob.drift.yaml"
    job = yaml.safe_load(path.read_text())["spec"]["jobTemplate"]
    # the job's own deadline and run guard wrap the stage (kuberay/README.md, issue 17)
    assert job["entrypoint"].startswith("python -m ray_jobs.guarded --stage drift ")
    assert job["entrypoint"].endswith(" -- python -m ray_jobs.drift")
    assert job["clusterSelector"] == {"ray.io/cluster": "soccerpredict"}
    assert job["shutdownAfterJobFinishes"] is False and job["backoffLimit"] == 0
    if not all((CRD_DIR / name).is_file() for name in CRD_FILES.values()):
        pytest.skip(f"KubeRay v1.7.0 CRDs not found in {CRD_DIR} (set KUBERAY_CRD_DIR)")
    assert validate_file(path) == {"RayCronJob/soccerpredict-drift-daily": []}


# --- real data: 5 leagues, built the way the pipeline builds them -----------------------------

LEAGUES = ["E0", "SP1", "D1", "I1", "F1"]
REFERENCE_SEASONS = ["2015-2016", "2016-2017", "2017-2018", "2018-2019"]
AS_OF = date(2022, 4, 30)


@pytest.fixture(scope="module")
def real_features() -> pd.DataFrame:
    """The feature table of params.yaml's leagues from 2005-06 (its first season) to 2020-21."""
    from soccerpredict.config import FeatureParams
    from soccerpredict.data.clean import to_interim
    from soccerpredict.data.readers import read_football_data_csv
    from soccerpredict.data.sources import season_range
    from soccerpredict.features.build import build_features

    seasons = season_range("2005-2006", "2020-2021")
    data_dir = shared_data_dir() or Path("/nonexistent")
    files = {(lg, s): data_dir / lg / f"{s}.csv" for lg in LEAGUES for s in seasons}
    if not all(p.is_file() for p in files.values()):
        pytest.skip("DATA_DIR does not hold the five leagues' seasons 2005-06 to 2020-21")
    raw = pd.concat([read_football_data_csv(p.read_bytes(), lg, s) for (lg, s), p in files.items()])
    return build_features(to_interim(raw, LEAGUES, seasons, AS_OF), FeatureParams())


@pytest.fixture(scope="module")
def reference(real_features: pd.DataFrame) -> pd.DataFrame:
    return reference_window(real_features, REFERENCE_SEASONS, AS_OF)


@pytest.mark.slow
def test_2020_21_loss_of_home_advantage_is_flagged(
    real_features: pd.DataFrame,
    reference: pd.DataFrame,
    record_property: Callable[[str, object], None],
) -> None:
    current = reference_window(real_features, ["2020-2021"], AS_OF)
    summary, _ = drift_report(reference, current, INPUTS)
    columns, home = summary["columns"], summary["home_advantage"]
    for column in ("market_prob_home", "result"):
        record_property(f"p_value.{column}", columns[column]["p_value"])
        assert columns[column]["drifted"], columns[column]
    assert home["result"]["reference_frequencies"]["H"] > 0.44
    assert home["result"]["current_frequencies"]["H"] < 0.41
    market = home["market_prob_home"]
    assert market["current_mean"] < market["reference_mean"] - 0.02
    record_property("drifted_columns", summary["drifted_columns"])


@pytest.mark.slow
def test_a_window_drawn_from_the_reference_is_not_flagged(
    reference: pd.DataFrame, record_property: Callable[[str, object], None]
) -> None:
    """A season-sized window of reference rows against the rest, no row in both: the windows
    differ only by sampling, so any flag would be a false alarm."""
    drawn = reference.sample(n=1826, random_state=0)
    summary, _ = drift_report(reference.drop(drawn.index), drawn, INPUTS)
    record_property("min_p_value", min(v["p_value"] for v in summary["columns"].values()))
    assert summary["drifted_columns"] == [] and not summary["drifted"]


@pytest.mark.slow
@pytest.mark.parametrize("season", REFERENCE_SEASONS)
def test_no_reference_season_moves_home_advantage_like_2020_21(
    reference: pd.DataFrame, season: str, record_property: Callable[[str, object], None]
) -> None:
    """Each reference season against the other three: ordinary year-to-year movement of home
    wins and home prices, tested on these two columns alone (a laxer threshold, 0.005)."""
    held_out = reference["season"] == season
    params = DriftParams(columns=["market_prob_home", "result"])
    summary, _ = drift_report(reference[~held_out], reference[held_out], params)
    for column, entry in summary["columns"].items():
        record_property(f"p_value.{column}", entry["p_value"])
    assert summary["drifted_columns"] == []


@pytest.mark.slow
def test_evidently_defaults_miss_the_result_shift(
    real_features: pd.DataFrame, reference: pd.DataFrame
) -> None:
    """Why the tests are chosen here: above 1,000 reference rows Evidently measures distances
    against fixed thresholds, and the 2020-21 results are 0.046 Jensen-Shannon away (< 0.1)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    current = reference_window(real_features, ["2020-2021"], AS_OF)
    columns = ["market_prob_home", "result"]
    definition = DataDefinition(numerical_columns=columns[:1], categorical_columns=columns[1:])
    data = [
        Dataset.from_pandas(w[columns].copy(), data_definition=definition)
        for w in (current, reference)
    ]
    metrics = Report([DataDriftPreset(columns=columns)]).run(*data).dict()["metrics"]
    drift = {
        m["config"]["column"]: (m["config"]["method"], m["value"], m["config"]["threshold"])
        for m in metrics
        if m["config"]["type"].endswith(":ValueDrift")
    }
    method, distance, threshold = drift["result"]
    assert method == "Jensen-Shannon distance" and 0.03 < distance < threshold == 0.1
