"""Proper scoring rules for 3-way forecasts.

Every probability array has shape (n, 3) with columns ordered as `OUTCOMES` ("H", "D", "A");
labels are integer class indices from `outcome_index`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from soccerpredict.data.contract import OUTCOMES

_N_CLASSES = len(OUTCOMES)
_INDEX = {o: i for i, o in enumerate(OUTCOMES)}


def outcome_index(results: Sequence[str] | pd.Series) -> np.ndarray:
    """Map "H"/"D"/"A" to 0/1/2; anything else (including missing) is an error, not a silent NaN."""
    values = list(results)
    bad = sorted({repr(v) for v in values if not isinstance(v, str) or v not in _INDEX})
    if bad:
        raise ValueError(f"unknown match results {bad[:5]}; expected one of {OUTCOMES}")
    return np.fromiter((_INDEX[v] for v in values), dtype=np.int64, count=len(values))


def _check(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or p.shape[1] != _N_CLASSES:
        raise ValueError(f"probs must have shape (n, {_N_CLASSES}), got {p.shape}")
    if labels.shape != (p.shape[0],):
        raise ValueError(f"y must have shape ({p.shape[0]},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= _N_CLASSES):
        raise ValueError("y must hold class indices 0..2")
    return p, labels


def _one_hot(y: np.ndarray) -> np.ndarray:
    return np.eye(_N_CLASSES)[y]


def rps(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-match ranked probability score; H < D < A is an ordered scale, so a draw forecast
    is 'closer' to a home win than an away-win forecast is."""
    p, labels = _check(probs, y)
    cum_diff = np.cumsum(p - _one_hot(labels), axis=1)[:, :-1]
    return (cum_diff**2).sum(axis=1) / (_N_CLASSES - 1)


def rps_average(probs: np.ndarray, y: np.ndarray) -> float:
    return float(rps(probs, y).mean())


def log_loss(probs: np.ndarray, y: np.ndarray, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of the observed outcome; clipped so a 0 forecast stays finite."""
    p, labels = _check(probs, y)
    picked = p[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, eps, 1.0)).mean())


def brier(probs: np.ndarray, y: np.ndarray) -> float:
    """Multiclass Brier score: squared error summed over the 3 classes, averaged over matches."""
    p, labels = _check(probs, y)
    return float(((p - _one_hot(labels)) ** 2).sum(axis=1).mean())


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    p, labels = _check(probs, y)
    return float((p.argmax(axis=1) == labels).mean())


def _bin_ids(p: np.ndarray, n_bins: int) -> np.ndarray:
    # equal-width bins on [0, 1]; p == 1.0 belongs to the last bin, not an extra one
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


def calibration_table(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """One row per (class, non-empty bin): mean predicted probability, observed frequency, count."""
    p, labels = _check(probs, y)
    hits = _one_hot(labels)
    frames = []
    for k, outcome in enumerate(OUTCOMES):
        df = pd.DataFrame({"bin": _bin_ids(p[:, k], n_bins), "pred": p[:, k], "obs": hits[:, k]})
        g = df.groupby("bin").agg(
            mean_predicted=("pred", "mean"),
            observed_frequency=("obs", "mean"),
            count=("obs", "size"),
        )
        frames.append(g.reset_index().assign(**{"class": outcome}))
    columns = ["class", "bin", "mean_predicted", "observed_frequency", "count"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Classwise expected calibration error.

    For each class separately, bin that class's predicted probability into `n_bins` equal-width
    bins on [0, 1] and take the count-weighted mean of |mean predicted - observed frequency|;
    the result is the unweighted average of the 3 per-class ECEs. Unlike top-label ECE this
    also checks the draw column, which is rarely the argmax.
    """
    table = calibration_table(probs, y, n_bins)
    if table.empty:
        return float("nan")
    gap = (table["mean_predicted"] - table["observed_frequency"]).abs() * table["count"]
    n = int(table.loc[table["class"] == OUTCOMES[0], "count"].sum())
    per_class = gap.groupby(table["class"]).sum() / n
    return float(per_class.mean())


def score_all(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Every headline metric in one dict (what gets logged to MLflow and checked for promotion)."""
    p, labels = _check(probs, y)
    return {
        "rps": rps_average(p, labels),
        "log_loss": log_loss(p, labels),
        "brier": brier(p, labels),
        "ece": ece(p, labels),
        "accuracy": accuracy(p, labels),
        "n": float(len(labels)),
    }
