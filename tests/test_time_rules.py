"""The date rules every stage and the app share (soccerpredict/time_rules.py)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from soccerpredict.time_rules import kickoff_window, known_before_kickoff, played_by

KICKOFFS = pd.Series(
    pd.to_datetime(["2022-04-30 18:45", "2022-04-30 23:30", "2022-05-01 12:00"], utc=True)
)


def test_a_match_on_the_as_of_day_is_played_and_the_next_day_is_not() -> None:
    assert played_by(KICKOFFS, date(2022, 4, 30)).tolist() == [True, True, False]


def test_a_prediction_counts_only_if_its_knowledge_ends_before_the_kickoff_day() -> None:
    knew_until = pd.Series(["2022-04-29", "2022-04-30", "2022-04-30"])
    assert known_before_kickoff(knew_until, KICKOFFS).tolist() == [True, False, True]


def test_the_kickoff_window_starts_after_the_latest_result_and_ends_at_the_horizon() -> None:
    assert kickoff_window(date(2022, 4, 30), date(2022, 4, 24), 10) == (
        date(2022, 4, 25),
        date(2022, 5, 10),
    )
    assert kickoff_window(date(2022, 4, 30), None, 1) == (date(2022, 5, 1), date(2022, 5, 1))
