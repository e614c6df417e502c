"""Atomic writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_with(target: str | Path, write: Callable[[Path], object]) -> Path:
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def write_parquet(
    table: pa.Table | pd.DataFrame, target: str | Path, schema: pa.Schema | None = None
) -> Path:
    """Write deterministic Parquet (no pandas index, no creation timestamps) atomically."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
    elif schema is not None:
        table = table.cast(schema)
    return _write_with(
        target,
        lambda p: pq.write_table(
            table, p, compression="zstd", write_statistics=True, store_schema=True
        ),
    )


# Reports keep 12 significant digits: results that are equal up to summation order (Ray tasks
# finishing in another order) are then byte-identical, and git sees no change on a re-run.
REPORT_DIGITS = 12


def round_floats(obj: Any, digits: int) -> Any:
    """`obj` with every float (numpy's too) rounded to `digits` significant digits."""
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [round_floats(v, digits) for v in obj]
    if isinstance(obj, float | np.floating) and math.isfinite(obj):
        return float(f"{obj:.{digits}g}")
    return obj


def write_json(obj: Any, target: str | Path, digits: int | None = REPORT_DIGITS) -> Path:
    """Sorted keys, floats to `digits` significant digits (None: exact, for model state)."""
    if digits is not None:
        obj = round_floats(obj, digits)
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return _write_with(target, lambda p: p.write_text(text))


def write_text(text: str, target: str | Path) -> Path:
    return _write_with(target, lambda p: p.write_text(text))
