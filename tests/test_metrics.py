import numpy as np
import pandas as pd
import pytest

from soccerpredict.metrics import (
    accuracy,
    brier,
    calibration_table,
    devig,
    ece,
    log_loss,
    outcome_index,
    overround,
    rps,
    rps_average,
    score_all,
)


def _hand_rps(p, k):
    o = np.zeros(3)
    o[k] = 1.0
    c1 = p[0] - o[0]
    c2 = p[0] + p[1] - o[0] - o[1]
    return (c1**2 + c2**2) / 2


@pytest.mark.parametrize(
    ("p", "k", "expected"),
    [
        ((1.0, 0.0, 0.0), 0, 0.0),
        ((1.0, 0.0, 0.0), 2, 1.0),
        ((1 / 3, 1 / 3, 1 / 3), 1, 1 / 9),
        ((0.5, 0.3, 0.2), 0, 0.5 * (0.5**2 + 0.2**2)),
    ],
)
def test_rps_known_cases(p, k, expected):
    got = rps(np.array([p]), np.array([k]))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(expected)
    assert got[0] == pytest.approx(_hand_rps(np.array(p), k))


def test_rps_matches_hand_formula_random():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=200)
    y = rng.integers(0, 3, size=200)
    expected = np.array([_hand_rps(p[i], y[i]) for i in range(200)])
    np.testing.assert_allclose(rps(p, y), expected)
    assert rps_average(p, y) == pytest.approx(expected.mean())


def test_rps_is_ordered():
    # predicting a draw is less wrong than predicting an away win when home wins
    assert (
        rps(np.array([[0, 1, 0.0]]), np.array([0]))[0]
        < rps(np.array([[0, 0, 1.0]]), np.array([0]))[0]
    )


def test_outcome_index():
    np.testing.assert_array_equal(outcome_index(["H", "D", "A", "H"]), [0, 1, 2, 0])
    np.testing.assert_array_equal(outcome_index(pd.Series(["A", "D"])), [2, 1])
    assert outcome_index([]).shape == (0,)


@pytest.mark.parametrize("bad", [["H", "X"], ["h"], ["H", None], [1], ["H", np.nan]])
def test_outcome_index_rejects(bad):
    with pytest.raises(ValueError):
        outcome_index(bad)


def test_log_loss_brier_accuracy_known():
    p = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    y = np.array([0, 1])
    assert log_loss(p, y) == pytest.approx(-(np.log(0.5) + np.log(0.2)) / 2)
    b1 = 0.5**2 + 0.3**2 + 0.2**2
    b2 = 0.2**2 + 0.8**2 + 0.6**2
    assert brier(p, y) == pytest.approx((b1 + b2) / 2)
    assert accuracy(p, y) == pytest.approx(0.5)
    # a zero forecast for the observed outcome stays finite thanks to clipping
    assert np.isfinite(log_loss(np.array([[0.0, 0.0, 1.0]]), np.array([0])))


def test_shape_checks():
    with pytest.raises(ValueError):
        rps(np.ones((3, 2)) / 2, np.zeros(3, dtype=int))
    with pytest.raises(ValueError):
        brier(np.ones((3, 3)) / 3, np.zeros(2, dtype=int))
    with pytest.raises(ValueError):
        log_loss(np.ones((1, 3)) / 3, np.array([3]))


def _synthetic(n, rng):
    p = rng.dirichlet(np.ones(3) * 2, size=n)
    y = np.array([rng.choice(3, p=row) for row in p])
    return p, y


def test_ece_calibrated_vs_overconfident():
    rng = np.random.default_rng(1)
    p, y = _synthetic(20000, rng)
    calibrated = ece(p, y)
    sharp = p**3 / (p**3).sum(axis=1, keepdims=True)
    assert calibrated < 0.02
    assert ece(sharp, y) > calibrated + 0.03


def test_calibration_table_and_score_all():
    rng = np.random.default_rng(2)
    p, y = _synthetic(500, rng)
    table = calibration_table(p, y, n_bins=5)
    assert list(table.columns) == ["class", "bin", "mean_predicted", "observed_frequency", "count"]
    assert set(table["class"]) == {"H", "D", "A"}
    assert (table.groupby("class")["count"].sum() == 500).all()
    assert table["bin"].between(0, 4).all()
    scores = score_all(p, y)
    assert set(scores) == {"rps", "log_loss", "brier", "ece", "accuracy", "n"}
    assert scores["n"] == 500
    assert scores["rps"] == pytest.approx(rps_average(p, y))


def test_ece_handles_probability_one():
    p = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert ece(p, np.array([0, 2])) == pytest.approx(0.0)


def test_devig_proportional_known():
    got = devig(np.array([[2.0, 3.5, 4.0]]))
    inv = np.array([1 / 2.0, 1 / 3.5, 1 / 4.0])
    np.testing.assert_allclose(got[0], inv / inv.sum())
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    assert overround(np.array([[2.0, 3.5, 4.0]]))[0] == pytest.approx(inv.sum() - 1)


@pytest.mark.parametrize("method", ["proportional", "power", "shin"])
def test_devig_sums_to_one_and_nan_rows(method):
    odds = np.array(
        [
            [2.0, 3.5, 4.0],
            [1.25, 6.0, 12.0],
            [np.nan, 3.2, 3.0],
            [2.5, 1.0, 3.0],
            [3.1, 3.3, 2.4],
            [2.1, 3.6, 4.2],  # slight under-round (booksum < 1): still a valid distribution
            [1.001, 200.0, 500.0],
        ]
    )
    p = devig(odds, method=method)
    assert p.shape == odds.shape
    ok = [0, 1, 4, 5, 6]
    np.testing.assert_allclose(p[ok].sum(axis=1), 1.0, atol=1e-12)
    assert (p[ok] > 0).all()
    assert np.isnan(p[[2, 3]]).all()
    assert np.isnan(overround(odds)[[2, 3]]).all()


def test_devig_power_and_shin_shift_margin_to_longshots():
    odds = np.array([[1.25, 6.0, 12.0]])
    prop, power, shin = (devig(odds, m)[0] for m in ("proportional", "power", "shin"))
    # both favourite-longshot corrections give the favourite more than proportional does
    assert power[0] > prop[0] and shin[0] > prop[0]
    assert power[2] < prop[2] and shin[2] < prop[2]


def test_devig_unknown_method():
    with pytest.raises(ValueError):
        devig(np.array([[2.0, 3.5, 4.0]]), method="magic")
