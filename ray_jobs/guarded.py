"""A RayJob's entrypoint under its own deadline and the run guard:

    python -m ray_jobs.guarded --stage scrape --deadline-s 6600 --min-interval-s 72000 \
        -- python -m ray_jobs.scrape --league ENG-Premier-League --season current

Skips (exit 0, one log line saying why) when the previous run of the stage still holds the
lock or started less than `--min-interval-s` ago, the replayed ticks of a RayCronJob after
downtime included. Otherwise runs the command, stops it at `--deadline-s` (exit 124), and
frees the lock. Redis is the state instance (REDIS_URL, conf/runtime.yaml serving.redis_url).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid

from ray_jobs.cli import add_config_args, configure_logging, job_config
from soccerpredict.ops.deadline import run_with_deadline
from soccerpredict.ops.guard import RunGuard

log = logging.getLogger("ray_jobs.guarded")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--deadline-s", type=float, required=True)
    parser.add_argument("--grace-s", type=float, default=30.0)
    parser.add_argument("--min-interval-s", type=int, default=0)
    add_config_args(parser)
    parser.add_argument("command", nargs="+", help="after --")
    return parser.parse_args(argv)


def guarded_run(guard: RunGuard, command: list[str], deadline_s: float, grace_s: float) -> int:
    run_id = uuid.uuid4().hex[:12]
    decision = guard.acquire(run_id, time.time())
    log.info("%s", decision.reason)
    if not decision.run:
        return 0
    try:
        return run_with_deadline(command, deadline_s, grace_s)
    finally:
        guard.release(run_id)


def main(argv: list[str] | None = None) -> int:
    import redis

    args = parse(argv)
    configure_logging()
    url = job_config(args.params, args.conf).runtime.serving.redis_url
    guard = RunGuard(
        redis.Redis.from_url(url, decode_responses=True),
        args.stage,
        hold_s=int(args.deadline_s + args.grace_s + 60),
        min_interval_s=args.min_interval_s,
    )
    return guarded_run(guard, args.command, args.deadline_s, args.grace_s)


if __name__ == "__main__":
    sys.exit(main())
