"""Post-hoc calibration of (n, 3) H/D/A probabilities, stored as plain JSON-able numbers.

Isotonic keeps each class's step function as threshold arrays and applies it with np.interp,
so a calibrator can be saved next to the booster as JSON and reloaded without pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold, StratifiedKFold

from soccerpredict.metrics.scoring import log_loss

CalibrationMethod = Literal["none", "isotonic", "temperature"]
_EPS = 1e-12
# isotonic can map a bin to exactly 0 or 1; finite data never justifies certainty, and a single
# zero would make the held-out log-loss explode, so every class keeps at least this much mass
_ISOTONIC_FLOOR = 1e-4
_T_BOUNDS = (0.25, 4.0)


@dataclass(frozen=True)
class Calibrator:
    method: CalibrationMethod = "none"
    params: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated copy of `probs`; every row sums to 1."""
        p = np.asarray(probs, dtype=np.float64)
        if self.method == "none":
            return p / p.sum(axis=1, keepdims=True)
        if self.method == "temperature":
            return _temperature_scale(p, float(self.params["temperature"]))
        if self.method == "isotonic":
            return _isotonic_apply(p, self.params["x"], self.params["y"])
        raise ValueError(f"unknown calibration method {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": _jsonable(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        return cls(method=data["method"], params=dict(data.get("params", {})))


def _jsonable(value: Any) -> Any:
    """Deep-convert numpy scalars/arrays to lists and floats so json.dumps always works."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _temperature_scale(p: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 softens over-confident forecasts, T < 1 sharpens."""
    return _softmax(np.log(np.clip(p, _EPS, 1.0)) / temperature)


def _fit_temperature(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    res = minimize_scalar(
        lambda t: log_loss(_temperature_scale(p, t), y),
        bounds=_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-5},
    )
    return {"temperature": float(res.x)}


def _fit_isotonic(p: np.ndarray, y: np.ndarray) -> dict[str, list[list[float]]]:
    """One increasing step function per class (one-vs-rest), stored as its thresholds."""
    xs, ys = [], []
    for k in range(p.shape[1]):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(p[:, k], (y == k).astype(np.float64))
        xs.append([float(v) for v in iso.X_thresholds_])
        ys.append([float(v) for v in iso.y_thresholds_])
    return {"x": xs, "y": ys}


def _isotonic_apply(
    p: np.ndarray, xs: Sequence[Sequence[float]], ys: Sequence[Sequence[float]]
) -> np.ndarray:
    # np.interp clamps outside the fitted range, matching out_of_bounds="clip"
    cols = [np.interp(p[:, k], np.asarray(xs[k]), np.asarray(ys[k])) for k in range(p.shape[1])]
    out = np.clip(np.column_stack(cols), _ISOTONIC_FLOOR, 1.0)
    return out / out.sum(axis=1, keepdims=True)


def fit_calibrator(method: CalibrationMethod, probs: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit one calibration method on (probs, integer labels)."""
    p = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    if method == "none":
        return Calibrator("none", {})
    if method == "temperature":
        return Calibrator("temperature", _fit_temperature(p, labels))
    if method == "isotonic":
        return Calibrator("isotonic", _fit_isotonic(p, labels))
    raise ValueError(f"unknown calibration method {method!r}")


def _folds(y: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    # stratify when every class can appear in every fold, else plain shuffled folds
    counts = np.bincount(y, minlength=3)
    if counts.min() >= n_folds:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _cv_log_loss(
    method: CalibrationMethod,
    p: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
) -> float:
    """Mean held-out log-loss, so isotonic's in-sample overfit does not win by default."""
    losses = [
        log_loss(fit_calibrator(method, p[tr], y[tr]).apply(p[te]), y[te]) for tr, te in folds
    ]
    return float(np.mean(losses))


def choose_calibration(
    methods: Sequence[CalibrationMethod],
    probs_val: np.ndarray,
    y_val: np.ndarray,
    n_folds: int = 5,
    seed: int = 0,
) -> tuple[Calibrator, dict[CalibrationMethod, float]]:
    """Pick the method with the lowest cross-fitted log-loss on validation, refit it on all of
    validation. Ties go to the earlier method in `methods`. Returns (calibrator, cv scores)."""
    if not methods:
        raise ValueError("at least one calibration method is required")
    p = np.asarray(probs_val, dtype=np.float64)
    labels = np.asarray(y_val, dtype=np.int64)
    folds = _folds(labels, n_folds, seed)
    scores = {m: _cv_log_loss(m, p, labels, folds) for m in dict.fromkeys(methods)}
    best = min(scores, key=scores.__getitem__)
    return fit_calibrator(best, p, labels), scores
