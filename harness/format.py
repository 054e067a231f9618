"""How a number or a load level is written, for tables, sentences, chart labels and progress.

The one place for it: report.md, the comparison, the charts' labels and the orchestrator's
progress line all write figures through these functions, so "100 users" or "1,234.5" read the
same everywhere. Standard library only (no pandas): an empty figure is None, a float NaN, or
pandas' NA or NaT, all told apart without importing pandas, and every one is written ``EMPTY``.
"""

from __future__ import annotations

from typing import Any

EMPTY = "–"
# After a load level's value: "100 users", "300 requests/s offered". Any other load model
# reads as closed.
LOAD_UNITS = {"closed": "users", "open": "requests/s offered"}


def missing(value: Any) -> bool:
    """Whether a figure is empty: None, NaN (of any float type), pandas' NA or NaT."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT are the values not equal to themselves
    except TypeError:
        return True  # pandas' NA: comparing it gives NA again, which has no truth value


def fmt(value: Any, decimals: int = 1, thousands: bool = True) -> str:
    """A number for a table cell: fixed decimals, thousands separators, a dash when empty."""
    if missing(value):
        return EMPTY
    return f"{float(value):,.{decimals}f}" if thousands else f"{float(value):.{decimals}f}"


def fmt_ms(value: Any) -> str:
    """Milliseconds: 2 decimals below 10 ms, 1 above."""
    return fmt(value, 2 if not missing(value) and abs(float(value)) < 10 else 1)


def fmt_exact(value: Any) -> str:
    """A derived figure such as a bound: no decimals when it is a whole number."""
    if missing(value):
        return EMPTY
    number = float(value)
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.1f}"


def fmt_int(value: Any) -> str:
    """A count: "1,234"."""
    return EMPTY if missing(value) else f"{int(value):,}"


def fmt_pct(fraction: Any) -> str:
    """A fraction as a percentage with one decimal, for tables: "14.3%", "5.0%"."""
    return EMPTY if missing(fraction) else f"{float(fraction) * 100:.1f}%"


def fmt_pct_brief(fraction: Any) -> str:
    """A fraction as a percentage without a trailing zero, for flags: "5%", "1.5%"."""
    return EMPTY if missing(fraction) else f"{round(float(fraction) * 100, 1):g}%"


def fmt_change(percent: Any) -> str:
    """A change already in percent, signed: "+3.1%", "-12.0%"."""
    return EMPTY if missing(percent) else f"{float(percent):+.1f}%"


def fmt_ci(low: Any, high: Any, ms: bool = False) -> str:
    """A confidence interval: "1,800.0 – 1,950.0" (milliseconds as ``fmt_ms`` writes them)."""
    if missing(low) or missing(high):
        return EMPTY
    form = fmt_ms if ms else fmt
    return f"{form(low)} – {form(high)}"


def fmt_level(value: Any) -> str:
    """A load level's value alone: "100", "2.5"."""
    return EMPTY if missing(value) else f"{float(value):g}"


def load_text(load_model: str, value: Any) -> str:
    """A load level in words: "100 users" (closed load), "300 requests/s offered" (open)."""
    if missing(value):
        return EMPTY
    return f"{fmt_level(value)} {LOAD_UNITS.get(load_model, LOAD_UNITS['closed'])}"


def ratio_number(ratio: Any) -> str:
    """A ratio: "1.05", "24.5", "1,234", small ones to 2 significant digits ("0.011")."""
    if missing(ratio):
        return EMPTY
    ratio = float(ratio)
    if ratio >= 100:
        return f"{ratio:,.0f}"
    return f"{ratio:.1f}" if ratio >= 10 else f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def ratio_text(ratio: Any) -> str:
    """A ratio with the times sign first, as a factor: "×3.1", "×1.05"."""
    return f"×{ratio_number(ratio)}"


def ratio_times(ratio: float) -> str:
    """A ratio with the times sign after it, for bar labels: "1.05×", "12.3×"."""
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.1f}×"
