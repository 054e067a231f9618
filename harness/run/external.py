"""External targets: ``run --url`` benchmarks a server gatebench did not start.

Everything about such a target is here: checking the URL (``parse_url``: plain http, a host
and a port, a loopback host unless remote hosts are allowed), the target entry a run records
(``ExternalTarget``, named ``EXTERNAL_NAME``), attaching to it instead of starting a server
(``attach``, where the runner, the verify gate and calibration would ``serve`` it),
and the sampler roles of a server that may have no process of ours (``sampled_roles``).

An attached server has no pid: its CPU and memory are not measured (the summary's server
columns stay empty and the report says why), nothing is pinned and no log is written. Its
``alive()`` is a cheap TCP connect, so a server that goes away fails its remaining cells.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.run import client
from harness.run.plan import RunOptions, apply_overrides
from harness.run.servers import RunningServer, ServerError, accepts
from harness.units import UsageError
from targets.registry import TARGETS, Target, TlsFiles

EXTERNAL_NAME = "external"  # the target's name in cell ids, the summary and the report
INTERFACES = ("wsgi", "asgi")
UNKNOWN = "unknown"  # interface, server and framework of a target described by nobody
PROBE_TIMEOUT_S = 2.0
HEALTH_TIMEOUT_S = 5.0


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def parse_url(url: str, allow_remote: bool = False) -> str:
    """``http://HOST:PORT`` checked and normalised (no trailing slash); a UsageError otherwise.

    A host that is not loopback (127.0.0.0/8, ::1, or a name resolving only to those) needs
    ``allow_remote``: nobody loads a production host by a typo.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--url {url}: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"--url {url}: expected http://HOST:PORT or https://HOST:PORT")
    host = parts.hostname
    if not host or port is None or port == 0:
        raise UsageError(f"--url {url}: expected http://HOST:PORT with both host and port")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise UsageError(
            f"--url {url}: expected http://HOST:PORT only (the scenarios add the paths)"
        )
    if not allow_remote:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, port)}
        except (OSError, UnicodeError):
            raise UsageError(
                f"--url {url}: host {host} does not resolve; to load a remote host on "
                "purpose add --allow-remote"
            ) from None
        if not addresses or not all(_loopback(str(a)) for a in addresses):
            raise UsageError(
                f"--url {url}: host {host} is not this machine (loopback); to load a remote "
                "host on purpose add --allow-remote"
            )
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}"


@dataclass(frozen=True)
class ExternalTarget(Target):
    """A server at ``url`` that gatebench did not start: it never gets a command."""

    url: str = ""
    given_slots: int | None = None  # --slots: requests it holds at once, if the user knows
    ca_file: Path | None = None  # https: the CA its certificate chains to (--ca)

    def __post_init__(self) -> None:  # its concurrency is unknown: no CONCURRENCY check
        return

    @property
    def slots(self) -> int | None:
        return self.given_slots

    def command(self, host: str, port: int, tls: TlsFiles | None = None) -> list[str]:
        raise ServerError(f"target {self.name} at {self.url} was not started by gatebench")

    @property
    def tls_on_demand(self) -> bool:
        return False  # it serves TLS or not as it was started

    def settings(self) -> dict[str, object]:
        ca = None if self.ca_file is None else str(self.ca_file)
        return {**super().settings(), "url": self.url, "external": True, "ca_file": ca}


def external_target(
    url: str,
    slots: int | None = None,
    interface: str | None = None,
    http: str = "1.1",
    ca_file: str | None = None,
) -> Target:
    """The target entry of ``run --url``; interface "unknown" unless given (then it stays out
    of the ASGI/WSGI ratios, which pair "asgi" with "wsgi" targets only). An https URL serves
    TLS, verified against ``ca_file``; ``http`` is the version it speaks (--http)."""
    bound = f"{slots} requests at once (--slots)" if slots else "slots unknown (no --slots)"
    return ExternalTarget(
        name=EXTERNAL_NAME,
        app=UNKNOWN,
        server=UNKNOWN,
        framework=UNKNOWN,
        interface=interface or UNKNOWN,
        worker_class=UNKNOWN,
        workers=1,  # as far as the harness knows; only read for a server CPU budget
        threads=1,
        concurrency=UNKNOWN,
        description=f"a server at {url}, not started by gatebench: {bound}",
        url=url,
        given_slots=slots,
        http=http,
        tls=url.startswith("https://"),
        ca_file=None if ca_file is None else Path(ca_file),
    )


def run_targets(options: RunOptions) -> dict[str, Target]:
    """The targets a run may use: the external one alone with --url, else the registry's
    (with the run's --set overrides)."""
    if options.url is not None:
        target = external_target(
            options.url, options.slots, options.interface, options.url_http, options.url_ca
        )
        return {target.name: target}
    return apply_overrides(TARGETS, options.overrides)


class AttachedServer:
    """A server gatebench did not start, at the target's URL: no process, no log."""

    pid: int | None = None
    log_path: Path | None = None

    def __init__(self, target: ExternalTarget) -> None:
        self.target = target
        self.url = target.url
        parts = urllib.parse.urlsplit(self.url)
        self.host = parts.hostname or ""
        self.port = int(parts.port or (443 if parts.scheme == "https" else 80))
        self.tls = target.tls
        self.http = target.http
        self.ca_file = target.ca_file  # https: the users trust this CA (--ca)
        self.ca_pem = read_ca(target.ca_file) if target.ca_file is not None else None

    def alive(self) -> bool:
        """Whether it still accepts connections (a TCP connect, no request)."""
        return accepts(self.host, self.port, PROBE_TIMEOUT_S)

    def stop(self, background: bool = False) -> None:
        """Nothing to stop: gatebench did not start it."""


Server = RunningServer | AttachedServer


def is_external(target: Target) -> bool:
    return isinstance(target, ExternalTarget)


@contextlib.contextmanager
def attach(target: Target) -> Iterator[AttachedServer]:
    """The external server, once its ``/health`` answers 200 (else a one-line ServerError).
    Where gatebench would ``serve`` a target, it attaches to an external one instead."""
    if not isinstance(target, ExternalTarget):
        raise TypeError(f"target {target.name} is not external: serve it")
    url = f"{target.url}/health"
    try:
        status = client.fetch(
            target.url, "GET", "/health", http=target.http, ca_file=target.ca_file,
            timeout_s=HEALTH_TIMEOUT_S,
        ).status  # fmt: skip
    except OSError as exc:
        reason = exc.__cause__ or exc
        raise ServerError(f"the server at {target.url} does not answer ({reason})") from None
    if status != 200:
        raise ServerError(f"the server at {target.url} answered {url} with HTTP {status}")
    yield AttachedServer(target)


def read_ca(path: Path) -> str:
    """The PEM text of an https --url's CA (--ca), or a one-line UsageError."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--ca {path}: cannot be read ({exc})") from None
    if "BEGIN CERTIFICATE" not in text:
        raise UsageError(f"--ca {path}: not a PEM certificate (no BEGIN CERTIFICATE)")
    return text


def sampled_roles(server: Server, generator_pids: int | list[int]) -> dict[str, int | list[int]]:
    """The sampler's tree roles: the server only when it is a process of ours; the generator's
    processes (a locust master and its local workers)."""
    roles: dict[str, int | list[int]] = {"generator": generator_pids}
    if server.pid is not None:
        roles = {"server": server.pid, **roles}
    return roles
