"""Online features (published team state + one fixture) equal the offline table's, on real data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serve_app.schemas import FixtureIn
from soccerpredict.config import FeatureParams
from soccerpredict.data.clean import to_interim
from soccerpredict.data.readers import read_football_data_csv
from soccerpredict.features.build import (
    FEATURE_COLUMNS,
    MARKET_FEATURES,
    PRICE_COLUMNS,
    STATE_FEATURES,
    build_features_and_states,
)
from soccerpredict.features.market import EXTRA_MARKET_FEATURES, pre_closing_odds
from soccerpredict.features.online import Fixture, FixtureError, TeamState, snapshot
from tests.served_app import request_body

AS_OF = date(2020, 2, 29)  # the rest of 2019-20 is upcoming
SEASONS = ["2017-2018", "2018-2019", "2019-2020"]


@pytest.fixture(scope="module")
def published(football_data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, TeamState]:
    raw = pd.concat(
        [
            read_football_data_csv((football_data_dir / lg / f"{s}.csv").read_bytes(), lg, s)
            for lg in ("E0", "SP1")
            for s in SEASONS
        ]
    )
    interim = to_interim(raw, ["E0", "SP1"], SEASONS, AS_OF)
    params = FeatureParams()
    table, states = build_features_and_states(interim, params)
    document = json.loads(json.dumps(snapshot(states, params, AS_OF)))  # as Serve reads it
    return interim, table, TeamState.from_snapshot(document)


def test_every_upcoming_fixture_gets_the_offline_vector(published) -> None:  # type: ignore[no-untyped-def]
    interim, table, state = published
    upcoming = table[table["result"].isna()].reset_index(drop=True)
    assert len(upcoming) >= 40  # 50 in the generated data, 200 in the real
    rows = interim.set_index("match_id").loc[upcoming["match_id"]].reset_index()
    odds = pre_closing_odds(rows)  # the prices the offline table used, as a client would send
    fixtures = [
        Fixture(
            r.league,
            r.home_team,
            r.away_team,
            r.kickoff_utc.date(),
            tuple(o) if np.isfinite(o).all() else None,
        )
        for r, o in zip(rows.itertuples(), odds, strict=True)
    ]
    online = state.features(fixtures)
    # a request carries one 1X2 price set: the ratings and that set's market values match the
    # offline table, every other market input is missing (the 1X2 tier's input)
    carried = STATE_FEATURES + MARKET_FEATURES
    np.testing.assert_array_equal(online[carried].to_numpy(), upcoming[carried].to_numpy())
    assert online.drop(columns=carried).isna().all().all()
    assert list(online.columns) == FEATURE_COLUMNS


def test_a_request_with_every_price_gets_the_whole_offline_vector(published) -> None:  # type: ignore[no-untyped-def]
    """Books, totals and handicap through the request schema: the vector equals the offline
    table's in every column, market ones included (what `with_market` reads)."""
    interim, table, state = published
    upcoming = table[table["result"].isna()].reset_index(drop=True)
    rows = interim.set_index("match_id").loc[upcoming["match_id"]].reset_index()
    bodies = [
        request_body(r, o) for r, o in zip(rows.itertuples(), pre_closing_odds(rows), strict=True)
    ]
    assert sum("books" in b for b in bodies) == len(bodies)
    online = state.features([FixtureIn.model_validate(b).fixture() for b in bodies])
    np.testing.assert_array_equal(online.to_numpy(), upcoming[FEATURE_COLUMNS].to_numpy())
    assert online[EXTRA_MARKET_FEATURES + PRICE_COLUMNS].notna().any().all()


def test_the_snapshot_version_follows_its_content(published) -> None:  # type: ignore[no-untyped-def]
    interim, _, state = published
    _, states = build_features_and_states(interim, FeatureParams())
    assert snapshot(states, FeatureParams(), AS_OF)["version"] == state.version
    changed = snapshot(states, FeatureParams(form_window=3), AS_OF)["version"]
    assert changed != state.version


@pytest.mark.parametrize(
    "change, field, text",
    [
        ({"home_team": "misspelt"}, "home_team", "closest known"),
        ({"away_team": "home"}, "away_team", "same"),
        ({"league": "XX"}, "league", "E0"),
        ({"kickoff": date(2019, 3, 7)}, "kickoff", "latest result"),
        ({"kickoff": date(2031, 3, 7)}, "kickoff", "400 days"),
    ],
)
def test_fixtures_the_state_cannot_answer_are_named(
    published,
    change: dict[str, object],  # type: ignore[no-untyped-def]
    field: str,
    text: str,
) -> None:
    _, _, state = published
    home, away = state.teams("E0")[:2]
    values: dict[str, object] = {
        "league": "E0",
        "home_team": home,
        "away_team": away,
        "kickoff": date(2020, 3, 7),
    }
    values |= change
    if change.get("home_team") == "misspelt":
        values["home_team"] = home[:-1]  # one letter short of a real name
    if change.get("away_team") == "home":
        values["away_team"] = home
    with pytest.raises(FixtureError) as err:
        state.check(Fixture(**values), max_horizon_days=400)  # type: ignore[arg-type]
    assert err.value.field == field and text in err.value.message
    if field == "home_team":
        assert err.value.suggestions and set(err.value.suggestions) <= set(state.teams("E0"))
