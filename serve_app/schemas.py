"""HTTP bodies. What can be checked without the team state is checked here (types, ranges, the
odds' margin); unknown teams and kickoffs the state cannot answer are checked by `TeamState`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from soccerpredict.features.online import Fixture

MIN_ODDS, MAX_ODDS = 1.01, 1000.0
MAX_OVERROUND = 0.5  # 1/h + 1/d + 1/a above 1.5 is not a bookmaker's price
MIN_OVERROUND = -0.05  # one book's prices never offer more than a 5% sure profit
MIN_BEST_OVERROUND = -0.25  # the best prices across books may, a little
MAX_HANDICAP = 10.0

# A number of the body is a JSON number, as the schema says: lax pydantic took `false` as 0 and
# "2.1" as 2.1 (schemathesis, the reliability suite). Integers stay numbers.
Number = Annotated[float, Strict()]


def _date_text(value: Any) -> Any:
    """A date of the body is text (YYYY-MM-DD), as the schema says: not a Unix time."""
    if isinstance(value, (str, date)):
        return value
    raise ValueError("a date is text, YYYY-MM-DD")


DateText = Annotated[date, BeforeValidator(_date_text)]


def _price(description: str) -> Number:
    return Field(ge=MIN_ODDS, le=MAX_ODDS, description=description)


def _check_margin(prices: tuple[float, ...], low: float, what: str) -> None:
    margin = sum(1 / p for p in prices) - 1
    if not low <= margin <= MAX_OVERROUND:
        raise ValueError(
            f"{what} imply a margin of {margin:.1%}; a bookmaker's book has "
            f"between {low:.0%} and {MAX_OVERROUND:.0%}"
        )


class Odds(BaseModel):
    """One 1X2 price set (decimal odds). A bookmaker's book: its margin, 1/home + 1/draw +
    1/away - 1, lies between -5% and 50%, else the request is a 422."""

    model_config = ConfigDict(extra="forbid")
    min_margin: ClassVar[float] = MIN_OVERROUND

    home: Number = _price("decimal odds, home win")
    draw: Number = _price("decimal odds, draw")
    away: Number = _price("decimal odds, away win")

    @model_validator(mode="after")
    def _a_real_book(self) -> Odds:
        _check_margin((self.home, self.draw, self.away), self.min_margin, "odds")
        return self

    def triple(self) -> tuple[float, float, float]:
        return (self.home, self.draw, self.away)


class BestOdds(Odds):
    """The best price of each outcome across books: together they may offer a small profit (a
    margin down to -25%)."""

    min_margin: ClassVar[float] = MIN_BEST_OVERROUND


class Books(BaseModel):
    """Pre-closing 1X2 prices by book, as football-data names them. `with_market` reads them
    all (sharp against average, dispersion, best prices); its baseline reads `ps`, `avg` or
    `max`, whichever was chosen on validation (`GET /model`)."""

    model_config = ConfigDict(extra="forbid")

    avg: Odds | None = Field(None, description="market average")
    ps: Odds | None = Field(None, description="Pinnacle")
    max: BestOdds | None = Field(None, description="best price of each outcome")
    b365: Odds | None = Field(None, description="Bet365")
    bw: Odds | None = Field(None, description="bwin")
    iw: Odds | None = Field(None, description="Interwetten")
    wh: Odds | None = Field(None, description="William Hill")
    vc: Odds | None = Field(None, description="VC Bet")

    def prices(self) -> dict[str, float]:
        return {
            f"{book}_{side}": value
            for book, odds in self
            if odds is not None
            for side, value in zip(("home", "draw", "away"), odds.triple(), strict=True)
        }

    def market_set(self) -> tuple[str, Odds] | None:
        """The set the feature table de-vigs: the average, else Pinnacle, else Bet365."""
        for book in ("avg", "ps", "b365"):
            if getattr(self, book) is not None:
                return book, getattr(self, book)
        return None


class OverUnder25(BaseModel):
    """Market-average pre-closing prices of over / under 2.5 goals; their margin lies between -5%
    and 50%, else the request is a 422."""

    model_config = ConfigDict(extra="forbid")

    over: Number = _price("decimal odds, 3 goals or more")
    under: Number = _price("decimal odds, 2 goals or fewer")

    @model_validator(mode="after")
    def _a_real_book(self) -> OverUnder25:
        _check_margin((self.over, self.under), MIN_OVERROUND, "over/under 2.5 prices")
        return self


class AsianHandicap(BaseModel):
    """The home team's Asian-handicap line and the market-average pre-closing prices on it; their
    margin lies between -5% and 50%, else the request is a 422."""

    model_config = ConfigDict(extra="forbid")

    line: Number = Field(
        ge=-MAX_HANDICAP,
        le=MAX_HANDICAP,
        multiple_of=0.25,  # in the schema too (`multipleOf`): schemathesis sent 0.3 as valid
        description="goals given to the home team, a multiple of 0.25 (-0.5: home must win)",
    )
    home: Number = _price("decimal odds, home side of the line")
    away: Number = _price("decimal odds, away side of the line")

    @model_validator(mode="after")
    def _a_real_line(self) -> AsianHandicap:
        _check_margin((self.home, self.away), MIN_OVERROUND, "Asian-handicap prices")
        return self


class FixtureIn(BaseModel):
    """One fixture. The league and both teams are ones the published team state knows, the
    teams differ and the kickoff lies inside the league's window (`GET /teams` lists all of
    them); `odds` beside `books` equal the books' set. Otherwise a 422 names the field."""

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
                },
                {
                    "league": "E0",
                    "home_team": "Arsenal",
                    "away_team": "Tottenham",
                    "kickoff": "2022-05-12",
                    "books": {
                        "avg": {"home": 2.1, "draw": 3.5, "away": 3.4},
                        "ps": {"home": 2.15, "draw": 3.6, "away": 3.5},
                        "max": {"home": 2.2, "draw": 3.75, "away": 3.6},
                    },
                    "over_under_25": {"over": 1.8, "under": 2.05},
                    "asian_handicap": {"line": -0.25, "home": 1.95, "away": 1.93},
                },
            ]
        },
    )

    league: str = Field(min_length=1, max_length=16, description="football-data code, e.g. E0")
    home_team: str = Field(min_length=1, max_length=64)
    away_team: str = Field(min_length=1, max_length=64)
    kickoff: DateText = Field(description="kickoff date (UTC)")
    odds: Odds | None = Field(
        None,
        description="one pre-closing 1X2 price set, if known: answered by `with_market_1x2`; "
        "null or absent means `ratings_only` unless `books` has a price set",
    )
    books: Books | None = Field(
        None,
        description="pre-closing 1X2 prices by book; with the baseline's book, `with_market` "
        "answers. `odds` may be left out: the average's prices (else Pinnacle's, else "
        "Bet365's) are the price set",
    )
    over_under_25: OverUnder25 | None = Field(None, description="pre-closing totals, if known")
    asian_handicap: AsianHandicap | None = Field(
        None, description="pre-closing Asian handicap, if known"
    )

    @model_validator(mode="after")
    def _one_price_set(self) -> FixtureIn:
        chosen = self.books.market_set() if self.books else None
        if self.odds is not None and chosen is not None and self.odds != chosen[1]:
            raise ValueError(
                f"odds {self.odds.triple()} differ from books.{chosen[0]} {chosen[1].triple()}: "
                "with books, the price set is the average's (else Pinnacle's, else Bet365's); "
                "leave odds out or make them equal"
            )
        return self

    def fixture(self) -> Fixture:
        prices = self.books.prices() if self.books else {}
        if self.over_under_25:
            prices |= {
                "avg_over25": self.over_under_25.over,
                "avg_under25": self.over_under_25.under,
            }
        if self.asian_handicap:
            ah = self.asian_handicap
            prices |= {"ah_line": ah.line, "avg_ah_home": ah.home, "avg_ah_away": ah.away}
        odds = self.odds.triple() if self.odds else None
        return Fixture(
            self.league, self.home_team, self.away_team, self.kickoff, odds, prices or None
        )


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
        description="the tier that answered: `with_market` when the request (or the published "
        "prices) carries the market baseline's book, `with_market_1x2` with one 1X2 price set, "
        "else `ratings_only`, which never reads a price (`ratings_only_all_leagues`, trained "
        "on the extra leagues too, for a league outside the top 5)",
    )
    cached: bool
    data_ends: date | None = Field(
        None, description="the day of the latest result the league's team state knows"
    )
    data_age_days: int | None = Field(
        None,
        description="days from `data_ends` to the kickoff: how old the ratings behind this "
        "answer are (the extra leagues' files end in November 2020)",
    )


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
    test_metrics: dict[str, dict[str, float]] = Field(
        description="the version's evaluated predictor on the test seasons: the same tiers and "
        "parameters trained on the seasons before the split's validation seasons"
    )
    trained_on: dict[str, list[str]] = Field(
        default_factory=dict,
        description="the seasons the predictor that answers was trained (train_seasons) and "
        "validated on (validation_seasons): refit on the latest seasons (params.yaml production)",
    )
    refused_versions: dict[str, str] = Field(
        default_factory=dict,
        description="versions the alias pointed at that were not loaded, "
        "and why (a feature contract that does not match this code, artifacts that differ "
        "from the ones hashed at registration, a version with no data files)",
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
    data_ends: date | None = Field(None, description="the day of the league's latest result")


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
