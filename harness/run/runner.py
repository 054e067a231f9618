"""Runs a plan: for each scenario x target, start the server, then one locust per cell.

Per cell: locust runs headless as a subprocess (never imported here), pinned to the
generator CPUs, with ``harness/loadgen/extension.py`` loaded next to the scenario for exact
latencies and the warm-up/measurement window; a sampler records server and generator
CPU and memory. Raw files go to ``raw/<cell_id>/``; the manifest is saved after each cell.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import schema
from harness.histogram import latency_stats
from harness.loadgen import CALIBRATION_FILE, CALIBRATION_USER, EXTENSION_FILE, OPEN_USER_CLASS
from harness.results.summary import read_resources
from harness.run.cpus import Pinning
from harness.run.manifest import now_iso, save_manifest
from harness.run.sampler import Sampler
from harness.run.scenarios import Scenario
from harness.run.servers import RunningServer, ServerError, serve, start_process, stop_process
from harness.run.stall import Staller, StallPlan
from harness.schema import Cell, CellRecord
from targets.registry import Target

SPAWN_ALLOWANCE_S = 30.0  # locust's own --run-time: a safety stop if the window never closes
STOP_GRACE_S = 30.0
MAX_RESTARTS = 3  # a target that dies more often within one group is given up

Progress = Callable[[str], None]


def stage_scenario(scenario: Scenario, run_dir: Path) -> Path:
    """Copy the scenario (and its _helpers) into the run folder under a safe module name.

    locust imports a locustfile as a module named after the file, so ``json.py`` or
    ``io.py`` would replace the standard library's module inside locust. The copy is
    named ``gatebench_scenario_<name>.py``, and it records the exact code that ran.
    """
    folder = run_dir / schema.RAW_DIR / "scenarios"
    folder.mkdir(parents=True, exist_ok=True)
    for helper in scenario.path.parent.glob("_*.py"):
        shutil.copyfile(helper, folder / helper.name)
    staged = folder / f"gatebench_scenario_{scenario.name}.py"
    shutil.copyfile(scenario.path, staged)
    return staged


@dataclass(frozen=True)
class CellSettings:
    """Run-wide settings every cell shares."""

    pinning: Pinning
    arrivals: str = "poisson"
    stall: StallPlan | None = None
    latency_log: bool = False


def locust_argv(
    cell: Cell, locustfile: Path, user_classes: tuple[str, ...], url: str, cell_dir: Path,
    settings: CellSettings,
) -> list[str]:  # fmt: skip
    safety_stop = cell.warmup_s + cell.duration_s + SPAWN_ALLOWANCE_S
    if cell.load_model == "open":
        # One driver user launches requests on the arrival schedule (harness.loadgen.open_load).
        users = 1
        load = ["--gatebench-rate", f"{cell.rate:g}", "--gatebench-arrivals", settings.arrivals,
                "--gatebench-seed", str(cell.trial), OPEN_USER_CLASS]  # fmt: skip
    else:
        users = cell.users
        load = list(user_classes)  # naming them keeps the open-load driver out
    argv = [
        sys.executable, "-m", "locust",
        "-f", f"{locustfile},{EXTENSION_FILE}",
        "--headless",
        "--host", url,
        "--users", str(users),
        "--spawn-rate", str(users),  # all users within a second; warm-up follows
        "--run-time", f"{safety_stop:.0f}s",
        "--stop-timeout", "0",
        "--only-summary",
        "--exit-code-on-error", "0",  # failures are counted, not fatal
        "--loglevel", "WARNING",
        "--csv", str(cell_dir / schema.LOCUST_CSV_PREFIX),
        "--gatebench-out", str(cell_dir / schema.LATENCY_FILE),
        "--gatebench-warmup", f"{cell.warmup_s:g}",
        "--gatebench-duration", f"{cell.duration_s:g}",
    ]  # fmt: skip
    if settings.latency_log:
        argv += ["--gatebench-log", str(cell_dir / schema.REQUEST_LOG)]
    return argv + load


def run_cell(
    cell: Cell, locustfile: Path, user_classes: tuple[str, ...], server: RunningServer,
    cell_dir: Path, settings: CellSettings,
) -> dict[str, Any]:  # fmt: skip
    """Run one cell against a ready server; return the latency record (raises on failure)."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    argv = locust_argv(cell, locustfile, user_classes, server.url, cell_dir, settings)
    stdout_path = cell_dir / schema.LOCUST_STDOUT
    (cell_dir / "locust.argv.json").write_text(json.dumps(argv, indent=1))
    stderr_path = cell_dir / schema.LOCUST_STDERR
    proc = start_process(argv, stdout_path, settings.pinning.generator_cpus, None, stderr_path)
    deadline = cell.warmup_s + cell.duration_s + SPAWN_ALLOWANCE_S + STOP_GRACE_S
    stall = (
        Staller(settings.stall, server.pid, cell_dir)
        if settings.stall
        else contextlib.nullcontext()
    )
    sampler = Sampler(
        {"server": server.pid, "generator": proc.pid}, cell_dir / schema.RESOURCES_FILE
    )
    try:
        with sampler, stall:
            try:
                proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                raise CellError(f"locust did not finish within {deadline:.0f} s") from None
    finally:
        stop_process(proc)
    latency_path = cell_dir / schema.LATENCY_FILE
    if proc.returncode != 0:
        raise CellError(f"locust exited with status {proc.returncode}; see {stderr_path}")
    if not latency_path.exists():
        raise CellError(f"locust wrote no {schema.LATENCY_FILE}; see {stderr_path}")
    record: dict[str, Any] = json.loads(latency_path.read_text())
    if not record.get("complete"):
        raise CellError(f"the measurement window did not complete; see {stderr_path}")
    if not server.alive():
        raise CellError(f"target server died during the cell; see {server.log_path}")
    return record


class CellError(RuntimeError):
    """A cell that ran but cannot be trusted or produced nothing."""


class Runner:
    def __init__(
        self,
        run_dir: Path,
        manifest: dict[str, Any],
        records: list[CellRecord],
        scenarios: dict[str, Scenario],
        targets: dict[str, Target],
        settings: CellSettings,
        progress: Progress,
    ) -> None:
        self.run_dir = run_dir
        self.manifest = manifest
        self.records = records
        self.scenarios = scenarios
        self.targets = targets
        self.settings = settings
        self.progress = progress
        self.done = 0
        self.started = time.monotonic()

    def save(self) -> None:
        self.manifest["cells"] = [r.to_dict() for r in self.records]
        save_manifest(self.run_dir, self.manifest)

    def run(self) -> None:
        """Run every pending cell, grouped so each server starts once per scenario."""
        groups: dict[tuple[str, str], list[CellRecord]] = {}
        for record in self.records:
            if record.status == schema.STATUS_PENDING:
                groups.setdefault((record.cell.scenario, record.cell.target), []).append(record)
        self.total = sum(len(g) for g in groups.values())
        self.started = time.monotonic()  # the ETA counts cells only, not verify/calibration
        self.save()
        for (scenario_name, target_name), group in groups.items():
            self.run_group(self.scenarios[scenario_name], self.targets[target_name], group)

    def run_group(self, scenario: Scenario, target: Target, group: list[CellRecord]) -> None:
        """Run a group's cells on one server; a server that dies is started again."""
        pending = list(group)
        restarts = 0
        while pending:
            log = self.run_dir / schema.RAW_DIR / f"server__{scenario.name}__{target.name}.log"
            try:
                with serve(target, log, self.settings.pinning.server_cpus) as server:
                    while pending and server.alive():
                        self.run_one(pending.pop(0), scenario, server)
            except ServerError as exc:
                for record in pending:
                    self.finish(record, schema.STATUS_FAILED, str(exc))
                self.progress(f"error: {exc}")
                return
            if pending:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    reason = f"target {target.name} died {restarts} times; see its log {log}"
                    for record in pending:
                        self.finish(record, schema.STATUS_FAILED, reason)
                    self.progress(f"error: {reason}")
                    return
                self.progress(f"    target {target.name} died; starting it again (log: {log})")

    def run_one(self, record: CellRecord, scenario: Scenario, server: RunningServer) -> None:
        cell = record.cell
        load = f"{cell.users} users" if cell.load_model == "closed" else f"{cell.rate:g} req/s open"
        trial = f", trial {cell.trial}" if cell.trial > 1 or self.has_trials() else ""
        self.progress(
            f"[{self.done + 1}/{self.total}] {cell.scenario} x {cell.target} x {load}{trial}"
            f" ({cell.warmup_s:g}+{cell.duration_s:g} s){self.eta()}"
        )
        record.started_at = now_iso()
        try:
            locustfile = stage_scenario(scenario, self.run_dir)
            cell_dir = self.run_dir / schema.RAW_DIR / cell.cell_id
            result = run_cell(
                cell, locustfile, scenario.user_classes, server, cell_dir, self.settings
            )
        except CellError as exc:
            self.finish(record, schema.STATUS_FAILED, str(exc))
            self.progress(f"    failed: {exc}")
            return
        except BaseException:
            record.status = schema.STATUS_INTERRUPTED
            record.finished_at = now_iso()
            self.save()
            raise
        self.finish(record, schema.STATUS_OK, None)
        self.progress("    " + describe(result))

    def has_trials(self) -> bool:
        return any(r.cell.trial > 1 for r in self.records)

    def finish(self, record: CellRecord, status: str, error: str | None) -> None:
        record.status = status
        record.error = error
        record.finished_at = now_iso()
        self.done += 1
        self.save()

    def eta(self) -> str:
        if self.done == 0:
            return ""
        per_cell = (time.monotonic() - self.started) / self.done
        remaining = per_cell * (self.total - self.done)
        minutes, seconds = divmod(int(remaining), 60)
        return f", ETA {minutes}m{seconds:02d}s"


def describe(result: dict[str, Any]) -> str:
    """One progress line for a finished cell, from its latency record."""
    successes = int(result.get("successes", 0))
    failures = int(result.get("failures", 0))
    rps = successes / float(result["duration_s"])
    text = f"{rps:,.1f} rps, {failures} failures"
    stats = latency_stats(result.get("histogram"))
    if stats.count:
        text += f", p50 {stats.p50_ms:,.1f} ms, p99 {stats.p99_ms:,.1f} ms"
    open_load = result.get("open")
    if open_load:
        text += f", {open_load['late']} late / {open_load['launched']} starts"
    return text


CALIBRATION_USERS = 64
CALIBRATION_TARGETS = ("fastapi-uvicorn",)  # preferred: the fastest target on /health


def calibrate(
    targets: list[Target], run_dir: Path, settings: CellSettings, progress: Progress
) -> dict[str, Any]:
    """The generator's own ceiling: requests/s it drives against the cheapest route.

    Runs CALIBRATION_USERS closed users with no think time on ``/health`` of the fastest
    target in the run, with the same pinning as every cell. If the server's CPU was the
    limit instead, the ceiling is only a lower bound and the note says so.
    """
    target = next((t for t in targets if t.name in CALIBRATION_TARGETS), targets[0])
    cell = Cell("calibration", target.name, "closed", CALIBRATION_USERS, None, 1, 3.0, 1.0, None)
    cell_dir = run_dir / schema.RAW_DIR / "calibration"
    progress(f"calibrating the load generator: {CALIBRATION_USERS} users on {target.name} /health")
    with serve(target, run_dir / schema.RAW_DIR / "server__calibration.log",
               settings.pinning.server_cpus) as server:  # fmt: skip
        plain = CellSettings(settings.pinning)
        result = run_cell(cell, CALIBRATION_FILE, (CALIBRATION_USER,), server, cell_dir, plain)
    samples = read_resources(run_dir, "calibration")
    window = (result["window_start"], result["window_end"])
    generator_cpu = _mean_cpu(samples, "generator", window)
    server_cpu = _mean_cpu(samples, "server", window)
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


def _mean_cpu(samples: Any, role: str, window: tuple[float, float]) -> float | None:
    if samples is None or samples.empty:
        return None
    inside = samples[(samples["role"] == role) & samples["t"].between(*window)]
    return None if inside.empty else round(float(inside["cpu_pct"].mean()), 1)
