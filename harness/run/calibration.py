"""The load generator's own ceiling: requests/s it drives against the cheapest route.

Runs CALIBRATION_USERS closed users with no think time on ``/health`` of the fastest target
in the run, with the same pinning as every cell, through the same sweep machinery as the
cells (one locust process, one stage per run). The measurement is repeated until the last
two runs agree within STABLE_WITHIN (at least MIN_RUNS, at most MAX_RUNS runs): the ceiling
is the median of the runs and its spread, (max - min) / median, says how far to trust it.
If the server's CPU was the limit instead, the ceiling is only a lower bound and the note
says so.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from harness import schema
from harness.loadgen import CALIBRATION_FILE, CALIBRATION_USER
from harness.loadgen.stages import write_go
from harness.run.external import attach, is_external, sampled_roles
from harness.run.runner import CellSettings, Generator, Progress, run_stage
from harness.run.sampler import Sampler, mean_cpu, read_rows
from harness.run.servers import serve
from harness.schema import Calibration, Cell
from targets.registry import Target

CALIBRATION_USERS = 64
CALIBRATION_TARGETS = ("fastapi-uvicorn",)  # preferred: the fastest target on /health
WARMUP_S = 0.5  # the first run's warm-up: locust and the server warm up once
LATER_WARMUP_S = 0.3  # the following runs' (users start from zero again)
DURATION_S = 1.5  # each run's measurement window (the median over runs steadies it)
MIN_RUNS = 2
MAX_RUNS = 4
STABLE_WITHIN = 0.05  # the last two runs' rps within 5% of each other: stop


def stable(runs_rps: list[float]) -> bool:
    """Whether to stop: at least MIN_RUNS runs and the last two within STABLE_WITHIN."""
    if len(runs_rps) < MIN_RUNS:
        return False
    last, before = runs_rps[-1], runs_rps[-2]
    return abs(last - before) <= STABLE_WITHIN * max(last, before)


def spread(runs_rps: list[float]) -> float | None:
    """(max - min) / median of the runs; None when there is no positive median."""
    if not runs_rps:
        return None
    middle = statistics.median(runs_rps)
    return (max(runs_rps) - min(runs_rps)) / middle if middle > 0 else None


def calibration_cells(target: Target, run_dir: Path) -> list[tuple[Cell, Path]]:
    """Every run the calibration may take, as stages of one locust process."""
    folder = run_dir / schema.RAW_DIR / "calibration"
    return [
        (
            Cell(
                "calibration", target.name, "closed", CALIBRATION_USERS, None, run,
                DURATION_S, WARMUP_S if run == 1 else LATER_WARMUP_S, None,
            ),
            folder / f"run{run}",
        )
        for run in range(1, MAX_RUNS + 1)
    ]  # fmt: skip


def calibrate(
    targets: list[Target], run_dir: Path, settings: CellSettings, progress: Progress
) -> Calibration:
    target = next((t for t in targets if t.name in CALIBRATION_TARGETS), targets[0])
    cells = calibration_cells(target, run_dir)
    progress(
        f"calibrating the load generator: {CALIBRATION_USERS} users on {target.name} /health "
        f"({MIN_RUNS} to {MAX_RUNS} runs of {DURATION_S:g} s, until two agree within "
        f"{STABLE_WITHIN:.0%})"
    )
    plain = CellSettings(settings.pinning)
    generator = Generator(CALIBRATION_FILE, (CALIBRATION_USER,), cells, plain)
    runs_rps: list[float] = []
    generator_cpus: list[float] = []
    server_cpus: list[float] = []
    try:
        log = run_dir / schema.RAW_DIR / "server__calibration.log"
        with (
            attach(target)  # run --url: its /health, at its URL
            if is_external(target)
            else serve(target, log, settings.pinning.server_cpus)
        ) as server:
            sampler = Sampler(sampled_roles(server, generator.pid))
            with sampler:
                for index, (cell, cell_dir) in enumerate(cells):
                    result = run_stage(cell, cell_dir, server, generator, sampler, plain)
                    runs_rps.append(result["successes"] / result["duration_s"])
                    samples = read_rows(cell_dir / schema.RESOURCES_FILE)
                    window = (result["window_start"], result["window_end"])
                    for role, found in (("generator", generator_cpus), ("server", server_cpus)):
                        cpu = mean_cpu(samples, role, window)
                        if cpu is not None:
                            found.append(cpu)
                    if stable(runs_rps):
                        for _, skipped in cells[index + 1 :]:  # locust passes over them
                            skipped.mkdir(parents=True, exist_ok=True)
                            write_go(skipped, None)
                        break
    finally:
        generator.stop()
    rps = statistics.median(runs_rps)
    generator_cpu = round(statistics.median(generator_cpus), 1) if generator_cpus else None
    server_cpu = round(statistics.median(server_cpus), 1) if server_cpus else None
    note = "generator saturated: this is its ceiling"
    if server_cpu is not None and server_cpu >= 90:
        note = "the server's CPU was the limit: the generator's ceiling is at least this"
    elif generator_cpu is not None and generator_cpu < 90:
        note = "neither side saturated: the ceiling is at least this"
    if not stable(runs_rps):
        note += f"; the last two of {len(runs_rps)} runs differ by more than {STABLE_WITHIN:.0%}"
    runs_spread = spread(runs_rps)
    spread_text = "n/a" if runs_spread is None else f"{runs_spread:.1%}"
    progress(
        f"    generator ceiling {rps:,.0f} rps (median of {len(runs_rps)} runs: "
        f"{' / '.join(f'{r:,.0f}' for r in runs_rps)}; spread {spread_text}) ({note})"
    )
    return {
        "target": target.name, "route": "/health", "users": CALIBRATION_USERS,
        "duration_s": DURATION_S, "rps": round(rps, 1),
        "runs_rps": [round(r, 1) for r in runs_rps],
        "spread": None if runs_spread is None else round(runs_spread, 4),
        "generator_cpu_pct": generator_cpu, "server_cpu_pct": server_cpu, "note": note,
    }  # fmt: skip
