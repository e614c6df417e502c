"""Synthetic football-data files: the fallback when the real shared data is absent.

Same layout ({root}/{league}/{season}.csv) and column style as the shared pandas round-trip
files. Goals come from Poisson rates built on team strengths, and odds from the true outcome
probabilities, so there is real signal to learn: stronger teams win more and odds know it.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

_MAX_GOALS = 11
_BASE_RATE = 0.25  # log goals per team-match, before strengths
_HOME_ADV = 0.25
# (bookmaker prefix, margin, log-noise sd); closing Pinnacle is sharpest
_BOOKS = (("B365", 0.05, 0.04), ("PS", 0.03, 0.03), ("AVG", 0.055, 0.03), ("PSC", 0.025, 0.015))
_KICKOFFS = ("12:30", "15:00", "15:00", "17:30", "20:00")

Team = tuple[float, float]  # (attack, defence): log-rate added to own goals / taken from rival's


def _new_team(rng: np.random.Generator, mean: float = 0.0) -> Team:
    return float(rng.normal(mean, 0.3)), float(rng.normal(mean, 0.3))


def round_robin(teams: list[str]) -> list[list[tuple[str, str]]]:
    """Circle-method double round robin: every pair meets once at each ground."""
    ts = list(teams) + ([None] if len(teams) % 2 else [])
    n = len(ts)
    first_half = []
    for r in range(n - 1):
        pairs = [(ts[i], ts[n - 1 - i]) for i in range(n // 2)]
        # alternate grounds so nobody plays all home games in a row
        pairs = [(a, b) if (r + i) % 2 == 0 else (b, a) for i, (a, b) in enumerate(pairs)]
        first_half.append([p for p in pairs if None not in p])
        ts = [ts[0], ts[-1]] + ts[1:-1]
    return first_half + [[(b, a) for a, b in rnd] for rnd in first_half]


def round_dates(season: str, n_rounds: int) -> list[dt.date]:
    """Saturdays spread from early August to May."""
    start = dt.date(int(season[:4]), 8, 5)
    start += dt.timedelta(days=(5 - start.weekday()) % 7)
    step = max(1.0, 39 / max(1, n_rounds - 1))  # last round ~39 weeks later: early May
    return [start + dt.timedelta(weeks=round(r * step)) for r in range(n_rounds)]


def outcome_probs(lam_home: float, lam_away: float) -> np.ndarray:
    """P(home win), P(draw), P(away win) for independent Poisson goals."""
    k = np.arange(_MAX_GOALS)
    log_fact = np.cumsum(np.log(np.maximum(k, 1)))
    ph = np.exp(k * np.log(lam_home) - lam_home - log_fact)
    pa = np.exp(k * np.log(lam_away) - lam_away - log_fact)
    grid = np.outer(ph, pa)
    probs = np.array([np.tril(grid, -1).sum(), np.trace(grid), np.triu(grid, 1).sum()])
    return probs / probs.sum()


def book_odds(
    rng: np.random.Generator, probs: np.ndarray, margin: float, noise: float
) -> list[float]:
    noisy = probs * np.exp(rng.normal(0.0, noise, 3))
    noisy = noisy / noisy.sum()
    return [round(max(1.01, 1.0 / (p * (1.0 + margin))), 2) for p in noisy]


def _result(home: int, away: int) -> str:
    return "H" if home > away else "A" if away > home else "D"


def simulate_match(rng: np.random.Generator, home: Team, away: Team) -> dict[str, object]:
    lam_h = float(np.exp(_BASE_RATE + _HOME_ADV + home[0] - away[1]))
    lam_a = float(np.exp(_BASE_RATE + away[0] - home[1]))
    probs = outcome_probs(lam_h, lam_a)
    hg, ag = int(rng.poisson(lam_h)), int(rng.poisson(lam_a))
    hthg, htag = int(rng.binomial(hg, 0.45)), int(rng.binomial(ag, 0.45))
    hs, as_ = hg + int(rng.poisson(4 * lam_h + 6)), ag + int(rng.poisson(4 * lam_a + 6))
    hst = min(hs, hg + int(rng.poisson(1.5 * lam_h + 1)))
    ast = min(as_, ag + int(rng.poisson(1.5 * lam_a + 1)))
    row: dict[str, object] = {
        "FTHG": hg,
        "FTAG": ag,
        "FTR": _result(hg, ag),
        "HTHG": hthg,
        "HTAG": htag,
        "HTR": _result(hthg, htag),
        "HS": hs,
        "AS": as_,
        "HST": hst,
        "AST": ast,
    }
    for book, margin, noise in _BOOKS:
        row[book] = book_odds(rng, probs, margin, noise)
    return row | market_extras(probs, lam_h, lam_a)


def market_extras(probs: np.ndarray, lam_h: float, lam_a: float) -> dict[str, object]:
    """Max and BW 1X2 prices, over/under 2.5 and an Asian-handicap line, without noise.

    Derived from the true rates with no random draws, so adding them left every other
    simulated value of the generator's stream as it was.
    """
    total = lam_h + lam_a
    p_under = float(np.exp(-total) * (1 + total + total**2 / 2))
    fair = [round(max(1.01, 1.0 / (p * m)), 2) for p, m in ((1 - p_under, 1.05), (p_under, 1.05))]
    return {
        "MAX": [round(max(1.01, 1.0 / (p * 0.99)), 2) for p in probs],
        "BW": [round(max(1.01, 1.0 / (p * 1.06)), 2) for p in probs],
        "Avg_2_5": fair[0],
        "Avg_2_5_1": fair[1],
        "AHh": round(-(lam_h - lam_a) * 4) / 4,
        "AvgAHH": 1.92,
        "AvgAHA": 1.92,
    }


def header(season: str) -> list[str]:
    """Time only from 2019-20; Betbrain average up to 2018-19, Avg afterwards."""
    modern = int(season[:4]) >= 2019
    avg, mx, ah = ("Avg", "Max", "") if modern else ("BbAv", "BbMx", "Bb")
    return (
        ["Div", "Date"]
        + (["Time"] if modern else [])
        + [
            "HomeTeam",
            "AwayTeam",
            "FTHG",
            "FTAG",
            "FTR",
            "HTHG",
            "HTAG",
            "HTR",
            "HS",
            "AS",
            "HST",
            "AST",
            "B365H",
            "B365D",
            "B365A",
            "PSH",
            "PSD",
            "PSA",
            f"{avg}H",
            f"{avg}D",
            f"{avg}A",
            "PSCH",
            "PSCD",
            "PSCA",
            f"{mx}H",
            f"{mx}D",
            f"{mx}A",
            "BWH",
            "BWD",
            "BWA",
            f"{avg}_2_5",
            f"{avg}_2_5_1",
            f"{ah}AHh",
            f"{avg}AHH",
            f"{avg}AHA",
        ]
    )


def format_row(
    league: str,
    season: str,
    day: dt.date,
    kickoff: str,
    home: str,
    away: str,
    sim: dict[str, object],
) -> dict[str, object]:
    # dd/mm/yy up to 2017-18, dd/mm/yyyy from 2018-19, as in the shared files
    date_fmt = "%d/%m/%Y" if int(season[:4]) >= 2018 else "%d/%m/%y"
    avg = "Avg" if int(season[:4]) >= 2019 else "BbAv"
    row = {
        "Div": league,
        "Date": day.strftime(date_fmt),
        "Time": kickoff,
        "HomeTeam": home,
        "AwayTeam": away,
    }
    extras = {
        "Avg_2_5": f"{avg}_2_5",
        "Avg_2_5_1": f"{avg}_2_5_1",
        "AvgAHH": f"{avg}AHH",
        "AvgAHA": f"{avg}AHA",
        "AHh": "AHh" if avg == "Avg" else "BbAHh",
    }
    row |= {extras.get(k, k): v for k, v in sim.items() if not isinstance(v, list)}
    mx = "Max" if avg == "Avg" else "BbMx"
    for book, prefix in (
        ("B365", "B365"),
        ("PS", "PS"),
        ("AVG", avg),
        ("PSC", "PSC"),
        ("MAX", mx),
        ("BW", "BW"),
    ):
        row |= dict(zip((f"{prefix}H", f"{prefix}D", f"{prefix}A"), sim[book], strict=True))
    return row


def simulate_season(
    rng: np.random.Generator, league: str, season: str, teams: dict[str, Team]
) -> list[dict[str, object]]:
    rounds = round_robin(sorted(teams))
    rows = []
    for saturday, fixtures in zip(round_dates(season, len(rounds)), rounds, strict=True):
        for i, (home, away) in enumerate(fixtures):
            day = saturday + dt.timedelta(days=i % 2)  # split each round over the weekend
            sim = simulate_match(rng, teams[home], teams[away])
            rows.append(
                format_row(league, season, day, _KICKOFFS[i % len(_KICKOFFS)], home, away, sim)
            )
    return rows


def relegated(rows: list[dict[str, object]], n: int = 2) -> list[str]:
    """The `n` teams with fewest points (goal difference breaks ties)."""
    table: dict[str, list[int]] = {}
    for r in rows:
        for team, gf, ga in (
            (r["HomeTeam"], r["FTHG"], r["FTAG"]),
            (r["AwayTeam"], r["FTAG"], r["FTHG"]),
        ):
            pts = 3 if gf > ga else 1 if gf == ga else 0
            entry = table.setdefault(team, [0, 0])
            entry[0] += pts
            entry[1] += gf - ga
    return sorted(table, key=lambda t: (table[t][0], table[t][1], t))[:n]


def write_csv(path: Path, columns: list[str], rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_synthetic_football_data(
    root: Path,
    leagues: tuple[str, ...] = ("E0", "SP1"),
    seasons: tuple[str, ...] = ("2016-2017", "2017-2018", "2018-2019", "2019-2020"),
    teams_per_league: int = 10,
    seed: int = 0,
) -> Path:
    """Write {root}/{league}/{season}.csv for each league and season; deterministic per seed."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for league in leagues:
        teams = {f"{league} Club {k:02d}": _new_team(rng) for k in range(teams_per_league)}
        next_id = teams_per_league
        for season in seasons:
            rows = simulate_season(rng, league, season, teams)
            write_csv(root / league / f"{season}.csv", header(season), rows)
            for team in relegated(rows):
                del teams[team]
                # promoted sides are a little weaker on average
                teams[f"{league} Club {next_id:02d}"] = _new_team(rng, mean=-0.1)
                next_id += 1
    return root
