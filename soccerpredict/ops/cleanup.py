"""Which RayJobs to delete, and a small in-cluster client that deletes them
(`python -m soccerpredict.ops.cleanup`, run by the CronJob in kuberay/base/rayjob-cleanup.yaml).

KubeRay v1.7.0 skips every deletion rule for RayJobs that attach to an existing cluster
(rayjob_controller.go returns before `deletionStrategy` and `ttlSecondsAfterFinished` when
`clusterSelector` is set), and its deadline only marks them Failed. Deleting a RayJob whose
Ray job is not terminal makes the operator's finalizer call `StopJob` on the dashboard. So:

* past deadline: started more than `activeDeadlineSeconds` ago and its Ray job not terminal
  (the operator may already say Failed/DeadlineExceeded): delete, which stops it;
* finished: terminal and ended more than `keep_s` ago, beyond the newest `keep_last` of its
  stage: delete, so history does not grow by ~780 objects a year.

Only this project's attached RayJobs are candidates (spec.metadata.app and clusterSelector).
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import sys
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
FINISHED_DEPLOYMENT = {"Complete", "Failed", "ValidationFailed"}
APP = "soccerpredict"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Deletion:
    name: str
    reason: str


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def ours(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return (spec.get("metadata") or {}).get("app") == APP and bool(spec.get("clusterSelector"))


def past_deadline(job: Obj, now: datetime) -> bool:
    status, deadline = job.get("status") or {}, (job.get("spec") or {}).get("activeDeadlineSeconds")
    start = _time(status.get("startTime"))
    if deadline is None or start is None or status.get("jobStatus") in TERMINAL:
        return False
    return now > start + timedelta(seconds=deadline)


def finished_at(job: Obj) -> datetime | None:
    """When a RayJob finished, or None while it has not (or cannot, see past_deadline)."""
    status = job.get("status") or {}
    if status.get("jobDeploymentStatus") not in FINISHED_DEPLOYMENT:
        return None
    if (
        status.get("jobStatus") not in TERMINAL
        and status.get("jobDeploymentStatus") != "ValidationFailed"
    ):
        return None
    meta = job.get("metadata") or {}
    return (
        _time(status.get("endTime"))
        or _time(status.get("startTime"))
        or _time(meta.get("creationTimestamp"))
    )


def select(jobs: list[Obj], now: datetime, keep_s: float, keep_last: int) -> list[Deletion]:
    """The RayJobs to delete, each with its reason; never one of another application."""
    out: list[Deletion] = []
    finished: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for job in filter(ours, jobs):
        name = job["metadata"]["name"]
        if past_deadline(job, now):
            out.append(Deletion(name, "past its activeDeadlineSeconds and still running"))
        elif (ended := finished_at(job)) is not None:
            finished[job["spec"]["metadata"].get("stage", "")].append((ended, name))
    for stage_jobs in finished.values():
        stage_jobs.sort(reverse=True)
        for ended, name in stage_jobs[keep_last:]:
            if now - ended > timedelta(seconds=keep_s):
                out.append(Deletion(name, f"finished {ended:%Y-%m-%d %H:%M}, older than kept"))
    return sorted(out, key=lambda d: d.name)


class InCluster:
    """The two calls the cleanup makes, with the pod's service-account token."""

    SA = Path("/var/run/secrets/kubernetes.io/serviceaccount")

    def __init__(self, host: str = "https://kubernetes.default.svc") -> None:
        self.host, self.namespace = host, (self.SA / "namespace").read_text().strip()
        self.context = ssl.create_default_context(cafile=str(self.SA / "ca.crt"))

    def _call(self, method: str, path: str) -> Obj:
        url = f"{self.host}/apis/ray.io/v1/namespaces/{self.namespace}/rayjobs{path}"
        token = (self.SA / "token").read_text().strip()  # re-read: the kubelet rotates it
        request = urllib.request.Request(
            url, method=method, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, context=self.context, timeout=30) as answer:
            return json.load(answer)

    def list(self) -> list[Obj]:
        return self._call("GET", "")["items"]

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-days", type=float, default=30.0)
    parser.add_argument("--keep-last", type=int, default=5, help="per stage, whatever their age")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="rayjob-cleanup: %(message)s", stream=sys.stdout)
    client = InCluster()
    chosen = select(client.list(), datetime.now(UTC), args.keep_days * 86400, args.keep_last)
    for deletion in chosen:
        log.info(
            "%s %s: %s",
            "would delete" if args.dry_run else "deleting",
            deletion.name,
            deletion.reason,
        )
        if not args.dry_run:
            client.delete(deletion.name)
    log.info("%d RayJob(s) %s", len(chosen), "selected" if args.dry_run else "deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
