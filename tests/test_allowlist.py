"""The scraper's browser talks to one origin only: scheme, host and port compared exactly, so
look-alike hosts, user-info tricks, other ports and plain HTTP are refused (no browser needed:
`Browser._only_base_url` routes every request through `within`)."""

from __future__ import annotations

import pytest

from soccerpredict.whoscored.browser import within

BASE = "https://www.whoscored.com"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.whoscored.com/",
        "https://www.whoscored.com",
        "https://WWW.WhoScored.com/Regions/252/Tournaments/2",
        "https://www.whoscored.com:443/Matches/1/Live?x=1",
        "https://www.whoscored.com/tournaments/2/data/?d=2022",
    ],
)
def test_the_base_origin_is_allowed(url: str) -> None:
    assert within(url, BASE)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.whoscored.com.evil.example/",
        "https://www.whoscored.com.evil.example/Regions/252",
        "https://www.whoscored.com@evil.example/",
        "https://user@www.whoscored.com/",
        "http://www.whoscored.com/",
        "https://www.whoscored.com:8443/",
        "https://whoscored.com/",
        "https://evil.example/https://www.whoscored.com/",
        "wss://www.whoscored.com/",
        "https://www.whoscored.com:notaport/",
        "data:text/html,<p>x</p>",
    ],
)
def test_every_other_origin_is_refused(url: str) -> None:
    assert not within(url, BASE)


def test_a_base_with_a_path_allows_only_below_it_segment_by_segment() -> None:
    base = "http://127.0.0.1:8123/site"
    assert within("http://127.0.0.1:8123/site/Matches/1", base)
    assert within("http://127.0.0.1:8123/site", base)
    assert not within("http://127.0.0.1:8123/site-other/", base)
    assert not within("http://127.0.0.1:8124/site/", base)
    assert not within("http://localhost:8123/site/", base)
