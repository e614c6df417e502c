"""Turn decimal bookmaker odds into outcome probabilities by removing the margin ("vig").

Columns follow `OUTCOMES` ("H", "D", "A"). A row with any missing price or a price <= 1
(impossible for decimal odds) yields a NaN row rather than an error, because real odds files
have gaps and downstream code compares against the market only where it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy.optimize import brentq

DevigMethod = Literal["proportional", "power", "shin"]


def _as_odds(odds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (odds as float (n, k), mask of usable rows)."""
    o = np.atleast_2d(np.asarray(odds, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        valid = np.asarray(np.isfinite(o).all(axis=1) & (o > 1.0).all(axis=1))
    return o, valid


def overround(odds: np.ndarray) -> np.ndarray:
    """Booksum minus 1 per row (0.05 = 5% margin); NaN for unusable rows."""
    o, valid = _as_odds(odds)
    out = np.full(o.shape[0], np.nan)
    out[valid] = (1.0 / o[valid]).sum(axis=1) - 1.0
    return out


def _proportional(q: np.ndarray) -> np.ndarray:
    return q / q.sum(axis=1, keepdims=True)


def _power_row(q: np.ndarray) -> np.ndarray:
    """Find k with sum(q_i ** k) == 1; the margin is taken more from long shots than favourites."""

    def f(k: float) -> float:
        return float(np.sum(q**k) - 1.0)

    hi = 2.0
    while f(hi) > 0 and hi < 1e6:  # prices very close to 1 need a large exponent
        hi *= 2.0
    p = q ** brentq(f, 1e-9, hi, xtol=1e-14)
    return p / p.sum()  # remove brentq's tiny residual so rows sum to 1 exactly


def _shin_probs(q: np.ndarray, z: float) -> np.ndarray:
    booksum = q.sum()
    return (np.sqrt(z**2 + 4.0 * (1.0 - z) * q**2 / booksum) - z) / (2.0 * (1.0 - z))


def _shin_row(q: np.ndarray) -> np.ndarray:
    """Shin (1993) insider-trading model, solved for the insider share z in [0, 1).

    With no margin (booksum <= 1) there is no z >= 0 that fits, so fall back to proportional.
    """
    if q.sum() <= 1.0:
        return q / q.sum()
    z = brentq(lambda z: float(_shin_probs(q, z).sum() - 1.0), 0.0, 1.0 - 1e-12, xtol=1e-14)
    p = _shin_probs(q, z)
    return p / p.sum()  # remove brentq's tiny residual so rows sum to 1 exactly


_BISECT_STEPS = 100


def _bisect(f: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per-row root of a decreasing f on [lo, hi], all rows at once (vectorised bisection)."""
    for _ in range(_BISECT_STEPS):
        mid = (lo + hi) / 2.0
        above = f(mid) > 0
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return (lo + hi) / 2.0


def _power_rows(q: np.ndarray) -> np.ndarray:
    """`_power_row` for every row at once: thousands of rows in milliseconds."""
    hi = np.full(len(q), 2.0)
    while True:  # prices very close to 1 need a large exponent
        short = ((q ** hi[:, None]).sum(axis=1) > 1.0) & (hi < 1e6)
        if not short.any():
            break
        hi[short] *= 2.0
    k = _bisect(lambda k: (q ** k[:, None]).sum(axis=1) - 1.0, np.full(len(q), 1e-9), hi)
    p = q ** k[:, None]
    return p / p.sum(axis=1, keepdims=True)


def _shin_rows(q: np.ndarray) -> np.ndarray:
    """`_shin_row` for every row at once; rows without a margin fall back to proportional."""
    booksum = q.sum(axis=1, keepdims=True)

    def probs(z: np.ndarray) -> np.ndarray:
        zz = z[:, None]
        return (np.sqrt(zz**2 + 4.0 * (1.0 - zz) * q**2 / booksum) - zz) / (2.0 * (1.0 - zz))

    z = _bisect(
        lambda z: probs(z).sum(axis=1) - 1.0, np.zeros(len(q)), np.full(len(q), 1.0 - 1e-12)
    )
    p = np.where(booksum > 1.0, probs(z), q)
    return p / p.sum(axis=1, keepdims=True)


def devig(odds: np.ndarray, method: DevigMethod = "proportional") -> np.ndarray:
    """Implied probabilities (n, 3) summing to 1 per row; NaN rows where odds are unusable."""
    o, valid = _as_odds(odds)
    out = np.full(o.shape, np.nan)
    q = 1.0 / o[valid]
    if method == "proportional":
        out[valid] = _proportional(q)
    elif method == "power":
        out[valid] = _power_rows(q)
    elif method == "shin":
        out[valid] = _shin_rows(q)
    else:
        raise ValueError(f"unknown devig method {method!r}")
    return out


def fair_odds(probs: np.ndarray) -> np.ndarray:
    """Decimal odds with no margin: what a probability is worth as a price."""
    with np.errstate(divide="ignore"):
        return 1.0 / np.asarray(probs, dtype=np.float64)
