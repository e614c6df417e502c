"""The forecaster tiers on a generated (or real) feature table: behaviour, not just shapes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soccerpredict.config import FeatureParams, ForecasterParams
from soccerpredict.data.readers import read_football_data_csv
from soccerpredict.evaluation import PRE_MATCH_PRICE_FEATURES, one_price_set
from soccerpredict.features.build import PRICE_COLUMNS, build_features
from soccerpredict.features.market import EXTRA_MARKET_FEATURES
from soccerpredict.models.forecasters import fit_predictor
from soccerpredict.models.market import (
    MARKET_SET,
    MarketBaseline,
    MarketConsensus,
    candidates,
    choose_market_baseline,
    market_forecast_from_dict,
)
from soccerpredict.models.predictor import (
    LEAGUE_CODE,
    RATINGS_ONLY,
    RATINGS_ONLY_ALL,
    WITH_MARKET,
    WITH_MARKET_1X2,
    Forecaster,
    Predictor,
    league_code,
)
from tests.projects import FAST_TIER

SEASONS = ("2016-2017", "2017-2018", "2018-2019", "2019-2020")
FAST = FAST_TIER


@pytest.fixture(scope="module")
def table(synthetic_data_dir: Path) -> pd.DataFrame:
    raw = pd.concat(
        [
            read_football_data_csv((synthetic_data_dir / lg / f"{s}.csv").read_bytes(), lg, s)
            for lg in ("E0", "SP1")
            for s in SEASONS
        ],
        ignore_index=True,
    )
    return build_features(raw, FeatureParams())


@pytest.fixture(scope="module")
def fitted(table: pd.DataFrame) -> tuple[Predictor, dict[str, object], pd.DataFrame]:
    train = table[table["season"] < "2018-2019"]
    validation = table[table["season"] == "2018-2019"]
    predictor, summary = fit_predictor(
        train,
        validation,
        ForecasterParams(ratings_only=FAST, with_market=FAST.model_copy(update={"max_depth": 2})),
    )
    return predictor, summary, table[table["season"] == "2019-2020"].reset_index(drop=True)


def _ratings(predictor: Predictor, frame: pd.DataFrame) -> np.ndarray:
    return predictor.forecasters[RATINGS_ONLY].predict_proba(frame)


@pytest.mark.parametrize("change", ["nan", "shuffled", "changed"])
def test_ratings_only_never_reads_a_price(fitted, change: str) -> None:  # type: ignore[no-untyped-def]
    predictor, _, test = fitted
    other = test.copy()
    prices = PRE_MATCH_PRICE_FEATURES + ["psc_home", "psc_draw", "psc_away"]
    rng = np.random.default_rng(0)
    if change == "nan":
        other[prices] = np.nan
    elif change == "shuffled":
        other[prices] = other[prices].to_numpy()[rng.permutation(len(other))]
    else:
        other[prices] = other[prices] * rng.uniform(0.5, 2.0, size=(len(other), len(prices)))
    np.testing.assert_array_equal(_ratings(predictor, other), _ratings(predictor, test))


def test_each_row_gets_the_tier_built_for_its_inputs(fitted) -> None:  # type: ignore[no-untyped-def]
    """No price: ratings_only. One 1X2 price set (what most requests carry): with_market_1x2.
    The market baseline's book among the prices: with_market."""
    predictor, _, test = fitted
    market = predictor.forecasters[WITH_MARKET]
    assert market.baseline is not None and market.requires == market.baseline.columns
    full = test[np.isfinite(test[market.requires].to_numpy(float)).all(axis=1)]
    third = len(full) // 3
    mixed = pd.concat(
        [
            full[:third].assign(**{c: np.nan for c in PRE_MATCH_PRICE_FEATURES}),
            one_price_set(full[third : 2 * third]),
            full[2 * third :],
        ],
        ignore_index=True,
    )
    expected = np.repeat(
        [RATINGS_ONLY, WITH_MARKET_1X2, WITH_MARKET], [third, third, len(full) - 2 * third]
    )
    tiers = predictor.tiers(mixed)
    assert list(tiers) == list(expected)
    probs = predictor.predict_proba(mixed)
    for name, forecaster in predictor.forecasters.items():
        rows = tiers == name
        np.testing.assert_allclose(probs[rows], forecaster.predict_proba(mixed[rows]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # what serving calls: the same answer and routing in one pass
    together, routed = predictor.predict_with_tiers(mixed)
    np.testing.assert_array_equal(together, probs)
    assert list(routed) == list(expected)


def test_the_one_set_tier_reads_only_the_1x2_set(fitted) -> None:  # type: ignore[no-untyped-def]
    predictor, _, test = fitted
    one_set = predictor.forecasters[WITH_MARKET_1X2]
    assert one_set.baseline is not None and one_set.baseline.book == MARKET_SET
    other = test.copy()
    other[PRICE_COLUMNS + EXTRA_MARKET_FEATURES] = np.nan
    np.testing.assert_array_equal(one_set.predict_proba(other), one_set.predict_proba(test))


def test_with_market_corrects_the_baseline_instead_of_relearning_it(fitted) -> None:  # type: ignore[no-untyped-def]
    predictor, _, test = fitted
    market = predictor.forecasters[WITH_MARKET]
    assert isinstance(market.baseline, MarketConsensus)
    gap = np.abs(market.predict_proba(test) - market.baseline.predict_proba(test))
    assert gap.mean() < 0.05
    # the single book it is measured against is kept beside it, chosen on validation
    assert isinstance(predictor.market_baseline, MarketBaseline)


def _with_correction(forecaster: Forecaster, correction: float) -> Forecaster:
    return Forecaster(
        forecaster.name,
        forecaster.booster,
        forecaster.calibrator,
        forecaster.columns,
        forecaster.baseline,
        forecaster.requires,
        correction,
    )


def test_the_correction_share_moves_from_the_market_to_the_trees(fitted) -> None:  # type: ignore[no-untyped-def]
    predictor, _, test = fitted
    market = predictor.forecasters[WITH_MARKET]
    assert market.baseline is not None
    consensus = market.baseline.predict_proba(test)
    none, full = _with_correction(market, 0.0), _with_correction(market, 1.0)
    np.testing.assert_allclose(none.raw_proba(test), consensus, atol=1e-12)
    gap_full = np.abs(full.raw_proba(test) - consensus).mean()
    gap_half = np.abs(_with_correction(market, 0.5).raw_proba(test) - consensus).mean()
    assert 0.0 < gap_half < gap_full


def test_the_consensus_is_the_geometric_mean_of_its_books(table: pd.DataFrame) -> None:
    frame = table[table["season"] == "2019-2020"].head(50).reset_index(drop=True)
    consensus = MarketConsensus(("ps", "avg"), "power")
    ps = MarketBaseline("ps", "power").predict_proba(frame)
    avg = MarketBaseline("avg", "power").predict_proba(frame)
    expected = np.sqrt(ps * avg)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(consensus.predict_proba(frame), expected, rtol=1e-12)
    # a row without Pinnacle uses the average alone; without either, the table's market
    frame.loc[0, ["ps_home", "ps_draw", "ps_away"]] = np.nan
    frame.loc[1, ["ps_home", "ps_draw", "ps_away", "avg_home", "avg_draw", "avg_away"]] = np.nan
    probs = consensus.predict_proba(frame)
    np.testing.assert_allclose(probs[0], avg[0], rtol=1e-12)
    np.testing.assert_allclose(
        probs[1],
        frame.loc[1, ["market_prob_home", "market_prob_draw", "market_prob_away"]].to_numpy(float),
    )
    assert market_forecast_from_dict(consensus.to_dict()) == consensus


def test_the_market_baseline_is_the_best_candidate_on_validation(table: pd.DataFrame) -> None:
    chosen, scores = choose_market_baseline(table[table["season"] == "2018-2019"])
    assert set(scores) == {c.name for c in candidates()}
    assert scores[chosen.name]["rps"] == min(s["rps"] for s in scores.values())


def test_a_saved_predictor_answers_the_same(fitted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    predictor, _, test = fitted
    loaded = Predictor.load(predictor.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.predict_proba(test), predictor.predict_proba(test))
    assert list(loaded.forecasters) == [WITH_MARKET, WITH_MARKET_1X2, RATINGS_ONLY]
    assert loaded.market_baseline == predictor.market_baseline
    market, saved = loaded.forecasters[WITH_MARKET], predictor.forecasters[WITH_MARKET]
    assert (market.baseline, market.correction) == (saved.baseline, saved.correction)


def test_extra_leagues_scored_per_league_on_the_same_matches(fitted, table: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    """A league without pre-closing prices (an extra league): every forecaster on the matches
    with a benchmark price, Elo and base rates from the league's own training rows."""
    from soccerpredict.evaluation import (
        EXTRA_FORECASTERS,
        PRE_MATCH_PRICE_FEATURES,
        evaluate_extra_leagues,
    )

    predictor, _, test = fitted
    extra_test = test[test["league"] == "SP1"].copy()
    extra_test[PRE_MATCH_PRICE_FEATURES] = np.nan  # no pre-closing price, as in those files
    extra_test.loc[extra_test.index[:5], "psc_home"] = np.nan  # no benchmark: not scored
    orphan = test[test["league"] == "E0"].assign(league="XX")  # no training rows of its own
    extra_train = table[(table["league"] == "SP1") & (table["season"] < "2019-2020")]
    scores, frame = evaluate_extra_leagues(predictor, extra_train, pd.concat([extra_test, orphan]))
    entry = scores["leagues"]["SP1"]
    assert scores["skipped"] == ["XX"]
    assert entry["n_common"] == len(extra_test) - 5 == scores["all"]["n_common"] == len(frame)
    assert set(entry["test"]) == set(EXTRA_FORECASTERS)
    kept = extra_test[extra_test["psc_home"].notna()]
    ours = frame[[f"ratings_only_{o}" for o in ("H", "D", "A")]].to_numpy()
    assert np.allclose(ours, _ratings(predictor, kept))


def test_the_extra_leagues_get_a_ratings_only_tier_of_their_own_only_when_asked(
    table: pd.DataFrame,
) -> None:
    train = table[table["season"] < "2018-2019"]
    validation = table[table["season"] == "2018-2019"]
    extra = (train.assign(league="XX"), validation.assign(league="XX"))
    params = ForecasterParams(
        ratings_only=FAST, with_market=FAST.model_copy(update={"max_depth": 2})
    )
    off, s_off = fit_predictor(train, validation, params, extra=extra)
    on, s_on = fit_predictor(
        train,
        validation,
        params.model_copy(update={"ratings_only_all_leagues": True}),
        extra=extra,
    )
    assert RATINGS_ONLY_ALL not in off.forecasters and RATINGS_ONLY_ALL not in s_off
    assert list(on.forecasters)[-1] == RATINGS_ONLY_ALL
    # ratings_only is the same tier either way, on the top-5 rows only
    assert s_on[RATINGS_ONLY]["n_train"] == s_off[RATINGS_ONLY]["n_train"]
    assert s_on[RATINGS_ONLY_ALL]["n_train"] == 2 * s_off[RATINGS_ONLY]["n_train"]
    assert s_on[WITH_MARKET]["n_train"] == s_off[WITH_MARKET]["n_train"]  # never the extra rows
    assert s_on["market_baseline"] == s_off["market_baseline"]
    # routing: a top-5 row without prices gets ratings_only, an extra league's row (or one of a
    # league never seen) the all-leagues tier, whether the league is a name or a served code
    rows = validation.head(3).copy()
    prices = PRE_MATCH_PRICE_FEATURES + ["psc_home", "psc_draw", "psc_away"]
    wide = on.forecasters[RATINGS_ONLY_ALL]
    shuffled = rows.assign(**{c: rows[c].to_numpy()[::-1] for c in prices})
    np.testing.assert_array_equal(wide.predict_proba(shuffled), wide.predict_proba(rows))
    rows[prices] = np.nan
    np.testing.assert_array_equal(wide.predict_proba(rows), wide.predict_proba(shuffled))
    rows["league"] = [rows["league"].iloc[0], "XX", "YY"]
    expected = [RATINGS_ONLY, RATINGS_ONLY_ALL, RATINGS_ONLY_ALL]
    assert list(on.tiers(rows)) == expected
    coded = rows.drop(columns="league").assign(
        **{LEAGUE_CODE: [league_code(lg) for lg in rows["league"]]}
    )
    assert list(on.tiers(coded)) == expected
    assert list(off.tiers(rows)) == [RATINGS_ONLY] * 3
    # a frame of the features alone (an MLflow pyfunc caller's): the first tier that fits
    assert list(on.tiers(rows.drop(columns="league"))) == [RATINGS_ONLY] * 3
    probs, _ = on.predict_with_tiers(rows)
    assert np.allclose(probs[0], on.forecasters[RATINGS_ONLY].predict_proba(rows.head(1))[0])
    assert np.allclose(probs[1], on.forecasters[RATINGS_ONLY_ALL].predict_proba(rows.iloc[[1]])[0])
    # and the leagues survive a save and load
    with tempfile.TemporaryDirectory() as tmp:
        loaded = Predictor.load(on.save(Path(tmp)))
    assert list(loaded.tiers(coded)) == expected
