"""An ASGI target: plain Starlette (no FastAPI) serving the routes of ``targets.common``.

This module owns only the Starlette wiring: routes, error handlers, reading the request
body, and waiting with ``await asyncio.sleep`` (the event loop serves other requests
meanwhile). Everything a client can see comes from ``targets.common``, shared with the
other apps. Next to the FastAPI app it shows what FastAPI itself costs (dependency
resolution, its request validation layer). Serve it with ``uvicorn targets.starlette_app:app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from targets import common

Endpoint = Callable[[Request], Awaitable[Response]]


def send(reply: common.Reply) -> Response:
    return Response(reply.body, reply.status, headers=reply.headers, media_type=common.CONTENT_TYPE)


async def health(request: Request) -> Response:
    return send(common.health())


async def io(request: Request) -> Response:
    wait = common.plan_io(request.query_params)
    await asyncio.sleep(wait.sleep_s)
    return send(wait.reply)


async def stall(request: Request) -> Response:
    wait = common.plan_stall(request.query_params)
    await asyncio.sleep(wait.sleep_s)
    return send(wait.reply)


async def cpu(request: Request) -> Response:
    # Runs on the event loop and blocks it, as in the FastAPI app.
    return send(common.cpu(request.query_params))


async def json_payload(request: Request) -> Response:
    return send(common.json_payload(request.query_params))


async def echo(request: Request) -> Response:
    common.check_declared_length(request.headers.get("Content-Length"))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        common.check_body_size(len(body))
    return send(common.echo(bytes(body)))


async def refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, common.HttpError)
    return send(error.reply())


async def framework_error(request: Request, error: Exception) -> Response:
    # 404 and 405 from routing.
    assert isinstance(error, HTTPException)
    return send(common.http_error(error.status_code, request.url.path).reply())


async def crashed(request: Request, error: Exception) -> Response:
    return send(common.http_error(500, request.url.path).reply())


ENDPOINTS: dict[str, Endpoint] = {
    "/health": health,
    "/io": io,
    "/stall": stall,
    "/cpu": cpu,
    "/json": json_payload,
    "/echo": echo,
}

app = Starlette(
    routes=[
        Route(path, ENDPOINTS[path], methods=list(methods))
        for path, methods in common.ROUTES.items()
    ],
    exception_handlers={
        common.HttpError: refused,
        HTTPException: framework_error,
        Exception: crashed,
    },
)
# No trailing-slash redirects (Flask answers 404); Starlette() takes no such argument.
app.router.redirect_slashes = False
