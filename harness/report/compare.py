"""Writing the comparison of two runs: comparison.csv, comparison.md, comparison.png, and the
terminal table of ``python -m harness compare`` (``run_compare``, its exit status: 1 only when
a regression passes the threshold, 0 otherwise, groups not judged included; runs with no
matched cell raise ``NoMatchedCells``, a usage error for the CLI). By default the files go to a
new folder ``compare-A-vs-B`` beside run B (``default_out_dir``): an earlier comparison of the
same runs is kept, the next one is ``compare-A-vs-B-2``, ``-3``, ...

The statistics and verdicts are ``harness.results.compare``'s (``compare_runs``), the chart
``harness.charts.compare``'s; this module owns how they are told: the explanation of the test,
the one line on groups not judged for lack of trials and how to get a verdict
(``not_judged_text``), the Markdown and plain-text tables, and the files, each written
atomically.
"""

from __future__ import annotations

import sys
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
    MIN_TRIALS,
    NO_CHANGE,
    NOT_ENOUGH_TRIALS,
    P99_NOT_TESTED,
    WITHIN,
    Comparison,
    compare_runs,
)

FILES = ("comparison.csv", "comparison.md", "comparison.png")
HOW_TO_JUDGE = "run both with --trials 3 or more, or pass --per-second"
P_NOT_TESTED = "not tested"  # the p column of a change no test was run on
SELF_WARNING = "comparing a run with itself"


def _plain(value: Any) -> str:
    """A figure of the comparison table: one decimal, no thousands separator."""
    return fmt(value, 1, thousands=False)


def _p_text(p: Any, long: bool) -> str:
    if missing(p):
        return P_NOT_TESTED
    return f"{p:.3g} ({'significant' if p < ALPHA else 'not significant'})" if long else f"{p:.3g}"


def explanation(threshold_pct: float, per_second: bool = False) -> str:
    """How to read a comparison: the test, alpha, the threshold and the verdicts.

    ``per_second``: the comparison tested groups short of trials over per-second samples.
    """
    if per_second:
        short = (
            f"This comparison was run with --per-second: such groups are tested over the "
            f"successful requests of each second of the windows, first and last seconds dropped "
            f"(basis '{BASIS_SECONDS}'; consecutive seconds share one server's drift and are not "
            f"independent, so read those p-values as optimistic), and their p99 is "
            f"'{P99_NOT_TESTED}'."
        )
    else:
        short = f"Their p-values stay empty and they are never a regression ({HOW_TO_JUDGE})."
    return (
        f"A change counts when Welch's t-test (unequal variances, two-sided) finds it "
        f"significant at alpha {ALPHA} *and* it is at least ±{threshold_pct:g}%. "
        f"'{NO_CHANGE}' means p >= {ALPHA}: the difference is not significant, it is within "
        f"the noise. '{WITHIN}' means significant but smaller than the threshold. rps and p99 "
        f"are tested over the trials (basis '{BASIS_TRIALS}') when both runs have at least "
        f"{MIN_TRIALS} ok trials of a group; otherwise the group is '{NOT_ENOUGH_TRIALS}': one "
        f"trial measures no run-to-run noise. {short} A regression is rps slower or p99 higher, "
        f"significantly and beyond the threshold. Generator-bound cells measured the load "
        f"generator, not the server, and are not compared."
    )


def not_judged_text(comparison: Comparison) -> str:
    """One line on the groups not judged for lack of trials and how to get a verdict; "" if none."""
    count = len(comparison.not_judged)
    if not count:
        return ""
    return (
        f"{count} of {len(comparison.table)} group(s) not judged: a run has fewer than "
        f"{MIN_TRIALS} ok trials of them, and one trial cannot tell a change from noise; "
        f"to get a verdict, {HOW_TO_JUDGE}."
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
    lines[-1] += f"beyond ±{t:g}%.\n"
    if not_judged_text(comparison):
        lines += [f"**{not_judged_text(comparison)}**", ""]
    lines += [explanation(t, comparison.per_second), ""]
    for scenario in dict.fromkeys(table["scenario"]):
        rows = _display(table[table["scenario"] == scenario], long=True)
        columns = [c for c in rows[0] if c != "scenario"]
        lines += [f"## {scenario}", "", "| " + " | ".join(columns) + " |"]
        lines += ["|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(row[c] or "no" for c in columns) + " |" for row in rows]
        lines.append("")
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


def default_out_dir(run_a: Path, run_b: Path) -> Path:
    """A new folder beside run B, never inside a run (a run folder is not edited after its run):
    ``compare-A-vs-B``, or ``compare-A-vs-B-2``, ``-3``, ... when earlier comparisons exist.

    The folder is created here (``mkdir`` without ``exist_ok``), so two comparisons at once
    never share one.
    """
    run_a, run_b = Path(run_a).resolve(), Path(run_b).resolve()
    base = run_b.parent / f"compare-{run_a.name}-vs-{run_b.name}"
    number = 1
    while True:
        out = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            out.mkdir(parents=True)
        except FileExistsError:
            number += 1
            continue
        return out


def run_compare(
    run_a: Path, run_b: Path, threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    out_dir: Path | None = None, per_second: bool = False,
) -> int:  # fmt: skip
    """Compare, print a table and the written files; 1 when a regression passes the threshold,
    0 otherwise (groups not judged for lack of trials are never a regression).

    ``out_dir`` (overwritten) or, by default, a new ``default_out_dir``. ValueError for a folder
    that is not a run, NoMatchedCells when the runs share no cell: nothing is written then.
    """
    if Path(run_a).resolve() == Path(run_b).resolve():
        print(f"gatebench: warning: {SELF_WARNING} ({Path(run_b).resolve()}): every change "
              f"is zero", file=sys.stderr, flush=True)  # fmt: skip
    comparison = compare_runs(Path(run_a), Path(run_b), threshold_pct, per_second)
    out = Path(out_dir) if out_dir else default_out_dir(Path(run_a), Path(run_b))
    print(f"compare {comparison.run_a} (A) -> {comparison.run_b} (B): "
          f"threshold ±{threshold_pct:g}%, alpha {ALPHA}")  # fmt: skip
    print(text_table(comparison))
    if not_judged_text(comparison):
        print(not_judged_text(comparison))
    for title, items in (("note", comparison.notes), ("unmatched", comparison.unmatched)):
        print("".join(f"{title}: {item}\n" for item in items), end="")
    paths = write_comparison(comparison, out)
    print(f"written: {', '.join(str(p) for p in paths)}")
    count, unjudged = len(comparison.regressions), len(comparison.not_judged)
    if count:
        print(f"{count} regression(s) beyond ±{threshold_pct:g}%")
    else:
        print(f"no regression ({unjudged} group(s) not judged)" if unjudged else "no regression")
    return 1 if count else 0
