"""HTTP bodies. What can be checked without the team state is checked here (types, ranges, the
odds' margin); unknown teams and kickoffs the state cannot answer are checked by `TeamState`."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from soccerpredict.features.online import Fixture

MIN_ODDS, MAX_ODDS = 1.01, 1000.0
MAX_OVERROUND = 0.5  # 1/h + 1/d + 1/a above 1.5 is not a bookmaker's price


class Odds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    home: float = Field(ge=MIN_ODDS, le=MAX_ODDS, description="decimal odds, home win")
    draw: float = Field(ge=MIN_ODDS, le=MAX_ODDS, description="decimal odds, draw")
    away: float = Field(ge=MIN_ODDS, le=MAX_ODDS, description="decimal odds, away win")

    @model_validator(mode="after")
    def _a_real_book(self) -> Odds:
        margin = 1 / self.home + 1 / self.draw + 1 / self.away - 1
        if not -0.05 <= margin <= MAX_OVERROUND:
            raise ValueError(
                f"odds imply a margin of {margin:.1%}; a bookmaker's 1X2 book has "
                f"between -5% and {MAX_OVERROUND:.0%}"
            )
        return self


class FixtureIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "league": "E0",
                    "home_team": "Arsenal",
                    "away_team": "Tottenham",
                    "kickoff": "2022-05-12",
                    "odds": {"home": 2.1, "draw": 3.5, "away": 3.4},
                }
            ]
        },
    )

    league: str = Field(min_length=1, max_length=16, description="football-data code, e.g. E0")
    home_team: str = Field(min_length=1, max_length=64)
    away_team: str = Field(min_length=1, max_length=64)
    kickoff: date = Field(description="kickoff date (UTC)")
    odds: Odds | None = Field(None, description="pre-closing 1X2 odds, if known")

    def fixture(self) -> Fixture:
        odds = (self.odds.home, self.odds.draw, self.odds.away) if self.odds else None
        return Fixture(self.league, self.home_team, self.away_team, self.kickoff, odds)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fixtures: list[FixtureIn] = Field(min_length=1)


class Probabilities(BaseModel):
    home: float
    draw: float
    away: float


class Prediction(BaseModel):
    league: str
    home_team: str
    away_team: str
    kickoff: date
    probabilities: Probabilities
    fair_odds: Probabilities
    model_version: str
    forecaster: str = Field(
        "",
        description="the tier that answered: `with_market` when the request's odds (or the "
        "published prices) allow it, else `ratings_only`, which never reads a price",
    )
    cached: bool


class BatchOut(BaseModel):
    predictions: list[Prediction]


class JobAccepted(BaseModel):
    job_id: str
    status: Literal["pending"] = "pending"
    status_url: str


class JobStatus(BaseModel):
    job_id: str
    status: Literal["pending", "done", "failed"]
    submitted_at: str
    result: Prediction | None = None
    reason: str | None = None


class Health(BaseModel):
    """`GET /healthz`: 200 when this replica can answer predictions, 503 with the reasons when
    it cannot (Redis is reported, but predictions are served without it)."""

    status: Literal["ok", "unavailable"]
    can_serve: bool
    redis: bool
    reasons: list[str] = []


class UpcomingPrediction(BaseModel):
    match_id: str
    league: str
    season: str
    kickoff_utc: str
    home_team: str
    away_team: str
    probabilities: Probabilities
    fair_odds: Probabilities
    market_probabilities: Probabilities | None
    model_version: str
    forecaster: str = ""


class ModelInfo(BaseModel):
    name: str
    alias: str
    version: str
    registered_at: str
    run_id: str | None
    forecasters: list[str] = Field(
        default_factory=list, description="the version's tiers, in the order they are tried"
    )
    feature_contract: dict[str, object]
    test_metrics: dict[str, dict[str, float]]
    refused_versions: dict[str, str] = Field(
        default_factory=dict,
        description="versions the alias pointed at that were not loaded, "
        "and why (a feature contract that does not match this code)",
    )


class Problem(BaseModel):
    """Every 4xx/5xx body: what went wrong, and where."""

    detail: str
    field: str | None = None
    suggestions: list[str] = []


# ------------------------------------------------------------------ the page's read routes


class LeagueTeams(BaseModel):
    league: str
    teams: list[str] = Field(description="the teams the published state knows, for autocompletion")
    earliest_kickoff: date = Field(description="the day after the league's latest known result")
    latest_kickoff: date = Field(description="the furthest kickoff the app answers")


class Teams(BaseModel):
    as_of: date
    state_version: str
    leagues: list[LeagueTeams]


class Fixtures(BaseModel):
    """The batch predictions of upcoming fixtures, by kickoff."""

    fixtures: list[UpcomingPrediction]


class DriftStatus(BaseModel):
    drifted: bool
    drift_share: float
    drift_share_threshold: float | None = None
    drifted_columns: list[str]
    n_columns: int | None = None
    as_of: str | None = None
    generated_at: str | None = None


class ModelCard(BaseModel):
    model: ModelInfo
    promoted_at: str | None = Field(
        description="when the alias last moved to this version "
        "(promotion or rollback), from the promotion history"
    )
    promotion_reasons: list[str] = []
    drift: DriftStatus | None
    drift_error: str | None = Field(None, description="why there is no drift status")
    plots: dict[str, str] = Field(
        description="plot name → URL of the PNG the pipeline logged with the served version's run"
    )
