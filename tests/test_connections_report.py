"""Long-lived connections: the three-panel chart and the report section of SSE/WS scenarios."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from analysis_fixtures import make_run
from test_charts_report import has_point, spy_on_charts

from harness import schema
from harness.charts.common import target_colours
from harness.charts.draw import draw_charts
from harness.charts.paths import CONNECTIONS_CAPTION, connections_chart_path
from harness.report.markdown import render_report
from harness.results.connections import MESSAGE_P99_LIMIT_MS
from harness.results.folder import load
from harness.results.summary import build_summary

# (target, users) -> (established, rss kB per connection, message p50, p99, messages/s)
WS_CELLS = {
    ("fastapi-uvicorn", 10): (10, 40.0, 0.5, 1.5, 10.0),
    ("fastapi-uvicorn", 100): (100, 17.0, 0.6, 2.25, 100.0),
    ("flask-gunicorn-sync", 10): (4, 900.0, 0.4, 0.8, 4.0),
    ("flask-gunicorn-sync", 100): (4, 125.0, 0.5, 1.2, 4.0),
}


def _ws_run(root: Path) -> Path:
    """The fixture run with its io scenario's ok cells turned into WebSocket cells."""
    run = make_run(root)
    summary = build_summary(run.run_dir)
    for (target, users), figures in WS_CELLS.items():
        at = summary["target"].eq(target) & summary["users"].eq(users)
        at &= summary["status"].eq(schema.STATUS_OK)
        assert at.sum() == 1
        summary.loc[at, "protocol"] = "ws"
        summary.loc[at, "connections_requested"] = users
        columns = ["connections_established", "rss_per_connection_kb", "message_p50_ms"]
        columns += ["message_p99_ms", "messages_per_s"]
        for column, value in zip(columns, figures, strict=True):
            summary.loc[at, column] = value
    summary.to_csv(run.run_dir / schema.SUMMARY_FILE, index=False)
    return run.run_dir


def test_connections_chart_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _ws_run(tmp_path)
    drawn = spy_on_charts(monkeypatch)
    written = draw_charts(run_dir)
    path = connections_chart_path(run_dir, "io")
    assert path in written and path.is_file()
    chart = drawn[path.name]
    assert chart.suptitle.startswith("io: ")
    held, memory, latency = chart.axes
    assert "every connection held" in held.legend
    assert has_point(held, 10, 10, style="--") and has_point(held, 100, 100, style="--")
    colours = target_colours(["fastapi-uvicorn", "flask-gunicorn-sync"])
    for (target, users), (established, kb, p50, p99, _rate) in WS_CELLS.items():
        colour = tuple(colours[target])
        assert _on(held, colour, users, established) and _on(memory, colour, users, kb)
        assert _on(latency, colour, users, p50, "-") and _on(latency, colour, users, p99, "--")


def _on(ax: object, colour: tuple[float, ...], x: float, y: float, style: str = "-") -> bool:
    """Whether a line of this colour and style goes through (x, y)."""
    return any(
        line.colour == colour
        and line.style == style
        and any(p == (x, y) for p in zip(line.x, line.y, strict=True))
        for line in ax.lines  # type: ignore[attr-defined]
    )


def test_connections_section_sentences(tmp_path: Path) -> None:
    run_dir = _ws_run(tmp_path)
    draw_charts(run_dir)
    text = render_report(load(run_dir))
    assert "## Long-lived connections: `io`" in text
    assert MESSAGE_P99_LIMIT_MS == 100
    assert (
        "fastapi-uvicorn held 100 of 100 connections (message p99 2.25 ms, 17 kB per connection)"
    ) in text
    assert (
        "flask-gunicorn-sync held 4 of 100: its 4 slots — the other connections waited "
        "in the accept queue."
    ) in text
    assert "| flask-gunicorn-sync | 10 | 4 | 900.0 | – | 0.40 | 0.80 | 4.0 |" in text
    assert f"*{CONNECTIONS_CAPTION}*" in text
    assert "charts/io_connections.png" in text


def test_slow_messages_are_not_held(tmp_path: Path) -> None:
    run_dir = _ws_run(tmp_path)
    path = run_dir / schema.SUMMARY_FILE
    summary = pd.read_csv(path)
    slow = summary["target"].eq("fastapi-uvicorn") & summary["users"].eq(100)
    summary.loc[slow, "message_p99_ms"] = 250.0
    summary.to_csv(path, index=False)
    text = render_report(load(run_dir))
    assert "fastapi-uvicorn held 10 of 10 connections (message p99 1.50 ms, 40 kB" in text
    assert "at 100 it held 100 with message p99 250.0 ms" in text


def test_http_runs_have_no_connections_chart_or_section(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    written = draw_charts(run.run_dir)
    assert not any(p.name.endswith("_connections.png") for p in written)
    assert not connections_chart_path(run.run_dir, "io").exists()
    assert "Long-lived connections" not in render_report(load(run.run_dir))
