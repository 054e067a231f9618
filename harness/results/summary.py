"""The tidy table of a run: one ``summary.csv`` row per manifest cell, built from the run folder.

This module owns turning a cell's raw files (read by ``harness.results.raw``) into its figures:
throughput and exact latency percentiles over the measurement window, CPU and memory over the
window, the Little's-law bound and efficiency, open-load and long-lived connection figures; then
the flags (``harness.results.flags``), the statistics over trials (``harness.results.trials``),
the summary dtypes, and writing ``summary.csv``. It reads only the folder and
``harness.schema``: a run copied from another machine renders the same. A missing or unreadable
raw file leaves that cell's figures empty; it never raises. Public loading for charts, reports
and notebooks goes through ``harness.results.folder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness import schema
from harness.fileio import atomic_write_text
from harness.histogram import LatencyStats, latency_stats
from harness.results.flags import FLAG_SEPARATOR, cell_flags
from harness.results.raw import (
    calibration_rps,
    finite_number,
    read_latency,
    read_locust_aggregate,
    read_manifest,
    read_resources,
    read_stall,
)
from harness.results.trials import add_trial_figures

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
)
BOOL_COLUMNS = ("generator_bound", "unstable")
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
)
FLOAT_COLUMNS = tuple(
    c for c in schema.SUMMARY_COLUMNS if c not in (*INT_COLUMNS, *BOOL_COLUMNS, *TEXT_COLUMNS)
)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def bound_rps(
    load_model: str,
    users: int | None,
    rate: float | None,
    slots: int | None,
    service_time_ms: float | None,
) -> float | None:
    """Little's-law ceiling on throughput for one cell, None when it cannot be known.

    A server holding ``slots`` requests at once (None: unbounded, an event loop) with service
    time S cannot exceed slots/S requests/s; a closed load of U users without think time
    cannot exceed U/S; an open load cannot exceed its offered rate.
    """
    if not service_time_ms or service_time_ms <= 0:
        return None
    service_s = service_time_ms / 1000.0
    server_cap = None if slots is None else slots / service_s
    if load_model == "open":
        offered = rate if rate is not None and rate > 0 else None
        if offered is None or server_cap is None:
            return offered if server_cap is None else server_cap
        return min(offered, server_cap)
    if users is None or users <= 0:
        return server_cap
    concurrency = users if slots is None else min(slots, users)
    return concurrency / service_s


def _window_figures(resources: pd.DataFrame | None, latency: dict[str, Any]) -> dict[str, Any]:
    """Server/generator CPU and memory over the measurement window only (warm-up excluded)."""
    empty: dict[str, Any] = {
        "server_cpu_pct": None,
        "server_rss_mb": None,
        "generator_cpu_pct": None,
    }
    start, end = (
        finite_number(latency.get("window_start")),
        finite_number(latency.get("window_end")),
    )
    if resources is None or start is None or end is None:
        return empty
    window = resources[(resources["t"] >= start) & (resources["t"] <= end)]
    server = window[window["role"] == "server"]
    generator = window[window["role"] == "generator"]
    return {
        "server_cpu_pct": finite_number(server["cpu_pct"].mean()) if len(server) else None,
        "server_rss_mb": finite_number(server["rss_mb"].max()) if len(server) else None,
        "generator_cpu_pct": finite_number(generator["cpu_pct"].mean()) if len(generator) else None,
    }


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
        **_open_figures(latency),
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
    return {
        "p99_uncorrected_ms": uncorrected.p99_ms,
        "launched": finite_number(schedule.get("launched")),
        "late_starts": finite_number(schedule.get("late")),
        "dropped": finite_number(schedule.get("dropped")),
    }


# request_type prefix of latency.json by_name keys -> protocol (harness.loadgen.users).
PROTOCOLS = {"SSE": "sse", "WS": "ws"}
HTTP_PROTOCOL = "http"


def cell_protocol(latency: dict[str, Any]) -> str:
    """The cell's protocol: "sse" or "ws" when it recorded those request types, else "http"."""
    by_name = latency.get("by_name")
    for name in by_name if isinstance(by_name, dict) else ():
        protocol = PROTOCOLS.get(str(name).split(" ", 1)[0])
        if protocol is not None:
            return protocol
    return HTTP_PROTOCOL


def _baseline_rss_mb(resources: pd.DataFrame | None, latency: dict[str, Any]) -> float | None:
    """The server's lowest RSS sampled before locust started its users, if any was."""
    started = finite_number(latency.get("load_started_at"))
    if resources is None or started is None:
        return None
    before = resources[(resources["role"] == "server") & (resources["t"] <= started)]
    return finite_number(before["rss_mb"].min()) if len(before) else None


def _protocol_figures(
    latency: dict[str, Any],
    resources: pd.DataFrame | None,
    users: float | None,
    server_rss_mb: float | None,
) -> dict[str, Any]:
    """Long-lived connection figures of an SSE or WebSocket cell (see SUMMARY_COLUMNS)."""
    protocol = cell_protocol(latency)
    if protocol == HTTP_PROTOCOL:
        return {"protocol": protocol}
    prefix = next(k for k, v in PROTOCOLS.items() if v == protocol)
    unit = str(latency.get("unit", "us"))
    entry = (latency.get("by_name") or {}).get(f"{prefix} message") or {}
    try:
        stats = latency_stats(entry.get("histogram"), unit)
    except ValueError:
        stats = LatencyStats.empty()
    established = finite_number(latency.get("connects"))
    baseline = _baseline_rss_mb(resources, latency)
    grown_kb = (
        None if server_rss_mb is None or baseline is None else (server_rss_mb - baseline) * 1000
    )
    return {
        "protocol": protocol,
        "connections_requested": users,
        "connections_established": established,
        "rss_per_connection_kb": _ratio(grown_kb, established),
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


def summary_row(
    run_dir: Path | str,
    cell: dict[str, Any],
    targets: dict[str, Any],
    ceiling_rps: float | None = None,
) -> dict[str, Any]:
    """One summary row for a manifest cell; figures whose raw file is missing stay None."""
    cell_id = str(cell.get("cell_id", ""))
    target = targets.get(cell.get("target", ""), {}) or {}
    slots = finite_number(target.get("slots"))
    users = finite_number(cell.get("users"))
    rate = finite_number(cell.get("rate"))
    service_time_ms = finite_number(cell.get("service_time_ms"))
    load_model = str(cell.get("load_model", "closed"))
    row: dict[str, Any] = {
        "scenario": cell.get("scenario"),
        "target": cell.get("target"),
        "interface": target.get("interface"),
        "server": target.get("server"),
        "framework": target.get("framework"),
        "load_model": load_model,
        "users": users,
        "rate": rate,
        "trial": finite_number(cell.get("trial")),
        "duration_s": finite_number(cell.get("duration_s")),
        "status": cell.get("status", schema.STATUS_PENDING),
        "cell_id": cell_id,
        "slots": slots,
        "service_time_ms": service_time_ms,
        "generator_bound": None,
        "generator_ceiling_rps": ceiling_rps,
    }
    bound = bound_rps(
        load_model,
        None if users is None else int(users),
        rate,
        None if slots is None else int(slots),
        service_time_ms,
    )
    row["bound_rps"] = bound
    latency = read_latency(run_dir, cell_id) if cell_id else None
    if latency is not None:
        figures = _latency_figures(latency)
        # The measured window, when known, is what rps was divided by; else keep the plan.
        if figures["duration_s"] is None:
            figures["duration_s"] = row["duration_s"]
        row.update(figures)
        resources = read_resources(run_dir, cell_id)
        row.update(_window_figures(resources, latency))
        row.update(_protocol_figures(latency, resources, users, row["server_rss_mb"]))
        row.update(_stall_figures(read_stall(run_dir, cell_id), latency))
        row["efficiency"] = _ratio(row["rps"], bound)
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
    targets = manifest.get("targets") or {}
    ceiling = calibration_rps(manifest)
    cells = [c for c in manifest.get("cells") or [] if isinstance(c, dict)]
    rows = [summary_row(run_dir, cell, targets, ceiling) for cell in cells]
    frame = coerce_summary(pd.DataFrame(rows, columns=list(schema.SUMMARY_COLUMNS)))
    return coerce_summary(add_trial_figures(frame))


def write_summary(run_dir: Path | str) -> Path:
    """Build the summary and write ``summary.csv`` atomically; returns its path."""
    frame = build_summary(run_dir)
    path = Path(run_dir) / schema.SUMMARY_FILE
    # 10 significant digits: exact enough for any figure, without float noise (53.919000000000004).
    text = frame.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    return atomic_write_text(path, text)
