"""Features of fixtures asked about online, from the team state the pipeline publishes.

The `features` stage replays every league and publishes the final `LeagueState`s as a versioned
snapshot; `TeamState` loads it and answers fixtures with the same `LeagueState.features` and
`market_features` the offline table is built with, so a fixture after `as_of` gets exactly the
feature vector the offline table holds for it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.config import FeatureParams
from soccerpredict.data.contract import PRE_CLOSING_PRICE_COLUMNS
from soccerpredict.features.build import (
    FEATURE_COLUMNS,
    FEATURE_SCHEMA_VERSION,
    PRICE_COLUMNS,
    STATE_FEATURES,
)
from soccerpredict.features.market import (
    EXTRA_MARKET_FEATURES,
    extra_market_features,
    market_values,
    pre_closing_odds,
)
from soccerpredict.features.state import LeagueState
from soccerpredict.time_rules import kickoff_window


class FixtureError(ValueError):
    """A fixture the published state cannot answer; `field` names the offending input."""

    def __init__(self, field: str, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.field, self.message, self.suggestions = field, message, suggestions or []


@dataclass(frozen=True)
class Fixture:
    league: str
    home_team: str
    away_team: str
    kickoff: date
    odds: tuple[float, float, float] | None = None  # pre-closing home / draw / away
    # more pre-closing prices, named as in the match table (`ps_home`, `avg_over25`, `ah_line`)
    prices: Mapping[str, float] | None = None


def market_matrix(fixtures: list[Fixture]) -> np.ndarray:
    """The market columns of FEATURE_COLUMNS, from the same functions as the offline table. A
    fixture's `odds` are its 1X2 price set; without them, the set the offline table would pick
    from its `prices` (the average, else Pinnacle, else Bet365). Inputs not given stay missing."""
    odds = np.array(
        [f.odds if f.odds else (np.nan,) * 3 for f in fixtures], dtype=np.float64
    ).reshape(len(fixtures), 3)
    if not any(f.prices for f in fixtures):  # the common request: one price set or none
        rest = np.full((len(fixtures), len(EXTRA_MARKET_FEATURES) + len(PRICE_COLUMNS)), np.nan)
        return np.hstack([market_values(odds), rest])
    prices = pd.DataFrame(
        [dict(f.prices or {}) for f in fixtures], columns=PRE_CLOSING_PRICE_COLUMNS, dtype=float
    )
    missing = ~np.isfinite(odds).all(axis=1)
    odds[missing] = pre_closing_odds(prices)[missing]
    return np.hstack(
        [
            market_values(odds),
            extra_market_features(prices).to_numpy(dtype=np.float64),
            prices[PRICE_COLUMNS].to_numpy(dtype=np.float64),
        ]
    )


def snapshot(states: dict[str, LeagueState], params: FeatureParams, as_of: date) -> dict[str, Any]:
    """The published document; its version is a hash of everything a feature depends on."""
    body = {
        "schema_version": FEATURE_SCHEMA_VERSION,
        "as_of": as_of.isoformat(),
        "feature_params": params.model_dump(mode="json"),
        "leagues": {league: states[league].to_dict() for league in sorted(states)},
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {"version": digest[:16], **body}


def closest(name: str, known: set[str], n: int = 3) -> list[str]:
    by_lower = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[h] for h in hits]


@dataclass
class TeamState:
    version: str
    as_of: date
    params: FeatureParams
    leagues: dict[str, LeagueState]

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> TeamState:
        if data.get("schema_version") != FEATURE_SCHEMA_VERSION:
            raise ValueError(
                f"team state has feature schema {data.get('schema_version')}, "
                f"this code builds schema {FEATURE_SCHEMA_VERSION}"
            )
        params = FeatureParams.model_validate(data["feature_params"])
        leagues = {lg: LeagueState.from_dict(st, params) for lg, st in data["leagues"].items()}
        return cls(data["version"], date.fromisoformat(data["as_of"]), params, leagues)

    @classmethod
    def load(cls, path: str | Path) -> TeamState:
        return cls.from_snapshot(json.loads(Path(path).read_text()))

    def teams(self, league: str) -> list[str]:
        return sorted(self._league(league).known_teams)

    def data_ends(self, league: str) -> date:
        """The day of the league's latest known result (an extra league's file may end long
        before `as_of`); `as_of` for a league with none."""
        return max(self._league(league).last_played.values(), default=self.as_of)

    def kickoff_window(self, league: str, max_horizon_days: int) -> tuple[date, date]:
        """The first and last kickoff dates a fixture of `league` may have."""
        return kickoff_window(self.as_of, self.data_ends(league), max_horizon_days)

    def check(self, fixture: Fixture, max_horizon_days: int) -> None:
        """Raise FixtureError for what the state cannot answer honestly."""
        state = self._league(fixture.league)
        for field, team in (("home_team", fixture.home_team), ("away_team", fixture.away_team)):
            if team not in state.known_teams:
                suggestions = closest(team, state.known_teams)
                raise FixtureError(
                    field,
                    f"unknown team {team!r} in {fixture.league}"
                    + (f"; closest known: {', '.join(suggestions)}" if suggestions else ""),
                    suggestions,
                )
        if fixture.home_team == fixture.away_team:
            raise FixtureError("away_team", "home and away team are the same")
        earliest, horizon = self.kickoff_window(fixture.league, max_horizon_days)
        if fixture.kickoff < earliest:
            latest = earliest - timedelta(days=1)
            raise FixtureError(
                "kickoff",
                f"kickoff {fixture.kickoff} is not after the latest "
                f"result the state knows in {fixture.league} ({latest}); its "
                "features would be built from results after kickoff",
            )
        if fixture.kickoff > horizon:
            raise FixtureError(
                "kickoff",
                f"kickoff {fixture.kickoff} is more than "
                f"{max_horizon_days} days after the data ends ({self.as_of})",
            )

    def features(self, fixtures: list[Fixture]) -> pd.DataFrame:
        """One row per fixture, FEATURE_COLUMNS as float64, in the offline table's order."""
        return pd.DataFrame(self.feature_matrix(fixtures), columns=FEATURE_COLUMNS)

    def feature_matrix(self, fixtures: list[Fixture]) -> np.ndarray:
        """The same as `features`, as a plain (n, len(FEATURE_COLUMNS)) float64 array."""
        state = np.array(
            [
                [row[c] for c in STATE_FEATURES]
                for row in (
                    self._league(f.league).features(f.home_team, f.away_team, f.kickoff)
                    for f in fixtures
                )
            ],
            dtype=np.float64,
        ).reshape(len(fixtures), len(STATE_FEATURES))
        return np.hstack([state, market_matrix(fixtures)])

    def _league(self, league: str) -> LeagueState:
        if league not in self.leagues:
            raise FixtureError(
                "league",
                f"unknown league {league!r}; known: {', '.join(sorted(self.leagues))}",
                sorted(self.leagues),
            )
        return self.leagues[league]
