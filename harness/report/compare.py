"""Writing the comparison of two runs: comparison.csv, comparison.md, comparison.png, and the
terminal table of ``python -m harness compare`` (``run_compare``, its exit status).

The statistics and verdicts are ``harness.results.compare``'s (``compare_runs``), the chart
``harness.charts.compare``'s; this module owns how they are told: the explanation of the test,
the Markdown and plain-text tables, and the files, each written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.charts.compare import comparison_chart
from harness.fileio import atomic_write_text
from harness.format import EMPTY, fmt, fmt_change, missing
from harness.results.compare import (
    ALPHA,
    BASIS_SECONDS,
    BASIS_TRIALS,
    DEFAULT_THRESHOLD_PCT,
    NO_CHANGE,
    WITHIN,
    Comparison,
    compare_runs,
)

FILES = ("comparison.csv", "comparison.md", "comparison.png")


def _plain(value: Any) -> str:
    """A figure of the comparison table: one decimal, no thousands separator."""
    return fmt(value, 1, thousands=False)


def _p_text(p: Any, long: bool) -> str:
    if missing(p):
        return "n/a"
    return f"{p:.3g} ({'significant' if p < ALPHA else 'not significant'})" if long else f"{p:.3g}"


def explanation(threshold_pct: float) -> str:
    """How to read a comparison: the test, alpha, the threshold and the verdicts."""
    return (
        f"A change counts when Welch's t-test (unequal variances, two-sided) finds it "
        f"significant at alpha {ALPHA} *and* it is at least ±{threshold_pct:g}%. "
        f"'{NO_CHANGE}' means p >= {ALPHA}: the difference is not significant, it is within "
        f"the noise. '{WITHIN}' means significant but smaller than the threshold. The rps test "
        f"runs over the trials' rps when both runs have at least 2 ok trials (basis "
        f"'{BASIS_TRIALS}'), otherwise over the successful requests of each second of the "
        f"windows, first and last seconds dropped (basis '{BASIS_SECONDS}'; consecutive "
        f"seconds are not independent, so read those p-values as optimistic). p99 is tested "
        f"only over trials ('n/a' otherwise). A regression is rps slower or p99 higher, "
        f"significantly and beyond the threshold. Generator-bound cells measured the load "
        f"generator, not the server, and are not compared."
    )


def _display(table: pd.DataFrame, long: bool) -> list[dict[str, str]]:
    """The table's rows as text, for the markdown (long) and the terminal."""
    rows = []
    for r in table.to_dict("records"):
        row = {"scenario": str(r["scenario"]), "target": str(r["target"]), "load": str(r["load"])}
        row["rps A -> B"] = f"{_plain(r['rps_a'])} -> {_plain(r['rps_b'])}"
        row["rps change"] = fmt_change(r["rps_change_pct"])
        row["p (rps)"] = _p_text(r["rps_p_value"], long)
        row["basis"] = str(r["basis"]) or EMPTY
        row["p99 A -> B ms"] = f"{_plain(r['p99_a_ms'])} -> {_plain(r['p99_b_ms'])}"
        row["p99 change"] = fmt_change(r["p99_change_pct"])
        row["p (p99)"] = _p_text(r["p99_p_value"], long)
        row["verdict"] = str(r["verdict"])
        row["regression"] = ("**yes**" if long else "REGRESSION") if r["regression"] else ""
        rows.append(row)
    return rows


def _markdown(comparison: Comparison) -> str:
    table, t = comparison.table, comparison.threshold_pct
    lines = [f"# Comparison: {comparison.run_a} (A) -> {comparison.run_b} (B)", ""]
    lines += [f"{len(table)} matched groups, {len(comparison.regressions)} regression(s) "]
    lines[-1] += f"beyond ±{t:g}%.\n\n{explanation(t)}\n"
    for scenario in dict.fromkeys(table["scenario"]):
        rows = _display(table[table["scenario"] == scenario], long=True)
        columns = [c for c in rows[0] if c != "scenario"]
        lines += [f"## {scenario}", "", "| " + " | ".join(columns) + " |"]
        lines += ["|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row[c] or "no" for c in columns) + " |" for row in rows]
        lines.append("")
    if not len(table):
        lines += ["No cell of A matches a cell of B: nothing was compared.", ""]
    for title, items in (("Differences between the runs", comparison.notes),
                         ("Unmatched cells", comparison.unmatched)):  # fmt: skip
        lines += [f"## {title}", "", *([f"- {i}" for i in items] or ["None."]), ""]
    return "\n".join([*lines, "![rps change per group](comparison.png)", ""])


def write_comparison(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Write comparison.csv, comparison.md and comparison.png into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, png_path = (out_dir / name for name in FILES)
    text = comparison.table.to_csv(index=False, lineterminator="\n", float_format="%.6g")
    atomic_write_text(csv_path, text)
    atomic_write_text(md_path, _markdown(comparison))
    return [csv_path, md_path, comparison_chart(comparison, png_path)]


def text_table(comparison: Comparison) -> str:
    """A compact plain-text table for the terminal."""
    rows = _display(comparison.table, long=False)
    for row in rows:
        row["group"] = f"{row.pop('scenario')} · {row.pop('target')} · {row.pop('load')}"
        row.pop("basis")
    columns = ["group", "rps A -> B", "rps change", "p (rps)", "p99 A -> B ms", "p99 change",
               "p (p99)", "verdict", "regression"]  # fmt: skip
    widths = {c: max([len(c), *(len(row[c]) for row in rows)]) for c in columns}
    lines = [[c.ljust(widths[c]) for c in columns]]
    lines += [[row[c].ljust(widths[c]) for c in columns] for row in rows]
    return "\n".join("  ".join(line).rstrip() for line in lines)


def run_compare(
    run_a: Path, run_b: Path, threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    out_dir: Path | None = None,
) -> int:  # fmt: skip
    """Compare, print a table and the written files; 1 when a regression passes the threshold."""
    comparison = compare_runs(Path(run_a), Path(run_b), threshold_pct)
    out = Path(out_dir) if out_dir else Path(run_b) / f"compare-{Path(run_a).resolve().name}"
    print(f"compare {comparison.run_a} (A) -> {comparison.run_b} (B): "
          f"threshold ±{threshold_pct:g}%, alpha {ALPHA}")  # fmt: skip
    if len(comparison.table):
        print(text_table(comparison))
    else:
        print("NO MATCHED CELLS: the runs share no (scenario, target, load); nothing compared")
    for title, items in (("note", comparison.notes), ("unmatched", comparison.unmatched)):
        print("".join(f"{title}: {item}\n" for item in items), end="")
    paths = write_comparison(comparison, out)
    print(f"written: {', '.join(str(p) for p in paths)}")
    count = len(comparison.regressions)
    print(f"{count} regression(s) beyond ±{threshold_pct:g}%" if count else "no regression")
    return 1 if count else 0
