"""The calendar rule (`data.last_season: current`, `as_of: today`) and the provider's URL layout."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml

from soccerpredict.config import PROJECT_ROOT, load_config
from soccerpredict.data.readers import read_football_data_csv
from soccerpredict.data.sources import fetch_bytes, list_sources, season_range
from soccerpredict.seasons import Calendar, resolve_calendar, season_of

URL = "https://www.football-data.co.uk/mmz4281/{code}/{league}.csv"
EXTRA = "https://www.football-data.co.uk/new/{league}.csv"
FIXTURES = "https://www.football-data.co.uk/fixtures.csv"


@pytest.mark.parametrize(
    ("day", "season"),
    [
        (date(2026, 6, 30), "2025-2026"),
        (date(2026, 7, 1), "2026-2027"),
        (date(2026, 7, 31), "2026-2027"),
        (date(2026, 8, 1), "2026-2027"),
        (date(2027, 1, 15), "2026-2027"),
        (date(2020, 7, 26), "2020-2021"),
    ],
)
def test_season_of_turns_on_the_first_of_july(day: date, season: str) -> None:
    assert season_of(day) == season


def test_current_and_today_follow_the_date() -> None:
    july = resolve_calendar("current", "today", today=date(2026, 7, 1))
    assert july == Calendar("2026-2027", date(2026, 6, 30), last_season_in_progress=True)
    august = resolve_calendar("current", "today", today=date(2026, 8, 1))
    assert august.last_season == "2026-2027" and august.as_of == date(2026, 7, 31)
    june = resolve_calendar("current", "2026-05-01", today=date(2026, 6, 30))
    assert june == Calendar("2025-2026", date(2026, 5, 1), last_season_in_progress=True)


def test_fixed_settings_never_move() -> None:
    for today in (date(2022, 5, 1), date(2026, 11, 29)):
        cal = resolve_calendar("2021-2022", "2022-04-30", today=today)
        assert cal == Calendar("2021-2022", date(2022, 4, 30), last_season_in_progress=False)
    with pytest.raises(ValueError, match="as_of must be a date"):
        resolve_calendar("2021-2022", "yesterday", today=date(2026, 1, 1))


def test_the_default_params_are_fixed() -> None:
    cfg = load_config(PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml", env={})
    assert cfg.calendar == Calendar("2021-2022", date(2022, 4, 30), False)
    assert (cfg.params.data.last_season, cfg.params.as_of) == ("2021-2022", date(2022, 4, 30))


def _project(tmp_path: Path, last_season: str, as_of: str) -> tuple[Path, Path]:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["last_season"], params["as_of"] = last_season, as_of
    runtime = yaml.safe_load((PROJECT_ROOT / "conf/runtime.yaml").read_text())
    runtime["paths"]["calendar"] = str(tmp_path / "calendar.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    return tmp_path / "params.yaml", tmp_path / "runtime.yaml"


def test_stages_read_the_calendar_the_first_stage_resolved(tmp_path: Path) -> None:
    params, runtime = _project(tmp_path, "current", "today")
    first = load_config(params, runtime, env={}, today=date(2026, 6, 30))
    assert first.params.data.last_season == "2025-2026"
    settings = {"last_season": "current", "as_of": "today"}
    (tmp_path / "calendar.yaml").write_text(
        yaml.safe_dump({**first.calendar.to_dict(), "settings": settings})
    )
    later = load_config(params, runtime, env={})  # a later stage, on whatever day it runs
    assert later.calendar == first.calendar and later.params.as_of == date(2026, 6, 29)
    params, runtime = _project(tmp_path, "current", "2026-07-15")  # settings changed since
    assert load_config(params, runtime, env={}).params.as_of == date(2026, 7, 15)


def _provider(request: httpx.Request) -> httpx.Response:
    """The provider's layout: mmz4281/<YYZZ>/<Div>.csv, new/<CC>.csv, fixtures.csv."""
    parts = request.url.path.strip("/").split("/")
    header = "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,PSH,PSD,PSA\n"
    if request.url.host == "www.football-data.co.uk" and parts == ["fixtures.csv"]:
        return httpx.Response(
            200,
            text="Div,Date,Time,HomeTeam,AwayTeam,PSH,PSD,PSA\n"
            "E0,05/12/2026,15:00,Arsenal,Chelsea,2.1,3.4,3.6\n"
            "X9,05/12/2026,15:00,A,B,2.0,3.0,4.0\n",
        )
    if len(parts) == 3 and parts[0] == "mmz4281" and len(parts[1]) == 4 and parts[1].isdigit():
        league = parts[2].removesuffix(".csv")
        return httpx.Response(200, text=header + f"{league},01/11/2026,15:00,A,B,1,0,H,2,3,4\n")
    return httpx.Response(404)


def test_urls_of_the_season_in_progress_follow_the_provider(tmp_path: Path) -> None:
    params, runtime = _project(tmp_path, "current", "today")
    cfg = load_config(params, runtime, env={}, today=date(2026, 11, 29))
    d, r = cfg.params.data, cfg.runtime.data
    sources = list_sources(
        d.leagues,
        season_range("2025-2026", d.last_season),
        [],
        None,
        r.url_template,
        r.extra_url_template,
        r.fixtures_url,
    )
    urls = [s.location for s in sources]
    assert urls[:2] == [URL.format(code="2526", league="E0"), URL.format(code="2627", league="E0")]
    assert urls[-1] == FIXTURES and len(urls) == 2 * len(d.leagues) + 1
    transport = httpx.MockTransport(_provider)
    frames = [
        read_football_data_csv(
            fetch_bytes(u, transport=transport, retries=0),
            league=None if s.kind == "fixtures" else s.league,
            season=s.season,
        )
        for s, u in zip(sources, urls, strict=True)
    ]
    fixtures = frames[-1]
    assert fixtures["result"].isna().all() and set(fixtures["league"]) == {"E0", "X9"}
    assert fixtures["season"].tolist() == ["2026-2027"] * 2
    with pytest.raises(httpx.HTTPStatusError):
        fetch_bytes(
            EXTRA.format(league="ARG").replace("/new/", "/old/"), transport=transport, retries=0
        )


def test_fixtures_are_read_only_for_a_season_in_progress(tmp_path: Path) -> None:
    from ray_jobs.ingest import sources_for

    params, runtime = _project(tmp_path, "current", "today")
    current = sources_for(load_config(params, runtime, env={}, today=date(2026, 11, 29)))
    assert current[-1].kind == "fixtures"
    fixed = load_config(PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml", env={})
    assert all(s.kind != "fixtures" for s in sources_for(fixed))


def test_fixtures_add_only_our_leagues_unplayed_matches() -> None:
    import pandas as pd

    from ray_jobs.ingest import with_fixtures

    matches = pd.DataFrame(
        {
            "match_id": ["a", "b", "a", "c", "d"],
            "league": ["E0", "E0", "E0", "E0", "X9"],
            "source_file_kind": ["main", "main", "fixtures", "fixtures", "fixtures"],
        }
    )
    kept = with_fixtures(matches, ["E0"])
    assert kept["match_id"].tolist() == ["a", "b", "c"] and "source_file_kind" not in kept
