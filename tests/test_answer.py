"""The answer at the top of report.md: the table, at most five findings, links to sections."""

from __future__ import annotations

import re
from pathlib import Path

from analysis_fixtures import make_run
from test_connections_report import _ws_run

from harness.report.answer import MAX_FINDINGS, Finding, choose
from harness.report.markdown import render_report
from harness.results.folder import load
from harness.results.summary import write_summary


def _answer(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("## The answer")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    return lines[start:end]


def test_the_answer_opens_the_report_with_a_table_and_linked_scenarios(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    write_summary(run.run_dir)
    results = load(run.run_dir)
    text = render_report(results)
    first_screen = text.splitlines()[:40]
    assert "## The answer" in first_screen
    answer = _answer(text)
    header = next(line for line in answer if line.startswith("| scenario |"))
    assert all(target in header for target in results.target_names)
    for scenario in results.scenario_names:
        link = f"[{scenario}](#scenario-{scenario})"
        assert any(line.startswith(f"| {link}") for line in answer), scenario
        assert f"## Scenario `{scenario}`" in text  # the heading the link lands on
    # io at 100 users: fastapi-uvicorn 1,890 rps is 24.5x flask-gunicorn-sync's 77, which
    # the slots limit.
    io = next(line for line in answer if line.startswith("| [io]"))
    assert "1,890.0 (24.5×)" in io and "77.0 (1.00×) · slots" in io
    findings = [line for line in answer if re.match(r"\d+\. ", line)]
    assert 1 <= len(findings) <= MAX_FINDINGS
    assert any(
        "**io** at 100 users" in f and "limited by the server's slots" in f for f in findings
    )


def test_connection_findings_rank_by_connections_held_never_by_latency(tmp_path: Path) -> None:
    # flask-gunicorn-sync held 4 of 100 connections with a lower message p99 (1.2 ms) than
    # fastapi-uvicorn, which held all 100 (2.25 ms): it must not come out ahead.
    run_dir = _ws_run(tmp_path)
    text = render_report(load(run_dir))
    answer = _answer(text)
    row = next(line for line in answer if line.startswith("| [io]"))
    assert "100 connections" in row and "held 100" in row and "held 4" in row
    (finding,) = [line for line in answer if "**io**" in line]
    assert "fastapi-uvicorn 100, flask-gunicorn-sync 4 (its 4 slots) held" in finding
    assert "fastapi-uvicorn delivered messages fastest" in finding
    assert "flask-gunicorn-sync delivered" not in finding
    assert "lowest p99 was flask-gunicorn-sync" not in text


def test_choose_keeps_a_cpu_finding_and_at_most_two_connection_findings() -> None:
    findings = [
        Finding(3.0, "c1", "connections"),
        Finding(2.9, "c2", "connections"),
        Finding(2.8, "c3", "connections"),
        Finding(2.0, "h1", "http"),
        Finding(1.5, "h2", "http"),
        Finding(1.0, "h3", "http"),
        Finding(0.2, "cpu", "cpu"),
    ]
    chosen = [f.text for f in choose(findings)]
    assert len(chosen) == MAX_FINDINGS
    assert chosen == ["c1", "c2", "h1", "h2", "cpu"]


def test_a_server_that_closes_every_connection_is_named() -> None:
    import pandas as pd

    from harness.report.answer import keepalive_text

    closes = pd.Series({"connections_per_request": 0.998})
    assert keepalive_text(closes) == "; no keep-alive: 1.00 new connections per request"
    assert keepalive_text(pd.Series({"connections_per_request": 0.0})) == ""
    assert keepalive_text(pd.Series({"connections_per_request": float("nan")})) == ""
