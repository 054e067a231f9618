"""Views of the Django targets: sync ones for WSGI, async ones for ASGI, same answers.

This module owns only the Django wiring: method checks (Django's URL conf does not route
by method), error handlers, reading the request body, and waiting: ``time.sleep`` in the
sync views, ``await asyncio.sleep`` in the async ones. Everything a client can see comes
from ``targets.common``, shared with the other apps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import IO, TypeAlias

from django.http import HttpRequest, HttpResponse

from targets import common

SyncView: TypeAlias = Callable[[HttpRequest], HttpResponse]
AsyncView: TypeAlias = Callable[[HttpRequest], Awaitable[HttpResponse]]
SyncHandler: TypeAlias = Callable[[HttpRequest], common.Reply]
AsyncHandler: TypeAlias = Callable[[HttpRequest], Awaitable[common.Reply]]


def send(request: HttpRequest, reply: common.Reply) -> HttpResponse:
    # HEAD gets the GET headers, Content-Length included, and no body, as Flask sends it.
    # Django sets no Content-Length itself (CommonMiddleware would), so it is set here.
    body = b"" if request.method == "HEAD" else reply.body
    response = HttpResponse(
        body, status=reply.status, headers=reply.headers, content_type=common.CONTENT_TYPE
    )
    response["Content-Length"] = str(len(reply.body))
    return response


def sync_route(path: str) -> Callable[[SyncHandler], SyncView]:
    methods = common.ROUTES[path]

    def wrap(handler: SyncHandler) -> SyncView:
        @wraps(handler)
        def view(request: HttpRequest) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise common.method_not_allowed(path)
                reply = handler(request)
            except common.HttpError as error:
                reply = error.reply()
            return send(request, reply)

        return view

    return wrap


def async_route(path: str) -> Callable[[AsyncHandler], AsyncView]:
    methods = common.ROUTES[path]

    def wrap(handler: AsyncHandler) -> AsyncView:
        @wraps(handler)
        async def view(request: HttpRequest) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise common.method_not_allowed(path)
                reply = await handler(request)
            except common.HttpError as error:
                reply = error.reply()
            return send(request, reply)

        return view

    return wrap


def read_all(request: HttpRequest, stream: IO[bytes] | HttpRequest) -> bytes:
    common.check_declared_length(request.headers.get("Content-Length"))
    body = bytearray()
    while chunk := stream.read(common.BODY_CHUNK_BYTES):
        body += chunk
        common.check_body_size(len(body))
    return bytes(body)


# --- sync views (WSGI) ----------------------------------------------------------------------


@sync_route("/health")
def health(request: HttpRequest) -> common.Reply:
    return common.health()


@sync_route("/io")
def io(request: HttpRequest) -> common.Reply:
    wait = common.plan_io(request.GET)
    time.sleep(wait.sleep_s)
    return wait.reply


@sync_route("/stall")
def stall(request: HttpRequest) -> common.Reply:
    wait = common.plan_stall(request.GET)
    time.sleep(wait.sleep_s)
    return wait.reply


@sync_route("/cpu")
def cpu(request: HttpRequest) -> common.Reply:
    return common.cpu(request.GET)


@sync_route("/json")
def json_payload(request: HttpRequest) -> common.Reply:
    return common.json_payload(request.GET)


@sync_route("/echo")
def echo(request: HttpRequest) -> common.Reply:
    # Django reads wsgi.input up to Content-Length only, so a chunked body (no length)
    # would read as empty. A server that sets wsgi.input_terminated (gunicorn does) ends
    # the stream itself: read it to its end, as Flask (werkzeug) does.
    environ = getattr(request, "environ", {})
    stream = environ["wsgi.input"] if "wsgi.input_terminated" in environ else request
    return common.echo(read_all(request, stream))


# --- async views (ASGI) ---------------------------------------------------------------------


@async_route("/health")
async def health_async(request: HttpRequest) -> common.Reply:
    return common.health()


@async_route("/io")
async def io_async(request: HttpRequest) -> common.Reply:
    wait = common.plan_io(request.GET)
    await asyncio.sleep(wait.sleep_s)
    return wait.reply


@async_route("/stall")
async def stall_async(request: HttpRequest) -> common.Reply:
    wait = common.plan_stall(request.GET)
    await asyncio.sleep(wait.sleep_s)
    return wait.reply


@async_route("/cpu")
async def cpu_async(request: HttpRequest) -> common.Reply:
    # Runs on the event loop and blocks it, as in the other ASGI apps.
    return common.cpu(request.GET)


@async_route("/json")
async def json_payload_async(request: HttpRequest) -> common.Reply:
    return common.json_payload(request.GET)


@async_route("/echo")
async def echo_async(request: HttpRequest) -> common.Reply:
    # Django's ASGI handler has already received the whole body before calling the view
    # (kept in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB; a larger one, refused
    # here anyway, was spooled to disk): the size limit is checked, but only afterwards.
    return common.echo(read_all(request, request))


SYNC_VIEWS: dict[str, SyncView] = {
    "/health": health,
    "/io": io,
    "/stall": stall,
    "/cpu": cpu,
    "/json": json_payload,
    "/echo": echo,
}
ASYNC_VIEWS: dict[str, AsyncView] = {
    "/health": health_async,
    "/io": io_async,
    "/stall": stall_async,
    "/cpu": cpu_async,
    "/json": json_payload_async,
    "/echo": echo_async,
}


# --- error handlers (handler400/403/404/500 in both URL confs) ------------------------------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return send(request, common.http_error(400, request.path).reply())


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    return send(request, common.http_error(403, request.path).reply())


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return send(request, common.not_found().reply())


def server_error(request: HttpRequest) -> HttpResponse:
    return send(request, common.http_error(500, request.path).reply())
