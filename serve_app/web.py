"""The page for people at `/`, and the read routes it is built from.

The page (`serve_app/static/`: HTML, CSS, a little JavaScript, no build step) is open and holds
no secret: the person pastes an API key, which the page keeps in `sessionStorage` and sends as
`X-API-Key` like any client. Every route that returns model output or pipeline reports
(`/teams`, `/fixtures`, `/model/card`, `/model/assets/…`) needs that key, so the page sees
nothing a client without a key could not see, and its traffic counts against the key's rate
limit like any other.

The routes are an `APIRouter` built for one `WebData` (`web_router`), which the app of an
Ingress includes.

No `from __future__ import annotations` here: FastAPI reads the route signatures at runtime.
"""

import json
import math
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from serve_app.schemas import (
    DriftStatus,
    Fixtures,
    LeagueTeams,
    ModelCard,
    ModelInfo,
    Probabilities,
    Problem,
    Teams,
    UpcomingPrediction,
)
from serve_app.served_model import ModelClient
from serve_app.services import FeatureService, FileBacked, UpcomingPredictions

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
PLOTS = {"calibration": "calibration.png", "feature_importance": "feature_importance.png"}
# the page loads only its own files; plots arrive as blobs fetched with the key
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 404, 422, 429, 503)
}


def upcoming_prediction(row: dict[str, Any]) -> UpcomingPrediction:
    """One row of the batch predictions as the API answers it (also `GET /predict/{match_id}`)."""

    def triple(prefix: str) -> Probabilities:
        return Probabilities(
            home=row[f"{prefix}_home"], draw=row[f"{prefix}_draw"], away=row[f"{prefix}_away"]
        )

    # Arrow-backed columns give None where pandas would give NaN: both mean "no odds known"
    known = all(
        row[f"market_prob_{k}"] is not None and not math.isnan(row[f"market_prob_{k}"])
        for k in ("home", "draw", "away")
    )
    return UpcomingPrediction(
        match_id=row["match_id"],
        league=row["league"],
        season=row["season"],
        kickoff_utc=str(row["kickoff_utc"]),
        home_team=row["home_team"],
        away_team=row["away_team"],
        probabilities=triple("prob"),
        fair_odds=triple("fair_odds"),
        market_probabilities=triple("market_prob") if known else None,
        model_version=str(row["model_version"]),
        forecaster=str(row.get("forecaster") or ""),
    )


def promoted_at(history: list[dict[str, Any]], version: str) -> tuple[str | None, list[str]]:
    """When the alias last moved to `version` (a promotion or a rollback), and why."""
    for entry in reversed(history):
        moved = entry.get("promoted") or entry.get("action") == "rollback"
        if moved and str(entry.get("version")) == version:
            reasons = entry.get("reasons") or [f"rolled back from v{entry.get('from_version')}"]
            return entry.get("time"), list(reasons)
    return None, []


def drift_status(summary: dict[str, Any] | None) -> DriftStatus | None:
    return None if summary is None else DriftStatus.model_validate(summary)


def _json_list(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text()))


class WebData:
    """What the page's routes read: the replica's team state, batch predictions, model
    and drift summary (the same readers the rest of the ingress uses), and the promotion
    history."""

    def __init__(
        self,
        features: FeatureService,
        upcoming: UpcomingPredictions,
        model: ModelClient,
        drift: FileBacked[dict[str, Any]],
        promotion_history: Path,
        interval_s: float,
    ) -> None:
        self.features, self.upcoming, self.model, self.drift = features, upcoming, model, drift
        self.history = FileBacked(promotion_history, _json_list, interval_s)

    def teams(self) -> Teams:
        try:
            state = self.features.current()
        except RuntimeError as err:
            raise HTTPException(503, str(err)) from None
        horizon = self.features.max_horizon_days
        windows = {league: state.kickoff_window(league, horizon) for league in state.leagues}
        leagues = [
            LeagueTeams(
                league=league,
                teams=state.teams(league),
                earliest_kickoff=windows[league][0],
                latest_kickoff=windows[league][1],
                data_ends=state.data_ends(league),
            )
            for league in sorted(state.leagues)
        ]
        return Teams(as_of=state.as_of, state_version=state.version, leagues=leagues)

    def fixtures(self, league: str | None) -> Fixtures:
        table = self.upcoming.all()
        if table.empty and self.upcoming.table.error:
            raise HTTPException(503, self.upcoming.table.error)
        if league and not table.empty:
            table = table[table["league"] == league]
        if not table.empty:
            table = table.sort_values(["kickoff_utc", "league", "home_team"])
        rows = [{str(k): v for k, v in row.items()} for row in table.to_dict("records")]
        return Fixtures(fixtures=[upcoming_prediction(row) for row in rows])

    async def card(self) -> ModelCard:
        model = ModelInfo.model_validate(await self.model.info())
        when, reasons = promoted_at(self.history.get() or [], model.version)
        try:
            drift, drift_error = drift_status(self.drift.get()), self.drift.error
        except ValueError as err:  # a summary of another shape: say so, do not guess
            drift, drift_error = None, f"drift summary not understood: {err}"
        plots = {name: f"/model/assets/{name}?version={model.version}" for name in PLOTS}
        return ModelCard(
            model=model,
            promoted_at=when,
            promotion_reasons=reasons,
            drift=drift,
            drift_error=None if drift else drift_error or "no drift report yet",
            plots=plots,
        )

    async def plot(self, name: str) -> bytes:
        if name not in PLOTS:
            raise HTTPException(404, f"no plot {name!r}; plots: {', '.join(PLOTS)}")
        data = await self.model.report_file(PLOTS[name])
        if data is None:
            raise HTTPException(404, f"the served version's run logged no {PLOTS[name]}")
        return bytes(data)


@cache
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def web_router(web: WebData) -> APIRouter:
    """The page and its read routes, answered from `web`."""
    router = APIRouter()
    router.add_api_route("/", page, include_in_schema=False)
    router.add_api_route("/static/{name}", static_file, include_in_schema=False)

    @router.get(
        "/teams",
        response_model=Teams,
        responses=ERRORS,
        summary="Known teams per league and the kickoff dates the app answers",
    )
    async def teams() -> Teams:
        return web.teams()

    @router.get(
        "/fixtures",
        response_model=Fixtures,
        responses=ERRORS,
        summary="Batch predictions of the upcoming fixtures, by kickoff",
    )
    async def fixtures(league: Annotated[str | None, Query(max_length=16)] = None) -> Fixtures:
        return web.fixtures(league)

    @router.get(
        "/model/card",
        response_model=ModelCard,
        responses=ERRORS,
        summary="The served model, when it was promoted, its plots and the drift status",
    )
    async def model_card() -> ModelCard:
        return await web.card()

    @router.get(
        "/model/assets/{name}",
        response_class=Response,
        summary="A plot of the served model",
        responses={**ERRORS, 200: {"content": {"image/png": {}}}},
    )
    async def model_asset(name: str) -> Response:
        return Response(
            await web.plot(name),
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=300"},
        )

    return router


async def page() -> Response:
    return Response(
        _static("index.html"), media_type=STATIC_TYPES["index.html"], headers=PAGE_HEADERS
    )


async def static_file(name: str) -> Response:
    if name not in STATIC_TYPES or name == "index.html":
        raise HTTPException(404, f"no static file {name!r}")
    return Response(_static(name), media_type=STATIC_TYPES[name], headers=PAGE_HEADERS)
