"""Where each chart of a run goes, and the question each one answers (its caption).

The one table of chart files: the chart modules save to these paths, and the Markdown report
links them with these captions. No matplotlib here, so writing report.md never loads it.
"""

from __future__ import annotations

from pathlib import Path

from harness import schema
from harness.results.rows import LOAD_AXES

# Per scenario and load model, in report order: chart name -> the question it answers.
CAPTIONS: dict[str, str] = {
    "throughput": "How many requests per second did each stack serve as load grew, and how "
    "close did it come to its bound, the lowest ceiling of its roofline (dashed)?",
    "latency": "How long did requests take as load grew: median (p50), p99 and p99.9?",
    "knee": "How much throughput does each stack give before its p99 latency takes off "
    "(the knee of the curve)?",
    "percentiles": "At the highest load every target completed, how is latency spread out "
    "to the slowest requests (an HDR percentile plot)?",
    "timeline": "Was throughput steady through the measurement window at that load, or did "
    "it stall or wobble?",
    "resources": "What did each stack cost in server CPU and memory as load grew, and did "
    "the load generator run out of CPU (thin grey)?",
}
OVERVIEW_CAPTION = (
    "Across scenarios, how many times the throughput of the WSGI stack does the ASGI stack "
    "serve at the highest load both completed (above 1.0: ASGI served more)?"
)
STALL_CAPTION = "What happened to throughput, second by second, while the server was paused?"
FACTORS_CAPTION = "How much of the gap each single change explains"
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
