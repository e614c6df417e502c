"""One test per football-data quirk (in-test bytes, always run) plus real-data checks that skip
when DATA_DIR does not name the shared football-data folder."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from soccerpredict.data.contract import MATCH_COLUMNS, MATCH_SCHEMA, PRE_CLOSING_PRICE_COLUMNS
from soccerpredict.data.ids import make_match_id
from soccerpredict.data.readers import (
    UnrecognizedFormatError,
    read_extra_league_csv,
    read_football_data_csv,
)
from soccerpredict.data.sources import (
    Source,
    fetch_bytes,
    list_sources,
    season_code,
    season_range,
)
from tests.synthetic import write_synthetic_football_data

HEADER = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR,HTHG,HTAG,HS,AS,HST,AST,B365H,B365D,B365A"
ROW = "E0,16/08/14,Arsenal,Crystal Palace,2,1,H,1,1,14,4,6,2,1.25,6.5,15"
URL = "https://example.test/mmz4281/{code}/{league}.csv"
EXTRA_URL = "https://example.test/new/{league}.csv"
EXTRA_HEADER = (
    "Country,League,Season,Date,Time,Home,Away,HG,AG,Res,PH,PD,PA,MaxH,MaxD,MaxA,AvgH,AvgD,AvgA"
)


def read(text: str, **kwargs: str) -> pd.DataFrame:
    return read_football_data_csv(text.encode(), **kwargs)


def shared_dir() -> Path:
    value = os.environ.get("DATA_DIR")
    if not value or not Path(value, "E0").is_dir():
        pytest.skip("DATA_DIR does not name the shared football-data folder")
    return Path(value)


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args), tz="UTC")


# ---------------------------------------------------------------- output shape and schema


def test_columns_order_and_schema_cast() -> None:
    df = read(f"{HEADER}\n{ROW}\n")
    assert list(df.columns) == MATCH_COLUMNS
    table = pa.Table.from_pandas(df, schema=MATCH_SCHEMA, preserve_index=False)
    assert table.num_rows == 1
    assert df["home_goals"].dtype == "Int16"
    assert df["b365_home"].dtype == np.float64
    assert df.loc[0, "source"] == "football-data" and df.loc[0, "source_id"] is None


def test_values_are_mapped() -> None:
    row = read(f"{HEADER}\n{ROW}\n").iloc[0]
    assert (row.league, row.home_team, row.away_team, row.result) == (
        "E0",
        "Arsenal",
        "Crystal Palace",
        "H",
    )
    assert (row.home_goals, row.away_goals, row.ht_home_goals, row.ht_away_goals) == (2, 1, 1, 1)
    assert (row.home_shots, row.away_shots_on_target) == (14.0, 2.0)
    assert (row.b365_home, row.b365_draw, row.b365_away) == (1.25, 6.5, 15.0)
    assert np.isnan(row.ps_home) and np.isnan(row.psc_home)  # absent columns -> null


# ---------------------------------------------------------------- header forms


def test_both_header_forms_give_same_values() -> None:
    provider = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365>2.5,B365<2.5,PSCH,PSCD,PSCA\n"
    renamed = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365_2_5,B365_2_5_1,PSCH,PSCD,PSCA\n"
    body = "E0,12/09/2020,Fulham,Arsenal,0,3,A,1.72,2.1,5.48,3.98,1.69\n"
    a, b = read(provider + body), read(renamed + body)
    pd.testing.assert_frame_equal(a, b)
    assert a.loc[0, "psc_home"] == 5.48


def test_unknown_columns_are_ignored() -> None:
    df = read(f"{HEADER},BFEH,1XBH\n{ROW},2.0,2.1\n")
    assert list(df.columns) == MATCH_COLUMNS


def test_home_away_alias_columns() -> None:
    df = read("Div,Date,Home,Away,FTHG,FTAG,FTR\nE0,16/08/14,Arsenal,Chelsea,1,0,H\n")
    assert (df.loc[0, "home_team"], df.loc[0, "away_team"]) == ("Arsenal", "Chelsea")
    assert df.attrs["missing_columns"] == []


# ---------------------------------------------------------------- encoding and layout quirks


def test_bom_and_crlf() -> None:
    data = ("\ufeff" + f"{HEADER}\r\n{ROW}\r\n").encode("utf-8")
    df = read_football_data_csv(data)
    assert df.loc[0, "league"] == "E0"  # BOM not glued to "Div"
    assert df.loc[0, "b365_away"] == 15.0  # no "\r" left on the last cell


def test_latin1_fallback() -> None:
    data = f"{HEADER}\n{ROW.replace('Arsenal', 'Mönchengladbach')}\n".encode("latin-1")
    assert read_football_data_csv(data).loc[0, "home_team"] == "Mönchengladbach"


def test_blank_rows_are_skipped() -> None:
    blank = "," * HEADER.count(",")
    df = read(f"{HEADER}\n{ROW}\n{blank}\n\n{ROW.replace('Arsenal', 'Chelsea')}\n")
    assert df["home_team"].tolist() == ["Arsenal", "Chelsea"]


def test_trailing_empty_unnamed_columns() -> None:
    df = read(f"{HEADER},Unnamed__70,Unnamed__71\n{ROW},,\n")
    assert list(df.columns) == MATCH_COLUMNS and len(df) == 1


def test_rows_longer_than_header_are_cut() -> None:
    df = read(f"{HEADER}\n{ROW},,,\n")
    assert df.loc[0, "b365_away"] == 15.0


def test_integers_written_as_floats() -> None:
    df = read(f"{HEADER}\n{ROW.replace(',2,1,H,1,1,14,', ',2.0,1.0,H,1.0,1.0,14.0,')}\n")
    assert (df.loc[0, "home_goals"], df.loc[0, "ht_away_goals"]) == (2, 1)
    assert df["home_goals"].dtype == "Int16" and df.loc[0, "home_shots"] == 14.0


def test_team_names_stripped() -> None:
    df = read(f"{HEADER}\n{ROW.replace('Arsenal', ' Arsenal  ')}\n")
    assert df.loc[0, "home_team"] == "Arsenal"


def test_empty_odds_are_nan() -> None:
    df = read(f"{HEADER}\n{ROW.rsplit(',', 3)[0]},,,\n")
    assert df[["b365_home", "b365_draw", "b365_away"]].isna().all(axis=None)


# ---------------------------------------------------------------- dates and kickoff times


def test_two_and_four_digit_years_parse_day_first() -> None:
    short = read(f"{HEADER}\n{ROW}\n")
    long = read(f"{HEADER}\n{ROW.replace('16/08/14', '16/08/2014')}\n")
    assert short.loc[0, "kickoff_utc"] == long.loc[0, "kickoff_utc"]
    assert short.loc[0, "kickoff_utc"].date() == dt.date(2014, 8, 16)
    early = read(f"{HEADER}\n{ROW.replace('16/08/14', '03/01/2015')}\n")
    assert early.loc[0, "kickoff_utc"].month == 1  # 3 January, not 1 March


def test_unparseable_date_is_nat_not_exception() -> None:
    df = read(f"{HEADER}\n{ROW.replace('16/08/14', 'sometime')}\n")
    assert pd.isna(df.loc[0, "kickoff_utc"]) and df.loc[0, "match_id"] is None


def test_uk_summer_time_converted_to_utc() -> None:
    df = read("Div,Date,Time,HomeTeam,AwayTeam\nE0,14/08/2021,20:00,Leeds,Everton\n")
    assert df.loc[0, "kickoff_utc"] == utc(2021, 8, 14, 19, 0)  # BST is UTC+1


def test_uk_winter_time_is_utc() -> None:
    df = read("Div,Date,Time,HomeTeam,AwayTeam\nE0,15/01/2022,15:00,Leeds,Everton\n")
    assert df.loc[0, "kickoff_utc"] == utc(2022, 1, 15, 15, 0)


def test_no_time_column_means_1500_uk() -> None:
    df = read(f"{HEADER}\n{ROW}\n")  # 16 Aug 2014: BST
    assert df.loc[0, "kickoff_utc"] == utc(2014, 8, 16, 14, 0)


def test_season_from_date_or_argument() -> None:
    aug = read(f"{HEADER}\n{ROW.replace('16/08/14', '10/08/2019')}\n")
    may = read(f"{HEADER}\n{ROW.replace('16/08/14', '10/05/2020')}\n")
    assert aug.loc[0, "season"] == may.loc[0, "season"] == "2019-2020"
    given = read(f"{HEADER}\n{ROW}\n", league="XX", season="2013-2014")
    assert (given.loc[0, "league"], given.loc[0, "season"]) == ("XX", "2013-2014")


# ---------------------------------------------------------------- odds columns


def test_bbav_and_avg_both_map_to_avg() -> None:
    base = "Div,Date,HomeTeam,AwayTeam,{p}H,{p}D,{p}A\nE0,16/08/14,A,B,1.5,4.0,6.0\n"
    old, new = read(base.format(p="BbAv")), read(base.format(p="Avg"))
    for df in (old, new):
        assert df.loc[0, ["avg_home", "avg_draw", "avg_away"]].tolist() == [1.5, 4.0, 6.0]


def test_pinnacle_pre_closing_and_closing() -> None:
    df = read(
        "Div,Date,HomeTeam,AwayTeam,PSH,PSD,PSA,PSCH,PSCD,PSCA\n"
        "E0,16/08/14,A,B,1.5,4.0,6.0,1.4,4.2,7.0\n"
    )
    assert df.loc[0, ["ps_home", "psc_away"]].tolist() == [1.5, 7.0]


# ---------------------------------------------------------------- lenience and refusal


def test_missing_required_column_listed_and_null() -> None:
    df = read("Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\nE0,16/08/14,A,B,1,0\n")
    assert df.attrs["missing_columns"] == ["FTR"]
    assert df["result"].isna().all() and df.loc[0, "home_goals"] == 1
    pa.Table.from_pandas(df, schema=MATCH_SCHEMA, preserve_index=False)


def test_unrecognized_header_raises() -> None:
    with pytest.raises(UnrecognizedFormatError, match="HomeTeam"):
        read("foo,bar\n1,2\n")
    assert issubclass(UnrecognizedFormatError, ValueError)


# ---------------------------------------------------------------- extra leagues


EXTRA = (
    f"{EXTRA_HEADER}\n"
    "Austria, Tipico Bundesliga ,2012/2013,21/07/2012,15:00,Sturm Graz,Salzburg,0,2,A,"
    "3.26,3.34,2.4,3.26,3.4,2.5,2.96,3.2,2.33\n"
    "Norway,Eliteserien,2012,15/01/2012,17:00,Molde,Brann,1,1,D,,,,2.0,3.0,4.0,1.9,2.9,3.9\n"
)


def test_extra_league_detected_prices_only_as_benchmark() -> None:
    df = read_football_data_csv(EXTRA.encode(), league="AUT")
    assert list(df.columns) == MATCH_COLUMNS
    assert df["league"].tolist() == ["AUT", "AUT"]
    # no pre-closing column is filled: PH/PD/PA are of uncertain timing, a benchmark only
    assert df[PRE_CLOSING_PRICE_COLUMNS].isna().all(axis=None)
    assert df.loc[0, ["psc_home", "psc_draw", "psc_away"]].tolist() == [3.26, 3.34, 2.4]
    assert df.loc[1, ["psc_home", "psc_draw", "psc_away"]].isna().all()  # no PH: stays NaN
    assert df[["home_shots", "away_shots_on_target"]].isna().all(axis=None)  # no stats
    assert df["result"].tolist() == ["A", "D"] and df.loc[0, "away_goals"] == 2
    pa.Table.from_pandas(df, schema=MATCH_SCHEMA, preserve_index=False)


def test_extra_league_season_and_league_whitespace() -> None:
    df = read_extra_league_csv(EXTRA.encode(), None)
    assert df["season"].tolist() == ["2012-2013", "2012"]
    assert df["league"].tolist() == ["Austria", "Norway"]  # the Country column
    assert df.attrs["competitions"] == ["Eliteserien", "Tipico Bundesliga"]
    assert df.loc[0, "kickoff_utc"] == utc(2012, 7, 21, 14, 0)  # UK local, BST


# ---------------------------------------------------------------- match ids


def test_match_id_deterministic() -> None:
    a = make_match_id("E0", dt.date(2020, 9, 12), "Fulham", "Arsenal")
    assert a == make_match_id("E0", dt.date(2020, 9, 12), "Fulham", "Arsenal")
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != make_match_id("E0", dt.date(2020, 9, 12), "Arsenal", "Fulham")
    assert read(f"{HEADER}\n{ROW}\n").loc[0, "match_id"] == make_match_id(
        "E0", dt.date(2014, 8, 16), "Arsenal", "Crystal Palace"
    )


# ---------------------------------------------------------------- sources


def test_season_code_and_range() -> None:
    assert season_code("2019-2020") == "1920" and season_code("2005-2006") == "0506"
    assert season_range("2017-2018", "2019-2020") == ["2017-2018", "2018-2019", "2019-2020"]
    with pytest.raises(ValueError):
        season_code("2019-2021")


def test_list_sources_urls() -> None:
    got = list_sources(["E0"], ["2019-2020"], ["AUT"], None, URL, EXTRA_URL)
    assert got == [
        Source("E0", "2019-2020", "https://example.test/mmz4281/1920/E0.csv", "main"),
        Source("AUT", None, "https://example.test/new/AUT.csv", "extra"),
    ]


def test_list_sources_local(tmp_path: Path) -> None:
    (tmp_path / "E0").mkdir()
    (tmp_path / "E0" / "2019-2020.csv").write_text(f"{HEADER}\n{ROW}\n")
    (tmp_path / "extra_leagues").mkdir()
    (tmp_path / "extra_leagues" / "AUT.csv").write_text(EXTRA)
    got = list_sources(["E0"], ["2019-2020"], ["AUT"], tmp_path, URL, EXTRA_URL)
    assert [s.location for s in got] == [
        str(tmp_path / "E0" / "2019-2020.csv"),
        str(tmp_path / "extra_leagues" / "AUT.csv"),
    ]
    assert fetch_bytes(got[0].location).startswith(b"Div,")


def test_missing_local_file_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="2019-2020"):
        list_sources(["E0"], ["2019-2020"], [], tmp_path, URL, EXTRA_URL)


def test_fetch_bytes_retries_server_errors() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503 if len(calls) < 3 else 200, content=b"ok")

    got = fetch_bytes(
        "https://example.test/x.csv", transport=httpx.MockTransport(handler), sleep=lambda _: None
    )
    assert got == b"ok" and len(calls) == 3


def test_fetch_bytes_does_not_retry_404() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(404)

    with pytest.raises(httpx.HTTPStatusError):
        fetch_bytes(
            "https://example.test/x.csv",
            transport=httpx.MockTransport(handler),
            sleep=lambda _: None,
        )
    assert len(calls) == 1


# ---------------------------------------------------------------- synthetic data


def test_synthetic_reads_back_sensibly(synthetic_data_dir: Path) -> None:
    files = sorted(synthetic_data_dir.glob("*/*.csv"))
    assert [f.relative_to(synthetic_data_dir).as_posix() for f in files][:2] == [
        "E0/2016-2017.csv",
        "E0/2017-2018.csv",
    ]
    df = pd.concat([read_football_data_csv(f.read_bytes(), season=f.stem) for f in files])
    assert len(df) == 8 * 90 and df["match_id"].is_unique
    assert (
        not df[["kickoff_utc", "home_goals", "b365_home", "avg_home", "psc_home"]]
        .isna()
        .any(axis=None)
    )
    overround = (1 / df[["b365_home", "b365_draw", "b365_away"]]).sum(axis=1)
    assert overround.between(1.02, 1.09).all()
    favourite = np.where(df["b365_home"] < df["b365_away"], "H", "A")
    assert (df["result"] == favourite).mean() > 0.45  # real signal
    months = df["kickoff_utc"].dt.month
    assert set(months) <= {8, 9, 10, 11, 12, 1, 2, 3, 4, 5}


def test_synthetic_is_deterministic_and_relegates(tmp_path: Path) -> None:
    a = write_synthetic_football_data(tmp_path / "a", leagues=("E0",), seed=3)
    b = write_synthetic_football_data(tmp_path / "b", leagues=("E0",), seed=3)
    for f in sorted(a.glob("*/*.csv")):
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes()
    teams = [
        set(read_football_data_csv(f.read_bytes())["home_team"]) for f in sorted(a.glob("E0/*.csv"))
    ]
    assert all(len(t) == 10 and len(t - prev) == 2 for prev, t in itertools.pairwise(teams))


# ---------------------------------------------------------------- real shared data


def test_real_both_header_forms_identical() -> None:
    root = shared_dir()
    provider = read_football_data_csv((root / "raw/E0/2020-2021.csv").read_bytes())
    renamed = read_football_data_csv((root / "E0/2020-2021.csv").read_bytes())
    pd.testing.assert_frame_equal(provider, renamed)
    assert len(provider) == 380 and provider["match_id"].is_unique


@pytest.mark.parametrize(
    ("league", "season", "rows"),
    [
        ("E0", "2014-2015", 380),  # blank row
        ("D1", "2010-2011", 306),  # Unnamed__70.. trailing columns
        ("I1", "2005-2006", 380),  # HS written as floats
        ("F1", "2019-2020", 279),  # halted season
        ("E0", "2017-2018", 380),  # dd/mm/yyyy before 2018-19
    ],
)
def test_real_quirky_files(league: str, season: str, rows: int) -> None:
    path = shared_dir() / league / f"{season}.csv"
    df = read_football_data_csv(path.read_bytes(), season=season)
    assert len(df) == rows and df.attrs["missing_columns"] == []
    assert not df[["match_id", "kickoff_utc", "home_goals", "result"]].isna().any(axis=None)
    pa.Table.from_pandas(df, schema=MATCH_SCHEMA, preserve_index=False)


def test_real_extra_league() -> None:
    df = read_football_data_csv((shared_dir() / "extra_leagues/IRL.csv").read_bytes(), "IRL")
    assert len(df) == 1653 and set(df["league"]) == {"IRL"}
    assert df.attrs["competitions"] == ["Premier Division"]  # stray spaces stripped
    assert df["ps_home"].isna().all() and df["match_id"].is_unique
    assert df["psc_home"].notna().mean() > 0.95  # Pinnacle's prices: the benchmark
