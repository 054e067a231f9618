"""Charts and report.md from a run folder: files on disk, headline numbers, links, failures."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from analysis_fixtures import (
    BUSY_GENERATOR,
    ERRORS,
    FAILED_CELL,
    FAILED_ERROR,
    FAILED_TARGET,
    GENERATOR_CPU_MEAN,
    NEAR_CEILING,
    SERVER_CPU_MEAN,
    SERVER_RSS_PEAK,
    SKIP_ERROR,
    STALL_AT_S,
    TRIAL_RPS,
    VERIFY_PROBLEM,
    FakeRun,
    make_run,
    measure_cell_id,
)
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle, StepPatch

from harness import schema
from harness.charts import common as charts_common
from harness.charts.common import CI_LABEL, GENERATOR_LABEL, target_colours
from harness.charts.draw import draw_charts
from harness.charts.paths import (
    CAPTIONS,
    OVERVIEW_CAPTION,
    STALL_CAPTION,
    chart_paths,
    overview_chart_path,
    stall_chart_path,
)
from harness.format import EMPTY, fmt, fmt_ms, load_text, missing
from harness.report.build import build_all
from harness.report.markdown import headline, write_report
from harness.report.sections import DO_NOT_COMPARE
from harness.results.folder import load
from harness.results.summary import build_summary

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
    assert list(expected) == list(CAPTIONS)
    assert sorted(written) == sorted([*expected.values(), overview_chart_path(run.run_dir)])
    for path in written:
        assert_png(path)
    # "broken" has no ok cell: skipped, not an empty chart, not a crash.
    assert not chart_paths(run.run_dir, "broken")["throughput"].exists()
    assert [p for p in (run.run_dir / schema.CHARTS_DIR).iterdir() if p.suffix != ".png"] == []


def test_charts_with_several_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path, trials=3)
    drawn = spy_on_charts(monkeypatch)
    for path in draw_charts(run.run_dir):
        assert_png(path)
    # The distribution adds the trials' histograms: every request of the three windows.
    chart = drawn["io_percentiles.png"]
    assert "3 trials merged" in chart.title
    successes = sum(1890 * 10 // 10 * 10 + (trial - 1) * 10 for trial in (1, 2, 3))
    assert f"fastapi-uvicorn ({successes:,} requests)" in chart.legend
    # Throughput over time: one stairs line per trial.
    assert len(drawn["io_timeline.png"].steps) == 6


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
    assert written[0] == run.run_dir / schema.SUMMARY_FILE and written[-2] == report
    assert written[-1] == run.run_dir / schema.REPORT_HTML
    text = report.read_text()
    assert text.startswith(f"# gatebench run {run.run_dir.name}\n")
    assert "**Status:** failed" in text
    # 1890 / 77 = 24.5x; 77 / 80 = 0.96; 1890 / 2000 = 0.945, a binary float just below: 0.94.
    assert (
        "At 100 users on **io**, fastapi-uvicorn served 1,890.0 rps, 24.5× flask-gunicorn-sync "
        "(77.0 rps, 0.96 of its bound of 80 rps, limited by the server's slots: 4 / 50 ms)."
    ) in text
    assert (
        "fastapi-uvicorn reached 0.94 of its bound of 2,000 rps, limited by the users: 100 / 50 ms"
    ) in text
    assert "| target | users | rps | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |" in text
    assert re.search(r"\| fastapi-uvicorn \| 100 \| 1,890\.0 \| [\d.]+ \|", text)
    assert re.search(r"\| flask-gunicorn-sync \| 200 \| – \|.*\| 80 \|.*\| failed \|", text)
    assert "## Failed cells" in text
    failed_id = FakeRun.cell_id(*FAILED_CELL)
    assert f"| `{failed_id}` | failed | {FAILED_ERROR} |" in text
    assert "generator CPU set shares a core" in text
    assert "## Environment" in text and "`3f5a9c0e1b2d`" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    expected = [f"charts/io_{name}.png" for name in CAPTIONS] + ["charts/overview_asgi_wsgi.png"]
    assert sorted(links) == sorted(expected)
    for link in links:
        assert_png(run.run_dir / link)
    # Every chart is followed by its caption, the question it answers.
    for name, caption in CAPTIONS.items():
        assert f"![io {name}](charts/io_{name}.png)\n\n*{caption}*\n" in text
    findings = section(text, "Findings by scenario")
    assert f"(charts/overview_asgi_wsgi.png)\n\n*{OVERVIEW_CAPTION}*" in findings


def test_report_without_charts_links_nothing_missing(run: FakeRun) -> None:
    text = write_report(run.run_dir).read_text()
    assert "![" not in text
    assert "## Findings by scenario" in text
    assert [p.name for p in run.run_dir.iterdir() if p.name.endswith(".tmp")] == []


# ---- measurement you can trust ----------------------------------------------------------------


@pytest.fixture
def measured(tmp_path: Path) -> FakeRun:
    return make_run(tmp_path, measurement=True)


@dataclass
class DrawnLine:
    style: str
    marker: str
    x: list[float]
    y: list[float]
    colour: tuple[float, ...]


@dataclass
class DrawnAxes:
    """What one axes of a chart held when the chart was saved."""

    lines: list[DrawnLine]
    legend: list[str]
    bars: list[tuple[float, float, float]]  # error bars: x, y low, y high
    texts: list[str]
    title: str
    xticklabels: list[str]
    rectangles: list[tuple[float, float, float]]  # bar charts: x centre, bottom, height
    steps: list[list[float]]  # stairs: the values of each


@dataclass
class Drawn:
    """What one chart held when it was saved; ``lines`` etc. are its first axes'."""

    axes: list[DrawnAxes]
    suptitle: str

    def __getattr__(self, name: str) -> object:
        return getattr(self.axes[0], name)


def _drawn_axes(ax: Axes) -> DrawnAxes:
    lines = [
        DrawnLine(
            str(line.get_linestyle()),
            str(line.get_marker()),
            [float(v) for v in line.get_xdata()],  # type: ignore[union-attr]
            [float(v) for v in line.get_ydata()],  # type: ignore[union-attr]
            tuple(to_rgba(line.get_color())),
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
    formatter = ax.xaxis.get_major_formatter()
    ticks = ax.get_xticks()
    return DrawnAxes(
        lines=lines,
        legend=[t.get_text() for t in legend.get_texts()] if legend else [],
        bars=bars,
        texts=[t.get_text() for t in ax.texts],
        title=ax.get_title(),
        xticklabels=[str(formatter(tick, i)) for i, tick in enumerate(ticks)],
        rectangles=[
            (r.get_x() + r.get_width() / 2, r.get_y(), r.get_height())
            for r in ax.patches
            if isinstance(r, Rectangle)
        ],
        steps=[
            [float(v) for v in p.get_data().values] for p in ax.patches if isinstance(p, StepPatch)
        ],
    )


def spy_on_charts(monkeypatch: pytest.MonkeyPatch) -> dict[str, Drawn]:
    """Record every chart's lines, legend, bars and texts as draw_charts saves it."""
    seen: dict[str, Drawn] = {}
    save = charts_common.save

    def spy(fig: Figure, path: Path, tight_bbox: bool = False) -> Path:
        suptitle = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
        seen[path.name] = Drawn([_drawn_axes(ax) for ax in fig.axes], suptitle)
        return save(fig, path, tight_bbox)

    monkeypatch.setattr(charts_common, "save", spy)
    return seen


def has_point(
    drawn: Drawn | DrawnAxes, x: float, y: float, *, marker: str = "", style: str = ""
) -> bool:
    return any(
        (not marker or line.marker == marker)
        and (not style or line.style == style)
        and any(
            px == pytest.approx(x) and py == pytest.approx(y)
            for px, py in zip(line.x, line.y, strict=True)
        )
        for line in drawn.lines  # type: ignore[union-attr]
    )


@dataclass
class DrawnRun:
    """A run folder whose charts were drawn once, with what each chart held."""

    run: FakeRun
    written: list[Path]
    drawn: dict[str, Drawn]

    @property
    def run_dir(self) -> Path:
        return self.run.run_dir


def draw_once(root: Path, **options: bool) -> DrawnRun:
    run = make_run(root, **options)
    with pytest.MonkeyPatch.context() as monkeypatch:
        drawn = spy_on_charts(monkeypatch)
        written = draw_charts(run.run_dir)
    return DrawnRun(run, written, drawn)


# Drawing every chart takes seconds: the tests that only look share one drawing per module.
@pytest.fixture(scope="module")
def measured_drawn(tmp_path_factory: pytest.TempPathFactory) -> DrawnRun:
    return draw_once(tmp_path_factory.mktemp("measured"), measurement=True)


@pytest.fixture(scope="module")
def cpu_drawn(tmp_path_factory: pytest.TempPathFactory) -> DrawnRun:
    return draw_once(tmp_path_factory.mktemp("cpu"), cpu_scenario=True, extra_scenario=True)


def test_measurement_charts_are_written(measured_drawn: DrawnRun) -> None:
    measured, written = measured_drawn, measured_drawn.written
    names = sorted(p.name for p in written)
    expected = [f"io_{name}.png" for name in CAPTIONS]
    expected += [f"measure_{name}.png" for name in CAPTIONS]
    expected += [f"measure_open_{name}.png" for name in CAPTIONS]
    expected += ["measure_stall.png", "overview_asgi_wsgi.png"]
    assert names == sorted(expected)
    for path in written:
        assert_png(path)
    assert stall_chart_path(measured.run_dir, "measure") in written
    assert not stall_chart_path(measured.run_dir, "io").exists()  # no stall there


def test_charts_mark_generator_bound_cells_and_draw_ci(measured_drawn: DrawnRun) -> None:
    measured, drawn = measured_drawn, measured_drawn.drawn
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


def test_open_latency_chart_draws_p99_corrected_and_uncorrected(measured_drawn: DrawnRun) -> None:
    measured, drawn = measured_drawn, measured_drawn.drawn
    row = build_summary(measured.run_dir).set_index("cell_id")
    row = row.loc[measure_cell_id("flask-gunicorn-sync", rate=50.0)]
    chart = drawn["measure_open_latency.png"]
    assert has_point(chart, 50, row["p99_ms"], style="--", marker="^")
    assert has_point(chart, 50, row["p99_uncorrected_ms"], style="-.", marker="v")
    assert has_point(chart, 50, row["p999_ms"], style=":", marker="d")
    assert "p99 from the intended start (corrected)" in chart.legend
    assert "p99 from the actual send (uncorrected)" in chart.legend
    assert "stall 1 s" in chart.texts
    closed = drawn["measure_latency.png"]
    assert not any(line.style == "-." for line in closed.lines)  # closed: no uncorrected p99
    assert "server stalled (SIGSTOP)" in drawn["measure_stall.png"].legend


def section(text: str, title: str) -> str:
    """The body of a "## title" section of the report ("" when there is none)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def test_report_measurement_sections(measured_drawn: DrawnRun) -> None:
    text = write_report(measured_drawn.run_dir).read_text()
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
    assert f"![measure stall](charts/measure_stall.png)\n\n*{STALL_CAPTION}*" in stall
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
    findings = section(text, "Findings by scenario")
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


# ---- charts that look closer: knee, distribution, timeline, resources, overview ---------------


def medians(run_dir: Path, scenario: str, target: str, column: str) -> dict[float, float]:
    """Load level -> median of ``column`` over the ok cells of a closed-load series."""
    ok = load(run_dir).ok_rows()
    rows = ok[(ok["scenario"] == scenario) & (ok["target"] == target)]
    rows = rows[rows["load_model"] == "closed"]
    return {float(k): float(v) for k, v in rows.groupby("users")[column].median().items()}


def lines_of(drawn: Drawn | DrawnAxes, colour: tuple[float, ...], marker: str) -> list[DrawnLine]:
    return [
        line
        for line in drawn.lines  # type: ignore[union-attr]
        if line.colour == pytest.approx(colour) and line.marker == marker and line.x
    ]


TARGET_NAMES = ["fastapi-uvicorn", "flask-gunicorn-sync"]


def test_latency_chart_draws_p999_dotted(cpu_drawn: DrawnRun) -> None:
    chart = cpu_drawn.drawn["io_latency.png"]
    for target in TARGET_NAMES:
        for users, p999 in medians(cpu_drawn.run_dir, "io", target, "p999_ms").items():
            assert has_point(chart, users, p999, style=":", marker="d"), (target, users)
    assert {"p50 (median)", "p99", "p99.9"} <= set(chart.legend)


def test_knee_chart_one_line_per_target_through_its_load_levels(cpu_drawn: DrawnRun) -> None:
    chart = cpu_drawn.drawn["io_knee.png"]
    colours = target_colours(load(cpu_drawn.run_dir).target_names)
    for target in TARGET_NAMES:
        rps = medians(cpu_drawn.run_dir, "io", target, "rps")
        p99 = medians(cpu_drawn.run_dir, "io", target, "p99_ms")
        (line,) = lines_of(chart, colours[target], "o")
        # As many points as completed load levels (flask's failed 200 users has none).
        assert len(line.x) == len(rps) == 2
        assert line.x == pytest.approx([rps[level] for level in sorted(rps)])
        assert line.y == pytest.approx([p99[level] for level in sorted(rps)])
    assert sorted(chart.texts) == ["10", "10", "100", "100"]  # each point names its user count
    assert "the knee" in chart.title and "numbers at the points: concurrent users" in chart.title
    assert chart.legend == TARGET_NAMES  # failed cells cannot sit on a throughput axis


def test_percentile_chart_at_the_highest_common_level(cpu_drawn: DrawnRun) -> None:
    chart = cpu_drawn.drawn["io_percentiles.png"]
    assert chart.xticklabels == ["0%", "50%", "90%", "99%", "99.9%", "99.99%"]
    assert "latency distribution at 100 users" in chart.title
    summary = load(cpu_drawn.run_dir).summary.set_index("cell_id")
    colours = target_colours(TARGET_NAMES)
    for target in TARGET_NAMES:
        row = summary.loc[FakeRun.cell_id(target, 100)]
        (line,) = [line for line in chart.lines if line.colour == pytest.approx(colours[target])]
        successes = row["requests"] - row["failures"]
        assert line.x[0] == 1.0 and line.x[-1] == pytest.approx(successes)  # q = 0 .. 1 - 1/n
        assert line.y[-1] == pytest.approx(row["max_ms"])  # the slowest request
        assert line.y == sorted(line.y)
        assert any(label.startswith(f"{target} ({successes:,} requests)") for label in chart.legend)


def test_timeline_chart_draws_each_second_of_the_window(cpu_drawn: DrawnRun) -> None:
    chart = cpu_drawn.drawn["io_timeline.png"]
    assert "throughput (requests/s) over time at 100 users" in chart.title
    assert "3 s warm-up before it is excluded" in chart.title
    expected = []
    for target in TARGET_NAMES:  # sorted, as drawn
        doc = json.loads(
            (
                cpu_drawn.run_dir / schema.RAW_DIR / FakeRun.cell_id(target, 100) / "latency.json"
            ).read_text()
        )
        expected.append([float(successes) for _, successes, _ in doc["per_second"]])
    assert chart.steps == expected
    assert chart.legend == TARGET_NAMES


def test_timeline_chart_shades_a_stall(measured_drawn: DrawnRun) -> None:
    chart = measured_drawn.drawn["measure_open_timeline.png"]
    assert "at 50 requests/s offered" in chart.title
    assert "server stalled (SIGSTOP)" in chart.legend
    assert any(steps[int(STALL_AT_S)] == 0 for steps in chart.steps)


def test_resources_chart_two_panels_and_the_generator(cpu_drawn: DrawnRun) -> None:
    chart = cpu_drawn.drawn["io_resources.png"]
    cpu, rss = chart.axes
    colours = target_colours(TARGET_NAMES)
    for target in TARGET_NAMES:
        server = [line for line in lines_of(cpu, colours[target], "o") if line.style == "-"]
        assert [line.y for line in server] == [[SERVER_CPU_MEAN, SERVER_CPU_MEAN]]
        assert [line.y for line in lines_of(rss, colours[target], "o")] == [
            [SERVER_RSS_PEAK, SERVER_RSS_PEAK]
        ]
        # The generator's CPU in the colour of the target it loaded, dashed (server: solid).
        generator = lines_of(cpu, colours[target], ".")
        assert [(line.style, line.y) for line in generator] == [("--", [GENERATOR_CPU_MEAN] * 2)]
    assert any(line.y == [90.0, 90.0] and line.style == ":" for line in cpu.lines)
    assert "generator (locust) CPU % (thin dashed)" in cpu.legend
    assert "failed or skipped cell (no data)" in cpu.legend
    assert any(line.marker == "x" and line.x == [200.0] for line in rss.lines)
    assert "server CPU and memory vs concurrent users" in chart.suptitle


def test_ratio_chart_bars_are_the_asgi_wsgi_ratios(cpu_drawn: DrawnRun) -> None:
    chart = cpu_drawn.drawn[overview_chart_path(cpu_drawn.run_dir).name]
    io_rps = {t: medians(cpu_drawn.run_dir, "io", t, "rps")[100.0] for t in TARGET_NAMES}
    cpu_rps = {t: medians(cpu_drawn.run_dir, "cpu", t, "rps")[50.0] for t in TARGET_NAMES}
    io_ratio = io_rps["fastapi-uvicorn"] / io_rps["flask-gunicorn-sync"]
    cpu_ratio = cpu_rps["fastapi-uvicorn"] / cpu_rps["flask-gunicorn-sync"]
    assert cpu_ratio == pytest.approx(530 / 510)
    # 24.5× and 1.04× span more than 20×: a log axis, the bars grow from 1×.
    heights = [height for _, bottom, height in chart.rectangles if bottom == 1]
    assert heights == pytest.approx([io_ratio - 1, cpu_ratio - 1])
    assert chart.texts == [f"{io_ratio:.1f}×", f"{cpu_ratio:.2f}×"]
    assert chart.xticklabels == ["io\nat 100 users", "cpu\nat 50 users"]  # "broken": no ok cell
    assert any(line.style == "--" and line.y == [1.0, 1.0] for line in chart.lines)
    assert "fastapi-uvicorn ÷ flask-gunicorn-sync" in chart.legend
    assert "skipped" not in chart.title


def test_ratio_chart_skips_generator_bound_cells(measured_drawn: DrawnRun) -> None:
    chart = measured_drawn.drawn["overview_asgi_wsgi.png"]
    # measure: fastapi's 50 and 100 users cells are generator-bound, so 10 users (200 / 70).
    heights = [height for _, _, height in chart.rectangles]  # from 1× on a log axis (24.5×)
    assert heights == pytest.approx([1890 / 77 - 1, 200 / 70 - 1, 0.0])
    assert chart.xticklabels[1:] == ["measure\nat 10 users", "measure (open)\nat 50 req/s offered"]
    assert (
        "generator-bound cells skipped (they measure the load generator): measure fastapi-uvicorn "
        "at 50 users, measure fastapi-uvicorn at 100 users, measure fastapi-uvicorn at 400 "
        "requests/s offered"
    ) in chart.title


def test_charts_of_a_partial_run_with_one_target(tmp_path: Path) -> None:
    """One target (no ASGI/WSGI pair), a failed cell, an ok cell without raw files, no open load."""
    run = make_run(tmp_path)
    path = run.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["cells"] = [c for c in manifest["cells"] if c["target"] == "flask-gunicorn-sync"]
    del manifest["targets"]["fastapi-uvicorn"]
    path.write_text(json.dumps(manifest))
    shutil.rmtree(run.run_dir / schema.RAW_DIR / FakeRun.cell_id("flask-gunicorn-sync", 100))
    written = draw_charts(run.run_dir)
    names = sorted(p.name for p in written)
    # 100 users has no histogram now: the one-level charts fall back to the level that has one.
    assert names == sorted(f"io_{name}.png" for name in CAPTIONS)
    for chart in written:
        assert_png(chart)
    text = write_report(run.run_dir).read_text()
    assert "lowest p99" not in text and "within" not in section(text, "Findings by scenario")


def test_headline_names_lowest_p99_and_where_async_did_not_help(cpu_drawn: DrawnRun) -> None:
    text = write_report(cpu_drawn.run_dir).read_text()
    findings = section(text, "Findings by scenario")
    p99 = {t: medians(cpu_drawn.run_dir, "io", t, "p99_ms")[100.0] for t in TARGET_NAMES}
    assert (
        f"- At 100 users on **io**, the lowest p99 was fastapi-uvicorn's: "
        f"{fmt_ms(p99['fastapi-uvicorn'])} ms (next: flask-gunicorn-sync, "
        f"{fmt_ms(p99['flask-gunicorn-sync'])} ms)."
    ) in findings
    assert (
        "- At 50 users on **cpu**, the stacks are within 4% of each other (fastapi-uvicorn 1.04× "
        "flask-gunicorn-sync): the work needs the CPU, not a wait, so async did not help there."
    ) in findings
    assert "async did not help" not in findings.split("on **cpu**")[0]  # io: 24.5×, no such line
    for name, caption in CAPTIONS.items():
        assert f"![cpu {name}](charts/cpu_{name}.png)\n\n*{caption}*" in text


def test_headline_when_every_stack_kept_up_with_the_load(measured: FakeRun) -> None:
    findings = section(write_report(measured.run_dir).read_text(), "Findings by scenario")
    assert (
        "- At 50 requests/s offered on **measure**, every stack kept up with the load (within 1% "
        "of each other: fastapi-uvicorn 1.00× flask-gunicorn-sync): the load, not the stack, set "
        "the throughput."
    ) in findings


def test_numbers_and_load_levels_are_written_one_way() -> None:
    import pandas as pd

    for empty in (None, math.nan, pd.NA, float("nan")):
        assert missing(empty) and fmt(empty) == EMPTY and load_text("closed", empty) == EMPTY
    assert not missing(0) and fmt(1234.56) == "1,234.6" and fmt_ms(4.321) == "4.32"
    assert load_text("closed", 100) == "100 users"
    assert load_text("open", 300.0) == "300 requests/s offered"


def test_number_formats_load_without_pandas() -> None:
    """The orchestrator's progress line writes load levels too: harness.format stays light."""
    code = "import sys, harness.format; print([m for m in ('pandas', 'numpy') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
