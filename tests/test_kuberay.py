"""The KubeRay deployment, offline: every manifest against the v1.7.0 CRDs and core Kubernetes
rules, broken copies refused with readable messages, the kustomize build, the images (every
file and module named exists and is in the build context; the serve image covers the Serve
app's imports without training-only packages), and the resource isolation between Serve and
the batch work."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from serve_app.deploy_config import cluster_config
from tests import deployment as d
from tests.k8s_checks import check_objects
from tests.kuberay_schema import CRD_DIR, CRD_FILES, REPO, validate_file, validate_resource

# docker/ is no package (and `docker` is the Docker SDK's name): load the script by its path
_spec = importlib.util.spec_from_file_location(
    "image_requirements", REPO / "docker/requirements.py"
)
assert _spec is not None and _spec.loader is not None
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)
TRAINING_ONLY, image_requirements, name_of = (
    images.TRAINING_ONLY,
    images.image_requirements,
    images.name_of,
)
WORKDIR = re.findall(r"^WORKDIR (\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)[-1]
MANIFESTS = sorted({*d.resource_files(d.DEV), *d.JOBS.glob("*.yaml")})
RAY_FILES = [
    f
    for f in MANIFESTS
    if any(doc.get("apiVersion", "").startswith("ray.io/") for doc in d.documents(f))
]
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def crds() -> None:
    if not all((CRD_DIR / name).is_file() for name in CRD_FILES.values()):
        pytest.skip(f"KubeRay v1.7.0 CRDs not found in {CRD_DIR} (set KUBERAY_CRD_DIR)")


@pytest.fixture
def cluster() -> Obj:
    return next(o for o in d.documents(d.BASE / "ray-cluster.yaml") if o["kind"] == "RayCluster")


def ray_jobs() -> list[tuple[str, Obj]]:
    """(name, RayJob spec) of every RayJob and every RayCronJob's template."""
    out = []
    for obj in d.objects(RAY_FILES):
        meta = obj["metadata"]
        label = f"{obj['kind']}/{meta.get('name') or meta.get('generateName')}"
        if obj["kind"] == "RayJob":
            out.append((label, obj["spec"]))
        elif obj["kind"] == "RayCronJob":
            out.append((label, obj["spec"]["jobTemplate"]))
    return out


# -- against the CRDs --------------------------------------------------------------------------


@pytest.mark.parametrize("path", RAY_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_kuberay_manifest_validates(crds: None, path: Path) -> None:
    results = validate_file(path)
    assert results and all(errors == [] for errors in results.values()), results


def test_every_yaml_under_kuberay_is_applied_generated_or_a_one_off() -> None:
    used = {*MANIFESTS, *d.generator_files(d.DEV), d.SECRETS}
    used |= {f / "kustomization.yaml" for f in (d.BASE, d.DEV)}
    used |= {
        (f / c).resolve()
        for f in (d.BASE, d.DEV)
        for c in d.kustomization(f).get("configurations", [])
    }
    assert sorted(set(d.KUBERAY.rglob("*.yaml")) - used) == []
    assert d.SECRETS not in d.resource_files(d.DEV)  # kubectl cannot decrypt it


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "spec.headGroupSpec.rayStartParam",
            {},
            (
                "spec.headGroupSpec.rayStartParam: unknown field "
                "'rayStartParam' (did you mean 'rayStartParams'?)"
            ),
        ),
        (
            "spec.workerGroupSpecs.0.replicas",
            "1",
            "spec.workerGroupSpecs[0].replicas: expected integer, found string '1'",
        ),
        (
            "spec.authOptions.mode",
            "Token",
            "spec.authOptions.mode: expected one of ['disabled', 'token'], found string 'Token'",
        ),
        (
            "spec.headGroupSpec.template.spec.containers.0.ports.0.containerPort",
            "6379",
            "spec.headGroupSpec.template.spec.containers[0].ports[0].containerPort: expected integer",
        ),
    ],
)
def test_broken_copies_of_the_cluster_are_refused(
    crds: None, cluster: Obj, path: str, value: Any, message: str
) -> None:
    *parents, last = path.split(".")
    node: Any = cluster
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    errors = validate_resource(cluster)
    assert [e for e in errors if e.startswith(message)], errors


def test_a_rayservice_without_its_cluster_is_refused(crds: None) -> None:
    service = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "soccerpredict"},
        "spec": {"serveConfigV2": (REPO / "conf/serve.yaml").read_text()},
    }
    assert validate_resource(service) == ["spec.rayClusterConfig: required field is missing"]


# -- core Kubernetes objects, the kustomize build -----------------------------------------------


def test_core_objects_are_well_formed_and_linked() -> None:
    objects = d.objects(d.resource_files(d.DEV))
    assert check_objects(objects, d.generated_configmaps(d.DEV), d.secret_keys()) == []


def test_the_checks_catch_broken_links() -> None:
    objects = d.objects(d.resource_files(d.DEV))
    svc = next(
        o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "redis-state"
    )
    svc["spec"]["selector"] = {"app.kubernetes.io/name": "rediss"}
    redis = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "redis-state"
    )
    container = redis["spec"]["template"]["spec"]["containers"][0]
    container["ports"].append({"containerPort": 6380, "name": "redis"})
    mlflow = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow"
    )
    mlflow["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"][
        "key"
    ] = "PASSWORD"
    assert check_objects(objects, d.generated_configmaps(d.DEV), d.secret_keys()) == [
        (
            "Deployment/mlflow: spec.template.spec.containers[0]: Secret 'soccerpredict-mlflow' has "
            "no key 'PASSWORD'"
        ),
        (
            "Deployment/redis-state: spec.template.spec.containers[0].ports: duplicate port name "
            "'redis'"
        ),
        (
            "Service/redis-state: spec.selector {'app.kubernetes.io/name': 'rediss'} matches no pod "
            "template"
        ),
    ]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_the_dev_overlay_builds_and_validates(crds: None, tmp_path: Path) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(d.DEV)], capture_output=True, text=True, check=True
    ).stdout
    built = [o for o in yaml.safe_load_all(out) if o]
    assert {o["metadata"].get("namespace") for o in built if o["kind"] != "Namespace"} == {
        "soccerpredict-dev"
    }
    rendered = tmp_path / "dev.yaml"
    rendered.write_text(out)
    assert all(errors == [] for errors in validate_file(rendered).values())
    images = {c["image"] for o in built for c in containers(o)}
    ours = {i.split(":")[0] for i in images if i.startswith("soccerpredict-")}
    assert ours == {"soccerpredict-serve", "soccerpredict-jobs", "soccerpredict-mlflow"}
    assert (
        check_objects(
            built,
            {o["metadata"]["name"] for o in built if o["kind"] == "ConfigMap"},
            d.secret_keys(),
        )
        == []
    )


def containers(obj: Obj) -> list[Obj]:
    from tests.k8s_checks import pod_templates

    return [c for _, t in pod_templates(obj) for c in t["spec"]["containers"]]


def test_conf_rules_and_dashboards_are_all_given_to_the_cluster() -> None:
    listed = {
        Path(f).name
        for gen in d.kustomization(REPO / "conf")["configMapGenerator"]
        for f in gen.get("files", [])
        if "rules/" in f
    }
    assert listed == {p.name for p in (REPO / "conf/prometheus/rules").glob("*.yml")}
    dashboards = {
        Path(f).name
        for gen in d.kustomization(REPO / "conf")["configMapGenerator"]
        for f in gen.get("files", [])
        if "dashboards/" in f
    }
    assert dashboards == {p.name for p in (REPO / "conf/grafana/dashboards").glob("*.json")}
    uid = yaml.safe_load(
        (REPO / "conf/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    cluster_sources = yaml.safe_load((d.BASE / "monitoring/grafana-datasources.yaml").read_text())
    assert cluster_sources["datasources"][0]["uid"] == uid
    local = yaml.safe_load((REPO / "conf/prometheus/prometheus.yml").read_text())
    cluster = yaml.safe_load((d.BASE / "monitoring/prometheus.yml").read_text())
    assert [j["job_name"] for j in cluster["scrape_configs"]] == [
        j["job_name"] for j in local["scrape_configs"]
    ]


# -- Serve on the shared cluster: config, auth, isolation -------------------------------------


def test_the_deployed_serve_config_is_conf_serve_yaml_with_the_pod_host() -> None:
    local = yaml.safe_load((REPO / "conf/serve.yaml").read_text())
    deployed = cluster_config(local, "0.0.0.0")
    assert local["http_options"]["host"] == "127.0.0.1"
    assert deployed["http_options"] == {**local["http_options"], "host": "0.0.0.0"}
    assert {k: v for k, v in deployed.items() if k != "http_options"} == {
        k: v for k, v in local.items() if k != "http_options"
    }


def test_the_cluster_needs_a_token_and_keeps_the_dashboard_inside(cluster: Obj) -> None:
    spec = cluster["spec"]
    assert spec["authOptions"] == {"mode": "token", "secretName": "soccerpredict-ray-auth"}
    assert "auth_token" in d.secret_keys()["soccerpredict-ray-auth"]
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"
    for svc in d.objects(MANIFESTS):
        if svc["kind"] == "Service":
            assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]
            assert 8265 not in [p["port"] for p in svc["spec"]["ports"]]


def serve_demand(config: Obj) -> float:
    """`serve` units the app needs at its largest, plus one replica being replaced."""
    deployments = config["applications"][0]["deployments"]
    per = [
        (
            dep["ray_actor_options"]["resources"]["serve"],
            dep.get("autoscaling_config", {}).get("max_replicas", dep.get("num_replicas", 1)),
        )
        for dep in deployments
    ]
    return sum(units * n for units, n in per) + max(units for units, _ in per)


def start_params(group: Obj) -> tuple[float, dict[str, float]]:
    params = group["rayStartParams"]
    return float(params["num-cpus"]), yaml.safe_load(
        params.get("resources", '"{}"').strip('"').replace('\\"', '"')
    ) or {}


def test_the_head_runs_serve_with_conf_serve_env_and_the_service_calls_the_front(
    cluster: Obj,
) -> None:
    from serve_app.local import serve_environment

    (generator,) = [
        g for g in d.kustomization(REPO / "conf")["configMapGenerator"] if g["name"] == "serve-env"
    ]
    assert generator["envs"] == ["serve.env"]
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"configMapRef": {"name": "serve-env"}} in head["envFrom"]
    assert not {e["name"] for e in head["env"]} & set(serve_environment())  # one home
    serve_config = yaml.safe_load((REPO / "conf/serve.yaml").read_text())
    runtime = yaml.safe_load((REPO / "conf/runtime.yaml").read_text())
    ports = {p["name"]: p["containerPort"] for p in head["ports"]}
    assert "serve" not in ports  # Serve's proxy is the front's backup, not what clients call
    assert ports["serve-proxy"] == serve_config["http_options"]["port"]
    # the front: HAProxy (serve_app/front.py) in the head pod, on the pod's port 8000, with the
    # direct-ingress range of conf/serve.env and the mounted Serve config (its proxy port)
    (front,) = [
        c
        for c in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
        if c["name"] == "front"
    ]
    assert front["command"][:3] == ["python", "-m", "serve_app.front"]
    assert "--serve-config=/etc/soccerpredict/serve.yaml" in front["command"]
    assert {"configMapRef": {"name": "serve-env"}} in front["envFrom"]
    assert {p["name"]: p["containerPort"] for p in front["ports"]} == {
        "serve": runtime["serving"]["front_port"]
    }
    assert front["securityContext"]["readOnlyRootFilesystem"] is True
    assert front["image"] == head["image"]  # the serve image carries Debian's haproxy
    service = next(
        o
        for o in d.documents(d.BASE / "ray-cluster.yaml")
        if o["kind"] == "Service" and o["metadata"]["name"] == "soccerpredict-serve"
    )
    assert service["spec"]["ports"] == [{"name": "serve", "port": 8000, "targetPort": "serve"}]


def test_serve_replicas_take_the_serve_pool_and_leave_the_cpus(cluster: Obj) -> None:
    config = yaml.safe_load((REPO / "conf/serve.yaml").read_text())
    for dep in config["applications"][0]["deployments"]:
        assert dep["ray_actor_options"]["num_cpus"] == 0, dep["name"]
        assert dep["ray_actor_options"]["resources"]["serve"] > 0, dep["name"]
    head_cpus, head_resources = start_params(cluster["spec"]["headGroupSpec"])
    assert head_cpus == 0 and head_resources["serve"] >= serve_demand(config)
    for group in cluster["spec"]["workerGroupSpecs"]:
        assert "serve" not in start_params(group)[1]
    runtime = yaml.safe_load((REPO / "conf/runtime.yaml").read_text())
    assert runtime["ray"]["resources"]["serve"] >= serve_demand(config) - 0.5  # no upgrade room
    # Ray refuses a node whose custom resource quantity is not a whole number
    assert float(head_resources["serve"]).is_integer()
    assert all(float(v).is_integer() for v in runtime["ray"]["resources"].values())


def test_jobs_run_on_the_batch_worker_beside_a_full_search(cluster: Obj) -> None:
    """Drivers need a Ray CPU (so they land where the jobs image is) and the worker fits the
    largest driver plus tune.max_concurrent_trials one-CPU trials."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    worker_cpus = start_params(cluster["spec"]["workerGroupSpecs"][0])[0]
    jobs = ray_jobs()
    assert len(jobs) == 6
    for label, job in jobs:
        assert job["clusterSelector"] == {"ray.io/cluster": "soccerpredict"}, label
        assert job["submissionMode"] == "HTTPMode" and "rayClusterSpec" not in job, label
        assert (
            job["shutdownAfterJobFinishes"],
            job["ttlSecondsAfterFinished"],
            job["backoffLimit"],
        ) == (False, 0, 0), label
        assert 0 < job["entrypointNumCpus"] <= 1 and job["activeDeadlineSeconds"] > 0, label
        # a driver does not start in the image's WORKDIR: scripts by absolute path, modules
        # through PYTHONPATH (job_config finds params.yaml and conf/ from there)
        command = job["entrypoint"].split()
        assert command[:2] == ["python", "-m"] or command[1].startswith(f"{WORKDIR}/"), label
    assert worker_cpus >= 1 + params["tune"]["max_concurrent_trials"]


# -- images: what the Dockerfile and the manifests name exists --------------------------------


def named_files() -> set[str]:
    """Repository files named by the RayJobs' entrypoints, the head's command, the Dockerfile
    and the scripts those run."""
    texts = [job["entrypoint"] for _, job in ray_jobs()]
    texts += [" ".join(c.get("args", [])) for o in d.objects(RAY_FILES) for c in containers(o)]
    texts.append((REPO / "Dockerfile").read_text())
    names: set[str] = set()
    for _ in range(2):  # the scripts named, then what they name
        for text in texts:
            names |= {
                m.replace(".", "/") + ".py"
                for m in re.findall(r"python -m ([\w.]+)", text)
                if m.split(".")[0] not in sys.stdlib_module_names
            }
            names |= set(re.findall(r"\b((?:scripts|conf|docker)/[\w./-]+\.(?:sh|ya?ml|py))", text))
        texts = [(REPO / n).read_text() for n in names if n.endswith(".sh")]
    return names | {
        "pyproject.toml",
        "params.yaml",
        "dvc.yaml",
        "dvc.lock",
        ".dvc/config",
        "conf/runtime.yaml",
        "conf/serve.yaml",
    }


def test_every_named_file_exists_and_is_in_the_build_context() -> None:
    names = named_files()
    assert {
        "scripts/cluster_pipeline.sh",
        "scripts/serve_deploy.sh",
        "ray_jobs/drift.py",
        "ray_jobs/scrape.py",
        "serve_app/deploy_config.py",
        "docker/requirements.py",
    } <= names
    patterns = d.dockerignore_patterns()
    for name in sorted(names):
        assert (REPO / name).is_file(), name
        assert not d.docker_excluded(name, patterns), f"{name} is excluded by .dockerignore"
    for private in (
        ".git/HEAD",
        ".venv/bin/python",
        "data/raw/matches.parquet",
        "mlflow.db",
        "kuberay/overlays/dev/secrets.enc.yaml",
        "var/api_keys.json",
        "tests/x.py",
    ):
        assert d.docker_excluded(private, patterns), private


def test_the_serve_app_entrypoint_exists() -> None:
    config = yaml.safe_load((REPO / "conf/serve.yaml").read_text())
    module, _, func = config["applications"][0]["import_path"].partition(":")
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    assert f"def {func}(" in source


def test_the_serve_image_covers_the_apps_imports_without_training_packages() -> None:
    from importlib.metadata import packages_distributions

    serve = image_requirements("serve", REPO / "pyproject.toml")
    assert {name_of(r) for r in serve}.isdisjoint(TRAINING_ONLY)
    installed = d.distribution_closure(serve)
    providers = packages_distributions()
    imports = d.third_party_imports("serve_app")
    assert {"ray", "mlflow", "xgboost", "fastapi", "redis"} <= imports
    missing = {m for m in imports if not {d.normalise(p) for p in providers.get(m, [])} & installed}
    assert missing == set()
    training = {"dvc", "great_expectations", "evidently", "optuna", "playwright"}
    assert imports.isdisjoint(training)


def test_the_jobs_image_has_every_dependency() -> None:
    pyproject = REPO / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    jobs = {name_of(r) for r in image_requirements("jobs", pyproject)}
    assert jobs == {name_of(r) for r in project["dependencies"]} | {"dvc-s3"}
    mlflow = {name_of(r) for r in image_requirements("mlflow", pyproject)}
    assert mlflow == {"mlflow", "psycopg2-binary", "boto3"}


def test_the_clusters_artifact_root_leaves_the_experiment_to_the_server(tmp_path: Path) -> None:
    """The workers' and the mlflow-users Job's MLFLOW_ARTIFACT_ROOT is the same, the server's
    proxied store `mlflow-artifacts:/`; the config keeps it a URI and a new experiment gets the
    tracking server's own location (tests/test_mlflow_users.py: `mlflow-artifacts:/<id>` on a
    real server, where its auth finds the experiment)."""
    from soccerpredict import registry
    from soccerpredict.config import load_config

    worker = next(o for o in d.documents(d.BASE / "ray-cluster.yaml") if o["kind"] == "RayCluster")[
        "spec"
    ]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    job = d.documents(d.BASE / "mlflow-users.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    uri = next(e["value"] for e in worker["env"] if e["name"] == "MLFLOW_ARTIFACT_ROOT")
    assert uri == next(e["value"] for e in job["env"] if e["name"] == "MLFLOW_ARTIFACT_ROOT")
    assert uri.rstrip("/") == registry.SERVER_ARTIFACTS
    cfg = load_config(
        REPO / "params.yaml",
        REPO / "conf/runtime.yaml",
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "MLFLOW_ARTIFACT_ROOT": uri},
    ).rooted(tmp_path)
    assert cfg.runtime.mlflow.artifact_root == uri
    client = registry.tracking_client(cfg)
    experiment = client.get_experiment(registry.experiment_id(client, cfg))
    assert not experiment.artifact_location.startswith(uri)  # the store's default, not ours
