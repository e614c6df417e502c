"""The HTTP face of one `Ingress`: a FastAPI app built for it (`build_api`), so the routes and the
middleware reach their Ingress through arguments, never through module or app state.

Auth, rate limits and request metrics are a middleware; `/healthz`, `/metrics`, the OpenAPI
documents and the page for people (`/`, `/static/`, its read routes in `serve_app.web` need the
key) are open.

No `from __future__ import annotations` here: FastAPI reads the route signatures at runtime.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException

from serve_app.ingress import Ingress, Refused
from serve_app.schemas import (
    BatchIn,
    BatchOut,
    FixtureIn,
    JobAccepted,
    JobStatus,
    ModelInfo,
    Prediction,
    Problem,
    UpcomingPrediction,
)
from serve_app.web import web_router

OPEN_PATHS = {"/healthz", "/metrics", "/docs", "/redoc", "/openapi.json"}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 404, 413, 422, 429, 503)
}
Admit = Callable[[str | None], Awaitable[None]]
Record = Callable[[str, str, int, float], None]


def _problem(status: int, problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.model_dump(), status_code=status, headers=headers)


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == "/" or path.startswith("/static/")


class Guard:
    """API key, per-key rate limit, and the request metrics of every route.

    A plain ASGI middleware: Starlette's `BaseHTTPMiddleware` runs each request through an extra
    task and memory stream, a cost paid on every request of the hot path.
    """

    def __init__(self, app: Any, admit: Admit, record: Record) -> None:
        self.app, self.admit, self.record = app, admit, record

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if not _is_open(scope["path"]):
                key = dict(scope["headers"]).get(b"x-api-key")
                await self.admit(key.decode("latin-1") if key else None)
            await self.app(scope, receive, send_and_note)
        except Refused as err:
            await _problem(err.status, err.problem, err.headers)(scope, receive, send_and_note)
        route = getattr(scope.get("route"), "path", "unmatched")
        self.record(route, scope["method"], status, time.perf_counter() - started)


def _add_error_handlers(api: FastAPI) -> None:
    async def refused(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, Refused)
        return _problem(err.status, err.problem, err.headers)

    async def invalid(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)

        def place(loc: tuple[Any, ...]) -> str:
            names = [str(p) for p in loc if p != "body" and not isinstance(p, int)]
            return ".".join(names) or "body"

        reasons = "; ".join(f"{place(e['loc'])}: {e['msg']}" for e in err.errors())
        field = place(err.errors()[0]["loc"]) if err.errors() else None
        return _problem(422, Problem(detail=reasons or "invalid request", field=field))

    async def http(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, HTTPException)
        return _problem(err.status_code, Problem(detail=str(err.detail)))

    api.add_exception_handler(Refused, refused)
    api.add_exception_handler(RequestValidationError, invalid)
    api.add_exception_handler(HTTPException, http)


def build_api(ingress: Ingress, cluster_metrics: Callable[[], str]) -> FastAPI:
    """The app's routes over one Ingress; `cluster_metrics` gives the Prometheus text of
    `GET /metrics` (every node's Ray metrics agent, in the deployment)."""
    api = FastAPI(
        title="SoccerPredict",
        version="1",
        description="Home / draw / away probabilities for soccer fixtures. Send your "
        "key in `X-API-Key`; `/healthz`, `/metrics` and the page at `/` "
        "are open.",
    )
    _add_error_handlers(api)
    api.add_middleware(Guard, admit=ingress.admit, record=ingress.record)
    api.include_router(web_router(ingress.web))  # the page at / and its read routes

    @api.post(
        "/predict",
        response_model=Prediction,
        responses=ERRORS,
        summary="Probabilities for one fixture",
    )
    async def predict(body: FixtureIn) -> Prediction:
        return await ingress.predict(body)

    @api.post(
        "/predict/batch",
        response_model=BatchOut,
        responses=ERRORS,
        summary="Probabilities for several fixtures in one call",
    )
    async def predict_batch(body: BatchIn) -> BatchOut:
        return await ingress.predict_batch(body)

    @api.post(
        "/predict/async",
        response_model=JobAccepted,
        status_code=202,
        responses=ERRORS,
        summary="Submit a fixture; poll its status",
    )
    async def predict_async(body: FixtureIn) -> JobAccepted:
        return await ingress.predict_async(body)

    @api.get(
        "/predict/async/{job_id}",
        response_model=JobStatus,
        responses=ERRORS,
        summary="Status of an async job: pending, done with the result, or failed",
    )
    async def job_status(job_id: str) -> JobStatus:
        return await ingress.job_status(job_id)

    @api.get(
        "/predict/{match_id}",
        response_model=UpcomingPrediction,
        responses=ERRORS,
        summary="The batch prediction of an upcoming match",
    )
    async def lookup(match_id: str) -> UpcomingPrediction:
        return await ingress.lookup(match_id)

    @api.get(
        "/model",
        response_model=ModelInfo,
        responses=ERRORS,
        summary="The model being served: version, alias, contract, test metrics",
    )
    async def model_info() -> ModelInfo:
        return await ingress.model_info()

    @api.get("/healthz", summary="Liveness: open, no key needed")
    async def healthz() -> dict[str, Any]:
        return await ingress.healthz()

    @api.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus text: the app's and Serve's metrics from every node",
    )
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(
            await asyncio.to_thread(cluster_metrics), media_type="text/plain; version=0.0.4"
        )

    return api
