"""The upstream HTTP service the real-I/O routes call (``GET /upstream?ms=N`` on the targets).

A plain ASGI app, run by the harness on uvicorn (``harness.run.upstream``): ``GET /wait?ms=N``
answers after N ms with ``{"ms": N, "upstream": "ok"}`` (``targets.common.encode``), the same
bytes whichever target asked, so the verify gate can compare the targets' answers. ``GET
/health`` answers at once (readiness). Anything else: 404; a bad ``ms``: 400. Waiting is an
``asyncio.sleep``: one process holds every waiting call, so the upstream is never the limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from targets.common import CONTENT_TYPE, MAX_IO_MS, encode
from targets.raw_asgi import lifespan

Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _reply(send: Send, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wait_ms(query: bytes) -> int | None:
    """The ``ms`` of a /wait query, 0..MAX_IO_MS (50 when absent); None when invalid."""
    values = parse_qs(query.decode("latin-1")).get("ms", ["50"])
    text = values[-1]
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return None
    ms = int(text)
    return ms if ms <= MAX_IO_MS else None


async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)  # nothing to set up: the raw ASGI target's answer
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/health":
        await _reply(send, 200, encode({"status": "ok"}))
    elif path == "/wait":
        ms = wait_ms(scope.get("query_string", b""))
        if ms is None:
            await _reply(send, 400, encode({"error": f"ms must be a whole number 0..{MAX_IO_MS}"}))
            return
        await asyncio.sleep(ms / 1000)
        await _reply(send, 200, encode({"ms": ms, "upstream": "ok"}))
    else:
        await _reply(send, 404, encode({"error": f"no route {path}"}))
