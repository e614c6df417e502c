"""Where each football-data file lives (local folder or provider URL) and how to fetch its bytes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

_SEASON = re.compile(r"^(\d{4})-(\d{4})$")
_RETRY_STATUS_MIN = 500


def _season_years(season: str) -> tuple[int, int]:
    match = _SEASON.match(season)
    if not match or int(match[2]) != int(match[1]) + 1:
        raise ValueError(f"season must look like '2019-2020' (consecutive years), got {season!r}")
    return int(match[1]), int(match[2])


def season_code(season: str) -> str:
    """The provider's folder code: "2019-2020" -> "1920", "2005-2006" -> "0506"."""
    first, second = _season_years(season)
    return f"{first % 100:02d}{second % 100:02d}"


def season_range(first: str, last: str) -> list[str]:
    """Every season from `first` to `last` inclusive: ("2017-2018", "2018-2019") -> both."""
    start, _ = _season_years(first)
    end, _ = _season_years(last)
    if end < start:
        raise ValueError(f"season range is empty: {first!r} comes after {last!r}")
    return [f"{y}-{y + 1}" for y in range(start, end + 1)]


@dataclass(frozen=True)
class Source:
    """One file to ingest; `season` is None for multi-season "extra leagues" files."""

    league: str
    season: str | None
    location: str
    kind: Literal["main", "extra", "fixtures"]


def _local(path: Path, what: str) -> str:
    if not path.is_file():
        raise FileNotFoundError(
            f"{what}: expected {path} (layout <data_dir>/<league>/<YYYY-YYYY>.csv and "
            f"<data_dir>/extra_leagues/<CC>.csv); set data.dir/DATA_DIR or fetch the file"
        )
    return str(path)


def main_source(league: str, season: str, data_dir: Path | None, url_template: str) -> Source:
    if data_dir is None:
        location = url_template.format(code=season_code(season), league=league)
    else:
        location = _local(Path(data_dir) / league / f"{season}.csv", f"{league} {season}")
    return Source(league=league, season=season, location=location, kind="main")


def extra_source(country: str, data_dir: Path | None, extra_url_template: str) -> Source:
    if data_dir is None:
        location = extra_url_template.format(league=country)
    else:
        location = _local(Path(data_dir) / "extra_leagues" / f"{country}.csv", country)
    return Source(league=country, season=None, location=location, kind="extra")


def fixtures_source(data_dir: Path | None, fixtures_url: str) -> Source:
    """The provider's upcoming fixtures of every league (one file, `Div` names the league)."""
    location = (
        fixtures_url
        if data_dir is None
        else _local(Path(data_dir) / "fixtures.csv", "upcoming fixtures")
    )
    return Source(league="fixtures", season=None, location=location, kind="fixtures")


def list_sources(
    leagues: Iterable[str],
    seasons: Iterable[str],
    extra_leagues: Iterable[str],
    data_dir: Path | None,
    url_template: str,
    extra_url_template: str,
    fixtures_url: str | None = None,
) -> list[Source]:
    """Main files (league x season), extra-league files, then the fixtures file when a season is
    in progress (`fixtures_url` given); local paths are checked to exist."""
    seasons = list(seasons)
    main = [main_source(lg, s, data_dir, url_template) for lg in leagues for s in seasons]
    extra = [extra_source(cc, data_dir, extra_url_template) for cc in extra_leagues]
    fixtures = [] if fixtures_url is None else [fixtures_source(data_dir, fixtures_url)]
    return main + extra + fixtures


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _retryable(error: Exception) -> bool:
    """Connection problems and server errors may pass; 4xx (wrong URL) will not."""
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= _RETRY_STATUS_MIN
    return isinstance(error, httpx.TransportError)


def download(
    url: str,
    timeout: float = 30.0,
    retries: int = 3,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """GET with redirects; `retries` extra attempts with 1, 2, 4 ... s backoff."""
    with httpx.Client(timeout=timeout, follow_redirects=True, transport=transport) as client:
        for attempt in range(retries + 1):
            try:
                response = client.get(url)
                response.raise_for_status()
                return response.content
            except (httpx.HTTPStatusError, httpx.TransportError) as error:
                if attempt == retries or not _retryable(error):
                    raise
                sleep(2.0**attempt)
    raise AssertionError("unreachable")  # the loop returns or raises


def fetch_bytes(
    location: str,
    timeout: float = 30.0,
    *,
    retries: int = 3,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bytes:
    """Bytes of a local file or of a URL (see `download` for the retry policy)."""
    if is_url(location):
        return download(location, timeout, retries, transport, sleep)
    path = Path(location)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    return path.read_bytes()
