"""The WSGI target: Flask serving the routes of ``targets.common``.

This module owns only the Flask wiring: routes, error handlers, reading the request
body, and waiting with ``time.sleep`` (a WSGI worker or thread is held while it waits).
Everything a client can see comes from ``targets.common``, shared with the FastAPI app.
Serve it with ``gunicorn targets.flask_app:app``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from targets import common

View = TypeVar("View", bound=Callable[..., Any])

app = Flask(__name__, static_folder=None)
# Werkzeug would redirect "/a//b" to "/a/b"; Starlette answers 404, and so does this app.
app.url_map.merge_slashes = False


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
    return send(common.http_error(error.code or 500, request.path).reply())
