"""Starting and stopping target servers: free port, CPU pinning, readiness, clean shutdown.

A server runs in its own session (process group) so that it and every worker it forks can
be ended together; its output goes to a log file whose path every error names. Nothing
outlives the harness, even one killed with SIGKILL: each child gets SIGTERM when the harness
dies (Linux's parent-death signal), and a watchdog ends each group whole (``reaper``).

Ready means more than a first answer: ``/health`` answers 200 once *one* worker is up, when
others may still be importing the app. ``serve`` also waits until the server's process tree
holds every worker the target declares (``process_layout``: how each server runs its
workers) and the tree's memory has settled, so nothing is measured on a half-started server.

A server is asked in its clients' protocol (``harness.run.client``): HTTP/2 for a row whose
``http`` is "2", TLS with the run's certificate (``harness.run.tls``) for a row that always
serves TLS or when the caller passes one; its URL is then ``https://``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.run import PROJECT_ROOT, client, reaper
from harness.run.tls import Certificate
from targets.registry import Target

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
READY_POLL_S = 0.02
SETTLE_INTERVAL_S = 0.1  # memory is compared between samples this far apart...
SETTLE_TOLERANCE = 0.01  # ... and has settled when no process's RSS (nor the total) moved more


# Every process group this process started and has not stopped yet. A Ctrl-C can land
# between a Popen and the code that would own it; stop_all() ends whatever is left.
_started: set[subprocess.Popen[bytes]] = set()


class ServerError(RuntimeError):
    """A target server that would not start or answer; the message names its log."""


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Loaded here, never in a forked child (loading a library there is unsafe); None off Linux.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def accepts(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port (a connect, no request)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def pinned(cpus: Sequence[int] | None) -> Callable[[], None]:
    """A preexec function: pin the child (and all it forks) to ``cpus``, let it open as many
    files as the system allows (thousands of held connections need a descriptor each), and
    have it receive SIGTERM when this process dies, even by SIGKILL.

    The kernel sends the parent-death signal when the *thread* that forked the child ends,
    not the process. Every child is started from the main thread (the runner, calibration,
    the verify gate, ``serve``, the locust generators, ``harness serve`` and ``harness
    worker`` all run there; the background threads only stop servers, sample or pause
    them), and the main thread lives as long as the process. Should a child ever be started
    from another thread, it gets no parent-death signal, which could end it with that
    thread; the watchdog (``reaper``) still ends it when the process dies.
    """
    chosen = set(cpus) if cpus else None
    parent = os.getpid()
    on_main_thread = threading.current_thread() is threading.main_thread()
    libc = _LIBC if on_main_thread else None  # None: no parent-death signal

    def prepare() -> None:
        if chosen:
            os.sched_setaffinity(0, chosen)
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl: no signal will come
                os._exit(1)

    return prepare


def start_process(
    argv: list[str],
    log_path: Path,
    cpus: Sequence[int] | None,
    env: dict[str, str] | None = None,
    stderr_path: Path | None = None,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start argv in its own session, pinned; stdout (and stderr, unless given) to log_path.
    ``user``/``group``: run it as that uid/gid, without supplementary groups (PostgreSQL,
    which refuses to run as root)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as files:
        log = files.enter_context(open(log_path, "ab"))
        errors = files.enter_context(open(stderr_path, "ab")) if stderr_path else None
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=errors if errors is not None else subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=pinned(cpus),
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
        )
        _started.add(proc)
        reaper.watch(proc.pid)  # its session's group id is its pid
        return proc


def stop_all() -> None:
    """Stop every process group started here and not stopped yet (after an interrupt)."""
    for proc in list(_started):
        stop_process(proc)
    wait_stopped()


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process group, then SIGKILL what is left after timeout_s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
    # Workers may outlive their master; the group id is the leader's pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout_s)
    reaper.forget(proc.pid)
    _started.discard(proc)  # only now: an interrupt meanwhile still finds it in stop_all


# Servers being stopped in the background (a gunicorn takes most of a second to go).
_stopping: list[threading.Thread] = []


def stop_in_background(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process group while the caller goes on; ``wait_stopped`` waits for it."""
    thread = threading.Thread(target=stop_process, args=(proc,), name="gatebench-stop")
    thread.start()
    _stopping.append(thread)


def wait_stopped() -> None:
    """Return once every background stop has finished (before anything is measured)."""
    while _stopping:
        _stopping.pop().join()


def wait_ready(
    url: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    name: str,
    *,
    http: str = "1.1",
    ca_file: Path | None = None,
) -> float:
    """Poll ``url``/health until it answers 200, over ``http`` (and TLS trusting ``ca_file``
    for an https URL); return seconds waited."""
    started = time.monotonic()
    last_error = "no answer"
    while time.monotonic() - started < READY_TIMEOUT_S:
        if proc.poll() is not None:
            raise ServerError(
                f"target {name} exited with status {proc.returncode} before it was ready; "
                f"see its log {log_path}{_log_tail(log_path)}"
            )
        try:
            reply = client.fetch(url, "GET", "/health", http=http, ca_file=ca_file, timeout_s=2)
            if reply.status == 200:
                return time.monotonic() - started
            last_error = f"HTTP {reply.status}"
        except OSError as exc:  # client.FetchError
            last_error = str(exc)
        time.sleep(READY_POLL_S)
    raise ServerError(
        f"target {name} did not answer {url}/health within {READY_TIMEOUT_S:.0f} s "
        f"({last_error}); see its log {log_path}{_log_tail(log_path)}"
    )


# How each server (``Target.server``) runs its workers:
#   "master"             a master process plus one process per worker, even for one worker
#                        (gunicorn forks its workers; granian always runs a worker process;
#                        hypercorn spawns its workers through multiprocessing, with its
#                        resource tracker as a helper: with --workers 1 its tree is the
#                        master, one worker and the tracker)
#   "master-if-several"  one process for one worker; for more, a master that spawns them
#                        (uvicorn --workers N, which also starts multiprocessing's resource
#                        tracker: a helper, not a worker, see HELPER_MARKERS)
#   "single"             one process whatever the worker count (daphne has no workers)
# A server missing here is taken as "master-if-several".
SERVER_LAYOUTS: dict[str, str] = {
    "gunicorn": "master",
    "granian": "master",
    "hypercorn": "master",
    "uvicorn": "master-if-several",
    "daphne": "single",
}
# Command-line fragments of processes a server starts that serve no requests.
HELPER_MARKERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


@dataclass(frozen=True)
class ProcessLayout:
    """What a running target's process tree holds: a master (or not) and its workers."""

    master: bool  # a parent process that only manages the workers
    workers: int  # processes that serve requests

    @property
    def processes(self) -> int:
        """Processes of the tree, helpers (HELPER_MARKERS) left out."""
        return self.workers + int(self.master)


def process_layout(target: Target) -> ProcessLayout:
    """How many processes ``target`` runs, and whether one of them is a master."""
    kind = SERVER_LAYOUTS.get(target.server, "master-if-several")
    if kind == "single":
        return ProcessLayout(master=False, workers=1)
    if kind == "master-if-several" and target.workers == 1:
        return ProcessLayout(master=False, workers=1)
    return ProcessLayout(master=True, workers=target.workers)


def expected_processes(target: Target) -> int:
    """How many processes (helpers left out) the target's server runs once it is ready."""
    return process_layout(target).processes


def _is_helper(proc: psutil.Process) -> bool:
    try:
        line = " ".join(proc.cmdline())
    except psutil.Error:
        return False
    return any(marker in line for marker in HELPER_MARKERS)


def worker_processes(root_pid: int, layout: ProcessLayout) -> list[psutil.Process]:
    """The processes of a server tree that serve requests, oldest first ([]: root gone).

    For a server with a master these are the master's children but helpers; otherwise
    the root process itself.
    """
    try:
        root = psutil.Process(root_pid)
        if not layout.master:
            return [root]
        children = root.children()
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if not _is_helper(child)]


def tree_rss(root_pid: int) -> dict[int, int]:
    """Resident bytes of every process in the tree rooted at ``root_pid``, by pid."""
    try:
        root = psutil.Process(root_pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    sizes = {}
    for proc in tree:
        try:
            sizes[proc.pid] = proc.memory_info().rss
        except psutil.Error:
            continue
    return sizes


def rss_change(before: dict[int, int], after: dict[int, int]) -> float | None:
    """The largest relative RSS change between two samples of a tree: of any process, or of
    the total; None when the tree's processes changed (not comparable)."""
    if not before or set(before) != set(after):
        return None
    changes = [abs(after[pid] - size) / max(size, 1) for pid, size in before.items()]
    total_before, total_after = sum(before.values()), sum(after.values())
    changes.append(abs(total_after - total_before) / max(total_before, 1))
    return max(changes)


def wait_settled(
    proc: subprocess.Popen[bytes], target: Target, log_path: Path, deadline: float
) -> float:
    """After the first answer: wait until the tree holds every worker of the target and its
    memory has settled (no process's RSS, nor the total, changes by SETTLE_TOLERANCE or more
    over SETTLE_INTERVAL_S); return seconds waited. ``deadline`` is a ``time.monotonic()``."""
    started = time.monotonic()
    layout = process_layout(target)
    state = "no sample yet"
    previous: dict[int, int] = {}
    while True:
        if proc.poll() is not None:
            raise ServerError(
                f"target {target.name} exited with status {proc.returncode} while its workers "
                f"started; see its log {log_path}{_log_tail(log_path)}"
            )
        workers = worker_processes(proc.pid, layout)
        if len(workers) < layout.workers:
            state = f"{len(workers)} of its {layout.workers} workers running"
            previous = {}
        else:
            sizes = tree_rss(proc.pid)
            change = rss_change(previous, sizes)
            if change is not None and change < SETTLE_TOLERANCE:
                return time.monotonic() - started
            previous = sizes
            if change is not None:
                state = (
                    f"all {layout.workers} workers running, but its memory still changed "
                    f"{change:.1%} in {SETTLE_INTERVAL_S:g} s"
                )
        if time.monotonic() + SETTLE_INTERVAL_S > deadline:
            raise ServerError(
                f"target {target.name} answered /health but was not fully up within "
                f"{READY_TIMEOUT_S:.0f} s ({state}); see its log {log_path}{_log_tail(log_path)}"
            )
        time.sleep(SETTLE_INTERVAL_S if len(workers) >= layout.workers else READY_POLL_S)


def _log_tail(log_path: Path, lines: int = 5) -> str:
    try:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return (":\n    " + "\n    ".join(tail)) if tail else ""


class RunningServer:
    """A started, ready target server; ``url`` is https:// when it serves TLS (``tls``), and
    ``certificate`` the run's certificate it serves then (its clients trust ``ca_pem``)."""

    def __init__(
        self,
        target: Target,
        proc: subprocess.Popen[bytes],
        url: str,
        log: Path,
        certificate: Certificate | None = None,
    ):
        self.target = target
        self.proc = proc
        self.url = url
        self.log_path = log
        self.certificate = certificate

    @property
    def tls(self) -> bool:
        return self.certificate is not None

    @property
    def ca_pem(self) -> str | None:
        """The CA its clients must trust (PEM text); None without TLS."""
        return None if self.certificate is None else self.certificate.ca_pem

    @property
    def ca_file(self) -> Path | None:
        return None if self.certificate is None else self.certificate.ca_file

    @property
    def http(self) -> str:
        """The HTTP version its clients speak ("1.1" or "2"): the target's."""
        return self.target.http

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def workers(self) -> list[psutil.Process]:
        """The processes serving requests (the target's workers), oldest first."""
        return worker_processes(self.pid, process_layout(self.target))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, background: bool = False) -> None:
        if background:
            stop_in_background(self.proc)
        else:
            stop_process(self.proc)


PORT_ATTEMPTS = 3  # another process can take a free port between our check and the bind


@contextlib.contextmanager
def serve(
    target: Target,
    log_path: Path,
    cpus: Sequence[int] | None = None,
    host: str = HOST,
    background_stop: bool = False,
    env: dict[str, str] | None = None,
    tls: Certificate | None = None,
) -> Iterator[RunningServer]:
    """Start target on a free port, wait until ready, and always stop it afterwards.
    ``env``: variables added to this process's environment for the server (the real-I/O
    services' addresses, ``harness.run.services``). ``tls``: the run's certificate, to serve
    TLS with; a target whose row always serves TLS (``Target.tls``) needs it.

    Ready: ``/health`` answers 200, every worker the target declares runs and the tree's
    memory has settled (``wait_settled``), all within READY_TIMEOUT_S of the start.

    With ``background_stop`` a server whose block ended normally is stopped in the
    background (``wait_stopped`` waits for it); on an exception it is stopped at once.
    """
    if target.tls and tls is None:
        raise ServerError(
            f"target {target.name} serves only over TLS and needs a certificate "
            "(harness.run.tls.make_certificate); none was given"
        )
    files = None if tls is None else tls.files
    scheme = "http" if tls is None else "https"
    server = None
    finished = False
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port(host)
            environment = {**os.environ, **env} if env else None
            proc = start_process(target.command(host, port, files), log_path, cpus, environment)
            server = RunningServer(target, proc, f"{scheme}://{host}:{port}", log_path, tls)
            try:
                deadline = time.monotonic() + READY_TIMEOUT_S
                wait_ready(
                    server.url,
                    proc,
                    log_path,
                    target.name,
                    http=target.http,
                    ca_file=server.ca_file,
                )
                wait_settled(proc, target, log_path, deadline)
                break
            except ServerError:
                server.stop()
                if attempt == PORT_ATTEMPTS or not _port_taken(log_path):
                    raise
        assert server is not None
        yield server
        finished = True
    finally:
        if server is not None:
            server.stop(background=background_stop and finished)


def _port_taken(log_path: Path) -> bool:
    try:
        return "address already in use" in log_path.read_text(errors="replace").lower()
    except OSError:
        return False
