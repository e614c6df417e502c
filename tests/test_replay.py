"""The monitoring replay: the shared drift decision, one season replayed week by week on small
generated data, the detector rates; a shrunk replay (two seasons) through the Ray job."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soccerpredict.config import (
    DriftParams,
    InjectionParams,
    MonitoringParams,
    MonitorReplayParams,
)
from soccerpredict.drift_decision import RESULT_ORDER, column_stat, decide
from soccerpredict.replay import Design, match_rps, replay_season, window_ends
from soccerpredict.replay_inject import inject_season, shift_frame
from soccerpredict.replay_summary import (
    alerts_at_floor,
    choose_level,
    choose_min_effect,
    floors_by_p_value,
    injected_alerts,
    summarise_replay,
    weeks_to_detection,
)

COLUMNS = ["elo_diff", "market_prob_home", "model_home", "result"]
DRIFT = DriftParams(columns=COLUMNS, min_rows=60, window_days=28, min_effect=0.1)
MONITORING = MonitoringParams(
    rolling_matches=150, behind_margin_rps=0.005, baseline="pre_closing_market"
)
REPLAY = MonitorReplayParams(step_days=7, degraded_rps=0.01, event_season="2020-2021")


def matches(
    n: int,
    season: str,
    seed: int,
    home_rate: float = 0.46,
    shift: float = 0.0,
    model_noise: float = 0.0,
) -> pd.DataFrame:
    """Generated played matches with features, forecasts and results, 20 a week."""
    rng = np.random.default_rng(seed)
    home = np.clip(rng.beta(4.5, 5.5, n) + shift, 0.05, 0.9)
    draw = np.full(n, 0.26)
    frame = pd.DataFrame(
        {
            "match_id": [f"{season}-{i}" for i in range(n)],
            "season": season,
            "league": "E0",
            "elo_diff": rng.normal(60, 120, n) + 800 * shift,
            "market_prob_home": home,
            "result": rng.choice(["H", "D", "A"], size=n, p=[home_rate, 0.26, 0.74 - home_rate]),
        }
    )
    start = pd.Timestamp(f"{season[:4]}-08-10 15:00", tz="UTC")
    frame["kickoff_utc"] = start + pd.to_timedelta(np.arange(n) // 20 * 7, unit="D")
    model = np.clip(home + rng.normal(0, model_noise, n), 0.02, 0.72)
    weak = np.clip(home + rng.normal(0, 0.15, n), 0.02, 0.72)  # the ratings-only stand-in
    forecasters = (
        ("model", model),
        ("market_baseline", home),
        ("pinnacle_closing", home),
        ("ratings_only", weak),
    )
    for name, p_home in forecasters:
        frame[f"{name}_home"], frame[f"{name}_draw"] = p_home, draw
        frame[f"{name}_away"] = 1 - p_home - draw
    frame["model_validation_rps"] = 0.20
    return frame


def test_a_tiny_certain_shift_is_not_flagged_and_a_large_one_is() -> None:
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 20000))
    tiny, large = pd.Series(rng.normal(0.07, 1, 20000)), pd.Series(rng.normal(0.5, 1, 2000))
    stats = {
        "tiny": column_stat(reference, tiny, False),
        "large": column_stat(reference, large, False),
    }
    assert stats["tiny"].p_value < 1e-6 and stats["tiny"].wasserstein < 0.1
    assert decide(stats, DriftParams(min_effect=0.0, drift_share=0.5))["drifted_columns"] == [
        "tiny",
        "large",
    ]
    verdict = decide(stats, DriftParams(min_effect=0.1, drift_share=0.5))
    assert verdict["drifted_columns"] == ["large"] and verdict["drifted"]
    assert decide(stats, DriftParams(effect_size="psi", min_effect=0.1))["drifted_columns"] == [
        "large"
    ]


def test_the_result_distance_is_ordinal() -> None:
    reference = pd.Series(list("HHHHDDDAAA") * 100)
    to_away = column_stat(reference, pd.Series(list("HHHDDDAAAA") * 100), True)
    to_draw = column_stat(reference, pd.Series(list("HHHDDDDAAA") * 100), True)
    assert to_away.wasserstein > to_draw.wasserstein > 0


def test_the_ordinal_result_test_sees_a_move_to_the_away_side_sooner() -> None:
    reference = pd.Series(["H"] * 1380 + ["D"] * 780 + ["A"] * 840)  # 46 / 26 / 28%
    lost_home = pd.Series(["H"] * 240 + ["D"] * 156 + ["A"] * 204)  # 40 / 26 / 34%
    stat = column_stat(reference, lost_home, True)
    assert stat.p_ordinal < stat.p_value / 3  # 1 df for a move to one side, not 2
    level = DriftParams(columns=["result"], p_value=0.01, drift_share=1.0)
    chosen = 2 * stat.p_ordinal  # a level between the two p-values
    assert (
        decide({"result": stat}, level.model_copy(update={"p_value": chosen}))["drifted"] is False
    )
    ordinal = level.model_copy(update={"p_value": chosen, "result_test": "ordinal"})
    assert decide({"result": stat}, ordinal)["drifted_columns"] == ["result"]
    draws = column_stat(reference, pd.Series(["H"] * 240 + ["D"] * 192 + ["A"] * 168), True)
    assert draws.p_value < 0.05 < draws.p_ordinal  # more draws, no side: chi-square's to see
    assert np.isnan(column_stat(pd.Series([1.0, 2.0]), pd.Series([3.0, 4.0]), False).p_ordinal)


def test_designs_on_different_window_lengths_are_replayed_side_by_side() -> None:
    reference = matches(2000, "2018-2019", seed=1)
    plan = _plan()
    plan["before"] = Design(
        plan["before"].drift.model_copy(update={"window_days": 56}), plan["before"].monitoring
    )
    rows = replay_season(matches(600, "2019-2020", seed=2), reference, plan, REPLAY)
    same = replay_season(matches(600, "2019-2020", seed=2), reference, _plan(), REPLAY)
    # the outcome and the recorded statistics follow the current design's 28-day window
    assert rows["n"].max() == 80 and rows["n"].tolist() == same["n"].tolist()
    assert rows.filter(like="p:").equals(same.filter(like="p:"))
    assert (rows["after_column_drift"] == same["after_column_drift"]).all()


def test_behind_is_judged_over_the_quality_horizon_and_degraded_over_the_drift_window() -> None:
    reference, season = (
        matches(2000, "2018-2019", seed=1),
        matches(600, "2019-2020", 2, 0.46, 0, 0.1),
    )
    long = replay_season(season, reference, _plan(), REPLAY.model_copy(update={"quality_days": 90}))
    short = replay_season(
        season, reference, _plan(), REPLAY.model_copy(update={"quality_days": 28})
    )
    assert long["rps_change"].equals(short["rps_change"])  # the drift window's (28 days)
    late = long["week"] > 13  # past 90 days the two horizons hold different matches
    assert (long.loc[late, "excess_rps"] != short.loc[late, "excess_rps"]).all()
    early = long["week"] <= 4  # within 28 days of the start both hold the same matches
    assert np.allclose(long.loc[early, "excess_rps"], short.loc[early, "excess_rps"])


def test_window_ends_are_weekly_and_cover_the_season() -> None:
    kickoff = pd.Series(pd.to_datetime(["2020-08-10 15:00", "2020-08-30 19:00"], utc=True))
    ends = window_ends(kickoff, 7)
    assert ends[0] == pd.Timestamp("2020-08-17", tz="UTC") and ends[-1] > kickoff.max()
    assert all(b - a == pd.Timedelta(days=7) for a, b in pairwise(ends))


def _plan() -> dict[str, Design]:
    before = Design(
        DRIFT.model_copy(update={"min_effect": 0.0}),
        MONITORING.model_copy(update={"baseline": "pinnacle_closing"}),
    )
    return {"before": before, "after": Design(DRIFT, MONITORING)}


def test_an_ordinary_season_stays_quiet_and_a_shifted_one_fires() -> None:
    reference = matches(2000, "2018-2019", seed=1)
    quiet = replay_season(matches(600, "2019-2020", seed=2), reference, _plan(), REPLAY)
    assert len(quiet) == 30 and quiet["scored"].sum() == 28  # 20 a week, 60 needed
    assert not quiet["after_window_drift"].any() and not quiet["after_quality"].any()
    moved = replay_season(
        matches(600, "2020-2021", seed=3, home_rate=0.36, shift=-0.08), reference, _plan(), REPLAY
    )
    assert moved.loc[moved["scored"], "after_window_drift"].mean() > 0.9
    assert "model_home" in moved["after_drifted_columns"].iloc[-2]


def test_the_quality_alert_follows_the_model_trailing_its_baseline() -> None:
    reference = matches(2000, "2018-2019", seed=1)
    noisy = replay_season(
        matches(600, "2019-2020", seed=2, model_noise=0.15), reference, _plan(), REPLAY
    )
    fired = noisy[noisy["after_quality"]]
    assert len(fired) > len(noisy) / 2 and (fired["after_quality_gap"] > 0.005).all()
    assert noisy.loc[noisy["scored"], "excess_rps"].mean() > 0.005


def test_the_recorded_statistics_reproduce_the_alerts_and_choose_the_floor_before_the_event() -> (
    None
):
    reference = matches(2000, "2018-2019", seed=1)
    ordinary = matches(600, "2019-2020", seed=2)  # not degraded: validated at its own RPS
    ordinary["model_validation_rps"] = match_rps(ordinary, "model").mean()
    quiet = replay_season(ordinary, reference, _plan(), REPLAY)
    moved = replay_season(
        matches(600, "2020-2021", seed=3, home_rate=0.36, shift=-0.08), reference, _plan(), REPLAY
    )
    after = _plan()["after"]
    for rows in (quiet, moved):  # the floor in use gives back the alerts decide() gave
        column, window = alerts_at_floor(rows, after, after.drift.min_effect)
        assert (column == rows["after_column_drift"]).all()
        assert (window == rows["after_window_drift"]).all()
    # the event season fires at every floor, yet the floor is chosen on the season before it
    choice = choose_min_effect(pd.concat([quiet, moved], ignore_index=True), after, REPLAY)
    assert choice["chosen_on_seasons"] == ["2019-2020"] and choice["chosen"] == 0.0
    assert choice["false_alarms_by_floor"]["0.0"]["window_drift"] <= REPLAY.false_alarm_target


def test_a_looser_family_wise_level_needs_a_floor_at_least_as_high() -> None:
    reference = matches(2000, "2018-2019", seed=1)
    drifting = matches(600, "2019-2020", seed=2, shift=0.03)  # an ordinary season that moves
    drifting["model_validation_rps"] = match_rps(drifting, "model").mean()
    rows = pd.concat(
        [
            replay_season(drifting, reference, _plan(), REPLAY),
            replay_season(
                matches(600, "2020-2021", seed=3, home_rate=0.36, shift=-0.08),
                reference,
                _plan(),
                REPLAY,
            ),
        ],
        ignore_index=True,
    )
    after = _plan()["after"]
    levels = REPLAY.model_copy(update={"p_value_grid": [0.001, 0.01, 0.05, 0.5]})
    table = floors_by_p_value(rows, after, levels)
    floors = [entry["floor"] for entry in table]
    assert [entry["p_value"] for entry in table] == [0.001, 0.01, 0.05, 0.5]
    assert floors == sorted(floors) and floors[-1] > floors[0]
    for entry in table:  # each floor meets the target on the season before the event
        assert entry["column_drift"]["false_alarms_before_event"] <= REPLAY.false_alarm_target
        assert entry["window_drift"]["false_alarms_before_event"] <= REPLAY.false_alarm_target
    # the level in use gives the same floor as the rule that sets params.yaml's
    in_use = next(e for e in table if e["p_value"] == after.drift.p_value)
    assert in_use["floor"] == choose_min_effect(rows, after, REPLAY)["chosen"]


def test_the_quality_rule_on_the_stand_in_detects_a_forecaster_that_trails() -> None:
    reference = matches(2000, "2018-2019", seed=1)
    rows = replay_season(matches(600, "2019-2020", seed=2), reference, _plan(), REPLAY)
    stand_in = summarise_replay(rows, _plan(), REPLAY)["designs"]["after"]["alerts"]["quality"][
        "stand_in"
    ]
    assert stand_in["forecaster"] == "ratings_only" and stand_in["behind_windows"] > 10
    assert stand_in["detection_behind"] >= 0.8
    assert not rows["after_quality"].any()  # the champion itself does not trail


def test_the_quality_window_is_chosen_on_the_seasons_before_the_event() -> None:
    reference = matches(2000, "2018-2019", seed=1)
    rows = pd.concat(
        [
            replay_season(matches(600, season, seed=seed), reference, _plan(), REPLAY)
            for season, seed in (("2019-2020", 2), ("2020-2021", 3))
        ],
        ignore_index=True,
    )
    # the generated stand-in trails in nearly every window: few windows are not behind
    loose = REPLAY.model_copy(update={"false_alarm_target": 0.5})
    choice = summarise_replay(rows, _plan(), loose)["quality_window"]
    table = choice["by_rolling_matches"]
    assert list(table) == [str(n) for n in REPLAY.rolling_matches_grid]
    chosen = table[str(choice["chosen"])]
    assert chosen["fired_when_not_behind_before_event"] <= loose.false_alarm_target
    # the highest detection before the event among the windows quiet enough
    quiet = [
        e["detection_before_event"]
        for e in table.values()
        if e["fired_when_not_behind_before_event"] <= loose.false_alarm_target
    ]
    assert chosen["detection_before_event"] == max(quiet)
    assert choice["in_use"] == MONITORING.rolling_matches
    strict = REPLAY.model_copy(update={"false_alarm_target": 0.01})
    assert summarise_replay(rows, _plan(), strict)["quality_window"]["chosen"] is None


def test_rates_count_false_alarms_detection_and_the_first_week_of_the_event() -> None:
    rows = pd.DataFrame(
        {
            "season": ["2019-2020"] * 4 + ["2020-2021"] * 3,
            "week": [1, 2, 3, 4, 1, 2, 3],
            "scored": [False, True, True, True, True, True, True],
            "rps_change": [0.0, 0.0, 0.02, 0.0, 0.0, 0.03, 0.03],
            "excess_rps": [0.0, 0.0, 0.006, 0.0, 0.0, 0.0, 0.0],
            **{
                f"{d}_{a}": [True, True, True, False, False, False, True]
                for d in ("before", "after")
                for a in ("window_drift", "column_drift", "quality")
            },
        }
    )
    report = summarise_replay(rows, _plan(), REPLAY)
    rates = report["designs"]["after"]["alerts"]["window_drift"]
    assert report["counts"] == {
        "windows": 7,
        "scored": 6,
        "degraded": 3,
        "ordinary": 2,
        "behind_before": 1,
        "behind_after": 1,
    }
    assert rates["false_alarms"] == 0.5 and rates["detection"] == pytest.approx(2 / 3, abs=1e-4)
    assert rates["detection_behind"] == 1.0 and rates["event_first_week"] == 3


def _ordinary(season: str = "2019-2020", seed: int = 2) -> pd.DataFrame:
    frame = matches(600, season, seed=seed)  # not degraded: validated at its own RPS
    frame["model_validation_rps"] = match_rps(frame, "model").mean()
    return frame


TWO_COLUMNS = {"model_home": -1.0, "market_prob_home": -1.0}  # the window alert needs two


def test_a_shifted_result_moves_its_mean_code_by_the_size_in_reference_deviations() -> None:
    reference, current = matches(2000, "2018-2019", seed=1), matches(2000, "2019-2020", seed=2)
    rows = np.arange(len(current)) >= 1000  # from a known match on
    moved = shift_frame(current, reference, {"result": 1.0}, 0.3, rows, np.random.default_rng(0))
    code = reference["result"].map(RESULT_ORDER)
    change = moved["result"].map(RESULT_ORDER) - current["result"].map(RESULT_ORDER)
    assert (change[~rows] == 0).all() and set(change[rows]) == {0.0, 1.0}  # one step, to away
    assert change[rows].mean() == pytest.approx(0.3 * code.std(ddof=0), rel=0.15)
    numeric = shift_frame(
        current, reference, {"elo_diff": -1.0}, 0.5, rows, np.random.default_rng(0)
    )
    diff = numeric["elo_diff"] - current["elo_diff"]
    assert (diff[~rows] == 0).all()
    assert np.allclose(diff[rows], -0.5 * reference["elo_diff"].std(ddof=0))


def test_a_shifted_probability_stays_a_probability() -> None:
    reference, current = matches(2000, "2018-2019", seed=1), matches(2000, "2019-2020", seed=2)
    rows = np.ones(len(current), dtype=bool)
    shifts = {"market_prob_home": -1.0, "model_away": 1.0, "elo_diff": -1.0}
    moved = shift_frame(current, reference, shifts, 3.0, rows, np.random.default_rng(0))
    for column in ("market_prob_home", "model_away"):
        assert moved[column].between(0.0, 1.0).all()
    assert (moved["market_prob_home"] == 0.0).any() and (moved["model_away"] == 1.0).any()
    assert (moved["elo_diff"] < -1.0).any()  # a rating difference is not a probability


def test_an_injected_shift_of_a_clear_size_is_detected_and_no_shift_gives_no_alarm() -> None:
    reference, ordinary = matches(2000, "2018-2019", seed=1), _ordinary()
    replay = REPLAY.model_copy(
        update={
            "injection": InjectionParams(
                scenarios={"home_prices": TWO_COLUMNS}, sizes=[0.0, 1.0], start_weeks=[1, 10]
            )
        }
    )
    after = _plan()["after"]
    injected = inject_season(ordinary, reference, after, replay)
    base = replay_season(ordinary, reference, _plan(), replay)
    assert not base["after_column_drift"].any()  # the season itself is quiet
    column, window = injected_alerts(injected, after, DRIFT.p_value, DRIFT.min_effect)
    none = injected["size"] == 0.0
    assert not column[none].any() and not window[none].any()  # no shift, no alarm
    for alert in (column, window):
        runs = weeks_to_detection(injected, alert)
        clear = runs.xs(1.0, level="size")["weeks"]
        # from the season's start: the first scored week (60 matches at 20 a week: week 3);
        # from week 10: by the time the 4-week window holds only shifted matches
        assert clear.xs(1, level="start_week").tolist() == [3.0]
        assert 1 <= clear.xs(10, level="start_week").iloc[0] <= 4
        assert runs.xs(0.0, level="size")["weeks"].isna().all()


def test_the_level_is_chosen_on_injected_shifts_before_the_event_and_held_out_after() -> None:
    reference = matches(2000, "2018-2019", seed=1)
    event = matches(600, "2020-2021", seed=3, home_rate=0.36, shift=-0.08)
    replay = REPLAY.model_copy(
        update={
            "p_value_grid": [0.001, 0.05, 0.5],
            "injection": InjectionParams(
                scenarios={"home_prices": TWO_COLUMNS, "result": {"result": 1.0}},
                sizes=[0.2, 0.5],
                start_weeks=[1, 12],
            ),
        }
    )
    after = _plan()["after"]
    ordinary = _ordinary()
    rows = pd.concat(
        [replay_season(f, reference, _plan(), replay) for f in (ordinary, event)],
        ignore_index=True,
    )
    injected = inject_season(ordinary, reference, after, replay)
    choice = choose_level(rows, injected, after, replay)
    assert choice["chosen_on_seasons"] == ["2019-2020"] and choice["runs"] == 8
    table = {e["p_value"]: e for e in choice["by_p_value"]}
    chosen = choice["chosen"]
    assert chosen["min_effect"] == table[chosen["p_value"]]["floor"]
    assert table[chosen["p_value"]]["mean_weeks"] == min(e["mean_weeks"] for e in table.values())
    for entry in table.values():  # every candidate meets the false-alarm target unshifted
        assert max(entry["false_alarms_before_event"].values()) <= replay.false_alarm_target
    # the event season is never read: without it, or with it shifted too, the same choice
    without = rows[rows["season"] != "2020-2021"]
    event_shifted = inject_season(event, reference, after, replay)
    assert choose_level(without, injected, after, replay)["chosen"] == chosen
    assert (
        choose_level(rows, pd.concat([injected, event_shifted]), after, replay)["chosen"] == chosen
    )
    # only after the choice is the design shown on the event
    report = summarise_replay(rows, _plan(), replay, injected)["injection"]
    assert report["chosen"] == chosen
    assert report["chosen_held_out"]["column_drift"]["event_first_week"] is not None


@pytest.mark.ray
@pytest.mark.slow
def test_a_two_season_replay_through_the_job(ray_address: str, tmp_path: Path) -> None:
    from ray_jobs.monitor_replay import run
    from soccerpredict.config import load_config

    frames = [
        matches(600, "2019-2020", seed=2),
        matches(600, "2020-2021", seed=3, home_rate=0.36, shift=-0.08),
    ]
    reference = matches(2000, "2018-2019", seed=1)
    features = pd.concat([*frames, reference], ignore_index=True)
    forecasts = pd.concat(frames, ignore_index=True).assign(model_validation_rps=0.3)  # no decline
    references = pd.concat(
        [
            reference.assign(fold_season=s)[
                ["fold_season", "match_id", "model_home", "model_draw", "model_away"]
            ]
            for s in ("2019-2020", "2020-2021")
        ],
        ignore_index=True,
    )
    paths = {
        "features": tmp_path / "f.parquet",
        "backtest_forecasts": tmp_path / "bf.parquet",
        "backtest_references": tmp_path / "br.parquet",
        "reports": tmp_path / "reports",
    }
    for key, frame in (
        ("features", features),
        ("backtest_forecasts", forecasts),
        ("backtest_references", references),
    ):
        frame.to_parquet(paths[key])
    cfg = load_config()
    params = cfg.params.model_copy(
        update={
            "drift": DRIFT,
            "monitoring": MONITORING,
            "monitor_replay": REPLAY.model_copy(
                update={
                    "first_season": "2019-2020",
                    "before": {"drift": {"min_effect": 0.0}},
                    "injection": InjectionParams(scenarios={"prices": TWO_COLUMNS}),
                }
            ),
        }
    )
    cfg = cfg.model_copy(
        update={
            "params": params,
            "runtime": cfg.runtime.model_copy(
                update={"paths": cfg.runtime.paths.model_copy(update=paths)}
            ),
        }
    )
    report = run(cfg)
    saved = json.loads((tmp_path / "reports" / "monitor_replay.json").read_text())
    assert saved["seasons"] == report["seasons"] == ["2019-2020", "2020-2021"]
    after = saved["designs"]["after"]["alerts"]["window_drift"]
    assert after["false_alarms"] == 0.0 and after["event_first_week"] == 3
    assert (tmp_path / "reports" / "plots" / "monitor_replay.png").stat().st_size > 0
    injection = saved["injection"]  # chosen on the season before the event only
    assert injection["chosen_on_seasons"] == ["2019-2020"] and injection["chosen"] is not None
    assert injection["runs"] == 3 and "chosen_held_out" in injection
    windows = pd.read_csv(tmp_path / "reports" / "monitor_replay_windows.csv")
    assert len(windows) == 60


def test_the_job_without_backtest_forecasts_exits_and_writes_nothing(tmp_path: Path) -> None:
    from ray_jobs.monitor_replay import run
    from soccerpredict.config import load_config

    cfg = load_config()
    paths = cfg.runtime.paths.model_copy(
        update={"backtest_forecasts": tmp_path / "missing.parquet", "reports": tmp_path / "reports"}
    )
    cfg = cfg.model_copy(update={"runtime": cfg.runtime.model_copy(update={"paths": paths})})
    with pytest.raises(SystemExit, match="cannot read the backtest's forecasts"):
        run(cfg)
    assert not (tmp_path / "reports").exists()
