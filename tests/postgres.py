"""A real PostgreSQL (Debian's `postgresql`) for tests: a throw-away cluster made by initdb in a
temporary folder, started with pg_ctl on 127.0.0.1 and a free port, stopped afterwards. As
root, the server runs as the `postgres` user the package creates (initdb refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from serve_app.local import free_port


def postgres_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class Postgres:
    port: int
    admin: str
    admin_password: str

    def psql(
        self, user: str, password: str, sql: str, db: str = "postgres"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                user,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],
            env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            text=True,
            check=False,
        )

    def can_login(self, user: str, password: str) -> bool:
        return self.psql(user, password, "select 1").stdout.strip() == "1"


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """In a folder of its own under the system's temp folder: pytest's are root's alone."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="soccerpredict-pg-"))
    try:
        with _running(binaries, folder) as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _running(binaries: Path, folder: Path) -> Iterator[Postgres]:
    (folder / "admin.pw").write_text("admin-pw\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "admin.pw", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        _as_server_user(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                "admin",
                "--auth=scram-sha-256",
                f"--pwfile={folder / 'admin.pw'}",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder}"
    ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log")]
    subprocess.run(
        _as_server_user([*ctl, "-o", options, "-w", "-t", "30", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield Postgres(port, "admin", "admin-pw")
    finally:
        subprocess.run(
            _as_server_user([*ctl, "-m", "fast", "-w", "stop"]), check=False, capture_output=True
        )
