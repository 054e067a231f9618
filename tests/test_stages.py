"""harness.loadgen.stages: the sweep plan and the go files between orchestrator and locust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.loadgen.stages import GO_FILE, Stage, read_go, read_plan, write_go, write_plan


def test_plan_round_trips(tmp_path: Path) -> None:
    stages = [
        Stage("io__a__u10__t1", str(tmp_path / "a"), "closed", 10, None, 1.5, 3.0),
        Stage("io__a__r50__t2", str(tmp_path / "b"), "open", 1, 50.0, 0.5, 2.0, "fixed", 2, True),
    ]
    path = write_plan(tmp_path / "sweep.json", stages)
    assert read_plan(path) == stages


def test_go_file_names_the_host_or_skips(tmp_path: Path) -> None:
    assert read_go(str(tmp_path)) is None  # not given yet: the stage waits
    write_go(tmp_path, "http://127.0.0.1:8123")
    assert read_go(str(tmp_path)) == {"host": "http://127.0.0.1:8123"}
    write_go(tmp_path, None)
    assert read_go(str(tmp_path)) == {"skip": True}
    (tmp_path / GO_FILE).write_text("{half")  # being written: not a go-ahead yet
    assert read_go(str(tmp_path)) is None


def test_the_orchestrator_can_import_the_plan_without_locust() -> None:
    code = "import sys, harness.loadgen.stages; sys.exit('locust' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
