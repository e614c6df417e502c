"""The page for people: Debian's Chromium driven by Playwright against the Serve app of
tests/served_app.py (real Ray Serve, Redis and a registry trained by `dvc repro`).

Screenshots go to `$TEST_ARTIFACTS_DIR/web/` (default `test-artifacts/web/`); with
`UPDATE_DOCS_SCREENSHOTS=1` the wide one is also copied to `docs/web.png` for the README.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from serve_app.keys import KeyStore
from serve_app.local import wait_until
from serve_app.web import promoted_at, upcoming_prediction
from tests.projects import ROOT
from tests.served_app import App, one_price_set, upcoming_requests

OUTCOMES = ("home", "draw", "away")
PHONE = {"width": 390, "height": 844}


def live(test: Callable[..., None]) -> Callable[..., None]:
    """A real Serve app and a real browser."""
    for mark in (pytest.mark.slow, pytest.mark.ray, pytest.mark.browser):
        test = mark(test)
    return test


# ------------------------------------------------------------------ helpers, without Ray


def test_promoted_at_is_the_last_move_of_the_alias_to_the_version() -> None:
    history = [
        {
            "time": "t1",
            "action": "promote",
            "version": "1",
            "promoted": True,
            "reasons": ["passed all gates"],
        },
        {
            "time": "t2",
            "action": "promote",
            "version": "2",
            "promoted": False,
            "reasons": ["rps too high"],
        },
        {
            "time": "t3",
            "action": "promote",
            "version": "2",
            "promoted": True,
            "reasons": ["passed all gates"],
        },
        {"time": "t4", "action": "rollback", "version": "1", "from_version": "2"},
    ]
    assert promoted_at(history, "1") == ("t4", ["rolled back from v2"])
    assert promoted_at(history, "2") == ("t3", ["passed all gates"])
    assert promoted_at(history, "3") == (None, [])


def test_a_fixture_without_odds_has_no_bookmaker_probabilities() -> None:
    row: dict[str, Any] = {
        "match_id": "m",
        "league": "E0",
        "season": "2019-2020",
        "kickoff_utc": "2020-03-01 15:00:00+00:00",
        "home_team": "A",
        "away_team": "B",
        "model_version": "1",
    }
    for outcome, p in zip(OUTCOMES, (0.5, 0.3, 0.2), strict=True):
        row |= {f"prob_{outcome}": p, f"fair_odds_{outcome}": 1 / p}
    for missing in (None, float("nan")):  # Arrow-backed columns give None, NumPy ones NaN
        row |= {f"market_prob_{o}": missing for o in OUTCOMES}
        assert upcoming_prediction(row).market_probabilities is None
    row |= {"market_prob_home": 0.45, "market_prob_draw": 0.3, "market_prob_away": 0.25}
    assert upcoming_prediction(row).market_probabilities is not None


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from soccerpredict.whoscored.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage) that records console errors and page errors."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.errors = []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda err: tab.errors.append(f"page error: {err}"))
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    base = os.environ.get("TEST_ARTIFACTS_DIR")
    target = (Path(base) if base else ROOT / "test-artifacts") / "web"
    target.mkdir(parents=True, exist_ok=True)
    return target


def open_page(page: Any, app: App, key: str) -> None:
    page.goto(app.url)
    page.fill("#api-key", key)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#status.ok")


def wait_for(page: Any, js: str, shows: str = "body") -> None:
    """Until `js` holds; on a timeout, say what the page showed in `shows`."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # a function, not an expression: the page's CSP forbids the eval Playwright would use
        page.wait_for_function(f"() => {js}", polling=100)
    except PlaywrightTimeout:
        pytest.fail(f"never true: {js}\n{shows}: {page.inner_text(shows)}\nerrors: {page.errors}")


def fill_form(page: Any, body: dict[str, Any]) -> None:
    page.select_option("#league", body["league"])
    page.fill("#home_team", body["home_team"])
    page.fill("#away_team", body["away_team"])
    page.fill("#kickoff", body["kickoff"])
    for outcome in OUTCOMES:
        odds = body.get("odds")
        page.fill(f"#odds_{outcome}", str(odds[outcome]) if odds else "")
    more = {
        "ps": (body.get("books") or {}).get("ps"),
        "ou": body.get("over_under_25"),
        "ah": body.get("asian_handicap"),
    }
    if any(more.values()):
        page.click("#more-markets summary")
    for group, prices in more.items():
        for name, value in (prices or {}).items():
            page.fill(f"#{group}_{name}", str(value))


def shown_probabilities(element: Any) -> list[float]:
    return [float(element.get_attribute(f"data-{outcome}")) for outcome in OUTCOMES]


@live
def test_the_page_is_open_and_its_data_needs_the_key(app: App, key: str) -> None:
    with app.client() as anonymous, app.client(key) as http:
        page = anonymous.get("/")
        assert page.status_code == 200 and 'id="api-key"' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for name in ("app.js", "app.css", "favicon.svg"):
            assert anonymous.get(f"/static/{name}").status_code == 200
        assert anonymous.get("/static/web.py").status_code == 404  # only the page's files
        for path in ("/teams", "/fixtures", "/model/card", "/model/assets/calibration"):
            assert anonymous.get(path).status_code == 401, path
            assert http.get(path).status_code == 200, path
        assert http.get("/model/assets/calibration").content[:8] == b"\x89PNG\r\n\x1a\n"
        assert http.get("/model/assets/secrets").status_code == 404


@live
def test_the_page_loads_without_errors_and_fills_fixtures_and_the_model_card(
    app: App, key: str, page: Any
) -> None:
    predictions, _ = upcoming_requests(app)
    open_page(page, app, key)
    page.wait_for_selector("#fixtures tbody tr")
    shown = page.eval_on_selector_all(
        "#fixtures tbody tr", "rows => rows.map(r => r.dataset.matchId)"
    )
    assert sorted(shown) == sorted(predictions["match_id"])
    with_odds = predictions["market_prob_home"].notna().sum()
    assert page.locator("#fixtures .diffs").count() == with_odds > 0

    with app.client(key) as http:
        model = http.get("/model").json()
    page.wait_for_selector("#card dd")
    assert f"v{model['version']}" in page.inner_text("#card [data-field=model]")
    assert "not in the promotion history" not in page.inner_text("#card [data-field=promoted]")
    trained = page.inner_text("#card [data-field='trained on']")
    assert model["trained_on"]["train_seasons"][-1] in trained
    assert f"validated on {model['trained_on']['validation_seasons'][-1]}" in trained
    rows = page.eval_on_selector_all(
        "#metrics tbody tr", "rows => rows.map(r => r.dataset.forecaster)"
    )
    assert rows[0] == "model" and "pinnacle_closing" in rows
    drift = page.inner_text("#drift")
    assert drift.startswith(("No drift", "Drift detected", "Drift: unknown"))
    wait_for(
        page,
        "['calibration', 'feature_importance'].every(n => "
        "document.querySelector(`#plot-${n}`).naturalWidth > 100)",
    )
    assert page.errors == []


@live
def test_the_form_returns_the_apis_answer(app: App, key: str, page: Any) -> None:
    _, bodies = upcoming_requests(app)
    body = next(b for b in bodies if "odds" in b)
    open_page(page, app, key)
    fill_form(page, one_price_set(body))
    page.click("#predict-now")
    result = page.wait_for_selector("#prediction:not([hidden])")
    probabilities = shown_probabilities(result)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-9)
    with app.client(key) as http:
        answer = http.post("/predict", json=one_price_set(body)).json()  # what the form sends
    assert probabilities == [answer["probabilities"][o] for o in OUTCOMES]
    assert f"{100 * answer['probabilities']['home']:.1f}%" in result.inner_text()
    assert page.errors == []


@live
def test_the_forms_other_markets_are_answered_by_with_market(app: App, key: str, page: Any) -> None:
    """Pinnacle's prices beside the average's, the totals and the handicap: the body the page
    sends is the API's `books` (average and Pinnacle), `over_under_25` and `asian_handicap`."""
    _, bodies = upcoming_requests(app)
    body = next(
        b
        for b in bodies
        if {"avg", "ps"} <= set(b.get("books", {}))
        and "over_under_25" in b
        and "asian_handicap" in b
    )
    sent = one_price_set(body) | {
        "over_under_25": body["over_under_25"],
        "asian_handicap": body["asian_handicap"],
    }
    assert sent["odds"] == body["books"]["avg"]
    form = sent | {"books": {"ps": body["books"]["ps"]}}  # what fill_form types in
    open_page(page, app, key)
    fill_form(page, form)
    page.click("#predict-now")
    result = page.wait_for_selector("#prediction:not([hidden])")
    with app.client(key) as http:
        expected = {k: v for k, v in sent.items() if k != "odds"}
        expected["books"] = {"avg": sent["odds"], "ps": body["books"]["ps"]}
        answer = http.post("/predict", json=expected).json()
    assert answer["forecaster"] == "with_market"
    assert shown_probabilities(result) == [answer["probabilities"][o] for o in OUTCOMES]
    assert "(with_market)" in result.inner_text()
    assert page.errors == []


@live
def test_an_unknown_team_names_the_closest_known_ones(app: App, key: str, page: Any) -> None:
    _, bodies = upcoming_requests(app)
    team = bodies[0]["home_team"]
    typo = team[:-1] + ("x" if team[-1] != "x" else "y")
    open_page(page, app, key)
    fill_form(page, one_price_set(bodies[0]) | {"home_team": typo})
    page.click("#predict-now")
    error = page.wait_for_selector("#form-error:not([hidden])")
    assert f"unknown team '{typo}'" in error.inner_text()
    assert page.get_attribute("#home_team", "aria-invalid") == "true"
    page.click(f"#form-error .suggestion:text-is('{team}')")
    assert page.input_value("#home_team") == team and not page.is_visible("#form-error")
    page.click("#predict-now")
    page.wait_for_selector("#prediction:not([hidden])")


@live
def test_a_wrong_key_a_revoked_key_and_an_api_that_is_down_are_said_plainly(
    app: App, page: Any
) -> None:
    page.goto(app.url)
    page.fill("#api-key", "sp_00000000_wrong")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#status.bad")
    assert "Wrong or revoked key" in page.inner_text("#status")

    store = KeyStore(app.work / "var/api_keys.json")
    key_id, key = store.create("revoked-in-the-page")
    open_page(page, app, key)
    assert page.evaluate("() => localStorage.length") == 0  # the tab only
    store.revoke(key_id)
    with app.client(key) as http:
        wait_until(lambda: http.get("/teams").status_code == 401, 5)
    page.select_option("#fixtures-league", index=1)  # reloads the fixtures with the key
    page.wait_for_selector("#fixtures-message.bad")
    assert "Wrong or revoked key" in page.inner_text("#status")

    page.route("**/teams", lambda route: route.abort())  # the API unreachable
    page.fill("#api-key", app.key())
    page.click("#key-form button[type=submit]")
    wait_for(page, "document.querySelector('#status').textContent.includes('not answering')")


@live
def test_async_submissions_reach_done_and_the_page_is_photographed(
    app: App, key: str, page: Any, artifacts: Path
) -> None:
    """The form carries one 1X2 price set, not every book the batch stage reads, so its answers
    are the API's for that request (with_market_1x2), not the batch stage's (with_market);
    tests/test_serve.py shows the API's equal the batch predictor's on each tier's input."""
    _, bodies = upcoming_requests(app)
    with app.client(key) as http:
        api = {
            (b["home_team"], b["away_team"]): http.post("/predict", json=one_price_set(b)).json()
            for b in bodies[:2]
        }
    assert {a["forecaster"] for a in api.values()} <= {"with_market_1x2", "ratings_only"}
    open_page(page, app, key)
    for body in bodies[:2]:
        fill_form(page, one_price_set(body))
        page.click("#queue")
    page.wait_for_selector("#jobs > li:nth-child(2)")
    wait_for(
        page,
        "[...document.querySelectorAll('#jobs > li')].every(li => li.dataset.status === 'done')",
        "#jobs",
    )
    for item in page.query_selector_all("#jobs > li"):
        answer = api[(item.get_attribute("data-home"), item.get_attribute("data-away"))]
        shown = shown_probabilities(item.query_selector(".job-body"))
        assert shown == pytest.approx([answer["probabilities"][o] for o in OUTCOMES], rel=1e-9)

    # a sync answer on the picture too
    fill_form(page, one_price_set(next(b for b in bodies if "odds" in b)))
    page.click("#predict-now")
    page.wait_for_selector("#prediction:not([hidden])")
    wait_for(page, "document.querySelector('#plot-feature_importance').naturalWidth > 100")
    assert page.errors == []
    page.screenshot(path=str(artifacts / "web.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(artifacts / "web-phone.png"), full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(artifacts / "web.png", ROOT / "docs/web.png")
        shutil.copy(artifacts / "web-phone.png", ROOT / "docs/web-phone.png")
