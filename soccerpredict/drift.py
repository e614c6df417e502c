"""Drift of recent matches' features and results against a reference (pure: no Ray, no MLflow).

Each column gets a two-sample test with a p-value, chosen by its kind, so a threshold means the
same thing for every column and every sample size. Evidently's defaults switch to distances with
fixed thresholds above 1,000 reference rows, blind to sample size: on the results of 2020-21, when
home wins fell from 46% to 40%, the Jensen-Shannon distance is 0.046, under its 0.1, unseen.

- numerical: Kolmogorov-Smirnov (Evidently's `ks`): two-sided, any change of location, spread or
  shape, invariant to monotone transforms (elo_diff and elo_expected_home agree); conservative on
  integer-valued features (ties), which errs towards no alarm. Not `anderson` (scipy caps its
  p-value at 0.001, above a Bonferroni threshold, so it could never fire) nor `mannw` (one-sided
  `alternative="less"` in Evidently 0.7.23: it misses a fall such as home probabilities').
- categorical (the result): a chi-square test of homogeneity on the 2 x k table
  (`chisquare_2sample`, registered here). Evidently's `chisquare` is a goodness-of-fit test that
  takes the reference frequencies as exact, which overstates significance for a sampled reference.

`p_value` is the family-wise level: each of the k columns is tested at p_value / k (Bonferroni),
so a window that differs from the reference only by sampling noise has at most a p_value chance
of any flag. A flag also needs an effect of at least `min_effect` (soccerpredict.drift_decision,
shared with the monitoring replay). The window is drifted when at least `drift_share` of the
columns are flagged.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.config import DriftParams
from soccerpredict.drift_decision import (
    RESULT_ORDER,
    chi2_homogeneity,
    column_stat,
    decide,
    ordinal_p_value,
)
from soccerpredict.features.build import FEATURE_COLUMNS
from soccerpredict.time_rules import played_by

NUMERICAL_TEST, CATEGORICAL_TEST = "ks", "chisquare_2sample"
ORDINAL_TEST = "mannwhitney_ordinal"  # drift.result_test: ordinal (the result's H < D < A)
CATEGORICAL_COLUMNS = frozenset({"result"})  # by contract; the features are all numerical
# Differences of a home and an away figure: what the model reads from a pair. A league-wide
# level shift (more shots on target in every match, ratings inflating) leaves them unmoved.
DIFFERENCES: dict[str, tuple[str, str]] = {
    "sot_lambda_diff": ("sot_lambda_home", "sot_lambda_away"),
    "form_points_diff": ("form_points_home", "form_points_away"),
    "form_goal_diff": ("form_goals_for_home", "form_goals_for_away"),
}
OUTPUT_COLUMNS: list[str] = ["model_home", "model_draw", "model_away"]  # the champion's forecast
# The default set: what the model reads, scale-free. Rating differences and probabilities, never
# raw ratings (their mean creeps with the history: 1516 to 1523 is no news to a model that reads
# differences); no counts or calendar figures (form_n_*, rest_days_*, h2h_n); no margins or raw
# prices (bookmakers' margins shrink year on year); the model's output and the result beside them.
# Left out on the replay's evidence (reports/monitor_replay.json): the draw prices (market, goal
# model, the model's own) and the goal-line markets (over 2.5, Asian handicap) move with scoring
# trends and bookmakers' practice, a normed distance above 0.3 in most ordinary seasons.
DEFAULT_COLUMNS: list[str] = [
    "elo_diff",
    "pi_expected_gd",
    "gm_prob_home",
    "gm_prob_away",
    *DIFFERENCES,
    "h2h_points_home",
    "market_prob_home",
    "market_prob_away",
    "model_home",
    "model_away",
    "result",
]


class DriftInputError(ValueError):
    """The windows cannot be compared: a score from them would mislead."""


def drift_columns(params: DriftParams) -> list[str]:
    return list(params.columns) or list(DEFAULT_COLUMNS)


def with_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every difference column whose two figures it holds."""
    out = frame.copy()
    for name, (home, away) in DIFFERENCES.items():
        if home in out.columns and away in out.columns:
            out[name] = out[home].astype(np.float64) - out[away].astype(np.float64)
    return out


def _played(features: pd.DataFrame, as_of: date) -> pd.DataFrame:
    missing = {"kickoff_utc", "result", "season"} - set(features.columns)
    if missing:
        raise DriftInputError(f"the feature table lacks {', '.join(sorted(missing))}")
    return features[features["result"].notna() & played_by(features["kickoff_utc"], as_of)]


def reference_window(features: pd.DataFrame, seasons: list[str], as_of: date) -> pd.DataFrame:
    """The played matches of the reference seasons."""
    played = _played(features, as_of)
    return played[played["season"].isin(seasons)].reset_index(drop=True)


def current_window(features: pd.DataFrame, params: DriftParams, as_of: date) -> pd.DataFrame:
    """Played matches of `current_seasons`, else of the `window_days` days ending on `as_of`."""
    played = _played(features, as_of)
    if params.current_seasons:
        return played[played["season"].isin(params.current_seasons)].reset_index(drop=True)
    start = pd.Timestamp(as_of - timedelta(days=params.window_days - 1), tz="UTC")
    kickoff = pd.to_datetime(played["kickoff_utc"], utc=True)
    return played[kickoff >= start].reset_index(drop=True)


def is_numerical(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def is_categorical(column: str, reference: pd.DataFrame) -> bool:
    """The contract decides for known columns; the reference's dtype for any other."""
    if column in CATEGORICAL_COLUMNS or column in FEATURE_COLUMNS:
        return column in CATEGORICAL_COLUMNS
    return not is_numerical(reference[column])


def _check_frame(name: str, frame: pd.DataFrame, columns: list[str], min_rows: int) -> None:
    if frame.empty:
        raise DriftInputError(f"the {name} is empty: nothing to compare")
    if len(frame) < min_rows:
        raise DriftInputError(f"the {name} has {len(frame)} rows, fewer than min_rows {min_rows}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DriftInputError(f"the {name} lacks columns: {', '.join(missing)}")
    empty = [c for c in columns if frame[c].notna().sum() == 0]
    if empty:
        raise DriftInputError(f"the {name} has no values in: {', '.join(empty)}")


def validate_windows(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], min_rows: int
) -> None:
    """Refuse what would give a misleading score, with the reason in one line."""
    for name, frame in (("current window", current), ("reference", reference)):
        _check_frame(name, frame, columns, min_rows)
    numerical = [c for c in columns if not is_categorical(c, reference)]
    for name, frame in (("current window", current), ("reference", reference)):
        wrong = [f"{c} ({frame[c].dtype})" for c in numerical if not is_numerical(frame[c])]
        if wrong:
            raise DriftInputError(
                f"numerical columns hold other values in the {name}: {', '.join(wrong)}"
            )
    mixed = [
        c
        for c in columns
        if c not in numerical and is_numerical(reference[c]) != is_numerical(current[c])
    ]
    if mixed:
        raise DriftInputError(f"numbers in one window and labels in the other: {', '.join(mixed)}")


def _chi2_two_sample(
    reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float
) -> tuple[float, bool]:
    """Evidently's stat-test signature; its caller has dropped the missing values."""
    p_value = chi2_homogeneity(reference, current)
    return p_value, p_value < threshold


def _ordinal_two_sample(
    reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float
) -> tuple[float, bool]:
    """The ordinal test on the result's H < D < A coding (chi-square for other labels)."""
    ref_codes, cur_codes = reference.map(RESULT_ORDER), current.map(RESULT_ORDER)
    if ref_codes.isna().any() or cur_codes.isna().any():
        return _chi2_two_sample(reference, current, feature_type, threshold)
    p_value = ordinal_p_value(ref_codes.to_numpy(float), cur_codes.to_numpy(float))
    return p_value, p_value < threshold


def result_test_name(params: DriftParams) -> str:
    return ORDINAL_TEST if params.result_test == "ordinal" else CATEGORICAL_TEST


@functools.cache
def register_tests() -> None:
    """Make the two-sample chi-square and the ordinal test known to Evidently by name (once
    per process)."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    for name, display, test in (
        (CATEGORICAL_TEST, "chi-square two-sample p_value", _chi2_two_sample),
        (ORDINAL_TEST, "Mann-Whitney on H < D < A p_value", _ordinal_two_sample),
    ):
        register_stattest(
            StatTest(
                name=name,
                display_name=display,
                allowed_feature_types=[ColumnType.Categorical],
            ),
            default_impl=test,
        )


def _dataset(frame: pd.DataFrame, numerical: list[str], categorical: list[str]) -> Any:
    from evidently import DataDefinition, Dataset

    data = frame[numerical + categorical].copy()
    data[numerical] = data[numerical].astype(np.float64)  # nullable Int16 & co: NA becomes NaN
    data[categorical] = data[categorical].astype(object)
    return Dataset.from_pandas(
        data,
        data_definition=DataDefinition(
            numerical_columns=numerical, categorical_columns=categorical
        ),
    )


def run_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], params: DriftParams
) -> tuple[Any, dict[str, str], float]:
    """The Evidently snapshot, each column's test and the per-column threshold."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    register_tests()
    categorical = [c for c in columns if is_categorical(c, reference)]
    numerical = [c for c in columns if c not in categorical]
    tests = {c: result_test_name(params) if c in categorical else NUMERICAL_TEST for c in columns}
    threshold = params.p_value / len(columns)
    preset = DataDriftPreset(
        columns=columns,
        per_column_method=dict(tests),
        per_column_threshold=dict.fromkeys(columns, threshold),
        drift_share=params.drift_share,
    )
    snapshot = Report([preset]).run(
        current_data=_dataset(current, numerical, categorical),
        reference_data=_dataset(reference, numerical, categorical),
    )
    return snapshot, tests, threshold


def p_values(snapshot: Any) -> dict[str, float]:
    """Each column's p-value, read from the snapshot's ValueDrift metrics."""
    return {
        m["config"]["column"]: float(m["value"])
        for m in snapshot.dict()["metrics"]
        if m["config"]["type"].endswith(":ValueDrift")
    }


def _frequencies(values: pd.Series) -> dict[str, float]:
    counts = values.dropna().astype(str).value_counts(normalize=True).sort_index()
    return {str(k): round(float(v), 4) for k, v in counts.items()}


def summary_stats(reference: pd.Series, current: pd.Series, categorical: bool) -> dict[str, Any]:
    if categorical:
        return {
            "reference_frequencies": _frequencies(reference),
            "current_frequencies": _frequencies(current),
        }
    return {"reference_mean": float(reference.mean()), "current_mean": float(current.mean())}


def describe(frame: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(frame)}
    for key in ("season", "league"):
        if key in frame.columns:
            out[f"{key}s"] = sorted(str(v) for v in frame[key].dropna().unique())
    if "kickoff_utc" in frame.columns and len(frame):
        kickoff = pd.to_datetime(frame["kickoff_utc"], utc=True)
        out["first_kickoff"], out["last_kickoff"] = str(kickoff.min()), str(kickoff.max())
    return out


def home_advantage(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    """Market-implied home probability and result frequencies in both windows, when present."""
    return {
        column: summary_stats(reference[column], current[column], column == "result")
        for column in ("market_prob_home", "result")
        if column in reference.columns and column in current.columns
    }


def column_stats(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]
) -> dict[str, Any]:
    """Each column's test and effect sizes (soccerpredict.drift_decision)."""
    return {c: column_stat(reference[c], current[c], is_categorical(c, reference)) for c in columns}


def _column_entry(
    c: str,
    stat: Any,
    verdict: dict[str, Any],
    params: DriftParams,
    frames: tuple[pd.DataFrame, pd.DataFrame],
) -> dict[str, Any]:
    reference, current = frames
    categorical = is_categorical(c, reference)
    ordinal = categorical and params.result_test == "ordinal" and not np.isnan(stat.p_ordinal)
    return {
        "kind": "categorical" if categorical else "numerical",
        "test": (ORDINAL_TEST if ordinal else CATEGORICAL_TEST) if categorical else NUMERICAL_TEST,
        "p_value": stat.p(params.result_test),
        "threshold": verdict["column_threshold"],
        "wasserstein": stat.wasserstein,
        "psi": stat.psi,
        "drifted": c in verdict["drifted_columns"],
    } | summary_stats(reference[c], current[c], categorical)


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, params: DriftParams
) -> tuple[dict[str, Any], Any]:
    """(summary, Evidently snapshot); DriftInputError when the windows cannot be compared.
    The verdict is `drift_decision.decide`'s, the one the monitoring replay measures; the
    Evidently snapshot is the report for people (its per-column marks know no effect floor)."""
    columns = drift_columns(params)
    reference, current = with_differences(reference), with_differences(current)
    validate_windows(reference, current, columns, params.min_rows)
    stats = column_stats(reference, current, columns)
    verdict = decide(stats, params)
    snapshot, _, _ = run_evidently(reference, current, columns, params)
    per_column = {
        c: _column_entry(c, stats[c], verdict, params, (reference, current)) for c in columns
    }
    summary = {
        "drifted": verdict["drifted"],
        "drift_share": verdict["drift_share"],
        "drift_share_threshold": params.drift_share,
        "drifted_columns": verdict["drifted_columns"],
        "n_columns": len(columns),
        "p_value": params.p_value,
        "correction": "bonferroni",
        "column_threshold": verdict["column_threshold"],
        "effect_size": params.effect_size,
        "min_effect": params.min_effect,
        "columns": per_column,
        "reference": describe(reference),
        "current": describe(current),
        "home_advantage": home_advantage(reference, current),
    }
    return summary, snapshot
