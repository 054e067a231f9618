"""Where a difference comes from: single-factor pairs of targets, their section and chart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from analysis_fixtures import (
    SERVICE_TIME_MS,
    FakeRun,
    _cell,
    _closed_latencies,
    _write_cell,
    make_run,
)
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from harness import schema
from harness.charts import common as charts_common
from harness.charts.draw import draw_charts
from harness.charts.factors import FACTOR_COLOURS
from harness.charts.paths import FACTORS_CAPTION, factors_chart_path
from harness.format import ratio_text
from harness.report.build import build_all
from harness.report.factors import factor_sentence
from harness.report.markdown import write_report
from harness.results.factors import COLUMNS, classify, factor_pairs, find_pairs
from harness.results.folder import Results, load

# name -> framework, server, interface, worker_class, workers, threads, concurrency (as the
# registry declares them), in the run's order.
STACKS: dict[str, tuple[str, str, str, str, int, int, str]] = {
    "flask-gunicorn-sync": ("flask", "gunicorn", "wsgi", "sync", 4, 1, "process"),
    "fastapi-uvicorn": ("fastapi", "uvicorn", "asgi", "asyncio", 1, 1, "event-loop"),
    "flask-gunicorn-gthread": ("flask", "gunicorn", "wsgi", "gthread", 4, 8, "threads"),
    "flask-gunicorn-gevent": ("flask", "gunicorn", "wsgi", "gevent", 4, 1, "greenlets"),
    "django-gunicorn-sync": ("django", "gunicorn", "wsgi", "sync", 4, 1, "process"),
    "flask-granian": ("flask", "granian", "wsgi", "wsgi", 1, 32, "threads"),
    "rawwsgi-granian": ("none", "granian", "wsgi", "wsgi", 1, 32, "threads"),
    "rawasgi-granian": ("none", "granian", "asgi", "asgi", 1, 1, "event-loop"),
    "rawasgi-uvicorn": ("none", "uvicorn", "asgi", "asyncio", 1, 1, "event-loop"),
    "starlette-uvicorn": ("starlette", "uvicorn", "asgi", "asyncio", 1, 1, "event-loop"),
    "fastapi-uvicorn-blocking": ("fastapi", "uvicorn", "asgi", "asyncio", 1, 1, "blocked-loop"),
    "fastapi-uvicorn-workers": ("fastapi", "uvicorn", "asgi", "asyncio", 2, 1, "event-loop"),
}
# (target, users) -> rps of the cells added to make_run's io scenario (which already has
# flask-gunicorn-sync 78 / 77 rps and fastapi-uvicorn 195 / 1890 rps at 10 / 100 users).
RPS = {
    "flask-gunicorn-gthread": (190.0, 620.0),
    "django-gunicorn-sync": (75.0, 74.0),
    "flask-granian": (180.0, 600.0),
    "rawwsgi-granian": (190.0, 610.0),
    "rawasgi-granian": (196.0, 1900.0),
    "rawasgi-uvicorn": (197.0, 1950.0),
    "starlette-uvicorn": (195.0, 1920.0),
    "fastapi-uvicorn-blocking": (19.8, 19.8),
    "fastapi-uvicorn-workers": (196.0, 1940.0),
}
GEVENT_RPS = 1500.0  # only at 100 users, and generator-bound
AT_100 = {"flask-gunicorn-sync": 77.0, "fastapi-uvicorn": 1890.0}
AT_100.update({name: rps for name, (_, rps) in RPS.items()})


def settings(name: str) -> dict[str, object]:
    framework, server, interface, worker_class, workers, threads, concurrency = STACKS[name]
    slots = {"process": workers, "threads": workers * threads, "blocked-loop": workers}
    return {
        "name": name,
        "app": f"targets.{framework}_app:app",
        "server": server,
        "framework": framework,
        "interface": interface,
        "worker_class": worker_class,
        "workers": workers,
        "threads": threads,
        "concurrency": concurrency,
        "slots": slots.get(concurrency),
        "description": name,
    }


def factor_run(root: Path, names: list[str] | None = None) -> FakeRun:
    """make_run's io scenario plus the targets of STACKS (or ``names`` of them)."""
    chosen = list(STACKS) if names is None else names
    run = make_run(root)
    rng = np.random.default_rng(7)
    start, cells = 1764090000.0, []
    added = [
        (name, users, rps, 30.0)
        for name, levels in RPS.items()
        for users, rps in zip((10, 100), levels, strict=True)
    ]
    added.append(("flask-gunicorn-gevent", 100, GEVENT_RPS, 96.0))
    for target, users, rps, generator_cpu in added:
        if target not in chosen:
            continue
        cell = _cell(target, users, 1, schema.STATUS_OK, "io")
        values = _closed_latencies(rng, users, rps, round(rps * 10))
        _write_cell(run, str(cell["cell_id"]), values, 0, start, generator_cpu=generator_cpu)
        cells.append(cell)
        start += 20.0
    path = run.run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["targets"] = {name: settings(name) for name in chosen}
    manifest["cells"] += cells
    path.write_text(json.dumps(manifest))
    return run


@dataclass
class FactorChart:
    """What a factors chart held when it was saved."""

    starts: list[float]
    ends: list[float]
    colours: list[tuple[float, ...]]
    labels: list[str]
    texts: list[str]
    title: str
    xscale: str
    vertical_lines: list[list[float]]
    legend: list[str]


def spy_on_factor_charts(monkeypatch: pytest.MonkeyPatch) -> dict[str, FactorChart]:
    seen: dict[str, FactorChart] = {}
    save = charts_common.save

    def spy(fig: Figure, path: Path, tight_bbox: bool = False) -> Path:
        if path.name.endswith("_factors.png"):
            ax = fig.axes[0]
            bars = [p for p in ax.patches if isinstance(p, Rectangle)]
            legend = ax.get_legend()
            seen[path.name] = FactorChart(
                starts=[bar.get_x() for bar in bars],
                ends=[bar.get_x() + bar.get_width() for bar in bars],
                colours=[tuple(bar.get_facecolor()) for bar in bars],
                labels=[t.get_text() for t in ax.get_yticklabels()],
                texts=[t.get_text() for t in ax.texts],
                title=ax.get_title(),
                xscale=ax.get_xscale(),
                vertical_lines=[
                    [float(v) for v in line.get_xdata()]  # type: ignore[union-attr]
                    for line in ax.lines
                ],
                legend=[t.get_text() for t in legend.get_texts()] if legend else [],
            )
        return save(fig, path, tight_bbox)

    monkeypatch.setattr(charts_common, "save", spy)
    return seen


@dataclass
class Built:
    run: FakeRun
    written: list[Path]
    charts: dict[str, FactorChart]
    report: str

    @property
    def results(self) -> Results:
        return load(self.run.run_dir)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The full run, analysed once (summary, charts, report.md and report.html)."""
    run = factor_run(tmp_path_factory.mktemp("factors"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        charts = spy_on_factor_charts(monkeypatch)
        written = build_all(run.run_dir)
    return Built(run, written, charts, (run.run_dir / schema.REPORT_MD).read_text())


EXPECTED_PAIRS = [
    ("interface", "rawwsgi-granian", "rawasgi-granian", "wsgi → asgi"),
    ("framework", "flask-gunicorn-sync", "django-gunicorn-sync", "flask → django"),
    ("framework", "fastapi-uvicorn", "starlette-uvicorn", "fastapi → starlette"),
    ("framework", "rawwsgi-granian", "flask-granian", "no framework → flask"),
    ("framework", "rawasgi-uvicorn", "fastapi-uvicorn", "no framework → fastapi"),
    ("framework", "rawasgi-uvicorn", "starlette-uvicorn", "no framework → starlette"),
    ("server", "rawasgi-granian", "rawasgi-uvicorn", "granian → uvicorn"),
    ("worker model", "flask-gunicorn-sync", "flask-gunicorn-gthread", "sync → gthread"),
    ("worker model", "fastapi-uvicorn", "fastapi-uvicorn-blocking", "event-loop → blocked-loop"),
    ("worker model", "fastapi-uvicorn", "fastapi-uvicorn-workers", "1 → 2 workers"),
    (
        "worker model",
        "fastapi-uvicorn-blocking",
        "fastapi-uvicorn-workers",
        "blocked-loop → event-loop, 1 → 2 workers",
    ),
]


def test_pairs_for_each_factor_in_report_order(built: Built) -> None:
    pairs = factor_pairs(built.results, "io")
    assert list(pairs.columns) == COLUMNS
    assert [tuple(r) for r in pairs[["factor", "target_a", "target_b", "differs"]].values] == (
        EXPECTED_PAIRS
    )
    assert set(pairs["scenario"]) == {"io"} and set(pairs["load"]) == {100.0}
    assert pairs.attrs["level"] == 100.0


def test_no_pair_differs_in_two_factors(built: Built) -> None:
    found = {(a, b) for _, a, b, _ in EXPECTED_PAIRS} | {
        ("flask-gunicorn-sync", "flask-gunicorn-gevent"),
        ("flask-gunicorn-gthread", "flask-gunicorn-gevent"),
    }
    for a, b in (
        ("flask-gunicorn-sync", "fastapi-uvicorn"),  # everything
        ("flask-granian", "rawasgi-granian"),  # framework and interface
        ("rawwsgi-granian", "rawasgi-uvicorn"),  # interface and server
        ("starlette-uvicorn", "fastapi-uvicorn-workers"),  # framework and worker count
        ("django-gunicorn-sync", "flask-gunicorn-gthread"),  # framework and worker class
        ("fastapi-uvicorn-blocking", "starlette-uvicorn"),  # framework and concurrency
        ("flask-granian", "flask-gunicorn-gthread"),  # server and worker count
    ):
        assert classify(settings(a), settings(b)) is None, (a, b)
        assert (a, b) not in found and (b, a) not in found
    # Every other pair of the run is one of the found ones (or the skipped gevent ones).
    names = list(STACKS)
    classified = {
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if classify(settings(a), settings(b))
    }
    assert {frozenset(p) for p in classified} == {frozenset(p) for p in found}


def test_classify_rules() -> None:
    base = settings("fastapi-uvicorn")
    assert classify(base, dict(base)) is None  # the same stack twice: nothing differs
    assert classify(base, {**base, "workers": 2}) == "worker model"
    assert classify(base, {**base, "framework": "starlette", "workers": 2}) is None
    # A server's own worker class may change with it; the capacity may not.
    granian = {**base, "server": "granian", "worker_class": "asgi"}
    assert classify(base, granian) == "server"
    assert classify(base, {**granian, "workers": 2}) is None
    # The interface brings its worker model along, but not another process count.
    wsgi = {**base, "interface": "wsgi", "worker_class": "sync", "concurrency": "process"}
    assert classify(base, wsgi) == "interface"
    assert classify(base, {**wsgi, "workers": 4}) is None
    assert classify(base, {**base, "framework": None}) is None  # unknown: no claim


def test_ratio_math(built: Built) -> None:
    pairs = factor_pairs(built.results, "io").set_index(["target_a", "target_b"])
    summary = built.results.ok_rows()
    at = summary[summary["users"] == 100].set_index("target")
    for (a, b), row in pairs.iterrows():
        assert row["rps_a"] == pytest.approx(AT_100[a]) and row["rps_b"] == pytest.approx(AT_100[b])
        assert row["rps_ratio"] == pytest.approx(AT_100[b] / AT_100[a])
        assert row["p99_a_ms"] == pytest.approx(at.loc[a, "p99_ms"])
        assert row["p99_ratio"] == pytest.approx(at.loc[b, "p99_ms"] / at.loc[a, "p99_ms"])
    assert pairs.loc[("rawwsgi-granian", "rawasgi-granian"), "rps_ratio"] == pytest.approx(
        1900 / 610
    )


def test_generator_bound_cells_are_skipped_and_named(built: Built) -> None:
    pairs = factor_pairs(built.results, "io")
    assert "flask-gunicorn-gevent" not in set(pairs["target_a"]) | set(pairs["target_b"])
    assert pairs.attrs["skipped"] == [
        "flask-gunicorn-sync → flask-gunicorn-gevent: flask-gunicorn-gevent generator-bound at "
        "100 users",
        "flask-gunicorn-gthread → flask-gunicorn-gevent: flask-gunicorn-gevent generator-bound at "
        "100 users",
    ]
    text = section(built.report)
    assert "Left out: 2 pairs without a trusted cell there (generator-bound or unfinished)" in text
    assert "2 pairs left out" in built.charts["io_factors.png"].title


def test_a_failed_cell_is_skipped_and_named(built: Built) -> None:
    results = built.results  # a fresh load: the change stays in memory
    gevent = results.summary["target"].eq("flask-gunicorn-gevent")
    results.summary.loc[gevent, ["status", "generator_bound"]] = ["failed", False]
    found = find_pairs(results, "io")
    assert found.level == 100.0 and len(found.pairs) == len(EXPECTED_PAIRS)
    assert found.skipped[0] == (
        "flask-gunicorn-sync → flask-gunicorn-gevent: flask-gunicorn-gevent failed at 100 users"
    )


def test_a_level_without_a_trusted_cell_moves_the_comparison(built: Built) -> None:
    """rawasgi-granian generator-bound at 100 users: 10 users has the most targets now."""
    results = built.results
    summary = results.summary
    flag = summary["target"].eq("rawasgi-granian") & summary["users"].eq(100)
    summary.loc[flag, "generator_bound"] = True
    found = find_pairs(results, "io")
    assert found.level == 10.0 and set(found.pairs["load"]) == {10.0}
    assert len(found.pairs) == len(EXPECTED_PAIRS)
    interface = found.pairs[found.pairs["factor"] == "interface"].iloc[0]
    assert interface["rps_ratio"] == pytest.approx(196 / 190)
    assert found.skipped[0] == (
        "flask-gunicorn-sync → flask-gunicorn-gevent: flask-gunicorn-gevent no cell at 10 users"
    )


def test_no_pairs_without_single_factor_differences(tmp_path: Path) -> None:
    run = make_run(tmp_path, measurement=True)  # flask-gunicorn-sync vs fastapi-uvicorn only
    results = load(run.run_dir)
    assert factor_pairs(results, "io").empty
    # measure: sync vs gthread is a worker-model pair, but gthread's cells were all skipped.
    found = find_pairs(results, "measure")
    assert found.pairs.empty
    assert found.skipped == [
        "flask-gunicorn-sync → flask-gunicorn-gthread: flask-gunicorn-gthread skipped at 10 users"
    ]
    assert "Where the difference comes from" not in write_report(run.run_dir).read_text()
    assert not any(p.name.endswith("_factors.png") for p in draw_charts(run.run_dir))


def section(text: str) -> str:
    start = text.index("## Where the difference comes from")
    end = text.index("\n## ", start + 3)
    return text[start:end]


def test_report_section_interface_first_and_the_pitfall(built: Built) -> None:
    text = section(built.report)
    assert "Each row changes one thing" in text
    assert built.report.index("## Findings by scenario") < built.report.index(
        "## Where the difference comes from"
    )
    assert "### io at 100 users" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]  # no header
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [
        factor for factor, *_ in EXPECTED_PAIRS
    ]
    assert rows[0].startswith(
        "| interface | rawwsgi-granian → rawasgi-granian | wsgi → asgi | 610.0 | 1,900.0 | 3.11 |"
    )
    sentence = next(line for line in text.splitlines() if line.startswith("On io at 100 users"))
    assert sentence.startswith(
        "On io at 100 users, changing only the interface (rawwsgi-granian → rawasgi-granian) "
        f"changed throughput {ratio_text(1900 / 610)}; changing only the framework from "
    )
    assert sentence.index("interface") < sentence.index("framework") < sentence.index("server")
    assert sentence.index("server") < sentence.index("worker model")
    assert (
        "**Pitfall:** fastapi-uvicorn-blocking served 19.8 rps: the event loop is blocked by "
        "time.sleep, so one process serves one request at a time, at most "
        f"1 / {SERVICE_TIME_MS:g} ms = {1000 / SERVICE_TIME_MS:g} rps."
    ) in text
    assert f"![io factors](charts/io_factors.png)\n\n*{FACTORS_CAPTION}*" in text
    html = (built.run.run_dir / schema.REPORT_HTML).read_text()
    assert "Where the difference comes from" in html and "fastapi-uvicorn-blocking served" in html


def test_sentence_lists_one_pair_per_factor(tmp_path: Path) -> None:
    names = ["flask-gunicorn-sync", "fastapi-uvicorn", "flask-gunicorn-gthread"]
    names += ["rawwsgi-granian", "rawasgi-granian", "starlette-uvicorn"]
    results = load(factor_run(tmp_path, names).run_dir)
    assert factor_sentence(find_pairs(results, "io")) == (
        "On io at 100 users, changing only the interface (rawwsgi-granian → rawasgi-granian) "
        "changed throughput ×3.11; changing only the framework (fastapi-uvicorn → "
        "starlette-uvicorn) ×1.02; changing only the worker model (flask-gunicorn-sync → "
        "flask-gunicorn-gthread) ×8.05."
    )


def test_chart_bars_are_the_ratios(built: Built) -> None:
    path = factors_chart_path(built.run.run_dir, "io")
    assert path in built.written and path.read_bytes().startswith(b"\x89PNG")
    chart = built.charts[path.name]
    pairs = factor_pairs(built.results, "io")
    assert chart.starts == pytest.approx([1.0] * len(pairs))  # bars grow from 1.0
    assert chart.ends == pytest.approx(list(pairs["rps_ratio"]))
    assert chart.colours == [tuple(to_rgba(FACTOR_COLOURS[f])) for f in pairs["factor"]]
    assert [label.split("\n")[0] for label in chart.labels] == [
        f"{a} → {b}" for a, b in zip(pairs["target_a"], pairs["target_b"], strict=True)
    ]
    assert chart.texts == [ratio_text(r) for r in pairs["rps_ratio"]]
    assert chart.xscale == "log"
    assert [1.0, 1.0] in chart.vertical_lines
    assert "io: what one change does to throughput, at 100 users" in chart.title
    assert chart.legend[:4] == [
        "only the interface changes",
        "only the framework changes",
        "only the server changes",
        "only the worker model changes",
    ]
