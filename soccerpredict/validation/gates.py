"""Data quality gates: a Great Expectations suite per pipeline stage, run on an ephemeral context.

A gate reads a frame, never changes it, writes `validation_{gate}.json` (always) and
`validation_{gate}.md` (on failure), and raises `GateFailed` so a broken input stops the pipeline
before it reaches features or models.

Checks that are not plain column expectations (a played match dated in the future, a result that
disagrees with its goals, a league-season with too few teams, infinite features) are computed into
helper columns of a private copy, named `_...`, that hold a label of each offending row and are
expected to be null; so GX reports *which* matches broke the rule, not just how many.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from soccerpredict.data.contract import (
    MATCH_COLUMNS,
    MAX_GOALS,
    MIN_TEAMS_PER_SEASON,
    ODDS_COLUMNS,
    ODDS_RANGE,
    OUTCOMES,
)
from soccerpredict.io import write_json, write_text

GATES: tuple[str, ...] = ("raw", "interim", "features")

ID_NOT_NULL = ["match_id", "league", "season", "kickoff_utc", "home_team", "away_team"]
GOAL_COLUMNS = ["home_goals", "away_goals", "ht_home_goals", "ht_away_goals"]
ELO_RANGE = (500.0, 3000.0)
# a result may be entered a day late; a match older than this without goals is a broken row
RESULT_GRACE = timedelta(days=1)
SAMPLE_SIZE = 5

Spec = tuple[str, dict[str, Any]]  # (GX expectation class name, its kwargs)


class GateFailed(Exception):
    """A gate's suite failed; `summary` has one readable line per failed expectation."""

    def __init__(self, gate: str, summary: str, report_path: Path) -> None:
        super().__init__(summary)
        self.gate = gate
        self.summary = summary
        self.report_path = report_path

    def __str__(self) -> str:
        return self.summary


@dataclass
class GateResult:
    gate: str
    success: bool
    n_rows: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path = Path()


# ---------------------------------------------------------------- helper columns (private copy)


def _kickoff(df: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(df["kickoff_utc"], utc=True, errors="coerce")


def _labels(df: pd.DataFrame, mask: pd.Series) -> pd.Series:
    """match_id of each row where `mask` holds, None elsewhere (object dtype, GX-friendly)."""
    ids = (
        df["match_id"].astype(str)
        if "match_id" in df
        else pd.Series([f"row {i}" for i in range(len(df))], index=df.index)
    )
    return _only(mask.fillna(False).to_numpy(bool), ids)


def _only(keep: np.ndarray, values: pd.Series) -> pd.Series:
    """`values` where `keep` holds, None elsewhere, as an object Series on the same index."""
    out = pd.Series([None] * len(values), index=values.index, dtype=object)
    out[keep] = values[keep].to_numpy(dtype=object)
    return out


def _has(df: pd.DataFrame, *cols: str) -> bool:
    return all(c in df.columns for c in cols)


def _expected_result(home: pd.Series, away: pd.Series) -> pd.Series:
    diff = home.astype("Float64") - away.astype("Float64")
    out = pd.Series(pd.NA, index=home.index, dtype="string")
    for outcome, mask in zip(OUTCOMES, (diff > 0, diff == 0, diff < 0)):
        out[mask.fillna(False).to_numpy(bool)] = outcome
    return out


def _result_mismatch(df: pd.DataFrame) -> pd.Series:
    """Result must be null exactly when goals are, and otherwise agree with them."""
    goals_known = df["home_goals"].notna() & df["away_goals"].notna()
    result_known = df["result"].notna()
    disagrees = (
        result_known
        & goals_known
        & (df["result"].astype("string") != _expected_result(df["home_goals"], df["away_goals"]))
    )
    return _labels(df, (result_known != goals_known) | disagrees.fillna(False))


def _small_league_seasons(df: pd.DataFrame) -> pd.Series:
    """Label rows of a (league, season) with fewer than MIN_TEAMS_PER_SEASON distinct teams."""
    teams = pd.concat(
        [
            df[["league", "season", "home_team"]].set_axis(["l", "s", "t"], axis=1),
            df[["league", "season", "away_team"]].set_axis(["l", "s", "t"], axis=1),
        ]
    )
    counts = teams.dropna().groupby(["l", "s"])["t"].nunique()
    n = pd.Series(
        [counts.get((lg, s), 0) for lg, s in zip(df["league"], df["season"])], index=df.index
    )
    label = (
        df["league"].astype(str) + " " + df["season"].astype(str) + " (" + n.astype(str) + " teams)"
    )
    return _only((n < MIN_TEAMS_PER_SEASON).to_numpy(bool), label)


def derive_match_checks(df: pd.DataFrame, now: datetime, *, interim: bool = False) -> pd.DataFrame:
    """A copy of `df` with the helper columns the match suites refer to (those it can compute)."""
    out = df.copy()
    if _has(df, "kickoff_utc"):
        kickoff = _kickoff(df)
        out["_kickoff_date"] = kickoff.dt.strftime("%Y-%m-%d").astype(object)
        if _has(df, "result"):
            out["_played_in_future"] = _labels(df, df["result"].notna() & (kickoff > now))
        if _has(df, "home_goals", "away_goals"):
            missing = df["home_goals"].isna() | df["away_goals"].isna()
            out["_past_match_without_goals"] = _labels(df, missing & (kickoff < now - RESULT_GRACE))
    if _has(df, "home_goals", "away_goals", "result"):
        out["_result_mismatch"] = _result_mismatch(df)
    if interim and _has(df, "league", "season", "home_team", "away_team"):
        out["_small_league_season"] = _small_league_seasons(df)
    return out


def _infinite_cells(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """'match_id: col, col' for each row holding +-inf in one of `columns`, None elsewhere."""
    numeric = df[[c for c in columns if c in df.columns]].select_dtypes("number")
    inf = np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan))
    ids = _labels(df, pd.Series(True, index=df.index))
    text = [
        f"{i}: {', '.join(numeric.columns[row])}" if row.any() else None for i, row in zip(ids, inf)
    ]
    return pd.Series(text, index=df.index, dtype=object)


def derive_feature_checks(df: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    out = df.copy()
    out["_infinite_values"] = _infinite_cells(df, feature_columns)
    return out


# ---------------------------------------------------------------- suites as plain data


def _between(col: str, lo: float | None, hi: float | None) -> Spec:
    return ("ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi})


def _null(col: str) -> Spec:
    return ("ExpectColumnValuesToBeNull", {"column": col})


def raw_specs() -> list[Spec]:
    """The normalized match table as it leaves a reader."""
    specs: list[Spec] = [("ExpectColumnToExist", {"column": c}) for c in MATCH_COLUMNS]
    specs.append(("ExpectTableRowCountToBeBetween", {"min_value": 1}))
    specs += [("ExpectColumnValuesToNotBeNull", {"column": c}) for c in ID_NOT_NULL]
    specs.append(("ExpectColumnValuesToBeUnique", {"column": "match_id"}))
    specs += [_between(c, 0, MAX_GOALS) for c in GOAL_COLUMNS]
    specs.append(("ExpectColumnValuesToBeInSet", {"column": "result", "value_set": list(OUTCOMES)}))
    specs += [_between(c, *ODDS_RANGE) for c in ODDS_COLUMNS]
    specs.append(
        (
            "ExpectSelectColumnValuesToBeUniqueWithinRecord",
            {"column_list": ["home_team", "away_team"]},
        )
    )
    # the same fixture under two ids: one team cannot play twice in a league on one day
    specs += [
        ("ExpectCompoundColumnsToBeUnique", {"column_list": ["league", "_kickoff_date", side]})
        for side in ("home_team", "away_team")
    ]
    specs += [
        _null(c) for c in ("_played_in_future", "_past_match_without_goals", "_result_mismatch")
    ]
    return specs


def interim_specs() -> list[Spec]:
    """The cleaned table: everything raw promises, plus whole-season sanity."""
    return raw_specs() + [_null("_small_league_season")]


def _is_elo_rating(col: str) -> bool:
    # elo_diff is a difference and elo_expected_* a probability: neither is on the rating scale
    return col.startswith("elo_") and col != "elo_diff" and not col.startswith("elo_expected")


def feature_specs(feature_columns: list[str], columns: list[str]) -> list[Spec]:
    """Feature table: promised columns present, finite, probabilities and ratings in range."""
    specs: list[Spec] = [
        ("ExpectColumnToExist", {"column": c}) for c in ["match_id", *feature_columns]
    ]
    specs.append(("ExpectTableRowCountToBeBetween", {"min_value": 1}))
    specs.append(("ExpectColumnValuesToBeUnique", {"column": "match_id"}))
    specs.append(_null("_infinite_values"))
    specs += [
        _between(c, 0.0, 1.0) for c in columns if c.startswith(("market_prob_", "elo_expected"))
    ]
    specs += [_between(c, *ELO_RANGE) for c in columns if _is_elo_rating(c)]
    return specs


def _spec_columns(kwargs: dict[str, Any]) -> list[str]:
    cols = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    return cols + list(kwargs.get("column_list", []))


def applicable(specs: list[Spec], columns: list[str]) -> list[Spec]:
    """Drop checks on absent columns: their ExpectColumnToExist already fails, once, readably."""
    present = set(columns)
    return [
        (name, kw)
        for name, kw in specs
        if name == "ExpectColumnToExist" or set(_spec_columns(kw)) <= present
    ]


def gate_frame_and_specs(
    gate: str, df: pd.DataFrame, now: datetime, feature_columns: list[str] | None
) -> tuple[pd.DataFrame, list[Spec]]:
    if gate == "features":
        cols = (
            list(feature_columns)
            if feature_columns is not None
            else [c for c in df.columns if c != "match_id"]
        )
        frame = derive_feature_checks(df, cols)
        specs = feature_specs(cols, list(df.columns))
    elif gate in ("raw", "interim"):
        frame = derive_match_checks(df, now, interim=gate == "interim")
        specs = interim_specs() if gate == "interim" else raw_specs()
    else:
        raise ValueError(f"unknown gate {gate!r}; expected one of {GATES}")
    return frame, applicable(specs, list(frame.columns))


# ---------------------------------------------------------------- running GX


def _quiet_gx() -> None:
    # GX logs every store/datasource step at INFO; a gate should only speak when it fails
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _ephemeral_context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suite(gate: str, frame: pd.DataFrame, specs: list[Spec]) -> Any:
    """Run `specs` on `frame` through a fresh ephemeral context; the GX suite result."""
    import great_expectations as gx

    _quiet_gx()
    context = _ephemeral_context()
    batch = (
        context.data_sources.add_pandas(f"{gate}_source")
        .add_dataframe_asset(f"{gate}_table")
        .add_batch_definition_whole_dataframe(f"{gate}_batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=f"{gate}_suite"))
    for name, kwargs in specs:
        suite.add_expectation(getattr(gx.expectations, name)(**kwargs))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{gate}_validation", data=batch, suite=suite)
    )
    return definition.run(
        batch_parameters={"dataframe": frame}, result_format=_result_format(frame)
    )


def _result_format(frame: pd.DataFrame) -> dict[str, Any]:
    fmt: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
    if "match_id" in frame.columns:
        # name offending rows by match_id; without the column GX would fail every expectation
        fmt["unexpected_index_column_names"] = ["match_id"]
    return fmt


# ---------------------------------------------------------------- reports


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars, timestamps and NaN/inf become numbers, strings or None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


_OBSERVED_KEYS = (
    "observed_value",
    "element_count",
    "missing_count",
    "unexpected_count",
    "unexpected_percent",
    "partial_unexpected_list",
    "partial_unexpected_index_list",
)


def _exception_message(info: Any) -> str | None:
    """GX nests exception info either flat or per metric; return the first message found."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for sub in info.values():
        if isinstance(sub, dict) and sub.get("raised_exception"):
            return str(sub.get("exception_message"))
    return None


def summarise(result: Any) -> dict[str, Any]:
    """One expectation's outcome as plain data: type, kwargs, success, what was observed."""
    config = result.expectation_config
    observed = {k: result.result[k] for k in _OBSERVED_KEYS if k in (result.result or {})}
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    return _jsonable(
        {
            "expectation": config.type,
            "kwargs": kwargs,
            "success": bool(result.success),
            "observed": observed,
            "exception": _exception_message(result.exception_info),
        }
    )


def _target(kwargs: dict[str, Any]) -> str:
    cols = _spec_columns(kwargs)
    return ", ".join(cols) if cols else "table"


def _rows_note(index_list: Any) -> str:
    """' in match_id [..]' when GX reported the offending rows' ids."""
    ids = [r.get("match_id") for r in index_list or [] if isinstance(r, dict)]
    return f" in match_id {ids[:SAMPLE_SIZE]}" if ids else ""


def failure_line(failure: dict[str, Any]) -> str:
    """'expect_x [column]: what was seen', readable in a log or an exception message."""
    head = f"{failure['expectation']} [{_target(failure['kwargs'])}]"
    obs, error = failure["observed"], failure["exception"]
    if error:
        return f"{head}: error: {error.splitlines()[0][:200]}"
    if failure["expectation"] == "expect_column_to_exist":
        return f"{head}: column missing"
    if "unexpected_count" in obs:
        sample = obs.get("partial_unexpected_list") or []
        line = (
            f"{head}: {obs['unexpected_count']} unexpected of {obs.get('element_count')} rows"
            f", e.g. {sample[:SAMPLE_SIZE]}"
        )
        note = _rows_note(obs.get("partial_unexpected_index_list"))
        return line if note == f" in match_id {sample[:SAMPLE_SIZE]}" else line + note
    if "observed_value" in obs:
        return f"{head}: observed {obs['observed_value']!r}"
    return f"{head}: failed"


def report_dict(gate: str, df: pd.DataFrame, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON report: what was checked and found, no time (the same data gives the same
    file, so a re-run leaves git clean; the failure report in Markdown says when)."""
    failed = [r for r in results if not r["success"]]
    return {
        "gate": gate,
        "success": not failed,
        "n_rows": len(df),
        "n_columns": df.shape[1],
        "statistics": {
            "evaluated": len(results),
            "successful": len(results) - len(failed),
            "unsuccessful": len(failed),
        },
        "expectations": results,
    }


def report_markdown(report: dict[str, Any], now: datetime) -> str:
    failed = [r for r in report["expectations"] if not r["success"]]
    lines = [
        f"# Validation gate `{report['gate']}` failed",
        "",
        (
            f"{report['n_rows']} rows, {report['n_columns']} columns, validated at "
            f"{now.isoformat()}; {len(failed)} of {report['statistics']['evaluated']} "
            "expectations failed."
        ),
        "",
    ]
    return "\n".join(lines + [f"- {failure_line(r)}" for r in failed]) + "\n"


# ---------------------------------------------------------------- entry point


def _utc(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def run_gate(
    gate: str,
    df: pd.DataFrame,
    report_dir: Path,
    *,
    now: datetime | None = None,
    feature_columns: list[str] | None = None,
    name: str | None = None,
) -> GateResult:
    """Validate `df` with the `gate` suite; write reports; raise GateFailed if anything failed.

    Reports are `validation_<name>.json|md`, `name` defaulting to the gate's (a later stage that
    re-checks a table with the same suite names its own reports).
    """
    now, name = _utc(now), name or gate
    frame, specs = gate_frame_and_specs(gate, df, now, feature_columns)
    suite_result = run_suite(gate, frame, specs)
    results = [summarise(r) for r in suite_result.results]
    report = report_dict(gate, df, results)
    report_path = write_json(report, Path(report_dir) / f"validation_{name}.json")
    failures = [r for r in results if not r["success"]]
    markdown = Path(report_dir) / f"validation_{name}.md"
    if failures:
        write_text(report_markdown(report, now), markdown)
        summary = "\n".join(failure_line(r) for r in failures)
        raise GateFailed(gate, f"gate {gate!r} failed:\n{summary}", report_path)
    markdown.unlink(missing_ok=True)  # a stale failure report would contradict the JSON
    return GateResult(gate, True, len(df), failures, report_path)
