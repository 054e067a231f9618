"""The tidy table of a run: one ``summary.csv`` row per manifest cell, built from the run folder.

This module owns turning a cell's raw files (read by ``harness.results.raw``) into its figures:
throughput and exact latency percentiles over the measurement window, CPU and memory over the
window, connections per request (keep-alive), the Little's-law bound and efficiency, open-load
and long-lived connection figures; then the flags (``harness.results.flags``), the statistics
over trials (``harness.results.trials``), the summary dtypes, and writing ``summary.csv``. It
reads only the folder and ``harness.schema``: a run copied from another machine renders the
same. A missing or unreadable raw file leaves that cell's figures empty; it never raises. Public
loading for charts, reports and notebooks goes through ``harness.results.folder``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness import schema
from harness.fileio import atomic_write_text
from harness.histogram import LatencyStats, latency_stats
from harness.results.flags import FLAG_SEPARATOR, cell_flags, latency_rise_ms
from harness.results.raw import (
    calibration_rps,
    finite_number,
    read_latency,
    read_locust_aggregate,
    read_manifest,
    read_resources,
    read_stall,
)
from harness.results.roofline import GENERATOR_BUDGET_PCT, CellLoad, limiter_text, roofline
from harness.results.trials import add_trial_figures
from harness.schema import Manifest

# Counts and flags get nullable dtypes, so an empty figure stays empty (not 0) through build,
# CSV and reload; measurements are plain floats (NaN when empty), easiest to plot and compute.
INT_COLUMNS = (
    "users",
    "trial",
    "requests",
    "failures",
    "slots",
    "launched",
    "late_starts",
    "dropped",
    "trials",
    "connections_requested",
    "connections_established",
    "connections_held",
    "in_flight_at_end",
    "offered",
    "generators",
    "pool_total",
    "streams",
)
BOOL_COLUMNS = ("generator_bound", "unstable", "tls")
TEXT_COLUMNS = (
    "scenario",
    "target",
    "interface",
    "server",
    "framework",
    "load_model",
    "status",
    "cell_id",
    "flags",
    "protocol",
    "limiter",
    "limited_by",
    "ceilings",
    "connection",
    "client",
)
FLOAT_COLUMNS = tuple(
    c for c in schema.SUMMARY_COLUMNS if c not in (*INT_COLUMNS, *BOOL_COLUMNS, *TEXT_COLUMNS)
)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _window_figures(resources: pd.DataFrame | None, latency: dict[str, Any]) -> dict[str, Any]:
    """Server/generator CPU and memory over the measurement window only (warm-up excluded),
    the machine's other CPU use and steal, the server's connections per process, and the
    real-I/O services' CPU and memory (roles "database" and "upstream": empty when the cell
    sampled none)."""
    empty: dict[str, Any] = {
        "server_cpu_pct": None,
        "server_rss_mb": None,
        "server_pss_mb": None,
        "generator_cpu_pct": None,
        "steal_pct": None,
        "other_cpu_pct": None,
        "database_cpu_pct": None,
        "database_rss_mb": None,
        "upstream_cpu_pct": None,
    }
    start, end = (
        finite_number(latency.get("window_start")),
        finite_number(latency.get("window_end")),
    )
    if resources is None or start is None or end is None:
        return {**empty, "connection_samples": None}
    window = resources[(resources["t"] >= start) & (resources["t"] <= end)]
    server = window[window["role"] == "server"]
    generator = window[window["role"] == "generator"]
    other = window[window["role"] == "other"]
    database = window[window["role"] == "database"]
    upstream = window[window["role"] == "upstream"]
    return {
        "server_cpu_pct": _mean(server, "cpu_pct"),
        "server_rss_mb": _peak(server, "rss_mb"),
        "server_pss_mb": _peak(server, "pss_mb"),
        "generator_cpu_pct": _mean(generator, "cpu_pct"),
        "steal_pct": _mean(other, "steal_pct"),
        "other_cpu_pct": _mean(other, "cpu_pct"),
        "database_cpu_pct": _mean(database, "cpu_pct"),
        "database_rss_mb": _peak(database, "rss_mb"),
        "upstream_cpu_pct": _mean(upstream, "cpu_pct"),
        "connection_samples": _connection_samples(server),
    }


def _mean(rows: pd.DataFrame, column: str) -> float | None:
    return finite_number(rows[column].mean()) if column in rows and len(rows) else None


def _peak(rows: pd.DataFrame, column: str) -> float | None:
    return finite_number(rows[column].max()) if column in rows and len(rows) else None


def _connection_samples(server: pd.DataFrame) -> list[list[int]] | None:
    """The server's established connections per process, one list per sample (``conns``)."""
    if "conns" not in server:
        return None
    samples = []
    for value in server["conns"].dropna():
        try:
            samples.append([int(float(part)) for part in str(value).split()])
        except ValueError:
            continue
    return samples or None


def _latency_figures(latency: dict[str, Any]) -> dict[str, Any]:
    successes = finite_number(latency.get("successes"))
    failures = finite_number(latency.get("failures"))
    duration_s = finite_number(latency.get("duration_s"))
    requests = None if successes is None else successes + (failures or 0)
    try:
        stats = latency_stats(latency.get("histogram"), str(latency.get("unit", "us")))
    except ValueError:
        stats = LatencyStats.empty()
    return {
        "duration_s": duration_s,
        "requests": requests,
        "failures": failures,
        "rps": _ratio(successes, duration_s),
        "p50_ms": stats.p50_ms,
        "p90_ms": stats.p90_ms,
        "p99_ms": stats.p99_ms,
        "p999_ms": stats.p999_ms,
        "max_ms": stats.max_ms,
        "mean_ms": stats.mean_ms,
        "error_rate": _ratio(failures, requests),
        "latency_rise_ms": latency_rise_ms(latency.get("per_second") or []),
        # Keep-alive: TCP connections the generator itself opened in the window, per request.
        "connections_per_request": _ratio(finite_number(latency.get("tcp_connects")), requests),
        **_open_figures(latency),
    }


def _generator_figures(latency: dict[str, Any]) -> dict[str, Any]:
    """The locust processes that made the requests. Several (latency.json "workers"): their
    CPU is what each measured of itself over its window (on this machine or another), summed;
    their budget is one core per worker, at most the distinct CPUs the workers of one host
    could run on (two workers pinned to one core share it)."""
    workers = latency.get("workers")
    if not isinstance(workers, list) or not workers:
        return {"generators": 1, "generator_budget_pct": GENERATOR_BUDGET_PCT}
    cpus = [finite_number(w.get("cpu_pct")) for w in workers]
    measured = [c for c in cpus if c is not None]
    hosts: dict[str, tuple[int, set[int]]] = {}
    for worker in workers:
        count, allowed = hosts.get(str(worker.get("hostname")), (0, set()))
        hosts[str(worker.get("hostname"))] = (count + 1, allowed | set(worker.get("cpus") or ()))
    cores = sum(min(count, len(allowed) or count) for count, allowed in hosts.values())
    return {
        "generators": len(workers),
        "generator_budget_pct": cores * GENERATOR_BUDGET_PCT,
        "generator_cpu_pct": sum(measured) if len(measured) == len(cpus) else None,
        "worker_cpu_max_pct": max(measured) if measured else None,
    }


def _open_figures(latency: dict[str, Any]) -> dict[str, Any]:
    """Open load only: p99 from the actual send, and how well the schedule was kept."""
    schedule = latency.get("open")
    if not isinstance(schedule, dict):
        return {}
    try:
        uncorrected = latency_stats(
            latency.get("histogram_uncorrected"), str(latency.get("unit", "us"))
        )
    except ValueError:
        uncorrected = LatencyStats.empty()
    offered = finite_number(schedule.get("launched_in_window"))
    if offered is None:  # a run from before launched_in_window: what the rate offered
        rate = finite_number(schedule.get("rate"))
        duration = finite_number(latency.get("duration_s"))
        offered = None if rate is None or duration is None else round(rate * duration)
    return {
        "p99_uncorrected_ms": uncorrected.p99_ms,
        "launched": finite_number(schedule.get("launched")),
        "late_starts": finite_number(schedule.get("late")),
        "dropped": finite_number(schedule.get("dropped")),
        "max_lateness_ms": finite_number(schedule.get("max_lateness_ms")),
        "lateness_p99_ms": finite_number(schedule.get("lateness_p99_ms")),
        "in_flight_at_end": finite_number(schedule.get("in_flight_at_end")),
        "offered": offered,
    }


# request_type prefix of latency.json by_name keys -> protocol: the long-lived connections
# (harness.loadgen.users), then HTTP/2 requests (harness.loadgen.h2: "H2"; its HTTP/1.1
# requests are "H1").
PROTOCOLS = {"SSE": "sse", "WS": "ws", "H2": "h2"}
LONG_LIVED = ("sse", "ws")
HTTP_PROTOCOL = "http"
HTTPX_TYPES = ("H2", "H1")  # request types of the HTTP/2 user (httpx)


def _request_types(latency: dict[str, Any]) -> list[str]:
    by_name = latency.get("by_name")
    return [str(name).split(" ", 1)[0] for name in (by_name if isinstance(by_name, dict) else ())]


def cell_protocol(latency: dict[str, Any]) -> str:
    """The cell's protocol: "sse", "ws" or "h2" when it recorded those request types, else
    "http"."""
    for kind in _request_types(latency):
        protocol = PROTOCOLS.get(kind)
        if protocol is not None:
            return protocol
    return HTTP_PROTOCOL


def cell_client(latency: dict[str, Any]) -> str:
    """The generator's HTTP client: "httpx" (the HTTP/2 user) or "fasthttp"."""
    return "httpx" if any(k in HTTPX_TYPES for k in _request_types(latency)) else "fasthttp"


def _baseline_mb(
    resources: pd.DataFrame | None, latency: dict[str, Any], column: str
) -> float | None:
    """The server's lowest memory (``rss_mb``/``pss_mb``) sampled before the cell's load started:
    the baseline the runner marks right before it gives locust the go."""
    started = finite_number(latency.get("load_started_at"))
    if resources is None or started is None or column not in resources:
        return None
    before = resources[(resources["role"] == "server") & (resources["t"] <= started)]
    return finite_number(before[column].min()) if len(before) else None


def _histogram_p99(entry: Any, unit: str) -> float | None:
    try:
        return latency_stats((entry or {}).get("histogram"), unit).p99_ms
    except (ValueError, AttributeError):
        return None


def _per_connection_kb(peak_mb: float | None, baseline_mb: float | None, held: Any) -> Any:
    grown_kb = None if peak_mb is None or baseline_mb is None else (peak_mb - baseline_mb) * 1000
    return _ratio(grown_kb, finite_number(held))


def _protocol_figures(
    latency: dict[str, Any],
    resources: pd.DataFrame | None,
    users: float | None,
    window: dict[str, Any],
) -> dict[str, Any]:
    """Long-lived connection figures of an SSE or WebSocket cell (see SUMMARY_COLUMNS)."""
    protocol = cell_protocol(latency)
    if protocol not in LONG_LIVED:
        return {"protocol": protocol}
    prefix = next(k for k, v in PROTOCOLS.items() if v == protocol)
    unit = str(latency.get("unit", "us"))
    entry = (latency.get("by_name") or {}).get(f"{prefix} message") or {}
    try:
        stats = latency_stats(entry.get("histogram"), unit)
    except ValueError:
        stats = LatencyStats.empty()
    established = finite_number(latency.get("connects"))
    held = finite_number(latency.get("connections_held"))
    per_connection = held if held is not None else established
    return {
        "protocol": protocol,
        "connections_requested": users,
        "connections_established": established,
        "connections_held": held,
        "rss_per_connection_kb": _per_connection_kb(
            window["server_rss_mb"], _baseline_mb(resources, latency, "rss_mb"), per_connection
        ),
        "pss_per_connection_kb": _per_connection_kb(
            window["server_pss_mb"], _baseline_mb(resources, latency, "pss_mb"), per_connection
        ),
        "connect_p99_ms": _histogram_p99(latency.get("connect"), unit),
        "first_message_p99_ms": _histogram_p99(latency.get("first_message"), unit),
        "message_p50_ms": stats.p50_ms,
        "message_p99_ms": stats.p99_ms,
        "messages_per_s": _ratio(
            finite_number(entry.get("successes")), finite_number(latency.get("duration_s"))
        ),
    }


def _stall_figures(stall: dict[str, Any] | None, latency: dict[str, Any]) -> dict[str, Any]:
    """When an injected stall began, in seconds after the measurement window opened."""
    if stall is None:
        return {}
    at, start = finite_number(stall.get("at")), finite_number(latency.get("window_start"))
    return {
        "stall_at_s": None if at is None or start is None else at - start,
        "stall_for_s": finite_number(stall.get("for_s")),
    }


def _locust_figures(row: dict[str, str] | None) -> dict[str, Any]:
    row = row or {}
    return {
        "locust_rps": finite_number(row.get("Requests/s")),
        "locust_p50_ms": finite_number(row.get("50%")),
        "locust_p99_ms": finite_number(row.get("99%")),
    }


@dataclass(frozen=True)
class RunContext:
    """What every row of a run needs from its manifest."""

    targets: dict[str, Any] = field(default_factory=dict)
    ceiling_rps: float | None = None  # the calibrated generator ceiling
    server_cores: int | None = None  # CPUs the server was pinned to (or the machine's)
    overheads: dict[str, float] = field(default_factory=dict)  # target -> /io?ms=0 ms
    needs: dict[str, str] = field(default_factory=dict)  # scenario -> "database"/"upstream"
    h2_ceiling_rps: float | None = None  # the HTTP/2 user's calibrated ceiling (httpx)
    scenario_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, manifest: Manifest) -> RunContext:
        pinning = manifest.get("pinning") or {}
        machine = manifest.get("machine") or {}
        server_cpus = pinning.get("server_cpus") if pinning.get("applied", True) else None
        cores = len(server_cpus) if server_cpus else finite_number(machine.get("cpu_count"))
        overheads = {}
        for name, result in (manifest.get("verify") or {}).items():
            value = finite_number((result or {}).get("io_overhead_ms"))
            if value is not None:
                overheads[name] = value
        needs, scenario_settings = {}, {}
        for name, info in (manifest.get("scenarios") or {}).items():
            need = scenario_needs(info)
            if need is not None:
                needs[str(name)] = need
            settings = info.get("settings") if isinstance(info, dict) else None
            scenario_settings[str(name)] = settings if isinstance(settings, dict) else {}
        calibration = manifest.get("calibration")
        h2 = calibration.get("h2") if isinstance(calibration, dict) else None
        return cls(
            targets=manifest.get("targets") or {},
            ceiling_rps=calibration_rps(manifest),
            server_cores=None if cores is None else int(cores),
            overheads=overheads,
            needs=needs,
            h2_ceiling_rps=finite_number(h2.get("rps")) if isinstance(h2, dict) else None,
            scenario_settings=scenario_settings,
        )

    def link_figures(self, scenario: Any, target: dict[str, Any]) -> dict[str, Any]:
        """tls and connection of a cell: the scenario's settings and the target's row."""
        settings = self.scenario_settings.get(str(scenario), {})
        return {
            "tls": bool(settings.get("tls") is True or target.get("tls") is True),
            "connection": str(settings.get("connection") or "keep-alive"),
        }

    def pool_total(self, scenario: Any, target: dict[str, Any]) -> float | None:
        """Connections the target's pools hold at most (workers x pool per process), for a
        cell whose scenario needs a database or an upstream service; else None."""
        if str(scenario) not in self.needs:
            return None
        pool, workers = finite_number(target.get("pool")), finite_number(target.get("workers"))
        if pool is None or pool <= 0:
            return None
        return pool * (workers if workers is not None and workers > 0 else 1)

    def server_budget_pct(self, target: dict[str, Any]) -> float | None:
        """The server's CPU budget: the cores it may use, at most one per process."""
        workers = finite_number(target.get("workers"))
        if self.server_cores is None:
            return None
        usable = self.server_cores if workers is None else min(self.server_cores, workers)
        return max(usable, 1) * 100.0


REAL_IO_NEEDS = ("database", "upstream")


def scenario_needs(info: Any) -> str | None:
    """What a manifest scenario (``Scenario.to_dict``) needs: "database", "upstream" or None.
    Read from its ``needs`` key, or from its settings' ``needs``."""
    if not isinstance(info, dict):
        return None
    settings = info.get("settings")
    need = info.get("needs")
    if need is None and isinstance(settings, dict):
        need = settings.get("needs")
    return str(need) if need in REAL_IO_NEEDS else None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _roofline_figures(
    row: dict[str, Any], cell_plan: dict[str, Any], target: dict[str, Any], run: RunContext
) -> dict[str, Any]:
    """bound_rps, limiter, efficiency and the ceilings behind them (harness.results.roofline)."""
    threads = finite_number(target.get("threads"))
    pool_total = row.get("pool_total")
    pool = finite_number(target.get("pool"))
    if pool_total is not None and threads is not None and pool is not None:
        threads = min(threads, pool)  # a worker runs at most its pool's connections at once
    needs_database = run.needs.get(str(row.get("scenario"))) == "database"
    streams = finite_number(row.get("streams"))
    users = row["users"]
    if streams is not None and streams > 1 and users is not None:
        users = users * streams  # each HTTP/2 user keeps `streams` requests in flight
    cell = CellLoad(
        load_model=str(row["load_model"]),
        users=users,
        rate=row["rate"],
        rps=row.get("rps"),
        service_time_ms=row["service_time_ms"],
        overhead_ms=row["overhead_ms"],
        slot_time_ms=finite_number(cell_plan.get("slot_time_ms")),
        slots=row["slots"],
        # Connection balance only binds threads: a sync worker takes one connection at a time.
        threads=threads if target.get("concurrency") == "threads" else None,
        connection_samples=row.get("connection_samples"),
        server_cpu_pct=row.get("server_cpu_pct"),
        server_budget_pct=run.server_budget_pct(target),
        generator_cpu_pct=row.get("generator_cpu_pct"),
        generator_budget_pct=row.get("generator_budget_pct") or GENERATOR_BUDGET_PCT,
        protocol=str(row.get("protocol") or "http"),
        connections_requested=row.get("connections_requested"),
        connections_held=_first(row.get("connections_held"), row.get("connections_established")),
        pool_total=pool_total,
        database_cpu_pct=row.get("database_cpu_pct") if needs_database else None,
        shared_budget_pct=None if run.server_cores is None else run.server_cores * 100.0,
    )
    line = roofline(cell)
    return {
        "bound_rps": line.bound_rps,
        "limiter": line.limiter,
        "limited_by": limiter_text(line.limiter, line.lowest, cell, line.efficiency)
        if line.limiter
        else None,
        "efficiency": line.efficiency,
        "ceilings": line.ceilings_text(),
        "effective_slots": line.effective_slots,
    }


def summary_row(
    run_dir: Path | str,
    cell: dict[str, Any],
    run: RunContext,
) -> dict[str, Any]:
    """One summary row for a manifest cell; figures whose raw file is missing stay None."""
    cell_id = str(cell.get("cell_id", ""))
    target = run.targets.get(cell.get("target", ""), {}) or {}
    slots = finite_number(target.get("slots"))
    users = finite_number(cell.get("users"))
    load_model = str(cell.get("load_model", "closed"))
    row: dict[str, Any] = {
        "scenario": cell.get("scenario"),
        "target": cell.get("target"),
        "interface": target.get("interface"),
        "server": target.get("server"),
        "framework": target.get("framework"),
        "load_model": load_model,
        "users": users,
        "rate": finite_number(cell.get("rate")),
        "trial": finite_number(cell.get("trial")),
        "duration_s": finite_number(cell.get("duration_s")),
        "status": cell.get("status", schema.STATUS_PENDING),
        "cell_id": cell_id,
        "slots": slots,
        "service_time_ms": finite_number(cell.get("service_time_ms")),
        "overhead_ms": run.overheads.get(str(cell.get("target"))),
        "pool_total": run.pool_total(cell.get("scenario"), target),
        "generator_bound": None,
        "generator_ceiling_rps": run.ceiling_rps,
        **run.link_figures(cell.get("scenario"), target),
    }
    latency = read_latency(run_dir, cell_id) if cell_id else None
    if latency is not None:
        figures = _latency_figures(latency)
        # The measured window, when known, is what rps was divided by; else keep the plan.
        if figures["duration_s"] is None:
            figures["duration_s"] = row["duration_s"]
        row.update(figures)
        resources = read_resources(run_dir, cell_id)
        window = _window_figures(resources, latency)
        if target.get("external"):  # run --url: its server, if on this machine, is "other"
            window["other_cpu_pct"] = None
        row.update(window)
        row.update(_generator_figures(latency))
        row["client"] = cell_client(latency)
        ceiling = run.ceiling_rps
        if row["client"] == "httpx":  # the HTTP/2 user: its own ceiling, its streams
            ceiling = run.h2_ceiling_rps
            settings = run.scenario_settings.get(str(cell.get("scenario")), {})
            row["streams"] = finite_number(settings.get("streams")) or 1
        row["generator_ceiling_rps"] = ceiling
        budget = row["generator_budget_pct"]
        if ceiling and budget:  # calibrated with one process: N cores drive N times as much
            row["generator_ceiling_rps"] = ceiling * budget / GENERATOR_BUDGET_PCT
        row.update(_protocol_figures(latency, resources, users, window))
        row.update(_stall_figures(read_stall(run_dir, cell_id), latency))
    row.update(_roofline_figures(row, cell, target, run))
    row.pop("connection_samples", None)
    if latency is not None:
        row["generator_bound"], flags = cell_flags(row)
        row["flags"] = FLAG_SEPARATOR.join(flags) or None
    row.update(_locust_figures(read_locust_aggregate(run_dir, cell_id) if cell_id else None))
    return row


def coerce_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly SUMMARY_COLUMNS, in order, with nullable dtypes (used on build and on reload)."""
    frame = frame.reindex(columns=list(schema.SUMMARY_COLUMNS))
    for column in FLOAT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in INT_COLUMNS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        frame[column] = numbers.round().astype("Int64")
    for column in BOOL_COLUMNS:
        values = frame[column].map(_as_bool, na_action="ignore")
        frame[column] = values.astype("boolean")
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].astype("string")
    frame["flags"] = frame["flags"].replace("", pd.NA)  # no flags: empty, as the CSV reads back
    return frame


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}.get(
        text
    )


def build_summary(run_dir: Path | str) -> pd.DataFrame:
    """The summary table of a run folder: one row per manifest cell, in manifest order."""
    manifest = read_manifest(run_dir)
    run = RunContext.of(manifest)
    cells = [c for c in manifest.get("cells") or [] if isinstance(c, dict)]
    rows = [summary_row(run_dir, cell, run) for cell in cells]
    frame = coerce_summary(pd.DataFrame(rows, columns=list(schema.SUMMARY_COLUMNS)))
    return coerce_summary(add_trial_figures(frame))


def write_summary(run_dir: Path | str) -> Path:
    """Build the summary and write ``summary.csv`` atomically; returns its path."""
    frame = build_summary(run_dir)
    path = Path(run_dir) / schema.SUMMARY_FILE
    # 10 significant digits: exact enough for any figure, without float noise (53.919000000000004).
    text = frame.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    return atomic_write_text(path, text)
