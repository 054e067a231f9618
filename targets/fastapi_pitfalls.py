"""Two FastAPI targets that make common mistakes, for comparison with ``targets.fastapi_app``.

Same routes, same bytes, same error handlers as the FastAPI app (they are reused from it);
only the way the endpoints wait differs:

- ``sync_def_app``: every endpoint is a plain ``def`` and waits with ``time.sleep``.
  FastAPI runs such endpoints in its thread pool (anyio's limiter, 40 threads by default),
  so the app behaves like a threaded WSGI server with 40 threads, plus a thread hop per
  request. Serve it with ``uvicorn targets.fastapi_pitfalls:sync_def_app``.
- ``blocking_app``: endpoints are ``async def`` but wait with a blocking ``time.sleep``:
  the event loop stalls for the whole wait, so each process serves one request at a time.
  Serve it with ``uvicorn targets.fastapi_pitfalls:blocking_app``.

The real-I/O routes (``/db``, ``/db/items``, ``/upstream``) make the same two mistakes with a
real driver: both apps use the *sync* backend of the Flask app (psycopg's ConnectionPool,
httpx.Client; ``targets.drivers.SyncBackend``). ``sync_def_app`` calls it from plain ``def``
endpoints, so each call holds one of anyio's threads; ``blocking_app`` calls it inside
``async def``, so the loop waits for every query and every upstream call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from targets import common, drivers, fastapi_app
from targets.fastapi_app import send


def build(endpoints: dict[str, Callable[..., Any]]) -> FastAPI:
    """A FastAPI app wired like ``targets.fastapi_app.app`` with the given endpoints."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    for path, methods in (common.ROUTES | common.REAL_IO_ROUTES).items():
        app.api_route(path, methods=list(methods))(endpoints[path])
    app.exception_handler(common.HttpError)(fastapi_app.refused)
    app.exception_handler(HTTPException)(fastapi_app.framework_error)
    app.exception_handler(RequestValidationError)(fastapi_app.invalid_request)
    app.exception_handler(Exception)(fastapi_app.crashed)
    return app


# The sync driver of both apps: made at the first request of the server process, from
# GATEBENCH_* in the environment (one app is served per process).
backend = drivers.SyncBackend()


# --- sync_def_app: plain `def` endpoints, run in FastAPI's thread pool --------------------


async def read_body(request: Request) -> bytes:
    # A `def` endpoint cannot await the body stream, so an async dependency reads it (on
    # the event loop, before the endpoint runs in a thread), with the same size checks.
    common.check_declared_length(request.headers.get("Content-Length"))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        common.check_body_size(len(body))
    return bytes(body)


def health_def() -> Response:
    return send(common.health())


def io_def(request: Request) -> Response:
    wait = common.plan_io(request.query_params)
    time.sleep(wait.sleep_s)
    return send(wait.reply)


def stall_def(request: Request) -> Response:
    wait = common.plan_stall(request.query_params)
    time.sleep(wait.sleep_s)
    return send(wait.reply)


def cpu_def(request: Request) -> Response:
    return send(common.cpu(request.query_params))


def json_payload_def(request: Request) -> Response:
    return send(common.json_payload(request.query_params))


def echo_def(body: Annotated[bytes, Depends(read_body)]) -> Response:
    return send(common.echo(body))


def db_def(request: Request) -> Response:
    return send(backend.query(common.plan_db(request.query_params)))


def db_items_def(request: Request) -> Response:
    return send(backend.query(common.plan_item(request.query_params)))


def upstream_def(request: Request) -> Response:
    return send(backend.call(common.plan_upstream(request.query_params)))


sync_def_app = build(
    {
        "/health": health_def,
        "/io": io_def,
        "/stall": stall_def,
        "/cpu": cpu_def,
        "/json": json_payload_def,
        "/echo": echo_def,
        "/db": db_def,
        "/db/items": db_items_def,
        "/upstream": upstream_def,
    }
)


# --- blocking_app: `async def` endpoints that block the event loop ------------------------


async def io_blocking(request: Request) -> Response:
    wait = common.plan_io(request.query_params)
    time.sleep(wait.sleep_s)  # the mistake: no await, so nothing else runs meanwhile
    return send(wait.reply)


async def stall_blocking(request: Request) -> Response:
    wait = common.plan_stall(request.query_params)
    time.sleep(wait.sleep_s)
    return send(wait.reply)


async def db_blocking(request: Request) -> Response:
    # the mistake with a real driver: a sync query inside `async def` holds the loop
    return send(backend.query(common.plan_db(request.query_params)))


async def db_items_blocking(request: Request) -> Response:
    return send(backend.query(common.plan_item(request.query_params)))


async def upstream_blocking(request: Request) -> Response:
    return send(backend.call(common.plan_upstream(request.query_params)))


blocking_app = build(
    {
        "/health": fastapi_app.health,
        "/io": io_blocking,
        "/stall": stall_blocking,
        "/cpu": fastapi_app.cpu,
        "/json": fastapi_app.json_payload,
        "/echo": fastapi_app.echo,
        "/db": db_blocking,
        "/db/items": db_items_blocking,
        "/upstream": upstream_blocking,
    }
)
