"""Run a command and stop it at its deadline: the job enforces its own time limit.

KubeRay's `activeDeadlineSeconds` only marks a RayJob attached to an existing cluster as
Failed; the Ray job goes on (kuberay/README.md cites the operator source). So each entrypoint
runs under `run_with_deadline`: the command gets its own process group, which receives SIGTERM
at the deadline and SIGKILL `grace_s` later. A SIGTERM or SIGINT to this process (Ray's
`StopJob`) is passed on to the group too, since a new session is out of reach of Ray's own
process-group kill.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)
DEADLINE_EXIT = 124  # as coreutils `timeout`


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


@contextmanager
def _forward_stop_signals(pid: int) -> Iterator[None]:
    def forward(signum: int, _frame: FrameType | None) -> None:
        log.warning("received signal %d: passing it to the command", signum)
        _signal_group(pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to the command's process group; SIGKILL to whatever of the group (children
    included, even once the command itself exited) is left `grace_s` later."""
    _signal_group(proc.pid, signal.SIGTERM)
    end = time.monotonic() + grace_s
    while time.monotonic() < end:
        if proc.poll() is not None and not _group_alive(proc.pid):
            return
        time.sleep(0.1)
    log.error("still running %.0f s after SIGTERM: SIGKILL", grace_s)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def run_with_deadline(command: list[str], deadline_s: float, grace_s: float = 30.0) -> int:
    """The command's exit code, or DEADLINE_EXIT if the deadline stopped it."""
    proc = subprocess.Popen(command, start_new_session=True)
    with _forward_stop_signals(proc.pid):
        try:
            return proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            log.error("deadline of %.0f s passed: stopping %s", deadline_s, command)
            stop(proc, grace_s)
            return DEADLINE_EXIT
