"""Scoring served predictions once results arrive: what counts, and what it is compared with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soccerpredict.metrics.scoring import outcome_index, rps_average
from soccerpredict.quality import LOG_COLUMNS, quality_report


def _matches() -> pd.DataFrame:
    rows = []
    for i, (day, league, result) in enumerate(
        [
            ("2022-05-01", "E0", "H"),
            ("2022-05-02", "E0", "A"),
            ("2022-05-03", "SP1", "D"),
            ("2022-05-04", "E0", None),
        ]
    ):
        rows.append(
            {
                "match_id": f"m{i}",
                "league": league,
                "result": result,
                "kickoff_utc": pd.Timestamp(f"{day} 15:00", tz="UTC"),
                "psc_home": 2.0,
                "psc_draw": 3.4,
                "psc_away": 4.0,
                "avg_home": 2.1,
                "avg_draw": 3.3,
                "avg_away": 3.8,
            }
        )
    return pd.DataFrame(rows)


def _log(
    rows: list[tuple[str, str, str, tuple[float, float, float]]], source: str = "batch"
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "logged_at": logged,
                "as_of": as_of,
                "source": source,
                "match_id": mid,
                "league": "E0",
                "kickoff": "",
                "home_team": "A",
                "away_team": "B",
                "prob_home": p[0],
                "prob_draw": p[1],
                "prob_away": p[2],
                "model_version": "1",
            }
            for logged, as_of, mid, p in rows
        ],
        columns=LOG_COLUMNS,
    )


def test_only_predictions_that_knew_nothing_of_the_match_day_are_scored() -> None:
    log = _log(
        [
            ("2026-01-01T10:00", "2022-04-30", "m0", (0.5, 0.3, 0.2)),
            ("2026-01-02T10:00", "2022-04-30", "m0", (0.6, 0.25, 0.15)),  # later: this one counts
            ("2026-01-03T10:00", "2022-05-01", "m0", (0.99, 0.005, 0.005)),  # knew the day: no
            ("2026-01-01T10:00", "2022-04-30", "m1", (0.4, 0.3, 0.3)),
            ("2026-01-01T10:00", "2022-04-30", "m2", (0.3, 0.4, 0.3)),
            ("2026-01-01T10:00", "2022-04-30", "m3", (0.3, 0.4, 0.3)),  # not played yet
            ("2026-01-01T10:00", "2022-04-30", "what-if", (0.3, 0.4, 0.3)),  # never happened
        ]
    )
    report = quality_report(log, _matches(), rolling_matches=2, margin_rps=0.005)
    assert report["scored_matches"] == 3 and report["logged_predictions"] == 7
    overall = report["windows"]["all"]["all"]
    model = np.array([[0.6, 0.25, 0.15], [0.4, 0.3, 0.3], [0.3, 0.4, 0.3]])
    expected = rps_average(model, outcome_index(["H", "A", "D"]))
    assert overall["forecasters"]["model"]["rps"] == pytest.approx(expected)
    assert set(overall["forecasters"]) == {"model", "pinnacle_closing", "pre_closing_market"}
    assert set(report["windows"]["all"]) == {"all", "E0", "SP1"}
    assert report["windows"]["all"]["E0"]["matches"] == 2
    assert report["windows"]["rolling"]["all"]["matches"] == 2  # the last two by kickoff
    assert set(report["windows"]["rolling"]) == {"all", "E0", "SP1"}


def test_nothing_to_score_is_an_empty_report_not_a_score() -> None:
    report = quality_report(_log([]), _matches(), rolling_matches=50, margin_rps=0.005)
    assert report["scored_matches"] == 0
    assert report["windows"] == {"all": {}, "rolling": {}}


def test_only_the_prediction_of_record_is_scored_and_client_odds_are_kept_apart() -> None:
    """A key holder's later request, made with odds of their choosing, replaced the batch
    prediction in the score."""
    batch = _log([("2026-01-01T10:00", "2022-04-30", "m0", (0.5, 0.3, 0.2))])
    served = _log(
        [
            ("2026-01-02T10:00", "2022-04-30", "m0", (0.99, 0.005, 0.005)),
            ("2026-01-02T11:00", "2022-04-30", "m1", (0.2, 0.2, 0.6)),
        ],
        source="sync+client_odds",
    )
    report = quality_report(
        pd.concat([batch, served], ignore_index=True), _matches(), 50, margin_rps=0.005
    )
    assert report["scored_matches"] == 1  # m1 was only served: not scored
    expected = rps_average(np.array([[0.5, 0.3, 0.2]]), outcome_index(["H"]))
    assert report["windows"]["all"]["all"]["forecasters"]["model"]["rps"] == pytest.approx(expected)
    assert (report["served_predictions"], report["served_with_client_odds"]) == (2, 2)
