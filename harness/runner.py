"""Runs a plan: for each scenario x target, start the server, then one locust per cell.

Per cell: locust runs headless as a subprocess (never imported here), pinned to the
generator CPUs, with ``harness/locust_ext.py`` loaded next to the scenario for exact
latencies and the warm-up/measurement window; a sampler records server and generator
CPU and memory. Raw files go to ``raw/<cell_id>/``; the manifest is saved after each cell.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import schema
from harness.cpus import Pinning
from harness.manifest import now_iso, save_manifest
from harness.sampler import Sampler
from harness.scenarios import Scenario
from harness.schema import Cell, CellRecord
from harness.servers import RunningServer, ServerError, serve, start_process, stop_process
from targets.registry import Target

LOCUST_EXTENSION = Path(__file__).resolve().parent / "locust_ext.py"
SPAWN_ALLOWANCE_S = 30.0  # locust's own --run-time: a safety stop if the window never closes
STOP_GRACE_S = 30.0

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


def locust_argv(cell: Cell, scenario: Scenario, url: str, cell_dir: Path) -> list[str]:
    safety_stop = cell.warmup_s + cell.duration_s + SPAWN_ALLOWANCE_S
    staged = stage_scenario(scenario, cell_dir.parent.parent)
    return [
        sys.executable, "-m", "locust",
        "-f", f"{staged},{LOCUST_EXTENSION}",
        "--headless",
        "--host", url,
        "--users", str(cell.users),
        "--spawn-rate", str(cell.users),  # all users within a second; warm-up follows
        "--run-time", f"{safety_stop:.0f}s",
        "--stop-timeout", "0",
        "--only-summary",
        "--exit-code-on-error", "0",  # failures are counted, not fatal
        "--loglevel", "WARNING",
        "--csv", str(cell_dir / schema.LOCUST_CSV_PREFIX),
        "--gatebench-out", str(cell_dir / schema.LATENCY_FILE),
        "--gatebench-warmup", f"{cell.warmup_s:g}",
        "--gatebench-duration", f"{cell.duration_s:g}",
        *scenario.user_classes,  # never the extension's open-load driver
    ]  # fmt: skip


def run_cell(
    cell: Cell, scenario: Scenario, server: RunningServer, run_dir: Path, pinning: Pinning
) -> dict[str, Any]:
    """Run one cell against a ready server; return the latency record (raises on failure)."""
    cell_dir = run_dir / schema.RAW_DIR / cell.cell_id
    cell_dir.mkdir(parents=True, exist_ok=True)
    argv = locust_argv(cell, scenario, server.url, cell_dir)
    stdout_path = cell_dir / schema.LOCUST_STDOUT
    (cell_dir / "locust.argv.json").write_text(json.dumps(argv, indent=1))
    proc = start_process(argv, stdout_path, pinning.generator_cpus)
    deadline = cell.warmup_s + cell.duration_s + SPAWN_ALLOWANCE_S + STOP_GRACE_S
    try:
        with Sampler(
            {"server": server.pid, "generator": proc.pid}, cell_dir / schema.RESOURCES_FILE
        ):
            try:
                proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                raise CellError(f"locust did not finish within {deadline:.0f} s") from None
    finally:
        stop_process(proc)
    latency_path = cell_dir / schema.LATENCY_FILE
    if proc.returncode != 0:
        raise CellError(f"locust exited with status {proc.returncode}; see {stdout_path}")
    if not latency_path.exists():
        raise CellError(f"locust wrote no {schema.LATENCY_FILE}; see {stdout_path}")
    record: dict[str, Any] = json.loads(latency_path.read_text())
    if not record.get("complete"):
        raise CellError(f"the measurement window did not complete; see {stdout_path}")
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
        pinning: Pinning,
        progress: Progress,
    ) -> None:
        self.run_dir = run_dir
        self.manifest = manifest
        self.records = records
        self.scenarios = scenarios
        self.targets = targets
        self.pinning = pinning
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
        self.save()
        for (scenario_name, target_name), group in groups.items():
            self.run_group(self.scenarios[scenario_name], self.targets[target_name], group)

    def run_group(self, scenario: Scenario, target: Target, group: list[CellRecord]) -> None:
        log = self.run_dir / schema.RAW_DIR / f"server__{scenario.name}__{target.name}.log"
        try:
            with serve(target, log, self.pinning.server_cpus) as server:
                for record in group:
                    if not server.alive():
                        raise ServerError(f"target {target.name} died; see its log {log}")
                    self.run_one(record, scenario, server)
        except ServerError as exc:
            for record in group:
                if record.status == schema.STATUS_PENDING:
                    self.finish(record, schema.STATUS_FAILED, str(exc))
            self.progress(f"error: {exc}")

    def run_one(self, record: CellRecord, scenario: Scenario, server: RunningServer) -> None:
        cell = record.cell
        load = f"{cell.users} users"
        trial = f", trial {cell.trial}" if cell.trial > 1 or self.has_trials() else ""
        self.progress(
            f"[{self.done + 1}/{self.total}] {cell.scenario} x {cell.target} x {load}{trial}"
            f" ({cell.warmup_s:g}+{cell.duration_s:g} s){self.eta()}"
        )
        record.started_at = now_iso()
        try:
            result = run_cell(cell, scenario, server, self.run_dir, self.pinning)
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
    from hdrh.histogram import HdrHistogram

    successes = int(result.get("successes", 0))
    failures = int(result.get("failures", 0))
    rps = successes / float(result["duration_s"])
    text = f"{rps:,.1f} rps, {failures} failures"
    if successes:
        histogram = HdrHistogram.decode(result["histogram"])
        p50 = histogram.get_value_at_percentile(50) / 1000
        p99 = histogram.get_value_at_percentile(99) / 1000
        text += f", p50 {p50:,.1f} ms, p99 {p99:,.1f} ms"
    return text
