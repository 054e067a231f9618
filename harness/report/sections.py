"""Sections of report.md about trust in the numbers, and the tables of a scenario.

This module owns the sections that say how far to trust a run: how it was measured, closed vs
open load, the verify gate, generator-bound, erroring and unstable cells, injected stalls; and
the open-load and trials tables of a scenario. ``harness.report.markdown`` assembles them. Like
it, this reads the run through ``harness.results`` only; numbers are written by
``harness.format``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.charts.paths import STALL_CAPTION, stall_chart_path
from harness.format import (
    EMPTY,
    fmt,
    fmt_ci,
    fmt_exact,
    fmt_int,
    fmt_level,
    fmt_ms,
    fmt_pct,
    missing,
)
from harness.report.blocks import chart_lines, row_load_text, table, yes_no
from harness.results.flags import (
    CEILING_FRACTION,
    ERROR_RATE_LIMIT,
    GENERATOR_CPU_LIMIT_PCT,
    LATE_STARTS_LIMIT,
    LATENESS_MIN_MS,
    LATENESS_SHARE,
    NOISY,
    OTHER_CPU_LIMIT_PCT,
    OVERLOADED,
    RISE_MIN_MS,
    RISE_SHARE,
    SHORTFALL_LIMIT,
    STEAL_LIMIT_PCT,
    UNSETTLED,
    has_flag,
)
from harness.results.folder import Results
from harness.results.rows import LOAD_AXES, erroring, generator_bound, unstable
from harness.results.trials import GROUP_KEYS, UNSTABLE_CV

DO_NOT_COMPARE = "these cells measure the load generator, not the server: do not compare them"


# ---- How the figures are made --------------------------------------------------------------


def _distinct(values: list[Any]) -> str:
    numbers = sorted({float(v) for v in values if not missing(v)})
    return " / ".join(f"{v:g}" for v in numbers) or "?"


def pinning_warning(results: Results) -> list[str]:
    """A prominent warning when server and generator were not on disjoint CPU sets."""
    pinning = results.manifest.get("pinning") or {}
    if pinning.get("applied", True) is not False:
        return []
    note = f" ({pinning['note']})" if pinning.get("note") else ""
    return [
        f"> **Warning: CPU pinning was not applied{note}.** The server and the load generator "
        "competed for the same CPUs, so results may be distorted: a busy generator slows the "
        "server and the other way round.",
        "",
    ]


def external_note(results: Results) -> list[str]:
    """Why a target gatebench did not start (``run --url``) has no server CPU or memory."""
    lines = []
    for name, target in results.targets.items():
        if not target.get("external"):
            continue
        slots = target.get("slots")
        bound = (
            f"its slots ({slots}) come from --slots"
            if slots is not None
            else "no --slots was given, so no slots ceiling bounds its cells"
        )
        if target.get("interface") not in ("asgi", "wsgi"):
            bound += "; without --interface it is left out of the ASGI/WSGI ratios"
        lines += [
            f"> **{name}: server CPU and memory were not measured:** the target at "
            f"{target.get('url') or '?'} was not started by gatebench, so there was no server "
            "process to sample (nor to pin to CPUs), and the CPU of other processes is not "
            f"reported for its cells (on this machine, that server is one of them); {bound}.",
            "",
        ]
    return lines


def _pinning_line(results: Results) -> str:
    pinning = results.manifest.get("pinning") or {}
    if not pinning:
        return "- **CPU pinning:** not recorded."
    if pinning.get("applied") is False:
        return "- **CPU pinning: not applied** (see the warning above): results may be distorted."
    return (
        f"- **CPU pinning:** server on CPUs {pinning.get('server_cpus')}, load generator on CPUs "
        f"{pinning.get('generator_cpus')}: disjoint sets, so neither takes the other's CPU time."
    )


def _ceiling_line(results: Results) -> str:
    rule = (
        f"A cell is flagged *generator-bound* when the generator's CPU averaged >= "
        f"{GENERATOR_CPU_LIMIT_PCT:g}% of a core over the window, when its throughput reached "
        f"{CEILING_FRACTION:.0%} of the generator ceiling, or (open load) when more than "
        f"{LATE_STARTS_LIMIT:.0%} of its requests started late (judged when each request "
        f"actually started), its p99 lateness exceeded {LATENESS_SHARE:.0%} of its p99 latency "
        f"(and {LATENESS_MIN_MS:g} ms), or any arrival was dropped. The ceiling is measured on "
        "the cheapest route; every cell is also judged by its own generator CPU per request, "
        "which is its `generator` ceiling in the roofline."
    )
    calibration = results.calibration
    if calibration is None or missing(calibration.get("rps")):
        return f"- **Generator ceiling:** not measured in this run (no calibration). {rule}"
    cpu = calibration.get("generator_cpu_pct")
    cpu_text = "" if missing(cpu) else f", generator CPU {fmt(cpu, 0)}%"
    runs = calibration.get("runs_rps")
    if isinstance(runs, list) and len(runs) > 1:
        spread = calibration.get("spread")
        spread_text = "" if missing(spread) else f", spread {fmt_pct(spread)}"
        cpu_text += f"; median of {len(runs)} runs ({', '.join(fmt(r) for r in runs)}{spread_text})"
    note = f"; {calibration['note']}" if calibration.get("note") else ""
    return (
        f"- **Generator ceiling:** {fmt(calibration['rps'])} requests/s, measured before the "
        f"cells by {calibration.get('users', '?')} closed users without think time on "
        f"`{calibration.get('route', '?')}` of {calibration.get('target', '?')} for "
        f"{fmt_exact(calibration.get('duration_s'))} s{cpu_text}{note}. {rule}"
    )


def measurement_section(results: Results) -> list[str]:
    """How every figure of the report is made, in words."""
    cells = [c for c in results.manifest.get("cells") or [] if isinstance(c, dict)]
    warmup = _distinct([c.get("warmup_s") for c in cells])
    duration = _distinct([c.get("duration_s") for c in cells])
    # Trials planned per cell: the highest trial number of each group.
    per_group = results.summary.groupby(list(GROUP_KEYS), dropna=False)["trial"].max().dropna()
    counts = sorted({int(n) for n in per_group})
    trial_count = " to ".join(str(n) for n in dict.fromkeys(counts[:1] + counts[-1:])) or "0"
    lines = ["## Measurement", ""]
    lines += [
        f"- **Window:** each cell spawns its users, then runs {warmup} s of load that is not "
        f"counted (warm-up); the measurement window of {duration} s follows, and only requests "
        "that complete inside it count. Throughput = successful requests in the window / its "
        "length. CPU and memory figures cover the window only.",
        "- **Latency:** exact percentiles from an HDR histogram of every successful request at "
        "3 significant digits (within 0.1%). locust's own percentiles, rounded to about 2 "
        "significant digits, are kept in the `locust_*` columns of summary.csv for comparison.",
        f"- **Failures** are counted apart (`failures`, `error_rate`) and never enter the "
        f"latency figures; a cell with more than {ERROR_RATE_LIMIT:.0%} errors is flagged.",
        _pinning_line(results),
        _generators_line(results),
        *_network_line(results),
        _ceiling_line(results),
        f"- **Trials:** {trial_count} per cell. Trials run in rounds (every cell of trial 1, "
        "then of trial 2, ...), each on a fresh server, so drift hits every target alike. With "
        "more than one, a group's figure is the median over its ok trials with the 95% "
        "confidence interval of the mean (Student's t), and a group whose throughput varies "
        f"more than {UNSTABLE_CV:.0%} (CV = stdev / mean) is marked unstable.",
        f"- **Load flags:** an open-load cell whose completions fell more than "
        f"{SHORTFALL_LIMIT:.0%} short of the arrivals offered in its window, or whose latency "
        f"climbed through the window (the per-second mean latency of its last third of seconds "
        f"above that of its first third by more than "
        f"{RISE_SHARE:.0%} of the mean and {RISE_MIN_MS:g} ms), is *overloaded*: it did not keep "
        "up, and its percentiles measure how long it ran. A closed-load cell whose latency "
        "climbed the same way is *unsettled*: its queue had not reached steady state, so its "
        f"percentiles are a lower bound. A cell with CPU steal above {STEAL_LIMIT_PCT:g}% of a "
        f"core, or other processes using more than {OTHER_CPU_LIMIT_PCT:g}%, is *noisy*.",
        "",
    ]
    return lines


def _generators_line(results: Results) -> str:
    """Which locust processes made the requests (harness.run.generators)."""
    layout = results.manifest.get("generators") or {}
    local = int(layout["local"]) if layout.get("local") is not None else 1  # 0: all external
    external = int(layout.get("external") or 0)
    if local <= 1 and not external:
        return "- **Load generator:** one locust process, on the generator CPUs."
    where = [f"{local} on this machine, pinned to the generator CPUs round-robin"] if local else []
    if external:
        where.append(f"{external} joined from other hosts")
    return (
        f"- **Load generators:** {local + external} locust "
        f"worker{'s' if local + external != 1 else ''} ({'; '.join(where)}) under "
        "one locust master. Each worker records its share of every cell in exact HDR "
        "histograms; the master adds them up, never averages them, so every percentile is "
        "that of all requests. Each worker measures its own CPU over its window: a cell is "
        f"generator-bound when any worker reached {GENERATOR_CPU_LIMIT_PCT:g}% of its core "
        "(`worker_cpu_max_pct`) or all together that share of their cores "
        "(`generator_budget_pct`: one core per worker, at most the cores they were pinned to)."
    )


def _network_line(results: Results) -> list[str]:
    """The link to a target across a network (run --url; harness.run.network)."""
    network = results.manifest.get("network")
    if not network:
        return []
    where = f"{network.get('host')}:{network.get('port')}"
    rtt = network.get("rtt_ms")
    measured = (
        f"round trip {rtt:.3f} ms (median of {network.get('samples')} TCP connects)"
        if rtt is not None
        else f"round trip not measured ({network.get('error')})"
    )
    delay = network.get("net_delay_ms")
    if delay:
        before = network.get("rtt_before_ms")
        measured += (
            f", with {delay:g} ms of one-way delay added on {network.get('device')} (netem)"
            + (f"; {before:.3f} ms without it" if before is not None else "")
        )
    timed = any(
        (result or {}).get("io_overhead_ms") is not None
        for result in (results.manifest.get("verify") or {}).values()
    )
    bound = (
        "The verify gate timed `/io?ms=0` over the same link, so each cell's service time S, "
        "and its Little's-law bound, include the round trip."
        if timed
        else "The verify gate did not run, so the cells' service time S leaves the round trip out."
    )
    return [f"- **Network:** to {where}: {measured}. {bound}"]


def _has_open(results: Results) -> bool:
    return bool(results.summary["load_model"].eq("open").fillna(False).any())


def _has_stall(results: Results) -> bool:
    return bool(results.options.get("stall")) or bool(results.summary["stall_for_s"].notna().any())


def closed_vs_open_section(results: Results) -> list[str]:
    """Coordinated omission in words; only for runs with open-load cells or a stall."""
    if not (_has_open(results) or _has_stall(results)):
        return []
    arrivals = str(results.options.get("arrivals") or "poisson")
    schedule = "Poisson arrivals" if arrivals == "poisson" else "evenly spaced arrivals"
    return [
        "## Closed vs open load",
        "",
        "A closed-loop user sends its next request only when the previous one has answered. "
        "When the server stalls, every user is soon waiting, so the generator stops sending: "
        "the stall touches only the requests already in flight, and the p99 barely moves. The "
        "generator has coordinated with the server to leave the bad moments out of its sample "
        "(*coordinated omission*). An open load launches requests on a schedule "
        f"({schedule} at the offered rate) that does not wait for answers: arrivals keep "
        "coming during a stall, queue behind it, and their latency measured from the "
        "*intended* start shows it. Open-load tables give p99 both ways: corrected (from the "
        "intended start) and uncorrected (from the actual send, what a closed-loop tool would "
        "report); a large gap means requests queued or the schedule fell behind. A start more "
        "than 10 ms behind schedule counts as *late*; an arrival not started because too many "
        "requests were in flight is *dropped*.",
        "",
    ]


# ---- The verify gate and flagged cells -----------------------------------------------------


def verify_section(results: Results) -> list[str]:
    verify = results.verify
    if not verify:
        return []
    rows = []
    for name, result in sorted(verify.items()):
        passed = result.get("passed")
        problems = "; ".join(str(p) for p in result.get("problems") or []) or EMPTY
        rows.append(
            [
                name,
                "passed" if passed else "**failed**",
                fmt(result.get("io_ms")),
                fmt(result.get("io_expected_ms")),
                fmt_int(result.get("checked")),
                problems,
            ]
        )
    header = ["target", "verify", "/io ms measured", "/io ms expected", "requests", "problems"]
    lines = ["## Verify gate", ""]
    lines += [
        "Before any cell, every target answered the same requests (status codes and JSON "
        "bodies compared) and its `/io` was timed one request at a time. A target that failed "
        "is not measured: its cells are skipped.",
        "",
        *table(header, rows),
        "",
    ]
    return lines


def generator_bound_section(results: Results) -> list[str]:
    ok = results.ok_rows()
    bound, errors = ok[generator_bound(ok)], ok[erroring(ok)]
    lines: list[str] = []
    if len(bound):
        rows = [
            [f"`{r['cell_id']}`", fmt(r["rps"]), fmt(r["generator_cpu_pct"]), str(r["flags"])]
            for _, r in bound.iterrows()
        ]
        lines += [
            "## Generator-bound cells",
            "",
            f"> **Warning:** {DO_NOT_COMPARE}. They are left out of the headline findings.",
            "",
            *table(["cell", "rps", "generator CPU %", "reasons"], rows),
            "",
        ]
    if len(errors):
        rows = [
            [f"`{r['cell_id']}`", fmt_pct(r["error_rate"]), fmt_int(r["failures"])]
            for _, r in errors.iterrows()
        ]
        lines += [
            "## Cells with errors",
            "",
            f"More than {ERROR_RATE_LIMIT:.0%} of the requests of these cells failed: their "
            "latency and throughput describe a failing server.",
            "",
            *table(["cell", "error rate", "failures"], rows),
            "",
        ]
    return lines


def load_flags_section(results: Results) -> list[str]:
    """Cells flagged overloaded, unsettled or noisy: what the flag says about their figures."""
    ok = results.ok_rows()
    meaning = {
        OVERLOADED: "did not keep up with the offered load: never read its latency as the "
        "server's, it measures how long the cell ran",
        UNSETTLED: "latency still climbing through the window: its percentiles are a lower bound",
        NOISY: "other work on the machine during the window: compare with care",
    }
    rows = []
    for _, row in ok.iterrows():
        names = [name for name in meaning if has_flag(row["flags"], name)]
        if names:
            rows.append([f"`{row['cell_id']}`", ", ".join(names), str(row["flags"])])
    if not rows:
        return []
    legend = "; ".join(f"*{name}*: {text}" for name, text in meaning.items())
    return ["## Overloaded, unsettled and noisy cells", "", legend + ".", "",
            *table(["cell", "flags", "reasons"], rows), ""]  # fmt: skip


def unstable_section(results: Results) -> list[str]:
    groups = results.groups()
    shaky = groups[unstable(groups)]
    if shaky.empty:
        return []
    rows = [
        [
            str(r["scenario"]),
            str(r["target"]),
            row_load_text(r),
            fmt_int(r["trials"]),
            fmt(r["rps_median"]),
            fmt_ci(r["rps_ci_low"], r["rps_ci_high"]),
            fmt_pct(r["rps_cv"]),
        ]
        for _, r in shaky.iterrows()
    ]
    header = ["scenario", "target", "load", "trials", "rps median", "rps 95% CI", "CV"]
    return [
        "## Unstable cells",
        "",
        f"> **Warning:** throughput varied more than {UNSTABLE_CV:.0%} (CV) across the trials "
        "of these groups, so their medians are not reliable: rerun them with more trials or on "
        "a quieter machine.",
        "",
        *table(header, rows),
        "",
    ]


def stall_section(results: Results) -> list[str]:
    """Per stalled cell: when the stall began and lasted, and the p99 both ways."""
    configured = results.options.get("stall")
    stalled = results.summary[results.summary["stall_for_s"].notna()]
    if stalled.empty and not configured:
        return []
    lines = ["## Injected stall", ""]
    if isinstance(configured, dict):
        lines += [
            f"The run paused the server's processes (SIGSTOP, then SIGCONT) "
            f"{fmt_exact(configured.get('at_s'))} s into each cell's measurement window, for "
            f"{fmt_exact(configured.get('for_s'))} s, like a GC pause or a VM hiccup.",
            "",
        ]
    if stalled.empty:
        return [*lines, "No cell recorded a stall (no stall.json in raw/).", ""]
    rows = [
        [
            f"`{r['cell_id']}`",
            str(r["load_model"]),
            fmt(r["stall_at_s"], 2),
            fmt(r["stall_for_s"], 2),
            fmt_ms(r["p99_ms"]),
            fmt_ms(r["p99_uncorrected_ms"]),
            fmt_ms(r["max_ms"]),
        ]
        for _, r in stalled.iterrows()
    ]
    header = ["cell", "load", "stall at (s into window)", "stall for (s)", "p99 ms"]
    header += ["p99 ms uncorrected", "max ms"]
    lines += [*table(header, rows), ""]
    for scenario in dict.fromkeys(stalled["scenario"].dropna().astype(str)):
        path = stall_chart_path(results.run_dir, scenario)
        lines += chart_lines(results, path, f"{scenario} stall", STALL_CAPTION)
    return lines


# ---- Tables of a scenario ------------------------------------------------------------------


def open_table(rows: pd.DataFrame) -> list[str]:
    """Open-load cells: the schedule kept (launched, late, dropped), p99 both ways, what was
    still in flight when the window closed, and the limiter (efficiency: of the offered rate)."""
    trials = rows["trial"].nunique() > 1
    header = ["target", "rate", *(["trial"] if trials else []), "rps", "launched", "late"]
    header += ["dropped", "p50 ms", "p99 ms", "p99 ms uncorrected", "max ms", "failures"]
    header += ["in flight at end", "bound rps", "efficiency", "limited by", "generator CPU %"]
    header += ["status", "flags"]
    body = []
    for _, row in rows.sort_values(["rate", "target", "trial"], na_position="last").iterrows():
        cells = [str(row["target"]), fmt_level(row["rate"])]
        cells += [str(row["trial"])] if trials else []
        cells += [fmt(row["rps"]), fmt_int(row["launched"]), fmt_int(row["late_starts"])]
        cells += [fmt_int(row["dropped"]), fmt_ms(row["p50_ms"]), fmt_ms(row["p99_ms"])]
        cells += [fmt_ms(row["p99_uncorrected_ms"]), fmt_ms(row["max_ms"])]
        cells += [fmt(row["failures"], 0), fmt_int(row["in_flight_at_end"])]
        cells += [fmt_exact(row["bound_rps"]), fmt(row["efficiency"], 2, thousands=False)]
        cells += [EMPTY if missing(row["limited_by"]) else str(row["limited_by"])]
        cells += [fmt(row["generator_cpu_pct"])]
        cells += [str(row["status"]), row["flags"]]  # table() writes it, or EMPTY
        body.append(cells)
    return table(header, body)


def trials_table(rows: pd.DataFrame, load_model: str) -> list[str]:
    """One row per group with more than one trial: medians, 95% CIs, CV, stability."""
    x = LOAD_AXES[load_model].column
    groups = rows.drop_duplicates(subset=["target", x])
    groups = groups[groups["trials"].fillna(0) > 1]
    if groups.empty:
        return []
    body = [
        [
            str(r["target"]),
            fmt_level(r[x]),
            fmt_int(r["trials"]),
            fmt(r["rps_median"]),
            fmt_ci(r["rps_ci_low"], r["rps_ci_high"]),
            fmt_pct(r["rps_cv"]),
            fmt_ms(r["p99_median_ms"]),
            fmt_ci(r["p99_ci_low_ms"], r["p99_ci_high_ms"], ms=True),
            yes_no(r["unstable"]),
        ]
        for _, r in groups.sort_values([x, "target"]).iterrows()
    ]
    header = ["target", x, "trials", "rps median", "rps 95% CI", "rps CV", "p99 ms median"]
    header += ["p99 ms 95% CI", "unstable"]
    intro = "Across trials (median over ok trials; 95% CI of the mean, Student's t):"
    return [intro, "", *table(header, body), ""]
