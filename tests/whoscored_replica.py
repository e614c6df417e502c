"""A local WhoScored replica: the real saved files of the shared data folder, served on
127.0.0.1 at WhoScored's URL paths, plus injected faults for the scraper's fault tests.

| path | file |
|---|---|
| `/Regions/252/Tournaments/2` | the tournament page (WhoScored shows the current season: 2024/25) |
| `/Regions/252/Tournaments/2/Seasons/8228[/slug]` | the EPL 2020/21 season page |
| `/tournaments/18685/data/?d=YYYYMM` | the monthly fixtures JSON of EPL 2020/21 |
| `/Matches/{id}/Live` | the match centre: LaLiga 1650630 as saved (raw HTML); EPL 1485184 and Serie A 1005916 are saved as their `matchCentreData` JSON and served inside the page script that carries it on the site |
| `/LiveScores` | the livescores fragment with 1X2 odds, inside a page |

Faults (`replica.faults[path_and_query] = ["503", "503"]`, consumed one per request):
`"403"`, `"429"`, `"503"`: that status; `"incapsula"`, `"cloudflare"`: a block page with 200;
`"slow:S"`: answer after S seconds; `"garbage"`: malformed JSON. `replica.requests` counts hits.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

INCAPSULA = (
    '<html><head><META NAME="robots" CONTENT="noindex,nofollow"></head><body>'
    '<iframe id="main-iframe" src="/_Incapsula_Resource?SWUDNSAI=31">Request '
    "unsuccessful. Incapsula incident ID: 938000130054321987-123456789</iframe></body></html>"
)
CLOUDFLARE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    '<div id="challenge-platform">Checking your browser before accessing.</div>'
    "</body></html>"
)
HOME = "<!DOCTYPE html><html><head><title>WhoScored replica</title></head><body></body></html>"


def _month_files(folder: Path) -> dict[str, Path]:
    """`?d=` value → file: the files are named by JS month (0-based) of the 2020/21 season."""
    out = {}
    for path in folder.glob("fixtures_json/soccerdata_epl-2020-21_stage18685_month*.json"):
        js_month = int(path.stem[-2:])
        year = 2021 if js_month <= 6 else 2020
        out[f"{year}{js_month + 1:02d}"] = path
    return out


def match_centre_page(data: dict[str, object], match_id: str) -> str:
    """The page script that carries `matchCentreData` on the site, around the saved object."""
    return (
        "<!DOCTYPE html><html><head><title>Match Centre</title>"
        '<script src="https://www.whoscored.com/js/app.js"></script></head><body>'
        '<script>require.config.params["args"] = {\n  matchId:'
        + match_id
        + ",\n  matchCentreData: "
        + json.dumps(data)
        + ",\n  matchCentreEventTypeJson: {},\n  formationIdNameMappings: {}\n};</script>"
        "</body></html>"
    )


class Replica:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.months = _month_files(folder)
        self.faults: dict[str, list[str]] = {}
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_fault(self, key: str) -> str | None:
        with self._lock:
            self.requests[key] += 1
            queue = self.faults.get(key)
            return queue.pop(0) if queue else None

    def route(self, path: str, query: str) -> tuple[int, str, bytes]:
        f = self.folder
        if path == "/":
            return 200, "text/html", HOME.encode()
        if path.rstrip("/") == "/Regions/252/Tournaments/2":
            return (
                200,
                "text/html",
                (f / "season_pages/soccerdata_epl_default-season-2024-25.html").read_bytes(),
            )
        if path.startswith("/Regions/252/Tournaments/2/Seasons/8228"):
            return (
                200,
                "text/html",
                (f / "season_pages/soccerdata_epl_season-2020-21.html").read_bytes(),
            )
        if path.rstrip("/") == "/tournaments/18685/data":
            month = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("d", "")
            if month in self.months:
                return 200, "application/json", self.months[month].read_bytes()
        if path == "/Matches/1650630/Live":
            return (
                200,
                "text/html",
                gzip.decompress(
                    (
                        f / "match_centre/raw_html/"
                        "match_1650630_barcelona-rayo_laliga-2022-23_live.html.gz"
                    ).read_bytes()
                ),
            )
        for match_id, name in (
            ("1485184", "soccerdata_1485184_burnley-manutd_epl-2020-21.json"),
            ("1005916", "socceraction_1005916_empoli-chievo_seriea-2015-16.json"),
        ):
            if path == f"/Matches/{match_id}/Live":
                data = json.loads((f / "match_centre/json" / name).read_text())
                return 200, "text/html", match_centre_page(data, match_id).encode()
        if path == "/LiveScores":
            fragment = (
                f / "livescores_fragment/zaynvirkk_livescores_epl_fragment_with_1x2_odds.html"
            ).read_text()
            return 200, "text/html", f"<!DOCTYPE html><html><body>{fragment}</body></html>".encode()
        return 404, "text/html", b"<html><body>Not found</body></html>"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        replica = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fault = replica.next_fault(self.path)
                status, kind, body = replica.route(parts.path, parts.query)
                if fault and fault.startswith("slow:"):
                    time.sleep(float(fault[5:]))
                elif fault in ("403", "429", "503"):
                    status, kind, body = int(fault), "text/html", b"<html>busy</html>"
                elif fault == "incapsula":
                    status, kind, body = 200, "text/html", INCAPSULA.encode()
                elif fault == "cloudflare":
                    status, kind, body = 200, "text/html", CLOUDFLARE.encode()
                elif fault == "garbage":
                    status, kind, body = 200, "application/json", b'{"tournaments": [{"matc'
                self.send_response(status)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser gave up (a timeout test): nothing to answer

            def log_message(self, *args: object) -> None:
                pass

        return Handler
