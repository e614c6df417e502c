"""How the served and batch predictions did once their results arrived
(`python -m ray_jobs.quality`; the DVC stage `quality`, after new results come in by ingest or
scrape). Exports the app's prediction log from Redis to Parquet files, scores every prediction
of a played match beside the bookmakers' prices (per league, all matches and the last N) and
writes `reports/quality.json`, which the Serve app publishes as gauges for the dashboard and
the "model behind bookmakers" alert.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ray_jobs.cli import run_stage
from soccerpredict.config import Config
from soccerpredict.io import write_json, write_parquet
from soccerpredict.quality import LOG_COLUMNS, PROBS, STREAM, quality_report

log = logging.getLogger(__name__)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def export_served(redis_url: str, folder: Path, batch: int = 10_000) -> int:
    """Move the served-prediction stream to Parquet; entries leave Redis only once on disk."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    moved = 0
    try:
        while entries := client.xrange(STREAM, count=batch):
            # redis-py types an entry's id and fields as optional; XRANGE always returns both
            ids = [entry_id for entry_id, _ in entries if entry_id is not None]
            rows = [
                {_text(k): _text(v) for k, v in fields.items()} for _, fields in entries if fields
            ]
            first, last = _text(ids[0]), _text(ids[-1])
            write_parquet(
                pd.DataFrame(rows, columns=LOG_COLUMNS), folder / f"{first}_{last}.parquet"
            )
            client.xdel(STREAM, *ids)
            moved += len(entries)
    except redis.RedisError as err:
        log.warning("served predictions not exported (%s); scoring what is on disk", err)
    return moved


def read_log(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("**/*.parquet"))
    if not files:
        return pd.DataFrame(columns=LOG_COLUMNS)
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return frame.astype(dict.fromkeys(PROBS, float))


def run(cfg: Config) -> dict[str, Any]:
    folder = Path(cfg.runtime.paths.prediction_log)
    moved = export_served(cfg.runtime.serving.redis_url, folder / "served")
    matches = pd.read_parquet(cfg.runtime.paths.interim)
    p = cfg.params.monitoring
    report = quality_report(read_log(folder), matches, p.rolling_matches, p.behind_margin_rps)
    write_json(report, cfg.runtime.paths.quality)
    overall = report["windows"]["rolling"].get("all", {}).get("forecasters", {})
    log.info(
        "%d served predictions exported; %d matches scored at %s; rolling RPS %s",
        moved,
        report["scored_matches"],
        datetime.now(UTC).date(),
        {k: round(v["rps"], 4) for k, v in overall.items()} or "none yet",
    )
    return report


def main(argv: list[str] | None = None) -> None:
    run_stage(run, __doc__, argv)


if __name__ == "__main__":
    main()
