"""MLflow users with least privilege (`python -m soccerpredict.ops.mlflow_users`, run as the
admin by the Job in kuberay/base/mlflow-users.yaml). Idempotent: run it again after a rotation.

The tracking server runs MLflow's basic-auth app with `default_permission = NO_PERMISSIONS`.
Only this step and the server hold the admin. It makes sure that:

* the project's experiment exists (`soccerpredict.registry.experiment_id`: on the cluster the
  artifact root `mlflow-artifacts:/`, so the server places it at `mlflow-artifacts:/<id>`, the
  layout its auth reads an artifact's experiment from) and so does the registered model;
* the **pipeline** user (Ray worker: jobs) exists with its password from its Secret, and has
  EDIT on both: runs, logged models, artifacts, versions, tags, aliases. Not MANAGE: it cannot
  delete them or change who may read them;
* the **serve** user (Ray head: Serve, the deploy loop) exists and has READ on both: the
  champion, its runs' metrics and artifacts. It cannot register a version, move an alias, or
  write a run.

A user that exists gets its password set again (rotation: new Secret, then this step). A grant
that differs is replaced. MLflow 3.17 grants through its unified API
(`/api/3.0/mlflow/users/permissions/grant`, resource types `experiment` and `registered_model`);
the per-resource `.../experiments/permissions/create` routes of older versions are gone.

Environment: MLFLOW_TRACKING_URI, MLFLOW_ARTIFACT_ROOT (soccerpredict.config), the admin as
MLFLOW_TRACKING_USERNAME/_PASSWORD, and MLFLOW_PIPELINE_USERNAME/_PASSWORD,
MLFLOW_SERVE_USERNAME/_PASSWORD.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)
READ, EDIT = "READ", "EDIT"
ROLES = {"PIPELINE": EDIT, "SERVE": READ}  # env prefix MLFLOW_<ROLE>_ -> its permission


@dataclass(frozen=True)
class User:
    username: str
    password: str
    permission: str


def users_from_env(env: Mapping[str, str]) -> list[User]:
    missing = [
        f"MLFLOW_{role}_{part}"
        for role in ROLES
        for part in ("USERNAME", "PASSWORD")
        if not env.get(f"MLFLOW_{role}_{part}")
    ]
    if missing:
        raise SystemExit(f"missing environment: {', '.join(missing)}")
    users = [
        User(env[f"MLFLOW_{role}_USERNAME"], env[f"MLFLOW_{role}_PASSWORD"], permission)
        for role, permission in ROLES.items()
    ]
    admin = env.get("MLFLOW_TRACKING_USERNAME")
    if admin in {u.username for u in users} or len({u.username for u in users}) < len(users):
        raise SystemExit("the pipeline, serve and admin users must be three different users")
    return users


class AuthApi:
    """The basic-auth app's REST API, as the admin."""

    def __init__(self, tracking_uri: str, admin: tuple[str, str], timeout_s: float = 60) -> None:
        self.http = httpx.Client(base_url=tracking_uri.rstrip("/"), auth=admin, timeout=timeout_s)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.http.request(method, path, **kwargs)
        if answer.status_code in (401, 403):
            raise SystemExit(f"{method} {path}: {answer.status_code}: the admin was refused")
        return answer

    @staticmethod
    def _already_exists(answer: httpx.Response) -> bool:
        return answer.status_code == 400 and "RESOURCE_ALREADY_EXISTS" in answer.text

    def ensure_user(self, user: User) -> str:
        answer = self.call(
            "POST",
            "/api/2.0/mlflow/users/create",
            json={"username": user.username, "password": user.password},
        )
        if answer.is_success:
            return "created"
        if not self._already_exists(answer):
            answer.raise_for_status()
            raise RuntimeError(answer.text)  # a 3xx: not a server we know
        self.call(
            "PATCH",
            "/api/2.0/mlflow/users/update-password",
            json={"username": user.username, "password": user.password},
        ).raise_for_status()
        return "password set"

    def current(self, username: str, resource_type: str, resource_id: str) -> str:
        answer = self.call(
            "GET",
            "/api/3.0/mlflow/users/permissions/get",
            params={
                "username": username,
                "resource_type": resource_type,
                "resource_id": resource_id,
            },
        )
        answer.raise_for_status()
        return str(answer.json().get("permission", ""))

    def ensure_grant(self, user: User, resource_type: str, resource_id: str) -> str:
        if self.current(user.username, resource_type, resource_id) == user.permission:
            return "kept"
        grant = {
            "username": user.username,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "permission": user.permission,
        }
        answer = self.call("POST", "/api/3.0/mlflow/users/permissions/grant", json=grant)
        if self._already_exists(answer):  # another permission: replace it
            self.call(
                "POST",
                "/api/3.0/mlflow/users/permissions/revoke",
                json={k: grant[k] for k in ("username", "resource_type", "resource_id")},
            ).raise_for_status()
            answer = self.call("POST", "/api/3.0/mlflow/users/permissions/grant", json=grant)
        answer.raise_for_status()
        return "granted"


def wait_for_server(tracking_uri: str, timeout_s: float) -> None:
    """The server answers /health (a first apply starts this Job beside MLflow)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=5).is_success:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"MLflow at {tracking_uri} did not answer in {timeout_s:.0f} s")
        time.sleep(3)


def ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name)
        log.info("registered model %s created", name)


def bootstrap(env: Mapping[str, str], wait_s: float = 300) -> dict[str, str]:
    """Users, experiment, registered model and grants; what was done to each, by name."""
    from soccerpredict import registry
    from soccerpredict.config import project_config

    users = users_from_env(env)
    admin = (env.get("MLFLOW_TRACKING_USERNAME", ""), env.get("MLFLOW_TRACKING_PASSWORD", ""))
    if not all(admin):
        raise SystemExit("the admin's MLFLOW_TRACKING_USERNAME/_PASSWORD are not set")
    cfg = project_config()
    uri = cfg.runtime.mlflow.tracking_uri
    if not uri.startswith(("http://", "https://")):
        raise SystemExit(f"{uri} is not a tracking server: users exist only on one")
    wait_for_server(uri, wait_s)
    client = registry.tracking_client(cfg)  # the admin, from the environment
    experiment = registry.experiment_id(client, cfg)
    model = cfg.runtime.mlflow.model_name
    ensure_registered_model(client, model)
    api, done = AuthApi(uri, admin), {}
    for user in users:
        done[user.username] = api.ensure_user(user)
        for resource_type, resource_id in (("experiment", experiment), ("registered_model", model)):
            outcome = api.ensure_grant(user, resource_type, resource_id)
            done[f"{user.username} {user.permission} {resource_type} {resource_id}"] = outcome
    return done


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for what, outcome in bootstrap(os.environ).items():
        print(f"mlflow-users: {what}: {outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
