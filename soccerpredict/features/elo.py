"""Elo with home advantage and goal-difference weighting (World Football Elo style)."""

from __future__ import annotations

import math


def expected_home(r_home: float, r_away: float, home_advantage: float) -> float:
    """Expected score of the home team (win = 1, draw = 0.5)."""
    return 1.0 / (1.0 + 10.0 ** ((r_away - r_home - home_advantage) / 400.0))


def goal_multiplier(goal_diff: int) -> float:
    """Bigger wins move ratings more, with diminishing returns."""
    margin = abs(goal_diff)
    if margin <= 1:
        return 1.0
    if margin == 2:
        return 1.5
    return (11.0 + margin) / 8.0


def update(
    r_home: float, r_away: float, home_goals: int, away_goals: int, k: float, home_advantage: float
) -> tuple[float, float]:
    """Ratings after one match; the exchange is zero-sum."""
    score = 1.0 if home_goals > away_goals else 0.5 if home_goals == away_goals else 0.0
    delta = (
        k
        * goal_multiplier(home_goals - away_goals)
        * (score - expected_home(r_home, r_away, home_advantage))
    )
    return r_home + delta, r_away - delta


def win_probability_gap(r_home: float, r_away: float, home_advantage: float) -> float:
    """Rating gap in logit units; handy as a single monotone feature."""
    p = expected_home(r_home, r_away, home_advantage)
    return math.log(p / (1.0 - p))
