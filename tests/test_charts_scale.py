"""Charts that read at any scale: log ratio axes, one colour per target, visible bounds and
tails, and no chart for a scenario that has nothing to say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from analysis_fixtures import GENERATOR_CPU_MEAN, FakeRun, make_run
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from harness import schema
from harness.charts import common as charts_common
from harness.charts import paths as charts_paths
from harness.charts.common import target_colours
from harness.charts.draw import draw_charts, scenario_charts
from harness.charts.factors import factors_chart
from harness.charts.overview import ratio_chart
from harness.charts.paths import (
    GENERATOR_BOUND_REASON,
    LINE_CHARTS,
    chart_paths,
    charts_left_out,
    overview_chart_path,
    skipped_charts,
)
from harness.results.folder import Results, load

FLASK, FASTAPI = "flask-gunicorn-sync", "fastapi-uvicorn"


def keep_axes(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Axes]]:
    """File name -> the axes of the figure saved there (still inspectable after saving)."""
    seen: dict[str, list[Axes]] = {}
    save = charts_common.save

    def spy(fig: Figure, path: Path, tight_bbox: bool = False) -> Path:
        seen[path.name] = list(fig.axes)
        return save(fig, path, tight_bbox)

    monkeypatch.setattr(charts_common, "save", spy)
    return seen


def set_rps(results: Results, scenario: str, target: str, users: int, rps: float) -> None:
    summary = results.summary
    cells = summary["scenario"].eq(scenario) & summary["target"].eq(target)
    summary.loc[cells & summary["users"].eq(users), "rps"] = rps


def tick_labels(ax: Axes, which: str = "y") -> list[str]:
    """The labels of the major ticks inside the axis' view."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    low, high = sorted(ax.get_ylim() if which == "y" else ax.get_xlim())
    formatter = axis.get_major_formatter()
    ticks = [t for t in axis.get_major_locator()() if low <= t <= high]
    return [str(formatter(t, i)) for i, t in enumerate(ticks)]


def legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


# ---- 1. ratios past 20× go on a log axis ------------------------------------------------------


@pytest.mark.parametrize("low_ratio", [1.0, 0.5])
def test_overview_goes_log_past_20x_with_bars_from_1x(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, low_ratio: float
) -> None:
    results = load(make_run(tmp_path, cpu_scenario=True).run_dir)
    set_rps(results, "io", FASTAPI, 100, 77.0 * 500)  # io: 500×
    set_rps(results, "cpu", FASTAPI, 50, 510.0 * low_ratio)  # cpu: 1× (or 0.5×)
    seen = keep_axes(monkeypatch)
    path = ratio_chart(results, target_colours(results.target_names), overview_chart_path(tmp_path))
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    (ax,) = seen[path.name]
    assert ax.get_yscale() == "log"
    labels = tick_labels(ax)
    assert {"1×", "2×", "5×", "10×", "100×", "500×"} <= set(labels), labels
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    # Every bar starts at 1× and ends at its ratio: up for 500×, down (or nothing) below 1×.
    assert [b.get_y() for b in bars] == [1.0, 1.0]
    assert [b.get_y() + b.get_height() for b in bars] == pytest.approx([500.0, low_ratio])
    assert [t.get_text() for t in ax.texts] == ["500.0×", f"{low_ratio:.2f}×"]
    assert any(
        list(line.get_ydata()) == [1.0, 1.0]  # type: ignore[arg-type]
        for line in ax.lines
    )
    low, high = ax.get_ylim()
    assert low < low_ratio and high > 500.0  # room for the lowest bar and the top label


def test_overview_stays_linear_within_20x(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = load(make_run(tmp_path, cpu_scenario=True).run_dir)
    set_rps(results, "io", FASTAPI, 100, 77.0 * 15)  # 15× and 1.04×: within 20×
    seen = keep_axes(monkeypatch)
    path = ratio_chart(results, target_colours(results.target_names), overview_chart_path(tmp_path))
    assert path is not None
    (ax,) = seen[path.name]
    assert ax.get_yscale() == "linear"
    assert [b.get_y() for b in ax.patches if isinstance(b, Rectangle)] == [0.0, 0.0]
    assert [t.get_text() for t in ax.texts] == ["15.0×", "1.04×"]


def test_factors_axis_reads_in_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sync -> gthread at 500× (its skipped cells made ok here): a log axis of 1×, 10×, 100×."""
    results = load(make_run(tmp_path, measurement=True).run_dir)
    summary = results.summary
    gthread = summary["target"].eq("flask-gunicorn-gthread")
    summary.loc[gthread, "status"] = schema.STATUS_OK
    summary.loc[gthread, "rps"] = 35000.0
    summary.loc[gthread, "generator_bound"] = False
    seen = keep_axes(monkeypatch)
    path = factors_chart(results, "measure")
    assert path is not None
    (ax,) = seen[path.name]
    assert ax.get_xscale() == "log"
    assert {"1×", "10×", "100×"} <= set(tick_labels(ax, "x"))
    (bar,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert bar.get_x() == 1.0 and bar.get_x() + bar.get_width() == pytest.approx(500.0)
    assert [t.get_text() for t in ax.texts] == ["×500"]
    assert any(list(line.get_xdata()) == [1.0, 1.0] for line in ax.lines)  # type: ignore[arg-type]
    assert "1×: the same throughput" in legend_texts(ax)


# ---- 2. one colour per target; ratios and the generator told apart ---------------------------


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeRun, dict[str, list[Axes]]]:
    run = make_run(tmp_path_factory.mktemp("scale"), cpu_scenario=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        seen = keep_axes(monkeypatch)
        draw_charts(run.run_dir)
    return run, seen


def test_ratio_bars_wear_no_target_colour(
    drawn: tuple[FakeRun, dict[str, list[Axes]]],
) -> None:
    run, seen = drawn
    (ax,) = seen[overview_chart_path(run.run_dir).name]
    colours = {tuple(c) for c in target_colours(load(run.run_dir).target_names).values()}
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert bars and all(tuple(b.get_facecolor()) not in colours for b in bars)
    assert all(b.get_hatch() for b in bars)
    legend = ax.get_legend()
    assert legend is not None and legend.get_title().get_text() == "ASGI ÷ WSGI"
    assert f"{FASTAPI} ÷ {FLASK}" in legend_texts(ax)


def test_generator_cpu_in_the_target_colour_dashed(
    drawn: tuple[FakeRun, dict[str, list[Axes]]],
) -> None:
    run, seen = drawn
    cpu = seen["io_resources.png"][0]
    colours = target_colours(load(run.run_dir).target_names)
    for target, colour in colours.items():
        mine = [line for line in cpu.lines if to_rgba(line.get_color()) == pytest.approx(colour)]
        server = [line for line in mine if line.get_linestyle() == "-" and line.get_marker() == "o"]
        generator = [line for line in mine if line.get_linestyle() == "--"]
        assert len(server) == 1 and len(generator) == 1, target
        assert list(generator[0].get_ydata()) == [GENERATOR_CPU_MEAN] * 2  # type: ignore[arg-type]
        assert generator[0].get_linewidth() < server[0].get_linewidth()
    grey = to_rgba("grey")
    assert not [line for line in cpu.lines if line.get_marker() == "." and line.get_color() == grey]
    legend = legend_texts(cpu)
    assert "server CPU % (solid)" in legend and "generator (locust) CPU % (thin dashed)" in legend


# ---- 3. a bound under its line, a p99.9 on its p99: both still show ---------------------------


def test_bound_is_a_wide_pale_line_behind_the_measured_one(
    drawn: tuple[FakeRun, dict[str, list[Axes]]],
) -> None:
    run, seen = drawn
    (ax,) = seen["io_throughput.png"]
    colour = target_colours(load(run.run_dir).target_names)[FLASK]
    mine = [line for line in ax.lines if to_rgba(line.get_color()) == pytest.approx(colour)]
    (bound,) = [line for line in mine if line.get_linestyle() == "--"]
    (measured,) = [line for line in mine if line.get_marker() == "o"]
    # 4 slots / 50 ms = 80 requests/s at every level, the failed 200 users too.
    assert list(bound.get_ydata()) == [80.0] * 3  # type: ignore[arg-type]
    assert bound.get_linewidth() >= 3 * measured.get_linewidth()
    assert (bound.get_alpha() or 1.0) <= 0.5
    assert bound.get_zorder() < measured.get_zorder()
    assert any(text.startswith("bound: lowest ceiling") for text in legend_texts(ax))


def test_p999_open_markers_show_around_an_equal_p99(
    drawn: tuple[FakeRun, dict[str, list[Axes]]],
) -> None:
    _, seen = drawn
    (ax,) = seen["io_latency.png"]
    p999 = [line for line in ax.lines if line.get_linestyle() == ":" and line.get_marker() == "d"]
    p99 = [line for line in ax.lines if line.get_linestyle() == "--" and line.get_marker() == "^"]
    assert p999 and p99
    for line in p999:
        assert line.get_markerfacecolor() == "none"
        assert line.get_markersize() > max(other.get_markersize() for other in p99)
        assert line.get_zorder() > max(other.get_zorder() for other in p99)
    legend = ax.get_legend()
    assert legend is not None
    (handle,) = [
        h
        for h, t in zip(legend.legend_handles, legend.get_texts(), strict=True)
        if t.get_text() == "p99.9"
    ]
    assert isinstance(handle, Line2D) and handle.get_markerfacecolor() == "none"


# ---- 4. no chart for a scenario with nothing to say --------------------------------------------


def one_level_run(root: Path) -> FakeRun:
    """make_run's io scenario with its 10-users cells only."""
    run = make_run(root)
    path = run.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["cells"] = [cell for cell in manifest["cells"] if cell["users"] == 10]
    path.write_text(json.dumps(manifest))
    return run


def test_one_load_level_gets_no_line_charts_and_loses_stale_ones(tmp_path: Path) -> None:
    run = one_level_run(tmp_path)
    paths = chart_paths(run.run_dir, "io")
    paths["knee"].parent.mkdir(parents=True, exist_ok=True)
    paths["knee"].write_bytes(b"an old chart")  # from an earlier drawing: must not stay
    reason = "only one load level (10 users): a line against load needs two"
    assert skipped_charts(load(run.run_dir), "io") == dict.fromkeys(LINE_CHARTS, reason)
    written = {p.name for p in draw_charts(run.run_dir)}
    for name in LINE_CHARTS:
        assert not paths[name].exists() and paths[name].name not in written, name
    for name in ("percentiles", "timeline", "resources"):
        assert paths[name].name in written and paths[name].is_file(), name
    on_disk = {p.name for p in (run.run_dir / schema.CHARTS_DIR).iterdir()}
    assert on_disk == written


def test_all_generator_bound_gets_no_line_charts(tmp_path: Path) -> None:
    results = load(make_run(tmp_path).run_dir)
    results.summary["generator_bound"] = results.summary["status"].eq(schema.STATUS_OK)
    assert skipped_charts(results, "io") == dict.fromkeys(LINE_CHARTS, GENERATOR_BOUND_REASON)
    written = {p.name for p in scenario_charts(results, "io", target_colours(results.target_names))}
    assert written == {"io_percentiles.png", "io_timeline.png", "io_resources.png"}


def test_the_skip_decision_is_one_pure_function(tmp_path: Path) -> None:
    results = load(make_run(tmp_path).run_dir)
    assert skipped_charts(results, "io") == {}  # two levels, trusted cells: every chart
    assert charts_common.skipped_charts is charts_paths.skipped_charts
    rows = results.scenario_rows("io", "closed")
    assert charts_left_out(rows.iloc[0:0], "closed") == {}  # nothing ran: nothing to say why
    one = rows[rows["users"] == 100]
    assert set(charts_left_out(one, "closed").values()) == {
        "only one load level (100 users): a line against load needs two"
    }
    # The report may call it: harness.charts.paths loads no matplotlib.
    code = "import sys, harness.charts.paths; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
