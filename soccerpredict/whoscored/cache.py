"""Raw pages, content-addressed: `blobs/<sha256>.gz` plus an index from URL path to blob.

A page marked final (a finished season's page, a month whose matches are all decided, a
finished match's centre) is served from here on a re-run; anything else is fetched again, so a
re-run of a past season fetches nothing and a re-run of the current one only what can change.
Identical pages share one blob. Written atomically; one writer (the job's driver).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soccerpredict.io import atomic_path, write_json, write_text


class PageCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        index = self.root / "index.json"
        self.index: dict[str, dict[str, Any]] = (
            json.loads(index.read_text()) if index.exists() else {}
        )

    def final(self, path: str) -> str | None:
        """The stored page if it can no longer change, else None (fetch it)."""
        entry = self.index.get(path)
        if not entry or not entry.get("final"):
            return None
        blob = self._blob(entry["sha256"])
        return gzip.decompress(blob.read_bytes()).decode() if blob.exists() else None

    def put(self, path: str, text: str, final: bool) -> str:
        data = text.encode()
        digest = hashlib.sha256(data).hexdigest()
        blob = self._blob(digest)
        if not blob.exists():
            with atomic_path(blob) as tmp:
                tmp.write_bytes(gzip.compress(data, mtime=0))  # mtime 0: same page, same bytes
        self.index[path] = {
            "sha256": digest,
            "final": final,
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return digest

    def mark_final(self, path: str) -> None:
        if path in self.index:
            self.index[path]["final"] = True

    def save(self) -> None:
        write_json(self.index, self.root / "index.json")

    def keep_copy(self, path: str, text: str, folder: Path) -> Path:
        """A readable copy of a page that failed to parse, for the report."""
        name = hashlib.sha256(path.encode()).hexdigest()[:16] + ".html"
        return write_text(text, folder / name)

    def _blob(self, digest: str) -> Path:
        return self.root / "blobs" / digest[:2] / f"{digest}.gz"
