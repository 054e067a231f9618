"""`python -m harness runs`: the index over run folders (harness.report.runs), in process."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from analysis_fixtures import THROUGHPUT, make_run

from harness import schema
from harness.cli import main
from harness.report import runs
from harness.results.folder import read_summary

FASTAPI, FLASK = "fastapi-uvicorn", "flask-gunicorn-sync"
IO_RATIO = THROUGHPUT[(FASTAPI, 100)][0] / THROUGHPUT[(FLASK, 100)][0]  # 1890 / 77 = 24.5
OLD = "20261120T090000Z-aaaaaaa"  # io only, report.html and report.md
MIDDLE = "20261125T130000Z-ccccccc"  # every target WSGI: no ratio; no report
BROKEN = "20261126T000000Z-deadbee"  # manifest.json is not JSON
NEW = "20261127T180000Z-bbbbbbb"  # io and cpu, summary.csv edited: cpu 10x wins; report.md only


def _run(results: Path, name: str, edit: dict[str, Any], **kwargs: Any) -> Path:
    """A fixture run (analysis_fixtures.make_run) moved to results/<name>, manifest edited."""
    made = make_run(results.parent / f"build-{name}", **kwargs).run_dir
    run_dir = results / name
    shutil.move(made, run_dir)
    path = run_dir / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest.update(run_id=name, **edit)
    path.write_text(json.dumps(manifest))
    return run_dir


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    folder.mkdir()
    old = _run(
        folder,
        OLD,
        {"created_at": "2026-11-20T09:00:00+00:00", "git": {"sha": "aaaaaaa1234567"}},
    )
    (old / schema.REPORT_HTML).write_text("<html></html>")
    (old / schema.REPORT_MD).write_text("# report")

    middle = _run(folder, MIDDLE, {"created_at": "2026-11-25T13:00:00Z"})
    manifest = json.loads((middle / schema.MANIFEST_FILE).read_text())
    for settings in manifest["targets"].values():
        settings["interface"] = "wsgi"
    manifest["git"] = {"sha": "ccccccc", "dirty": True}
    manifest["profile"] = {"name": "default"}
    (middle / schema.MANIFEST_FILE).write_text(json.dumps(manifest))

    new = _run(
        folder,
        NEW,
        {"created_at": "2026-11-27T18:00:00Z", "git": {"sha": "bbbbbbb"}},
        cpu_scenario=True,
    )
    manifest = json.loads((new / schema.MANIFEST_FILE).read_text())
    manifest["cells"][0]["status"] = schema.STATUS_INTERRUPTED  # ok 7, failed 1, other 1
    (new / schema.MANIFEST_FILE).write_text(json.dumps(manifest))
    summary = read_summary(new)  # from raw; then summary.csv, which the index must prefer
    fast = summary["target"].eq(FASTAPI)
    summary.loc[fast & summary["scenario"].eq("io"), "rps"] = 385.0  # io 385 / 77 = 5
    summary.loc[fast & summary["scenario"].eq("cpu"), "rps"] = 5100.0  # cpu 5100 / 510 = 10
    summary.to_csv(new / schema.SUMMARY_FILE, index=False)
    (new / schema.REPORT_MD).write_text("# report")

    broken = folder / BROKEN
    broken.mkdir()
    (broken / schema.MANIFEST_FILE).write_text("{not json")

    # Not runs: the latest link, a comparison, a folder without a manifest, a file.
    (folder / "latest").symlink_to(NEW)
    compare = folder / f"compare-{OLD}-vs-{NEW}"
    compare.mkdir()
    (compare / schema.MANIFEST_FILE).write_text("{}")
    (folder / "scratch").mkdir()
    (folder / "README.md").write_text("results")
    return folder


def test_entries_newest_first_with_counts_ratio_and_reports(results: Path) -> None:
    entries = runs.find_runs(results)
    assert [e.name for e in entries] == [NEW, BROKEN, MIDDLE, OLD]
    new, broken, middle, old = entries

    assert (new.sha, new.profile, new.ok, new.failed, new.other) == ("bbbbbbb", "smoke", 7, 1, 1)
    assert new.headline is not None and new.headline.scenario == "cpu"
    assert new.headline.ratio == pytest.approx(10.0)  # read from summary.csv, not the raw files
    assert new.headline.text == "10.0× cpu"
    assert new.report == results / NEW / schema.REPORT_MD

    assert broken.problem is not None and "cannot read" in broken.problem
    assert (broken.ok, broken.headline, broken.report) == (0, None, None)

    assert middle.headline is None and middle.note is None and middle.report is None
    assert (middle.sha, middle.profile, middle.ok, middle.failed) == ("ccccccc", "default", 4, 1)

    assert old.sha == "aaaaaaa"  # short
    assert old.headline is not None and old.headline.scenario == "io"
    assert old.headline.ratio == pytest.approx(IO_RATIO)
    assert old.headline.detail == f"{FASTAPI} ÷ {FLASK} at 100 users"
    assert old.report == results / OLD / schema.REPORT_HTML


def test_cli_lists_runs_and_writes_the_index(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--results", str(results)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0].split() == ["date", "sha", "profile", "ok/failed/other", "best",
                                "ASGI/WSGI", "report"]  # fmt: skip
    assert len(lines) == 6 and lines[-1] == f"index: {results / runs.INDEX_FILE}"
    new, broken, middle, old = lines[1:5]
    assert new.split() == [
        "2026-11-27", "18:00", "UTC", "bbbbbbb", "smoke", "7/1/1", "10.0×", "cpu",
        str(results / NEW / schema.REPORT_MD),
    ]  # fmt: skip
    assert broken.startswith(BROKEN) and "unreadable: cannot read" in broken
    assert middle.split() == [
        "2026-11-25", "13:00", "UTC", "ccccccc", "default", "4/1/0", "–", "–"
    ]  # fmt: skip
    assert old.split() == [
        "2026-11-20", "09:00", "UTC", "aaaaaaa", "smoke", "4/1/0", "24.5×", "io",
        str(results / OLD / schema.REPORT_HTML),
    ]  # fmt: skip
    for name in ("latest", "compare-", "scratch", "README"):
        assert name not in captured.out.replace(str(results), "")

    page = (results / runs.INDEX_FILE).read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "http" not in page and "<script" not in page and "<link" not in page
    assert re.findall(r'href="([^"]*)"', page) == [
        f"{NEW}/{schema.REPORT_MD}",
        f"{OLD}/{schema.REPORT_HTML}",
    ]
    rows = re.findall(r"<tr[ >].*?</tr>", page)
    assert len(rows) == 5  # the header and four runs, in the order of the terminal
    assert [row for row, name in zip(rows[1:], (NEW, BROKEN, MIDDLE, OLD), strict=True)
            if name not in row] == []  # fmt: skip
    assert 'class="unreadable"' in rows[2] and "unreadable: cannot read" in rows[2]
    assert "10.0×" in rows[1] and ">cpu<" in rows[1] and "24.5×" in rows[4]
    assert f"{FASTAPI} ÷ {FLASK} at 100 users" in rows[4]
    assert "no report" in rows[3]


def test_cli_paths_are_shown_relative_to_the_current_folder(
    results: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(results.parent)
    assert main(["runs", "--results", "results"]) == 0
    out = capsys.readouterr().out
    assert f"results/{OLD}/report.html" in out
    assert out.splitlines()[-1] == "index: results/index.html"


def test_a_broken_summary_costs_the_ratio_not_the_listing(results: Path) -> None:
    (results / OLD / schema.SUMMARY_FILE).write_bytes(b'scenario,"target\n\xff\x00')
    shutil.rmtree(results / OLD / schema.RAW_DIR)
    entry = runs.read_entry(results / OLD)
    assert entry.problem is None and entry.headline is None
    assert entry.note is not None and entry.note.startswith("no ratio: ")
    assert (entry.ok, entry.failed) == (4, 1)
    lines = runs.render_lines(runs.find_runs(results))
    old = next(line for line in lines if line.startswith("2026-11-20"))
    assert old.endswith(f"({entry.note})")


def test_no_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "latest").symlink_to("nowhere")
    assert main(["runs", "--results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"no runs yet in {tmp_path}",
        f"index: {tmp_path / runs.INDEX_FILE}",
    ]
    assert "No runs yet" in (tmp_path / runs.INDEX_FILE).read_text()


@pytest.mark.parametrize("kind", ["missing", "file", "run"])
def test_bad_results_folder_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target = tmp_path / "nothing-here"
    if kind == "file":
        target.write_text("x")
    elif kind == "run":
        target = make_run(tmp_path).run_dir
    assert main(["runs", "--results", str(target)]) == schema.EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("gatebench: error: --results ")
    assert not (target / runs.INDEX_FILE).exists()
