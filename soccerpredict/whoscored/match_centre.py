"""The match-centre page: require.config.params["args"] = {matchId, matchCentreData, …}.

The object's keys are bare JS identifiers but every value is strict JSON, so it is read key by
key with json's raw decoder: no JS evaluation, and no regex over a megabyte of JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from soccerpredict.whoscored.model import (
    PageStructureError,
    ScrapedMatch,
    detect_block,
    parse_score,
    require,
    status_name,
    uk_local_to_utc,
)

# older pages quote the key with single quotes: params['args']
_ARGS_RE = re.compile(r"""require\.config\.params\[\s*(["'])args\1\s*\]\s*=\s*(?=\{)""")
_KEY_RE = re.compile(r"""\s*(?:([A-Za-z_$][\w$]*)|"([^"\\]+)"|'([^'\\]+)')\s*:\s*""")


def read_js_object(text: str, start: int, url: str | None = None) -> dict[str, Any]:
    """The `{key: <JSON value>, …}` literal at text[start] (a "{") -> dict."""
    decoder = json.JSONDecoder()
    out: dict[str, Any] = {}
    pos = start + 1
    while True:
        pos = _skip_space(text, pos)
        if text.startswith("}", pos):
            return out
        key_match = _KEY_RE.match(text, pos)
        if key_match is None:
            raise PageStructureError(
                url, f"args object: expected a key at char {pos}, found {text[pos : pos + 40]!r}"
            )
        key = next(group for group in key_match.groups() if group)
        try:
            out[key], pos = decoder.raw_decode(text, key_match.end())
        except json.JSONDecodeError as exc:
            raise PageStructureError(
                url,
                f"args object: the value of {key} is not valid JSON: {exc.msg} at char {exc.pos}",
            ) from exc
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos += 1
        elif not text.startswith("}", pos):
            raise PageStructureError(
                url, f"args object: expected ',' or '}}' after {key} at char {pos}"
            )


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def parse_match_centre(html: str, url: str | None = None) -> ScrapedMatch:
    """A full match-centre page (server HTML or rendered DOM) -> ScrapedMatch."""
    detect_block(html, url)
    found = _ARGS_RE.search(html)
    if found is None:
        raise PageStructureError(
            url, 'no require.config.params["args"] assignment: not a match-centre page'
        )
    args = read_js_object(html, found.end(), url)
    data = args.get("matchCentreData")
    if not isinstance(data, dict):
        reason = (
            f"matchCentreData is missing from the args object (keys: {sorted(args)})"
            if "matchCentreData" not in args
            else f"matchCentreData is {json.dumps(data)[:40]}, not an object "
            "(no match-centre data yet?)"
        )
        raise PageStructureError(url, reason)
    match_id = args.get("matchId")
    return parse_match_centre_data(data, None if match_id is None else str(match_id), url=url)


def parse_match_centre_data(
    data: dict[str, Any], match_id: str | None = None, *, url: str | None = None
) -> ScrapedMatch:
    """The matchCentreData object (as saved by soccerdata or socceraction) -> ScrapedMatch.

    `startTime` is WhoScored's local wall clock, Europe/London: 1005916 reads 19:45 on
    23 Aug 2015 where the mobile API's startTimeUtc says 18:45Z (BST), and 1485184 reads
    20:15 on 12 Jan 2021, equal to the fixtures JSON's startTimeUtc (GMT).
    """
    url = url or (data.get("url") if isinstance(data.get("url"), str) else None)
    mid = _match_id(data, match_id, url)
    where = f"matchCentreData of match {mid}"
    status = status_name(data.get("statusCode"), mid, url)
    home = require(data, "home", dict, url, where)
    away = require(data, "away", dict, url, where)
    kickoff = uk_local_to_utc(
        require(data, "startTime", str, url, where), url, f"{where}: startTime"
    )
    full = parse_score(data.get("ftScore") or data.get("score"), url, f"{where}: score")
    half = parse_score(data.get("htScore"), url, f"{where}: htScore")
    played = status == "finished"
    if played and full is None:
        raise PageStructureError(url, f"{where}: finished (statusCode 6) but no score")
    return ScrapedMatch(
        source_id=mid,
        stage_id=None,
        kickoff_utc=kickoff,
        home_team=require(home, "name", str, url, f"{where}: home"),
        away_team=require(away, "name", str, url, f"{where}: away"),
        status=status,
        home_goals=full[0] if played and full else None,
        away_goals=full[1] if played and full else None,
        ht_home_goals=half[0] if played and half else None,
        ht_away_goals=half[1] if played and half else None,
        home_lineup=_starters(home, url, f"{where}: home"),
        away_lineup=_starters(away, url, f"{where}: away"),
    )


def _match_id(data: dict[str, Any], match_id: str | None, url: str | None) -> str:
    # socceraction adds `game_id`; soccerdata's files carry no id, so callers pass it
    value = match_id or data.get("matchId") or data.get("game_id")
    if value is None:
        raise PageStructureError(url, "matchCentreData carries no match id: pass match_id")
    return str(value)


def _starters(team: dict[str, Any], url: str | None, where: str) -> tuple[str, ...]:
    players = team.get("players") or []
    if not isinstance(players, list):
        raise PageStructureError(url, f"{where}: players is not a list")
    return tuple(
        require(p, "name", str, url, f"{where} player")
        for p in players
        if isinstance(p, dict) and p.get("isFirstEleven")
    )
