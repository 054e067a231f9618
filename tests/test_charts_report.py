"""Charts and report.md from a run folder: files on disk, headline numbers, links, failures."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from analysis_fixtures import (
    BUSY_GENERATOR,
    ERRORS,
    FAILED_CELL,
    FAILED_ERROR,
    FAILED_TARGET,
    NEAR_CEILING,
    SKIP_ERROR,
    TRIAL_RPS,
    VERIFY_PROBLEM,
    FakeRun,
    make_run,
    measure_cell_id,
)
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from harness import charts, schema
from harness.charts import (
    CI_LABEL,
    GENERATOR_LABEL,
    chart_paths,
    draw_charts,
    stall_chart_path,
    target_colours,
)
from harness.report import build_all, headline, write_report
from harness.report_sections import DO_NOT_COMPARE
from harness.results import load
from harness.summary import build_summary

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


# ---- measurement you can trust ----------------------------------------------------------------


@pytest.fixture
def measured(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path, measurement=True)


@dataclass
class Drawn:
    """What one chart held when it was saved."""

    lines: list[tuple[str, str, list[float], list[float]]]  # linestyle, marker, x, y
    legend: list[str]
    bars: list[tuple[float, float, float]]  # error bars: x, y low, y high
    texts: list[str]


def spy_on_charts(monkeypatch: pytest.MonkeyPatch) -> dict[str, Drawn]:
    """Record every chart's lines, legend and error bars as draw_charts saves it."""
    seen: dict[str, Drawn] = {}
    save = charts._save

    def spy(fig: Figure, path: Path) -> Path:
        ax = fig.axes[0]
        lines = [
            (
                str(line.get_linestyle()),
                str(line.get_marker()),
                [float(v) for v in line.get_xdata()],  # type: ignore[union-attr]
                [float(v) for v in line.get_ydata()],  # type: ignore[union-attr]
            )
            for line in ax.lines
        ]
        bars = [
            (float(seg[0][0]), float(seg[0][1]), float(seg[1][1]))
            for container in ax.containers
            if isinstance(container, ErrorbarContainer)
            for collection in container.lines[2]
            for seg in collection.get_segments()
        ]
        legend = ax.get_legend()
        labels = [t.get_text() for t in legend.get_texts()] if legend else []
        seen[path.name] = Drawn(lines, labels, bars, [t.get_text() for t in ax.texts])
        return save(fig, path)

    monkeypatch.setattr(charts, "_save", spy)
    return seen


def has_point(drawn: Drawn, x: float, y: float, *, marker: str = "", style: str = "") -> bool:
    return any(
        (not marker or m == marker)
        and (not style or s == style)
        and any(
            px == pytest.approx(x) and py == pytest.approx(y) for px, py in zip(xs, ys, strict=True)
        )
        for s, m, xs, ys in drawn.lines
    )


def test_measurement_charts_are_written(measured: FakeRun) -> None:
    written = draw_charts(measured.run_dir)
    names = sorted(p.name for p in written)
    expected = ["io_latency.png", "io_throughput.png", "measure_latency.png"]
    expected += ["measure_open_latency.png", "measure_open_throughput.png"]
    expected += ["measure_stall.png", "measure_throughput.png"]
    assert names == expected
    for path in written:
        assert_png(path)
    assert stall_chart_path(measured.run_dir, "measure") in written
    assert not stall_chart_path(measured.run_dir, "io").exists()  # no stall there


def test_charts_mark_generator_bound_cells_and_draw_ci(
    measured: FakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = spy_on_charts(monkeypatch)
    draw_charts(measured.run_dir)
    summary = build_summary(measured.run_dir).set_index("cell_id")
    throughput = drawn["measure_throughput.png"]
    # Black hollow squares on the two generator-bound closed cells, with a legend entry.
    assert has_point(throughput, 50, 900.0, marker="s")
    assert has_point(throughput, 100, 2950.0, marker="s")
    assert not has_point(throughput, 10, 200.0, marker="s")
    assert GENERATOR_LABEL in throughput.legend and CI_LABEL in throughput.legend
    # Error bars of the 3-trial groups span exactly the 95% CI from summary.csv.
    for target in TRIAL_RPS:
        row = summary.loc[measure_cell_id(target[0], 10)]
        assert (10.0, row["rps_ci_low"], row["rps_ci_high"]) in [
            pytest.approx(bar) for bar in throughput.bars
        ], target
    # The Little's-law bound stays: dashed, 80 rps for 4 sync workers.
    assert has_point(throughput, 10, 80.0, style="--")
    open_throughput = drawn["measure_open_throughput.png"]
    assert has_point(open_throughput, 400, 399.5, marker="s")
    # A single trial everywhere: no bars, no CI legend, no generator-bound entry.
    assert drawn["io_throughput.png"].bars == []
    assert CI_LABEL not in drawn["io_throughput.png"].legend
    assert GENERATOR_LABEL not in drawn["io_throughput.png"].legend


def test_open_latency_chart_draws_p99_corrected_and_uncorrected(
    measured: FakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = spy_on_charts(monkeypatch)
    draw_charts(measured.run_dir)
    row = build_summary(measured.run_dir).set_index("cell_id")
    row = row.loc[measure_cell_id("flask-gunicorn-sync", rate=50.0)]
    chart = drawn["measure_open_latency.png"]
    assert has_point(chart, 50, row["p99_ms"], style="-", marker="^")
    assert has_point(chart, 50, row["p99_uncorrected_ms"], style=":", marker="v")
    assert "p99 from the intended start (corrected)" in chart.legend
    assert "p99 from the actual send (uncorrected)" in chart.legend
    assert "stall 1 s" in chart.texts
    closed = drawn["measure_latency.png"]
    assert not any(style == ":" for style, *_ in closed.lines)  # closed: p50 and p99 only
    assert "server stalled (SIGSTOP)" in drawn["measure_stall.png"].legend


def section(text: str, title: str) -> str:
    """The body of a "## title" section of the report ("" when there is none)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def test_report_measurement_sections(measured: FakeRun) -> None:
    build_all(measured.run_dir)
    text = (measured.run_dir / schema.REPORT_MD).read_text()
    measurement = section(text, "Measurement")
    for words in (
        "3 s of load that is not counted (warm-up)",
        "only requests that complete inside it count",
        "HDR histogram of every successful request at 3 significant digits",
        "`locust_*` columns",
        "**Failures** are counted apart",
        "server on CPUs [0], load generator on CPUs [1]",
        "**Generator ceiling:** 3,100.5 requests/s",
        "**Trials:** 1 to 3 per cell",
    ):
        assert words in measurement, words
    assert "coordinated omission" in section(text, "Closed vs open load")
    verify = section(text, "Verify gate")
    assert f"| {FAILED_TARGET} | **failed** | 180.2 | 50.0 | 31 | {VERIFY_PROBLEM} |" in verify
    assert "| fastapi-uvicorn | passed | 50.8 | 50.0 | 31 | – |" in verify
    bound = section(text, "Generator-bound cells")
    assert DO_NOT_COMPARE in bound
    flagged = re.findall(r"^\| `([^`]+)` \|.*\| ([^|]+) \|$", bound, re.M)
    assert flagged == [
        (measure_cell_id(BUSY_GENERATOR[0], BUSY_GENERATOR[1]), "generator CPU 96% >= 90%"),
        (
            measure_cell_id(NEAR_CEILING[0], NEAR_CEILING[1]),
            "rps 2950 >= 85% of generator ceiling 3100",
        ),
        (
            measure_cell_id("fastapi-uvicorn", rate=400.0),
            "1.8% of starts late; 5 arrivals dropped",
        ),
    ]
    errors = section(text, "Cells with errors")
    assert f"| `{measure_cell_id(ERRORS[0], ERRORS[1])}` | 10.0% | 80 |" in errors
    unstable = section(text, "Unstable cells")
    assert (
        "| measure | flask-gunicorn-sync | 10 users | 3 | 70.0 | 45.2 – 94.8 | 14.3% |" in unstable
    )
    assert "fastapi-uvicorn" not in unstable
    stall = section(text, "Injected stall")
    stalled = measure_cell_id("flask-gunicorn-sync", rate=50.0)
    assert re.search(rf"\| `{stalled}` \| open \| 5\.00 \| 1\.00 \| 994\.3 \| 5\d\.\d \|", stall)
    assert "![measure stall](charts/measure_stall.png)" in stall
    # Skipped cells of the target that failed verify are listed with the reason.
    skipped = measure_cell_id(FAILED_TARGET, 10)
    assert f"| `{skipped}` | skipped | {SKIP_ERROR} |" in section(text, "Failed cells")


def test_report_open_and_trials_tables(measured: FakeRun) -> None:
    text = write_report(measured.run_dir).read_text()
    scenario = section(text, "Scenario `measure`")
    header = (
        "| target | rate | rps | launched | late | dropped | p50 ms | p99 ms | p99 ms uncorrected |"
    )
    assert header in scenario
    assert re.search(
        r"\| flask-gunicorn-sync \| 50 \| 50\.0 \| 500 \| 2 \| 0 \| [\d.]+ \| 994\.3 \| 5\d\.\d \|",
        scenario,
    )
    assert re.search(
        r"\| fastapi-uvicorn \| 400 \|.*\| 1\.8% of starts late; 5 arrivals dropped \|", scenario
    )
    assert "| fastapi-uvicorn | 10 | 3 | 200.0 | 175.2 – 224.8 | 5.0% |" in scenario
    assert re.search(
        r"\| flask-gunicorn-sync \| 10 \| 3 \| 70\.0 \| 45\.2 – 94\.8 \| 14\.3% \|"
        r".*\| \*\*yes\*\* \|",
        scenario,
    )


def test_headline_skips_generator_bound_cells(measured: FakeRun) -> None:
    text = write_report(measured.run_dir).read_text()
    findings = section(text, "Headline findings")
    closed = next(
        line for line in findings.splitlines() if "on **measure**" in line and "users" in line
    )
    # 50 and 100 users hold both targets' highest load, but fastapi's cells there are
    # generator-bound: the comparison falls back to 10 users and names what it left out.
    assert closed.startswith("- At 10 users on **measure**, fastapi-uvicorn served 200.0 rps")
    assert "2,950" not in closed and "900.0" not in closed
    assert "Left out as generator-bound" in closed
    assert "fastapi-uvicorn at 50 users, fastapi-uvicorn at 100 users" in closed
    assert "Unstable across trials (CV > 10%) there: flask-gunicorn-sync." in closed
    opened = next(
        line for line in findings.splitlines() if "requests/s offered on **measure**" in line
    )
    assert opened.startswith("- At 50 requests/s offered on **measure**")
    assert "flask-gunicorn-sync 994.3 ms (5" in opened  # corrected, then uncorrected
    assert "fastapi-uvicorn at 400 requests/s offered" in opened


def test_headline_when_every_cell_is_generator_bound(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    results = load(run.run_dir)
    results.summary["generator_bound"] = results.summary["status"].eq("ok")
    (line,) = headline(results, "io")
    assert "was generator-bound" in line and "served" not in line


def test_report_warns_when_pinning_was_not_applied(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    path = run.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["pinning"] = {
        "server_cpus": None,
        "generator_cpus": None,
        "applied": False,
        "note": "only 1 usable CPU: server and generator share it",
    }
    path.write_text(json.dumps(manifest))
    text = write_report(run.run_dir).read_text()
    head = text.split("## How to read this")[0]
    assert "**Warning: CPU pinning was not applied (only 1 usable CPU" in head
    assert "results may be distorted" in head
    assert "**CPU pinning: not applied**" in section(text, "Measurement")


def test_report_without_measurement_extras(run: FakeRun) -> None:
    text = write_report(run.run_dir).read_text()
    assert "## Measurement" in text
    assert "**Generator ceiling:** not measured in this run" in text
    assert "**Trials:** 1 per cell" in text
    for title in (
        "Closed vs open load",
        "Verify gate",
        "Generator-bound cells",
        "Cells with errors",
        "Unstable cells",
        "Injected stall",
    ):
        assert f"## {title}" not in text, title
