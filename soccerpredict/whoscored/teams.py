"""WhoScored team names -> football-data's (the project's canonical spelling), per league.

The mapping is data, maintained in team_names.yaml next to this module; it is read on first
use, not at import.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

import yaml
from pydantic import TypeAdapter

from soccerpredict.data.clean import canonical_team

_MAPPING_FILE = "team_names.yaml"
# league code -> {WhoScored name: football-data name}
_Mapping = TypeAdapter(dict[str, dict[str, str]])


@lru_cache(maxsize=1)
def team_name_mapping() -> dict[str, dict[str, str]]:
    path = resources.files("soccerpredict.whoscored").joinpath(_MAPPING_FILE)
    text = path.read_text(encoding="utf-8")
    return _Mapping.validate_python(yaml.safe_load(text) or {})


def canonical(league: str, whoscored_name: str) -> str:
    """The football-data spelling of a WhoScored name, or the name itself when not listed."""
    name = " ".join(str(whoscored_name).split())
    return canonical_team(team_name_mapping().get(league, {}).get(name, name))


def unknown_names(league: str, names: Iterable[str], known: set[str]) -> list[str]:
    """WhoScored names whose canonical form is none of `known` (football-data's names)."""
    return sorted({name for name in names if canonical(league, name) not in known})
