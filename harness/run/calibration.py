"""The load generator's own ceiling: requests/s it drives against the cheapest route.

Runs CALIBRATION_USERS closed users with no think time on ``/health`` of the fastest target
in the run, with the same pinning as every cell, through the same sweep machinery as the
cells (one locust process, one stage). If the server's CPU was the limit instead, the
ceiling is only a lower bound and the note says so.
"""

from __future__ import annotations

from pathlib import Path

from harness import schema
from harness.loadgen import CALIBRATION_FILE, CALIBRATION_USER
from harness.run.runner import CellSettings, Generator, Progress, run_stage
from harness.run.sampler import Sampler, mean_cpu, read_rows
from harness.run.servers import serve
from harness.schema import Calibration, Cell
from targets.registry import Target

CALIBRATION_USERS = 64
CALIBRATION_TARGETS = ("fastapi-uvicorn",)  # preferred: the fastest target on /health
WARMUP_S = 1.0
DURATION_S = 3.0


def calibrate(
    targets: list[Target], run_dir: Path, settings: CellSettings, progress: Progress
) -> Calibration:
    target = next((t for t in targets if t.name in CALIBRATION_TARGETS), targets[0])
    cell = Cell(
        "calibration", target.name, "closed", CALIBRATION_USERS, None, 1, DURATION_S, WARMUP_S,
        None,
    )  # fmt: skip
    cell_dir = run_dir / schema.RAW_DIR / "calibration"
    progress(f"calibrating the load generator: {CALIBRATION_USERS} users on {target.name} /health")
    plain = CellSettings(settings.pinning)
    generator = Generator(CALIBRATION_FILE, (CALIBRATION_USER,), [(cell, cell_dir)], plain)
    try:
        with serve(target, run_dir / schema.RAW_DIR / "server__calibration.log",
                   settings.pinning.server_cpus) as server:  # fmt: skip
            sampler = Sampler({"server": server.pid, "generator": generator.pid})
            with sampler:
                result = run_stage(cell, cell_dir, server, generator, sampler, plain)
    finally:
        generator.stop()
    samples = read_rows(cell_dir / schema.RESOURCES_FILE)
    window = (result["window_start"], result["window_end"])
    generator_cpu = mean_cpu(samples, "generator", window)
    server_cpu = mean_cpu(samples, "server", window)
    rps = result["successes"] / result["duration_s"]
    note = "generator saturated: this is its ceiling"
    if server_cpu is not None and server_cpu >= 90:
        note = "the server's CPU was the limit: the generator's ceiling is at least this"
    elif generator_cpu is not None and generator_cpu < 90:
        note = "neither side saturated: the ceiling is at least this"
    progress(f"    generator ceiling {rps:,.0f} rps ({note})")
    return {
        "target": target.name, "route": "/health", "users": CALIBRATION_USERS,
        "duration_s": cell.duration_s, "rps": round(rps, 1),
        "generator_cpu_pct": generator_cpu, "server_cpu_pct": server_cpu, "note": note,
    }  # fmt: skip
