"""The leagues the scraper knows: WhoScored's region and tournament ids, football-data's code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class League:
    code: str  # football-data division, the project's league code
    region_id: int
    tournament_id: int

    @property
    def tournament_path(self) -> str:
        """The tournament page: WhoScored shows (redirects to) the current season there."""
        return f"/Regions/{self.region_id}/Tournaments/{self.tournament_id}"


LEAGUES: dict[str, League] = {  # ids from the site's own navigation (`allRegions`)
    "ENG-Premier-League": League("E0", 252, 2),
    "ESP-La-Liga": League("SP1", 206, 4),
    "ITA-Serie-A": League("I1", 108, 5),
    "GER-Bundesliga": League("D1", 81, 3),
    "FRA-Ligue-1": League("F1", 74, 22),
}


def league(name: str) -> League:
    if name not in LEAGUES:
        raise ValueError(f"unknown league {name!r}; known: {', '.join(LEAGUES)}")
    return LEAGUES[name]


def season_label(season: str) -> str:
    """`2020-2021` (the project's form) → `2020/2021` (WhoScored's)."""
    first, _, second = season.partition("-")
    if not (first.isdigit() and second.isdigit() and int(second) == int(first) + 1):
        raise ValueError(f"season {season!r} is not of the form YYYY-YYYY (or 'current')")
    return f"{first}/{second}"
