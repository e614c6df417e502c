"""A Ray head of the benchmark's own, stopped without touching any other Ray on the machine.

`ray stop` ends every Ray process of the user on the machine: on a shared machine that is
other people's clusters too. The head here gets a temporary directory of its own; its head
processes name that directory on their command lines, so they and everything they started
(the workers, the Serve replicas) are found and ended by process id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import psutil


@dataclass
class RayHead:
    address: str
    temp_dir: str

    def processes(self) -> list[psutil.Process]:
        me = psutil.Process()
        mine = {me.pid, *(p.pid for p in me.parents())}  # never this benchmark or its shell
        heads = [
            p
            for p in psutil.process_iter(["cmdline"])
            if p.pid not in mine
            and any(self.temp_dir in part for part in (p.info["cmdline"] or []))
        ]
        found = {p.pid: p for p in heads}
        for p in heads:
            try:
                found.update({c.pid: c for c in p.children(recursive=True)})
            except psutil.NoSuchProcess:
                continue
        return list(found.values())

    def stop(self, timeout_s: float = 20.0) -> None:
        procs = self.processes()
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                continue
        _, alive = psutil.wait_procs(procs, timeout=timeout_s)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                continue
        psutil.wait_procs(alive, timeout=5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(
    port: int, env: dict[str, str], resources: dict[str, float], dashboard_port: int | None = None
) -> RayHead:
    """`ray start --head` on 127.0.0.1:`port` with this environment (the cluster's processes
    read Serve's switches from it) and 2 CPUs; with `dashboard_port`, the dashboard on
    127.0.0.1 there, as scripts/run_pipeline.sh starts it (otherwise none)."""
    if dashboard_port is None:
        dashboard = ["--include-dashboard=false"]
    else:
        dashboard = ["--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}"]
    temp_dir = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths are long
    head = RayHead(f"127.0.0.1:{port}", temp_dir)
    try:
        subprocess.run(
            [
                "ray",
                "start",
                "--head",
                "--num-cpus=2",
                f"--port={port}",
                f"--resources={json.dumps(resources)}",
                f"--temp-dir={temp_dir}",
                *dashboard,
                "--disable-usage-stats",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    except BaseException:
        time.sleep(1)
        head.stop()
        raise
    return head
