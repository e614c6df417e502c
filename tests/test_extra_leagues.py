"""The extra leagues: seasons by date, the split by date, league games only, their prices only
as a benchmark, and per-league scores. No country is special-cased: every rule is tested on
made-up leagues of both season kinds."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from soccerpredict.config import SplitParams
from soccerpredict.data.clean import league_games_only, to_interim
from soccerpredict.data.readers import read_football_data_csv
from soccerpredict.seasons import season_span
from soccerpredict.split import extra_split, split_dates, temporal_split

SPLIT = SplitParams(
    validation_seasons=["2017-2018", "2018-2019"],
    test_seasons=["2019-2020", "2020-2021", "2021-2022"],
)


def test_season_labels_become_date_ranges() -> None:
    assert season_span("2018-2019") == (date(2018, 7, 1), date(2019, 6, 30))
    assert season_span("2018/2019") == (date(2018, 7, 1), date(2019, 6, 30))
    assert season_span("2019") == (date(2019, 1, 1), date(2019, 12, 31))
    # by name "2019" sorts between these two; by date it overlaps both
    assert season_span("2018-2019")[0] < season_span("2019")[0] < season_span("2019-2020")[0]
    for bad in ("19", "2019-2021", "abcd", ""):
        with pytest.raises(ValueError, match="season"):
            season_span(bad)


def _matches(rows: list[tuple[str, str, str, str, str]]) -> pd.DataFrame:
    """(league, season, day, home, away) -> the columns the split and the rules read."""
    frame = pd.DataFrame(rows, columns=["league", "season", "day", "home_team", "away_team"])
    frame["kickoff_utc"] = pd.to_datetime(frame.pop("day")).dt.tz_localize("UTC")
    frame["match_id"] = [f"m{i}" for i in range(len(frame))]
    frame["result"] = "H"
    return frame


def test_split_by_date_for_both_season_kinds() -> None:
    frame = _matches(
        [
            ("X", "2016-2017", "2017-05-20", "a", "b"),  # train
            ("X", "2017-2018", "2017-08-10", "a", "b"),  # validation
            ("X", "2019-2020", "2020-07-20", "a", "b"),  # test (a COVID-late game)
            ("C", "2017", "2017-04-01", "a", "b"),  # calendar season, before the cut: train
            ("C", "2017", "2017-09-01", "a", "b"),  # after 1 July 2017: validation
            ("C", "2019", "2019-05-01", "a", "b"),  # validation
            ("C", "2019", "2019-08-01", "a", "b"),  # test
            ("C", "2020", "2020-11-01", "a", "b"),  # test
            ("C", "2023", "2023-01-01", "a", "b"),  # after the last test season: nowhere
        ]
    )
    frame.loc[len(frame)] = frame.iloc[0].copy()
    frame.loc[len(frame) - 1, ["match_id", "result"]] = ["upcoming", None]
    parts = temporal_split(frame, SPLIT)
    ids = {name: parts[name]["match_id"].tolist() for name in parts}
    assert ids == {
        "train": ["m0", "m3"],
        "validation": ["m1", "m4", "m5"],
        "test": ["m2", "m6", "m7"],
        "upcoming": ["upcoming"],
    }
    assert split_dates(SPLIT) == (date(2017, 7, 1), date(2019, 7, 1), date(2022, 6, 30))
    extra = extra_split(frame, SPLIT)
    assert sorted(extra) == ["extra_test", "extra_train", "extra_validation"]
    assert extra["extra_validation"]["match_id"].tolist() == ids["validation"]


def test_a_july_june_season_keeps_its_late_games() -> None:
    """2019-20's games of July 2020 stay in 2019-20 (the top-5 split as it was), while a
    calendar season's games of the same days are after the last test season's range."""
    frame = _matches(
        [("X", "2019-2020", "2020-07-20", "a", "b"), ("C", "2020", "2020-07-20", "a", "b")]
    )
    params = SplitParams(validation_seasons=["2018-2019"], test_seasons=["2019-2020"])
    parts = temporal_split(frame, params)
    assert parts["test"]["match_id"].tolist() == ["m0"]
    assert sum(len(parts[n]) for n in ("train", "validation", "upcoming")) == 0


def test_split_refuses_validation_after_test() -> None:
    with pytest.raises(ValueError, match="before the test"):
        split_dates(SplitParams(validation_seasons=["2020-2021"], test_seasons=["2019-2020"]))


def _round_robin(league: str, season: str, start: str, teams: list[str]) -> list[tuple]:
    """A double round robin by the circle method: every team plays each round, one round a
    week, the return leg n - 1 weeks after the first."""
    ring = list(teams) + ([None] if len(teams) % 2 else [])
    n = len(ring)
    rounds = []
    for _ in range(n - 1):
        rounds.append([(ring[k], ring[n - 1 - k]) for k in range(n // 2)])
        ring = [ring[0], ring[-1], *ring[1:-1]]
    legs = rounds + [[(a, h) for h, a in games] for games in rounds]
    day = pd.Timestamp(start)
    rows = []
    for games in legs:
        rows += [(league, season, str(day.date()), h, a) for h, a in games if h and a]
        day += pd.Timedelta(days=7)
    return rows


def test_league_games_only_drops_playoffs_of_any_country() -> None:
    teams = ["a", "b", "c", "d", "e", "f"]
    league = _round_robin("N", "2019", "2019-03-01", teams)
    last = pd.Timestamp(league[-1][2])

    def later(days: int) -> str:
        return str((last + pd.Timedelta(days=days)).date())

    playoffs = [
        # a lower division's team against a league team, home and away (rule 1)
        ("N", "2019", later(3), "z", "d"),
        ("N", "2019", later(6), "d", "z"),
        # a two-legged tie of two league teams at the season's end (rule 2)
        ("N", "2019", later(10), "a", "b"),
        ("N", "2019", later(14), "b", "a"),
    ]
    other = _round_robin("S", "2019-2020", "2019-08-01", teams)  # untouched: no play-offs
    frame = _matches(league + playoffs + other)
    kept = league_games_only(frame)
    assert len(kept) == len(league) + len(other)
    assert not kept["home_team"].eq("z").any() and not kept["away_team"].eq("z").any()
    dropped = frame[~frame["match_id"].isin(kept["match_id"])]
    assert len(dropped) == len(playoffs)


def _fixtures(league: str, season: str, start: str, pairs: list[tuple[str, str]], every: int):
    day = pd.Timestamp(start)
    rows = []
    for home, away in pairs:
        rows.append((league, season, str(day.date()), home, away))
        day += pd.Timedelta(days=every)
    return rows


def test_a_knockout_tie_between_two_halves_of_a_season_is_dropped() -> None:
    """A Liguilla-style play-off mid-season (only the teams still in it play) goes; a
    championship round where every team plays, with a return game within a week, stays."""
    teams = list("abcdefgh")
    first_half = _round_robin("M", "2019-2020", "2019-07-01", teams)
    # a mid-season round and its return 4 days later: every team plays, so it is league play
    pairs = [("a", "b"), ("c", "d"), ("e", "f"), ("g", "h")]
    round_ = [("M", "2019-2020", "2020-01-10", h, a) for h, a in pairs]
    round_ += [("M", "2019-2020", "2020-01-14", a, h) for h, a in pairs]
    tie = _fixtures("M", "2019-2020", "2020-03-01", [("a", "b"), ("b", "a")], 3)
    second_half = _round_robin("M", "2019-2020", "2020-03-20", teams)
    frame = _matches(first_half + round_ + tie + second_half)
    kept = league_games_only(frame)
    dropped = frame[~frame["match_id"].isin(kept["match_id"])]
    assert dropped["kickoff_utc"].dt.strftime("%Y-%m-%d").tolist() == ["2020-03-01", "2020-03-04"]


def test_a_return_game_weeks_later_is_a_league_game() -> None:
    """The rule 2 window: a pair meeting again 2 weeks after, or long before the end, stays."""
    rows = _round_robin("N", "2019", "2019-03-01", ["a", "b", "c", "d", "e"])
    frame = _matches(rows)
    assert len(league_games_only(frame)) == len(rows)


EXTRA_HEADER = (
    "Country,League,Season,Date,Time,Home,Away,HG,AG,Res,PH,PD,PA,MaxH,MaxD,MaxA,AvgH,AvgD,AvgA"
)


def test_to_interim_selects_extra_leagues_by_date() -> None:
    text = (
        f"{EXTRA_HEADER}\n"
        "Norway,Eliteserien ,2011,01/05/2011,17:00,a,b,1,0,H,2,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,01/05/2012,17:00,a,b,1,0,H,2,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,08/07/2012,17:00,b,a,0,0,D,,,,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,01/05/2012,19:00,c,d,0,0,D,2,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,08/07/2012,19:00,e,c,0,0,D,2,3,4,2,3,4,2,3,4\n"
    )
    raw = read_football_data_csv(text.encode(), league="NOR")
    interim = to_interim(
        raw,
        ["E0"],
        ["2011-2012"],
        date(2022, 4, 30),
        (["NOR"], date(2012, 1, 1), date(2013, 6, 30)),
    )
    assert interim["season"].tolist() == ["2012"] * 4
    price = interim.set_index(["home_team", "away_team"])["psc_home"]
    assert price["a", "b"] == 2.0 and np.isnan(price["b", "a"])
    assert interim["ps_home"].isna().all()  # never a pre-closing price


def test_real_extra_leagues_keep_nearly_every_game() -> None:
    value = os.environ.get("DATA_DIR")
    folder = Path(value or "", "extra_leagues")
    if not value or not folder.is_dir():
        pytest.skip("DATA_DIR does not name the shared football-data folder")
    for path in sorted(folder.glob("*.csv")):
        raw = read_football_data_csv(path.read_bytes(), league=path.stem)
        kept = league_games_only(raw)
        # play-offs are a few games a season; a rule that cuts more is wrong
        assert 0.96 * len(raw) <= len(kept) <= len(raw), path.stem
        per_team = pd.concat([kept["home_team"], kept["away_team"]]).groupby(
            pd.concat([kept["season"], kept["season"]])
        )
        assert per_team.nunique().min() >= 8, path.stem


def test_an_extra_league_is_served_with_the_age_of_its_data() -> None:
    """A league whose file ends long before `as_of`: its teams are known, a fixture after its
    data ends is answered (and says how old the data is), the horizon refusal still applies."""
    from soccerpredict.config import FeatureParams
    from soccerpredict.features.build import build_features_and_states
    from soccerpredict.features.online import Fixture, FixtureError, TeamState, snapshot
    from soccerpredict.time_rules import kickoff_window

    frame = _matches(_round_robin("N", "2020", "2020-05-01", ["a", "b", "c", "d"]))
    frame["home_goals"], frame["away_goals"] = 1, 0
    frame["home_shots_on_target"] = frame["away_shots_on_target"] = np.nan
    as_of = date(2022, 4, 30)
    params = FeatureParams()
    _, states = build_features_and_states(frame, params)
    state = TeamState.from_snapshot(snapshot(states, params, as_of))
    ends = state.data_ends("N")
    assert ends == frame["kickoff_utc"].max().date()
    assert state.teams("N") == ["a", "b", "c", "d"]
    state.check(Fixture("N", "a", "b", date(2022, 5, 7)), max_horizon_days=400)
    assert (date(2022, 5, 7) - ends).days > 500
    with pytest.raises(FixtureError, match="400 days after the data ends"):
        state.check(Fixture("N", "a", "b", date(2023, 6, 30)), max_horizon_days=400)
    assert kickoff_window(as_of, ends, 400)[0] == ends + pd.Timedelta(days=1)


def test_extra_league_prices_never_reach_a_feature() -> None:
    """PH/PD/PA are kept as the benchmark (psc_*): every price feature of the rows is NaN."""
    from soccerpredict.config import FeatureParams
    from soccerpredict.evaluation import PRE_MATCH_PRICE_FEATURES
    from soccerpredict.features.build import build_features

    text = (
        EXTRA_HEADER
        + "\n"
        + "\n".join(
            f"Norway,Eliteserien,2012,{d:02d}/0{m}/2012,17:00,{h},{a},1,0,H,2,3,4,2,3,4,2,3,4"
            for m, d, h, a in [
                (4, 1, "a", "b"),
                (5, 2, "c", "d"),
                (6, 3, "b", "a"),
                (8, 4, "d", "c"),
                (9, 5, "e", "a"),
            ]
        )
    )
    raw = read_football_data_csv(text.encode(), league="NOR")
    interim = to_interim(
        raw, [], [], date(2022, 4, 30), (["NOR"], date(2012, 1, 1), date(2013, 1, 1))
    )
    table = build_features(interim, FeatureParams())
    assert len(table) == 5
    assert table[PRE_MATCH_PRICE_FEATURES].isna().all(axis=None)
    assert (table["psc_home"] == 2.0).all()  # the benchmark is still there for evaluation
    assert table["form_sot_home"].isna().all()  # no shots in these files: NaN, not 0


def test_a_price_no_book_quotes_leaves_the_row_without_benchmark() -> None:
    """Prices outside the raw gate's range would stop the pipeline for a column no model
    reads: the row keeps no benchmark, and the reader counts it."""
    text = (
        f"{EXTRA_HEADER}\n"
        "Norway,Eliteserien,2012,01/05/2012,17:00,a,b,1,0,H,1.0,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,08/07/2012,17:00,b,a,0,0,D,2.1,3.2,3.9,2,3,4,2,3,4\n"
    )
    raw = read_football_data_csv(text.encode(), league="NOR")
    assert raw[["psc_home", "psc_draw", "psc_away"]].iloc[0].isna().all()
    assert raw["psc_away"].iloc[1] == 3.9
    assert raw.attrs["benchmark_prices_dropped"] == 1


def test_rows_that_are_not_whole_matches_are_dropped_and_counted() -> None:
    """An unseen country's broken row (no goals, a result that disagrees, the same match twice)
    is dropped, not a failed gate for every league."""
    text = (
        f"{EXTRA_HEADER}\n"
        "Norway,Eliteserien,2012,01/05/2012,17:00,a,b,1,0,H,2,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,01/05/2012,17:00,a,b,1,0,H,2,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,02/05/2012,17:00,c,d,,,,2,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,03/05/2012,17:00,e,f,0,2,H,2,3,4,2,3,4,2,3,4\n"
        "Norway,Eliteserien,2012,04/05/2012,17:00,g,h,2,2,D,1.0,3,4,2,3,4,2,3,4\n"
    )
    raw = read_football_data_csv(text.encode(), league="NOR")
    assert raw["home_team"].tolist() == ["a", "g"]
    assert raw.attrs["rows_dropped"] == 3
    assert raw.attrs["benchmark_prices_dropped"] == 1


def test_a_season_only_begun_is_left_out_whole() -> None:
    """A file ending on a new season's first day (two games, four teams) would fail the interim
    gate's minimum of teams for every league: that season waits for more games."""
    full = _round_robin("N", "2019", "2019-03-01", ["a", "b", "c", "d", "e", "f"])
    begun = [("N", "2020", "2020-03-01", "a", "b"), ("N", "2020", "2020-03-01", "c", "d")]
    kept = league_games_only(_matches(full + begun))
    assert kept["season"].unique().tolist() == ["2019"] and len(kept) == len(full)
