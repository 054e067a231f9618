"""Runs a plan: one locust process per sweep, in rounds of trials, fresh servers.

The cells of one trial of a scenario (one load model at a time) form a sweep: a single locust
process, or a locust master and its workers (``harness.run.generators.Generator``), runs them
all as stages (``harness.loadgen.stages``), target after target, pinned to the generator CPUs,
with ``harness.loadgen.extension`` loaded next to the
scenario for exact latencies and the warm-up/measurement windows. Trials run in rounds
(``plan_sweeps``): every cell of trial 1, then every cell of trial 2, ..., so drift over the
run hits every target alike. Each target gets a fresh server for its cells of a sweep (started
while locust boots), never shared across trials; a scenario whose users hold long-lived
connections gets a fresh server for every cell, so each cell's memory baseline is taken on a
server holding no connections from an earlier cell. Before each cell the sampler notes the
server's memory and the runner gives locust the go for that cell. Raw files go to
``raw/<cell_id>/``; the manifest is saved after each cell, and its "order" lists the cells as
they started. A server that dies is started again; a locust process that dies fails its cell
and a new one takes the sweep's remaining cells.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Any

from harness import schema
from harness.format import load_text
from harness.histogram import latency_stats
from harness.loadgen import OPEN_USER_CLASS
from harness.loadgen.link import Link
from harness.loadgen.stages import write_go
from harness.run.external import Server, attach, is_external, sampled_roles
from harness.run.generators import CellSettings, Generator
from harness.run.manifest import now_iso, save_manifest
from harness.run.sampler import Sampler, write_rows
from harness.run.scenarios import Scenario
from harness.run.servers import (
    ServerError,
    serve,
    stop_in_background,
    wait_stopped,
)
from harness.run.services import Services
from harness.run.stall import Staller
from harness.run.tls import Certificate
from harness.schema import Cell, CellRecord, Manifest
from targets.registry import Target

SPAWN_ALLOWANCE_S = 30.0  # a cell's users may take this long to spawn...
STOP_GRACE_S = 30.0  # ... and its files this long to be written, before the cell is given up
POLL_S = 0.01
MAX_RESTARTS = 3  # a target that dies more often within one group is given up
# Targets whose slots are workers or threads: the sampler counts each server process's
# connections, from which the analysis works out how many slots were in use.
COUNTED_CONNECTIONS = ("threads", "process")

Progress = Callable[[str], None]
SweepKey = tuple[int, str, str]  # trial, scenario, load model


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


def stage_link(scenario: Scenario, server: Server) -> dict[str, Any]:
    """How the scenario's users reach ``server`` (``harness.loadgen.link.Link``): the target's
    HTTP version, the run's CA when it serves TLS, the scenario's connection policy and
    streams."""
    return Link(
        http=server.target.http,
        ca_pem=server.ca_pem,
        connection=scenario.connection,
        streams=scenario.streams,
    ).to_dict()


class CellError(RuntimeError):
    """A cell that ran but cannot be trusted or produced nothing."""


def run_stage(
    cell: Cell, cell_dir: Path, server: Server, generator: Generator, sampler: Sampler,
    settings: CellSettings, link: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Let the generator run one cell against a ready server, reached as ``link`` says (the
    go file's, ``harness.loadgen.link``); its latency record (or raise)."""
    latency_path = cell_dir / schema.LATENCY_FILE
    sampler.mark()  # the server's memory before this cell's load
    allowance_s = cell.warmup_s + cell.duration_s + SPAWN_ALLOWANCE_S + STOP_GRACE_S
    stall = (  # an external server (no pid) is never paused: --url refuses --stall-at
        Staller(settings.stall, server.pid, cell_dir)
        if settings.stall and server.pid is not None
        else nullcontext()
    )
    try:
        with stall:
            cell_dir.mkdir(parents=True, exist_ok=True)
            (cell_dir / "locust.argv.json").write_text(json.dumps(generator.argv, indent=1))
            try:
                generator.wait_ready()  # several generators: every worker has joined
            except RuntimeError as exc:
                raise CellError(str(exc)) from None
            deadline = time.monotonic() + allowance_s
            write_go(cell_dir, server.url, link)
            while not latency_path.exists():
                if not generator.alive() and not latency_path.exists():
                    raise CellError(
                        f"locust exited with status {generator.proc.returncode}; "
                        f"see {generator.stderr_path}"
                    )
                if time.monotonic() > deadline:
                    generator.stop()
                    raise CellError(f"locust did not finish the cell within {allowance_s:.0f} s")
                time.sleep(POLL_S)
    finally:
        write_rows(cell_dir / schema.RESOURCES_FILE, sampler.take())
    record: dict[str, Any] = json.loads(latency_path.read_text())
    if not record.get("complete"):
        why = record.get("error") or "the measurement window did not complete"
        raise CellError(f"{why}; see {generator.stderr_path}")
    if not server.alive():
        raise CellError(f"target server died during the cell; see {server.log_path or server.url}")
    return record


class Runner:
    def __init__(
        self,
        run_dir: Path,
        manifest: Manifest,
        records: list[CellRecord],
        scenarios: dict[str, Scenario],
        targets: dict[str, Target],
        settings: CellSettings,
        progress: Progress,
        services: Services | None = None,
        certificate: Certificate | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.certificate = certificate  # the run's TLS certificate (None: no cell serves TLS)
        self.services = services  # the database and upstream some scenarios need
        self.manifest = manifest
        self.records = records
        self.scenarios = scenarios
        self.targets = targets
        self.settings = settings
        self.progress = progress
        self.done = 0
        self.total = 0
        self.started = time.monotonic()
        self.generator: Generator | None = None

    def save(self) -> None:
        self.manifest["cells"] = [r.to_dict() for r in self.records]
        save_manifest(self.run_dir, self.manifest)

    def cell_dir(self, cell: Cell) -> Path:
        return self.run_dir / schema.RAW_DIR / cell.cell_id

    def run(self) -> None:
        """Run every pending cell: in rounds of trials, one sweep per scenario and load model,
        target by target."""
        sweeps = plan_sweeps(self.records)
        self.total = sum(len(g) for t in sweeps.values() for g in t.values())
        self.started = time.monotonic()  # the ETA counts cells only, not verify/calibration
        self.manifest.setdefault("order", [])
        self.save()
        for chain in chained_sweeps(list(sweeps)):
            _, scenario_name, load_model = chain[0]
            scenario = self.scenarios[scenario_name]
            locustfile = stage_scenario(scenario, self.run_dir)
            classes = scenario.user_classes if load_model == "closed" else (OPEN_USER_CLASS,)
            # One locust process for consecutive sweeps of one scenario and load model (the
            # trials of a one-scenario run); servers stay one per trial and target.
            queue = [r for key in chain for group in sweeps[key].values() for r in group]
            try:
                for key in chain:
                    for target_name, group in sweeps[key].items():
                        self.run_group(scenario, self.targets[target_name], group, queue,
                                       locustfile, classes, key[0])  # fmt: skip
            finally:
                if self.generator is not None:  # done with its plan, it is exiting by itself
                    for proc in self.generator.procs:  # the master and its local workers
                        stop_in_background(proc)
                    self.generator = None
        wait_stopped()

    def ensure_generator(
        self, queue: list[CellRecord], locustfile: Path, classes: tuple[str, ...]
    ) -> Generator:
        """The sweep's locust process, started (for every cell still queued) if there is none."""
        if self.generator is None or not self.generator.alive():
            if self.generator is not None:
                self.generator.stop()
            cells = [(r.cell, self.cell_dir(r.cell)) for r in queue]
            self.generator = Generator(locustfile, classes, cells, self.settings, self.progress)
        return self.generator

    def server_log(self, scenario: Scenario, target: Target, trial: int) -> Path:
        suffix = f"__t{trial}" if self.has_trials() else ""
        return self.run_dir / schema.RAW_DIR / f"server__{scenario.name}__{target.name}{suffix}.log"

    def run_group(
        self, scenario: Scenario, target: Target, group: list[CellRecord],
        queue: list[CellRecord], locustfile: Path, classes: tuple[str, ...], trial: int = 1,
    ) -> None:  # fmt: skip
        """Run one target's cells of a sweep on a fresh server (one per cell where the users
        hold connections); a server that dies is started again."""
        log = self.server_log(scenario, target, trial)
        batches = [[r] for r in group] if scenario.holds_connections else [list(group)]
        restarts = deaths = 0  # the server's, the service's
        needs = scenario.needs
        for index, pending in enumerate(batches):
            later = [r for batch in batches[index + 1 :] for r in batch]
            while pending:
                if needs is not None:  # started, or started again after it died
                    reason = self.needed(needs)
                    if reason:
                        ran = any(r.started_at for r in group)
                        status = schema.STATUS_FAILED if ran else schema.STATUS_SKIPPED
                        self.give_up(pending + later, queue, reason, status)
                        return
                self.ensure_generator(queue, locustfile, classes)  # locust boots with the server
                cpus, env = self.settings.pinning.server_cpus, self.server_environment(target)
                tls = self.certificate if scenario.tls or target.tls else None
                try:
                    with (
                        attach(target)
                        if is_external(target)
                        else serve(target, log, cpus, background_stop=True, env=env, tls=tls)
                    ) as server:
                        wait_stopped()  # the previous server is gone before anything is measured
                        link = stage_link(scenario, server)
                        self.run_cells(server, pending, queue, locustfile, classes, needs, link)
                except ServerError as exc:
                    self.give_up(pending + later, queue, str(exc))
                    return
                if pending and needs is not None and not self.service_alive(needs):
                    # The service died: it and a fresh server (its new address), a few times.
                    deaths += 1
                    if deaths <= MAX_RESTARTS:
                        continue
                    where = self.services.log_path(needs) if self.services else "its log"
                    reason = f"the {needs} died {deaths} times; see {where}"
                    self.give_up(pending + later, queue, reason)
                    return
                if pending:
                    restarts += 1
                    if restarts > MAX_RESTARTS:
                        reason = f"target {target.name} died {restarts} times; see its log {log}"
                        self.give_up(pending + later, queue, reason)
                        return
                    self.progress(f"    target {target.name} died; starting it again (log: {log})")

    def needed(self, service: str) -> str | None:
        """Have the service running; the one-line reason when it cannot be."""
        if self.services is None:
            return f"the {service} is not available in this run"
        return self.services.ensure(service)

    def service_alive(self, service: str) -> bool:
        return self.services is not None and self.services.alive(service)

    def server_environment(self, target: Target) -> dict[str, str] | None:
        """The services' addresses (and the target's pool) for a server this run starts."""
        return None if self.services is None else self.services.environment(target)

    def run_cells(
        self, server: Server, pending: list[CellRecord], queue: list[CellRecord],
        locustfile: Path, classes: tuple[str, ...], needs: str | None = None,
        link: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """The pending cells, one at a time while the server (and the service they need)
        lives, each taken off the queue; a sampler watches the server, the current locust
        process and the service."""
        sampler: Sampler | None = None
        sampled: Generator | None = None
        try:
            while pending and server.alive() and (needs is None or self.service_alive(needs)):
                generator = self.ensure_generator(queue, locustfile, classes)
                if sampler is None or sampled is not generator:
                    if sampler is not None:
                        sampler.__exit__(None, None, None)
                    roles = self.services.roles(needs) if self.services is not None else {}
                    sampler = Sampler(
                        {**sampled_roles(server, generator.pids), **roles},
                        count_connections=server.target.concurrency in COUNTED_CONNECTIONS,
                        port=server.port,
                    )
                    sampler.__enter__()
                    sampled = generator
                record = pending.pop(0)
                queue.remove(record)
                self.run_one(record, server, generator, sampler, needs, link)
        finally:
            if sampler is not None:
                sampler.__exit__(None, None, None)

    def give_up(
        self, pending: list[CellRecord], queue: list[CellRecord], reason: str,
        status: str = schema.STATUS_FAILED,
    ) -> None:  # fmt: skip
        """Fail (or skip) these cells and let the sweep's locust process pass over them."""
        for record in pending:
            self.finish(record, status, reason)
            queue.remove(record)
            cell_dir = self.cell_dir(record.cell)
            cell_dir.mkdir(parents=True, exist_ok=True)
            write_go(cell_dir, None)
        pending.clear()
        self.progress(f"error: {reason}")

    def run_one(
        self, record: CellRecord, server: Server, generator: Generator, sampler: Sampler,
        needs: str | None = None, link: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        cell = record.cell
        load = load_text(cell.load_model, cell.users if cell.load_model == "closed" else cell.rate)
        trial = f", trial {cell.trial}" if cell.trial > 1 or self.has_trials() else ""
        self.progress(
            f"[{self.done + 1}/{self.total}] {cell.scenario} x {cell.target} x {load}{trial}"
            f" ({cell.warmup_s:g}+{cell.duration_s:g} s){self.eta()}"
        )
        record.started_at = now_iso()
        self.manifest.setdefault("order", []).append(cell.cell_id)
        try:
            result = run_stage(
                cell, self.cell_dir(cell), server, generator, sampler, self.settings, link
            )
            if needs is not None and not self.service_alive(needs):
                log = self.services.log_path(needs) if self.services else "its log"
                raise CellError(f"the {needs} died during the cell; see {log}")
        except CellError as exc:
            with interrupts_deferred():
                self.finish(record, schema.STATUS_FAILED, str(exc))
                self.progress(f"    failed: {exc}")
            return
        except BaseException:
            with interrupts_deferred():
                finished = completed_result(self.cell_dir(cell))
                if finished is not None:  # the cell completed just before the signal
                    self.finish(record, schema.STATUS_OK, None)
                    self.progress("    " + describe(finished))
                else:  # only the cell running when the signal came is "interrupted"
                    record.status = schema.STATUS_INTERRUPTED
                    record.finished_at = now_iso()
                    self.save()
            raise
        # A signal now waits until the cell is saved and its result line printed.
        with interrupts_deferred():
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


def completed_result(cell_dir: Path) -> dict[str, Any] | None:
    """The cell's latency record if its measurement window completed, else None."""
    try:
        record: dict[str, Any] = json.loads((cell_dir / schema.LATENCY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("complete") else None


INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then hand them to their handlers.

    The interrupt handler raises KeyboardInterrupt wherever the main thread is; a finished
    cell's bookkeeping (its status saved, its result line printed) must not be cut short.
    Python runs signal handlers in the main thread only, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in INTERRUPT_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python, which cannot be put back; the default.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for held in caught:
            handler = previous[signal.Signals(held)]
            if callable(handler):
                handler(held, None)  # the run's handler raises KeyboardInterrupt
            elif handler != signal.SIG_IGN:
                signal.raise_signal(held)  # the default action


def plan_sweeps(records: list[CellRecord]) -> dict[SweepKey, dict[str, list[CellRecord]]]:
    """The pending cells grouped as they run: sweeps keyed by (trial, scenario, load model),
    in rounds (every sweep of trial 1 before any of trial 2), each split by target; within a
    round, scenarios, load models, targets and load levels keep the plan's order."""
    sweeps: dict[SweepKey, dict[str, list[CellRecord]]] = {}
    pending = [r for r in records if r.status == schema.STATUS_PENDING]
    for record in sorted(pending, key=lambda r: r.cell.trial):  # stable: plan order within
        cell = record.cell
        by_target = sweeps.setdefault((cell.trial, cell.scenario, cell.load_model), {})
        by_target.setdefault(cell.target, []).append(record)
    return sweeps


def chained_sweeps(keys: list[SweepKey]) -> list[list[SweepKey]]:
    """Consecutive sweep keys of the same scenario and load model, together: one locust
    process runs each chain."""
    chains: list[list[SweepKey]] = []
    for key in keys:
        if chains and chains[-1][-1][1:] == key[1:]:
            chains[-1].append(key)
        else:
            chains.append([key])
    return chains


def run_order(records: list[CellRecord]) -> list[str]:
    """The pending cells' ids in the order ``Runner.run`` runs them."""
    return [
        r.cell.cell_id
        for by_target in plan_sweeps(records).values()
        for group in by_target.values()
        for r in group
    ]


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
