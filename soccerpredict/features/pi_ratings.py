"""Pi-ratings (Constantinou & Fenton, 2013): separate home and away ratings in goal units."""

from __future__ import annotations

import math


def expected_goal_diff(rating: float) -> float:
    """Goal difference a rating stands for against an average team (base-10, c = 3)."""
    return math.copysign(10.0 ** (abs(rating) / 3.0) - 1.0, rating)


def update(
    home_of_home: float,
    away_of_home: float,
    home_of_away: float,
    away_of_away: float,
    goal_diff: int,
    lam: float,
    gamma: float,
) -> tuple[float, float, float, float]:
    """Return the four ratings after a match with the observed home-minus-away goal difference.

    Ratings: the home team's home and away ratings, then the away team's home and away ratings.
    """
    predicted = expected_goal_diff(home_of_home) - expected_goal_diff(away_of_away)
    error = abs(goal_diff - predicted)
    psi = 3.0 * math.log10(1.0 + error)
    psi_home = psi if goal_diff > predicted else -psi
    psi_away = -psi_home
    return (
        home_of_home + psi_home * lam,
        away_of_home + psi_home * lam * gamma,
        home_of_away + psi_away * lam * gamma,
        away_of_away + psi_away * lam,
    )
