"""harness.charts.draw: charts drawn by several processes are the charts drawn by one."""

from __future__ import annotations

import shutil
from pathlib import Path

from analysis_fixtures import make_run

from harness import schema
from harness.charts.draw import draw_charts


def test_parallel_drawing_writes_the_same_files_with_the_same_bytes(tmp_path: Path) -> None:
    run = make_run(tmp_path / "one", extra_scenario=True, measurement=True)
    copy = tmp_path / "two"
    shutil.copytree(run.run_dir, copy)
    alone = draw_charts(run.run_dir, workers=1)
    together = draw_charts(copy, workers=2)
    assert len(alone) >= 10
    assert [p.relative_to(run.run_dir) for p in alone] == [p.relative_to(copy) for p in together]
    for path in alone:
        twin = copy / path.relative_to(run.run_dir)
        assert twin.read_bytes() == path.read_bytes(), path.name
    charts = sorted(p.name for p in (copy / schema.CHARTS_DIR).iterdir())
    assert charts == sorted(p.name for p in together)  # nothing drawn but what it returned
