"""The calendar rules: which season a day belongs to, and what `current` and `today` mean.

One rule for every source: a season runs from 1 July to 30 June, so 31 July 2026 is in
2025-2026 and 1 August 2026 in 2026-2027. football-data's files, the WhoScored job and
`data.last_season: current` all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

SEASON_START_MONTH = 7  # July: the month a new season's label starts
CURRENT = "current"  # data.last_season: the season in progress on the day the pipeline runs
TODAY = "today"  # as_of: the day before the pipeline runs (its results may be in)


def season_start_year(day: date) -> int:
    return day.year if day.month >= SEASON_START_MONTH else day.year - 1


def season_of(day: date) -> str:
    """1 Aug 2026 -> "2026-2027"; 30 Jun 2026 -> "2025-2026"."""
    start = season_start_year(day)
    return f"{start}-{start + 1}"


def season_span(label: str) -> tuple[date, date]:
    """The first and last day a season label covers, so seasons of every league order by date.

    "2019-2020" (or "2019/2020") -> 1 Jul 2019 .. 30 Jun 2020 (the July rule above);
    "2019", a calendar-year season (Scandinavia, Ireland, China ...) -> 1 Jan .. 31 Dec 2019.
    Names alone sort "2019" after "2018-2019" and before "2019-2020", which is wrong for
    both: the split and the extra leagues' filters compare these dates instead.
    """
    text = str(label).strip().replace("/", "-")
    parts = text.split("-")
    if len(parts) == 1 and parts[0].isdigit() and len(parts[0]) == 4:
        year = int(parts[0])
        return date(year, 1, 1), date(year, 12, 31)
    if (
        len(parts) == 2
        and all(p.isdigit() and len(p) == 4 for p in parts)
        and int(parts[1]) == int(parts[0]) + 1
    ):
        start = int(parts[0])
        return date(start, SEASON_START_MONTH, 1), date(
            start + 1, SEASON_START_MONTH, 1
        ) - timedelta(days=1)
    raise ValueError(f"season must look like '2019-2020' or '2019', got {label!r}")


@dataclass(frozen=True)
class Calendar:
    """The seasons and cut-off the pipeline runs with, and whether they follow the date."""

    last_season: str
    as_of: date
    last_season_in_progress: bool  # its played matches feed ratings; its fixtures are upcoming

    def to_dict(self) -> dict[str, object]:
        return {
            "last_season": self.last_season,
            "as_of": self.as_of.isoformat(),
            "last_season_in_progress": self.last_season_in_progress,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Calendar:
        return cls(
            last_season=str(data["last_season"]),
            as_of=date.fromisoformat(str(data["as_of"])),
            last_season_in_progress=bool(data["last_season_in_progress"]),
        )


def follows_date(last_season: str, as_of: str) -> bool:
    """Whether the settings name `current` or `today`, and so change as the date moves."""
    return last_season == CURRENT or str(as_of) == TODAY


def resolve_calendar(last_season: str, as_of: str | date, today: date) -> Calendar:
    """Settings -> concrete values. `as_of: today` means yesterday: today's games are not over."""
    season = season_of(today) if last_season == CURRENT else last_season
    cut = today - timedelta(days=1) if str(as_of) == TODAY else _as_date(as_of)
    return Calendar(
        last_season=season,
        as_of=cut,
        last_season_in_progress=season_of(today) == season and last_season == CURRENT,
    )


def _as_date(value: object) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as err:
        raise ValueError(f"as_of must be a date (YYYY-MM-DD) or {TODAY!r}, got {value!r}") from err
