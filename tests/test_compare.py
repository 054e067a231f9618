"""Comparing two runs (harness.results.compare, report.compare): matching, tests, verdicts."""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import TARGETS, make_run

from harness import schema
from harness.charts import compare as compare_chart
from harness.cli import main
from harness.report.compare import (
    FILES,
    HOW_TO_JUDGE,
    P_NOT_TESTED,
    SELF_WARNING,
    run_compare,
    write_comparison,
)
from harness.results import compare

ROOT = Path(__file__).resolve().parent.parent
IO, FLASK, FASTAPI = "io", "flask-gunicorn-sync", "fastapi-uvicorn"
SECONDS = 10
# (target, users) -> rps of each trial; the stable baseline of run A.
BASE = {(FLASK, 10): [78.0, 79.0, 77.0], (FASTAPI, 10): [200.0, 203.0, 197.0]}
# One trial a side, fastapi 25% slower in B: judged only with --per-second.
ONE_A = {(FLASK, 10): [78.0], (FASTAPI, 10): [200.0]}
ONE_B = {(FLASK, 10): [78.0], (FASTAPI, 10): [150.0]}


def write_run(
    run_dir: Path,
    groups: dict[tuple[str, int], list[float]],
    *,
    p99: dict[tuple[str, int], list[float]] | None = None,
    per_second: dict[tuple[str, int], list[int]] | None = None,
    generator_bound: frozenset[tuple[str, int]] = frozenset(),
    targets: dict[str, Any] | None = None,
    manifest_extra: dict[str, Any] | None = None,
    seed: int = 1,
) -> Path:
    """A run folder as the runner leaves it: manifest.json, summary.csv, raw/<cell>/latency.json.

    Per-second samples default to the trial's rps with 2% noise, 10 seconds per window.
    """
    rng = np.random.default_rng(seed)
    rows, cells = [], []
    for (target, users), trial_rps in groups.items():
        for trial, rps in enumerate(trial_rps, start=1):
            cell = schema.Cell(IO, target, "closed", users, None, trial, SECONDS, 1.0, 50.0)
            cells.append(schema.CellRecord(cell, schema.STATUS_OK).to_dict())
            p99_ms = (p99 or {}).get((target, users), [60.0] * len(trial_rps))[trial - 1]
            bound = (target, users) in generator_bound
            rows.append({**cell.to_dict(), "rps": rps, "p99_ms": p99_ms, "status": "ok",
                         "generator_bound": bound, "requests": int(rps * SECONDS)})  # fmt: skip
            seconds = (per_second or {}).get((target, users))
            if seconds is None:
                seconds = [round(v) for v in rng.normal(rps, rps * 0.02, SECONDS)]
            raw = run_dir / schema.RAW_DIR / cell.cell_id
            raw.mkdir(parents=True)
            doc = {"per_second": [[s, n, 0] for s, n in enumerate(seconds)]}
            (raw / schema.LATENCY_FILE).write_text(json.dumps(doc))
    manifest: dict[str, Any] = {
        "schema_version": schema.SCHEMA_VERSION,
        "run_id": run_dir.name,
        "machine": {"cpu_model": "Example CPU", "cpu_count": 2, "python": "3.11.7"},
        "pinning": {"server_cpus": [0], "generator_cpus": [1], "applied": True},
        "packages": {"flask": "3.1.0", "fastapi": "0.115.0"},
        "git": {"sha": "abc1234", "dirty": False},
        "scenarios": {IO: {"file": "scenarios/io.py", "sha256": "a" * 64}},
        "targets": copy.deepcopy(targets or TARGETS),
        "cells": cells,
    }
    manifest.update(manifest_extra or {})
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / schema.MANIFEST_FILE).write_text(json.dumps(manifest))
    summary = pd.DataFrame(rows).reindex(columns=list(schema.SUMMARY_COLUMNS))
    summary.to_csv(run_dir / schema.SUMMARY_FILE, index=False)
    return run_dir


def row_of(comparison: compare.Comparison, target: str, users: int = 10) -> dict[str, Any]:
    table = comparison.table
    rows = table[(table["target"] == target) & (table["load"] == f"{users} users")]
    assert len(rows) == 1, table
    return dict(rows.iloc[0])


def test_identical_runs_show_no_significant_change(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    b = write_run(tmp_path / "b", BASE)
    comparison = compare.compare_runs(a, b)
    assert list(comparison.table.columns) == list(compare.TABLE_COLUMNS)
    assert len(comparison.table) == 2
    assert set(comparison.table["verdict"]) == {compare.NO_CHANGE}
    assert set(comparison.table["basis"]) == {compare.BASIS_TRIALS}
    assert comparison.regressions.empty and not comparison.unmatched and not comparison.notes
    assert (comparison.table["rps_change_pct"] == 0).all()
    assert run_compare(a, b, 5.0, tmp_path / "out") == 0


def test_identical_fixture_runs_of_one_trial(tmp_path: Path) -> None:
    """The shared analysis fixture (real histograms, constant per-second rows) against itself."""
    a, b = make_run(tmp_path / "a").run_dir, make_run(tmp_path / "b").run_dir
    comparison = compare.compare_runs(a, b)
    assert len(comparison.table) == 4  # the failed cell has no ok trial: not a group
    assert set(comparison.table["verdict"]) == {compare.NOT_ENOUGH_TRIALS}
    assert set(comparison.table["basis"]) == {""}
    assert len(comparison.not_judged) == 4 and comparison.regressions.empty
    assert run_compare(a, b, 5.0, tmp_path / "out") == 0
    per_second = compare.compare_runs(a, b, per_second=True)
    assert set(per_second.table["verdict"]) == {f"{compare.NO_CHANGE}; {compare.P99_NOT_TESTED}"}
    assert set(per_second.table["basis"]) == {compare.BASIS_SECONDS}
    assert per_second.not_judged.empty
    assert run_compare(a, b, 5.0, tmp_path / "out2", per_second=True) == 0


def test_fixture_runs_of_three_trials_are_judged_over_trials(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", trials=3).run_dir
    b = make_run(tmp_path / "b", trials=3).run_dir
    comparison = compare.compare_runs(a, b)
    assert len(comparison.table) == 4
    assert set(comparison.table["basis"]) == {compare.BASIS_TRIALS}
    assert comparison.not_judged.empty and comparison.regressions.empty
    assert not comparison.table["rps_p_value"].isna().any()


def test_one_trial_a_side_is_not_judged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 25% drop over one trial a side is no verdict: the seconds of one window share its
    server's drift, so a test over them is not evidence; the CLI exits 0 and says why."""
    a = write_run(tmp_path / "a", ONE_A, seed=1)
    b = write_run(tmp_path / "b", ONE_B, seed=2)
    comparison = compare.compare_runs(a, b)
    for target in (FLASK, FASTAPI):
        row = row_of(comparison, target)
        assert row["verdict"] == compare.NOT_ENOUGH_TRIALS and not row["regression"]
        assert row["basis"] == ""
        assert math.isnan(row["rps_p_value"]) and math.isnan(row["p99_p_value"])
    assert row_of(comparison, FASTAPI)["rps_change_pct"] == pytest.approx(-25.0)
    assert comparison.regressions.empty and len(comparison.not_judged) == 2
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    hint = [line for line in printed.splitlines() if HOW_TO_JUDGE in line]
    assert len(hint) == 1 and hint[0].startswith("2 of 2 group(s) not judged")
    assert "REGRESSION" not in printed
    assert "no regression (2 group(s) not judged)" in printed
    md = (out / "comparison.md").read_text()
    assert HOW_TO_JUDGE in md and compare.NOT_ENOUGH_TRIALS in md
    csv_rows = pd.read_csv(out / "comparison.csv")
    assert set(csv_rows["verdict"]) == {compare.NOT_ENOUGH_TRIALS}
    assert csv_rows["rps_p_value"].isna().all()


def test_one_trial_on_one_side_only_is_not_judged(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    b = write_run(tmp_path / "b", {(FLASK, 10): [78.0, 77.0], (FASTAPI, 10): [100.0]})
    comparison = compare.compare_runs(a, b)
    assert row_of(comparison, FASTAPI)["verdict"] == compare.NOT_ENOUGH_TRIALS
    assert not row_of(comparison, FASTAPI)["regression"]
    assert row_of(comparison, FLASK)["basis"] == compare.BASIS_TRIALS
    assert row_of(comparison, FLASK)["verdict"] == compare.NO_CHANGE


def test_per_second_option_runs_the_per_second_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", ONE_A, seed=1)
    b = write_run(tmp_path / "b", ONE_B, seed=2)
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--out", str(out), "--per-second"]) == 1
    printed = capsys.readouterr().out
    assert "REGRESSION" in printed and HOW_TO_JUDGE not in printed
    md = (out / "comparison.md").read_text()
    assert "run with --per-second" in md and compare.BASIS_SECONDS in md
    csv_rows = pd.read_csv(out / "comparison.csv")
    assert set(csv_rows["basis"]) == {compare.BASIS_SECONDS}
    assert list(csv_rows[csv_rows["regression"]]["target"]) == [FASTAPI]


def test_equal_distributions_over_three_trials_are_no_change(tmp_path: Path) -> None:
    """Different draws of the same distributions: not significant, exit 0."""
    a = write_run(tmp_path / "a", BASE)
    b = write_run(
        tmp_path / "b", {(FLASK, 10): [77.5, 78.5, 78.8], (FASTAPI, 10): [198.0, 204.0, 199.0]}
    )
    comparison = compare.compare_runs(a, b)
    for target in (FLASK, FASTAPI):
        row = row_of(comparison, target)
        assert row["verdict"] == compare.NO_CHANGE and not row["regression"]
        assert row["basis"] == compare.BASIS_TRIALS and row["rps_p_value"] >= compare.ALPHA
        assert row["rps_change_pct"] != 0
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "out")]) == 0


def test_a_clear_drop_over_three_trials_is_a_regression_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", BASE)
    b = write_run(
        tmp_path / "b", {(FLASK, 10): [70.0, 70.5, 69.2], (FASTAPI, 10): BASE[(FASTAPI, 10)]}
    )
    comparison = compare.compare_runs(a, b)
    row = row_of(comparison, FLASK)
    assert row["verdict"] == compare.SLOWER and row["regression"]
    assert row["rps_p_value"] < 0.01 and row["basis"] == compare.BASIS_TRIALS
    assert row_of(comparison, FASTAPI)["verdict"] == compare.NO_CHANGE
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "out")]) == 1
    assert "1 regression(s) beyond ±5%" in capsys.readouterr().out


def test_halved_target_is_slower_and_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", BASE)
    halved = {(FLASK, 10): [78.5, 77.5, 78.2], (FASTAPI, 10): [100.0, 101.5, 98.5]}
    b = write_run(tmp_path / "b", halved)
    comparison = compare.compare_runs(a, b, threshold_pct=5.0)
    slow = row_of(comparison, FASTAPI)
    assert slow["verdict"] == compare.SLOWER and slow["regression"]
    assert slow["rps_change_pct"] == pytest.approx(-50.0, abs=1.0)
    assert slow["rps_p_value"] < 0.001
    assert row_of(comparison, FLASK)["verdict"] == compare.NO_CHANGE
    assert not row_of(comparison, FLASK)["regression"]
    assert list(comparison.regressions["target"]) == [FASTAPI]
    assert run_compare(a, b, 5.0, tmp_path / "out") == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "1 regression(s)" in out
    # The reverse direction is faster, not a regression.
    back = compare.compare_runs(b, a)
    assert row_of(back, FASTAPI)["verdict"] == compare.FASTER
    assert back.regressions.empty


def test_significant_but_small_change_is_within_threshold(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {(FASTAPI, 10): [200.0, 200.2, 199.8]})
    b = write_run(tmp_path / "b", {(FASTAPI, 10): [196.0, 196.2, 195.8]})  # -2%, tiny noise
    row = row_of(compare.compare_runs(a, b, threshold_pct=5.0), FASTAPI)
    assert row["rps_p_value"] < 0.05
    assert row["verdict"] == compare.WITHIN and not row["regression"]
    row = row_of(compare.compare_runs(a, b, threshold_pct=1.0), FASTAPI)
    assert row["verdict"] == compare.SLOWER and row["regression"]


def test_p99_regression_with_trials(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    p99 = {(FLASK, 10): [60.0, 61.0, 59.0], (FASTAPI, 10): [90.0, 92.0, 88.0]}
    b = write_run(tmp_path / "b", BASE, p99=p99)
    comparison = compare.compare_runs(a, b)
    row = row_of(comparison, FASTAPI)
    assert row["verdict"] == f"{compare.NO_CHANGE}; p99 higher"
    assert row["regression"] and row["p99_p_value"] < 0.05
    assert row["p99_change_pct"] == pytest.approx(50.0)
    assert not row_of(comparison, FLASK)["regression"]


def test_one_trial_runs_are_compared_over_per_second_samples(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", ONE_A, seed=1)
    b = write_run(tmp_path / "b", ONE_B, seed=2)
    comparison = compare.compare_runs(a, b, per_second=True)
    assert comparison.per_second
    assert set(comparison.table["basis"]) == {compare.BASIS_SECONDS}
    slow, same = row_of(comparison, FASTAPI), row_of(comparison, FLASK)
    assert slow["verdict"] == f"{compare.SLOWER}; {compare.P99_NOT_TESTED}" and slow["regression"]
    assert slow["rps_p_value"] < 0.001
    assert same["verdict"] == f"{compare.NO_CHANGE}; {compare.P99_NOT_TESTED}"
    assert not same["regression"]
    assert math.isnan(slow["p99_p_value"])  # p99 needs trials


def test_first_and_last_seconds_are_dropped(tmp_path: Path) -> None:
    middle = [200, 203, 197, 201, 199, 200, 202, 198]
    a = write_run(
        tmp_path / "a", {(FASTAPI, 10): [200.0]}, per_second={(FASTAPI, 10): [200, *middle, 200]}
    )
    # Same middle seconds; the ramp-up and cut-off seconds alone would make B look slower.
    b = write_run(
        tmp_path / "b", {(FASTAPI, 10): [200.0]}, per_second={(FASTAPI, 10): [0, *middle, 5]}
    )
    row = row_of(compare.compare_runs(a, b, per_second=True), FASTAPI)
    assert row["rps_p_value"] == pytest.approx(1.0)


def test_short_windows_keep_their_edges_and_say_so(tmp_path: Path) -> None:
    seconds = {(FASTAPI, 10): [190, 191, 186]}
    a = write_run(tmp_path / "a", {(FASTAPI, 10): [189.0]}, per_second=seconds)
    b = write_run(tmp_path / "b", {(FASTAPI, 10): [189.0]}, per_second=seconds)
    comparison = compare.compare_runs(a, b, per_second=True)
    assert row_of(comparison, FASTAPI)["verdict"].startswith(compare.NO_CHANGE)
    assert any("edges were kept" in note for note in comparison.notes)
    assert not any("edges were kept" in note for note in compare.compare_runs(a, b).notes)


def test_generator_bound_cells_are_not_compared(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    halved = {(FLASK, 10): BASE[(FLASK, 10)], (FASTAPI, 10): [100.0, 101.0, 99.0]}
    b = write_run(tmp_path / "b", halved, generator_bound=frozenset({(FASTAPI, 10)}))
    comparison = compare.compare_runs(a, b)
    row = row_of(comparison, FASTAPI)
    assert row["verdict"] == compare.GENERATOR_BOUND and not row["regression"]
    assert math.isnan(row["rps_p_value"])
    assert run_compare(a, b, 5.0, tmp_path / "out") == 0


def test_notes_list_what_differs_between_the_runs(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    targets = copy.deepcopy(TARGETS)
    targets[FLASK].update(workers=2, slots=2)
    extra = {
        "machine": {"cpu_model": "Other CPU", "cpu_count": 4, "python": "3.11.7"},
        "packages": {"flask": "3.1.3", "fastapi": "0.115.0"},
        "scenarios": {IO: {"file": "scenarios/io.py", "sha256": "b" * 64}},
        "pinning": {"server_cpus": [0, 1], "generator_cpus": [2, 3], "applied": True},
    }
    b = write_run(tmp_path / "b", BASE, targets=targets, manifest_extra=extra)
    notes = compare.compare_runs(a, b).notes
    assert f"target {FLASK} workers: A 4 vs B 2" in notes
    assert f"target {FLASK} slots: A 4 vs B 2" in notes
    assert "machine cpu_model: A Example CPU vs B Other CPU" in notes
    assert "machine cpu_count: A 2 vs B 4" in notes
    assert "package flask: A 3.1.0 vs B 3.1.3" in notes
    assert any(n.startswith(f"scenario {IO} file changed") for n in notes)
    assert any(n.startswith("pinning server_cpus") for n in notes)
    assert not any("fastapi" in n for n in notes)


def test_unmatched_cells_are_listed(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", {**BASE, (FLASK, 50): [76.0, 77.0]})
    b = write_run(tmp_path / "b", {**BASE, (FASTAPI, 50): [900.0, 910.0]})
    comparison = compare.compare_runs(a, b)
    assert len(comparison.table) == 2
    assert comparison.unmatched == [
        f"only in A: {IO} · {FLASK} · 50 users",
        f"only in B: {IO} · {FASTAPI} · 50 users",
    ]


def test_no_matched_cells_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", {(FLASK, 10): [78.0, 79.0]})
    b = write_run(tmp_path / "b", {(FASTAPI, 10): [200.0, 201.0]})
    with pytest.raises(compare.NoMatchedCells, match="no cell of A matched"):
        compare.compare_runs(a, b)
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("gatebench: error: no cell of A matched")
    assert f"A a: {IO} × {FLASK} × 10 users" in errors[0]
    assert f"B b: {IO} × {FASTAPI} × 10 users" in errors[0]
    assert "Traceback" not in captured.out + captured.err
    assert not out.exists()  # nothing written
    assert not list(tmp_path.glob("compare-*"))


def test_no_ok_cell_on_one_side_is_named(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    b = write_run(tmp_path / "b", {})
    with pytest.raises(compare.NoMatchedCells, match="B b: no ok cell"):
        compare.compare_runs(a, b)


def test_no_matched_cells_names_a_few_items_per_side(tmp_path: Path) -> None:
    groups = {(FLASK, users): [78.0, 79.0] for users in (1, 2, 3, 4, 5, 6)}
    a = write_run(tmp_path / "a", groups)
    b = write_run(tmp_path / "b", {(FASTAPI, 10): [200.0, 201.0]})
    with pytest.raises(compare.NoMatchedCells, match=r"1 users,2 users,3 users,4 users \+2 more"):
        compare.compare_runs(a, b)


def test_comparing_a_run_with_itself_warns_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", BASE)
    link = tmp_path / "link"
    link.symlink_to(a)
    for other in (a, link, tmp_path / "." / "a"):
        assert main(["compare", str(a), str(other), "--out", str(tmp_path / "out")]) == 0
        captured = capsys.readouterr()
        warnings = [line for line in captured.err.splitlines() if SELF_WARNING in line]
        assert len(warnings) == 1 and warnings[0].startswith("gatebench: warning:")
        assert captured.err.splitlines()[0] == warnings[0]
        assert "Traceback" not in captured.out + captured.err
        assert "no regression" in captured.out
    b = write_run(tmp_path / "b", BASE)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    assert SELF_WARNING not in capsys.readouterr().err


def test_files_are_written(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    b = write_run(
        tmp_path / "b", {(FLASK, 10): [78.5, 77.5, 78.2], (FASTAPI, 10): [100.0, 101.5, 98.5]}
    )
    paths = write_comparison(compare.compare_runs(a, b), tmp_path / "out")
    assert [p.name for p in paths] == list(FILES)
    csv_path, md_path, png_path = paths
    assert list(pd.read_csv(csv_path).columns) == list(compare.TABLE_COLUMNS)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = md_path.read_text()
    assert f"## {IO}" in md and "(not significant)" in md and "(significant)" in md
    assert "Welch's t-test" in md and "±5%" in md and "![rps change" in md
    assert "| fastapi-uvicorn | 10 users |" in md and "**yes**" in md


def test_default_out_dir_is_beside_run_b_and_keeps_earlier_comparisons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(tmp_path / "a", BASE)
    b = write_run(tmp_path / "b", BASE)
    first = tmp_path / "compare-a-vs-b"
    assert run_compare(a, b, 5.0, None) == 0
    assert sorted(p.name for p in first.iterdir()) == sorted(FILES)
    assert str(first / "comparison.md") in capsys.readouterr().out
    (first / "comparison.md").write_text("earlier")
    assert main(["compare", str(a), str(b)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    second = tmp_path / "compare-a-vs-b-2"
    assert str(second / "comparison.md") in captured.out
    assert (first / "comparison.md").read_text() == "earlier"  # kept
    assert sorted(p.name for p in second.iterdir()) == sorted(FILES)
    assert main(["compare", str(a), str(b)]) == 0
    assert (tmp_path / "compare-a-vs-b-3" / "comparison.md").is_file()
    assert not (b / "compare-a").exists()  # never inside a run


def test_out_option_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", BASE)
    b = write_run(tmp_path / "b", BASE)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "comparison.md").write_text("earlier")
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 0
    assert (out / "comparison.md").read_text() != "earlier"
    assert not list(tmp_path.glob("compare-*"))


def test_one_trial_p99_reads_not_tested(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With one trial a cell, no part of a row says "no significant change" of p99."""
    a = write_run(tmp_path / "a", ONE_A, seed=1)
    b = write_run(tmp_path / "b", ONE_B, seed=2, p99={(FLASK, 10): [90.0], (FASTAPI, 10): [60.0]})
    for per_second in (False, True):
        out = tmp_path / f"out-{per_second}"
        argv = ["compare", str(a), str(b), "--out", str(out)]
        assert main(argv + (["--per-second"] if per_second else [])) == int(per_second)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        lines = [line for line in captured.out.splitlines() if line.startswith(f"{IO} · ")]
        assert len(lines) == 2
        for line in lines:  # p (rps) and p (p99) without --per-second; p (p99) and verdict with
            assert line.count(P_NOT_TESTED) == 2 and "n/a" not in line, line
            assert "no significant change; p99" not in line or "p99 not tested" in line
        table = pd.read_csv(out / "comparison.csv")
        for verdict in table["verdict"]:
            p99_part = verdict.partition(";")[2]
            assert compare.NO_CHANGE not in p99_part
            if per_second:
                assert p99_part.strip() == compare.P99_NOT_TESTED
            else:
                assert verdict == compare.NOT_ENOUGH_TRIALS
        assert table["p99_p_value"].isna().all()
        md = (out / "comparison.md").read_text()
        assert f"| {P_NOT_TESTED} |" in md


def test_make_compare_exits_2_on_a_regression_and_says_the_harness_status(
    tmp_path: Path,
) -> None:
    """make's own code for a failed recipe is 2; the harness's 1 is printed, and the harness
    itself exits 1 (what CI should run, as the README says)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    a = write_run(tmp_path / "a", BASE)
    b = write_run(
        tmp_path / "b", {(FLASK, 10): [78.5, 77.5, 78.2], (FASTAPI, 10): [100.0, 101.5, 98.5]}
    )
    make = ["make", "-s", "-C", str(ROOT), "compare", f"A={a}", f"B={b}", "STAMP=",
            f"PY={sys.executable}"]  # fmt: skip
    done = subprocess.run(make, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "python -m harness compare exited 1" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    direct = [sys.executable, "-m", "harness", "compare", str(a), str(b)]
    done = subprocess.run(
        direct, capture_output=True, text=True, check=False, cwd=ROOT, timeout=120
    )
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    usage = [*direct[:4], str(a), str(tmp_path / "nowhere")]
    done = subprocess.run(usage, capture_output=True, text=True, check=False, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("gatebench: error:")
    assert "Traceback" not in done.stdout + done.stderr


def test_readme_tells_ci_to_use_the_harness_not_make() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "In CI use `python -m harness compare A B`" in readme
    assert "`make compare` exits 2 on any failure" in readme
    assert "0 no regression" in readme and "1 a significant regression" in readme
    assert "2 bad usage (not a results folder" in readme
    assert "compare-<a>-vs-<b>-2" in readme
    assert "Exit status of `run`: 0 every cell ran, 1 some cells failed" in readme


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", BASE)
    missing = tmp_path / "not-a-run"
    missing.mkdir()
    with pytest.raises(ValueError, match="not-a-run"):
        compare.compare_runs(a, missing)
    with pytest.raises(ValueError, match="nowhere"):
        run_compare(tmp_path / "nowhere", a, 5.0, None)


def test_welch_p_edge_cases() -> None:
    assert math.isnan(compare.welch_p([1.0], [1.0, 2.0]))
    assert compare.welch_p([5.0, 5.0], [5.0, 5.0]) == 1.0
    assert compare.welch_p([5.0, 5.0], [6.0, 6.0]) == 0.0
    assert compare.welch_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_chart_draws_not_judged_groups_hollow_and_hatched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write_run(tmp_path / "a", {**BASE, (FLASK, 50): [76.0]})
    b = write_run(tmp_path / "b", {**BASE, (FLASK, 50): [57.0]})
    comparison = compare.compare_runs(a, b)
    saved: list[Any] = []
    monkeypatch.setattr(compare_chart.common, "save", lambda fig, path: saved.append(fig) or path)
    compare_chart.comparison_chart(comparison, tmp_path / "c.png")
    ax = saved[0].axes[0]
    bars = [p for p in ax.patches if p.get_height() == pytest.approx(0.8)]
    hatched = [p for p in bars if p.get_hatch()]
    assert len(bars) == 3 and len(hatched) == 1
    assert hatched[0].get_width() == pytest.approx(-25.0)
    assert "-25.0% (not judged)" in [t.get_text() for t in ax.texts]
