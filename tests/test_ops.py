"""The project's side of stopping and scheduling jobs on the shared cluster, for real: the
entrypoint deadline kills a whole process tree, the run guard (a real Redis) skips overlapping
and replayed runs, and the cleanup picks exactly the RayJobs to delete."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from ray_jobs.guarded import guarded_run
from soccerpredict.ops.cleanup import select
from soccerpredict.ops.deadline import DEADLINE_EXIT, run_with_deadline
from soccerpredict.ops.guard import RunGuard
from tests.kuberay_schema import REPO

PY = sys.executable


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_exit_code_passes_through() -> None:
    assert run_with_deadline([PY, "-c", "raise SystemExit(3)"], deadline_s=20) == 3


def test_the_deadline_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # a child that ignores SIGTERM, started by the command: both must be gone afterwards
    script = (
        f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', "
        f"'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"time.sleep(60)']); open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    start = time.monotonic()
    assert run_with_deadline([PY, "-c", script], deadline_s=2, grace_s=1) == DEADLINE_EXIT
    assert time.monotonic() - start < 10
    child = int(pid_file.read_text())
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    assert not alive(child)


def test_a_stop_signal_to_the_wrapper_reaches_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    command = (
        f"import signal, sys, time\n"
        f"def bye(*_):\n    open({str(marker)!r}, 'w').write('x'); sys.exit(0)\n"
        f"signal.signal(signal.SIGTERM, bye); time.sleep(60)"
    )
    driver = (
        "import sys; from soccerpredict.ops.deadline import run_with_deadline; "
        f"sys.exit(run_with_deadline({[PY, '-c', command]!r}, 60, 5))"
    )
    wrapper = subprocess.Popen([PY, "-c", driver], cwd=REPO)
    time.sleep(1.5)
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=20) == 0
    assert marker.exists()


@pytest.fixture
def store(redis_port: int) -> redis.Redis:
    client = redis.Redis(port=redis_port, decode_responses=True)
    for key in client.scan_iter("run:*"):
        client.delete(key)
    return client


def test_the_guard_lets_one_run_in_and_skips_overlaps_and_replays(store: redis.Redis) -> None:
    guard = RunGuard(store, "scrape", hold_s=60, min_interval_s=3600)
    first = guard.acquire("a", now=1_000_000)
    assert first.run
    running = guard.acquire("b", now=1_000_001)
    assert not running.run and "still running" in running.reason
    assert guard.release("a")
    replay = guard.acquire("c", now=1_000_002)  # a missed tick replayed seconds later
    assert not replay.run and "started 2 s ago" in replay.reason
    assert guard.acquire("d", now=1_003_601).run  # the next day's tick
    assert not guard.release("a")  # only the holder frees the lock


def test_a_lock_expires_so_a_killed_run_cannot_block_for_ever(store: redis.Redis) -> None:
    guard = RunGuard(store, "drift", hold_s=1, min_interval_s=0)
    assert guard.acquire("killed", now=time.time()).run
    assert not guard.acquire("next", now=time.time()).run
    time.sleep(1.2)
    assert guard.acquire("next", now=time.time()).run


def test_a_guarded_run_runs_once_and_frees_the_lock(store: redis.Redis, tmp_path: Path) -> None:
    guard = RunGuard(store, "retrain", hold_s=60, min_interval_s=0)
    assert guarded_run(guard, [PY, "-c", "raise SystemExit(5)"], 20, 1) == 5
    assert store.get("run:retrain:lock") is None
    store.set("run:retrain:lock", "other")
    marker = tmp_path / "ran"
    assert guarded_run(guard, [PY, "-c", f"open({str(marker)!r}, 'w')"], 20, 1) == 0
    assert not marker.exists()  # skipped: the other run holds the lock


# -- cleanup selection ------------------------------------------------------------------------

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def rayjob(
    name: str,
    stage: str = "scrape",
    *,
    started_h: float | None = 1.0,
    ended_h: float | None = None,
    job: str = "RUNNING",
    deployment: str = "Running",
    deadline_s: int = 7200,
    app: str = "soccerpredict",
    attached: bool = True,
) -> dict[str, Any]:
    def at(hours_ago: float | None) -> str | None:
        return None if hours_ago is None else (NOW - timedelta(hours=hours_ago)).isoformat()

    spec: dict[str, Any] = {
        "metadata": {"app": app, "stage": stage},
        "activeDeadlineSeconds": deadline_s,
    }
    if attached:
        spec["clusterSelector"] = {"ray.io/cluster": "soccerpredict"}
    status = {"jobStatus": job, "jobDeploymentStatus": deployment, "startTime": at(started_h)}
    if ended_h is not None:
        status["endTime"] = at(ended_h)
    return {"metadata": {"name": name}, "spec": spec, "status": status}


def test_the_cleanup_deletes_jobs_past_their_deadline_that_still_run() -> None:
    jobs = [
        rayjob("on-time", started_h=1.0),
        rayjob("late", started_h=3.0),
        rayjob("late-marked-failed", started_h=3.0, deployment="Failed"),
        rayjob("late-but-done", started_h=3.0, ended_h=0.5, job="SUCCEEDED", deployment="Complete"),
        rayjob("not-started", started_h=None, job="", deployment="New"),
    ]
    chosen = {d.name: d.reason for d in select(jobs, NOW, keep_s=30 * 86400, keep_last=5)}
    assert set(chosen) == {"late", "late-marked-failed"}
    assert "activeDeadlineSeconds" in chosen["late"]


def test_the_cleanup_prunes_old_finished_jobs_but_keeps_the_newest_per_stage() -> None:
    days = [1, 10, 40, 50, 60, 70, 80, 90]
    jobs = [
        rayjob(
            f"scrape-{d}",
            started_h=24 * d + 1,
            ended_h=24 * d,
            job="SUCCEEDED",
            deployment="Complete",
        )
        for d in days
    ]
    jobs += [
        rayjob(
            "drift-old", "drift", started_h=2401, ended_h=2400, job="FAILED", deployment="Failed"
        )
    ]
    chosen = [d.name for d in select(jobs, NOW, keep_s=30 * 86400, keep_last=5)]
    # the 5 newest scrapes stay whatever their age; of the rest, those older than 30 days go
    assert chosen == ["scrape-70", "scrape-80", "scrape-90"]
    # with 2 kept, scrape-10 stays for its age (< 30 days), the drift run as its stage's newest
    chosen = [d.name for d in select(jobs, NOW, keep_s=30 * 86400, keep_last=2)]
    assert chosen == [f"scrape-{d}" for d in (40, 50, 60, 70, 80, 90)]
    chosen = [d.name for d in select(jobs, NOW, keep_s=30 * 86400, keep_last=1)]
    assert chosen == [f"scrape-{d}" for d in (40, 50, 60, 70, 80, 90)]
    assert [d.name for d in select(jobs, NOW, keep_s=30 * 86400, keep_last=0)] == sorted(
        ["drift-old", "scrape-40", "scrape-50", "scrape-60", "scrape-70", "scrape-80", "scrape-90"]
    )


def test_the_cleanup_never_touches_other_rayjobs() -> None:
    jobs = [
        rayjob("someone-elses", started_h=99.0, app="other"),
        rayjob("own-cluster", started_h=99.0, attached=False),
        rayjob(
            "old-other",
            started_h=9999,
            ended_h=9998,
            job="SUCCEEDED",
            deployment="Complete",
            app="other",
        ),
    ]
    assert select(jobs, NOW, keep_s=0, keep_last=0) == []


# -- MLflow users (the real server: tests/test_mlflow_users.py) -------------------------------


def test_the_mlflow_users_come_from_their_secrets_and_stay_apart() -> None:
    from soccerpredict.ops.mlflow_users import EDIT, READ, users_from_env

    env = {
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_PIPELINE_USERNAME": "soccerpredict-pipeline",
        "MLFLOW_PIPELINE_PASSWORD": "p" * 43,
        "MLFLOW_SERVE_USERNAME": "soccerpredict-serve",
        "MLFLOW_SERVE_PASSWORD": "s" * 43,
    }
    users = {u.username: u.permission for u in users_from_env(env)}
    assert users == {"soccerpredict-pipeline": EDIT, "soccerpredict-serve": READ}
    with pytest.raises(SystemExit, match="MLFLOW_SERVE_PASSWORD"):
        users_from_env({**env, "MLFLOW_SERVE_PASSWORD": ""})
    with pytest.raises(SystemExit, match="three different users"):  # Serve as the admin
        users_from_env({**env, "MLFLOW_SERVE_USERNAME": "admin"})
    with pytest.raises(SystemExit, match="three different users"):
        users_from_env({**env, "MLFLOW_SERVE_USERNAME": "soccerpredict-pipeline"})
