"""Stable match identifiers: the same match gets the same id from any file or header form."""

from __future__ import annotations

import datetime
import hashlib


def make_match_id(league: str, kickoff_date: datetime.date, home_team: str, away_team: str) -> str:
    """First 16 hex chars of sha1("league|YYYY-MM-DD|home|away").

    The date is the provider's (UK local) match date, not the UTC one, so a late kickoff
    cannot move a match to another id when timezone handling changes.
    """
    if isinstance(kickoff_date, datetime.datetime):  # a datetime would add its time to the key
        kickoff_date = kickoff_date.date()
    key = f"{league}|{kickoff_date.isoformat()}|{home_team}|{away_team}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
