"""When a cell is not to be trusted: the thresholds, and the flags written into summary.csv.

A cell is *generator-bound* when it measured the load generator rather than the server (its
CPU, its calibrated ceiling, or an open-load schedule it could not keep); a cell with too many
errors is flagged too, but measured a failing server, not the generator. The report quotes
these thresholds; ``harness.results.rows`` filters rows by the resulting columns.
"""

from __future__ import annotations

from typing import Any

from harness.format import fmt_pct_brief

GENERATOR_CPU_LIMIT_PCT = 90.0  # the generator process's mean CPU over the window, % of a core
CEILING_FRACTION = 0.85  # rps at or above this fraction of the calibrated generator ceiling
LATE_STARTS_LIMIT = 0.01  # open load: more than this fraction of starts behind schedule
# Flagged, but not generator-bound: the cell measured a failing server.
ERROR_RATE_LIMIT = 0.05
FLAG_SEPARATOR = "; "


def cell_flags(row: dict[str, Any]) -> tuple[bool | None, list[str]]:
    """Whether a cell was generator-bound, and every reason to distrust it (thresholds above).

    None instead of a bool when the cell has no figures to judge (it never ran).
    """
    rps, cpu = row.get("rps"), row.get("generator_cpu_pct")
    ceiling = row.get("generator_ceiling_rps")
    launched, late, dropped = row.get("launched"), row.get("late_starts"), row.get("dropped")
    generator: list[str] = []
    if cpu is not None and cpu >= GENERATOR_CPU_LIMIT_PCT:
        generator.append(f"generator CPU {cpu:.0f}% >= {GENERATOR_CPU_LIMIT_PCT:.0f}%")
    if rps is not None and ceiling and rps >= CEILING_FRACTION * ceiling:
        generator.append(
            f"rps {rps:.0f} >= {fmt_pct_brief(CEILING_FRACTION)} of generator ceiling {ceiling:.0f}"
        )
    if launched and late is not None and late / launched > LATE_STARTS_LIMIT:
        generator.append(f"{fmt_pct_brief(late / launched)} of starts late")
    if dropped:
        generator.append(f"{dropped:.0f} arrivals dropped")
    others = []
    error_rate = row.get("error_rate")
    if error_rate is not None and error_rate > ERROR_RATE_LIMIT:
        others.append(f"error rate {fmt_pct_brief(error_rate)} > {fmt_pct_brief(ERROR_RATE_LIMIT)}")
    judged = rps is not None or cpu is not None
    return (bool(generator) if judged else None), generator + others
