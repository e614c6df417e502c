"""What is known when: the rules every stage and the app apply to dates, in one place.

`as_of` is the last day whose results are known. A match was played by `as_of` when its kickoff
(UTC) falls on that day or before; everything after is upcoming, its result hidden, and a
prediction made with knowledge up to `as_of` counts as made before its kickoff.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd


def played_by(kickoff_utc: pd.Series, as_of: date) -> pd.Series:
    """True for kickoffs on or before `as_of` (their results are known)."""
    return pd.to_datetime(kickoff_utc, utc=True).dt.date <= as_of


def known_before_kickoff(knew_until: pd.Series, kickoff_utc: pd.Series) -> pd.Series:
    """True where what was known (up to the day `knew_until`) cannot include the match itself."""
    kickoff = pd.to_datetime(kickoff_utc, utc=True).dt.date
    return pd.Series(
        pd.to_datetime(knew_until).dt.date.to_numpy() < kickoff.to_numpy(), index=knew_until.index
    )


def kickoff_window(
    as_of: date, latest_result: date | None, max_horizon_days: int
) -> tuple[date, date]:
    """The kickoffs a team state can answer honestly: after the latest result it knows of
    (a fixture's features must not include results after its kickoff) and no further than
    `max_horizon_days` after the data ends."""
    earliest = (latest_result or as_of) + timedelta(days=1)
    return earliest, as_of + timedelta(days=max_horizon_days)
