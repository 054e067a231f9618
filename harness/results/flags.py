"""When a cell is not to be trusted: the thresholds, and the flags written into summary.csv.

A cell is *generator-bound* when it measured the load generator rather than the server: its
own CPU near its budget, its calibrated ceiling reached, or an open-load schedule it could not
keep (requests starting late, judged at each request's actual start, against the cell's
latency). Other flags say the figures need care but measured the server:

- ``overloaded`` (open load): completions fell short of the arrivals offered in the window by
  more than ``SHORTFALL_LIMIT``, or latency kept climbing through it: the server did not keep
  up, and its percentiles measure how long the cell ran, not the server;
- ``unsettled`` (closed load): latency still climbing through the window (the users' queue had
  not reached steady state), so its percentiles are a lower bound;
- ``noisy``: CPU steal or other processes' CPU during the window beyond the limits below;
- too many errors.

The report quotes these thresholds; ``harness.results.rows`` filters rows by the resulting
columns.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from harness.format import fmt_exact, fmt_pct_brief

GENERATOR_CPU_LIMIT_PCT = 90.0  # the generator process's mean CPU over the window, % of a core
CEILING_FRACTION = 0.85  # rps at or above this fraction of the calibrated generator ceiling
LATE_STARTS_LIMIT = 0.01  # open load: more than this fraction of starts behind schedule
# Flagged, but not generator-bound: the cell measured a failing server.
ERROR_RATE_LIMIT = 0.05
LATENESS_SHARE = 0.10  # open load: p99 start lateness above this share of the p99 latency...
LATENESS_MIN_MS = 10.0  # ... and above this many ms
SHORTFALL_LIMIT = 0.03  # open load: completions this far below the arrivals offered
RISE_SHARE = 0.5  # latency rising through the window by more than half its mean...
RISE_MIN_MS = 10.0  # ... and by more than this many ms
RISE_MIN_SECONDS = 4  # seconds with completions needed to fit a slope
STEAL_LIMIT_PCT = 5.0  # CPU steal, % of one core
OTHER_CPU_LIMIT_PCT = 20.0  # CPU of processes other than server, generator and harness
FLAG_SEPARATOR = "; "
OVERLOADED, UNSETTLED, NOISY = "overloaded", "unsettled", "noisy"


def latency_rise_ms(per_second: Sequence[Sequence[Any]]) -> float | None:
    """How far the per-second mean latency climbed through the window, in ms: the median of
    its last third of seconds minus the median of its first third.

    ``per_second`` rows are ``[second, ok, failed, mean_ms]`` (latency.json). Medians of thirds
    rather than a fitted line, so a stall in the middle of the window (injected or not) does
    not read as a climb, while a queue that grows the whole time does. None with fewer than
    ``RISE_MIN_SECONDS`` seconds that completed anything.
    """
    means = [
        float(row[3])
        for row in sorted(per_second, key=lambda r: float(r[0]))
        if len(row) >= 4 and row[3] is not None and row[1]
    ]
    if len(means) < RISE_MIN_SECONDS:
        return None
    third = max(1, len(means) // 3)
    return statistics.median(means[-third:]) - statistics.median(means[:third])


def rising(row: dict[str, Any]) -> bool:
    """Whether the cell's latency climbed through its window (see RISE_* above)."""
    rise, mean = row.get("latency_rise_ms"), row.get("mean_ms")
    if rise is None or mean is None:
        return False
    return bool(rise > RISE_MIN_MS and rise > RISE_SHARE * mean)


def shortfall(row: dict[str, Any]) -> float | None:
    """Open load: the share of the window's offered arrivals that did not complete in it."""
    offered, done = row.get("offered"), row.get("requests")
    if row.get("load_model") != "open" or not offered or done is None:
        return None
    return max(0.0, 1.0 - done / offered)


def load_flags(row: dict[str, Any]) -> list[str]:
    """``overloaded`` / ``unsettled`` / ``noisy`` reasons for one summary row."""
    flags = []
    rise = row.get("latency_rise_ms")
    climbed = f"latency rose {fmt_exact(rise)} ms through the window" if rising(row) else None
    short = shortfall(row)
    if row.get("load_model") == "open":
        reasons = []
        if short is not None and short > SHORTFALL_LIMIT:
            reasons.append(
                f"{fmt_exact(row.get('requests'))} of {fmt_exact(row.get('offered'))} offered "
                f"requests completed (-{fmt_pct_brief(short)})"
            )
        if climbed:
            reasons.append(climbed)
        if reasons:
            flags.append(f"{OVERLOADED}: " + ", ".join(reasons))
    elif climbed:
        flags.append(f"{UNSETTLED}: {climbed}; its percentiles are a lower bound")
    steal, other = row.get("steal_pct"), row.get("other_cpu_pct")
    if steal is not None and steal > STEAL_LIMIT_PCT:
        flags.append(f"{NOISY}: CPU steal {steal:.0f}% > {STEAL_LIMIT_PCT:.0f}% of a core")
    if other is not None and other > OTHER_CPU_LIMIT_PCT:
        flags.append(
            f"{NOISY}: other processes used {other:.0f}% > {OTHER_CPU_LIMIT_PCT:.0f}% of a core"
        )
    return flags


def has_flag(flags: Any, name: str) -> bool:
    """Whether a summary ``flags`` value holds a flag of this name (e.g. ``overloaded``)."""
    if not isinstance(flags, str):
        return False
    return any(part.startswith(name) for part in flags.split(FLAG_SEPARATOR))


def cell_flags(row: dict[str, Any]) -> tuple[bool | None, list[str]]:
    """Whether a cell was generator-bound, and every reason to distrust it (thresholds above).

    None instead of a bool when the cell has no figures to judge (it never ran).
    """
    rps, cpu = row.get("rps"), row.get("generator_cpu_pct")
    ceiling = row.get("generator_ceiling_rps")
    launched, late, dropped = row.get("launched"), row.get("late_starts"), row.get("dropped")
    generator: list[str] = []
    # Several generators: their summed CPU against their cores, and each worker on its own.
    budget = (row.get("generator_budget_pct") or 100.0) / 100.0
    if cpu is not None and cpu >= GENERATOR_CPU_LIMIT_PCT * budget:
        limit = GENERATOR_CPU_LIMIT_PCT * budget
        cores = "" if budget == 1 else f" of {budget:.0f} cores"
        generator.append(f"generator CPU {cpu:.0f}% >= {limit:.0f}%{cores}")
    busiest, workers = row.get("worker_cpu_max_pct"), row.get("generators")
    if busiest is not None and busiest >= GENERATOR_CPU_LIMIT_PCT:
        generator.append(
            f"busiest of {workers:.0f} workers at {busiest:.0f}% >= "
            f"{GENERATOR_CPU_LIMIT_PCT:.0f}% of its core"
        )
    if rps is not None and ceiling and rps >= CEILING_FRACTION * ceiling:
        generator.append(
            f"rps {rps:.0f} >= {fmt_pct_brief(CEILING_FRACTION)} of generator ceiling {ceiling:.0f}"
        )
    starts = row.get("offered") or launched  # late starts are counted in the window
    if starts and late is not None and late / starts > LATE_STARTS_LIMIT:
        generator.append(f"{fmt_pct_brief(late / starts)} of starts late")
    if dropped:
        generator.append(f"{dropped:.0f} arrivals dropped")
    lateness, p99 = row.get("lateness_p99_ms"), row.get("p99_ms")
    if (
        lateness is not None
        and p99
        and lateness > LATENESS_MIN_MS
        and lateness > LATENESS_SHARE * p99
    ):
        generator.append(
            f"starts {lateness:.0f} ms late at p99, {fmt_pct_brief(lateness / p99)} of p99 latency"
        )
    others = load_flags(row)
    error_rate = row.get("error_rate")
    if error_rate is not None and error_rate > ERROR_RATE_LIMIT:
        others.append(f"error rate {fmt_pct_brief(error_rate)} > {fmt_pct_brief(ERROR_RATE_LIMIT)}")
    judged = rps is not None or cpu is not None
    return (bool(generator) if judged else None), generator + others
