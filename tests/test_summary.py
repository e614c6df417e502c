"""The main command's closing summary: every forecaster, best RPS first, and the backtest."""

from ray_jobs.summary import lines


def _scores(rps: float) -> dict[str, float]:
    return {"rps": rps, "log_loss": 1.0, "ece": 0.01}


def test_the_summary_ranks_forecasters_by_rps_and_reports_each_backtest_interval() -> None:
    metrics = {
        "n_common": 10,
        "test": {"uniform": _scores(0.2357), "with_market": _scores(0.1982)},
        "model_without_prices": _scores(0.2026),
    }
    diff = {"rps": {"mean": -0.0001, "low": -0.0002, "high": 0.00001}}
    backtest = {
        "folds": ["2019-2020", "2020-2021"],
        "n_matches": 3,
        "overall": {"all": {"differences": {"with_market-market_baseline": diff}}},
    }
    out = lines(metrics, backtest)
    names = [line.split()[0] for line in out if line.startswith("  ") and "0." in line]
    assert names[:2] == ["with_market", "uniform"]
    assert any("no prices: RPS 0.2026" in line for line in out)
    assert any("-0.00010 [-0.00020, +0.00001]" in line for line in out)
    assert lines(metrics, None)[-1].endswith("(answered by ratings_only)")
