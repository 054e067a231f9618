"""The "Where the difference comes from" section of report.md: single-factor pairs in words.

Per scenario (and load model) with a pair of targets that differ in one thing only
(``harness.results.factors``): one sentence over the factors, the table of the pairs, the
chart, and the pitfall of a blocked event loop in figures. ``EXPLANATION`` tells the reader
the pairing rules (``harness.results.factors.classify``).
"""

from __future__ import annotations

from harness.charts.paths import FACTORS_CAPTION, factors_chart_path
from harness.format import fmt, fmt_exact, fmt_ms, load_text, ratio_number, ratio_text
from harness.report.blocks import chart_lines, table
from harness.results.factors import FACTORS, FactorPairs, blocked_loops, find_pairs
from harness.results.folder import Results

MAX_LISTED = 3  # a factor with more pairs than this is told as a range in the sentence

EXPLANATION = (
    '"WSGI vs ASGI" mixes three things: the interface, the server and the framework (and each '
    "server runs its own worker model). Each row changes one thing: **interface**: the same "
    "framework on the same server (the worker model follows the interface: threads for WSGI, "
    "an event loop for ASGI); **framework**: the same server, interface and worker model; "
    "**server**: the same framework, interface, workers, threads and concurrency (the worker "
    "class belongs to the server); **worker model**: the same framework, server and interface "
    "with another worker class, concurrency or worker count; **http** and **tls**: the same stack "
    "and worker model, only the HTTP version (1.1 → 2) or TLS differs (the protocol profile). "
    "Pairs that differ in more than one "
    "of these are not compared here. Ratios are b ÷ a at the load level of the headline "
    "findings (medians over trials): an rps ratio above 1 means b served more, a p99 ratio "
    "above 1 that b answered its slowest requests more slowly."
)


def where(found: FactorPairs) -> str:
    """ "On io at 100 users" (the pairs' load level)."""
    name = found.scenario + (" (open load)" if found.load_model == "open" else "")
    at = "" if found.level is None else f" at {load_text(found.load_model, found.level)}"
    return f"On {name}{at}"


def factor_sentence(found: FactorPairs) -> str:
    """One sentence over the factors: what changing only one thing did to throughput."""
    clauses: list[str] = []
    for factor in FACTORS:
        group = found.pairs[found.pairs["factor"] == factor]
        if group.empty:
            continue
        verb = "" if clauses else " changed throughput"
        if len(group) > MAX_LISTED:
            ranked = group.sort_values("rps_ratio")
            low, high = ranked.iloc[0], ranked.iloc[-1]
            items = (
                f"{verb} from {ratio_text(low['rps_ratio'])} ({low['target_a']} → "
                f"{low['target_b']}) to {ratio_text(high['rps_ratio'])} ({high['target_a']} → "
                f"{high['target_b']}) over {len(group)} pairs"
            )
        else:
            items = ", ".join(
                f"({row['target_a']} → {row['target_b']}){verb if i == 0 else ''} "
                f"{ratio_text(row['rps_ratio'])}"
                for i, (_, row) in enumerate(group.iterrows())
            )
            items = " " + items
        clauses.append(f"changing only the {factor}{items}")
    return f"{where(found)}, " + "; ".join(clauses) + "."


def pitfall_sentences(results: Results, found: FactorPairs) -> list[str]:
    """For each target whose handlers block its event loop: what it served against what one
    request at a time per process allows (workers / service time)."""
    lines = []
    for blocked in blocked_loops(results, found):
        workers = blocked.workers
        who = "one process serves" if workers == 1 else f"each of its {workers} processes serves"
        at = (
            ""
            if blocked.level == found.level
            else f" (at {load_text(found.load_model, blocked.level)})"
        )
        text = (
            f"{blocked.target} served {fmt(blocked.rps)} rps{at}: the event loop is blocked by "
            f"time.sleep, so {who} one request at a time"
        )
        if blocked.service_time_ms is not None:
            text += (
                f", at most {workers} / {blocked.service_time_ms:g} ms = "
                f"{fmt_exact(blocked.bound_rps)} rps"
            )
        lines.append(text + ".")
    return lines


def factors_table(found: FactorPairs) -> list[str]:
    """The pairs, one row each: what differs, rps and p99 of both sides and their ratios."""
    header = ["factor", "a → b", "what differs", "rps a", "rps b", "rps ratio (b ÷ a)"]
    header += ["p99 ms a", "p99 ms b", "p99 ratio (b ÷ a)"]
    rows = [
        [
            str(row["factor"]),
            f"{row['target_a']} → {row['target_b']}",
            str(row["differs"]),
            fmt(row["rps_a"]),
            fmt(row["rps_b"]),
            ratio_number(row["rps_ratio"]),
            fmt_ms(row["p99_a_ms"]),
            fmt_ms(row["p99_b_ms"]),
            ratio_number(row["p99_ratio"]),
        ]
        for _, row in found.pairs.iterrows()
    ]
    return table(header, rows)


def factors_section(results: Results) -> list[str]:
    """ "Where the difference comes from": per scenario (and load model) with a single-factor
    pair, the sentence, the table and the chart; the blocked-event-loop pitfall in figures."""
    parts: list[str] = []
    for scenario in results.scenario_names:
        for model in results.load_models(scenario):
            found = find_pairs(results, scenario, model)
            pitfalls = pitfall_sentences(results, found)
            if found.pairs.empty and not pitfalls:
                continue
            parts += [f"### {where(found).removeprefix('On ')}", ""]
            if not found.pairs.empty:
                parts += [factor_sentence(found), "", *factors_table(found), ""]
            if found.skipped and not found.pairs.empty:
                count = len(found.skipped)
                parts += [
                    f"Left out: {count} pair{'s' if count > 1 else ''} without a trusted cell "
                    f"there (generator-bound or unfinished): {'; '.join(found.skipped)}.",
                    "",
                ]
            parts += [f"**Pitfall:** {line}" for line in pitfalls] + ([""] if pitfalls else [])
            path = factors_chart_path(results.run_dir, scenario, model)
            parts += chart_lines(results, path, f"{scenario} factors", FACTORS_CAPTION)
    if not parts:
        return []
    return ["## Where the difference comes from", "", EXPLANATION, "", *parts]
