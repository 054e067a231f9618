"""An ASGI target without a framework: a bare coroutine serving the routes of ``targets.common``.

Only the standard library and ``targets.common``: routing is a dict look-up, the query
string goes through ``urllib.parse``, the body arrives as ``http.request`` messages, and
waiting is ``await asyncio.sleep`` (the event loop serves other requests meanwhile). Next
to the Starlette and FastAPI apps it shows what the framework costs, and next to the raw
WSGI app what the interface costs. Serve it with ``uvicorn targets.raw_asgi:app``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from targets import common

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, common.QueryArgs, Receive], Awaitable[common.Reply]]

log = logging.getLogger(__name__)


def query_args(scope: Scope) -> common.QueryArgs:
    # Decoded as Starlette decodes it: latin-1 bytes, then "&"-separated, "+" a space.
    raw = scope.get("query_string", b"").decode("latin-1")
    return common.parse_query(raw)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused past ``MAX_BODY_BYTES`` while it arrives (chunked too)."""
    common.check_declared_length(header(scope, b"content-length"))
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise common.http_error(400, scope["path"])  # nobody is left to read the answer
        body += message.get("body", b"")
        common.check_body_size(len(body))
        if not message.get("more_body", False):
            return bytes(body)


async def health(scope: Scope, query: common.QueryArgs, receive: Receive) -> common.Reply:
    return common.health()


async def io(scope: Scope, query: common.QueryArgs, receive: Receive) -> common.Reply:
    wait = common.plan_io(query)
    await asyncio.sleep(wait.sleep_s)
    return wait.reply


async def stall(scope: Scope, query: common.QueryArgs, receive: Receive) -> common.Reply:
    wait = common.plan_stall(query)
    await asyncio.sleep(wait.sleep_s)
    return wait.reply


async def cpu(scope: Scope, query: common.QueryArgs, receive: Receive) -> common.Reply:
    # Runs on the event loop and blocks it, as in the other ASGI apps.
    return common.cpu(query)


async def json_payload(scope: Scope, query: common.QueryArgs, receive: Receive) -> common.Reply:
    return common.json_payload(query)


async def echo(scope: Scope, query: common.QueryArgs, receive: Receive) -> common.Reply:
    return common.echo(await read_body(scope, receive))


HANDLERS: dict[str, Handler] = {
    "/health": health,
    "/io": io,
    "/stall": stall,
    "/cpu": cpu,
    "/json": json_payload,
    "/echo": echo,
}


async def respond(scope: Scope, receive: Receive) -> common.Reply:
    # scope["path"] is the decoded path, as Starlette matches it: "/%2Fio" is "//io", which
    # is no route. Matching is exact: no slash merging, no trailing-slash redirect.
    path, method = scope["path"], scope["method"]
    try:
        if path not in HANDLERS:
            raise common.not_found()
        if method not in common.ROUTES[path]:
            raise common.method_not_allowed(path)
        return await HANDLERS[path](scope, query_args(scope), receive)
    except common.HttpError as error:
        return error.reply()
    except Exception:
        log.exception("Exception on %s [%s]", path, method)
        return common.http_error(500, path).reply()


async def lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up or tear down; answering keeps servers from logging that the
    # protocol is unsupported.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":  # a WebSocket: refused, as Starlette refuses an unknown one
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        return
    reply = await respond(scope, receive)
    headers = [
        (b"content-type", common.CONTENT_TYPE.encode()),
        (b"content-length", str(len(reply.body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in reply.headers.items()),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    # HEAD: the same headers (Content-Length of the full body), no body, as Flask sends.
    body = b"" if scope["method"] == "HEAD" else reply.body
    await send({"type": "http.response.body", "body": body})
