"""A throwaway PostgreSQL cluster for the scenarios that query a real database.

``database(log_path, cpus)`` makes one for as long as the block runs:

- ``initdb`` into a new temporary folder (UTF8, locale C, trust authentication for the one
  user ``gatebench``), as the unprivileged ``postgres`` user (or ``nobody``) when the harness
  runs as root, which CI does: PostgreSQL refuses to run as root;
- ``postgres`` on a free port of 127.0.0.1 (its socket in the data folder), pinned to the
  server's CPUs (the database works for the server: both share that budget, and the roofline
  says which of the two used it), with durability off (``fsync``, ``synchronous_commit``,
  ``full_page_writes``): nothing here needs to survive a crash, and a benchmark of a
  database's disk is not this one's subject;
- the table ``items(id, name, value)`` seeded with ``SEED_ROWS`` rows
  (``name = 'item-' || id``, ``value = id * 7919 % 10007``) and analysed;
- on the way out (normal end, failure, Ctrl-C) a fast shutdown (SIGINT), then the folder is
  removed. A harness killed outright leaves nothing either: the postmaster is started like
  every server (parent-death signal and the reaper, ``harness.run.servers``).

What cannot start (no PostgreSQL installed, a port taken three times, initdb failing) is a
``DatabaseError`` with one line saying what to do; the runner then skips the cells that need
the database and runs the others. ``RunningDatabase.to_dict`` is what the manifest records:
version, port, settings, rows.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.run.servers import free_port, start_process, stop_process

HOST = "127.0.0.1"
DATABASE = "gatebench"
USER = "gatebench"
SEED_ROWS = 10_000
READY_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 3
SHUTDOWN_S = 10.0
INSTALL_HINT = (
    "install PostgreSQL (Debian: apt-get install postgresql; `make` does it when run as root)"
)
# Settings of the throwaway cluster: durability off, room for every pool of a run.
SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "500",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}
UNPRIVILEGED = ("postgres", "nobody")  # who runs it when the harness is root


class DatabaseError(RuntimeError):
    """The database could not be started; the message is one line saying why and what to do."""


def find_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (the newest Debian version first)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version_key(Path(p).parent.name)
    )
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).resolve().parent / "postgres").is_file():
        return Path(initdb).resolve().parent
    raise DatabaseError(f"PostgreSQL's initdb was not found; {INSTALL_HINT}")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _account() -> pwd.struct_passwd | None:
    """The unprivileged account to run PostgreSQL as, when this process is root; else None."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise DatabaseError(
        "running as root, and no unprivileged user (postgres, nobody) to run PostgreSQL as"
    )


@dataclass
class RunningDatabase:
    """The cluster while it runs: where to connect, its postmaster, what it is."""

    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    version: str
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def dsn(self) -> str:
        """libpq connection string (what the apps get as GATEBENCH_DATABASE_DSN)."""
        return f"host={HOST} port={self.port} dbname={DATABASE} user={USER}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "host": HOST,
            "port": self.port,
            "database": DATABASE,
            "rows": SEED_ROWS,
            "settings": dict(self.settings),
            "log": str(self.log_path),
        }


def _run(argv: list[str], account: pwd.struct_passwd | None, what: str) -> str:
    user = {} if account is None else {"user": account.pw_uid, "group": account.pw_gid}
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=120, cwd="/", **user
    )  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DatabaseError(f"{what} failed (exit status {done.returncode}): {tail[0]}")
    return str(done.stdout)


def _initdb(binaries: Path, data_dir: Path, account: pwd.struct_passwd | None) -> None:
    if account is not None:
        os.chown(data_dir, account.pw_uid, account.pw_gid)
    _run(
        [str(binaries / "initdb"), "-D", str(data_dir), "-U", USER, "--auth=trust",
         "--encoding=UTF8", "--locale=C", "--no-sync"],
        account, "initdb",
    )  # fmt: skip


def _start(
    binaries: Path, data_dir: Path, log_path: Path, cpus: Sequence[int] | None,
    account: pwd.struct_passwd | None, version: str,
) -> RunningDatabase:  # fmt: skip
    """The postmaster on a free port, ready for connections (a port taken: tried again)."""
    last = ""
    for _ in range(PORT_ATTEMPTS):
        port = free_port(HOST)
        settings = {**SETTINGS, "port": str(port), "unix_socket_directories": str(data_dir)}
        argv = [str(binaries / "postgres"), "-D", str(data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        proc = start_process(argv, log_path, cpus, user=account.pw_uid if account else None,
                             group=account.pw_gid if account else None)  # fmt: skip
        running = RunningDatabase(proc, port, data_dir, log_path, version, settings)
        last = _wait_ready(running)
        if not last:
            return running
        _stop(running)
        if "could not bind" not in last and "Address already in use" not in last:
            break
    raise DatabaseError(f"PostgreSQL did not start: {last}; see {log_path}")


def _wait_ready(db: RunningDatabase) -> str:
    """ "" once the cluster accepts connections; else why not (its log's last line)."""
    import psycopg  # the harness's own driver, loaded only by runs that need a database

    deadline = time.monotonic() + READY_TIMEOUT_S
    error = "no answer"
    while time.monotonic() < deadline:
        if not db.alive():
            return f"postgres exited with status {db.proc.returncode}: {_last_line(db.log_path)}"
        try:
            with psycopg.connect(db.dsn.replace(f"dbname={DATABASE}", "dbname=postgres"),
                                 connect_timeout=2):  # fmt: skip
                return ""
        except psycopg.OperationalError as exc:
            error = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        time.sleep(0.1)
    return f"not ready within {READY_TIMEOUT_S:.0f} s ({error})"


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"


def seed(dsn: str, rows: int = SEED_ROWS) -> None:
    """Create the gatebench database and its ``items`` table (dropped first if present)."""
    import psycopg

    admin = dsn.replace(f"dbname={DATABASE}", "dbname=postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, "
            "value integer NOT NULL)"
        )
        conn.execute(
            "INSERT INTO items SELECT i, 'item-' || i, (i * 7919) %% 10007 "
            "FROM generate_series(1, %s) AS i",
            (rows,),
        )
        conn.execute("ANALYZE items")


def _stop(db: RunningDatabase) -> None:
    """Fast shutdown (SIGINT: sessions are ended, not waited for), then the group is gone."""
    if db.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(db.proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            db.proc.wait(timeout=SHUTDOWN_S)
    stop_process(db.proc)


@contextlib.contextmanager
def database(log_path: Path, cpus: Sequence[int] | None = None) -> Iterator[RunningDatabase]:
    """A seeded throwaway cluster while the block runs (see the module docstring)."""
    binaries = find_binaries()
    account = _account()
    version = _run([str(binaries / "postgres"), "--version"], None, "postgres --version").strip()
    data_dir = Path(tempfile.mkdtemp(prefix="gatebench-pg-"))
    running: RunningDatabase | None = None
    try:
        _initdb(binaries, data_dir, account)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        running = _start(binaries, data_dir, log_path, cpus, account, version)
        try:
            seed(running.dsn)
        except Exception as exc:  # psycopg's errors: a seed that fails is a start that failed
            raise DatabaseError(f"seeding the database failed: {exc}; see {log_path}") from None
        yield running
    finally:
        if running is not None:
            _stop(running)
        shutil.rmtree(data_dir, ignore_errors=True)
