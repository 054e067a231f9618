"""Charts and report.md from a run folder: files on disk, headline numbers, links, failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from analysis_fixtures import FAILED_CELL, FAILED_ERROR, FakeRun, make_run

from harness import schema
from harness.charts import chart_paths, draw_charts, target_colours
from harness.report import build_all, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path, extra_scenario=True)


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000, path


def test_charts_for_each_scenario_with_ok_cells(run: FakeRun) -> None:
    written = draw_charts(run.run_dir)
    expected = chart_paths(run.run_dir, "io")
    assert sorted(written) == sorted(expected.values())
    for path in written:
        assert_png(path)
    # "broken" has no ok cell: skipped, not an empty chart, not a crash.
    assert not chart_paths(run.run_dir, "broken")["throughput"].exists()
    assert [p for p in (run.run_dir / schema.CHARTS_DIR).iterdir() if p.suffix != ".png"] == []


def test_charts_with_several_trials(tmp_path: Path) -> None:
    run = make_run(tmp_path, trials=3)
    for path in draw_charts(run.run_dir):
        assert_png(path)


def test_charts_of_a_run_where_nothing_completed(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    manifest_path = run.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    for cell in manifest["cells"]:
        cell["status"] = schema.STATUS_PENDING
    manifest_path.write_text(json.dumps(manifest))
    assert draw_charts(run.run_dir) == []
    text = write_report(run.run_dir).read_text()
    assert "nothing to compare" in text


def test_target_colours_are_stable() -> None:
    names = ["flask-gunicorn-sync", "fastapi-uvicorn", "flask-gunicorn-gthread"]
    assert target_colours(names) == target_colours(sorted(names, reverse=True))
    assert len(set(target_colours(names).values())) == len(names)


def test_report_headline_table_failures_and_links(run: FakeRun) -> None:
    written = build_all(run.run_dir)
    report = run.run_dir / schema.REPORT_MD
    assert written[0] == run.run_dir / schema.SUMMARY_FILE and written[-1] == report
    text = report.read_text()
    assert text.startswith(f"# gatebench run {run.run_dir.name}\n")
    assert "**Status:** failed" in text
    # 1890 / 77 = 24.5x; 77 / 80 = 0.96; 1890 / 2000 = 0.945, a binary float just below: 0.94.
    assert (
        "At 100 users on **io**, fastapi-uvicorn served 1,890.0 rps, 24.5× flask-gunicorn-sync "
        "(77.0 rps, 0.96 of its bound of 80 rps = 4 slots / 50 ms)."
    ) in text
    assert "fastapi-uvicorn reached 0.94 of its bound (2,000 rps = 100 users / 50 ms)" in text
    assert "| target | users | rps | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |" in text
    assert re.search(r"\| fastapi-uvicorn \| 100 \| 1,890\.0 \| [\d.]+ \|", text)
    assert re.search(r"\| flask-gunicorn-sync \| 200 \| – \|.*\| 80 \|.*\| failed \|", text)
    assert "## Failed cells" in text
    failed_id = FakeRun.cell_id(*FAILED_CELL)
    assert f"| `{failed_id}` | failed | {FAILED_ERROR} |" in text
    assert "generator CPU set shares a core" in text
    assert "## Environment" in text and "`3f5a9c0e1b2d`" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == ["charts/io_latency.png", "charts/io_throughput.png"]
    for link in links:
        assert_png(run.run_dir / link)


def test_report_without_charts_links_nothing_missing(run: FakeRun) -> None:
    text = write_report(run.run_dir).read_text()
    assert "![" not in text
    assert "## Headline findings" in text
    assert [p.name for p in run.run_dir.iterdir() if p.name.endswith(".tmp")] == []
