"""``crosscheck``: replay a run's HTTP/2 cells with h2load, to see what the load generator costs.

The cells replayed are the HTTP/2 user's: its h2 cells, and the HTTP/1.1 twins it drove with
the same requests in flight (h2load ``--h1`` with ``users x streams`` connections, one request
at a time on each, as the user held them), so HTTP/1.1 against HTTP/2 can be read at loads
where the Python client itself is the limit.

gatebench drives HTTP/2 with httpx inside locust (``harness.loadgen.h2``): fair between h2 and
HTTP/1.1, but a Python client spends far more CPU per request than the server may. h2load
(nghttp2's C load generator) is the yardstick: for each chosen cell the same target is started
the way the run started it (its recorded workers and threads, pinned to the run's server CPUs),
and h2load drives it pinned to the run's generator CPUs with the cell's concurrency (``-c users
-m streams``: one connection per user carrying its streams, as the HTTP/2 user does), the cell's
warm-up and duration and its one route. ``crosscheck.csv`` puts both generators side by side:
requests/s, exact p50/p99 of h2load's per-request log, and each generator's CPU per request.
A large gap in CPU per request with equal latency says the cell measured the server; a large
gap in requests/s says gatebench's generator was the limit.

h2load speaks h2c with prior knowledge to a plain target and negotiates h2 by ALPN over TLS
(``--npn-list h2``: it refuses a server that would fall back to HTTP/1.1). It verifies no
certificate, which is fine here: the server is one this command started, on loopback, with a
certificate made for it a moment before (``harness.run.tls.make_certificate``).

Figures of h2load: requests/s is its own (requests done in the main duration / duration); its
log file holds only the requests that finished in the main duration (its lines equal its
"requests: N total"), so p50/p99 are over the measured window exactly. Its CPU is its
process's user + system time from its end (``getrusage(RUSAGE_CHILDREN)`` around the wait)
less a sample taken as the warm-up ends (psutil), over the requests of the log.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness import schema
from harness.fileio import atomic_write_text
from harness.format import fmt, missing
from harness.results.folder import Results, load
from harness.results.raw import finite_number, read_latency
from harness.run.servers import ServerError, serve, start_process, stop_process
from harness.run.tls import Certificate, make_certificate
from harness.units import UsageError
from targets.registry import TARGETS, Target

H2LOAD = "h2load"
NOT_INSTALLED = "h2load is not installed (Debian: apt-get install nghttp2-client)"
CROSSCHECK_DIR = "crosscheck"  # under raw/: server logs, h2load's output and request logs
HTTPX = "httpx"  # summary "client" of the HTTP/2 user's cells
COLUMNS = (
    "cell_id",
    "target",
    "users",
    "streams",
    "duration_s",
    "gatebench_rps",
    "gatebench_p50_ms",
    "gatebench_p99_ms",
    "gatebench_cpu_ms_per_request",
    "h2load_rps",
    "h2load_p50_ms",
    "h2load_p99_ms",
    "h2load_cpu_ms_per_request",
    "h2load_failed",
    "rps_ratio",  # h2load_rps / gatebench_rps
    "error",  # why the cell has no h2load figures; empty when it has them
    "http",  # what h2load spoke: "2" (h2c, or h2 over TLS) or "1.1" (--h1, a connection per
    # stream: the HTTP/2 user's HTTP/1.1 twin cells)
)
EXIT_SLACK_S = 60.0  # h2load gets this long beyond warm-up + duration before it is stopped

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CellPlan:
    """One cell to replay: what the run measured and how to drive its target again."""

    cell_id: str
    target: str
    users: int
    streams: int
    duration_s: float
    warmup_s: float
    route: str  # the path h2load requests, e.g. /io?ms=50
    tls: bool
    http: str  # "2" (the cell went over h2) or "1.1" (the HTTP/2 user's HTTP/1.1 twin cells)
    threads: int  # h2load's threads: as many as the run's generator processes (most: users)
    needs: str | None  # the service the cell's scenario needs (none is started here)
    gatebench: dict[str, float | None]  # rps, p50_ms, p99_ms, cpu_ms_per_request


@dataclass(frozen=True)
class H2loadResult:
    rps: float | None
    p50_ms: float | None
    p99_ms: float | None
    cpu_ms_per_request: float | None
    succeeded: int
    failed: int
    protocol: str | None  # "h2c" or "h2" as h2load reports it


def open_run(run_dir: Path) -> Results:
    """The run folder, or a UsageError in one line."""
    try:
        return load(run_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def require_h2load() -> str:
    path = shutil.which(H2LOAD)
    if path is None:
        raise UsageError(NOT_INSTALLED)
    return path


def _figure(row: Any, column: str) -> float | None:
    return finite_number(row.get(column)) if column in row else None


def route_of(run_dir: Path, cell_id: str) -> str:
    """The one path the cell requested: its latency.json ``by_name`` key ("H2 /io?ms=50")."""
    latency = read_latency(run_dir, cell_id) or {}
    names = {str(key).split(" ", 1)[-1] for key in latency.get("by_name") or {}}
    if len(names) != 1 or not next(iter(names)).startswith("/"):
        shown = ", ".join(sorted(names)) or "none recorded"
        raise UsageError(
            f"cell {cell_id}: crosscheck replays exactly one route, named by its path; "
            f"the cell's requests were named: {shown}"
        )
    return names.pop()


def plan_cells(
    results: Results, chosen: list[str] | None, duration_s: float | None
) -> list[CellPlan]:
    """The cells to replay: the run's ok cells of the HTTP/2 user (client httpx: its h2 cells
    and the HTTP/1.1 twins it drove the same way), or exactly ``chosen`` (each checked)."""
    summary = results.summary
    by_id = {str(row["cell_id"]): row for _, row in summary.iterrows()}
    h2 = [cid for cid, row in by_id.items() if _replayable(row)]
    if chosen is None:
        ids = [cid for cid in h2 if str(by_id[cid].get("status")) == schema.STATUS_OK]
        if not ids:
            raise UsageError(f"{results.run_dir}: no HTTP/2 cell ran to completion there")
    else:
        ids = chosen
        for cid in ids:
            if cid not in by_id:
                known = ", ".join(h2) or "none"
                raise UsageError(f"--cells: unknown cell {cid!r}; the run's HTTP/2 cells: {known}")
            row = by_id[cid]
            if not _replayable(row):
                raise UsageError(
                    f"--cells: cell {cid} is not an HTTP/2 cell (protocol "
                    f"{row.get('protocol')}, client {row.get('client')}); h2load replays the "
                    "cells of the HTTP/2 user only"
                )
            if str(row.get("status")) != schema.STATUS_OK:
                raise UsageError(f"--cells: cell {cid} did not run to completion ({row['status']})")
    generators = results.manifest.get("generators") or {}
    return [_plan(results, by_id[cid], generators, duration_s) for cid in ids]


def _replayable(row: Any) -> bool:
    """A cell of the HTTP/2 user: over h2, or its HTTP/1.1 twin (client httpx)."""
    return str(row.get("protocol")) == "h2" or str(row.get("client")) == HTTPX


def _plan(
    results: Results, row: Any, generators: dict[str, Any], duration_s: float | None
) -> CellPlan:
    cell_id = str(row["cell_id"])
    users = int(row["users"])
    streams = int(row["streams"]) if finite_number(row.get("streams")) else 1
    rps, cpu_pct = _figure(row, "rps"), _figure(row, "generator_cpu_pct")
    cpu_ms = cpu_pct / 100 / rps * 1000 if rps and cpu_pct is not None else None
    record = next(
        (c for c in results.manifest.get("cells") or [] if c.get("cell_id") == cell_id), {}
    )
    processes = finite_number(row.get("generators")) or finite_number(generators.get("local"))
    scenario = (results.manifest.get("scenarios") or {}).get(str(row.get("scenario"))) or {}
    target = TARGETS.get(str(row["target"]))
    tls = row.get("tls")
    served_tls = not missing(tls) and bool(tls)
    return CellPlan(
        cell_id=cell_id,
        target=str(row["target"]),
        users=users,
        streams=streams,
        duration_s=duration_s or float(record.get("duration_s") or row.get("duration_s")),
        warmup_s=float(record.get("warmup_s") or 0),
        route=route_of(results.run_dir, cell_id),
        tls=served_tls or (target is not None and target.tls),
        http="2" if str(row.get("protocol")) == "h2" else "1.1",
        threads=max(1, min(users, int(processes or 1))),
        needs=scenario.get("needs") or None,
        gatebench={
            "rps": rps,
            "p50_ms": _figure(row, "p50_ms"),
            "p99_ms": _figure(row, "p99_ms"),
            "cpu_ms_per_request": cpu_ms,
        },
    )


def run_target(results: Results, name: str) -> Target:
    """The target as the run served it: the table's row with the run's recorded settings."""
    if name not in TARGETS:
        raise ServerError(f"target {name} is no longer in the target table")
    target = TARGETS[name]
    recorded = results.targets.get(name) or {}
    for setting in ("http", "tls"):
        if setting in recorded and recorded[setting] != getattr(target, setting):
            raise ServerError(
                f"target {name}: its row's {setting} is {getattr(target, setting)!r} now, "
                f"{recorded[setting]!r} in the run; the run cannot be replayed"
            )
    settings = {k: recorded.get(k) for k in ("workers", "threads", "pool")}
    changes = {k: int(v) for k, v in settings.items() if v is not None and v != getattr(target, k)}
    return target.with_settings(**changes) if changes else target


def h2load_seconds(seconds: float) -> str:
    """A duration as h2load reads it (whole milliseconds: it takes no "0.5")."""
    return f"{max(1, round(seconds * 1000))}ms"


def h2load_argv(program: str, url: str, plan: CellPlan, log_file: Path) -> list[str]:
    """h2 with ``users`` connections of ``streams`` each; an HTTP/1.1 twin with ``users x
    streams`` connections of one request at a time, as the HTTP/2 user drove it (``--h1``)."""
    h1 = plan.http != "2"
    argv = [
        program,
        f"--clients={plan.users * plan.streams if h1 else plan.users}",
        f"--max-concurrent-streams={1 if h1 else plan.streams}",
        f"--threads={plan.threads}",
        f"--duration={h2load_seconds(plan.duration_s)}",
        f"--log-file={log_file}",
    ]
    if plan.warmup_s > 0:
        argv.append(f"--warm-up-time={h2load_seconds(plan.warmup_s)}")
    if h1:
        argv.append("--h1")
    else:
        argv += ["--npn-list=h2"] if plan.tls else ["--no-tls-proto=h2c"]
    return [*argv, url + plan.route]


_REQUESTS = re.compile(r"requests: (\d+) total, .*?(\d+) succeeded, (\d+) failed")
_RPS = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
_PROTOCOL = re.compile(r"Application protocol: (\S+)")


def parse_output(text: str) -> tuple[int, int, float | None, str | None]:
    """(succeeded, failed, requests/s, protocol) from h2load's printed summary."""
    counts = _REQUESTS.search(text)
    if counts is None:
        tail = " / ".join(text.strip().splitlines()[-3:])
        raise ValueError(f"h2load printed no request counts ({tail or 'no output'})")
    rps, protocol = _RPS.search(text), _PROTOCOL.search(text)
    return (
        int(counts.group(2)),
        int(counts.group(3)),
        float(rps.group(1)) if rps else None,
        protocol.group(1) if protocol else None,
    )


def read_request_log(path: Path) -> list[tuple[int, int, int]]:
    """h2load's --log-file: (start µs since epoch, status (-1: failed stream), duration µs)."""
    rows = []
    with contextlib.suppress(FileNotFoundError), path.open(encoding="ascii") as handle:
        for line in handle:
            fields = line.split("\t")
            if len(fields) >= 3:
                rows.append((int(fields[0]), int(fields[1]), int(fields[2])))
    return rows


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (exact: one of them), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_h2load(
    program: str, url: str, plan: CellPlan, folder: Path, cpus: tuple[int, ...] | None
) -> H2loadResult:
    """Drive ``url`` with h2load as ``plan`` says, pinned to ``cpus``; its figures."""
    log_file = folder / f"{plan.cell_id}.requests.tsv"  # h2load's --log-file
    output = folder / f"{plan.cell_id}.h2load.txt"  # what it prints
    log_file.unlink(missing_ok=True)
    output.unlink(missing_ok=True)
    before = _children_cpu_s()
    proc = start_process(h2load_argv(program, url, plan, log_file), output, cpus)
    try:
        warm_cpu = _cpu_after(proc, plan.warmup_s)
        proc.wait(timeout=plan.warmup_s + plan.duration_s + EXIT_SLACK_S)
        total_cpu = _children_cpu_s() - before
    except subprocess.TimeoutExpired:
        raise ServerError(f"h2load did not finish in time; see {output}") from None
    finally:
        stop_process(proc)
    text = output.read_text(errors="replace")
    if proc.returncode != 0:
        tail = " / ".join(text.strip().splitlines()[-2:])
        raise ServerError(f"h2load exited with status {proc.returncode}: {tail}; see {output}")
    succeeded, failed, rps, protocol = parse_output(text)
    requests = read_request_log(log_file)
    times = [duration / 1000 for _, status, duration in requests if 200 <= status < 400]
    measured = len(requests) or succeeded + failed
    cpu_s = total_cpu - warm_cpu if plan.warmup_s > 0 else total_cpu
    return H2loadResult(
        # successes over the main duration, as gatebench counts (h2load's own req/s counts
        # failed requests too; with none failed the two are the same)
        rps=succeeded / plan.duration_s if failed or rps is None else rps,
        p50_ms=percentile(times, 0.50),
        p99_ms=percentile(times, 0.99),
        cpu_ms_per_request=cpu_s * 1000 / measured if measured else None,
        succeeded=succeeded,
        failed=failed,
        protocol=protocol,
    )


def _cpu_after(proc: subprocess.Popen[bytes], seconds: float) -> float:
    """h2load's CPU seconds so far, sampled ``seconds`` after its start (0 when none)."""
    if seconds <= 0:
        return 0.0
    try:
        handle = psutil.Process(proc.pid)
        time.sleep(seconds)
        times = handle.cpu_times()
        return float(times.user + times.system)
    except psutil.Error:  # it ended during warm-up: everything counts
        return 0.0


def crosscheck_cell(
    results: Results, plan: CellPlan, program: str, certificate: Callable[[], Certificate]
) -> dict[str, Any]:
    """One row of crosscheck.csv: the target started again, h2load against it."""
    row: dict[str, Any] = {
        "cell_id": plan.cell_id,
        "target": plan.target,
        "users": plan.users,
        "streams": plan.streams,
        "http": plan.http,
        "duration_s": plan.duration_s,
        **{f"gatebench_{key}": value for key, value in plan.gatebench.items()},
    }
    pinning = results.manifest.get("pinning") or {}
    server_cpus = tuple(pinning.get("server_cpus") or ()) or None
    generator_cpus = tuple(pinning.get("generator_cpus") or ()) or None
    folder = results.run_dir / schema.RAW_DIR / CROSSCHECK_DIR
    if plan.needs:
        return {
            **row,
            "error": f"its scenario needs the {plan.needs}, which crosscheck does not start",
        }
    try:
        target = run_target(results, plan.target)
        tls = certificate() if plan.tls else None
        log = folder / f"server__{plan.cell_id}.log"
        with serve(target, log, server_cpus, tls=tls) as server:
            h2 = run_h2load(program, server.url, plan, folder, generator_cpus)
    except (ServerError, ValueError, OSError) as exc:
        return {**row, "error": str(exc)}
    if h2.succeeded == 0:
        output = folder / f"{plan.cell_id}.h2load.txt"
        return {
            **row,
            "h2load_failed": h2.failed,
            "error": f"h2load counted none of its {h2.failed} answers as a success (no status "
            f"code read); see {output}",
        }
    expected = "http/1.1" if plan.http != "2" else ("h2" if plan.tls else "h2c")
    if h2.protocol != expected:
        return {**row, "error": f"h2load spoke {h2.protocol or 'no protocol'}, not {expected}"}
    gatebench_rps = plan.gatebench["rps"]
    return {
        **row,
        "h2load_rps": h2.rps,
        "h2load_p50_ms": h2.p50_ms,
        "h2load_p99_ms": h2.p99_ms,
        "h2load_cpu_ms_per_request": h2.cpu_ms_per_request,
        "h2load_failed": h2.failed,
        "rps_ratio": h2.rps / gatebench_rps if h2.rps is not None and gatebench_rps else None,
        "error": "",
    }


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in COLUMNS})
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return "" if value is None else value


def run_crosscheck(
    run_dir: Path, cells: list[str] | None, duration_s: float | None, progress: Progress
) -> tuple[list[dict[str, Any]], Path]:
    """Replay the chosen cells one by one; crosscheck.csv is rewritten after each, so an
    interruption or a failed cell loses none of the others."""
    results = open_run(run_dir)
    program = require_h2load()
    plans = plan_cells(results, cells, duration_s)
    made: list[Certificate] = []

    def certificate() -> Certificate:  # one fresh certificate, only when a cell needs TLS
        if not made:
            folder = results.run_dir / schema.RAW_DIR / CROSSCHECK_DIR / "tls"
            made.append(make_certificate(folder))
        return made[0]

    path = results.run_dir / schema.CROSSCHECK_FILE
    rows: list[dict[str, Any]] = []
    for index, plan in enumerate(plans, 1):
        how = (
            f"--h1 -c {plan.users * plan.streams}"
            if plan.http != "2"
            else f"-c {plan.users} -m {plan.streams} {'h2' if plan.tls else 'h2c'}"
        )
        progress(
            f"[{index}/{len(plans)}] {plan.cell_id}: h2load {how}{' TLS' if plan.tls else ''} "
            f"{plan.route} ({plan.warmup_s:g}+{plan.duration_s:g} s)"
        )
        row = crosscheck_cell(results, plan, program, certificate)
        rows.append(row)
        atomic_write_text(path, to_csv(rows))
        progress(f"    {row['error']}" if row.get("error") else f"    {_brief(row)}")
    return rows, path


def _brief(row: dict[str, Any]) -> str:
    return (
        f"h2load {fmt(row['h2load_rps'])} rps (gatebench {fmt(row['gatebench_rps'])}), "
        f"p50 {fmt(row['h2load_p50_ms'])} ms, p99 {fmt(row['h2load_p99_ms'])} ms, "
        f"{fmt(row['h2load_cpu_ms_per_request'], 3)} ms CPU per request "
        f"(gatebench {fmt(row['gatebench_cpu_ms_per_request'], 3)}), "
        f"{row['h2load_failed']} failed"
    )
