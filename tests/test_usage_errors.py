"""Bad usage is one line on stderr and exit 2, refused before anything starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.plan import RunOptions, build_plan
from harness.run.profiles import PROFILES
from harness.run.scenarios import Scenario, from_report
from harness.units import UsageError
from targets import common

ROOT = Path(__file__).resolve().parent.parent


def harness(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gatebench: error: "), done.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("under", ["file", "under-file", "proc"])
def test_run_refuses_an_out_that_cannot_be_a_folder(tmp_path: Path, under: str) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    out = {"file": a_file, "under-file": a_file / "x" / "y", "proc": Path("/proc/gatebench")}
    done = harness("run", "--out", str(out[under]), "--no-verify", "--no-calibrate")
    one_line_error(done, f"--out {out[under]}")
    assert "cells" not in done.stdout + done.stderr  # nothing started


def scenario(duration: float | None = None) -> Scenario:
    return Scenario(
        name="io", path=Path("io.py"), description="", user_classes=("U",), duration_s=duration
    )


def test_set_for_a_target_not_in_the_run_is_refused() -> None:
    options = RunOptions(
        profile="smoke",
        targets=("fastapi-uvicorn",),
        overrides=(("flask-gunicorn-sync", "workers", 2),),
    )
    with pytest.raises(UsageError, match=r"flask-gunicorn-sync.*not in this run.*fastapi-uvicorn"):
        build_plan(
            options,
            PROFILES["smoke"],
            {"io": scenario()},
            ["fastapi-uvicorn", "flask-gunicorn-sync"],
        )


def test_set_for_a_target_not_in_the_run_exits_2() -> None:
    done = harness(
        "run",
        "--targets",
        "fastapi-uvicorn",
        "--scenarios",
        "io",
        "--set",
        "flask-gunicorn-sync.workers=2",
        "--no-verify",
        "--no-calibrate",
    )
    one_line_error(done, "--set flask-gunicorn-sync.workers=2", "fastapi-uvicorn")


def test_stall_at_outside_the_window_is_refused() -> None:
    options = RunOptions(profile="smoke", targets=("fastapi-uvicorn",), duration_s=3, stall_at_s=3)
    with pytest.raises(UsageError, match=r"--stall-at 3: .*lasts 3 s"):
        build_plan(options, PROFILES["smoke"], {"io": scenario()}, ["fastapi-uvicorn"])
    inside = RunOptions(profile="smoke", targets=("fastapi-uvicorn",), duration_s=3, stall_at_s=2)
    assert build_plan(inside, PROFILES["smoke"], {"io": scenario()}, ["fastapi-uvicorn"])


def test_stall_at_outside_the_window_exits_2() -> None:
    done = harness(
        "run",
        "--profile",
        "smoke",
        "--duration",
        "3",
        "--stall-at",
        "5",
        "--no-verify",
        "--no-calibrate",
    )
    one_line_error(done, "--stall-at 5", "3 s")


@pytest.mark.parametrize(
    "target", ["flask-gunicorn-sync", "fastapi-uvicorn", "flask-granian", "django-daphne"]
)
def test_serve_on_a_busy_port(target: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = harness("serve", target, "--port", str(port))
    one_line_error(done, f"port {port} is already in use", f"results/serve-{target}.log")


def test_serve_on_an_address_this_machine_lacks() -> None:
    done = harness("serve", "fastapi-uvicorn", "--host", "203.0.113.7")
    one_line_error(done, "--host 203.0.113.7", "not an address of this machine")


@pytest.mark.parametrize(("key", "zero_ok"), [("warmup", "zero or "), ("duration", "")])
def test_a_bad_duration_setting_names_its_key(key: str, zero_ok: str) -> None:
    report = {"user_classes": ["U"], "hosts": [], "settings": {key: -1}}
    with pytest.raises(UsageError, match=f"{key}: -1 must be {zero_ok}positive"):
        from_report(ROOT / "scenarios" / "io.py", report)


def test_list_names_the_scenario_folder_used(tmp_path: Path) -> None:
    (tmp_path / "io.py").write_text((ROOT / "scenarios" / "io.py").read_text())
    done = harness("list", env={"GATEBENCH_SCENARIOS": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert f"Scenarios ({tmp_path}/*.py):" in done.stdout
    assert "Scenarios (scenarios/*.py):" in harness("list").stdout


def test_404_body_names_every_route() -> None:
    detail = json.loads(common.not_found().reply().body)["detail"]
    for path in ("/health", "/echo", "/background", "/sse", "/ws"):
        assert path in detail
