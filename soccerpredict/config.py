"""One typed loader for `params.yaml` (what changes results) and `conf/runtime.yaml` (where things run).

Environment variables override endpoints only: DATA_DIR, RAY_ADDRESS, MLFLOW_TRACKING_URI,
MLFLOW_ARTIFACT_ROOT.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from soccerpredict.seasons import Calendar, follows_date, resolve_calendar

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Strict):
    leagues: list[str]
    first_season: str
    last_season: str
    extra_leagues: list[str] = Field(default_factory=list)


class FeatureParams(_Strict):
    elo_initial: float = 1500.0
    elo_k: float = 20.0
    elo_home_advantage: float = 65.0
    pi_lambda: float = 0.06
    pi_gamma: float = 0.5
    form_window: int = Field(6, ge=1)
    h2h_window: int = Field(6, ge=1)
    rest_cap_days: int = Field(30, ge=1)
    # step sizes of the online Poisson ratings (goals, shots on target): their time decay
    goal_rate: float = Field(0.03, gt=0, lt=1)
    sot_rate: float = Field(0.02, gt=0, lt=1)


class SplitParams(_Strict):
    validation_seasons: list[str]
    test_seasons: list[str]


class ModelParams(_Strict):
    seed: int = 42
    max_depth: int = 3
    learning_rate: float = 0.02
    n_estimators: int = 3000
    early_stopping_rounds: int = 150
    # the validation metric early stopping watches; tuning sets it to the metric it searched on
    early_stopping_metric: Literal["mlogloss", "rps"] = "mlogloss"
    min_child_weight: float = 20.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 5.0
    reg_alpha: float = 0.0
    calibration_methods: list[Literal["none", "isotonic", "temperature"]] = ["none"]


PricedBook = Literal["ps", "avg", "max"]


def _consensus_books() -> list[PricedBook]:
    return ["ps", "avg"]


class MarketMarginParams(_Strict):
    """The market forecast `with_market` starts from: the geometric mean of these books'
    de-vigged pre-closing 1X2 probabilities (a row uses the books it has)."""

    books: list[PricedBook] = Field(default_factory=_consensus_books, min_length=1)
    method: Literal["proportional", "power", "shin"] = "power"


class ForecasterParams(_Strict):
    """One booster's parameters per forecaster tier (see soccerpredict.models.predictor)."""

    ratings_only: ModelParams
    with_market: ModelParams
    market_margin: MarketMarginParams = Field(default_factory=MarketMarginParams)
    # the share of the trees' correction `with_market` keeps (0: the market forecast alone)
    with_market_correction: float = Field(1.0, ge=0.0, le=1.0)
    # a second `ratings_only` tier (`ratings_only_all_leagues`), trained on the extra leagues'
    # rows (`data.extra_leagues`) beside the top-5's, answers every league `ratings_only` was not
    # trained on; `ratings_only` itself stays top-5 only (docs/forecasting.md)
    ratings_only_all_leagues: bool = False


class BacktestParams(_Strict):
    """The walk-forward backtest: one fold per season in [first_season, last_season]."""

    first_season: str
    last_season: str
    validation_seasons: int = Field(1, ge=1)  # the seasons just before each fold's season
    max_folds: int = Field(0, ge=0)  # 0: every fold; 2: the last two (tests)
    edge: float = Field(0.05, ge=0)  # bet when p * price > 1 + edge; never tuned
    bootstrap: int = Field(1000, ge=100)  # resamples of matchdays for the intervals
    seed: int = 42
    selection_last_season: str = "2018-2019"  # folds up to here are where choices are made


class Range(_Strict):
    """A search range; `log` samples on a log scale (both bounds must then be positive)."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"range low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs positive bounds, got low {self.low}")
        return self


class SearchSpace(_Strict):
    max_depth: Range
    learning_rate: Range
    n_estimators: Range
    min_child_weight: Range
    subsample: Range
    colsample_bytree: Range
    reg_lambda: Range
    reg_alpha: Range

    @model_validator(mode="after")
    def _fractions(self) -> SearchSpace:
        for name in ("subsample", "colsample_bytree"):
            r = getattr(self, name)
            if r.low <= 0 or r.high > 1:
                raise ValueError(f"{name} must lie in (0, 1], got [{r.low}, {r.high}]")
        if self.max_depth.low < 1 or self.n_estimators.low < 1:
            raise ValueError("max_depth and n_estimators must be at least 1")
        return self


class TuneParams(_Strict):
    seed: int = 42
    num_samples: int = Field(ge=1)
    time_budget_s: float = Field(gt=0)
    max_concurrent_trials: int = Field(1, ge=1)
    metric: Literal["val_rps", "val_log_loss"] = "val_rps"
    grace_period: int = Field(5, ge=1)
    reduction_factor: int = Field(3, ge=2)
    report_every: int = Field(10, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    max_failures: int = Field(2, ge=0)
    reuse_actors: bool = False
    space: SearchSpace


class ProductionParams(_Strict):
    """The predictor that serves (`ray_jobs.train`), registered beside the evaluated one."""

    # True: refit as the walk-forward backtest's next fold (train on every played season but
    # the last `backtest.validation_seasons`, validate on those); False: the split's model
    refit: bool = True


class ScrapeParams(_Strict):
    """What the `scrape` stage reads from WhoScored (off by default: it needs the site)."""

    enabled: bool = False
    leagues: list[str] = ["ENG-Premier-League"]
    seasons: list[str] = ["current"]  # YYYY-YYYY or current


class DriftParams(_Strict):
    """The `drift` stage: recent matches' features and results against a reference."""

    reference_seasons: list[str] = []  # empty: the reference snapshot the champion logged
    # that snapshot is drawn from the champion's latest this-many training seasons (0: all)
    reference_last_seasons: int = Field(0, ge=0)
    current_seasons: list[str] = []  # empty: the last `window_days` of played matches
    window_days: int = Field(90, ge=1)
    min_rows: int = Field(100, ge=1)  # a smaller current window is refused, not scored
    p_value: float = Field(0.01, gt=0, lt=1)  # family-wise: each column at p_value / k
    drift_share: float = Field(0.2, gt=0, le=1)  # the window drifted if this share of columns did
    columns: list[str] = []  # empty: soccerpredict.drift.DEFAULT_COLUMNS
    effect_size: Literal["wasserstein", "psi"] = "wasserstein"  # soccerpredict.drift_decision
    min_effect: float = Field(0.0, ge=0)  # a column is flagged only if its effect is this large
    # the result's test: chi-square of homogeneity (any change of the H/D/A shares) or ordinal
    # (two-sided Mann-Whitney on H < D < A: a move towards one side, such as lost home advantage)
    result_test: Literal["chisquare", "ordinal"] = "chisquare"


class MonitoringParams(_Strict):
    """Scoring served predictions once their results are known."""

    rolling_matches: int = Field(200, ge=10)  # the "last N matches" window
    behind_margin_rps: float = Field(0.005, ge=0)  # alert when the model trails the book by more
    # the forecaster the quality alert compares the model with (a name in reports/quality.json)
    baseline: Literal["pinnacle_closing", "pre_closing_market"] = "pinnacle_closing"


class InjectionParams(_Strict):
    """Known shifts injected into the seasons before `event_season` (soccerpredict.replay_inject):
    the drift alert's family-wise level (and with it the floor) is chosen by how soon it detects
    them, subject to its false alarms on the unshifted ordinary windows."""

    # each scenario: columns (of the drift columns) and the direction each moves in; numerical
    # columns move by size reference standard deviations, the result (ordinal H < D < A) moves
    # towards the away side (+) or the home side (-) by as much in its 0/1/2 coding
    scenarios: dict[str, dict[str, float]] = {}
    sizes: list[float] = [0.2, 0.35, 0.5]  # shift sizes, in reference standard deviations
    start_weeks: list[int] = [1]  # the shift starts at the start of these weeks of the season
    seed: int = 0  # the draws that move results


class MonitorReplayParams(_Strict):
    """`ray_jobs.monitor_replay`: production's alerts replayed week by week over the backtest."""

    first_season: str = "2012-2013"
    step_days: int = Field(7, ge=1)  # the drift job runs weekly in the replay
    degraded_rps: float = Field(0.01, gt=0)  # degraded: window RPS above validation by more
    # "behind" (the model, or the stand-in, trailing the market baseline) is judged over this many
    # days of played matches, the quality rule's horizon (its 600 matches are about 90 days),
    # whatever the drift window; "degraded" over the drift window, the drift alerts' horizon
    quality_days: int = Field(90, ge=1)
    event_season: str = "2020-2021"  # the known event: empty stadiums
    # the effect-size floor: the smallest on a 0.01 grid whose drift alerts fire in at most this
    # share of the ordinary windows of the seasons before `event_season` (chosen on those only)
    false_alarm_target: float = Field(0.10, gt=0, lt=1)
    # family-wise p-value levels the report shows the same floor rule at (what a level costs)
    p_value_grid: list[float] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
    # the quality rule's window (monitoring.rolling_matches): the report shows the rule on the
    # stand-in at each of these, and which one meets the targets best before `event_season`
    rolling_matches_grid: list[int] = [100, 200, 300, 400, 600, 800]
    # the drift level chosen on shifts injected into the seasons before `event_season`
    injection: InjectionParams = InjectionParams()
    # today's design, replayed beside the current one: overrides of `drift` and `monitoring`
    before: dict[str, dict[str, Any]] = {}


class PromotionParams(_Strict):
    max_logloss: float
    max_ece: float
    max_rps: float
    rps_tolerance: float = 0.0


class Params(_Strict):
    data: DataParams
    as_of: date
    features: FeatureParams
    split: SplitParams
    forecasters: ForecasterParams
    backtest: BacktestParams
    tune: TuneParams
    promotion: PromotionParams
    production: ProductionParams = ProductionParams()
    scrape: ScrapeParams = ScrapeParams()
    drift: DriftParams = DriftParams()
    monitoring: MonitoringParams = MonitoringParams()
    monitor_replay: MonitorReplayParams = MonitorReplayParams()


class DataConf(_Strict):
    dir: Path | None = None
    url_template: str
    extra_url_template: str
    # upcoming fixtures of the season in progress (read only when `data.last_season: current`)
    fixtures_url: str = "https://www.football-data.co.uk/fixtures.csv"


class RayConf(_Strict):
    address: str | None = None
    num_cpus: int = 2
    resources: dict[str, float] = Field(default_factory=dict)  # custom, e.g. {"serve": 2}
    backtest_cpus_per_fold: int = Field(1, ge=1)  # each fold's Ray task; XGBoost's nthread


class MlflowConf(_Strict):
    tracking_uri: str
    artifact_root: str
    experiment: str
    model_name: str


class PathsConf(_Strict):
    """Every file one stage writes and another stage (or the Serve app) reads, named once."""

    raw: Path
    interim: Path
    features: Path
    # the extra leagues' feature rows (`data.extra_leagues`), kept apart from `features` so the
    # stages that read the top-5 table (backtest, drift, monitoring replay) see what they did
    features_extra: Path = Path("data/processed/features_extra.parquet")
    feature_contract: Path = Path("data/processed/feature_contract.json")
    splits: Path  # <split>.parquet for each name in soccerpredict.split.SPLITS: `split_file`
    model_dir: Path  # the evaluated predictor: trained on the split, scored on its test seasons
    production_dir: Path = Path("models/production")  # the predictor that serves
    # a sample of its training rows, the drift reference register logs with the version
    served_reference: Path = Path("models/reference_features.parquet")
    train_summary: Path = Path("models/train_summary.json")
    reports: Path
    metrics: Path = Path("reports/metrics.json")
    registry: Path = Path("reports/registry.json")
    promotion: Path = Path("reports/promotion.json")
    quality: Path = Path("reports/quality.json")
    tune_storage: Path = Path("ray_results")
    best_params: Path = Path("reports/tune/best_params.json")
    team_state: Path = Path("data/serving/team_state.json")
    predictions: Path = Path("data/serving/upcoming_predictions.parquet")
    whoscored_matches: Path = Path("data/raw/whoscored/matches.parquet")
    whoscored_cache: Path = Path("data/raw/whoscored/pages")
    drift_reports: Path = Path("reports/drift")
    drift_summary: Path = Path("reports/drift/summary.json")
    prediction_log: Path = Path("data/serving/prediction_log")
    # the resolved `data.last_season` and `as_of` (`ray_jobs.resolve`): what DVC sees change
    calendar: Path = Path("data/calendar.yaml")
    # run records (MLflow holds them too): git-ignored, never a DVC output, so re-runs leave
    # git clean. Promotions and rollbacks, with times and versions; `rollback` reads it.
    promotion_history: Path = Path("var/runs/promotion_history.json")
    # the backtest's pooled fold forecasts and its fold models' forecasts on their snapshots
    backtest_forecasts: Path = Path("data/processed/backtest_forecasts.parquet")
    backtest_references: Path = Path("data/processed/backtest_references.parquet")

    def split_file(self, name: str) -> Path:
        """One table of the `split` stage: train, validation, test or upcoming, and the extra
        leagues' extra_train, extra_validation, extra_test."""
        return self.splits / f"{name}.parquet"


class ScrapeConf(_Strict):
    """Where the scraper goes and how politely: one browser per Ray actor."""

    base_url: str = "https://www.whoscored.com"
    concurrency: int = Field(2, ge=1)
    delay_s: float = Field(3.0, ge=0)
    jitter_s: float = Field(2.0, ge=0)
    retries: int = Field(4, ge=0)
    backoff_s: float = Field(2.0, ge=0)
    timeout_s: float = Field(30.0, gt=0)
    chromium: str = "/usr/bin/chromium"
    actor_cpus: float = Field(0.5, gt=0)


class ServingConf(_Strict):
    """What the Serve app needs besides the model: limits, lifetimes, where its state lives."""

    # jobs, rate limits, the prediction log, run guards: persisted (AOF), never evicts
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_redis_url: str = "redis://127.0.0.1:6380/0"  # the prediction cache: LRU, may lose all
    cache_ttl_s: int = Field(3600, ge=1)
    job_ttl_s: int = Field(3600, ge=1)
    async_timeout_s: float = Field(30.0, gt=0)
    max_batch_fixtures: int = Field(100, ge=1)
    rate_limit_per_minute: int = Field(600, ge=1)
    reload_interval_s: float = Field(5.0, gt=0)
    max_horizon_days: int = Field(400, ge=1)
    api_keys_file: Path = Path("var/api_keys.json")
    max_body_bytes: int = Field(1_048_576, ge=1024)  # a larger body is a 413, never parsed
    # per client address, before the key is checked, in each ingress replica's memory
    address_rate_per_minute: int = Field(1200, ge=1)
    # requests of one client address unanswered at once, held by the front (serve_app/front.py)
    address_in_flight: int = Field(8, ge=1)
    # and at most this many in any one second, held by the front
    address_per_second: int = Field(40, ge=1)
    # the header that names the client behind a proxy, believed only from `trusted_proxies`;
    # None: the peer address of the connection is the client
    forwarded_header: str | None = None
    trusted_proxies: list[str] = []
    # proxies in front of the front (an ingress controller): from these addresses or networks
    # the front takes the client from the last X-Forwarded-For address, for its per-address
    # limits and the header it passes on; empty: the connection's source is the client
    front_trusted_proxies: list[str] = []
    async_backlog: int = Field(256, ge=1)  # async jobs in flight per ingress replica
    redis_timeout_s: float = Field(2.0, gt=0)  # one Redis call (see conf/runtime.yaml)
    redis_failures_to_open: int = Field(3, ge=1)  # consecutive failures before Redis is skipped
    redis_retry_after_s: float = Field(1.0, gt=0)  # skipped this long, then one call tries
    job_write_retries: int = Field(5, ge=0)  # an async result is written again this often
    metrics_cache_s: float = Field(5.0, ge=0)  # GET /metrics answers from a copy this old
    # GET /metrics per client address, held by the front (serve_app/front.py)
    metrics_rate_per_minute: int = Field(60, ge=1)
    # the address clients call: HAProxy in front of the Ingress replicas (serve_app/front.py)
    front_port: int = Field(8000, ge=1, le=65535)
    front_replica_connections: int = Field(16, ge=1)  # per replica, then the next (balance first)

    @model_validator(mode="after")
    def _proxies_are_networks(self) -> ServingConf:
        for proxy in self.front_trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"serving.front_trusted_proxies: {proxy!r} is not an address or a network"
                ) from None
        return self


class Runtime(_Strict):
    data: DataConf
    ray: RayConf
    mlflow: MlflowConf
    paths: PathsConf
    serving: ServingConf = ServingConf()
    scrape: ScrapeConf = ScrapeConf()


class Config(_Strict):
    params: Params  # `current` and `today` already resolved (see `calendar`)
    runtime: Runtime
    calendar: Calendar

    def rooted(self, root: Path) -> Config:
        """Relative paths (and a relative SQLite store) anchored at `root`: for processes such as
        Serve replicas that do not share the working directory the config was read in."""

        def anchor(p: Path) -> Path:
            return p if p.is_absolute() else root / p

        paths = self.runtime.paths.model_copy(
            update={k: anchor(v) for k, v in self.runtime.paths.model_dump().items()}
        )
        serving = self.runtime.serving.model_copy(
            update={"api_keys_file": anchor(self.runtime.serving.api_keys_file)}
        )
        mlflow = self.runtime.mlflow.model_copy(
            update={
                "tracking_uri": _anchor_sqlite(self.runtime.mlflow.tracking_uri, root),
                "artifact_root": (
                    self.runtime.mlflow.artifact_root
                    if is_uri(self.runtime.mlflow.artifact_root)
                    else str(anchor(Path(self.runtime.mlflow.artifact_root)))
                ),
            }
        )
        runtime = self.runtime.model_copy(
            update={"paths": paths, "serving": serving, "mlflow": mlflow}
        )
        return self.model_copy(update={"runtime": runtime})


def is_uri(location: str) -> bool:
    """A URI (`s3://b/p`, `mlflow-artifacts:/`), not a path: a scheme of two or more letters."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", location) is not None


def _anchor_sqlite(uri: str, root: Path) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(root / uri[len(prefix) :])
    return uri


def _env_overrides(raw: dict, env: dict[str, str]) -> dict:
    overrides = {
        ("data", "dir"): env.get("DATA_DIR"),
        ("ray", "address"): env.get("RAY_ADDRESS"),
        ("mlflow", "tracking_uri"): env.get("MLFLOW_TRACKING_URI"),
        ("mlflow", "artifact_root"): env.get("MLFLOW_ARTIFACT_ROOT"),
        ("serving", "redis_url"): env.get("REDIS_URL"),
        ("serving", "cache_redis_url"): env.get("REDIS_CACHE_URL"),
        ("scrape", "base_url"): env.get("WHOSCORED_BASE_URL"),
    }
    for (section, key), value in overrides.items():
        if value:
            raw.setdefault(section, {})[key] = value
    return raw


def _calendar(params: dict, calendar_file: Path, today: date | None) -> Calendar:
    """`today` given: resolve from it. Otherwise settings that follow the date are read from
    what `ray_jobs.resolve` wrote for this run (every stage sees the same day), or from today."""
    settings = calendar_settings(params)
    if today is None and follows_date(**settings) and calendar_file.is_file():
        saved = yaml.safe_load(calendar_file.read_text())
        if saved.get("settings") == settings:
            return Calendar.from_dict(saved)
    return resolve_calendar(**settings, today=today or datetime.now(UTC).date())


def calendar_settings(params: dict) -> dict[str, str]:
    """`data.last_season` and `as_of` as written in params.yaml (`current`, `today` or values)."""
    return {
        "last_season": str(params.get("data", {}).get("last_season", "")),
        "as_of": str(params.get("as_of", "")),
    }


def load_config(
    params_path: str | Path = "params.yaml",
    runtime_path: str | Path = "conf/runtime.yaml",
    env: dict[str, str] | None = None,
    today: date | None = None,
) -> Config:
    """Read both files; relative paths are taken from the working directory, as DVC runs stages."""
    params = yaml.safe_load(Path(params_path).read_text())
    runtime = Runtime.model_validate(
        _env_overrides(
            yaml.safe_load(Path(runtime_path).read_text()), dict(os.environ) if env is None else env
        )
    )
    calendar = _calendar(params, runtime.paths.calendar, today)
    params.setdefault("data", {})["last_season"] = calendar.last_season
    params["as_of"] = calendar.as_of
    return Config(params=Params.model_validate(params), runtime=runtime, calendar=calendar)


def project_root(params: str | Path = "params.yaml") -> Path:
    """The working directory when it holds the project (DVC, the scripts), else the installed
    checkout (`ray job submit` runs an entrypoint in a directory of Ray's)."""
    return Path.cwd() if (Path.cwd() / params).exists() else PROJECT_ROOT


def project_config(
    params: str = "params.yaml", conf: str = "conf/runtime.yaml", today: date | None = None
) -> Config:
    """The config, with relative paths taken from the project root (`project_root`)."""
    root = project_root(params)
    return load_config(root / params, root / conf, today=today).rooted(root)
