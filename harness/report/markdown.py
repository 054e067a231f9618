"""The Markdown report of a run (``RUN/report.md``): ``render_report`` and ``write_report``.

This module owns the report's order and its findings: headline findings computed from the
summary (generator-bound cells left out), the ASGI/WSGI overview chart, one table and its charts
(each with a caption saying what question it answers) per scenario and load model, failed cells,
warnings and the environment the numbers came from. "Where the difference comes from" is
``harness.report.factors``', "Real I/O" ``harness.report.real_io``', "Protocol: TLS, new
connections and HTTP/2" ``harness.report.protocol``', "Long-lived connections"
``harness.report.connections``', the sections on trust in the numbers
``harness.report.sections``'. It reads the run through ``harness.results`` only, so any copied
run folder can be re-rendered, and never loads matplotlib: charts are linked through
``harness.charts.paths`` when they exist on disk.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from harness import schema
from harness.charts.paths import (
    CAPTIONS,
    OVERVIEW_CAPTION,
    chart_paths,
    overview_chart_path,
    skipped_charts,
)
from harness.fileio import atomic_write_text
from harness.format import fmt, fmt_exact, fmt_level, fmt_ms, load_text, missing, ratio_times
from harness.report.answer import answer_section, keepalive_text
from harness.report.blocks import chart_lines, row_load_text, table
from harness.report.connections import connection_headline, connections_section
from harness.report.crosscheck import crosscheck_lines
from harness.report.factors import factors_section
from harness.report.protocol import protocol_section
from harness.report.real_io import real_io_section
from harness.report.sections import (
    closed_vs_open_section,
    external_note,
    generator_bound_section,
    load_flags_section,
    measurement_section,
    open_table,
    pinning_warning,
    stall_section,
    trials_table,
    unstable_section,
    verify_section,
)
from harness.results.connections import is_connection_scenario
from harness.results.flags import OVERLOADED, UNSETTLED, has_flag
from harness.results.folder import Results, load
from harness.results.ratios import asgi_wsgi_ratios, paired_text
from harness.results.rows import (
    LOAD_AXES,
    comparison_level,
    generator_bound,
    ok_only,
    trusted,
    unstable,
)
from harness.results.trials import UNSTABLE_CV

HOW_TO_READ = (
    "Closed-loop load: each simulated user sends a request, waits for the response and "
    "sends the next one at once (no think time), so U users keep at most U requests in "
    "flight. Every cell has a roofline: each ceiling its throughput could hit, computed "
    "from what was measured in that cell. Little's law gives the waiting ones: with service "
    "time S (the scenario's wait plus the target's own per-request overhead), U users cannot "
    "exceed U/S requests/s and a server holding K requests at once (workers × threads; "
    "unbounded for an async event loop) cannot exceed K/S, or fewer when its connections "
    "sit unevenly on its workers (*balance*), or fewer when each request holds one of a "
    "connection pool's connections (real I/O: K is min(slots, pool), the *pool* when it is "
    "the smaller). The CPUs give the others: the server's CPU budget over its CPU seconds "
    "per request (with a database on the same CPUs, over the two together: the *database* "
    "when it used more), and the same for the load generator. The "
    "lowest ceiling is the cell's *bound* and its *limiter*; *efficiency* = measured "
    "throughput / bound (open load: / the offered rate). A cell below 0.9 of its bound whose "
    "limiter was not a busy CPU is marked *unexplained*: something the harness does not "
    "measure cost it throughput. Latencies are exact (HDR histogram of every successful "
    "request, warm-up excluded); resource figures cover the measurement window only."
)


# ASGI/WSGI throughput ratios inside this range count as "the same"; a stack at or above
# KEPT_UP of its bound (the lowest ceiling) did all the load allowed.
PARITY = (0.8, 1.25)
KEPT_UP = 0.9
LOAD_LIMITERS = ("users", "rate", "connections")  # the load, not the stack, set these cells


def limit_text(row: pd.Series) -> str:
    """ "0.97 of its bound of 80 rps, limited by the server's slots (K / S)", or ""."""
    if missing(row["bound_rps"]):
        return ""
    efficiency = fmt(row["efficiency"], 2)
    if row["load_model"] == "open" and not missing(row["rate"]):
        text = f"{efficiency} of the offered rate"
        if has_flag(row.get("flags"), OVERLOADED):
            text = f"did not keep up: {text}"
    else:
        text = f"{efficiency} of its bound of {fmt_exact(row['bound_rps'])} rps"
    limiter, limited_by = row.get("limiter"), row.get("limited_by")
    if not missing(limited_by) and limited_by:
        text += f", {limited_by}" if limiter == "unexplained" else f", limited by {limited_by}"
    return text


def _medians(rows: pd.DataFrame, x: str) -> pd.DataFrame:
    """One row per (target, load level): the median across trials of every figure."""
    figures = ["rps", "p50_ms", "p99_ms", "p99_uncorrected_ms", "bound_rps", "efficiency"]
    figures += ["connections_per_request"]
    grouped = rows.groupby(["target", x], as_index=False)
    medians = grouped[figures].median()
    descriptive = ["load_model", "users", "rate", "slots", "service_time_ms", "limiter"]
    first = grouped[[*descriptive, "limited_by", "flags"]].first()
    return medians.merge(first, on=["target", x])


def _cells_text(rows: pd.DataFrame) -> str:
    return ", ".join(f"{r['target']} at {row_load_text(r)}" for _, r in rows.iterrows())


def headline(results: Results, scenario: str, load_model: str = "closed") -> list[str]:
    """Findings in words for one scenario, at the highest load every target completed.

    Generator-bound cells measure the load generator, so they are left out (and named).
    """
    if is_connection_scenario(results, scenario):
        return connection_headline(results, scenario) if load_model == "closed" else []
    x = LOAD_AXES[load_model].column
    rows = results.scenario_rows(scenario, load_model)
    completed = ok_only(rows).dropna(subset=["rps", x])
    if completed.empty:
        return []
    bound = generator_bound(completed)
    ok, left_out = completed[~bound], completed[bound]
    note = (
        f"Left out as generator-bound (they measure the load generator): {_cells_text(left_out)}."
        if len(left_out)
        else ""
    )
    if ok.empty:
        return [
            f"Every completed {load_model}-load cell of **{scenario}** was generator-bound: "
            f"these figures measure the load generator, not the servers. {note}"
        ]
    medians = _medians(ok, x)
    # Most targets first, then the highest load: the highest *common* load when there is one.
    level = comparison_level(ok, x)
    if level is None:
        return []
    at = medians[medians[x] == level].sort_values("rps", ascending=False)
    best, others = at.iloc[0], at.iloc[1:]
    where = f"At {load_text(load_model, level)} on **{scenario}**"
    sentence = f"{where}, {best['target']} served {fmt(best['rps'])} rps"
    comparisons = []
    for _, other in others.iterrows():
        ratio = best["rps"] / other["rps"] if other["rps"] else math.inf
        bound_text = limit_text(other)
        bound_text = f", {bound_text}" if bound_text else ""
        bound_text += keepalive_text(other)
        comparisons.append(f"{ratio:.1f}× {other['target']} ({fmt(other['rps'])} rps{bound_text})")
    if comparisons:
        sentence += ", " + "; ".join(comparisons)
    lines = [sentence + "."]
    if not missing(best["bound_rps"]):
        text = limit_text(best)
        verb = "" if text.startswith("did not") else "reached "
        lines.append(f"{best['target']} {verb}{text}.")
    p99 = ", ".join(_p99_text(r) for _, r in at.iterrows())
    lines.append(f"p99 latency there: {p99}.")
    absent = sorted(set(rows["target"].dropna()) - set(at["target"]))
    if absent:
        lines.append(f"No trusted completed cell at that load for: {', '.join(absent)}.")
    there = ok[ok[x] == level]
    shaky = sorted(set(there.loc[unstable(there), "target"]))
    if shaky:
        lines.append(f"Unstable across trials (CV > {UNSTABLE_CV:.0%}) there: {', '.join(shaky)}.")
    flagged = there.dropna(subset=["flags"]).drop_duplicates(subset=["target", "flags"])
    for _, row in flagged.iterrows():
        lines.append(f"Flagged: {row['target']} ({row['flags']}).")
    if note:
        lines.append(note)
    return [" ".join(lines), *_lowest_p99(at, where), *_near_parity(results, scenario, load_model)]


def _lowest_p99(at: pd.DataFrame, where: str) -> list[str]:
    """Which target answered fastest at its 99th percentile, at the comparison level."""
    ranked = at.dropna(subset=["p99_ms"]).sort_values("p99_ms")
    if len(ranked) < 2:
        return []
    best, runner_up = ranked.iloc[0], ranked.iloc[1]
    return [
        f"{where}, the lowest p99 was {best['target']}'s: {fmt_ms(best['p99_ms'])} ms "
        f"(next: {runner_up['target']}, {fmt_ms(runner_up['p99_ms'])} ms)."
    ]


def _kept_up(row: pd.Series) -> bool:
    """Whether a cell served all its load allowed: KEPT_UP of its bound, or of the offered rate
    when there is no bound (open load without a declared service time). An overloaded or
    unsettled cell never kept up, and a cell limited by a resource (not by its load) did not."""
    if has_flag(row["flags"], OVERLOADED) or has_flag(row["flags"], UNSETTLED):
        return False
    limiter = row.get("limiter")
    if not missing(limiter) and limiter not in LOAD_LIMITERS:
        return False
    if not missing(row["efficiency"]):
        return bool(row["efficiency"] >= KEPT_UP)
    if row["load_model"] == "open" and not missing(row["rate"]) and not missing(row["rps"]):
        return bool(row["rps"] >= KEPT_UP * float(row["rate"]))
    return False


def _near_parity(results: Results, scenario: str, load_model: str) -> list[str]:
    """When every ASGI/WSGI throughput ratio is within PARITY, say why async did not help."""
    found = asgi_wsgi_ratios(results, scenario, load_model)
    if not found.ratios or found.level is None:
        return []
    ratios = [r.ratio for r in found.ratios]
    if not all(PARITY[0] <= ratio <= PARITY[1] for ratio in ratios):
        return []
    apart = max(0.01, *(max(ratio, 1 / ratio) - 1 for ratio in ratios))  # never 0%
    pairs = ", ".join(f"{r.asgi} {ratio_times(r.ratio)} {r.wsgi}" for r in found.ratios)
    where = f"At {load_text(load_model, found.level)} on **{scenario}**"
    rows = trusted(results.scenario_rows(scenario, load_model))
    rows = rows[rows[LOAD_AXES[load_model].column].eq(found.level).fillna(False)]
    if len(rows) and all(_kept_up(row) for _, row in rows.iterrows()):
        return [
            f"{where}, every stack kept up with the load (within {apart:.0%} of each other: "
            f"{pairs}): the load, not the stack, set the throughput."
        ]
    return [
        f"{where}, the stacks are within {apart:.0%} of each other ({pairs}): the work "
        "needs the CPU, not a wait, so async did not help there."
    ]


def ratios_section(results: Results) -> list[str]:
    """Every ASGI/WSGI throughput ratio at its scenario's comparison level, with the interval
    from paired trials (trial k of one target against trial k of the other: they ran in the
    same round, so drift between rounds hits both)."""
    body = []
    for scenario in results.scenario_names:
        if is_connection_scenario(results, scenario):
            continue  # judged by connections held, not requests/s (see its section)
        for model in LOAD_AXES:
            found = asgi_wsgi_ratios(results, scenario, model)
            for ratio in found.ratios:
                body.append(
                    [scenario, load_text(model, ratio.level), ratio.asgi, ratio.wsgi,
                     paired_text(ratio)]
                )  # fmt: skip
    if not body:
        return []
    header = ["scenario", "load", "ASGI target", "WSGI target", "ASGI ÷ WSGI requests/s"]
    return [
        "### ASGI/WSGI ratios",
        "",
        "With trials, each ratio is the geometric mean of the paired trials' ratios with its "
        "95% confidence interval; one trial gives no interval (run with `--trials 3`).",
        "",
        *table(header, body),
        "",
    ]


def _p99_text(row: pd.Series) -> str:
    text = f"{row['target']} {fmt_ms(row['p99_ms'])} ms"
    if row["load_model"] == "open" and not missing(row["p99_uncorrected_ms"]):
        text += f" ({fmt_ms(row['p99_uncorrected_ms'])} ms uncorrected)"
    return text


def _scenario_table(rows: pd.DataFrame, load_model: str) -> list[str]:
    axis = LOAD_AXES[load_model]
    trials = rows["trial"].nunique() > 1
    header = ["target", axis.column, *(["trial"] if trials else [])]
    header += ["rps", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "failures"]
    header += ["bound rps", "efficiency", "limited by", "server CPU %", "server PSS MB"]
    header += ["generator CPU %", "new connections per request", "status", "flags"]
    body = []
    ordered = rows.sort_values([axis.column, "target", "trial"], na_position="last")
    for _, row in ordered.iterrows():
        cells = [str(row["target"]), fmt_level(row[axis.column])]
        cells += [str(row["trial"])] if trials else []
        cells += [fmt(row["rps"])] + [fmt_ms(row[c]) for c in ("p50_ms", "p90_ms", "p99_ms")]
        cells += [fmt_ms(row["p999_ms"]), fmt_ms(row["max_ms"]), fmt(row["failures"], 0)]
        cells += [fmt_exact(row["bound_rps"]), fmt(row["efficiency"], 2, thousands=False)]
        cells += [_limiter_cell(row)]
        cells += [
            fmt(row["server_cpu_pct"]),
            fmt(_first_present(row, "server_pss_mb", "server_rss_mb")),
        ]
        cells += [fmt(row["generator_cpu_pct"]), fmt(row["connections_per_request"], 2)]
        cells += [str(row["status"])]
        cells += [row["flags"]]  # table() writes it, or EMPTY
        body.append(cells)
    return table(header, body)


def _limiter_cell(row: pd.Series) -> str:
    limiter = row.get("limiter")
    if missing(limiter):
        return "–"
    return str(row["limited_by"]) if not missing(row.get("limited_by")) else str(limiter)


def _first_present(row: pd.Series, *columns: str) -> object:
    return next((row[c] for c in columns if not missing(row.get(c))), None)


def _scenario_section(results: Results, scenario: str) -> list[str]:
    lines = [f"## Scenario `{scenario}`", ""]
    description = results.scenario_description(scenario)
    if description:
        lines += [description, ""]
    for model in results.load_models(scenario):
        model_rows = results.scenario_rows(scenario, model)
        if model == "open":
            lines += ["### Open load (arrival rate)", "", *open_table(model_rows), ""]
        else:
            lines += [*_scenario_table(model_rows, model), ""]
        lines += trials_table(model_rows, model)
        for name, reason in skipped_charts(results, scenario, model).items():
            lines += [f"*The {name} chart is left out: {reason}.*", ""]
        for name, path in chart_paths(results.run_dir, scenario, model).items():
            alt = f"{scenario}{' open' if model == 'open' else ''} {name}"
            lines += chart_lines(results, path, alt, CAPTIONS[name])
    return lines


def _not_ok_section(results: Results) -> list[str]:
    cells = [c for c in results.manifest.get("cells") or [] if c.get("status") != "ok"]
    if not cells:
        return []
    rows = [
        [f"`{c.get('cell_id', '?')}`", str(c.get("status", "?")), str(c.get("error") or "")]
        for c in cells
    ]
    return ["## Failed cells", "", *table(["cell", "status", "error"], rows), ""]


def _warnings_section(results: Results) -> list[str]:
    warnings = [str(w) for w in results.manifest.get("warnings") or []]
    for cell in results.manifest.get("cells") or []:
        warnings += [f"`{cell.get('cell_id')}`: {w}" for w in cell.get("warnings") or []]
    if not warnings:
        return []
    return ["## Warnings", "", *(f"- {w}" for w in warnings), ""]


def _environment_section(results: Results) -> list[str]:
    manifest = results.manifest
    machine = manifest.get("machine") or {}
    pinning = manifest.get("pinning") or {}
    git = manifest.get("git") or {}
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    lines = ["## Environment", ""]
    lines += [
        f"- Machine: {machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} CPUs, "
        f"{machine.get('platform', '?')}, host {machine.get('hostname', '?')}",
        f"- Python: {machine.get('python', '?')}",
        f"- CPU pinning: server {pinning.get('server_cpus', '?')}, generator "
        f"{pinning.get('generator_cpus', '?')}, applied: {pinning.get('applied', '?')}"
        + (f" ({pinning['note']})" if pinning.get("note") else ""),
        f"- Git: {git.get('sha', '?')}{dirty}",
        f"- Profile: {(manifest.get('profile') or {}).get('name', '?')}",
        f"- Command: `{' '.join(str(a) for a in manifest.get('argv') or [])}`",
        "",
    ]
    settings = {"profile": manifest.get("profile"), "options": manifest.get("options")}
    lines += ["```json", json.dumps(settings, indent=2, sort_keys=True, default=str), "```", ""]
    scenarios = manifest.get("scenarios") or {}
    if scenarios:
        rows = [
            [name, f"`{info.get('file', '')}`", f"`{str(info.get('sha256', ''))[:12]}`"]
            for name, info in scenarios.items()
        ]
        lines += ["### Scenario files", "", *table(["scenario", "file", "sha256"], rows), ""]
    targets = results.targets
    if targets:
        keys = ["server", "framework", "interface", "worker_class", "workers", "threads"]
        rows = [
            [
                name,
                *(str(t.get(k, "")) for k in keys),
                str(t["slots"])
                if t.get("slots") is not None
                else ("unknown" if t.get("external") else "unbounded"),
                str(t.get("description", "")),
            ]
            for name, t in sorted(targets.items())
        ]
        header = ["target", *keys, "slots", "description"]
        lines += ["### Targets", "", *table(header, rows), ""]
    packages = manifest.get("packages") or {}
    if packages:
        rows = [[name, str(version)] for name, version in sorted(packages.items())]
        lines += ["### Packages", "", *table(["package", "version"], rows), ""]
    return lines


def render_report(results: Results) -> str:
    """The report's Markdown text (charts are linked only if they exist on disk)."""
    statuses = results.summary["status"].fillna("unknown").value_counts()
    counts = ", ".join(f"{n} {status}" for status, n in statuses.items())
    manifest = results.manifest
    lines = [f"# gatebench run {results.run_id}", ""]
    started, finished = manifest.get("created_at") or "?", manifest.get("finished_at") or "?"
    lines += [
        f"**Status:** {results.status} · {len(results.summary)} cells ({counts or 'none'}) · "
        f"started {started}, finished {finished}",
        "",
    ]
    if results.status != "complete":
        lines += [f"> This run is **{results.status}**: figures cover only the cells that ran.", ""]
    lines += pinning_warning(results) + external_note(results)
    lines += answer_section(results)
    lines += ["## How to read this", "", HOW_TO_READ, ""]
    findings = [
        line
        for scenario in results.scenario_names
        for model in LOAD_AXES
        for line in headline(results, scenario, model)
    ]
    lines += ["## Findings by scenario", ""]
    lines += [f"- {line}" for line in findings] or [
        "No cell completed, so there is nothing to compare."
    ]
    lines.append("")
    overview = overview_chart_path(results.run_dir)
    lines += chart_lines(results, overview, "ASGI/WSGI throughput ratio", OVERVIEW_CAPTION)
    lines += ratios_section(results)
    lines += factors_section(results)
    lines += generator_bound_section(results) + load_flags_section(results)
    lines += unstable_section(results)
    lines += measurement_section(results) + closed_vs_open_section(results)
    lines += stall_section(results) + verify_section(results)
    lines += real_io_section(results) + protocol_section(results)
    lines += crosscheck_lines(results.run_dir)
    lines += connections_section(results)
    for scenario in results.scenario_names:
        lines += _scenario_section(results, scenario)
    lines += _not_ok_section(results) + _warnings_section(results)
    lines += _environment_section(results)
    return "\n".join(lines).rstrip() + "\n"


def write_report(run_dir: Path | str) -> Path:
    """Write ``report.md`` atomically from the run folder; returns its path."""
    results = load(run_dir)
    return atomic_write_text(results.run_dir / schema.REPORT_MD, render_report(results))
