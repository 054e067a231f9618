"""The whole analysis step of a run folder: ``build_all``.

summary.csv from the raw files, every chart, report.md, then report.html converted from it, in
that order (each step reads what the one before wrote). The orchestrator calls this after the
last cell, and ``python -m harness report RUN_DIR`` calls it on any run folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.charts.draw import draw_charts
from harness.report.html import write_html
from harness.report.markdown import write_report
from harness.results.summary import write_summary


def build_all(run_dir: Path | str, workers: int = 1) -> list[Path]:
    """The whole analysis step: summary.csv, charts (drawn by ``workers`` processes),
    report.md, then report.html from it."""
    written = [write_summary(run_dir)]
    written += draw_charts(run_dir, workers)
    written.append(write_report(run_dir))
    written.append(write_html(run_dir))
    return written


def drawing_workers() -> int:
    """How many processes draw charts: one per CPU this process may use."""
    return max(1, len(os.sched_getaffinity(0)))
