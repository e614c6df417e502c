"""Online Poisson team ratings: a point-in-time goals model with time decay.

Each team has an attack and a defence rating on the log-rate scale, the league a log mean rate
and a log home advantage. Home goals are Poisson(exp(mean + home + att_h - def_a)), away goals
Poisson(exp(mean + att_a - def_h)). After each match every rating takes one gradient step of
the Poisson log-likelihood; with a constant step size old matches fade geometrically, which is
the exponential time decay of Dixon & Coles (1997) in an online form. The same model on shots
on target gives shots-based ratings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_MAX_GOALS = 11
_LOG_FACT = np.cumsum(np.log(np.maximum(np.arange(_MAX_GOALS), 1)))
_K = np.arange(_MAX_GOALS)


@dataclass
class PoissonRatings:
    """Attack / defence ratings of one league; `rate` the step size of team ratings."""

    rate: float
    log_mean: float
    home: float = 0.25
    league_rate: float = 0.002  # the league's mean and home advantage move slowly
    attack: dict[str, float] = field(default_factory=dict)
    defence: dict[str, float] = field(default_factory=dict)

    def expected(self, home: str, away: str) -> tuple[float, float]:
        """Expected home and away counts of the next meeting."""
        att, dfn = self.attack, self.defence
        lam_h = math.exp(self.log_mean + self.home + att.get(home, 0.0) - dfn.get(away, 0.0))
        lam_a = math.exp(self.log_mean + att.get(away, 0.0) - dfn.get(home, 0.0))
        return lam_h, lam_a

    def update(self, home: str, away: str, home_count: float, away_count: float) -> None:
        if math.isnan(home_count) or math.isnan(away_count):
            return  # no count (shots missing from the file): nothing to learn
        lam_h, lam_a = self.expected(home, away)
        err_h, err_a = home_count - lam_h, away_count - lam_a
        att, dfn, r = self.attack, self.defence, self.rate
        att[home], dfn[away] = att.get(home, 0.0) + r * err_h, dfn.get(away, 0.0) - r * err_h
        att[away], dfn[home] = att.get(away, 0.0) + r * err_a, dfn.get(home, 0.0) - r * err_a
        self.log_mean += self.league_rate * (err_h + err_a) / 2.0
        self.home += self.league_rate * (err_h - err_a) / 2.0

    def seed(self, teams: Iterable[str], attack: float, defence: float) -> None:
        for team in teams:
            self.attack.setdefault(team, attack)
            self.defence.setdefault(team, defence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "log_mean": self.log_mean,
            "home": self.home,
            "league_rate": self.league_rate,
            "attack": self.attack,
            "defence": self.defence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoissonRatings:
        return cls(
            rate=float(data["rate"]),
            log_mean=float(data["log_mean"]),
            home=float(data["home"]),
            league_rate=float(data["league_rate"]),
            attack=dict(data["attack"]),
            defence=dict(data["defence"]),
        )


def outcome_probs(lam_home: float, lam_away: float) -> tuple[float, float, float]:
    """P(home win), P(draw), P(away win) for independent Poisson goals (truncated at 10)."""
    ph = np.exp(_K * math.log(lam_home) - lam_home - _LOG_FACT)
    pa = np.exp(_K * math.log(lam_away) - lam_away - _LOG_FACT)
    grid = np.outer(ph, pa)
    probs = np.array([np.tril(grid, -1).sum(), np.trace(grid), np.triu(grid, 1).sum()])
    probs /= probs.sum()
    return float(probs[0]), float(probs[1]), float(probs[2])
