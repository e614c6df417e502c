"""Schemathesis hooks of the reliability suite: its positive data meets the app's rules that JSON
Schema cannot state. Loaded by `benchmarks.reliability` (`SCHEMATHESIS_HOOKS`); negative data is
left as generated.

A body the schema admits can still be one the app refuses with a 422, for rules that live in
the team state or across fields:

- the league, and each team in it, must be ones the published state knows, the teams
  different, the kickoff inside the league's window: `GET /teams` lists them (schemathesis's
  own advice for ids a schema cannot list: seed known ones);
- a price set must be a bookmaker's book: its margin inside the bounds `serve_app.schemas`
  checks;
- `odds` beside `books` must equal the set the books give.

So each positive body is brought inside them: an unknown league or team becomes a known one
(picked by a hash of the generated name), a kickoff outside the window the nearest day inside
it, a price set off the bounds one with the same implied shares at a 5% margin, `odds` the
books' set. The app's own model (`FixtureIn`) then validates the body, and one it still
refuses is dropped. Every change and drop is counted, by rule, in the file named by
`SOCCERPREDICT_ST_COUNTS`, which the suite reports. The checks themselves and the schema are
untouched: a positive body the app refuses for any other reason still fails ST202.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import zlib
from collections import Counter
from datetime import date
from functools import cache
from typing import Any

import httpx
import schemathesis
from pydantic import ValidationError
from schemathesis import GenerationMode

from serve_app.schemas import (
    MAX_ODDS,
    MAX_OVERROUND,
    MIN_BEST_OVERROUND,
    MIN_ODDS,
    MIN_OVERROUND,
    Books,
    FixtureIn,
)

URL, KEY, COUNTS = "SOCCERPREDICT_ST_URL", "SOCCERPREDICT_ST_KEY", "SOCCERPREDICT_ST_COUNTS"
FIXTURE_ROUTES = {"POST /predict": False, "POST /predict/async": False, "POST /predict/batch": True}
TARGET_MARGIN = 0.05  # a rebuilt book's margin: a common bookmaker's
COUNTED: Counter[str] = Counter()


@cache
def known() -> dict[str, dict[str, Any]]:
    """Per league: its teams (sorted) and its kickoff window, from the app's `GET /teams`."""
    answer = httpx.get(f"{os.environ[URL]}/teams", headers={"X-API-Key": os.environ[KEY]})
    answer.raise_for_status()
    return {
        league["league"]: {
            "teams": sorted(league["teams"]),
            "earliest": date.fromisoformat(league["earliest_kickoff"]),
            "latest": date.fromisoformat(league["latest_kickoff"]),
        }
        for league in answer.json()["leagues"]
    }


def _pick(name: str, choices: list[str]) -> str:
    return choices[zlib.crc32(name.encode("utf-8", "surrogatepass")) % len(choices)]


def _rebuilt(prices: dict[str, Any], sides: tuple[str, ...], low: float) -> bool:
    """Prices whose margin is off [low, MAX_OVERROUND] set again, in place, to the same implied
    shares at TARGET_MARGIN; whether they were."""
    margin = sum(1 / prices[s] for s in sides) - 1
    if low <= margin <= MAX_OVERROUND:
        return False
    total = sum(1 / prices[s] for s in sides)
    for side in sides:
        share = (1 / prices[side]) / total
        prices[side] = min(MAX_ODDS, max(MIN_ODDS, round(1 / (share * (1 + TARGET_MARGIN)), 3)))
    return True


def seeded(fixture: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of one generated fixture inside the app's rules, and the rules it was moved for."""
    body, moved = copy.deepcopy(fixture), []
    leagues = known()
    if body["league"] not in leagues:
        body["league"] = _pick(body["league"], sorted(leagues))
        moved.append("league unknown to the state")
    league = leagues[body["league"]]
    teams = league["teams"]
    for side in ("home_team", "away_team"):
        if body[side].strip() not in teams:
            body[side] = _pick(body[side], teams)
            moved.append("team unknown to the state")
    if body["home_team"].strip() == body["away_team"].strip():
        body["away_team"] = teams[(teams.index(body["home_team"].strip()) + 1) % len(teams)]
        moved.append("the same team twice")
    kickoff = date.fromisoformat(body["kickoff"])
    inside = min(max(kickoff, league["earliest"]), league["latest"])
    if inside != kickoff:
        body["kickoff"] = inside.isoformat()
        moved.append("kickoff outside the league's window")
    sets = [(body.get("odds"), ("home", "draw", "away"), MIN_OVERROUND)]
    for book, prices in (body.get("books") or {}).items():
        low = MIN_BEST_OVERROUND if book == "max" else MIN_OVERROUND
        sets.append((prices, ("home", "draw", "away"), low))
    sets.append((body.get("over_under_25"), ("over", "under"), MIN_OVERROUND))
    sets.append((body.get("asian_handicap"), ("home", "away"), MIN_OVERROUND))
    rebuilt = [_rebuilt(p, sides, low) for p, sides, low in sets if p is not None]  # each set
    if any(rebuilt):
        moved.append("a price set off a bookmaker's margin")
    if body.get("odds") is not None and body.get("books"):
        chosen = Books.model_validate(body["books"]).market_set()
        if chosen is not None and chosen[1].model_dump() != body["odds"]:
            body["odds"] = chosen[1].model_dump()
            moved.append("odds unlike the books' set")
    return body, moved


def _fixtures(body: Any, batch: bool) -> list[dict[str, Any]] | None:
    """The body's fixtures if it is a body of fixtures (positive data is), else None."""
    fixtures = body.get("fixtures") if batch and isinstance(body, dict) else [body]
    if not isinstance(fixtures, list) or not all(isinstance(f, dict) for f in fixtures):
        return None
    return fixtures


def adapted(label: str, body: Any) -> tuple[Any, list[str], str | None]:
    """The body inside the app's rules, the rules moved for, and why the app's model still
    refuses it (None: it takes it). Bodies of other routes come back as they are."""
    if label not in FIXTURE_ROUTES:
        return body, [], None
    batch = FIXTURE_ROUTES[label]
    fixtures = _fixtures(body, batch)
    if fixtures is None:
        return body, [], None
    out, moved = [], []
    for fixture in fixtures:
        try:
            new, why = seeded(fixture)
        except (KeyError, ValueError, TypeError):  # not a fixture the model takes: validated below
            new, why = fixture, []
        out.append(new)
        moved += why
    new_body = {**body, "fixtures": out} if batch else out[0]
    try:
        for fixture in out:
            FixtureIn.model_validate(fixture)
    except ValidationError as err:
        first = err.errors()[0]
        return new_body, moved, f"{first['type']} at {'.'.join(map(str, first['loc']))}"
    return new_body, moved, None


def _positive(case: Any) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


@atexit.register
def _write_counts() -> None:
    """What was moved and dropped, once, as schemathesis exits."""
    path = os.environ.get(COUNTS)
    if path and COUNTED:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(dict(COUNTED), f)
        os.replace(tmp, path)


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Drop a positive case the app's model refuses even once brought inside its rules."""
    if not _positive(case):
        return True
    _, _, refused = adapted(case.operation.label, case.body)
    if refused:
        COUNTED[f"dropped, FixtureIn refuses it: {refused}"] += 1
    return refused is None


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Bring a positive case inside the app's rules (see the module's docstring)."""
    if not _positive(case):
        return case
    body, moved, _ = adapted(case.operation.label, case.body)
    if moved:
        case.body = body
        COUNTED.update(["positive cases moved", *moved])
    return case
