"""Gates on real Great Expectations runs: a valid table passes, each kind of broken input fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from soccerpredict.data.contract import MATCH_COLUMNS, MATCH_SCHEMA, ODDS_COLUMNS
from soccerpredict.validation import GateFailed, GateResult, run_gate

NOW = datetime(2024, 6, 1, tzinfo=UTC)
TEAMS = ["Arsenal", "Chelsea", "Everton", "Fulham", "Leeds", "Wolves"]


def _result(h: int, a: int) -> str:
    return "H" if h > a else "A" if h < a else "D"


def valid_matches(n: int = 20) -> pd.DataFrame:
    """`n` played matches of one plausible season, conforming to MATCH_SCHEMA."""
    rng = np.random.default_rng(7)
    rows = []
    start = datetime(2023, 8, 12, 14, tzinfo=UTC)
    for i in range(n):
        home, away = TEAMS[i % 6], TEAMS[(i + 1 + i // 6) % 6]
        hg, ag = (int(x) for x in rng.integers(0, 4, size=2))
        row = dict.fromkeys(MATCH_COLUMNS)
        row.update(
            match_id=f"E0-{i:03d}",
            source_id=str(i),
            source="football-data",
            league="E0",
            season="2023-24",
            kickoff_utc=start + timedelta(days=7 * i),
            home_team=home,
            away_team=away,
            home_goals=hg,
            away_goals=ag,
            result=_result(hg, ag),
            ht_home_goals=min(hg, 1),
            ht_away_goals=0,
            home_shots=12.0,
            away_shots=9.0,
            home_shots_on_target=5.0,
            away_shots_on_target=3.0,
        )
        row.update({c: 2.0 + (i % 5) / 10 for c in ODDS_COLUMNS})
        rows.append(row)
    df = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    # round trip through the contract so dtypes are those every stage really sees
    return pa.Table.from_pandas(df, schema=MATCH_SCHEMA, preserve_index=False).to_pandas()


def valid_features(n: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([4, 3, 3], size=n)
    return pd.DataFrame(
        {
            "match_id": [f"E0-{i:03d}" for i in range(n)],
            "elo_home": rng.normal(1500, 80, n),
            "elo_away": rng.normal(1500, 80, n),
            "elo_diff": rng.normal(0, 100, n),
            "elo_expected_home": rng.uniform(0.2, 0.8, n),
            "market_prob_home": probs[:, 0],
            "market_prob_draw": probs[:, 1],
            "market_prob_away": probs[:, 2],
            "market_overround": np.full(n, 1.05),
        }
    )


FEATURES = [
    "elo_home",
    "elo_away",
    "elo_diff",
    "elo_expected_home",
    "market_prob_home",
    "market_prob_draw",
    "market_prob_away",
    "market_overround",
]


def _fails(gate: str, df: pd.DataFrame, tmp_path: Path, **kw) -> GateFailed:
    with pytest.raises(GateFailed) as info:
        run_gate(gate, df, tmp_path, now=NOW, **kw)
    exc = info.value
    assert exc.gate == gate and str(exc) == exc.summary
    assert exc.report_path == tmp_path / f"validation_{gate}.json" and exc.report_path.exists()
    assert not json.loads(exc.report_path.read_text())["success"]
    assert (tmp_path / f"validation_{gate}.md").exists()
    return exc


def test_valid_table_conforms_and_passes(tmp_path: Path) -> None:
    result = run_gate("raw", valid_matches(), tmp_path, now=NOW)
    assert isinstance(result, GateResult) and result.success and result.n_rows == 20
    report = json.loads(result.report_path.read_text())
    assert report["success"] and report["statistics"]["unsuccessful"] == 0
    assert {e["expectation"] for e in report["expectations"]} >= {
        "expect_column_values_to_be_unique",
        "expect_compound_columns_to_be_unique",
    }
    assert not (tmp_path / "validation_raw.md").exists()


def test_upcoming_fixture_without_goals_passes(tmp_path: Path) -> None:
    df = valid_matches()
    upcoming = df.index[-1]
    df.loc[upcoming, "kickoff_utc"] = pd.Timestamp(NOW + timedelta(days=30))
    df.loc[upcoming, ["home_goals", "away_goals", "ht_home_goals", "ht_away_goals"]] = pd.NA
    df.loc[upcoming, "result"] = None
    assert run_gate("raw", df, tmp_path, now=NOW).success


def test_truncated_last_row_fails(tmp_path: Path) -> None:
    df = valid_matches()
    last = df.index[-1]
    df.loc[last, "away_team"] = None
    df.loc[last, ["away_goals", "ht_away_goals"]] = pd.NA
    exc = _fails("raw", df, tmp_path)
    assert "expect_column_values_to_not_be_null [away_team]: 1 unexpected" in exc.summary
    assert "_past_match_without_goals" in exc.summary and "E0-019" in exc.summary


def test_renamed_column_fails(tmp_path: Path) -> None:
    df = valid_matches().rename(columns={"home_goals": "FTHG"})
    exc = _fails("raw", df, tmp_path)
    assert "expect_column_to_exist [home_goals]" in exc.summary


def test_negative_goals_fail(tmp_path: Path) -> None:
    df = valid_matches()
    df.loc[3, "home_goals"] = -1
    exc = _fails("raw", df, tmp_path)
    assert "expect_column_values_to_be_between [home_goals]: 1 unexpected" in exc.summary
    assert "-1" in exc.summary


def test_duplicated_row_fails(tmp_path: Path) -> None:
    df = valid_matches()
    exc = _fails("raw", pd.concat([df, df.iloc[[4]]], ignore_index=True), tmp_path)
    assert "expect_column_values_to_be_unique [match_id]" in exc.summary


def test_same_fixture_under_new_id_fails(tmp_path: Path) -> None:
    df = valid_matches()
    copy = df.iloc[[4]].assign(match_id="E0-999", source_id="999")
    exc = _fails("raw", pd.concat([df, copy], ignore_index=True), tmp_path)
    assert "expect_column_values_to_be_unique" not in exc.summary
    assert "expect_compound_columns_to_be_unique [league, _kickoff_date, home_team]" in exc.summary


def test_odds_below_one_fail(tmp_path: Path) -> None:
    df = valid_matches()
    df.loc[2, "ps_draw"] = 0.95
    exc = _fails("raw", df, tmp_path)
    assert "expect_column_values_to_be_between [ps_draw]: 1 unexpected" in exc.summary


def test_played_match_in_future_fails(tmp_path: Path) -> None:
    df = valid_matches()
    df.loc[5, "kickoff_utc"] = pd.Timestamp(NOW + timedelta(days=10))
    exc = _fails("raw", df, tmp_path)
    assert "_played_in_future" in exc.summary and "E0-005" in exc.summary


def test_result_disagreeing_with_goals_fails(tmp_path: Path) -> None:
    df = valid_matches()
    df.loc[6, ["home_goals", "away_goals", "result"]] = [3, 0, "A"]
    exc = _fails("raw", df, tmp_path)
    assert "_result_mismatch" in exc.summary and "E0-006" in exc.summary


def test_interim_needs_five_teams_per_season(tmp_path: Path) -> None:
    assert run_gate("interim", valid_matches(), tmp_path, now=NOW).success
    df = valid_matches()
    df.loc[0, "season"] = "2022-23"  # a season of one match: two teams
    exc = _fails("interim", df, tmp_path)
    assert "_small_league_season" in exc.summary and "2022-23 (2 teams)" in exc.summary


def test_features_gate(tmp_path: Path) -> None:
    assert run_gate("features", valid_features(), tmp_path, feature_columns=FEATURES).success
    bad = valid_features()
    bad.loc[1, "elo_diff"] = np.inf
    bad.loc[2, "market_prob_home"] = 1.2
    exc = _fails("features", bad, tmp_path, feature_columns=FEATURES)
    assert "_infinite_values" in exc.summary and "E0-001: elo_diff" in exc.summary
    assert "expect_column_values_to_be_between [market_prob_home]: 1 unexpected" in exc.summary
    missing = _fails("features", valid_features(), tmp_path, feature_columns=[*FEATURES, "pi_home"])
    assert "expect_column_to_exist [pi_home]" in missing.summary


def test_run_gate_does_not_mutate_input(tmp_path: Path) -> None:
    df = valid_matches()
    df.loc[3, "home_goals"] = -1
    before = df.copy(deep=True)
    with pytest.raises(GateFailed):
        run_gate("interim", df, tmp_path, now=NOW)
    pd.testing.assert_frame_equal(df, before)
    assert list(df.columns) == MATCH_COLUMNS


def test_unknown_gate_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown gate"):
        run_gate("gold", valid_matches(), tmp_path, now=NOW)
