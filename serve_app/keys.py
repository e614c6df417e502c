"""API keys: only their SHA-256 hashes are stored, in one JSON file that every replica re-reads
when it changes, so a revoked key stops working on the next request without a restart.

    python -m serve_app.keys create --name alice     # prints the key once
    python -m serve_app.keys list
    python -m serve_app.keys revoke <key id>

A key reads `sp_<id>_<secret>`; the id finds the record, the hash of the whole key is compared
with `hmac.compare_digest`. The keys are random (192 bits), so a fast hash is enough.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soccerpredict.io import write_json

PREFIX = "sp"
log = logging.getLogger(__name__)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class KeyStore:
    path: Path
    _seen: tuple[int, int] | None = field(default=None, repr=False)
    _records: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def records(self) -> dict[str, dict[str, Any]]:
        """The file's records, re-read only when its modification time or size changed. A file
        that does not parse leaves the last good records in place (and is logged)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._records = None, {}
            return self._records
        if self._seen != (stat.st_mtime_ns, stat.st_size):
            try:
                self._records = _read(self.path)
            except KeyFileCorrupt as err:
                log.error("%s; still using the %d keys read before", err, len(self._records))
            self._seen = (stat.st_mtime_ns, stat.st_size)
        return self._records

    def verify(self, presented: str | None) -> str | None:
        """The key's id if it is known and not revoked, else None."""
        if not presented or presented.count("_") < 2:
            return None
        prefix, key_id, _ = presented.split("_", 2)
        record = self.records().get(key_id)
        if prefix != PREFIX or record is None or record.get("revoked"):
            return None
        return key_id if hmac.compare_digest(_digest(presented), record["sha256"]) else None

    def create(self, name: str) -> tuple[str, str]:
        with self._locked() as records:
            key_id = secrets.token_hex(4)
            while key_id in records:
                key_id = secrets.token_hex(4)
            key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
            records[key_id] = {
                "name": name,
                "sha256": _digest(key),
                "created": _now(),
                "revoked": None,
            }
        return key_id, key

    def revoke(self, key_id: str) -> None:
        with self._locked() as records:
            if key_id not in records:
                raise KeyError(f"no key with id {key_id!r}")
            records[key_id] = records[key_id] | {"revoked": _now()}

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Read-modify-write under a lock that threads of this process and other processes
        respect (flock on a file beside the store): no update is lost. The records are read
        from disk under the lock, never from a cache; a corrupt file is refused, not replaced."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with _THREAD_LOCK, open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                records = _read(self.path) if self.path.exists() else {}
                yield records
                write_json({"keys": records}, self.path, digits=None)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._seen = None  # re-read what was written, as another process would


class KeyFileCorrupt(ValueError):
    pass


_THREAD_LOCK = threading.Lock()  # flock is per open file: threads also need a lock of their own


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        keys = json.loads(path.read_text()).get("keys")
    except (ValueError, AttributeError) as err:
        raise KeyFileCorrupt(
            f"the key file {path} is not valid JSON ({err}); restore it from "
            "a backup or move it away (every key then has to be re-issued)"
        ) from None
    if not isinstance(keys, dict):
        raise KeyFileCorrupt(f"the key file {path} has no 'keys' object")
    return keys


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> None:
    from soccerpredict.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--conf", default="conf/runtime.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", help="create a key and print it once").add_argument(
        "--name", required=True, help="who or what the key is for"
    )
    sub.add_parser("list", help="ids, names, creation and revocation times (never the keys)")
    sub.add_parser("revoke", help="revoke a key by id").add_argument("key_id")
    args = parser.parse_args(argv)
    store = KeyStore(load_config(args.params, args.conf).runtime.serving.api_keys_file)
    if args.command == "create":
        try:
            key_id, key = store.create(args.name)
        except KeyFileCorrupt as err:
            sys.exit(str(err))
        print(f"created key {key_id} for {args.name!r}; it is shown only now:\n{key}")
    elif args.command == "list":
        for key_id, r in sorted(store.records().items(), key=lambda kv: kv[1]["created"]):
            state = f"revoked {r['revoked']}" if r["revoked"] else "active"
            print(f"{key_id}  {r['name']:<20} created {r['created']}  {state}")
    else:
        try:
            store.revoke(args.key_id)
        except (KeyError, KeyFileCorrupt) as err:
            sys.exit(str(err))
        print(f"revoked {args.key_id}")


if __name__ == "__main__":
    main()
