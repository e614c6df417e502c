"""Which `params.yaml` keys a stage reads, recorded while it runs, so a test can hold them
against the stage's `params:` in dvc.yaml (`SOCCERPREDICT_PARAMS_READS=<dir>` turns it on).

A section handed on whole (dumped, or sent to a Ray task) counts as read whole; a section only
looked into counts key by key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from soccerpredict.config import Config

ENV = "SOCCERPREDICT_PARAMS_READS"


class ReadingParams:
    """A params model (or section) that notes every key read through it."""

    def __init__(self, model: BaseModel, path: str, reads: set[str]) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_reads", reads)

    def _key(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._model, name)
        if name not in type(self._model).model_fields:  # a method: the whole section is used
            self._reads.add(self._path)
            return value
        if isinstance(value, BaseModel):
            return ReadingParams(value, self._key(name), self._reads)
        self._reads.add(self._key(name))
        return value

    def __iter__(self) -> Iterator[tuple[str, Any]]:  # iterated: read whole
        self._reads.add(self._path)
        return iter(self._model)

    def __eq__(self, other: object) -> bool:  # compared: read whole
        self._reads.add(self._path)
        return bool(self._model == (other._model if isinstance(other, ReadingParams) else other))

    __hash__ = None  # type: ignore[assignment]  # as the pydantic model it wraps

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickled (a Ray task): read whole
        self._reads.add(self._path)
        return _unwrapped, (self._model,)


def _unwrapped(model: BaseModel) -> BaseModel:
    """What a pickled ReadingParams becomes on the other side: the plain model."""
    return model


def recording(cfg: Config) -> tuple[Config, set[str]]:
    """`cfg` whose params note what is read, and the set they note it in."""
    reads: set[str] = set()
    watched = ReadingParams(cfg.params, "", reads)
    return cfg.model_copy(update={"params": watched}), reads


@contextmanager
def watched(cfg: Config, stage_file: str | None) -> Iterator[Config]:
    """`cfg` as it is, or, with `$SOCCERPREDICT_PARAMS_READS` set, one whose reads end up in
    `<that folder>/<stage>.json` (the stage: the module file's name)."""
    folder = os.environ.get(ENV)
    if not folder:
        yield cfg
        return
    watching, reads = recording(cfg)
    try:
        yield watching
    finally:
        keys = sorted(k or "<all params>" for k in reads)
        (Path(folder) / f"{Path(stage_file or 'stage').stem}.json").write_text(json.dumps(keys))
