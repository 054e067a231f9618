"""The tidy table of a run: one ``summary.csv`` row per manifest cell, built from the run folder.

This module owns reading a run folder's manifest and raw per-cell files (``latency.json``,
``resources.csv``, ``locust_stats.csv``, ``stall.json``), the Little's-law bound, the flags that
say when a cell measured the load generator rather than the server, and writing ``summary.csv``
(the statistics over trials come from ``harness.results.trials``).
It reads only the folder and ``harness.schema``: a run copied from another machine renders the
same. A missing or unreadable raw file leaves that cell's figures empty; it never raises.
Public loading for charts, reports and notebooks goes through ``harness.results.folder``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from harness import schema
from harness.fileio import atomic_write_text
from harness.histogram import LatencyStats, latency_stats
from harness.results.trials import add_trial_figures

LOCUST_STATS_FILE = f"{schema.LOCUST_CSV_PREFIX}_stats.csv"

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

# When a cell measured the load generator rather than the server (generator_bound, flags).
GENERATOR_CPU_LIMIT_PCT = 90.0  # the generator process's mean CPU over the window, % of a core
CEILING_FRACTION = 0.85  # rps at or above this fraction of the calibrated generator ceiling
LATE_STARTS_LIMIT = 0.01  # open load: more than this fraction of starts behind schedule
# Flagged, but not generator-bound: the cell measured a failing server.
ERROR_RATE_LIMIT = 0.05
FLAG_SEPARATOR = "; "


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    """The run's manifest.json; ValueError naming the path when there is none or it is broken."""
    path = Path(run_dir) / schema.MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"{Path(run_dir)} is not a gatebench run folder: no {path.name} there")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return manifest


def cell_dir(run_dir: Path | str, cell_id: str) -> Path:
    return Path(run_dir) / schema.RAW_DIR / cell_id


def read_latency(run_dir: Path | str, cell_id: str) -> dict[str, Any] | None:
    """A cell's latency.json, or None when it is missing or unreadable."""
    path = cell_dir(run_dir, cell_id) / schema.LATENCY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_resources(run_dir: Path | str, cell_id: str) -> pd.DataFrame | None:
    """A cell's resources.csv (t, role, cpu_pct, rss_mb, procs), or None when unusable."""
    path = cell_dir(run_dir, cell_id) / schema.RESOURCES_FILE
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if not {"t", "role", "cpu_pct", "rss_mb"} <= set(frame.columns):
        return None
    for column in ("t", "cpu_pct", "rss_mb"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def read_locust_aggregate(run_dir: Path | str, cell_id: str) -> dict[str, str] | None:
    """The ``Aggregated`` row of locust's own stats CSV, or None."""
    path = cell_dir(run_dir, cell_id) / LOCUST_STATS_FILE
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("Name") == "Aggregated":
                    return row
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def read_stall(run_dir: Path | str, cell_id: str) -> dict[str, Any] | None:
    """A cell's stall.json (``at`` epoch seconds, ``for_s``), or None when there was no stall."""
    path = cell_dir(run_dir, cell_id) / schema.STALL_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def calibration_rps(manifest: dict[str, Any]) -> float | None:
    """The generator's ceiling measured by the run's calibration, None when not measured."""
    calibration = manifest.get("calibration")
    return _number(calibration.get("rps")) if isinstance(calibration, dict) else None


def _number(value: Any) -> float | None:
    """A finite float, or None for empty, null, "N/A" and other non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


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
    start, end = _number(latency.get("window_start")), _number(latency.get("window_end"))
    if resources is None or start is None or end is None:
        return empty
    window = resources[(resources["t"] >= start) & (resources["t"] <= end)]
    server = window[window["role"] == "server"]
    generator = window[window["role"] == "generator"]
    return {
        "server_cpu_pct": _number(server["cpu_pct"].mean()) if len(server) else None,
        "server_rss_mb": _number(server["rss_mb"].max()) if len(server) else None,
        "generator_cpu_pct": _number(generator["cpu_pct"].mean()) if len(generator) else None,
    }


def _latency_figures(latency: dict[str, Any]) -> dict[str, Any]:
    successes = _number(latency.get("successes"))
    failures = _number(latency.get("failures"))
    duration_s = _number(latency.get("duration_s"))
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
        "launched": _number(schedule.get("launched")),
        "late_starts": _number(schedule.get("late")),
        "dropped": _number(schedule.get("dropped")),
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
    started = _number(latency.get("load_started_at"))
    if resources is None or started is None:
        return None
    before = resources[(resources["role"] == "server") & (resources["t"] <= started)]
    return _number(before["rss_mb"].min()) if len(before) else None


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
    established = _number(latency.get("connects"))
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
            _number(entry.get("successes")), _number(latency.get("duration_s"))
        ),
    }


def _stall_figures(stall: dict[str, Any] | None, latency: dict[str, Any]) -> dict[str, Any]:
    """When an injected stall began, in seconds after the measurement window opened."""
    if stall is None:
        return {}
    at, start = _number(stall.get("at")), _number(latency.get("window_start"))
    return {
        "stall_at_s": None if at is None or start is None else at - start,
        "stall_for_s": _number(stall.get("for_s")),
    }


def _pct(fraction: float) -> str:
    return f"{round(fraction * 100, 1):g}%"


def cell_flags(row: dict[str, Any]) -> tuple[bool | None, list[str]]:
    """Whether a cell was generator-bound, and every reason to distrust it (thresholds above).

    None instead of a bool when the cell has no figures to judge (it never ran).
    """
    rps, cpu = row.get("rps"), row.get("generator_cpu_pct")
    ceiling = row.get("generator_ceiling_rps")
    launched, late, dropped = row.get("launched"), row.get("late_starts"), row.get("dropped")
    generator: list[str] = []
    if cpu is not None and cpu >= GENERATOR_CPU_LIMIT_PCT:
        generator.append(f"generator CPU {cpu:.0f}% >= {GENERATOR_CPU_LIMIT_PCT:.0f}%")
    if rps is not None and ceiling and rps >= CEILING_FRACTION * ceiling:
        generator.append(
            f"rps {rps:.0f} >= {_pct(CEILING_FRACTION)} of generator ceiling {ceiling:.0f}"
        )
    if launched and late is not None and late / launched > LATE_STARTS_LIMIT:
        generator.append(f"{_pct(late / launched)} of starts late")
    if dropped:
        generator.append(f"{dropped:.0f} arrivals dropped")
    others = []
    error_rate = row.get("error_rate")
    if error_rate is not None and error_rate > ERROR_RATE_LIMIT:
        others.append(f"error rate {_pct(error_rate)} > {_pct(ERROR_RATE_LIMIT)}")
    judged = rps is not None or cpu is not None
    return (bool(generator) if judged else None), generator + others


def _locust_figures(row: dict[str, str] | None) -> dict[str, Any]:
    row = row or {}
    return {
        "locust_rps": _number(row.get("Requests/s")),
        "locust_p50_ms": _number(row.get("50%")),
        "locust_p99_ms": _number(row.get("99%")),
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
    slots = _number(target.get("slots"))
    users = _number(cell.get("users"))
    rate = _number(cell.get("rate"))
    service_time_ms = _number(cell.get("service_time_ms"))
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
        "trial": _number(cell.get("trial")),
        "duration_s": _number(cell.get("duration_s")),
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
