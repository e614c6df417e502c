"""Monitoring against the running app: a real Prometheus scrapes it under load, the quality of
served predictions is scored once results arrive, and every metric the dashboard and the alert
rules name is really exported."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml

from serve_app.local import free_port, wait_for_port, wait_until
from tests.monitoring import dashboard_exprs, exported_names, promql_metric_names, rule_exprs
from tests.projects import ROOT
from tests.served_app import App, upcoming_requests

pytestmark = [pytest.mark.slow, pytest.mark.ray]
PROMETHEUS = ROOT / "conf/prometheus"
NOT_YET_INCREMENTED = {"ray_soccerpredict_redis_errors_total"}


def _node_targets() -> list[str]:
    import ray

    return [
        f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}"
        for n in ray.nodes()
        if n.get("Alive") and n.get("MetricsExportPort")
    ]


def _ray_exposition() -> str:
    return "\n".join(httpx.get(f"http://{t}/metrics", timeout=10).text for t in _node_targets())


@pytest.fixture(scope="module")
def prometheus(app: App, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our own Prometheus on loopback: conf/prometheus/prometheus.yml with the test's targets."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus; .ci/run does)")
    work = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(p) for p in sorted((PROMETHEUS / "rules").glob("*.yml"))]
    app_port = app.url.rsplit(":", 1)[1]
    for job in config["scrape_configs"]:
        job.pop("file_sd_configs", None)  # Ray's discovery file is not written without a dashboard
        job.pop("scrape_interval", None)
        targets = _node_targets() if job["job_name"] == "ray" else [f"127.0.0.1:{app_port}"]
        job["static_configs"] = [{"targets": targets}]
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={work / 'data'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "log").open("w"),
    )
    try:
        wait_for_port(port, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def test_prometheus_scrapes_every_replica_with_the_expected_labels(
    app: App, key: str, prometheus: str
) -> None:
    _, bodies = upcoming_requests(app)
    with app.client(key) as http:
        for body in bodies[:30]:
            assert http.post("/predict", json=body).status_code == 200
        http.get("/model")
    wait_until(
        lambda: (
            sum(
                float(r["value"][1])
                for r in _query(
                    prometheus,
                    'ray_soccerpredict_http_requests_total{route="/predict",status="200"}',
                )
            )
            >= 30
        ),
        90,
    )
    series = _query(prometheus, 'ray_soccerpredict_http_requests_total{route="/predict"}')
    labels = series[0]["metric"]
    assert {"route", "status", "method", "WorkerId", "job"} <= set(labels)
    assert labels["job"] == "ray"  # from Ray's metrics agent, not the app's re-export
    assert (
        _query(prometheus, 'count(ray_soccerpredict_http_requests_total{job="soccerpredict-app"})')
        == []
    )
    # the front's own job is scraped every 30 s, from a random offset: wait for its first scrape
    wait_until(lambda: _query(prometheus, 'up{job="soccerpredict-app"}') != [], 75)
    assert _query(prometheus, 'up{job="soccerpredict-app"}')[0]["value"][1] == "1"
    versions = _query(prometheus, "ray_soccerpredict_model_version_info == 1")
    assert versions and "version" in versions[0]["metric"]
    replicas = _query(prometheus, "sum by (deployment) (ray_soccerpredict_replica_up)")
    assert {r["metric"]["deployment"] for r in replicas} == {"Ingress", "Model"}
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert rules and all(r.get("health", "ok") == "ok" for g in rules for r in g["rules"])


def test_served_predictions_are_scored_once_their_results_arrive(app: App, key: str) -> None:
    """The app logs what it serves; when the results come in (here: the project's raw table,
    which has the results `as_of` hides), `ray_jobs.quality` scores them and the app publishes
    the scores."""
    from ray_jobs.quality import run
    from soccerpredict.config import load_config

    _, bodies = upcoming_requests(app)
    with app.client(key) as http:
        served = [http.post("/predict", json=b).json() for b in bodies[:40]]
    assert all("probabilities" in s for s in served)
    time.sleep(2.5)  # the log is flushed to Redis once a second
    cfg = load_config(app.work / "params.yaml", app.work / "conf/runtime.yaml", env={}).rooted(
        app.work
    )
    arrived = app.work / "arrived.parquet"
    pd.read_parquet(app.work / "data/raw/matches.parquet").to_parquet(arrived)
    runtime = cfg.runtime.model_copy(
        update={"paths": cfg.runtime.paths.model_copy(update={"interim": arrived})}
    )
    report = run(cfg.model_copy(update={"runtime": runtime}))
    # what is scored is the batch stage's prediction of record of each upcoming match; the 40
    # served (some with the client's odds) are only counted
    assert report["scored_matches"] >= 40 and report["served_predictions"] >= 40
    rolling = report["windows"]["rolling"]["all"]["forecasters"]
    assert set(rolling) == {"model", "pinnacle_closing", "pre_closing_market"}
    assert 0.1 < rolling["model"]["rps"] < 0.3
    wait_until(
        lambda: (
            "ray_soccerpredict_quality_rps{" in _ray_exposition()
            and 'window="rolling"' in _ray_exposition()
        ),
        60,
    )


def test_the_dashboard_and_the_rules_name_only_exported_metrics(app: App, key: str) -> None:
    """Every metric a panel or a rule names is exported by the running app or Ray. Ray exports a
    counter from its first increment on, so the test first does what each one counts."""
    _, bodies = upcoming_requests(app)
    with app.client("sp_not_a_key") as http:
        assert http.get("/model").status_code == 401  # a refusal
    with app.client(key) as http:
        job = http.post("/predict/async", json=bodies[0]).json()["job_id"]  # an async job
        wait_until(lambda: http.get(f"/predict/async/{job}").json()["status"] == "done", 60)
    recorded = {name for name, expr in rule_exprs(PROMETHEUS / "rules") if ":" in name}
    used = {
        (where, name)
        for where, expr in [
            *dashboard_exprs(ROOT / "conf/grafana/dashboards/soccerpredict.json"),
            *rule_exprs(PROMETHEUS / "rules"),
        ]
        for name in promql_metric_names(expr)
    }

    def missing() -> list[str]:
        # Redis errors are provoked by the outage test of test_serve.py, which reads them by name
        exported = exported_names(_ray_exposition()) | {"up", *NOT_YET_INCREMENTED} | recorded
        return sorted({f"{name} (in {where})" for where, name in used if name not in exported})

    wait_until(
        lambda: not missing(),
        60,
        lambda: "not exported by the running app or Ray:\n" + "\n".join(missing()),
    )
