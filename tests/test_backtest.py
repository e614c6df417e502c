"""The walk-forward backtest: folds that never look ahead, interval and CLV arithmetic, a real
two-fold run on Ray, and promotion gates that check every tier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ray_jobs.backtest import run
from soccerpredict import registry
from soccerpredict.backtest.clv import bets
from soccerpredict.backtest.folds import fold_forecasts
from soccerpredict.backtest.plan import NEXT, Fold, extra_fold_tables, make_folds, next_fold
from soccerpredict.backtest.summary import cluster_bootstrap
from soccerpredict.config import (
    BacktestParams,
    FeatureParams,
    ForecasterParams,
    ModelParams,
    PromotionParams,
    load_config,
)
from soccerpredict.data.readers import read_football_data_csv
from soccerpredict.features.build import build_features

ROOT = Path(__file__).resolve().parent.parent
SEASONS = [f"{y}-{y + 1}" for y in range(2010, 2022)]
PARAMS = BacktestParams(first_season="2012-2013", last_season="2021-2022")


def test_every_fold_trains_and_validates_on_earlier_seasons_only() -> None:
    folds = make_folds(SEASONS, PARAMS.model_copy(update={"validation_seasons": 2}))
    # 2012-13 has only the two validation seasons before it: no training season, no fold
    assert [f.season for f in folds] == SEASONS[3:]
    for fold in folds:
        assert max(fold.train_seasons) < min(fold.validation_seasons)
        assert max(fold.validation_seasons) < fold.season
        assert len(fold.validation_seasons) == 2 and fold.train_seasons[0] == SEASONS[0]


def test_the_served_predictors_fold_is_the_walk_forwards_next_one() -> None:
    """The fold after the last one: every season of the data trains or validates, by the same
    rule as the backtest's folds; too few seasons is an error that says how many it needs."""
    two = PARAMS.model_copy(update={"validation_seasons": 2})
    fold = next_fold(list(reversed(SEASONS)) * 2, two)  # any order, repeats (one per match)
    last = make_folds(SEASONS, two)[-1]
    assert fold.season == NEXT
    assert fold.validation_seasons == ("2020-2021", "2021-2022")
    assert fold.train_seasons == (*last.train_seasons, *last.validation_seasons[:1])
    assert set(fold.train_seasons) | set(fold.validation_seasons) == set(SEASONS)
    with pytest.raises(ValueError, match="more than 2 played season"):
        next_fold(SEASONS[:2], two)


def test_the_extra_leagues_validate_on_their_latest_year_when_the_folds_seasons_have_none() -> None:
    """Their files end in November 2020: a fold validating on 2021-22 (the served predictor's)
    still gets a validation table for them, their last year, and trains on what precedes it;
    a fold whose validation seasons hold their matches splits by those seasons' dates."""
    days = pd.date_range("2018-03-01", "2020-11-15", freq="7D", tz="UTC")
    extra = pd.DataFrame({"kickoff_utc": days, "result": "H"})
    extra.loc[len(extra)] = [pd.Timestamp("2020-11-20", tz="UTC"), None]  # not played
    train, validation = extra_fold_tables(extra, Fold(NEXT, ("2019-2020",), ("2021-2022",)))
    assert validation["kickoff_utc"].max() == days[-1]
    assert (days[-1] - validation["kickoff_utc"].min()).days <= 365
    assert (days[-1] - validation["kickoff_utc"].min()).days > 350
    assert train["kickoff_utc"].max() < validation["kickoff_utc"].min()
    assert len(train) + len(validation) == len(days)
    train, validation = extra_fold_tables(extra, Fold("2020-2021", ("2018-2019",), ("2019-2020",)))
    assert validation["kickoff_utc"].min() >= pd.Timestamp("2019-07-01", tz="UTC")
    assert validation["kickoff_utc"].max() <= pd.Timestamp("2020-06-30", tz="UTC")
    assert train["kickoff_utc"].max() < pd.Timestamp("2019-07-01", tz="UTC")


def test_a_parameter_shrinks_the_backtest_to_its_last_two_folds() -> None:
    folds = make_folds(SEASONS, PARAMS.model_copy(update={"max_folds": 2}))
    assert [f.season for f in folds] == ["2020-2021", "2021-2022"]


def test_resampling_matchdays_widens_the_interval_of_correlated_losses() -> None:
    rng = np.random.default_rng(0)
    days = np.repeat(np.arange(100), 10)
    values = rng.normal(0, 1, 100)[days] + rng.normal(0, 0.1, 1000)  # one shock per matchday
    mean, lo, hi = cluster_bootstrap(values, pd.Series(days), 1000, 0)
    _, lo_iid, hi_iid = cluster_bootstrap(values, pd.Series(np.arange(1000)), 1000, 0)
    assert lo < mean < hi
    assert hi - lo > 2 * (hi_iid - lo_iid)


def _match(
    p_model: tuple[float, float, float],
    price: tuple[float, float, float],
    close: tuple[float, float, float],
    result: str,
) -> dict[str, object]:
    return {
        "season": "2020-2021",
        "matchday": "E0/2020-09-12",
        "result": result,
        **dict(zip(("m_home", "m_draw", "m_away"), p_model, strict=True)),
        **dict(zip(("ps_home", "ps_draw", "ps_away"), price, strict=True)),
        **dict(zip(("psc_home", "psc_draw", "psc_away"), close, strict=True)),
    }


def test_the_rule_bets_only_above_the_edge_and_scores_clv_at_the_close() -> None:
    frame = pd.DataFrame(
        [
            _match((0.60, 0.25, 0.15), (2.0, 3.5, 6.0), (1.8, 3.6, 6.5), "H"),  # 0.6*2 = 1.2: bet
            _match((0.50, 0.30, 0.20), (2.0, 3.2, 5.0), (2.0, 3.2, 5.0), "A"),  # 1.0: no bet
        ]
    )
    placed = bets(frame, "m", edge=0.05)
    assert len(placed) == 1
    q = (1 / 1.8) / (1 / 1.8 + 1 / 3.6 + 1 / 6.5)  # proportional de-vig of the close
    assert placed["clv"].iloc[0] == pytest.approx(2.0 * q - 1.0)
    assert placed["profit"].iloc[0] == pytest.approx(1.0)


def test_a_challenger_worse_on_any_tier_is_refused() -> None:
    gates = PromotionParams(max_logloss=1.1, max_ece=0.1, max_rps=0.25, rps_tolerance=0.0)
    good = {"rps": 0.19, "log_loss": 0.97, "ece": 0.01}
    champion = {
        "test/model/rps": 0.198,
        "validation/ratings_only/rps": 0.195,
        "backtest/with_market-market_baseline/rps": -0.0001,
    }
    better = {k: v - 0.001 for k, v in champion.items()}
    assert registry.decide(good, gates, None, better, champion).promote
    worse_backtest = better | {"backtest/with_market-market_baseline/rps": 0.0002}
    decision = registry.decide(good, gates, None, worse_backtest, champion)
    assert not decision.promote
    assert any("backtest/with_market" in r for r in decision.reasons)


def test_the_promotion_reads_every_tier_of_the_reports() -> None:
    """The extra leagues' tier is compared on its validation figure and its backtest pairs."""
    diff = {"rps": {"mean": -0.002, "low": -0.003, "high": -0.001}}
    figures = registry.tier_figures(
        {"test": {"model": {"rps": 0.198}, "ratings_only": {"rps": 0.203}}},
        {"ratings_only_all_leagues": {"validation_uncalibrated": {"rps": 0.20}}},
        {
            "overall": {"all": {"differences": {"with_market-market_baseline": diff}}},
            "extra_leagues": {
                "by_league": {"all": {"differences": {"ratings_only_all_leagues-elo_only": diff}}}
            },
        },
    )
    assert figures == {
        "test/model/rps": 0.198,
        "test/ratings_only/rps": 0.203,
        "validation/ratings_only_all_leagues/rps": 0.20,
        "backtest/with_market-market_baseline/rps": -0.002,
        "backtest/extra_leagues/ratings_only_all_leagues-elo_only/rps": -0.002,
    }


@pytest.mark.ray
@pytest.mark.slow
def test_two_folds_on_ray_score_every_forecaster(
    synthetic_data_dir: Path, tmp_path: Path, ray_address: str
) -> None:
    raw = pd.concat(
        [
            read_football_data_csv((synthetic_data_dir / lg / f"{s}.csv").read_bytes(), lg, s)
            for lg in ("E0", "SP1")
            for s in ("2016-2017", "2017-2018", "2018-2019", "2019-2020")
        ],
        ignore_index=True,
    )
    build_features(raw, FeatureParams()).to_parquet(tmp_path / "features.parquet")
    cfg = load_config(ROOT / "params.yaml", ROOT / "conf/runtime.yaml", env={})
    paths = cfg.runtime.paths.model_copy(
        update={
            "features": tmp_path / "features.parquet",
            "reports": tmp_path / "reports",
            "backtest_forecasts": tmp_path / "forecasts.parquet",
            "backtest_references": tmp_path / "references.parquet",
        }
    )
    backtest = cfg.params.backtest.model_copy(
        update={"first_season": "2016-2017", "max_folds": 2, "bootstrap": 200}
    )
    cfg = cfg.model_copy(
        update={
            "runtime": cfg.runtime.model_copy(update={"paths": paths}),
            "params": cfg.params.model_copy(update={"backtest": backtest}),
        }
    )
    report = run(cfg)
    assert report["folds"] == ["2018-2019", "2019-2020"]
    assert (
        json.loads((tmp_path / "reports" / "backtest.json").read_text())["folds"] == report["folds"]
    )
    assert (tmp_path / "reports" / "plots" / "backtest.png").stat().st_size > 0
    forecasts = pd.read_parquet(tmp_path / "forecasts.parquet")
    assert sorted(forecasts["season"].unique()) == report["folds"]
    assert forecasts.groupby("season")["model_validation_rps"].nunique().eq(1).all()
    references = pd.read_parquet(tmp_path / "references.parquet")
    assert sorted(references["fold_season"].unique()) == report["folds"]
    assert references[["model_home", "model_draw", "model_away"]].sum(axis=1).round(6).eq(1).all()
    season = report["by_season"][0]
    for name in (
        "model",
        "with_market",
        "with_market_1x2",
        "with_market_one_set",
        "ratings_only",
        "market_baseline",
        "pinnacle_closing",
        "elo_only",
    ):
        assert 0.1 < season[name]["rps"] < 0.3
    diff = report["overall"]["all"]["differences"]["with_market-market_baseline"]["rps"]
    assert diff["low"] <= diff["mean"] <= diff["high"]
    one_set = report["overall"]["all"]["one_set"]["with_market_1x2-with_market_one_set"]["rps"]
    assert one_set["low"] <= one_set["mean"] <= one_set["high"]
    # a design comparison, not a tier against its baseline: promotion never reads it
    assert not any("one_set" in k for k in report["overall"]["all"]["differences"])
    assert "by_season" in report["clv"]["market_baseline"]


def test_a_fold_never_learns_from_its_season_or_later(synthetic_data_dir: Path) -> None:
    """Scramble every result from the fold's season on: its forecasts must not move."""
    raw = pd.concat(
        [
            read_football_data_csv((synthetic_data_dir / lg / f"{s}.csv").read_bytes(), lg, s)
            for lg in ("E0", "SP1")
            for s in ("2016-2017", "2017-2018", "2018-2019", "2019-2020")
        ],
        ignore_index=True,
    )
    table = build_features(raw, FeatureParams())
    fold = make_folds(
        table["season"].unique().tolist(), PARAMS.model_copy(update={"first_season": "2016-2017"})
    )[-2]
    assert fold.season == "2018-2019"
    fast = ModelParams(learning_rate=0.1, n_estimators=100, early_stopping_rounds=10)
    params = ForecasterParams(ratings_only=fast, with_market=fast)
    later = table["season"] >= fold.season
    scrambled = table.copy()
    scrambled.loc[later, "result"] = np.random.default_rng(0).permutation(
        scrambled.loc[later, "result"].to_numpy()
    )
    before = fold_forecasts(table, fold, params, nthread=1)
    after = fold_forecasts(scrambled, fold, params, nthread=1)
    names = [c for c in before.columns if c.endswith(("_home", "_draw", "_away"))]
    pd.testing.assert_frame_equal(before[names], after[names])
