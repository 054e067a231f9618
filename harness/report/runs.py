"""The index over runs: every run folder of a results folder, newest first (``harness runs``).

One ``RunEntry`` per subfolder holding ``manifest.json``: when it was made, the git sha, the
profile, how many cells ended ok, failed or otherwise, the run's headline (its largest
ASGI/WSGI throughput ratio and the scenario it came from) and its report. ``latest`` and
other symbolic links, hidden folders and ``compare-*`` folders are not runs and are left out;
a folder whose manifest cannot be read is listed as unreadable, with the reason, never an
exception. ``render_lines`` writes the entries for a terminal and ``render_index`` as
``<results>/index.html``: one self-contained page (inline style, no script, nothing fetched
from the network) whose rows link to each run's report by a relative link.

Reads only the results folder (manifest, summary.csv or the raw files): no harness.run.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness import schema
from harness.fileio import atomic_write_text
from harness.format import EMPTY, load_text, ratio_number
from harness.results.connections import is_connection_scenario
from harness.results.folder import load
from harness.results.ratios import asgi_wsgi_ratios
from harness.results.raw import read_manifest

INDEX_FILE = "index.html"
COMPARE_PREFIX = "compare-"  # `harness compare` writes compare-A-vs-B beside the runs
LATEST = "latest"
RUN_ID_TIME = "%Y%m%dT%H%M%SZ"  # the start of a run id: 20261201T031751Z-22a350f
SHORT_SHA = 7
HEADER = ("date", "sha", "profile", "ok/failed/other", "best ASGI/WSGI", "report")


@dataclass(frozen=True)
class Headline:
    """The run's largest ASGI/WSGI throughput ratio, where and between whom it was measured."""

    ratio: float
    scenario: str
    load_model: str
    level: float
    asgi: str
    wsgi: str

    @property
    def where(self) -> str:
        """The scenario, with "(open)" for an open-load ratio: "io", "io (open)"."""
        return self.scenario if self.load_model == "closed" else f"{self.scenario} (open)"

    @property
    def text(self) -> str:
        """ "42.0× io"."""
        return f"{ratio_number(self.ratio)}× {self.where}"

    @property
    def detail(self) -> str:
        """ "fastapi-uvicorn ÷ flask-gunicorn-sync at 200 users"."""
        return f"{self.asgi} ÷ {self.wsgi} at {load_text(self.load_model, self.level)}"


@dataclass(frozen=True)
class RunEntry:
    """One run folder as the index lists it. ``problem`` set: the manifest is unreadable and
    only ``run_dir`` and ``sort_time`` mean anything."""

    run_dir: Path
    sort_time: dt.datetime  # created_at, else the time in the folder's name, else its mtime
    created: dt.datetime | None = None
    sha: str | None = None
    profile: str | None = None
    ok: int = 0
    failed: int = 0
    other: int = 0
    headline: Headline | None = None
    report: Path | None = None  # report.html, else report.md, else None
    problem: str | None = None  # why the manifest could not be read
    note: str | None = None  # why the headline could not be computed, when it could not

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def date_text(self) -> str:
        return EMPTY if self.created is None else self.created.strftime("%Y-%m-%d %H:%M UTC")

    @property
    def cells_text(self) -> str:
        return f"{self.ok}/{self.failed}/{self.other}"

    @property
    def headline_text(self) -> str:
        return EMPTY if self.headline is None else self.headline.text


def parse_time(value: Any) -> dt.datetime | None:
    """A manifest timestamp ("2026-12-01T03:17:51+00:00" or "...Z") in UTC; None if it is not
    one. A timestamp without a zone is taken as UTC (the runner writes UTC)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"  # fromisoformat takes "Z" only from Python 3.11
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.astimezone(dt.timezone.utc)


def _name_time(run_dir: Path) -> dt.datetime | None:
    """The time a run id starts with (20261201T031751Z-22a350f), None for other names."""
    try:
        stamp = dt.datetime.strptime(run_dir.name[:16], RUN_ID_TIME)
    except ValueError:
        return None
    return stamp.replace(tzinfo=dt.timezone.utc)


def _mtime(path: Path) -> dt.datetime:
    try:
        seconds = path.stat().st_mtime
    except OSError:
        seconds = 0.0
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def headline(run_dir: Path) -> Headline | None:
    """The largest ASGI/WSGI throughput ratio over the run's scenarios and load models.

    The ratios are ``harness.results.ratios.asgi_wsgi_ratios`` (each scenario's comparison
    level, generator-bound cells left out), as the report gives them: the paired estimate when
    trials give one an interval, else median over median. SSE/WebSocket scenarios are judged
    by the connections held, not requests/s, and are left out as in the report. None when the
    run has no ratio (one interface only, no ok cell). Errors reading the summary propagate.
    """
    results = load(run_dir)
    best: Headline | None = None
    for scenario in results.scenario_names:
        if is_connection_scenario(results, scenario):
            continue
        for model in results.load_models(scenario):
            for ratio in asgi_wsgi_ratios(results, scenario, model).ratios:
                value = ratio.estimate
                if best is None or value > best.ratio:
                    best = Headline(value, scenario, model, ratio.level, ratio.asgi, ratio.wsgi)
    return best


def _report_of(run_dir: Path) -> Path | None:
    for name in (schema.REPORT_HTML, schema.REPORT_MD):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _one_line(exc: BaseException) -> str:
    """An error for one line of output: its first line, or its type when it says nothing."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def read_entry(run_dir: Path) -> RunEntry:
    """One run folder's entry; an unreadable manifest gives an entry with ``problem`` set."""
    fallback = _name_time(run_dir) or _mtime(run_dir)
    try:
        manifest = read_manifest(run_dir)
    except (ValueError, OSError) as exc:
        return RunEntry(run_dir, fallback, problem=_one_line(exc))
    created = parse_time(manifest.get("created_at"))
    git = manifest.get("git")
    sha = _text(git.get("sha")) if isinstance(git, dict) else None
    profile = manifest.get("profile")
    options = manifest.get("options")
    name = (_text(profile.get("name")) if isinstance(profile, dict) else None) or (
        _text(options.get("profile")) if isinstance(options, dict) else None
    )
    cells = manifest.get("cells")
    cells = cells if isinstance(cells, list) else []
    statuses = [cell.get("status") for cell in cells if isinstance(cell, dict)]
    ok = statuses.count(schema.STATUS_OK)
    failed = statuses.count(schema.STATUS_FAILED)
    best: Headline | None = None
    note: str | None = None
    try:
        best = headline(run_dir)
    except Exception as exc:  # a broken summary must not hide the other runs
        note = f"no ratio: {_one_line(exc)}"
    return RunEntry(
        run_dir=run_dir,
        sort_time=created or fallback,
        created=created,
        sha=sha[:SHORT_SHA] if sha else None,
        profile=name,
        ok=ok,
        failed=failed,
        other=len(statuses) - ok - failed,
        headline=best,
        report=_report_of(run_dir),
        note=note,
    )


def _is_run_candidate(path: Path) -> bool:
    """A folder that may be a run: not ``latest`` (or any link), hidden or a comparison."""
    name = path.name
    if name == LATEST or name.startswith((".", COMPARE_PREFIX)) or path.is_symlink():
        return False
    try:
        return path.is_dir() and (path / schema.MANIFEST_FILE).exists()
    except OSError:
        return False  # a folder we may not look into: not ours to list


def find_runs(results_dir: Path) -> list[RunEntry]:
    """Every run folder directly under ``results_dir``, newest first.

    OSError when ``results_dir`` itself cannot be listed.
    """
    folders = [p for p in results_dir.iterdir() if _is_run_candidate(p)]
    entries = [read_entry(folder) for folder in folders]
    entries.sort(key=lambda e: e.name, reverse=True)  # ties: the later run id first
    entries.sort(key=lambda e: e.sort_time, reverse=True)
    return entries


def shown_path(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (default the current folder) when under it, else as is."""
    base = Path.cwd() if base is None else base
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _line_cells(entry: RunEntry, base: Path | None) -> list[str]:
    report = EMPTY if entry.report is None else shown_path(entry.report, base)
    return [
        entry.date_text,
        entry.sha or EMPTY,
        entry.profile or EMPTY,
        entry.cells_text,
        entry.headline_text,
        report,
    ]


def render_lines(entries: Sequence[RunEntry], base: Path | None = None) -> list[str]:
    """A header and one line per run, in columns; paths shown relative to ``base`` (default
    the current folder). An unreadable run: its folder name, then "unreadable: <reason>"."""
    rows = [_line_cells(e, base) for e in entries if e.problem is None]
    widths = [max(len(row[i]) for row in [list(HEADER), *rows]) for i in range(len(HEADER))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    lines = [line(HEADER)]
    for entry in entries:
        if entry.problem is not None:
            lines.append(f"{entry.name.ljust(widths[0])}  unreadable: {entry.problem}")
            continue
        text = line(_line_cells(entry, base))
        lines.append(text if entry.note is None else f"{text}  ({entry.note})")
    return lines


STYLE = """
body { margin: 0; background: #fff; color: #1b1b1b; font: 15px/1.5 system-ui, -apple-system,
  "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.5rem; margin: .4rem 0 .6rem; }
p { color: #444; }
a { color: #0b57a4; }
table { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d4d4d4; padding: .3rem .6rem; text-align: left; white-space: nowrap; }
th { background: #f1f3f5; }
td.num { text-align: right; }
td.failed { color: #a00; font-weight: 600; }
tr.unreadable td { color: #a00; font-style: italic; white-space: normal; }
tbody tr:nth-child(even) { background: #fafafa; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
""".strip()
HTML_HEADER = ("date (UTC)", "git sha", "profile", "ok", "failed", "other", "best ASGI/WSGI",
               "scenario", "report")  # fmt: skip


def _td(text: str, css: str = "", title: str = "") -> str:
    attrs = (f' class="{css}"' if css else "") + (f' title="{html.escape(title)}"' if title else "")
    return f"<td{attrs}>{html.escape(text)}</td>"


def _link(entry: RunEntry, results_dir: Path) -> str:
    if entry.report is None:
        return _td("no report")
    try:
        relative = entry.report.relative_to(results_dir)
    except ValueError:
        relative = Path(entry.name) / entry.report.name
    href = quote(relative.as_posix())
    text = html.escape(relative.as_posix())
    return f'<td><a href="{html.escape(href)}">{text}</a></td>'


def _row(entry: RunEntry, results_dir: Path) -> str:
    if entry.problem is not None:
        return (
            f'<tr class="unreadable">{_td(entry.name)}'
            f'<td colspan="{len(HTML_HEADER) - 1}">unreadable: {html.escape(entry.problem)}</td>'
            "</tr>"
        )
    best = entry.headline
    ratio = _td(EMPTY, "num", entry.note or "") if best is None else _td(
        f"{ratio_number(best.ratio)}×", "num", best.detail
    )  # fmt: skip
    cells = [
        _td(EMPTY if entry.created is None else entry.created.strftime("%Y-%m-%d %H:%M"),
            title=entry.name),
        _td(entry.sha or EMPTY),
        _td(entry.profile or EMPTY),
        _td(str(entry.ok), "num"),
        _td(str(entry.failed), "num failed" if entry.failed else "num"),
        _td(str(entry.other), "num"),
        ratio,
        _td(EMPTY if best is None else best.where),
        _link(entry, results_dir),
    ]  # fmt: skip
    return f"<tr>{''.join(cells)}</tr>"


def render_index(entries: Sequence[RunEntry], results_dir: Path) -> str:
    """index.html: the runs as a table, newest first, each linking to its report."""
    runs = sum(1 for e in entries if e.problem is None)
    if entries:
        intro = (
            f"{runs} run(s) in this folder, newest first"
            + (f", {len(entries) - runs} unreadable" if runs < len(entries) else "")
            + ". <em>best ASGI/WSGI</em>: the run's largest ratio of ASGI to WSGI "
            "requests/s at a scenario's comparison level (hover for the targets); "
            "SSE/WebSocket scenarios are judged by connections held and left out."
        )
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HTML_HEADER)
        body = "\n".join(_row(e, results_dir) for e in entries)
        content = f"<p>{intro}</p>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n"
        content += "</tbody>\n</table>"
    else:
        content = "<p>No runs yet: <code>make bench</code> makes one.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gatebench runs</title>
<style>
{STYLE}
</style>
</head>
<body>
<main>
<h1>gatebench runs</h1>
{content}
<p>Written by <code>python -m harness runs</code>; <code>make report</code> refreshes it.</p>
</main>
</body>
</html>
"""


def write_index(results_dir: Path, entries: Sequence[RunEntry]) -> Path:
    """Write ``<results_dir>/index.html`` atomically; returns its path."""
    return atomic_write_text(results_dir / INDEX_FILE, render_index(entries, results_dir))


def index_runs(results_dir: Path) -> tuple[list[RunEntry], Path]:
    """Find the runs under ``results_dir`` and write its index.html: (entries, index path)."""
    entries = find_runs(results_dir)
    return entries, write_index(results_dir, entries)
