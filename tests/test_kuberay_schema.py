"""KubeRay manifests against the real v1.7.0 CRDs: the scrape RayCronJob, broken copies of it,
and minimal RayCluster, RayJob and RayService written here."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kuberay_schema import (
    CRD_DIR,
    CRD_FILES,
    REPO,
    cel_rules,
    cel_verdict,
    crd_schema,
    validate_file,
    validate_resource,
)

SCRAPE = REPO / "kuberay" / "base" / "ray-cronjob.scrape.yaml"
Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def crds() -> float:
    """Seconds spent parsing the four CRDs, once for the whole run."""
    if not all((CRD_DIR / name).is_file() for name in CRD_FILES.values()):
        pytest.skip(f"KubeRay v1.7.0 CRDs not found in {CRD_DIR} (set KUBERAY_CRD_DIR)")
    start = time.perf_counter()
    for kind in CRD_FILES:
        crd_schema(kind)
    return time.perf_counter() - start


@pytest.fixture
def scrape() -> Manifest:
    return yaml.safe_load(SCRAPE.read_text())


def cluster_spec(cpu: Any = 2, memory: Any = "4Gi") -> Manifest:
    container = {
        "name": "ray-head",
        "image": "rayproject/ray:2.60.0",
        "ports": [
            {"containerPort": 6379, "name": "gcs"},
            {"containerPort": 8265, "name": "dashboard"},
        ],
        "resources": {
            "requests": {"cpu": "500m", "memory": memory},
            "limits": {"cpu": cpu, "memory": memory},
        },
    }
    worker = {
        "name": "ray-worker",
        "image": "rayproject/ray:2.60.0",
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
    }
    return {
        "rayVersion": "2.60.0",
        "headGroupSpec": {
            "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
            "template": {"spec": {"containers": [container]}},
        },
        "workerGroupSpecs": [
            {
                "groupName": "cpu",
                "replicas": 1,
                "minReplicas": 0,
                "maxReplicas": 4,
                "rayStartParams": {},
                "template": {"spec": {"containers": [worker]}},
            }
        ],
    }


def resource(kind: str, spec: Manifest) -> Manifest:
    return {
        "apiVersion": "ray.io/v1",
        "kind": kind,
        "metadata": {"name": "soccerpredict", "labels": {"app": "soccerpredict"}},
        "spec": spec,
    }


def ray_cluster(**quantities: Any) -> Manifest:
    return resource("RayCluster", cluster_spec(**quantities))


def head(manifest: Manifest) -> Manifest:
    return manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


# -- the scrape RayCronJob ----------------------------------------------------------------------


def test_scrape_cronjob_validates_against_the_crd(crds: float) -> None:
    assert validate_file(SCRAPE) == {"RayCronJob/soccerpredict-scrape-daily": []}


def test_scrape_cronjob_follows_the_operator_rules(scrape: Manifest) -> None:
    """What KubeRay checks after admission (utils.ValidateRayJobSpec), not in the CRD: an invalid
    template would only surface as an InvalidRayCronJobSpec event, and no job would ever run."""
    assert scrape["spec"]["schedule"] == "30 5 * * *"
    assert scrape["spec"]["timeZone"] == "Europe/London"
    job = scrape["spec"]["jobTemplate"]
    assert job["clusterSelector"] == {"ray.io/cluster": "soccerpredict"}
    assert "rayClusterSpec" not in job and "jobId" not in job
    assert job["submissionMode"] == "HTTPMode" and "submitterPodTemplate" not in job
    assert job["shutdownAfterJobFinishes"] is False and job["ttlSecondsAfterFinished"] == 0
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] > 0
    assert job["entrypoint"].startswith("python -m ray_jobs.guarded --stage scrape ")
    assert " -- python -m ray_jobs.scrape " in job["entrypoint"]
    runtime_env = yaml.safe_load(job["runtimeEnvYAML"])
    assert runtime_env["env_vars"]["WHOSCORED_BASE_URL"].startswith("https://")


def set_path(manifest: Manifest, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = manifest
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value


BROKEN = [
    (
        "spec.jobTemplate.entrypointt",
        "python -m x",
        "spec.jobTemplate.entrypointt: unknown field 'entrypointt' (did you mean 'entrypoint'?)",
    ),
    ("spec.concurrencyPolicy", "Forbid", "spec.concurrencyPolicy: unknown field"),
    ("spec.schedule", 5, "spec.schedule: expected string, found integer 5"),
    ("spec.schedule", KeyError, "spec.schedule: required field is missing"),
    ("spec.jobTemplate", KeyError, "spec.jobTemplate: required field is missing"),
    ("spec.timeZone", "", "spec.timeZone: expected at least 1 characters"),
    (
        "spec.jobTemplate.shutdownAfterJobFinishes",
        "false",
        "spec.jobTemplate.shutdownAfterJobFinishes: expected boolean, found string 'false'",
    ),
    (
        "spec.jobTemplate.activeDeadlineSeconds",
        2**31,
        "spec.jobTemplate.activeDeadlineSeconds: expected a value <= 2147483647",
    ),
    (
        "spec.jobTemplate.preRunningDeadlineSeconds",
        0,
        "spec.jobTemplate.preRunningDeadlineSeconds: expected a value >= 1, found integer 0",
    ),
    (
        "spec.jobTemplate.clusterSelector",
        {"ray.io/cluster": 1},
        "spec.jobTemplate.clusterSelector['ray.io/cluster']: expected string, found integer 1",
    ),
    (
        "spec.jobTemplate.deletionStrategy",
        {"onSuccess": {"policy": "Keep"}, "onFailure": {"policy": "DeleteNone"}},
        (
            "spec.jobTemplate.deletionStrategy.onSuccess.policy: expected one of ['DeleteCluster', "
            "'DeleteWorkers', 'DeleteSelf', 'DeleteNone'], found string 'Keep'"
        ),
    ),
    (
        "spec.jobTemplate.deletionStrategy",
        {"onSuccess": {"policy": "DeleteSelf"}},
        "spec.jobTemplate.deletionStrategy: deletionStrategy requires either BOTH onSuccess",
    ),
    (
        "spec.jobTemplate.managedBy",
        "me",
        "spec.jobTemplate.managedBy: the managedBy field value must be either",
    ),
    (
        "metadata.labels",
        {"app.kubernetes.io/part-of": "soccer predict"},
        "metadata.labels['app.kubernetes.io/part-of']: expected a label value",
    ),
    ("metadata.name", KeyError, "metadata.name: required field is missing"),
    ("apiVersion", "ray.io/v1alpha1", "apiVersion: expected 'ray.io/v1', found string"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), BROKEN, ids=[f"{p}={v!r}"[:60] for p, v, _ in BROKEN]
)
def test_broken_scrape_copies_are_rejected_with_the_path(
    crds: float, scrape: Manifest, path: str, value: Any, message: str
) -> None:
    set_path(scrape, path, value)
    errors = validate_resource(scrape)
    assert any(error.startswith(message) for error in errors), errors


def test_every_error_is_reported_not_just_the_first(crds: float, scrape: Manifest) -> None:
    chosen = [
        case
        for case in BROKEN
        if case[0].startswith("spec.jobTemplate.")
        and case[0] != "spec.jobTemplate.deletionStrategy"
    ]
    for path, value, _ in chosen:
        set_path(scrape, path, copy.deepcopy(value))
    errors = validate_resource(scrape)
    assert len(errors) == len(chosen) == 6
    assert all(any(e.startswith(message) for e in errors) for _, _, message in chosen), errors


def test_submission_mode_is_a_free_string_in_the_crd(crds: float, scrape: Manifest) -> None:
    """v1.7.0 declares no enum for submissionMode: a typo passes admission, so the operator-rules
    test above pins our value instead."""
    scrape["spec"]["jobTemplate"]["submissionMode"] = "HttpMode"
    assert validate_resource(scrape) == []


# -- minimal RayCluster, RayJob, RayService -----------------------------------------------------


def test_minimal_cluster_job_and_service_validate(crds: float) -> None:
    job = {
        "entrypoint": "python -m ray_jobs.train",
        "rayClusterSpec": cluster_spec(),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": 60,
    }
    service = {"rayClusterConfig": cluster_spec(), "serveConfigV2": "applications: []\n"}
    for manifest in (ray_cluster(), resource("RayJob", job), resource("RayService", service)):
        assert validate_resource(manifest) == [], manifest["kind"]


@pytest.mark.parametrize(
    ("cpu", "memory"), [(2, "4Gi"), ("500m", 4294967296), ("0.5", "4G"), (2.0, "512Mi")]
)
def test_int_or_string_quantities_are_accepted(crds: float, cpu: Any, memory: Any) -> None:
    assert validate_resource(ray_cluster(cpu=cpu, memory=memory)) == []


LIMITS = "spec.headGroupSpec.template.spec.containers[0].resources.limits"


@pytest.mark.parametrize(
    ("cpu", "message"),
    [
        ([1], f"{LIMITS}.cpu: expected integer or string, found list [1]"),
        (0.5, f"{LIMITS}.cpu: expected integer or string, found number 0.5 (quote fractions"),
        ("half", f"{LIMITS}.cpu: expected a string matching"),
        (True, f"{LIMITS}.cpu: expected integer or string, found boolean True"),
    ],
)
def test_bad_quantities_are_rejected(crds: float, cpu: Any, message: str) -> None:
    errors = validate_resource(ray_cluster(cpu=cpu))
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_ray_start_params_must_be_strings(crds: float) -> None:
    cluster = ray_cluster()
    cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    assert validate_resource(cluster) == [
        "spec.headGroupSpec.rayStartParams.num-cpus: expected string, found integer 0"
    ]


def test_map_lists_need_unique_keys(crds: float) -> None:
    cluster = ray_cluster()
    containers = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    containers.append(copy.deepcopy(containers[0]))
    # protocol is a map key too; its default (TCP) makes these two ports the same entry
    containers[0]["ports"].append({"containerPort": 6379, "protocol": "TCP"})
    errors = validate_resource(cluster)
    assert (
        "spec.headGroupSpec.template.spec.containers[1]: duplicate key name='ray-head', "
        "already at spec.headGroupSpec.template.spec.containers[0]" in errors
    )
    assert any(
        "containers[0].ports[2]: duplicate key containerPort=6379, protocol='TCP'" in e
        for e in errors
    ), errors


def test_what_the_crds_require(crds: float) -> None:
    """RayService needs rayClusterConfig; a RayJob needs neither rayClusterSpec nor
    clusterSelector in the schema (the operator refuses a job with neither, after admission);
    a cluster spec needs headGroupSpec, its template, and named containers."""
    service = validate_resource(resource("RayService", {"serveConfigV2": "applications: []\n"}))
    assert service == ["spec.rayClusterConfig: required field is missing"]
    assert validate_resource(resource("RayJob", {"entrypoint": "python -m x"})) == []
    assert validate_resource(resource("RayCluster", {})) == [
        "spec.headGroupSpec: required field is missing"
    ]
    cluster = ray_cluster()
    del head(cluster)["name"]
    assert validate_resource(cluster) == [
        "spec.headGroupSpec.template.spec.containers[0].name: required field is missing"
    ]


def test_nulls_are_pruned_only_on_known_fields(crds: float) -> None:
    cluster = ray_cluster()
    head(cluster)["resources"]["requests"] = None
    assert validate_resource(cluster) == []
    head(cluster)["resource"] = None
    assert validate_resource(cluster) == [
        (
            "spec.headGroupSpec.template.spec.containers[0].resource: unknown field 'resource' "
            "(did you mean 'resources'?)"
        )
    ]


# -- files, kinds, CEL, speed -------------------------------------------------------------------


def test_validate_file_checks_only_ray_documents(crds: float, tmp_path: Path) -> None:
    broken = ray_cluster()
    broken["spec"]["enableInTreeAutoscaling"] = "yes"
    documents: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}},
        ray_cluster(),
        broken,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}},
    ]
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    assert validate_file(path) == {
        "RayCluster/soccerpredict": [],
        "RayCluster/soccerpredict#2": [
            "spec.enableInTreeAutoscaling: expected boolean, found string 'yes'"
        ],
    }


def test_unknown_kind_and_version_are_refused_before_any_crd_is_read() -> None:
    assert validate_resource({"apiVersion": "ray.io/v1", "kind": "RayThing"}) == [
        "kind: expected one of RayCluster, RayJob, RayService, RayCronJob, found string 'RayThing'"
    ]
    assert validate_resource([]) == ["<root>: expected object, found list []"]


@pytest.mark.parametrize(
    ("rule", "value", "verdict"),
    [
        ("self in ['a', 'b']", "a", True),
        ("self in ['a', 'b']", "c", False),
        ("((has(self.x) && has(self.y)) || has(self.z))", {"x": 1}, False),
        ("((has(self.x) && has(self.y)) || has(self.z))", {"z": 1}, True),
        ("!((has(self.x) || has(self.y)) && has(self.z))", {"x": 1, "z": 1}, False),
        ("self == oldSelf", "a", None),
        ("self.size() > 2", "abc", None),
    ],
)
def test_cel_subset(rule: str, value: Any, verdict: bool | None) -> None:
    assert cel_verdict(rule, value) is verdict


def test_only_transition_rules_go_unchecked(crds: float) -> None:
    for kind in CRD_FILES:
        unchecked = {rule for _, rule, checked in cel_rules(kind) if not checked}
        assert unchecked == {"self == oldSelf"}, kind


def test_fast_enough_for_the_suite(crds: float) -> None:
    assert crds < 5.0  # about 0.7 s for the four CRDs with CSafeLoader, once per run
    assert crd_schema("RayCronJob") is crd_schema("RayCronJob")
    start = time.perf_counter()
    for _ in range(50):
        validate_file(SCRAPE)
        validate_resource(ray_cluster())
    assert time.perf_counter() - start < 2.0


def test_validation_leaves_the_manifest_unchanged(crds: float) -> None:
    cluster = ray_cluster()
    head(cluster)["resources"]["requests"] = None
    before = copy.deepcopy(cluster)
    validate_resource(cluster)
    assert cluster == before
