"""Point-in-time team state of one league: ratings, recent form, rest and head-to-head.

`LeagueState` only ever answers from what it has been told so far, so asking for a fixture's
features before feeding it the fixture's result is leakage-free by construction. The offline
pipeline replays history through it; Serve asks the published state about one fixture.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from soccerpredict.config import FeatureParams
from soccerpredict.features import elo, goals, pi_ratings


@dataclass(frozen=True)
class Played:
    """One finished match from a team's point of view."""

    day: date
    goals_for: int
    goals_against: int
    shots_on_target: float


def _points(goals_for: int, goals_against: int) -> int:
    return 3 if goals_for > goals_against else 1 if goals_for == goals_against else 0


def _mean(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return sum(clean) / len(clean) if clean else math.nan


@dataclass
class LeagueState:
    params: FeatureParams
    season: str | None = None
    teams: set[str] = field(default_factory=set)
    elo: dict[str, float] = field(default_factory=dict)
    pi_home: dict[str, float] = field(default_factory=dict)
    pi_away: dict[str, float] = field(default_factory=dict)
    recent: dict[str, deque[Played]] = field(default_factory=dict)
    last_played: dict[str, date] = field(default_factory=dict)
    meetings: dict[tuple[str, str], deque[tuple[str, int, int]]] = field(default_factory=dict)
    goal_model: goals.PoissonRatings | None = None
    sot_model: goals.PoissonRatings | None = None

    def __post_init__(self) -> None:
        if self.goal_model is None:
            self.goal_model = goals.PoissonRatings(self.params.goal_rate, math.log(1.35))
        if self.sot_model is None:
            self.sot_model = goals.PoissonRatings(self.params.sot_rate, math.log(4.5))

    @property
    def poisson_models(self) -> tuple[goals.PoissonRatings, goals.PoissonRatings]:
        assert self.goal_model is not None and self.sot_model is not None
        return self.goal_model, self.sot_model

    def start_season(self, season: str, teams: set[str]) -> None:
        """Seed teams new to the league from the teams that left it, not from the league mean."""
        # sorted: a set's order follows the process's hash seed, and a float sum its order
        newcomers, leavers = sorted(teams - self.teams), sorted(self.teams - teams)
        if self.teams and newcomers:
            seed_elo = _mean([self.elo[t] for t in leavers]) if leavers else self._low_elo()
            seed_home = _mean([self.pi_home[t] for t in leavers]) if leavers else 0.0
            seed_away = _mean([self.pi_away[t] for t in leavers]) if leavers else 0.0
            for team in newcomers:
                self.elo.setdefault(team, seed_elo)
                self.pi_home.setdefault(team, seed_home)
                self.pi_away.setdefault(team, seed_away)
            for model in self.poisson_models:
                model.seed(
                    newcomers,
                    _mean([model.attack.get(t, 0.0) for t in leavers] or [0.0]),
                    _mean([model.defence.get(t, 0.0) for t in leavers] or [0.0]),
                )
        self.season, self.teams = season, set(teams)

    def _low_elo(self) -> float:
        ratings = sorted(self.elo.values())
        return _mean(ratings[: max(1, len(ratings) // 5)])

    def features(self, home: str, away: str, day: date) -> dict[str, float]:
        """Everything known about a fixture before its kickoff."""
        p = self.params
        r_home = self.elo.get(home, p.elo_initial)
        r_away = self.elo.get(away, p.elo_initial)
        pi_h, pi_a = self.pi_home.get(home, 0.0), self.pi_away.get(away, 0.0)
        row = {
            "elo_home": r_home,
            "elo_away": r_away,
            "elo_diff": r_home + p.elo_home_advantage - r_away,
            "elo_expected_home": elo.expected_home(r_home, r_away, p.elo_home_advantage),
            "pi_home": pi_h,
            "pi_away": pi_a,
            "pi_expected_gd": pi_ratings.expected_goal_diff(pi_h)
            - pi_ratings.expected_goal_diff(pi_a),
        }
        row |= self._poisson(home, away)
        row |= self._form(home, "home") | self._form(away, "away")
        row["rest_days_home"] = self._rest(home, day)
        row["rest_days_away"] = self._rest(away, day)
        return row | self._head_to_head(home, away)

    def _poisson(self, home: str, away: str) -> dict[str, float]:
        goal_model, sot_model = self.poisson_models
        lam_h, lam_a = goal_model.expected(home, away)
        p_home, p_draw, p_away = goals.outcome_probs(lam_h, lam_a)
        sot_h, sot_a = sot_model.expected(home, away)
        return {
            "gm_lambda_home": lam_h,
            "gm_lambda_away": lam_a,
            "gm_prob_home": p_home,
            "gm_prob_draw": p_draw,
            "gm_prob_away": p_away,
            "sot_lambda_home": sot_h,
            "sot_lambda_away": sot_a,
        }

    def _form(self, team: str, side: str) -> dict[str, float]:
        games = list(self.recent.get(team, ()))
        return {
            f"form_n_{side}": float(len(games)),
            f"form_goals_for_{side}": _mean([g.goals_for for g in games]),
            f"form_goals_against_{side}": _mean([g.goals_against for g in games]),
            f"form_points_{side}": _mean([_points(g.goals_for, g.goals_against) for g in games]),
            f"form_sot_{side}": _mean([g.shots_on_target for g in games]),
        }

    def _rest(self, team: str, day: date) -> float:
        last = self.last_played.get(team)
        if last is None:
            return math.nan
        return float(min((day - last).days, self.params.rest_cap_days))

    def _head_to_head(self, home: str, away: str) -> dict[str, float]:
        past = list(self.meetings.get(_pair(home, away), ()))
        points = [_points(hg, ag) if h == home else _points(ag, hg) for h, hg, ag in past]
        diffs = [hg - ag if h == home else ag - hg for h, hg, ag in past]
        return {
            "h2h_n": float(len(past)),
            "h2h_points_home": _mean(points),
            "h2h_goal_diff_home": _mean(diffs),
        }

    def update(
        self,
        home: str,
        away: str,
        day: date,
        home_goals: int,
        away_goals: int,
        home_sot: float = math.nan,
        away_sot: float = math.nan,
    ) -> None:
        """Learn one finished match."""
        p = self.params
        self.elo[home], self.elo[away] = elo.update(
            self.elo.get(home, p.elo_initial),
            self.elo.get(away, p.elo_initial),
            home_goals,
            away_goals,
            p.elo_k,
            p.elo_home_advantage,
        )
        (self.pi_home[home], self.pi_away[home], self.pi_home[away], self.pi_away[away]) = (
            pi_ratings.update(
                self.pi_home.get(home, 0.0),
                self.pi_away.get(home, 0.0),
                self.pi_home.get(away, 0.0),
                self.pi_away.get(away, 0.0),
                home_goals - away_goals,
                p.pi_lambda,
                p.pi_gamma,
            )
        )
        goal_model, sot_model = self.poisson_models
        goal_model.update(home, away, float(home_goals), float(away_goals))
        sot_model.update(home, away, home_sot, away_sot)
        for team, gf, ga, sot in (
            (home, home_goals, away_goals, home_sot),
            (away, away_goals, home_goals, away_sot),
        ):
            self.recent.setdefault(team, deque(maxlen=p.form_window)).append(
                Played(day, gf, ga, sot)
            )
            self.last_played[team] = day
        self.meetings.setdefault(_pair(home, away), deque(maxlen=p.h2h_window)).append(
            (home, home_goals, away_goals)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able state (params travel separately): what the pipeline publishes."""
        return {
            "season": self.season,
            "teams": sorted(self.teams),
            "elo": self.elo,
            "pi_home": self.pi_home,
            "pi_away": self.pi_away,
            "recent": {
                t: [
                    [g.day.isoformat(), g.goals_for, g.goals_against, g.shots_on_target]
                    for g in games
                ]
                for t, games in self.recent.items()
            },
            "last_played": {t: d.isoformat() for t, d in self.last_played.items()},
            "meetings": [
                [a, b, [list(m) for m in games]] for (a, b), games in self.meetings.items()
            ],
            "goal_model": self.poisson_models[0].to_dict(),
            "sot_model": self.poisson_models[1].to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], params: FeatureParams) -> LeagueState:
        recent = {
            t: deque(
                (
                    Played(date.fromisoformat(d), int(gf), int(ga), float(sot))
                    for d, gf, ga, sot in games
                ),
                maxlen=params.form_window,
            )
            for t, games in data["recent"].items()
        }
        meetings = {
            (a, b): deque(((h, int(hg), int(ag)) for h, hg, ag in games), maxlen=params.h2h_window)
            for a, b, games in data["meetings"]
        }
        return cls(
            params=params,
            season=data["season"],
            teams=set(data["teams"]),
            elo=dict(data["elo"]),
            pi_home=dict(data["pi_home"]),
            pi_away=dict(data["pi_away"]),
            recent=recent,
            last_played={t: date.fromisoformat(d) for t, d in data["last_played"].items()},
            meetings=meetings,
            goal_model=goals.PoissonRatings.from_dict(data["goal_model"]),
            sot_model=goals.PoissonRatings.from_dict(data["sot_model"]),
        )

    @property
    def known_teams(self) -> set[str]:
        """Every team this league has rated, current season or not."""
        return set(self.elo) | self.teams


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)
