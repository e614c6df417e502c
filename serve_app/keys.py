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
import hashlib
import hmac
import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soccerpredict.io import write_json

PREFIX = "sp"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class KeyStore:
    path: Path
    _seen: tuple[int, int] | None = field(default=None, repr=False)
    _records: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def records(self) -> dict[str, dict[str, Any]]:
        """The file's records, re-read only when its modification time or size changed."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._records = None, {}
            return self._records
        if self._seen != (stat.st_mtime_ns, stat.st_size):
            self._records = json.loads(self.path.read_text()).get("keys", {})
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
        records = dict(self.records())
        key_id = secrets.token_hex(4)
        while key_id in records:
            key_id = secrets.token_hex(4)
        key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"
        records[key_id] = {"name": name, "sha256": _digest(key), "created": _now(),
                           "revoked": None}
        self._save(records)
        return key_id, key

    def revoke(self, key_id: str) -> None:
        records = dict(self.records())
        if key_id not in records:
            raise KeyError(f"no key with id {key_id!r}")
        records[key_id] = records[key_id] | {"revoked": _now()}
        self._save(records)

    def _save(self, records: dict[str, dict[str, Any]]) -> None:
        write_json({"keys": records}, self.path)
        self._seen = None  # re-read what was written, as another process would


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> None:
    from soccerpredict.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--conf", default="conf/runtime.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", help="create a key and print it once").add_argument(
        "--name", required=True, help="who or what the key is for")
    sub.add_parser("list", help="ids, names, creation and revocation times (never the keys)")
    sub.add_parser("revoke", help="revoke a key by id").add_argument("key_id")
    args = parser.parse_args(argv)
    store = KeyStore(load_config(args.params, args.conf).runtime.serving.api_keys_file)
    if args.command == "create":
        key_id, key = store.create(args.name)
        print(f"created key {key_id} for {args.name!r}; it is shown only now:\n{key}")
    elif args.command == "list":
        for key_id, r in sorted(store.records().items(), key=lambda kv: kv[1]["created"]):
            state = f"revoked {r['revoked']}" if r["revoked"] else "active"
            print(f"{key_id}  {r['name']:<20} created {r['created']}  {state}")
    else:
        try:
            store.revoke(args.key_id)
        except KeyError as err:
            sys.exit(str(err))
        print(f"revoked {args.key_id}")


if __name__ == "__main__":
    main()
