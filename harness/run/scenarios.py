"""Scenario discovery: find the locustfiles in ``scenarios/`` and validate what they declare.

A scenario is any ``scenarios/*.py`` not starting with ``_``. Its docstring is its
description; an optional module-level ``settings`` dict may set:

- ``users``: list of positive ints, the closed-load sweep;
- ``service_time_ms``: the expected server-side time of one request (for Little's law);
- ``slot_time_ms``: how long one request holds a server slot when that is not what the client
  waits (work done after the response: ``/background``); the slots ceiling uses it;
- ``duration``: seconds per cell (number, or text such as "10s", "2m");
- ``warmup``: seconds of warm-up per cell, excluded from every figure;
- ``needs``: a service the harness must start for it, ``"database"`` (a seeded PostgreSQL,
  ``harness.run.database``) or ``"upstream"`` (an HTTP service, ``harness.run.upstream``); its
  cells run only on targets that serve the real-I/O routes;
- ``connection``: how the users reuse connections, ``"keep-alive"`` (the default), ``"close"``
  (a new connection, with its TCP and TLS handshakes, for every request) or ``"every N"``
  (``harness.loadgen.link``);
- ``tls``: ``True`` to serve every target of the scenario over TLS with the run's certificate
  (targets whose row says ``tls`` always do);
- ``http``: the HTTP versions its users speak, ``["1.1"]`` (the default, locust's FastHttpUser)
  or ``["1.1", "2"]`` (``harness.loadgen.h2``); its cells run only on targets whose row's
  ``http`` is one of them;
- ``streams``: requests each HTTP/2 user keeps in flight over its one connection.

Files are imported by ``harness.loadgen.probe`` in a subprocess, never here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.loadgen import PROBE_MODULE
from harness.loadgen.link import HTTP_VERSIONS, KEEP_ALIVE, requests_per_connection
from harness.run import PROJECT_ROOT
from harness.units import UsageError, parse_duration

# GATEBENCH_SCENARIOS points discovery at another folder of locustfiles (tests use it too).
SCENARIO_DIR = Path(os.environ.get("GATEBENCH_SCENARIOS") or PROJECT_ROOT / "scenarios")
PROBE_TIMEOUT_S = 120.0
SETTINGS_KEYS = (
    "users", "service_time_ms", "slot_time_ms", "duration", "warmup", "needs",
    "connection", "tls", "http", "streams",
)  # fmt: skip
SERVICES = ("database", "upstream")  # what a scenario may need (settings "needs")


class ScenarioError(UsageError):
    """A scenario file that cannot be run; the message names the file and the problem."""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    description: str
    user_classes: tuple[str, ...]
    users: tuple[int, ...] | None = None
    service_time_ms: float | None = None
    slot_time_ms: float | None = None
    duration_s: float | None = None
    warmup_s: float | None = None
    sha256: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    open_problem: str | None = None  # why open-model load cannot run it, if it cannot
    # Its users hold long-lived connections (SSE, WebSocket): every cell gets a fresh server,
    # so the memory a cell's connections cost is measured from a server holding none.
    holds_connections: bool = False
    needs: str | None = None  # a service the harness starts for it (SERVICES), if any
    connection: str = KEEP_ALIVE  # settings "connection" (harness.loadgen.link)
    tls: bool = False  # settings "tls": every target serves TLS for it
    http: tuple[str, ...] = ("1.1",)  # HTTP versions its users speak
    streams: int = 1  # requests an HTTP/2 user keeps in flight

    @property
    def summary(self) -> str:
        """The first line of the docstring."""
        return self.description.strip().splitlines()[0] if self.description.strip() else ""

    def to_dict(self) -> dict[str, Any]:
        try:
            shown = self.path.resolve().relative_to(PROJECT_ROOT)
        except ValueError:
            shown = self.path
        return {
            "file": str(shown),
            "sha256": self.sha256,
            "description": self.description,
            "user_classes": list(self.user_classes),
            "settings": self.settings,
            "holds_connections": self.holds_connections,
            "needs": self.needs,
        }


def shown_folder(directory: Path) -> str:
    """The folder as the user knows it: relative to the checkout when inside it."""
    try:
        return str(directory.resolve().relative_to(PROJECT_ROOT.resolve()))
    except ValueError:
        return str(directory)


def scenario_files(directory: Path = SCENARIO_DIR) -> list[Path]:
    if not directory.is_dir():
        raise ScenarioError(f"scenario folder {directory} does not exist")
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def probe(paths: list[Path]) -> list[dict[str, Any]]:
    """Import the files in a subprocess (locust must not load here) and return its reports."""
    if not paths:
        return []
    argv = [sys.executable, "-m", PROBE_MODULE, *[str(p) for p in paths]]
    names = ", ".join(p.name for p in paths)
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ScenarioError(
            f"importing the scenario files ({names}) took over {PROBE_TIMEOUT_S:.0f} s; "
            "does one of them do work at import time?"
        ) from None
    try:
        reports: list[dict[str, Any]] = json.loads(done.stdout)
    except ValueError:
        reports = []
    if done.returncode != 0 or len(reports) != len(paths):
        raise ScenarioError(
            f"importing the scenario files ({names}) failed: {done.stderr.strip()[-2000:]}"
        )
    return reports


def discover(directory: Path = SCENARIO_DIR) -> tuple[dict[str, Scenario], dict[str, str]]:
    """Every scenario in the folder by name, and the broken files' errors by name."""
    paths = scenario_files(directory)
    scenarios: dict[str, Scenario] = {}
    broken: dict[str, str] = {}
    for path, report in zip(paths, probe(paths), strict=True):
        try:
            scenarios[path.stem] = from_report(path, report)
        except ScenarioError as exc:
            broken[path.stem] = str(exc)
    return scenarios, broken


def from_report(path: Path, report: dict[str, Any]) -> Scenario:
    def fail(problem: str) -> ScenarioError:
        return ScenarioError(f"scenario file {path}: {problem}")

    if report.get("error"):
        raise fail(report["error"])
    if not report["user_classes"]:
        raise fail("declares no locust User class (e.g. class MyUser(FastHttpUser) with a @task)")
    if report["hosts"]:
        raise fail(
            "hard-codes a host (" + "; ".join(report["hosts"]) + "); the harness passes it, "
            "remove the host attribute"
        )
    settings = report.get("settings")
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise fail(f"settings must be a dict, got {settings}")
    unknown = sorted(set(settings) - set(SETTINGS_KEYS))
    if unknown:
        raise fail(
            f"unknown settings key(s) {', '.join(unknown)}; known: {', '.join(SETTINGS_KEYS)}"
        )
    try:
        users = _users(settings.get("users"))
        service = _positive(settings.get("service_time_ms"), "service_time_ms")
        slot_time = _positive(settings.get("slot_time_ms"), "slot_time_ms")
        duration = _duration(settings, "duration")
        warmup = _duration(settings, "warmup", zero_ok=True)
        needs = settings.get("needs")
        if needs is not None and needs not in SERVICES:
            raise ValueError(f"needs must be one of {', '.join(SERVICES)}, got {needs!r}")
        connection = str(settings.get("connection", KEEP_ALIVE)).strip().lower()
        try:
            requests_per_connection(settings.get("connection", KEEP_ALIVE))
        except ValueError as exc:
            raise ValueError(f"connection: {exc}") from None
        tls = settings.get("tls", False)
        if not isinstance(tls, bool):
            raise ValueError(f"tls must be true or false, got {tls!r}")
        http = _http(settings.get("http"))
        streams = _positive(settings.get("streams"), "streams")
        if streams is not None and streams != int(streams):
            raise ValueError(f"streams must be a whole number, got {settings['streams']!r}")
    except ValueError as exc:
        raise fail(f"invalid settings: {exc}") from None
    return Scenario(
        name=path.stem,
        path=path,
        description=(report.get("doc") or "").strip(),
        user_classes=tuple(report["user_classes"]),
        users=users,
        service_time_ms=service,
        slot_time_ms=slot_time,
        duration_s=duration,
        warmup_s=warmup,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        settings=settings,
        open_problem=report.get("open_problem"),
        holds_connections=bool(report.get("holds_connections")),
        needs=needs,
        connection=connection,
        tls=tls,
        http=http,
        streams=1 if streams is None else int(streams),
    )


def _http(value: Any) -> tuple[str, ...]:
    if value is None:
        return ("1.1",)
    if not isinstance(value, list) or not value or any(v not in HTTP_VERSIONS for v in value):
        raise ValueError(
            f"http must be a list of HTTP versions from {list(HTTP_VERSIONS)}, got {value!r}"
        )
    return tuple(dict.fromkeys(value))


def _users(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ValueError(f"users must be a non-empty list of positive whole numbers, got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValueError(f"users must be positive whole numbers, got {item!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"users {value!r} repeats a user count")
    return tuple(value)


def _duration(settings: dict[str, Any], key: str, zero_ok: bool = False) -> float | None:
    """settings[key] in seconds; an error names the key ("warmup: -1 must be ...")."""
    if key not in settings:
        return None
    try:
        return parse_duration(settings[key], zero_ok=zero_ok)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(f"{key}: {message.removeprefix('duration ')}") from None


def _positive(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{key} must be a positive number, got {value!r}")
    return float(value)
