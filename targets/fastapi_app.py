"""The ASGI target: FastAPI serving the routes of ``targets.common``.

This module owns only the FastAPI wiring: routes, error handlers, reading the request
body, and waiting with ``await asyncio.sleep`` (the event loop serves other requests
meanwhile). Everything a client can see comes from ``targets.common``, shared with the
Flask app. Query parameters are parsed by hand, so FastAPI's own validation and error
bodies never come into play. Serve it with ``uvicorn targets.fastapi_app:app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import BackgroundTasks, FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException

from targets import common, drivers, streams

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

# No docs routes (Flask has none) and no trailing-slash redirects (Flask answers 404).
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)


def route(path: str) -> Callable[[Endpoint], Endpoint]:
    return app.api_route(path, methods=list(common.ROUTES[path]))


def send(reply: common.Reply) -> Response:
    return Response(reply.body, reply.status, headers=reply.headers, media_type=common.CONTENT_TYPE)


@route("/health")
async def health() -> Response:
    return send(common.health())


@route("/io")
async def io(request: Request) -> Response:
    wait = common.plan_io(request.query_params)
    await asyncio.sleep(wait.sleep_s)
    return send(wait.reply)


@route("/stall")
async def stall(request: Request) -> Response:
    wait = common.plan_stall(request.query_params)
    await asyncio.sleep(wait.sleep_s)
    return send(wait.reply)


@route("/cpu")
async def cpu(request: Request) -> Response:
    # Runs on the event loop and blocks it, as the same work blocks a WSGI worker:
    # handing it to a thread pool would give this app capacity the other one lacks.
    return send(common.cpu(request.query_params))


@route("/json")
async def json_payload(request: Request) -> Response:
    return send(common.json_payload(request.query_params))


@route("/echo")
async def echo(request: Request) -> Response:
    common.check_declared_length(request.headers.get("Content-Length"))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        common.check_body_size(len(body))
    return send(common.echo(bytes(body)))


# --- long-lived routes (targets.streams): not in common.ROUTES, only on this app and Flask's


def stream_route(path: str) -> Callable[[Endpoint], Endpoint]:
    return app.api_route(path, methods=list(streams.STREAM_ROUTES[path]))


@stream_route("/sse")
async def sse(request: Request) -> StreamingResponse:
    schedule = streams.plan_sse(request.query_params)

    async def events() -> AsyncIterator[bytes]:
        if request.method == "HEAD":  # werkzeug sends no body and never runs the generator
            return
        for seq, wait_s in schedule.ticks():
            await asyncio.sleep(wait_s)
            yield streams.sse_event(seq, schedule.count)

    return StreamingResponse(events(), 200, headers=streams.SSE_HEADERS)


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    """Echo or ticker (see ``targets.streams``); a connection holds only a coroutine."""
    # Accepted first, then closed on a bad parameter: a close before accept would be an
    # HTTP 403 without the reason, and flask-sock cannot refuse before accepting either.
    await websocket.accept()
    try:
        schedule = streams.plan_ws(websocket.query_params)
    except common.HttpError as error:
        await websocket.close(streams.WS_POLICY_VIOLATION, streams.close_reason(error))
        return
    try:
        if schedule is None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                elif message.get("bytes") is not None:
                    await websocket.send_bytes(message["bytes"])
        for seq, wait_s in schedule.ticks():
            await asyncio.sleep(wait_s)
            await websocket.send_text(streams.tick(seq))
    except WebSocketDisconnect:
        return
    await websocket.close(streams.WS_NORMAL_CLOSURE)


@stream_route("/background")
async def background(request: Request, tasks: BackgroundTasks) -> Response:
    """202 at once; the slow work is an ``asyncio.sleep`` run after the response is sent."""
    wait = streams.plan_background(request.query_params)
    tasks.add_task(asyncio.sleep, wait.sleep_s)
    return send(wait.reply)


# --- real-I/O routes (common.REAL_IO_ROUTES): psycopg's AsyncConnectionPool, aiohttp (or httpx)

# Made at the first request, in the running event loop, from GATEBENCH_* in the environment;
# the pool holds GATEBENCH_POOL connections (see targets.drivers for the choice of driver).
backend = drivers.AsyncBackend()


def real_io_route(path: str) -> Callable[[Endpoint], Endpoint]:
    return app.api_route(path, methods=list(common.REAL_IO_ROUTES[path]))


@real_io_route("/db")
async def db(request: Request) -> Response:
    return send(await backend.query(common.plan_db(request.query_params)))


@real_io_route("/db/items")
async def db_items(request: Request) -> Response:
    return send(await backend.query(common.plan_item(request.query_params)))


@real_io_route("/upstream")
async def upstream(request: Request) -> Response:
    return send(await backend.call(common.plan_upstream(request.query_params)))


@app.exception_handler(common.HttpError)
async def refused(request: Request, error: common.HttpError) -> Response:
    return send(error.reply())


@app.exception_handler(HTTPException)
async def framework_error(request: Request, error: HTTPException) -> Response:
    # 404 and 405 from routing.
    return send(streams.http_error(error.status_code, request.url.path).reply())


@app.exception_handler(RequestValidationError)
async def invalid_request(request: Request, error: RequestValidationError) -> Response:
    # Unreachable while endpoints declare no parameters; here so a future one cannot
    # leak FastAPI's own error shape.
    return send(common.http_error(422, request.url.path).reply())


@app.exception_handler(Exception)
async def crashed(request: Request, error: Exception) -> Response:
    return send(common.http_error(500, request.url.path).reply())
