"""The reliability suite's smoke run: `benchmarks.reliability --quick` against the real app in a
child process, both Redis instances and loopback clients; the figures are for the README, the
test checks that every probe ran and that the targets that do not depend on speed are met."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.slow
def test_the_quick_suite_runs_every_probe_and_writes_its_report(tmp_path: Path) -> None:
    from benchmarks.reliability import main

    out = tmp_path / "reliability.json"
    main(["--quick", "--out", str(out)])
    report = json.loads(out.read_text())
    assert {"idle", "unauthenticated_flood", "metrics_flood", "big_body"} <= set(report)
    assert "uvicorn" in report["measured"]
    assert report["not_run"], "the probes still missing are named"
    targets = report["targets"]
    for name in (
        "33 MB body: 413, RSS within +50 MB",
        "Redis gone: 0 failed sync",
        "jobs instance killed: every accepted job readable",
        "0 lost key updates",
    ):
        assert targets[name]["met"], (name, targets[name])
    assert report["unauthenticated_flood"]["flood_statuses"].keys() <= {"401", "429"}


def test_a_kill_summary_counts_failures_the_longest_request_and_the_recovery() -> None:
    from benchmarks.reliability import kill_summary

    killed_at = 3.0  # (start, end, status, Retry-After present) of each request
    records = [
        (0.0, 0.05, "200", False),
        (2.9, 3.2, "502", False),  # failed, not a retryable 503
        (3.0, 4.5, "200", False),  # slow: disturbed, the longest
        (5.0, 5.1, "503", True),  # failed, retryable
        (6.0, 6.1, "200", False),
    ]
    summary = kill_summary(records, killed_at)
    assert summary["statuses"] == {"200": 3, "502": 1, "503": 1}
    assert (summary["failed"], summary["answers_500"], summary["not_503_with_retry_after"]) == (
        2,
        0,
        1,
    )
    assert summary["longest_s"] == 1.5
    assert summary["recovery_s"] == 2.1  # the end of the last disturbed request, 5.1 s


def test_listening_names_each_socket_and_whether_it_is_on_the_host() -> None:
    import socket

    import psutil

    from benchmarks.reliability import listening

    with (
        socket.create_server(("127.0.0.1", 0)) as mine,
        socket.create_server(("0.0.0.0", 0)) as everywhere,
    ):
        on_host, off_host = mine.getsockname()[1], everywhere.getsockname()[1]
        found = {s["port"]: s for s in listening([psutil.Process()])}
    assert found[on_host]["on_host"] is True
    assert (found[off_host]["on_host"], found[off_host]["address"]) == (False, "0.0.0.0")


def test_an_async_flood_summary_counts_refusals_ends_and_drops() -> None:
    from benchmarks.reliability import async_flood_summary

    posts = [  # (status, Retry-After present, job id)
        ("202", False, "a"),
        ("202", False, "b"),
        ("202", False, "c"),
        ("202", False, "d"),
        ("503", True, None),
        ("503", False, None),  # refused without Retry-After
        ("ReadTimeout", False, None),  # neither a 429 nor a 503
    ]
    jobs = {  # (last status, reason, seen ended this long after SIGCONT)
        "a": ("done", None, 1.5),
        "b": ("failed", "no prediction within 30 s; retry", 0.5),
        "c": ("failed", None, 2.0),
        "d": ("404", None, None),
    }
    s = async_flood_summary(posts, jobs, unwritten_logged=2)
    assert (s["posts"], s["accepted"], s["refused"]) == (7, 4, {"503": 2, "ReadTimeout": 1})
    assert s["refused_not_retryable"] == 2
    assert (s["done"], s["failed"], s["failed_without_reason"]) == (1, 2, 1)
    assert s["failure_reasons"] == {"no prediction within 30 s; retry": 1}
    assert (s["pending_at_end"], s["unreadable"], s["dropped"]) == (0, 1, 3)
    assert s["last_ended_after_resume_s"] == 2.0


def test_async_flood_targets_are_met_only_within_every_bound() -> None:
    from benchmarks.reliability import (
        FLOOD,
        FLOOD_PAST_BACKLOG,
        async_flood_summary,
        async_flood_targets,
    )

    posts = [("202", False, "a"), ("503", True, None)]
    base = {
        "async_backlog": 1,
        "async_timeout_s": 30,
        "ingress_replicas": 1,
        "rss_idle_mb": 400.0,
        "rss_peak_mb": 450.0,
        "keyed_idle": {"n": 10, "p50_ms": 20.0, "p99_ms": 50.0, "other": {}},
        "keyed_during": {"n": 10, "p50_ms": 30.0, "p99_ms": 120.0, "other": {}},
    }
    good = base | async_flood_summary(posts, {"a": ("done", None, 3.0)}, 0)
    rows = async_flood_targets(good)
    assert len(rows) == 6
    assert [r["met"] for r in rows.values()] == [True, True, True, True, True, False]
    late = (
        base | async_flood_summary(posts, {"a": ("done", None, 31.0)}, 0) | {"rss_peak_mb": 501.0}
    )
    met = {name.split(": ", 1)[1][:20]: r["met"] for name, r in async_flood_targets(late).items()}
    assert met["Ingress RSS within +"] is False
    assert met["every accepted job d"] is False
    over = base | async_flood_summary([*posts, ("202", False, "b")], {"a": ("done", None, 1.0)}, 0)
    assert not async_flood_targets(over)[
        "serve run, async flood with the Model frozen: a 429/503 with Retry-After past the backlog"
    ]["met"]
    # through the project's front the address's 429s come before the backlog is reached: every
    # refusal must be retryable; past the backlog, a 429 alone does not show the backlog held
    fronted = base | async_flood_summary(
        [posts[0], ("429", True, None)], {"a": ("done", None, 1)}, 0
    )
    rows = async_flood_targets(fronted, backlog=False)
    assert rows[f"{FLOOD}: every refusal a 429/503 with Retry-After"]["met"]
    assert not async_flood_targets(fronted)[
        f"{FLOOD}: a 429/503 with Retry-After past the backlog"
    ]["met"]
    unheld = async_flood_targets(good, FLOOD_PAST_BACKLOG, keyed=False)
    assert len(unheld) == 4 and all(r["met"] for r in unheld.values())


def _retrain(records: list[tuple[float, float, str]], exit_code: int = 255) -> dict[str, Any]:
    from benchmarks.reliability import retrain_summary

    phases = {"repro_started": 10.0, "killed": 20.0, "ready": 30.0}
    repro = {
        "interrupted": True,
        "dvc_exit": exit_code,
        "interrupt_after_s": 0.5,
        "stage_working_s": 3.0,
    }
    return retrain_summary(records, phases) | {
        "repro": repro,
        "team_state_unchanged": True,
        "outputs_left": {"team_state": True},
        "healthz_after_restart": {"can_serve": True},
    }


def test_a_retrain_summary_splits_the_answers_by_phase() -> None:
    records = [  # (start, end, status)
        (5.0, 5.1, "200"),
        (12.0, 12.1, "200"),
        (19.9, 21.0, "200"),
        (22.0, 29.0, "503"),  # the restart: apart
        (31.0, 31.1, "200"),
    ]
    s = _retrain(records)
    assert (s["before"], s["during_repro"]) == ({"200": 1}, {"200": 2})
    assert (s["restart"], s["after_restart"]) == ({"503": 1}, {"200": 1})
    assert s["longest_s"] == 7.0


def test_retrain_targets_need_an_interrupted_stage_and_only_200s() -> None:
    from benchmarks.reliability import retrain_targets

    good = retrain_targets(_retrain([(12.0, 12.1, "200"), (31.0, 31.1, "200")]))
    assert [r["met"] for r in good.values()] == [True, True]
    failing = retrain_targets(_retrain([(12.0, 12.1, "200"), (31.0, 31.1, "500")]))
    assert [r["met"] for r in failing.values()] == [True, False]
    finished = retrain_targets(_retrain([(12.0, 12.1, "200"), (31.0, 31.1, "200")], 0))
    assert [r["met"] for r in finished.values()] == [False, False]  # not interrupted: not shown


def test_a_schemathesis_summary_reads_its_report_and_the_links_it_printed() -> None:
    from benchmarks.reliability import schemathesis_summary, schemathesis_targets

    report = {  # the parts of schemathesis 4's --report-json-path that are read
        "test_cases": {"generated": 1271},
        "operations": {"tested": 12, "total": 12},
        "failures": [
            {
                "code": "ST201",
                "title": "Schema-violating request accepted",
                "count": 3,
                "operations": ["POST /predict"],
            }
        ],
        "errors": [],
        "phases": {"examples": {"status": "success"}, "stateful": {"status": "failure"}},
        "warnings": {"rate_limited": [], "missing_test_data": ["GET /predict/{match_id}"]},
    }
    output = " ✅  Stateful (in 2.1s)\n     API Links:    2 covered / 2 selected / 3 total (2 inferred)\n"
    s = schemathesis_summary(report, output)
    assert (s["cases"], s["operations"], s["errors"]) == (1271, "12 of 12", 0)
    assert s["failures"] == {
        "ST201 Schema-violating request accepted": {"count": 3, "operations": ["POST /predict"]}
    }
    assert (s["links_covered"], s["links_selected"], s["links_total"]) == (2, 2, 3)
    assert s["warnings"] == {"missing_test_data": ["GET /predict/{match_id}"]}
    assert [r["met"] for r in schemathesis_targets(s).values()] == [False, True]
    clean = s | {"failures": {}, "links_covered": 0}
    assert [r["met"] for r in schemathesis_targets(clean).values()] == [True, False]


def test_the_schemathesis_hooks_bring_positive_bodies_inside_the_apps_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The suite's positive data meets the rules JSON Schema cannot state (known league and
    teams, the kickoff window, a bookmaker's margin, odds equal to the books' set); the app's
    own model then takes it, and only what it still refuses is dropped."""
    from datetime import date

    from benchmarks import schemathesis_hooks as hooks
    from serve_app.schemas import FixtureIn

    window = {"teams": ["Arsenal", "Chelsea"], "earliest": date(2022, 5, 1)}
    monkeypatch.setattr(hooks, "known", lambda: {"E0": window | {"latest": date(2022, 6, 1)}})
    generated = {
        "league": "Zz",
        "home_team": "Nowhere FC",
        "away_team": "Nowhere FC",
        "kickoff": "1999-01-01",
        "odds": {"home": 999.0, "draw": 3.5, "away": 3.4},  # a margin of -42%
        "books": {"avg": {"home": 2.1, "draw": 3.5, "away": 3.4}},
        "asian_handicap": {"line": -0.25, "home": 3.0, "away": 40.0},  # -64%
    }
    body, moved, refused = hooks.adapted("POST /predict", generated)
    assert refused is None
    fixture = FixtureIn.model_validate(body)
    assert (fixture.league, {fixture.home_team, fixture.away_team}) == ("E0", set(window["teams"]))
    assert fixture.kickoff == date(2022, 5, 1)
    assert fixture.odds == fixture.books.avg  # the books' set, the rebuilt odds replaced
    handicap = fixture.asian_handicap
    assert 1 / handicap.home + 1 / handicap.away - 1 == pytest.approx(hooks.TARGET_MARGIN, abs=1e-3)
    assert handicap.away / handicap.home == pytest.approx(40.0 / 3.0, rel=1e-3)  # same shares
    assert set(moved) == {
        "league unknown to the state",
        "team unknown to the state",
        "the same team twice",
        "kickoff outside the league's window",
        "a price set off a bookmaker's margin",
        "odds unlike the books' set",
    }
    assert generated["league"] == "Zz", "the generated body is not changed in place"
    batch, _, refused = hooks.adapted("POST /predict/batch", {"fixtures": [generated]})
    assert refused is None and batch["fixtures"][0] == body
    # what the rules cannot mend is left as it is, and the app's model says why it is dropped
    no_kickoff = {k: v for k, v in generated.items() if k != "kickoff"}
    assert hooks.adapted("POST /predict", no_kickoff)[1:] == ([], "missing at kickoff")
    assert hooks.adapted("GET /model", None) == (None, [], None)


def test_the_bad_input_target_needs_every_answer_a_4xx_with_a_reason() -> None:
    from benchmarks.reliability import bad_input_target

    name = "serve run: every bad input a 4xx with a reason"
    good = [{"input": "NaN price", "status": 422, "reason": "odds.home: ..."}]
    assert bad_input_target(good)[name]["met"]
    for wrong in ({"status": 500, "reason": "oops"}, {"status": 422, "reason": ""}):
        row = bad_input_target(good + [{"input": "deep nesting"} | wrong])[name]
        assert not row["met"] and "deep nesting" in row["figure"]
    assert not bad_input_target([])[name]["met"]
