"""Where each chart of a run goes, and the question each one answers (its caption).

The one table of chart files: the chart modules save to these paths, and the Markdown report
links them with these captions. No matplotlib here, so writing report.md never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness import schema
from harness.format import load_text
from harness.results.rows import LOAD_AXES, generator_bound, ok_only

if TYPE_CHECKING:
    import pandas as pd

    from harness.results.folder import Results

# Per scenario and load model, in report order: chart name -> the question it answers.
CAPTIONS: dict[str, str] = {
    "throughput": "How many requests per second did each stack serve as load grew, and how "
    "close did it come to its bound, the lowest ceiling of its roofline (the wide pale line)?",
    "latency": "How long did requests take as load grew: median (p50), p99 and p99.9?",
    "knee": "How much throughput does each stack give before its p99 latency takes off "
    "(the knee of the curve)?",
    "percentiles": "At the highest load every target completed, how is latency spread out "
    "to the slowest requests (an HDR percentile plot)?",
    "timeline": "Was throughput steady through the measurement window at that load, or did "
    "it stall or wobble?",
    "resources": "What did each stack cost in server CPU and memory as load grew, and did "
    "the load generator run out of CPU (thin dashed, in the target's colour)?",
}
OVERVIEW_CAPTION = (
    "Across scenarios, how many times the throughput of the WSGI stack does the ASGI stack "
    "serve at the highest load both completed (above 1.0: ASGI served more)?"
)
STALL_CAPTION = "What happened to throughput, second by second, while the server was paused?"
FACTORS_CAPTION = "How much of the gap each single change explains"
REAL_IO_CAPTION = (
    "How many requests per second did each stack serve through its connection pool as load "
    "grew, against its bound (the wide pale line: the pool, the slots or a CPU, whichever is "
    "lowest)?"
)
PROTOCOL_CAPTION = (
    "What TLS and a new connection per request cost each stack in server CPU per request, and "
    "how many requests/s each served over HTTP/2 against HTTP/1.1 with the same requests in "
    "flight (black outline: generator-bound)?"
)
CONNECTIONS_CAPTION = (
    "How many long-lived connections each stack held, what each cost in memory, and how fast "
    "messages still arrived"
)


def _charts(run_dir: Path | str) -> Path:
    return Path(run_dir) / schema.CHARTS_DIR


def _suffix(load_model: str) -> str:
    return LOAD_AXES.get(load_model, LOAD_AXES["closed"]).suffix


def chart_paths(run_dir: Path | str, scenario: str, load_model: str = "closed") -> dict[str, Path]:
    """Where each chart of a scenario (and load model) goes, by name, in report order."""
    return {
        name: _charts(run_dir) / f"{scenario}{_suffix(load_model)}_{name}.png" for name in CAPTIONS
    }


def factors_chart_path(run_dir: Path | str, scenario: str, load_model: str = "closed") -> Path:
    """Where the single-change ratio chart of a scenario (and load model) goes."""
    return _charts(run_dir) / f"{scenario}{_suffix(load_model)}_factors.png"


def stall_chart_path(run_dir: Path | str, scenario: str) -> Path:
    """Where the throughput-over-time chart of a scenario's stalled cells goes."""
    return _charts(run_dir) / f"{scenario}_stall.png"


def connections_chart_path(run_dir: Path | str, scenario: str) -> Path:
    """Where the long-lived connections chart of a scenario goes."""
    return _charts(run_dir) / f"{scenario}_connections.png"


def overview_chart_path(run_dir: Path | str) -> Path:
    """Where the ASGI/WSGI throughput-ratio chart across scenarios goes."""
    return _charts(run_dir) / "overview_asgi_wsgi.png"


def real_io_chart_path(run_dir: Path | str) -> Path:
    """Where the real-I/O chart (one panel per scenario needing a database or upstream) goes."""
    return _charts(run_dir) / "real_io.png"


def protocol_chart_path(run_dir: Path | str) -> Path:
    """Where the protocol chart (cost per request; HTTP/2 against HTTP/1.1) goes."""
    return _charts(run_dir) / "protocol.png"


# The charts against load that a scenario (and load model) can have nothing to say in, and why.
LINE_CHARTS = ("throughput", "latency", "knee")
ONE_LEVEL_REASON = "only one load level ({level}): a line against load needs two"
GENERATOR_BOUND_REASON = (
    "every completed cell was generator-bound: it would chart the load generator, not the stacks"
)


def charts_left_out(rows: pd.DataFrame, load_model: str = "closed") -> dict[str, str]:
    """Chart name -> why it is left out, for the summary rows of one scenario and load model.

    The throughput, latency and knee charts draw lines against load: a sweep of one load level
    (counting every cell of it, failed ones too) has no line to draw, and when every ok cell was
    generator-bound they would only show the load generator's limit. The other charts (the
    distribution and timeline at one level, resources) are kept. Empty when nothing is left
    out, or when no cell completed (then no chart of the scenario is drawn at all).
    """
    ok = ok_only(rows)
    if ok.empty:
        return {}
    if bool(generator_bound(ok).all()):
        return dict.fromkeys(LINE_CHARTS, GENERATOR_BOUND_REASON)
    column = LOAD_AXES.get(load_model, LOAD_AXES["closed"]).column
    levels = sorted(set(rows[column].dropna().astype("float64")))
    if len(levels) < 2:
        reason = ONE_LEVEL_REASON.format(level=load_text(load_model, levels[0] if levels else None))
        return dict.fromkeys(LINE_CHARTS, reason)
    return {}


def skipped_charts(results: Results, scenario: str, load_model: str = "closed") -> dict[str, str]:
    """Chart name -> why the chart of that scenario and load model is left out (see
    ``charts_left_out``): the one place that decides it, for drawing and for the report."""
    return charts_left_out(results.scenario_rows(scenario, load_model), load_model)
