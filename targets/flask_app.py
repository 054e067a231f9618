"""The WSGI target: Flask serving the routes of ``targets.common``.

This module owns only the Flask wiring: routes, error handlers, reading the request
body, and waiting with ``time.sleep`` (a WSGI worker or thread is held while it waits).
Everything a client can see comes from ``targets.common``, shared with the FastAPI app.
Serve it with ``gunicorn targets.flask_app:app``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Flask, Response, request
from flask_sock import Sock
from simple_websocket import Server
from werkzeug.exceptions import HTTPException

from targets import common, drivers, streams

View = TypeVar("View", bound=Callable[..., Any])

app = Flask(__name__, static_folder=None)
# Werkzeug would redirect "/a//b" to "/a/b"; Starlette answers 404, and so does this app.
app.url_map.merge_slashes = False
sock = Sock(app)


def route(path: str) -> Callable[[View], View]:
    # No automatic OPTIONS: FastAPI has none, so OPTIONS is a 405 on both apps.
    methods = list(common.ROUTES[path])
    return app.route(path, methods=methods, provide_automatic_options=False)


def send(reply: common.Reply) -> Response:
    return Response(
        reply.body, reply.status, headers=reply.headers, content_type=common.CONTENT_TYPE
    )


@route("/health")
def health() -> Response:
    return send(common.health())


@route("/io")
def io() -> Response:
    wait = common.plan_io(request.args)
    time.sleep(wait.sleep_s)
    return send(wait.reply)


@route("/stall")
def stall() -> Response:
    wait = common.plan_stall(request.args)
    time.sleep(wait.sleep_s)
    return send(wait.reply)


@route("/cpu")
def cpu() -> Response:
    return send(common.cpu(request.args))


@route("/json")
def json_payload() -> Response:
    return send(common.json_payload(request.args))


@route("/echo")
def echo() -> Response:
    common.check_declared_length(request.headers.get("Content-Length"))
    body = bytearray()
    while chunk := request.stream.read(common.BODY_CHUNK_BYTES):
        body += chunk
        common.check_body_size(len(body))
    return send(common.echo(bytes(body)))


# --- long-lived routes (targets.streams): not in common.ROUTES, only on this app and FastAPI's


def stream_route(path: str) -> Callable[[View], View]:
    methods = list(streams.STREAM_ROUTES[path])
    return app.route(path, methods=methods, provide_automatic_options=False)


@stream_route("/sse")
def sse() -> Response:
    # The worker thread is held, mostly sleeping, for the whole stream.
    schedule = streams.plan_sse(request.args)

    def events() -> Iterator[bytes]:
        for seq, wait_s in schedule.ticks():
            time.sleep(wait_s)
            yield streams.sse_event(seq, schedule.count)

    return Response(events(), 200, headers=streams.SSE_HEADERS)


@sock.route("/ws")
def ws(socket: Server) -> None:
    """Echo or ticker (see ``targets.streams``); holds a worker (thread) per connection."""
    try:
        schedule = streams.plan_ws(request.args)
    except common.HttpError as error:
        socket.close(streams.WS_POLICY_VIOLATION, streams.close_reason(error))
        return
    if schedule is None:
        while True:  # until the client closes: receive() then raises ConnectionClosed
            socket.send(socket.receive())
    for seq, wait_s in schedule.ticks():
        time.sleep(wait_s)
        socket.send(streams.tick(seq))  # a closed client: ConnectionClosed, ends the route
    socket.close(streams.WS_NORMAL_CLOSURE)


@stream_route("/background")
def background() -> Response:
    """202 at once; the slow work runs in ``call_on_close``, after the response is sent.

    WSGI has no background tasks: the server calls close() once the body is written,
    so the worker (or thread) stays busy for the work, but the client already has its
    answer. FastAPI's BackgroundTasks run on the event loop and hold nothing.
    """
    wait = streams.plan_background(request.args)
    response = send(wait.reply)
    response.call_on_close(lambda: time.sleep(wait.sleep_s))
    return response


# --- real-I/O routes (common.REAL_IO_ROUTES): psycopg's ConnectionPool and httpx.Client --------

# Made at the first request of each worker process (gunicorn forks after importing this
# module), from GATEBENCH_* in the environment; the pool holds GATEBENCH_POOL connections.
backend = drivers.SyncBackend()


def real_io_route(path: str) -> Callable[[View], View]:
    methods = list(common.REAL_IO_ROUTES[path])
    return app.route(path, methods=methods, provide_automatic_options=False)


@real_io_route("/db")
def db() -> Response:
    return send(backend.query(common.plan_db(request.args)))


@real_io_route("/db/items")
def db_items() -> Response:
    return send(backend.query(common.plan_item(request.args)))


@real_io_route("/upstream")
def upstream() -> Response:
    return send(backend.call(common.plan_upstream(request.args)))


@app.before_request
def refuse_leading_double_slash() -> None:
    # Werkzeug strips leading slashes before matching, so "//io" would be served as
    # "/io"; Starlette treats it as another path (404), and so does this app.
    if request.environ.get("PATH_INFO", "").startswith("//"):
        raise common.not_found()


@app.errorhandler(common.HttpError)
def refused(error: common.HttpError) -> Response:
    return send(error.reply())


@app.errorhandler(HTTPException)
def framework_error(error: HTTPException) -> Response:
    # 404 and 405 from routing, and the 500 Flask raises for an unhandled exception.
    return send(streams.http_error(error.code or 500, request.path).reply())
