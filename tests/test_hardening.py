"""The dev overlay as rendered by `kubectl kustomize`, checked the way an operator would: every
pod non-root with no privilege to gain, read-only root where it can be, no service-account
token unless it calls the API, no password on a command line, every pod behind a
NetworkPolicy, immutable image tags, entrypoint deadlines inside the operator's, and requests
that fit the node beside the operator and the control plane."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from serve_app.local import free_port, wait_for_port
from tests import deployment as d
from tests.k8s_checks import pod_templates

Obj = dict[str, Any]
# the pods that call the Kubernetes API (pod discovery; RayJob cleanup) keep their token
API_CLIENTS = {"prometheus", "rayjob-cleanup"}
# DVC writes dvc.lock beside dvc.yaml and Chromium its profile (kuberay/base/ray-cluster.yaml)
WRITABLE_ROOT = {("soccerpredict", "ray-worker")}
# The dev node (kuberay/overlays/dev: 4 vCPU / 16 GiB) less what is not ours: the KubeRay
# v1.7.0 operator (helm chart values.yaml: 100m / 512Mi, requests = limits) and the control
# plane with its DaemonSets (kind: apiserver 250m, controller-manager 200m, scheduler 100m,
# etcd 100m, 2 x coredns 100m, kindnet 100m; ~1.5 GiB, an assumption not measured here).
NODE_MILLICPU, NODE_MIB = 4000, 16 * 1024
OTHERS_MILLICPU, OTHERS_MIB = 100 + 1000, 512 + 1536
OUR_TAG = re.compile(r"^\d+\.\d+\.\d+-[0-9a-f]{7,40}$")


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (kustomize) not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(d.DEV)], capture_output=True, text=True, check=True
    ).stdout
    return [o for o in yaml.safe_load_all(out) if o]


def pods(objects: list[Obj]) -> list[tuple[Obj, str, Obj]]:
    return [(o, path, t) for o in objects for path, t in pod_templates(o)]


def who(obj: Obj, template: Obj) -> str:
    return template["metadata"]["labels"]["app.kubernetes.io/name"]


def test_every_pod_runs_unprivileged(rendered: list[Obj]) -> None:
    problems = []
    for obj, path, template in pods(rendered):
        spec, name = template["spec"], who(obj, template)
        pod = spec.get("securityContext") or {}
        if not (
            pod.get("runAsNonRoot") and pod.get("seccompProfile") == {"type": "RuntimeDefault"}
        ):
            problems.append(f"{name} {path}: pod securityContext {pod}")
        if spec.get("automountServiceAccountToken") is not (name in API_CLIENTS):
            problems.append(
                f"{name}: automountServiceAccountToken {spec.get('automountServiceAccountToken')}"
            )
        for c in spec["containers"]:
            sc = c.get("securityContext") or {}
            read_only = (name, c["name"]) not in WRITABLE_ROOT
            if (
                sc.get("allowPrivilegeEscalation") is not False
                or sc.get("capabilities") != {"drop": ["ALL"]}
                or sc.get("readOnlyRootFilesystem") is not read_only
            ):
                problems.append(f"{name}/{c['name']}: container securityContext {sc}")
    assert problems == []


def test_no_password_is_on_a_command_line(rendered: list[Obj]) -> None:
    for obj, _, template in pods(rendered):
        for c in template["spec"]["containers"]:
            line = " ".join(c.get("command", []) + c.get("args", []))
            assert not re.search(r"requirepass|PASSWORD\)|--password", line), (
                who(obj, template),
                line,
            )


def test_every_pod_is_behind_a_network_policy(rendered: list[Obj]) -> None:
    policies = [o for o in rendered if o["kind"] == "NetworkPolicy"]
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    ]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]

    def selects(policy: Obj, labels: dict[str, str]) -> bool:
        selector = policy["spec"]["podSelector"]
        if not selector:
            return False
        match = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
        return match and all(
            labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])
        )

    for obj, _, template in pods(rendered):
        labels = template["metadata"]["labels"]
        assert any(selects(p, labels) for p in policies), (
            f"{who(obj, template)}: no policy opens it"
        )
    for policy in policies:
        if policy["spec"]["podSelector"]:
            assert any(selects(policy, t["metadata"]["labels"]) for _, _, t in pods(rendered)), (
                policy["metadata"]["name"]
            )


def test_each_pod_has_its_own_mlflow_user(rendered: list[Obj]) -> None:
    """The admin's Secret reaches the MLflow server and the mlflow-users Job only; the Ray head
    (Serve) logs in as the read-only user, the worker (jobs) as the pipeline's."""
    holders: dict[str, set[str]] = {}
    for obj, _, template in pods(rendered):
        name = who(obj, template)
        labels = template["metadata"]["labels"]
        name = labels.get("app.kubernetes.io/component", name) if name == "soccerpredict" else name
        for c in template["spec"]["containers"]:
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef") or {}
                if ref.get("name", "").startswith("soccerpredict-mlflow-"):
                    holders.setdefault(ref["name"], set()).add(name)
    assert holders == {
        "soccerpredict-mlflow-auth": {"mlflow", "mlflow-users"},
        "soccerpredict-mlflow-pipeline": {"ray-worker", "mlflow-users"},
        "soccerpredict-mlflow-serve": {"ray-head", "mlflow-users"},
    }


def test_images_have_immutable_tags(rendered: list[Obj]) -> None:
    for obj, _, template in pods(rendered):
        for c in template["spec"]["containers"]:
            image, _, tag = c["image"].rpartition(":")
            assert image and tag not in ("", "latest", "dev"), c["image"]
            if image.startswith("soccerpredict-"):
                assert OUR_TAG.match(tag), c["image"]
    cluster = next(o for o in rendered if o["kind"] == "RayCluster")
    assert cluster["spec"]["upgradeStrategy"] == {"type": "Recreate"}


def test_entrypoints_stop_themselves_before_the_operators_deadline() -> None:
    from tests.test_kuberay import ray_jobs

    for label, job in ray_jobs():
        words = job["entrypoint"].split()
        assert words[:3] == ["python", "-m", "ray_jobs.guarded"], label
        value = {w: words[i + 1] for i, w in enumerate(words) if w.startswith("--") and w != "--"}
        own = float(value["--deadline-s"]) + float(value["--grace-s"])
        assert own + 60 <= job["activeDeadlineSeconds"], label


def millicpu(value: str | float) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def mebibytes(value: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(value[:-2]) * units[value[-2:]] if value[-2:] in units else float(value) / 2**20


def test_the_requests_fit_the_node(rendered: list[Obj]) -> None:
    cpu = mem = 0.0
    for obj, path, template in pods(rendered):
        replicas = 1
        if obj["kind"] == "RayCluster" and path.startswith("spec.workerGroupSpecs"):
            replicas = obj["spec"]["workerGroupSpecs"][int(path.split("[")[1][0])]["replicas"]
        elif obj["kind"] in ("Deployment", "StatefulSet"):
            replicas = obj["spec"].get("replicas", 1)
        for c in template["spec"]["containers"]:
            requests = c["resources"]["requests"]
            cpu += replicas * millicpu(requests["cpu"])
            mem += replicas * mebibytes(requests["memory"])
    assert cpu + OTHERS_MILLICPU <= NODE_MILLICPU, f"{cpu:.0f}m requested"
    assert mem + OTHERS_MIB <= NODE_MIB, f"{mem:.0f} MiB requested"
    print(f"dev overlay requests: {cpu:.0f}m CPU, {mem:.0f} MiB")


@pytest.mark.parametrize(
    ("instance", "policy", "aof"), [("cache", "allkeys-lru", "no"), ("state", "noeviction", "yes")]
)
def test_the_redis_configs_run_as_written(
    tmp_path: Path, instance: str, policy: str, aof: str
) -> None:
    """kuberay/base/redis/<instance>.conf in a real redis-server, only the port, address and
    paths changed: the password comes from the included file and the policies hold."""
    import redis

    port = free_port()
    (tmp_path / "auth.conf").write_text("requirepass s3cret-from-the-file\n")
    text = (d.BASE / f"redis/redis-{instance}.conf").read_text()
    text = text.replace("port 6379", f"port {port}").replace("bind 0.0.0.0", "bind 127.0.0.1")
    text = text.replace("/etc/redis/secret/auth.conf", str(tmp_path / "auth.conf"))
    text = text.replace("dir /data", f"dir {tmp_path}")
    conf = tmp_path / "redis.conf"
    conf.write_text(text)  # the cache's working directory is the cwd below
    proc = subprocess.Popen(
        ["redis-server", str(conf)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        client = redis.Redis(port=port, password="s3cret-from-the-file", decode_responses=True)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == policy
        assert client.config_get("appendonly")["appendonly"] == aof
        assert int(client.config_get("maxmemory")["maxmemory"]) > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_code_in_the_images_is_not_writable_by_its_user() -> None:
    from tests.kuberay_schema import REPO

    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--chown" not in dockerfile
    stages = dockerfile.split("\nFROM ")
    for stage in stages:
        if "COPY . /app" in stage:  # root's files, then the unprivileged user
            assert stage.index("COPY . /app") < stage.index("USER 1000")
            assert "chown -R 1000:1000 /app\n" not in stage
