"""A WSGI target without a framework: a bare callable serving the routes of ``targets.common``.

Only the standard library and ``targets.common``: routing is a dict look-up, the query
string goes through ``urllib.parse``, the body is read from ``wsgi.input`` the way Flask
(werkzeug) reads it, and waiting is ``time.sleep`` (the worker or thread is held). Next to
the Flask app it shows what the framework costs, and next to the raw ASGI app what the
interface costs. Serve it with ``gunicorn targets.raw_wsgi:app``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from targets import common

StartResponse = Callable[..., Any]
Handler = Callable[[dict[str, Any], common.QueryArgs], common.Reply]

log = logging.getLogger(__name__)

# werkzeug's rule for a Content-Length value: ASCII digits (and "-"), blanks around.
_PLAIN_INT = re.compile(r"-?[0-9]+", re.ASCII)


def query_args(environ: dict[str, Any]) -> common.QueryArgs:
    return common.parse_query(environ.get("QUERY_STRING", ""))


def content_length(environ: dict[str, Any]) -> int | None:
    """None for a streamed body (no Content-Length, or chunked); 0 for a bad value."""
    encoding = environ.get("HTTP_TRANSFER_ENCODING", "")
    declared = environ.get("CONTENT_LENGTH")
    if "chunked" in encoding.lower() or declared is None:
        return None
    declared = declared.strip(" \t")
    return max(0, int(declared)) if _PLAIN_INT.fullmatch(declared) else 0


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, refused past ``MAX_BODY_BYTES`` while it arrives (as Flask does).

    A server that sets ``wsgi.input_terminated`` ends the stream itself (gunicorn does, for
    chunked bodies too), so it is read to its end. Otherwise the stream is read up to
    Content-Length; without one the body is empty, and a stream that ends early means the
    client went away (werkzeug's ClientDisconnected, a 400).
    """
    common.check_declared_length(environ.get("CONTENT_LENGTH"))
    stream = environ["wsgi.input"]
    if "wsgi.input_terminated" in environ:
        remaining = None  # read to the end: the server ends the stream
    else:
        remaining = content_length(environ)
        if remaining is None:
            return b""  # no safe end to read to: werkzeug gives an empty body too
    body = bytearray()
    while remaining is None or remaining > 0:
        size = common.BODY_CHUNK_BYTES
        chunk = stream.read(size if remaining is None else min(size, remaining))
        if not chunk:
            if remaining is not None:
                raise common.http_error(400, environ.get("PATH_INFO", ""))
            break
        body += chunk
        if remaining is not None:
            remaining -= len(chunk)
        common.check_body_size(len(body))
    return bytes(body)


def health(environ: dict[str, Any], query: common.QueryArgs) -> common.Reply:
    return common.health()


def io(environ: dict[str, Any], query: common.QueryArgs) -> common.Reply:
    wait = common.plan_io(query)
    time.sleep(wait.sleep_s)
    return wait.reply


def stall(environ: dict[str, Any], query: common.QueryArgs) -> common.Reply:
    wait = common.plan_stall(query)
    time.sleep(wait.sleep_s)
    return wait.reply


def cpu(environ: dict[str, Any], query: common.QueryArgs) -> common.Reply:
    return common.cpu(query)


def json_payload(environ: dict[str, Any], query: common.QueryArgs) -> common.Reply:
    return common.json_payload(query)


def echo(environ: dict[str, Any], query: common.QueryArgs) -> common.Reply:
    return common.echo(read_body(environ))


HANDLERS: dict[str, Handler] = {
    "/health": health,
    "/io": io,
    "/stall": stall,
    "/cpu": cpu,
    "/json": json_payload,
    "/echo": echo,
}


def respond(environ: dict[str, Any]) -> common.Reply:
    # PATH_INFO is the decoded path, as Flask and Starlette match it: "/%2Fio" is "//io",
    # which is no route. Matching is exact: no slash merging, no trailing-slash redirect.
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    try:
        if path not in HANDLERS:
            raise common.not_found()
        if method not in common.ROUTES[path]:
            raise common.method_not_allowed(path)
        return HANDLERS[path](environ, query_args(environ))
    except common.HttpError as error:
        return error.reply()
    except Exception:
        log.exception("Exception on %s [%s]", path, method)
        return common.http_error(500, path).reply()


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    reply = respond(environ)
    status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
    headers = [
        ("Content-Type", common.CONTENT_TYPE),
        ("Content-Length", str(len(reply.body))),
        *reply.headers.items(),
    ]
    start_response(status, headers)
    # HEAD: the same headers (Content-Length of the full body), no body, as Flask sends.
    return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [reply.body]
