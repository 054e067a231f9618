"""The "Driver cost: h2load beside gatebench" block of report.md, from ``crosscheck.csv``.

``python -m harness crosscheck`` (``harness.run.crosscheck``) replays a run's HTTP/2 cells with
h2load and writes the file; this block shows it, or nothing when the run was never crosschecked.
One row per cell: requests/s, p50 and p99 of both generators, and each one's CPU per request;
one sentence gives the range of the CPU ratio, computed from the same rows. Cells that could
not be replayed are named with their reason.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from harness import schema
from harness.format import fmt, fmt_int, fmt_ms, ratio_number
from harness.report.blocks import table
from harness.results.raw import finite_number

CROSSCHECK_FILE = schema.CROSSCHECK_FILE  # written by harness.run.crosscheck
TITLE = "### Driver cost: h2load beside gatebench"
INTRO = (
    "Each cell of the HTTP/2 user replayed with h2load (nghttp2's load generator, written in "
    "C) against the same target started again the same way: the same CPUs, the same users × "
    "streams in flight (over h2: one connection per user; for an HTTP/1.1 twin: `--h1`, a "
    "connection per stream), the same route, warm-up and duration. Latency is h2load's exact "
    "per-request log; *CPU/request* is each generator's own CPU time per request. Similar "
    "latency with far less CPU says the cell measured the server; a much higher h2load "
    "requests/s says gatebench's generator was the limit."
)
HEADER = [
    "cell",
    "requests/s gatebench",
    "requests/s h2load",
    "h2load / gatebench",
    "p50 ms gatebench",
    "p50 ms h2load",
    "p99 ms gatebench",
    "p99 ms h2load",
    "CPU ms/request gatebench",
    "CPU ms/request h2load",
    "h2load failed",
]


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    """crosscheck.csv's rows ([] when there is none or it cannot be read)."""
    try:
        with (run_dir / CROSSCHECK_FILE).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _cell(row: dict[str, str]) -> str:
    http = row.get("http") or "2"  # a crosscheck.csv from before HTTP/1.1 twins: h2 only
    return (
        f"{row.get('target', '')} (HTTP/{http}), {row.get('users', '')} users × "
        f"{row.get('streams', '')} streams"
    )


def cpu_sentence(rows: list[dict[str, str]]) -> str:
    """ "gatebench's generator spent 12–16× the CPU per request of h2load." (or "")."""
    ratios = []
    for row in rows:
        ours = finite_number(row.get("gatebench_cpu_ms_per_request"))
        theirs = finite_number(row.get("h2load_cpu_ms_per_request"))
        if ours is not None and theirs:
            ratios.append(ours / theirs)
    if not ratios:
        return ""
    low, high = ratio_number(min(ratios)), ratio_number(max(ratios))
    span = low if low == high else f"{low}–{high}"
    return f"gatebench's generator spent {span}× the CPU per request of h2load."


def crosscheck_lines(run_dir: Path) -> list[str]:
    """The block's Markdown lines; [] when the run has no crosscheck.csv."""
    rows = read_rows(Path(run_dir))
    if not rows:
        return []
    replayed = [row for row in rows if not row.get("error")]
    body = [
        [
            _cell(row),
            fmt(finite_number(row.get("gatebench_rps"))),
            fmt(finite_number(row.get("h2load_rps"))),
            ratio_number(finite_number(row.get("rps_ratio"))),
            fmt_ms(finite_number(row.get("gatebench_p50_ms"))),
            fmt_ms(finite_number(row.get("h2load_p50_ms"))),
            fmt_ms(finite_number(row.get("gatebench_p99_ms"))),
            fmt_ms(finite_number(row.get("h2load_p99_ms"))),
            fmt(finite_number(row.get("gatebench_cpu_ms_per_request")), 3),
            fmt(finite_number(row.get("h2load_cpu_ms_per_request")), 3),
            fmt_int(finite_number(row.get("h2load_failed"))),
        ]
        for row in replayed
    ]
    lines = [TITLE, "", INTRO, ""]
    if body:
        lines += [*table(HEADER, body), ""]
    sentence = cpu_sentence(replayed)
    if sentence:
        lines += [sentence, ""]
    for row in rows:
        if row.get("error"):
            lines.append(f"- not replayed: `{row.get('cell_id', '')}`: {row['error']}")
    if lines[-1] != "":
        lines.append("")
    return lines


def _number(value: Any, decimals: int = 1) -> str:
    return fmt(finite_number(value), decimals)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The printed table: one line per cell, gatebench beside h2load."""
    header = (
        f"{'cell':<40} {'rps gb':>9} {'rps h2l':>9} {'ratio':>6} {'p50 gb':>7} {'p50 h2l':>7} "
        f"{'p99 gb':>7} {'p99 h2l':>7} {'cpu/req gb':>10} {'cpu/req h2l':>11} {'failed':>6}"
    )
    lines = [header]
    for row in rows:
        if row.get("error"):
            lines.append(f"{row['cell_id']:<40} error: {row['error']}")
            continue
        lines.append(
            f"{row['cell_id']:<40} {_number(row['gatebench_rps']):>9} "
            f"{_number(row['h2load_rps']):>9} {_number(row['rps_ratio'], 2):>6} "
            f"{_number(row['gatebench_p50_ms']):>7} {_number(row['h2load_p50_ms']):>7} "
            f"{_number(row['gatebench_p99_ms']):>7} {_number(row['h2load_p99_ms']):>7} "
            f"{_number(row['gatebench_cpu_ms_per_request'], 3):>10} "
            f"{_number(row['h2load_cpu_ms_per_request'], 3):>11} {row['h2load_failed']:>6}"
        )
    lines.append("(rps: requests/s; p50/p99 in ms; cpu/req: the generator's CPU ms per request)")
    return "\n".join(lines)
