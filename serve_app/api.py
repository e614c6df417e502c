"""The HTTP face of one `Ingress`: a FastAPI app built for it (`build_api`), so the routes and the
middleware reach their Ingress through arguments, never through module or app state.

Outermost, a body-size limit (413 before anything is parsed); then a guard: a per-address
limit on every request, then the key and its sliding-window limit, and the request metrics.
`/healthz`, `/metrics`, the OpenAPI document and the page for people (`/`, `/static/`; its read
routes in `serve_app.web` need the key) are open. There is no `/docs` or `/redoc`: FastAPI's
load Swagger UI from a CDN, on the origin whose page keeps the key in `sessionStorage`; any
OpenAPI viewer elsewhere reads `/openapi.json`.

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
from serve_app.limits import BodyLimit, client_address, retry_after
from serve_app.schemas import (
    BatchIn,
    BatchOut,
    FixtureIn,
    Health,
    JobAccepted,
    JobStatus,
    ModelInfo,
    Prediction,
    Problem,
    UpcomingPrediction,
)
from serve_app.services import NotReady
from serve_app.web import web_router

OPEN_PATHS = {"/healthz", "/metrics", "/openapi.json"}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in codes}


def _json_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The same for a route whose success is not JSON: FastAPI would document its refusals
    under the route's own media type, but they are sent as JSON (a Problem)."""
    problem = {"$ref": "#/components/schemas/Problem"}
    return {code: {"content": {"application/json": {"schema": problem}}} for code in codes}


# what each kind of route can answer besides its success: every keyed route 401 (key) and 429
# (address or key limit); a body 400 (unparseable: not UTF-8), 413 (too large) and 422 (invalid)
KEYED = (401, 429, 503)
BODY = (400, 413, 422)
Admit = Callable[[str | None], Awaitable[str]]
AdmitAddress = Callable[[str], None]
Record = Callable[[str, str, int, float], None]


def _problem(status: int, problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.model_dump(), status_code=status, headers=headers)


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == "/" or path.startswith("/static/")


class Guard:
    """Per-address limit, API key and its limit, and the request metrics of every route. The
    key's id goes to the route in `request.state.key_id` (jobs belong to it, batches spend it).

    A plain ASGI middleware: Starlette's `BaseHTTPMiddleware` runs each request through an extra
    task and memory stream, a cost paid on every request of the hot path.
    """

    def __init__(
        self,
        app: Any,
        admit_address: AdmitAddress,
        admit: Admit,
        record: Record,
        forwarded_header: str | None,
        trusted_proxies: list[str],
    ) -> None:
        self.app, self.admit_address, self.admit, self.record = app, admit_address, admit, record
        self.forwarded_header, self.trusted_proxies = forwarded_header, trusted_proxies

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
            self.admit_address(client_address(scope, self.forwarded_header, self.trusted_proxies))
            if not _is_open(scope["path"]):
                key = dict(scope["headers"]).get(b"x-api-key")
                key_id = await self.admit(key.decode("latin-1") if key else None)
                scope.setdefault("state", {})["key_id"] = key_id
            await self.app(scope, receive, send_and_note)
        except Refused as err:
            await _problem(err.status, err.problem, err.headers)(scope, receive, send_and_note)
        route = getattr(scope.get("route"), "path", "unmatched")
        self.record(route, scope["method"], status, time.perf_counter() - started)


class CachedText:
    """`GET /metrics` gathers every node's agent: at most one gathering at a time, and its text
    answers every request for `max_age_s`, so a flood of scrapes costs one."""

    def __init__(self, make: Callable[[], str], max_age_s: float) -> None:
        self.make, self.max_age_s = make, max_age_s
        self.text, self.made_at = "", float("-inf")
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:  # the waiters find the fresh copy when they get in
            if time.monotonic() - self.made_at >= self.max_age_s:
                self.text = await asyncio.to_thread(self.make)
                self.made_at = time.monotonic()
            return self.text


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
        assert isinstance(err, HTTPException)  # a 405 keeps its Allow header
        field = "body" if err.status_code in (400, 413) else None  # unparseable, too large
        headers = dict(err.headers) if err.headers else None
        return _problem(err.status_code, Problem(detail=str(err.detail), field=field), headers)

    async def not_ready(_: Request, err: Exception) -> JSONResponse:
        return _problem(503, Problem(detail=str(err)), retry_after(1))

    async def replica_gone(_: Request, err: Exception) -> JSONResponse:
        # a Model replica died (SIGKILL, node lost) with this call on it: Serve does not retry
        # a call a replica may have started; the client may, once the replica is replaced
        return _problem(503, Problem(detail="a model replica went away; retry"), retry_after(1))

    from ray.exceptions import RayActorError  # ActorDiedError, ActorUnavailableError

    api.add_exception_handler(RayActorError, replica_gone)
    api.add_exception_handler(Refused, refused)
    api.add_exception_handler(NotReady, not_ready)
    api.add_exception_handler(RequestValidationError, invalid)
    api.add_exception_handler(HTTPException, http)


def build_api(ingress: Ingress, cluster_metrics: Callable[[], str]) -> FastAPI:
    """The app's routes over one Ingress; `cluster_metrics` gives the Prometheus text of
    `GET /metrics` (every node's Ray metrics agent, in the deployment)."""
    conf = ingress.conf
    api = FastAPI(
        title="SoccerPredict",
        version="1",
        description="Home / draw / away probabilities for soccer fixtures. Send your "
        "key in `X-API-Key`; `/healthz`, `/metrics` and the page at `/` "
        "are open.",
        docs_url=None,
        redoc_url=None,
    )
    _add_error_handlers(api)
    api.add_middleware(
        Guard,
        admit_address=ingress.admit_address,
        admit=ingress.admit,
        record=ingress.record,
        forwarded_header=conf.forwarded_header,
        trusted_proxies=conf.trusted_proxies,
    )
    api.add_middleware(BodyLimit, max_bytes=conf.max_body_bytes)  # added last: runs first
    api.include_router(web_router(ingress.web))  # the page at / and its read routes
    metrics = CachedText(cluster_metrics, conf.metrics_cache_s)

    @api.post(
        "/predict",
        response_model=Prediction,
        responses=_errors(*KEYED, *BODY),
        summary="Probabilities for one fixture",
    )
    async def predict(body: FixtureIn) -> Prediction:
        return await ingress.predict(body)

    @api.post(
        "/predict/batch",
        response_model=BatchOut,
        responses=_errors(*KEYED, *BODY),
        summary="Probabilities for several fixtures in one call (each counts against the limit)",
    )
    async def predict_batch(body: BatchIn, request: Request) -> BatchOut:
        if len(body.fixtures) <= conf.max_batch_fixtures:  # more: predict_batch's 413
            await ingress.charge(request.state.key_id, len(body.fixtures) - 1)  # 1 at the door
        return await ingress.predict_batch(body)

    @api.post(
        "/predict/async",
        response_model=JobAccepted,
        status_code=202,
        responses=_errors(*KEYED, *BODY),
        summary="Submit a fixture; poll its status with the same key",
    )
    async def predict_async(body: FixtureIn, request: Request) -> JobAccepted:
        return await ingress.predict_async(body, request.state.key_id)

    @api.get(
        "/predict/async/{job_id}",
        response_model=JobStatus,
        responses=_errors(*KEYED, 404, 422),
        summary="Status of an async job of this key: pending, done with the result, or failed",
    )
    async def job_status(job_id: str, request: Request) -> JobStatus:
        return await ingress.job_status(job_id, request.state.key_id)

    @api.get(
        "/predict/{match_id}",
        response_model=UpcomingPrediction,
        responses=_errors(*KEYED, 404, 422),
        summary="The batch prediction of an upcoming match",
    )
    async def lookup(match_id: str) -> UpcomingPrediction:
        return await ingress.lookup(match_id)

    @api.get(
        "/model",
        response_model=ModelInfo,
        responses=_errors(*KEYED),
        summary="The model being served: version, alias, contract, test metrics",
    )
    async def model_info() -> ModelInfo:
        return await ingress.model_info()

    @api.get(
        "/healthz",
        response_model=Health,
        responses={503: {"model": Health}, 429: {"model": Problem}},
        summary="Open: 200 when this replica can answer predictions, 503 and why when it cannot",
    )
    async def healthz() -> JSONResponse:
        health = await ingress.healthz()
        return JSONResponse(health.model_dump(), status_code=200 if health.can_serve else 503)

    @api.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses=_json_errors(429),
        summary="Prometheus text: the app's and Serve's metrics from every node",
    )
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(await metrics.get(), media_type="text/plain; version=0.0.4")

    return api
