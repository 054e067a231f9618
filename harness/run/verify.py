"""The verify gate: before a run, check that the targets really are equivalent.

This module owns the fixed list of probe requests (``REQUESTS``), the statuses they must
get (``EXPECTED_STATUS``), sending them to a running server (``check_server``), comparing
each target with the reference target (``compare``), and the ``/io`` timing check. A
target that fails is not benchmarked; its ``VerifyResult.problems`` say why.

The reference is the first target (in the given order) that started and answered every
request. Every other target must send the same status, content type and body for every
request; nothing in the probe list is random (the exponential ``/io`` wait is seeded).
Independently of the reference, each target must get the expected status for every
request and a JSON content type, so two targets that are wrong the same way still fail.
The orchestrator never imports locust: requests go through ``harness.run.client``.

Each target is asked in its own protocol: HTTP/2 for a row whose ``http`` is "2" (one that
answers over HTTP/1.1 instead fails), TLS trusting the run's CA for a row that always serves
TLS. Plain HTTP/1.1 targets are asked exactly as before, one ``http.client`` connection per
request, so their timings do not move; the answers of every protocol compare byte for byte.

With the real-I/O services running (``environment``: the GATEBENCH_* variables of each
target's server, see ``verify_targets``), every target that serves the real-I/O routes is
started with them and also gets ``REAL_IO_REQUESTS`` of each service whose address it got,
compared with the first such target (their own reference), and ``/db?ms=50`` must wait 50 ms
±10% beyond ``/db?ms=0`` (``db_ms``). Without them nothing of this happens.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

from harness.run import client
from harness.run.external import Server, attach, is_external
from harness.run.servers import ServerError, serve, wait_stopped
from harness.run.tls import Certificate, make_certificate
from targets import common
from targets.registry import Target

Request = tuple[str, str, bytes | None]  # method, path with query, body
Answer = tuple[str, int, str, bytes]  # request label, status, content type, body

REQUESTS: list[Request] = [
    ("GET", "/health", None),
    ("GET", "/io?ms=0", None),
    ("GET", "/io?ms=5&dist=exp&seed=7", None),
    ("GET", "/io?ms=-1", None),
    ("GET", "/io?ms=abc", None),
    ("GET", "/io?ms=nan", None),
    ("GET", "/io?ms=99999", None),
    ("GET", "/io?dist=weird", None),
    ("GET", "/cpu?work=100", None),
    ("GET", "/cpu?work=-5", None),
    ("GET", "/cpu?work=2000000", None),
    ("GET", "/json?items=3", None),
    ("GET", "/json?items=0", None),
    ("GET", "/json?items=x", None),
    ("POST", "/echo", b'{"a":[1,2.5,"x"],"b":null,"c":{"d":true}}'),
    ("POST", "/echo", b'{"a":1,'),
    ("GET", "/stall?ms=0", None),
    ("GET", "/nope", None),
    ("POST", "/health", None),
]

# Any request not listed here must answer 200.
_REFUSED = {
    "GET /io?ms=-1": 422,
    "GET /io?ms=abc": 422,
    "GET /io?ms=nan": 422,
    "GET /io?ms=99999": 422,
    "GET /io?dist=weird": 422,
    "GET /cpu?work=-5": 422,
    "GET /cpu?work=2000000": 422,
    "GET /json?items=x": 422,
    "POST /echo {bad JSON}": 400,
    "GET /nope": 404,
    "POST /health": 405,
}

IO_PATH = "/io?ms=50"
IO_BASELINE_PATH = "/io?ms=0"
IO_EXPECTED_MS = 50.0
IO_TOLERANCE = 0.10
IO_SAMPLES = 10
REQUEST_TIMEOUT_S = 10.0
JSON_TYPE = "application/json"


def label(request: Request) -> str:
    """How a request is named in problems: ``GET /io?ms=abc``, ``POST /echo {JSON}``."""
    method, path, body = request
    if body is None:
        return f"{method} {path}"
    try:
        json.loads(body)
    except ValueError:
        return f"{method} {path} {{bad JSON}}"
    return f"{method} {path} {{JSON}}"


EXPECTED_STATUS: dict[str, int] = {label(r): _REFUSED.get(label(r), 200) for r in REQUESTS}

# The real-I/O routes' probes, by the variable that gives the address of the service they
# need, each with the status it must get.
REAL_IO_REQUESTS: dict[str, list[tuple[Request, int]]] = {
    common.ENV_DATABASE_DSN: [
        (("GET", "/db?ms=0", None), 200),
        (("GET", "/db?ms=5", None), 200),
        (("GET", "/db?ms=-1", None), 422),
        (("GET", "/db?ms=abc", None), 422),
        (("GET", "/db?ms=99999", None), 422),
        (("GET", "/db/items?id=42", None), 200),
        (("GET", "/db/items?id=10000", None), 200),
        (("GET", "/db/items?id=0", None), 404),
        (("GET", "/db/items?id=x", None), 422),
        (("GET", "/db/items", None), 422),
    ],
    common.ENV_UPSTREAM_URL: [
        (("GET", "/upstream?ms=0", None), 200),
        (("GET", "/upstream?ms=5", None), 200),
        (("GET", "/upstream?ms=-1", None), 422),
        (("GET", "/upstream?ms=99999", None), 422),
    ],
}
DB_PATH = "/db?ms=50"
DB_BASELINE_PATH = "/db?ms=0"


@dataclass
class VerifyResult:
    target: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    io_ms: float | None = None  # median wall time of /io?ms=50 beyond that of /io?ms=0
    # median wall time of /io?ms=0, one request at a time: the round trip and the framework's
    # own cost of a request that does not wait (connection set-up included)
    io_overhead_ms: float | None = None
    io_expected_ms: float = IO_EXPECTED_MS
    checked: int = 0  # requests answered (of REQUESTS, and of REAL_IO_REQUESTS when asked)
    requests: int = len(REQUESTS)  # requests asked
    db_ms: float | None = None  # median wall time of /db?ms=50 beyond that of /db?ms=0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class CheckError(RuntimeError):
    """A request that got no answer, or a timing request that did not answer 200."""


def _send(
    url: str, request: Request, http: str = "1.1", ca_file: Path | None = None
) -> tuple[int, str, bytes]:
    """One request over ``http`` (TLS trusting ``ca_file`` for an https URL)."""
    method, path, body = request
    headers = {"Content-Type": JSON_TYPE} if body is not None else {}
    try:
        reply = client.fetch(
            url,
            method,
            path,
            body,
            headers,
            http=http,
            ca_file=ca_file,
            timeout_s=REQUEST_TIMEOUT_S,
        )
    except client.FetchError as exc:
        raise CheckError(f"{label(request)}: no answer ({exc.__cause__ or exc!r})") from None
    expected = client.HTTP_2 if http == "2" else client.HTTP_1_1
    if reply.http_version != expected:
        raise CheckError(
            f"{label(request)}: answered over {reply.http_version}, expected {expected}"
        )
    return reply.status, reply.content_type, reply.body


def check_server(
    url: str, http: str = "1.1", ca_file: Path | None = None
) -> tuple[list[Answer], float, float]:
    """Send every request of REQUESTS, then time /io?ms=50 and /io?ms=0 one at a time, over
    ``http`` (and TLS trusting ``ca_file`` for an https URL).

    Returns the answers, the wait /io?ms=50 adds and the overhead, in ms. The overhead is the
    median wall time of /io?ms=0 (round trip, connection set-up and framework cost of a
    request that does not wait); the wait is the median wall time of /io?ms=50 minus it, so
    that overhead (and a busy machine) does not count against the route's own latency.
    """
    answers = [(label(r), *_send(url, r, http, ca_file)) for r in REQUESTS]
    waited = _median_ms(url, IO_PATH, http, ca_file)
    overhead = _median_ms(url, IO_BASELINE_PATH, http, ca_file)
    return answers, waited - overhead, overhead


# The real-I/O services for the verify gate: the arguments of ``Target.environment``
# (``database_dsn``, ``upstream_url``; empty or None: not there), or a function giving each
# target's variables (``Services.environment``).
Environment = Mapping[str, "str | None"] | Callable[[Target], Mapping[str, str]]


def server_environment(target: Target, environment: Environment | None) -> dict[str, str]:
    """The GATEBENCH_* variables ``target``'s server starts with (empty: none)."""
    if environment is None:
        return {}
    if callable(environment):
        return dict(environment(target))
    return target.environment(
        database_dsn=environment.get("database_dsn"), upstream_url=environment.get("upstream_url")
    )


def real_io_requests(target: Target, env: Mapping[str, str]) -> list[Request]:
    """The real-I/O probes for ``target`` started with ``env``: none unless it serves the
    routes, then those of each service whose address ``env`` gives."""
    if not target.serves_real_io:
        return []
    return [r for key, pairs in REAL_IO_REQUESTS.items() if env.get(key) for r, _ in pairs]


def real_io_expected(requests: list[Request]) -> dict[str, int]:
    expected = {label(r): status for pairs in REAL_IO_REQUESTS.values() for r, status in pairs}
    return {label(r): expected[label(r)] for r in requests}


def check_real_io(
    url: str, requests: list[Request], http: str = "1.1", ca_file: Path | None = None
) -> tuple[list[Answer], float | None]:
    """Send the real-I/O probes, then (with the database) time /db?ms=50 and /db?ms=0 one at a
    time: the answers and the wait /db?ms=50 adds (None without the database)."""
    answers = [(label(r), *_send(url, r, http, ca_file)) for r in requests]
    waited = None
    if any(path.startswith(DB_BASELINE_PATH) for _, path, _ in requests):
        waited = _median_ms(url, DB_PATH, http, ca_file) - _median_ms(
            url, DB_BASELINE_PATH, http, ca_file
        )
    return answers, waited


def _median_ms(url: str, path: str, http: str = "1.1", ca_file: Path | None = None) -> float:
    """Median wall time of ``GET path``, one request at a time. Over TLS and HTTP/2 on one kept
    connection, opened by a first request that is not timed (``client.kept_connection``): the
    run's users pay a handshake once per connection, not per request."""
    times_ms = []
    try:
        with client.kept_connection(url, http=http, ca_file=ca_file) as send:
            if url.startswith("https://") or http == "2":
                send("GET", path)  # the connection and its TLS handshake
            for _ in range(IO_SAMPLES):
                started = time.perf_counter()
                status = send("GET", path).status
                times_ms.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    raise CheckError(f"GET {path}: status {status}, expected 200")
    except client.FetchError as exc:
        raise CheckError(f"GET {path}: no answer ({exc})") from None
    return statistics.median(times_ms)


def shorten_pair(a: bytes | str, b: bytes | str, width: int = 60) -> tuple[str, str]:
    """Both values as reprs of at most ~width characters, starting near their first difference."""
    ra, rb = repr(a), repr(b)
    same = next((i for i, (x, y) in enumerate(zip(ra, rb, strict=False)) if x != y), len(ra))
    start = max(0, same - width // 3)

    def cut(text: str) -> str:
        piece = text[start : start + width]
        return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")

    return cut(ra), cut(rb)


def compare(answers: list[Answer], reference: list[Answer], reference_name: str) -> list[str]:
    """Problems where answers differ from the reference's: request, field, both values."""
    problems = []
    theirs = {answer[0]: answer for answer in reference}
    for name, status, content_type, body in answers:
        if name not in theirs:
            problems.append(f"{name}: the reference {reference_name} has no answer to compare")
            continue
        _, ref_status, ref_type, ref_body = theirs[name]
        fields: list[tuple[str, bytes | str | int, bytes | str | int]] = [
            ("status", status, ref_status),
            ("content-type", content_type, ref_type),
            ("body", body, ref_body),
        ]
        for what, mine, ref in fields:
            if mine == ref:
                continue
            if isinstance(mine, int) or isinstance(ref, int):
                shown = (str(mine), str(ref))
            else:
                shown = shorten_pair(mine, ref)
            problems.append(f"{name}: {what} {shown[0]} vs {shown[1]} (reference {reference_name})")
    return problems


def expectation_problems(
    answers: list[Answer], expected_status: Mapping[str, int] = EXPECTED_STATUS
) -> list[str]:
    """Problems with answers on their own: wrong status, not JSON, missing requests."""
    problems = []
    seen = set()
    for name, status, content_type, _body in answers:
        seen.add(name)
        expected = expected_status.get(name)
        if expected is not None and status != expected:
            problems.append(f"{name}: status {status}, expected {expected}")
        if content_type.split(";")[0].strip() != JSON_TYPE:
            problems.append(f"{name}: content-type {content_type!r}, expected {JSON_TYPE!r}")
    problems += [f"{name}: not answered" for name in expected_status if name not in seen]
    return problems


def io_problem(io_ms: float, path: str = IO_PATH, baseline: str = IO_BASELINE_PATH) -> str | None:
    low, high = IO_EXPECTED_MS * (1 - IO_TOLERANCE), IO_EXPECTED_MS * (1 + IO_TOLERANCE)
    if low <= io_ms <= high:
        return None
    return (
        f"{path} waited {io_ms:.1f} ms (median, beyond {baseline}), "
        f"expected {IO_EXPECTED_MS:.0f} ms ±{IO_TOLERANCE:.0%}"
    )


def _serve(
    target: Target,
    log: Path,
    server_cpus: Sequence[int] | None,
    env: dict[str, str],
    tls: Certificate | None,
) -> contextlib.AbstractContextManager[Server]:
    if is_external(target):
        return attach(target)
    # Only what is given: a plain server of the plain routes starts exactly as before.
    options: _ServeOptions = {}
    if env:
        options["env"] = env
    if tls is not None:
        options["tls"] = tls
    return serve(target, log, server_cpus, background_stop=True, **options)


class _ServeOptions(TypedDict, total=False):
    env: dict[str, str]
    tls: Certificate


class _Protocol(TypedDict, total=False):
    """How a target is asked, when not in plain HTTP/1.1 (``check_server``'s arguments)."""

    http: str
    ca_file: Path | None


def _protocol(target: Target, tls: Certificate | None) -> _Protocol:
    if is_external(target) and target.tls:  # an https --url: its own CA (--ca)
        return {"http": target.http, "ca_file": getattr(target, "ca_file", None)}
    if target.http == "1.1" and tls is None:
        return {}  # plain HTTP/1.1: asked exactly as before
    return {"http": target.http, "ca_file": None if tls is None else tls.ca_file}


def verify_targets(
    targets: list[Target],
    log_dir: Path,
    server_cpus: Sequence[int] | None,
    environment: Environment | None = None,
    tls: Certificate | None = None,
) -> dict[str, VerifyResult]:
    """Start each target in turn, probe it, then judge all of them; keyed by target name.

    ``environment``: the real-I/O services, as the arguments of ``Target.environment``
    (``{"database_dsn": ..., "upstream_url": ...}``, empty for a service not there) or a
    function giving a target's variables (``Services.environment``); None: no real-I/O
    checks, and servers start without their variables.

    ``tls``: the run's certificate, which the targets whose row always serves TLS are served
    and checked with; without one, and such a target among ``targets``, a certificate is made
    for the gate alone in ``log_dir/tls``. Every other target is checked as its row says, in
    plain text."""
    if tls is None and any(t.tls and not is_external(t) for t in targets):
        tls = make_certificate(log_dir / "tls")
    results: dict[str, VerifyResult] = {}
    answers: dict[str, list[Answer]] = {}
    real_io: dict[str, list[Answer]] = {}
    asked: dict[str, list[Request]] = {}  # the real-I/O probes of each target
    for target in targets:
        result = results[target.name] = VerifyResult(target.name, passed=False)
        env = server_environment(target, environment)
        extra = asked[target.name] = real_io_requests(target, env)
        result.requests = len(REQUESTS) + len(extra)
        certificate = tls if target.tls and not is_external(target) else None
        protocol = _protocol(target, certificate)
        try:
            log = log_dir / f"verify__{target.name}.log"
            with _serve(target, log, server_cpus, env, certificate) as server:
                wait_stopped()  # the previous target is gone before this one is timed
                try:
                    answered, result.io_ms, result.io_overhead_ms = check_server(
                        server.url, **protocol
                    )
                    answers[target.name] = answered
                    if extra:
                        real_io[target.name], result.db_ms = check_real_io(
                            server.url, extra, **protocol
                        )
                except CheckError as exc:
                    where = f"; see its log {server.log_path}" if server.log_path else ""
                    result.problems.append(f"{exc}{where}")
        except (ServerError, OSError) as exc:  # OSError: the server could not be launched
            result.problems.append(str(exc))
    wait_stopped()
    reference = next(iter(answers), None)
    real_io_reference = next(iter(real_io), None)  # the first target with real-I/O answers
    for name, result in results.items():
        got = answers.get(name)
        if got is not None:
            result.checked = len(got)
            if name != reference and reference is not None:
                result.problems += compare(got, answers[reference], reference)
            result.problems += expectation_problems(got)
        got_real = real_io.get(name)
        if got_real is not None:
            result.checked += len(got_real)
            if name != real_io_reference and real_io_reference is not None:
                result.problems += compare(got_real, real_io[real_io_reference], real_io_reference)
            result.problems += expectation_problems(got_real, real_io_expected(asked[name]))
        if result.io_ms is not None and (problem := io_problem(result.io_ms)):
            result.problems.append(problem)
        if result.db_ms is not None and (
            problem := io_problem(result.db_ms, DB_PATH, DB_BASELINE_PATH)
        ):
            result.problems.append(problem)
        result.passed = not result.problems
    return results


def format_results(results: dict[str, VerifyResult]) -> str:
    """One line per target (PASS/FAIL, /io median), its problems indented below."""
    width = max((len(name) for name in results), default=0)
    lines = []
    for name, result in results.items():
        verdict = "PASS" if result.passed else "FAIL"
        io = "not measured" if result.io_ms is None else f"waits {result.io_ms:.1f} ms"
        overhead = (
            ""
            if result.io_overhead_ms is None
            else f"  ({IO_BASELINE_PATH} takes {result.io_overhead_ms:.1f} ms)"
        )
        lines.append(
            f"{verdict}  {name:<{width}}  {IO_PATH} {io} "
            f"(expected {result.io_expected_ms:.0f})  {result.checked}/{result.requests} requests"
            f"{overhead}"
            + ("" if result.db_ms is None else f"  {DB_PATH} waits {result.db_ms:.1f} ms")
        )
        for problem in result.problems:
            first, *rest = problem.splitlines() or [""]
            lines += ["      - " + first, *("        " + line for line in rest)]
    return "\n".join(lines)
