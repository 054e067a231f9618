"""The answer at the top of report.md: one table, scenario by target, and at most five findings.

The table gives, per scenario (and load model), each target's throughput at the scenario's
common load level, its ratio to the best WSGI target there, and the limiter of the cell (the
roofline's, ``harness.results.roofline``). SSE/WebSocket scenarios are judged by what matters
for them: connections held of those requested and the message p99 of the held ones.

Findings are chosen by how large and how certain they are: the size is how far the best ASGI
over best WSGI ratio is from 1 (log scale), the certainty falls when the ratio has no interval
(one trial) and when a cell of the pair is flagged or unexplained. Each names its cause in
words: the limiter of the two cells, and whether the WSGI server closed its connections after
every request (no keep-alive, measured as connections opened per request). The full findings
per scenario follow later in the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from harness.format import fmt, fmt_ms, load_text, missing, ratio_number
from harness.report.blocks import table
from harness.results.connections import HELD, X, connection_medians, connection_rows
from harness.results.folder import Results
from harness.results.ratios import asgi_wsgi_ratios, paired_text
from harness.results.rows import LOAD_AXES, comparison_level, generator_bound, ok_only, trusted
from harness.results.targets import setting, target_settings

MAX_FINDINGS = 5
NO_KEEPALIVE = 0.5  # connections opened per request above this: the server closes each one
HELD_ENOUGH = 0.9  # a target holding fewer than this share of its connections is never ranked
PARITY = (0.8, 1.25)  # ASGI/WSGI ratios inside count as "the same"


@dataclass(frozen=True)
class Finding:
    score: float
    text: str
    kind: str  # "http", "cpu" (every cell CPU-bound) or "connections"


def anchor(scenario: str) -> str:
    """The link target of a scenario's section (its heading "Scenario `name`")."""
    return f"#scenario-{scenario.lower()}"


def _interface(results: Results, target: str) -> str:
    return str(setting(target_settings(results).get(target) or {}, "interface") or "")


def _medians(rows: pd.DataFrame, x: str, level: float) -> pd.DataFrame:
    at = rows[rows[x] == level]
    figures = ["rps", "p99_ms", "server_cpu_pct", "connections_per_request"]
    figures = [f for f in figures if f in at]
    medians = at.groupby("target")[figures].median()
    first = at.groupby("target")[["limiter", "limited_by", "flags"]].first()
    return medians.join(first)


def keepalive_text(row: pd.Series) -> str:
    """ "; no keep-alive: 1.00 new connections per request" when the server closed them."""
    opened: Any = row.get("connections_per_request")
    if missing(opened) or float(opened) < NO_KEEPALIVE:
        return ""
    return f"; no keep-alive: {fmt(opened, 2)} new connections per request"


def _limiter(row: pd.Series) -> str:
    limiter = row.get("limiter")
    return "–" if missing(limiter) else str(limiter)


def http_answer(
    results: Results, scenario: str, model: str
) -> tuple[list[str], Finding | None] | None:
    """One table row (level, then a cell per target) and the scenario's finding, or None."""
    x = LOAD_AXES[model].column
    good = trusted(results.scenario_rows(scenario, model))
    level = comparison_level(good, x)
    if level is None:
        return None
    medians = _medians(good, x, level)
    wsgi = [t for t in medians.index if _interface(results, t) == "wsgi"]
    asgi = [t for t in medians.index if _interface(results, t) == "asgi"]
    best_wsgi = max(wsgi, key=lambda t: medians.loc[t, "rps"]) if wsgi else None
    base = None if best_wsgi is None else float(medians.loc[best_wsgi, "rps"])
    everything = ok_only(results.scenario_rows(scenario, model))
    there = everything[everything[x] == level]
    cells = {str(t): "generator-bound" for t in there.loc[generator_bound(there), "target"]}
    for target, row in medians.iterrows():
        ratio = f" ({ratio_number(row['rps'] / base)}×)" if base else ""
        cells[str(target)] = f"{fmt(row['rps'])}{ratio} · {_limiter(row)}"
    label = scenario if model == "closed" else f"{scenario} (open)"
    line = [f"[{label}]({anchor(scenario)})", load_text(model, level), *_cells(results, cells)]
    if not asgi or best_wsgi is None or not base:
        return line, None
    best_asgi = max(asgi, key=lambda t: medians.loc[t, "rps"])
    return line, _http_finding(results, scenario, model, level, medians, best_asgi, best_wsgi)


def _http_finding(
    results: Results, scenario: str, model: str, level: float, medians: pd.DataFrame,
    asgi: str, wsgi: str,
) -> Finding:  # fmt: skip
    a, w = _row(medians, asgi), _row(medians, wsgi)
    pair = next(
        (r for r in asgi_wsgi_ratios(results, scenario, model).ratios
         if r.asgi == asgi and r.wsgi == wsgi),
        None,
    )  # fmt: skip
    ratio = float(a["rps"]) / float(w["rps"])
    if pair is not None:
        ratio = pair.estimate
        interval = paired_text(pair).split(" ", 1)[1].strip("()")
    else:
        interval = "no paired trials: no interval"
    certainty = 1.0 if pair is not None and pair.has_interval else 0.7
    for row in (a, w):
        if not missing(row.get("flags")):
            certainty *= 0.7
    where = f"**{scenario}** at {load_text(model, level)}"
    served = (
        f"{asgi} served {ratio_number(ratio)}× the requests/s of {wsgi} "
        f"({fmt(a['rps'])} vs {fmt(w['rps'])}; {interval})"
    )
    if all(not missing(r.get("limiter")) and r.get("limiter") == "server_cpu" for r in (a, w)):
        cost = ", ".join(
            f"{name} {fmt(_cpu_ms(row), 2)} ms" for name, row in ((asgi, a), (wsgi, w))
        )
        text = (
            f"{where}: both were limited by server CPU, so {asgi}'s {ratio_number(ratio)}× over "
            f"{wsgi} ({fmt(a['rps'])} vs {fmt(w['rps'])} requests/s; {interval}) comes from the "
            f"CPU each request costs ({cost} of CPU per request), not from holding more "
            "requests at once"
        )
        return Finding(max(abs(math.log(ratio)), 0.5) * certainty, text + ".", "cpu")
    text = (
        f"{where}: {served}. {wsgi} was limited by {_words(w)}{keepalive_text(w)}; "
        f"{asgi} by {_words(a)}"
    )
    return Finding(abs(math.log(ratio)) * certainty, text + ".", "http")


def _cpu_ms(row: pd.Series) -> float | None:
    cpu: Any = row.get("server_cpu_pct")
    rps: Any = row.get("rps")
    if missing(cpu) or missing(rps) or not rps:
        return None
    return float(cpu) / 100.0 / float(rps) * 1000.0


def _row(frame: pd.DataFrame, name: str) -> pd.Series:
    return cast(pd.Series, frame.loc[name])


def _words(row: pd.Series) -> str:
    limited_by = row.get("limited_by")
    if missing(limited_by):
        return "nothing known"
    text = str(limited_by)
    return (
        text.replace("unexplained: ", "nothing measured (unexplained: ", 1) + ")"
        if (text.startswith("unexplained"))
        else text
    )


def _cells(results: Results, cells: dict[str, str]) -> list[str]:
    return [cells.get(t, "–") for t in results.target_names]


def connection_answer(results: Results, scenario: str) -> tuple[list[str], Finding] | None:
    """The row and finding of an SSE/WebSocket scenario: connections held, message p99."""
    rows = connection_rows(results, scenario)
    if rows.empty:
        return None
    medians = connection_medians(rows)
    common = medians.groupby(X)["target"].nunique()
    level = float(common[common == common.max()].index.max())
    at = medians[medians[X] == level].set_index("target")
    cells = {}
    for target, row in at.iterrows():
        p99 = (
            ""
            if missing(row["message_p99_ms"])
            else f" · msg p99 {fmt_ms(row['message_p99_ms'])} ms"
        )
        cells[str(target)] = f"held {fmt(row[HELD], 0)}{p99}"
    line = [f"[{scenario}]({anchor(scenario)})", f"{fmt(level, 0)} connections",
            *_cells(results, cells)]  # fmt: skip
    held = at[HELD].astype("float64")
    full = at[held >= HELD_ENOUGH * level]
    ranked = full.sort_values("message_p99_ms") if len(full) else full
    parts = []
    for target, row in at.sort_values(HELD, ascending=False).iterrows():
        slots = (results.targets.get(str(target)) or {}).get("slots")
        why = f" (its {slots} slots)" if slots is not None and row[HELD] <= slots else ""
        parts.append(f"{target} {fmt(row[HELD], 0)}{why}")
    text = (
        f"**{scenario}**: of {fmt(level, 0)} connections requested, " + ", ".join(parts) + " held"
    )
    if len(ranked):
        best = ranked.iloc[0]
        text += (
            f"; of the targets that held them, {ranked.index[0]} delivered messages fastest "
            f"(p99 {fmt_ms(best['message_p99_ms'])} ms)"
        )
    spread = float(cast(float, held.max())) / max(float(cast(float, held.min())), 1.0)
    # Connections held differ by orders of magnitude; weigh them like a 20x ratio at most.
    return line, Finding(min(math.log(max(spread, 1.0)), math.log(20)), text + ".", "connections")


def choose(findings: list[Finding]) -> list[Finding]:
    """At most MAX_FINDINGS, largest and most certain first, with at most two of long-lived
    connections and, when there is one, the best CPU-bound finding (where async did not help)."""
    ranked = sorted(findings, key=lambda f: f.score, reverse=True)
    cpu = next((f for f in ranked if f.kind == "cpu"), None)
    chosen: list[Finding] = [] if cpu is None else [cpu]
    for finding in ranked:
        if len(chosen) >= MAX_FINDINGS:
            break
        if finding in chosen:
            continue
        if finding.kind == "connections" and sum(f.kind == "connections" for f in chosen) >= 2:
            continue
        chosen.append(finding)
    return sorted(chosen, key=lambda f: f.score, reverse=True)


def answer_section(results: Results) -> list[str]:
    """The report's first section: the answer table, the findings, links to every scenario."""
    rows: list[list[str]] = []
    findings: list[Finding] = []
    for scenario in results.scenario_names:
        connections = connection_answer(results, scenario)
        if connections is not None:
            rows.append(connections[0])
            findings.append(connections[1])
            continue
        for model in results.load_models(scenario):
            answer = http_answer(results, scenario, model)
            if answer is None:
                continue
            rows.append(answer[0])
            if answer[1] is not None:
                findings.append(answer[1])
    if not rows:
        return ["## The answer", "", "No cell completed, so there is nothing to compare.", ""]
    header = ["scenario", "load", *results.target_names]
    chosen = choose(findings)
    lines = [
        "## The answer",
        "",
        "Requests/s at each scenario's common load level, × the best WSGI target there, · what "
        "limited the cell (SSE/WebSocket: connections held, message p99). Click a scenario for "
        "its section.",
        "",
        *table(header, rows),
        "",
    ]
    lines += [f"{i}. {finding.text}" for i, finding in enumerate(chosen, 1)]
    return [*lines, ""]
