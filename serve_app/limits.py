"""Limits that act before any work: the body size, the client's address, a sliding window.

- `BodyLimit` answers 413 to a body larger than `max_body_bytes` before anything reads it: at
  once from `Content-Length`, and while it streams when the header is missing or lies.
- `client_address` names the client: the connection's peer, or the last hop of a forwarded
  header, but only when the setting names the header and the peer is a trusted proxy.
- `SlidingWindow` counts what a client spent in the last `window_s` seconds (a batch of n
  fixtures costs n), in memory: per address before auth, and per key while Redis is away.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from serve_app.schemas import Problem


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` is a 413 and is never buffered whole."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _refuse(send, self.max_bytes)
            return
        seen, started = 0, False

        async def counted() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)  # FastAPI passes an HTTPException through
            return message

        async def noted(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, noted)
        except BodyTooLarge:
            if not started:
                await _refuse(send, self.max_bytes)


def too_large(limit: int) -> bytes:
    """The 413's body, here and in the front (serve_app/front.py), which refuses a body that
    declares its size before any of it reaches the app."""
    body = Problem(detail=f"request body larger than {limit} bytes", field="body")
    return body.model_dump_json().encode()


def over_address_limit(limit: int, per: str, address: str, what: str = "requests") -> str:
    """Why an address past its allowance gets a 429: the app's (per minute, serve_app/ingress.py)
    and the front's (per slice of a minute, serve_app/front.py)."""
    return f"more than {limit} {what} {per} from {address}"


async def _refuse(send: Any, limit: int) -> None:
    payload = too_large(limit)
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def client_address(scope: dict[str, Any], header: str | None, trusted: list[str]) -> str:
    """The peer address, or the last address a trusted proxy appended to `header`."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if header is None or peer not in trusted:
        return str(peer)
    value = dict(scope["headers"]).get(header.lower().encode())
    last = value.decode("latin-1").split(",")[-1].strip() if value else ""
    return last or str(peer)


class SlidingWindow:
    """What each client spent in the last `window_s` seconds, exactly (no minute boundary lets
    twice the limit through). Bounded: at most `max_clients` are remembered, oldest dropped."""

    def __init__(self, limit: int, window_s: float = 60.0, max_clients: int = 50_000) -> None:
        self.limit, self.window_s, self.max_clients = limit, window_s, max_clients
        self._spent: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()
        self._totals: dict[str, int] = {}

    def take(self, client: str, cost: int, now: float) -> float | None:
        """None if `cost` fits (and it is spent), else the seconds until it would."""
        spent = self._spent.pop(client, None) or deque()
        total = self._totals.pop(client, 0)
        while spent and spent[0][0] <= now - self.window_s:
            total -= spent.popleft()[1]
        wait = None
        if total + cost > self.limit:
            wait, freed = self.window_s, 0
            for at, used in spent:
                freed += used
                if total + cost - freed <= self.limit:
                    wait = at + self.window_s - now
                    break
        else:
            spent.append((now, cost))
            total += cost
        if spent:
            self._spent[client], self._totals[client] = spent, total
            while len(self._spent) > self.max_clients:
                dropped, _ = self._spent.popitem(last=False)
                self._totals.pop(dropped, None)
        return wait


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
