"""Move `champion` back to an earlier version (`python -m ray_jobs.rollback [--version N]`).

Without --version, the champion returns to the version that held the title before the current one.
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from typing import Any

from ray_jobs.cli import configure_logging
from ray_jobs.promote import append_history
from soccerpredict import registry
from soccerpredict.config import Config, load_config

log = logging.getLogger(__name__)


def previous_champion(history: list[dict[str, Any]], current: str) -> str | None:
    """The version that was champion before `current` took over, from the promotion history."""
    for entry in reversed(history):
        promoted_current = entry.get("promoted") and entry.get("version") == current
        if promoted_current and entry.get("previous_champion"):
            return str(entry["previous_champion"])
        if entry.get("action") == "rollback" and entry.get("version") == current:
            return str(entry["from_version"]) if entry.get("from_version") else None
    return None


def rollback(cfg: Config, version: str | None = None) -> dict[str, Any]:
    client, name = registry.tracking_client(cfg), cfg.runtime.mlflow.model_name
    current = registry.champion_version(client, name)
    if current is None:
        raise SystemExit(f"{name} has no champion to roll back")
    history_path = cfg.runtime.paths.promotion_history
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    target = version or previous_champion(history, str(current.version))
    if target is None:
        raise SystemExit(f"no earlier champion of {name} is recorded; pass --version N")
    client.get_model_version(name, target)  # raises with MLflow's message if it does not exist
    client.set_registered_model_alias(name, registry.CHAMPION, target)
    client.set_model_version_tag(name, target, "rolled_back_from", str(current.version))
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": "rollback",
        "version": str(target),
        "from_version": str(current.version),
    }
    append_history(entry, history_path)
    log.info("champion of %s moved back from v%s to v%s", name, current.version, target)
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", help="the version to make champion again")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--conf", default="conf/runtime.yaml")
    args = parser.parse_args(argv)
    configure_logging()
    rollback(load_config(args.params, args.conf), args.version)


if __name__ == "__main__":
    main()
