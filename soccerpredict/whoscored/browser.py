"""One headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright) that talks only to
the configured base URL: every other request (the site's ads, scripts, fonts) is aborted, so a
page never waits on the outside world.

`Fetcher` adds what a polite, robust scraper needs around it: a delay with jitter before each
request, retries with exponential backoff on timeouts, 403/429/5xx and block pages, and a new
browser when the old one breaks. No Ray here; `ray_jobs.scrape` puts one `Fetcher` in each actor.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from soccerpredict.whoscored.pages import BlockedPage, detect_block

log = logging.getLogger(__name__)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RETRY_STATUS = {500, 502, 503, 504}  # 401/403/429 are block pages: detect_block


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in; host lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return scheme, (parts.hostname or ""), port


def within(url: str, base_url: str) -> bool:
    """Whether `url` is on `base_url`'s exact origin and under its path (segment by segment).
    A prefix test would let `https://www.whoscored.com.evil.example/` or `...com@evil.example`
    through."""
    try:
        if origin(url) != origin(base_url) or urlsplit(url).username is not None:
            return False
    except ValueError:  # a port that is not a number
        return False
    base_path = urlsplit(base_url).path.rstrip("/")
    path = urlsplit(url).path
    return path == base_path or path.startswith(base_path + "/") or not base_path


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    text: str
    attempts: int = 1


class FetchFailed(Exception):
    """A page that could not be fetched after every retry; `kind` says why."""

    def __init__(self, url: str, kind: str, attempts: int, detail: str = "") -> None:
        super().__init__(f"{url}: {kind} after {attempts} attempt(s) {detail}".strip())
        self.url, self.kind, self.attempts, self.detail = url, kind, attempts, detail


class _Retry(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind, self.detail = kind, detail


class Browser:
    """A Chromium whose context aborts every request outside `base_url`."""

    def __init__(self, base_url: str, executable: str = CHROMIUM, timeout_s: float = 30.0) -> None:
        self.base_url, self.executable, self.timeout_ms = (
            base_url.rstrip("/"),
            executable,
            timeout_s * 1000,
        )
        self._playwright: Any = None
        self._browser: Any = None
        self._page: Any = None
        self.blocked_requests = 0

    def start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=self.executable, args=CHROMIUM_ARGS
        )
        context = self._browser.new_context()
        context.route("**/*", self._only_base_url)
        context.set_default_timeout(self.timeout_ms)
        self._page = context.new_page()

    def _only_base_url(self, route: Any) -> None:
        if within(route.request.url, self.base_url):
            route.continue_()
        else:
            self.blocked_requests += 1
            route.abort()

    def close(self) -> None:
        for step in (
            lambda: self._browser and self._browser.close(),
            lambda: self._playwright and self._playwright.stop(),
        ):
            try:
                step()
            except Exception as err:  # noqa: BLE001 - a dead browser cannot be closed politely
                log.debug("closing the browser: %s", err)
        self._browser = self._playwright = self._page = None

    def document(self, path: str) -> tuple[int, str]:
        """Navigate to a page; its status and the DOM after its own scripts (if any) ran."""
        response = self._page.goto(self.base_url + path, wait_until="domcontentloaded")
        return (response.status if response else 0), self._page.content()

    def data(self, path: str) -> tuple[int, str]:
        """GET a data URL from inside the page, as the site's own JavaScript does."""
        if not within(self._page.url, self.base_url):
            self._page.goto(self.base_url + "/", wait_until="domcontentloaded")
        # evaluate() has no timeout of its own: the fetch gets one, and an abort comes back as -1
        status, text = self._page.evaluate(
            """async ([url, ms]) => {
                 const stop = new AbortController();
                 const timer = setTimeout(() => stop.abort(), ms);
                 try {
                   const r = await fetch(url, {signal: stop.signal, headers: {
                     "X-Requested-With": "XMLHttpRequest", "Accept": "application/json"}});
                   return [r.status, await r.text()];
                 } catch (e) {
                   if (e.name === "AbortError") return [-1, ""];
                   throw e;
                 } finally { clearTimeout(timer); }
               }""",
            [self.base_url + path, self.timeout_ms],
        )
        if status == -1:
            raise TimeoutError(f"{path}: no answer within {self.timeout_ms / 1000:.0f} s")
        return int(status), str(text)


@dataclass
class Fetcher:
    base_url: str
    delay_s: float = 2.0
    jitter_s: float = 1.0
    retries: int = 4
    backoff_s: float = 2.0
    timeout_s: float = 30.0
    executable: str = CHROMIUM
    seed: int | None = None
    browsers_started: int = 0
    _browser: Browser | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def get(self, path: str, kind: str = "document") -> Page:
        """The page at `path` (kind "document" navigates, "data" fetches inside the page)."""
        last: _Retry | None = None
        for attempt in range(1, self.retries + 2):
            time.sleep(self.delay_s + self._random.uniform(0, self.jitter_s))  # politeness
            try:
                status, text = self._once(path, kind)
                return Page(path, status, text, attempt)
            except _Retry as retry:
                last = retry
                log.info("%s: %s (attempt %d)", path, retry.kind, attempt)
                if attempt <= self.retries:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
        assert last is not None
        raise FetchFailed(path, last.kind, self.retries + 1, last.detail)

    def _once(self, path: str, kind: str) -> tuple[int, str]:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        browser = self._ensure_browser()
        try:
            status, text = browser.document(path) if kind == "document" else browser.data(path)
        except (PlaywrightTimeout, TimeoutError) as err:
            raise _Retry("timeout", str(err).splitlines()[0]) from None
        except PlaywrightError as err:  # a crashed or closed browser: start a new one next time
            self.close()
            raise _Retry("browser-error", str(err).splitlines()[0]) from None
        try:
            detect_block(text, path, status)
        except BlockedPage as blocked:
            raise _Retry(f"blocked:{blocked.kind}") from None
        if status in RETRY_STATUS:
            raise _Retry(f"http-{status}")
        if status >= 400:
            raise FetchFailed(path, f"http-{status}", 1)
        return status, text

    def _ensure_browser(self) -> Browser:
        if self._browser is None:
            self._browser = Browser(self.base_url, self.executable, self.timeout_s)
            self._browser.start()
            self.browsers_started += 1
        return self._browser

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
