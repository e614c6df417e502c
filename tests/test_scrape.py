"""The scraper for real: Debian's Chromium through Playwright, Ray actors, a local WhoScored
replica serving the saved pages, and faults injected into it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from soccerpredict.config import Config, load_config
from tests.projects import ROOT
from tests.whoscored_data import whoscored_dir
from tests.whoscored_replica import Replica

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MONTHS = ["202009", "202010", "202011", "202012", "202101", "202102", "202103", "202104", "202105"]


def month_path(month: str) -> str:
    return f"/tournaments/18685/data/?d={month}&isAggregate=false"


@pytest.fixture(scope="module")
def replica() -> Iterator[Replica]:
    folder = whoscored_dir()
    if folder is None:
        pytest.skip("the saved WhoScored pages are not here (WHOSCORED_DIR / DATA_DIR)")
    with Replica(folder) as server:
        yield server


def scrape_config(tmp: Path, base_url: str, matches: Path | None = None, **scrape: Any) -> Config:
    runtime = yaml.safe_load((ROOT / "conf/runtime.yaml").read_text())
    runtime["paths"] = {k: str(tmp / v) for k, v in runtime["paths"].items()}
    if matches is not None:  # share a match table, not the page cache
        runtime["paths"]["whoscored_matches"] = str(matches)
    tmp.mkdir(parents=True, exist_ok=True)
    runtime["scrape"].update(
        {
            "base_url": base_url,
            "delay_s": 0.05,
            "jitter_s": 0.05,
            "retries": 2,
            "backoff_s": 0.1,
            "timeout_s": 10,
        }
        | scrape
    )
    (tmp / "runtime.yaml").write_text(yaml.safe_dump(runtime))
    return load_config(ROOT / "params.yaml", tmp / "runtime.yaml", env={})


# ------------------------------------------------------------------ one browser, no Ray


def test_the_browser_talks_only_to_the_base_url_and_is_recreated_when_it_dies(
    replica: Replica,
) -> None:
    import psutil

    from soccerpredict.whoscored.browser import Fetcher

    fetcher = Fetcher(replica.url, delay_s=0.2, jitter_s=0.0, retries=2, backoff_s=0.05)
    try:
        first = fetcher.get("/Regions/252/Tournaments/2/Seasons/8228")
        assert first.status == 200 and "stages/18685/fixtures" in first.text
        assert fetcher._browser is not None and fetcher._browser.blocked_requests > 0
        for proc in psutil.Process().children(recursive=True):  # Chromium dies under us
            if "chromium" in (proc.name() or ""):
                proc.kill()
        started = time.monotonic()
        second = fetcher.get(month_path("202101"), kind="data")
        assert second.status == 200 and json.loads(second.text)["tournaments"]
        assert fetcher.browsers_started == 2
        assert time.monotonic() - started >= 0.2  # the polite delay came first
    finally:
        fetcher.close()


def test_retries_back_off_and_give_up_with_the_reason(replica: Replica) -> None:
    from soccerpredict.whoscored.browser import Fetcher, FetchFailed

    fetcher = Fetcher(
        replica.url, delay_s=0.0, jitter_s=0.0, retries=2, backoff_s=0.05, timeout_s=1.5
    )
    try:
        replica.faults[month_path("202010")] = ["503", "429"]
        assert fetcher.get(month_path("202010"), kind="data").attempts == 3
        replica.faults[month_path("202011")] = ["slow:3"]
        assert fetcher.get(month_path("202011"), kind="data").attempts == 2  # timed out once
        replica.faults["/Regions/252/Tournaments/2"] = ["cloudflare"] * 3
        with pytest.raises(FetchFailed) as failed:
            fetcher.get("/Regions/252/Tournaments/2")
        assert failed.value.kind == "blocked:cloudflare" and failed.value.attempts == 3
    finally:
        replica.faults.clear()
        fetcher.close()


# ------------------------------------------------------------------ the Ray job


@pytest.mark.ray
def test_a_season_from_the_replica_reconciles_with_football_data(
    replica: Replica,
    ray_address: str,
    tmp_path_factory: pytest.TempPathFactory,
    football_data_dir: Path,
) -> None:
    from ray_jobs.scrape import scrape
    from soccerpredict.data.readers import read_football_data_csv
    from soccerpredict.whoscored.reconcile import reconcile

    tmp = tmp_path_factory.mktemp("scrape")
    cfg = scrape_config(tmp, replica.url)
    report = scrape(cfg, "ENG-Premier-League", "2020-2021", ["1485184"], livescores=True)
    assert report.failures == []
    assert report.pages_fetched == 1 + 1 + len(MONTHS) + 1 + 1  # tournament, season, months,
    stored = pd.read_parquet(cfg.runtime.paths.whoscored_matches)  # match centre, livescores
    assert len(stored) == 380 and set(stored["status"]) == {"finished"}
    assert stored["home_goals"].notna().all() and stored["source_id"].is_unique
    burnley = stored[stored["source_id"] == "1485184"].iloc[0]
    assert (burnley["home_team"], burnley["away_team"]) == ("Burnley", "Man United")
    assert (burnley["ht_home_goals"], burnley["ht_away_goals"]) == (0, 0)  # from the centre
    assert str(burnley["kickoff_utc"].tz) == "UTC"
    csv = football_data_dir / "E0" / "2020-2021.csv"
    if not csv.exists():
        pytest.skip("football-data E0 2020-21 is not in this data folder")
    result = reconcile(stored, read_football_data_csv(csv.read_bytes(), "E0", "2020-2021"))
    assert result.matched == 380 and result.disagreements.empty

    again = scrape(cfg, "ENG-Premier-League", "2020-2021", [], livescores=False)
    assert again.pages_fetched == 1  # only the tournament page: the past season is cached
    assert again.pages_from_cache == 1 + len(MONTHS)
    assert len(pd.read_parquet(cfg.runtime.paths.whoscored_matches)) == 380  # no duplicates


@pytest.mark.ray
def test_failed_pages_are_reported_the_rest_completes_and_stored_rows_stay(
    replica: Replica, ray_address: str, tmp_path: Path
) -> None:
    from ray_jobs.scrape import scrape

    clean = scrape_config(tmp_path / "a", replica.url)
    scrape(clean, "ENG-Premier-League", "2020-2021", [], livescores=False)
    matches = Path(clean.runtime.paths.whoscored_matches)
    before = pd.read_parquet(matches)
    faulty = scrape_config(tmp_path / "b", replica.url, matches=matches, retries=1)
    replica.faults[month_path("202012")] = ["incapsula"] * 2  # blocked for good
    replica.faults[month_path("202101")] = ["garbage"]  # its structure "changed"
    replica.faults[month_path("202102")] = ["503"]  # a hiccup, retried
    try:
        report = scrape(faulty, "ENG-Premier-League", "2020-2021", ["999"], livescores=False)
    finally:
        replica.faults.clear()
    kinds = {f["path"]: f["kind"] for f in report.failures}
    assert kinds == {
        month_path("202012"): "blocked:incapsula",
        month_path("202101"): "page-structure",
        "/Matches/999/Live": "http-404",
    }
    broken = next(f for f in report.failures if f["kind"] == "page-structure")
    assert Path(broken["saved_copy"]).read_text().startswith('{"tournaments": [{"matc')
    assert report.rows_written < 380  # the other months were read and written again
    after = pd.read_parquet(matches)
    pd.testing.assert_frame_equal(after, before)  # nothing lost, nothing half-written


def test_an_unknown_league_or_season_is_refused(tmp_path: Path) -> None:
    from soccerpredict.whoscored.leagues import league, season_label

    with pytest.raises(ValueError, match="ENG-Premier-League"):
        league("ENG-Premiership")
    with pytest.raises(ValueError, match="YYYY-YYYY"):
        season_label("2020/21")


def test_scraped_rows_join_only_after_football_datas_latest_match() -> None:
    from datetime import UTC, datetime

    from soccerpredict.data.clean import with_scraped
    from soccerpredict.data.contract import MATCH_COLUMNS

    def rows(spec: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
        frame = pd.DataFrame(
            [
                {c: None for c in MATCH_COLUMNS}
                | {
                    "match_id": mid,
                    "league": "E0",
                    "season": "2021-2022",
                    "source": "x",
                    "kickoff_utc": datetime.fromisoformat(day).replace(tzinfo=UTC),
                    "home_team": "A",
                    "away_team": "B",
                    "status": status,
                }
                for mid, day, _, status in spec
            ]
        )
        frame["kickoff_utc"] = pd.to_datetime(frame["kickoff_utc"], utc=True)
        return frame

    raw = rows([("m1", "2022-05-01", "", None)]).drop(columns="status")
    scraped = rows(
        [
            ("m0", "2022-04-30", "", "finished"),  # football-data's era: not added
            ("m1", "2022-05-01", "", "finished"),  # football-data has it
            ("m2", "2022-05-08", "", "finished"),  # new: added
            ("m3", "2022-05-15", "", "upcoming"),  # a fixture: added
            ("m4", "2022-05-15", "", "postponed"),  # kept out of the match table
            ("m5", "2022-05-16", "", "cancelled"),
        ]
    )
    merged = with_scraped(raw, scraped)
    assert list(merged["match_id"]) == ["m1", "m2", "m3"]
    assert list(merged.columns) == MATCH_COLUMNS


@pytest.mark.ray
def test_the_legacy_import_reconciles_every_league_stage(
    ray_address: str, tmp_path: Path, football_data_dir: Path
) -> None:
    from ray_jobs.import_legacy import run
    from soccerpredict.data.readers import read_football_data_csv
    from soccerpredict.io import write_parquet

    folder = whoscored_dir()
    stages = folder / "legacy_mobile_api/stages" if folder else None
    if stages is None or not (football_data_dir / "E0/2012-2013.csv").exists():
        pytest.skip("needs the saved WhoScored legacy stages and the real football-data files")
    cfg = scrape_config(tmp_path, "http://127.0.0.1:9")
    fd = pd.concat(
        [
            read_football_data_csv(p.read_bytes(), p.parent.name, p.stem)
            for lg in ("E0", "SP1", "I1", "D1", "F1")
            for p in sorted((football_data_dir / lg).glob("201[2-8]-*.csv"))
        ]
    )
    write_parquet(fd, cfg.runtime.paths.raw)
    summary = run(cfg, stages)
    assert summary["league_stages"] == 29 and summary["compared"] > 10_000
    assert summary["disagreements"] / summary["compared"] < 0.001  # 3 known: see the README
    legacy = pd.read_parquet(Path(cfg.runtime.paths.whoscored_matches).with_name("legacy.parquet"))
    assert {"postponed", "upcoming", "finished"} <= set(legacy["status"])
    assert legacy.loc[legacy["status"] != "finished", "result"].isna().all()
