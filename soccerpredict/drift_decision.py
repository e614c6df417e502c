"""The drift decision that production's drift job and the monitoring replay share (pure).

A column is flagged only when its shift is both certain and large enough to matter:
- certain: its two-sample test's p-value is under `p_value / k` (Bonferroni over k columns);
- large: its effect size is at least `min_effect`.
The result's test is `drift.result_test`: the chi-square test of homogeneity (2 df: any change of
the shares) or, `ordinal`, a two-sided Mann-Whitney test on its H < D < A coding (1 df: a move
of results towards one side, what a loss of home advantage is; the same order the result's
distance and RPS use). Both p-values are computed; the verdict reads the chosen one. With a few thousand rows a test finds a
  shift of a fraction of a standard deviation with p near 0, and such shifts come with every
  ordinary season.

Effect sizes, both recorded, one used (`drift.effect_size`):
- `wasserstein`: the Wasserstein-1 distance divided by the reference's standard deviation, the
  normed distance Evidently uses. The result is ordinal (home, draw, away: the order RPS uses),
  coded 0/1/2, so the same distance measures a move of results towards the away side.
- `psi`: the population stability index over the reference's deciles (categories for the
  result). Its sampling noise, about (bins - 1) * (1/n + 1/m), is as large as the 2020-21 shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from soccerpredict.config import DriftParams

RESULT_ORDER = {"H": 0.0, "D": 1.0, "A": 2.0}
PSI_BINS, PSI_FLOOR = 10, 1e-4


@dataclass(frozen=True)
class ColumnStat:
    p_value: float
    wasserstein: float
    psi: float
    p_ordinal: float = float("nan")  # the ordinal test's p-value (the result only)

    def effect(self, name: str) -> float:
        return float(getattr(self, name))

    def p(self, result_test: str = "chisquare") -> float:
        """The p-value the verdict reads: the ordinal one where asked for and defined."""
        if result_test == "ordinal" and not np.isnan(self.p_ordinal):
            return self.p_ordinal
        return self.p_value


def _normed_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    scale = float(np.std(reference))
    distance = float(stats.wasserstein_distance(reference, current))
    if scale == 0.0:
        return 0.0 if distance == 0.0 else float("inf")
    return distance / scale


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    ref_share, cur_share = np.maximum(ref_share, PSI_FLOOR), np.maximum(cur_share, PSI_FLOOR)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _numerical(reference: np.ndarray, current: np.ndarray) -> ColumnStat:
    p_value = float(stats.ks_2samp(reference, current).pvalue)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, reference), minlength=len(edges) + 1)
    cur_share = np.bincount(np.searchsorted(edges, current), minlength=len(edges) + 1)
    return ColumnStat(
        p_value,
        _normed_wasserstein(reference, current),
        _psi(ref_share / len(reference), cur_share / len(current)),
    )


def chi2_homogeneity(reference: pd.Series, current: pd.Series) -> float:
    """p-value of the chi-square test of homogeneity on the 2 x k table (1.0: one category)."""
    sample = np.repeat([0, 1], [len(reference), len(current)])
    values = pd.concat([reference, current], ignore_index=True).astype(str)
    table = pd.crosstab(values, sample)
    if len(table) < 2:
        return 1.0
    return float(stats.chi2_contingency(table.to_numpy(), correction=False).pvalue)


def ordinal_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided Mann-Whitney p-value on ordinal codes (ties corrected; 1.0 if all tie)."""
    if np.unique(np.concatenate([reference, current])).size < 2:
        return 1.0
    return float(
        stats.mannwhitneyu(reference, current, alternative="two-sided", method="asymptotic").pvalue
    )


def _categorical(reference: pd.Series, current: pd.Series) -> ColumnStat:
    ref_share = reference.astype(str).value_counts(normalize=True)
    cur_share = current.astype(str).value_counts(normalize=True)
    ref_share, cur_share = ref_share.align(cur_share, fill_value=0.0)
    ordinal = set(ref_share.index) <= set(RESULT_ORDER)
    ref_codes = reference.map(RESULT_ORDER).to_numpy(float)
    cur_codes = current.map(RESULT_ORDER).to_numpy(float)
    return ColumnStat(
        chi2_homogeneity(reference, current),
        _normed_wasserstein(ref_codes, cur_codes)
        if ordinal
        else 0.5 * float(np.abs(ref_share - cur_share).sum()),
        _psi(ref_share.to_numpy(), cur_share.to_numpy()),
        ordinal_p_value(ref_codes, cur_codes) if ordinal else float("nan"),
    )


def column_stat(reference: pd.Series, current: pd.Series, categorical: bool) -> ColumnStat:
    """Test and effect sizes of one column; missing values are dropped first. A column with no
    values on one side carries no evidence (the drift job refuses such windows outright)."""
    reference, current = reference.dropna(), current.dropna()
    if reference.empty or current.empty:
        return ColumnStat(p_value=1.0, wasserstein=0.0, psi=0.0)
    if categorical:
        return _categorical(reference, current)
    return _numerical(reference.to_numpy(np.float64), current.to_numpy(np.float64))


def decide(column_stats: dict[str, ColumnStat], params: DriftParams) -> dict[str, Any]:
    """Which columns drifted and whether the window did: the verdict both jobs publish."""
    threshold = params.p_value / len(column_stats)
    flagged = [
        c
        for c, s in column_stats.items()
        if s.p(params.result_test) < threshold and s.effect(params.effect_size) >= params.min_effect
    ]
    share = len(flagged) / len(column_stats)
    return {
        "drifted": share >= params.drift_share,
        "drift_share": share,
        "drifted_columns": flagged,
        "column_threshold": threshold,
    }
