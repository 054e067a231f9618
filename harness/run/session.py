"""One benchmark run from start to end: plan, verify gate, calibration, cells, outputs.

``run_benchmark`` is what ``python -m harness run`` does. Whatever happens (a failed
cell, a target that fails the gate, Ctrl-C) the run folder ends with a saved manifest,
a summary of the finished cells, charts and a report.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

import psutil

from harness import schema
from harness.report.build import build_all, drawing_workers
from harness.run.calibration import calibrate
from harness.run.cpus import Pinning, choose_pinning
from harness.run.external import run_targets
from harness.run.generators import DEFAULT_MASTER_PORT, GeneratorLayout, parse_master
from harness.run.manifest import create_run_dir, new_manifest, now_iso, point_latest
from harness.run.network import link
from harness.run.plan import RunOptions, build_plan, served_cells
from harness.run.profiles import PROFILES
from harness.run.runner import CellError, CellSettings, Progress, Runner
from harness.run.scenarios import Scenario, discover
from harness.run.servers import ServerError, stop_all
from harness.run.services import Services
from harness.run.stall import StallPlan
from harness.run.tls import Certificate, make_certificate
from harness.run.verify import verify_targets
from harness.schema import (
    EXIT_FAILED_CELLS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Cell,
    CellRecord,
    Manifest,
    Timing,
)
from harness.units import UsageError
from targets.registry import Target


def run_benchmark(
    options: RunOptions, argv: list[str], progress: Progress, started: float | None = None
) -> int:
    """Plan, verify, calibrate, run every cell, then write summary, charts and report."""
    profile = PROFILES[options.profile]
    scenarios, broken = discover()
    targets = run_targets(options)
    cells = build_plan(options, profile, scenarios, list(targets), broken)
    cells, left_out = served_cells(cells, scenarios, targets)
    for note in left_out:
        progress(f"gatebench: {note}")
    pinning = choose_pinning(options.server_cpus, options.generator_cpus)
    # --url: the link's round trip measured and any --net-delay added before the run folder
    # exists (a refusal leaves nothing behind), removed when the run ends, however it ends.
    with link(options.url, options.net_delay_ms, progress) as network:
        run_dir = create_run_dir(options.out)
        with RunLock(run_dir):
            if (run_dir / schema.MANIFEST_FILE).exists():  # another run got here first
                raise UsageError(f"--out {run_dir}: already holds a run (manifest.json)")
            manifest = new_manifest(run_dir, argv)
            used_scenarios = sorted({c.scenario for c in cells})
            used_targets = list(dict.fromkeys(c.target for c in cells))
            manifest["options"] = options.to_dict()
            manifest["profile"] = profile.to_dict()
            manifest["pinning"] = pinning.to_dict()
            manifest["generators"] = layout(options).to_dict()
            manifest["network"] = network
            manifest["scenarios"] = {name: scenarios[name].to_dict() for name in used_scenarios}
            manifest["targets"] = {name: targets[name].settings() for name in used_targets}
            if not pinning.applied:
                manifest["warnings"].append(f"CPU pinning not applied: {pinning.note}")
            manifest["warnings"] += left_out
            stall = stall_plan(options)
            manifest["options"]["stall"] = (
                {"at_s": stall.at_s, "for_s": stall.for_s} if stall is not None else None
            )
            records = [CellRecord(cell) for cell in cells]
            progress(
                f"gatebench: {len(cells)} cells ({len(used_scenarios)} scenarios x "
                f"{len(used_targets)} targets) -> {run_dir}"
            )
            return execute(
                run_dir, manifest, records, scenarios, options, pinning, progress, started=started
            )


def resume_benchmark(
    run_dir: Path, argv: list[str], progress: Progress, started: float | None = None
) -> int:
    """Run the cells of an earlier run that never finished, into the same folder."""
    manifest_path = run_dir / schema.MANIFEST_FILE
    if not manifest_path.is_file():
        raise UsageError(f"--resume {run_dir}: not a results folder (no {schema.MANIFEST_FILE})")
    with RunLock(run_dir):
        manifest = cast(Manifest, json.loads(manifest_path.read_text()))
        options = options_from_manifest(manifest, run_dir)
        scenarios, broken = discover()
        for name, recorded in manifest.get("scenarios", {}).items():
            scenario = scenarios.get(name)
            if scenario is None:
                raise UsageError(f"--resume: scenario {name} is gone: {broken.get(name, '')}")
            if scenario.sha256 != recorded.get("sha256"):
                raise UsageError(
                    f"--resume: {scenario.path} changed since the run started; its cells "
                    "would not be comparable. Start a new run instead."
                )
        records = [record_from_manifest(entry) for entry in manifest.get("cells", [])]
        redo = [r for r in records if r.status in RESUMABLE]
        for record in redo:
            record.status, record.error, record.started_at, record.finished_at = (
                schema.STATUS_PENDING, None, None, None
            )  # fmt: skip
            shutil.rmtree(run_dir / schema.RAW_DIR / record.cell.cell_id, ignore_errors=True)
        manifest.setdefault("resumed", []).append(
            {"at": now_iso(), "argv": argv, "cells": len(redo)}
        )
        manifest["status"] = "running"
        pinning = Pinning(**_pinning_fields(manifest.get("pinning", {})))
        progress(f"gatebench: resuming {run_dir}: {len(redo)} of {len(records)} cells to run")
        with link(options.url, options.net_delay_ms, progress) as network:
            if network is not None:
                manifest.setdefault("resumed", [])[-1]["network"] = network
            return execute(
                run_dir, manifest, records, scenarios, options, pinning, progress,
                calibrate_again="calibration" not in manifest, started=started,
            )  # fmt: skip


def execute(
    run_dir: Path,
    manifest: Manifest,
    records: list[CellRecord],
    scenarios: dict[str, Scenario],
    options: RunOptions,
    pinning: Pinning,
    progress: Progress,
    calibrate_again: bool = True,
    started: float | None = None,
) -> int:
    """Verify, calibrate and run the pending cells; always save and build the outputs."""
    settings = CellSettings(
        pinning, options.arrivals, stall_plan(options), options.latency_log, layout(options)
    )
    targets = run_targets(options)
    to_run = [r for r in records if r.status == schema.STATUS_PENDING]
    needs = sorted({n for r in to_run if (n := scenarios[r.cell.scenario].needs)})
    services = (
        Services(run_dir, pinning.server_cpus, pinning.generator_cpus, progress) if needs else None
    )
    # One certificate per run, for every cell served over TLS (a target's row, or a scenario
    # asking for it); the locust users trust only its CA.
    certificate = None
    served = [(targets[r.cell.target], scenarios[r.cell.scenario]) for r in to_run]
    if any(t.tls_on_demand and (t.tls or s.tls) for t, s in served):  # --url: its own
        certificate = make_certificate(run_dir / schema.RAW_DIR / "tls")
        manifest["tls"] = certificate.to_dict(base=run_dir)
    runner = Runner(
        run_dir, manifest, records, scenarios, targets, settings, progress=progress,
        services=services, certificate=certificate,
    )  # fmt: skip
    interrupted = False
    started = time.monotonic()
    try:
        runner.save()
        for service in needs:  # before the verify gate, which checks the routes that use them
            assert services is not None
            users = ", ".join(needing(scenarios, to_run, service))
            progress(f"starting the {service} (for scenarios {users})")
            services.ensure(service)
        pending = {r.cell.target for r in records if r.status == schema.STATUS_PENDING}
        chosen = [targets[name] for name in dict.fromkeys(r.cell.target for r in records)]
        chosen = [t for t in chosen if t.name in pending]
        if options.verify and chosen:
            gate(chosen, run_dir, records, manifest, pinning, progress, services, certificate)
        verified = manifest.get("verify", {})
        runnable = [t for t in chosen if verified.get(t.name, {}).get("passed", True)]
        if options.calibrate and runnable and calibrate_again:
            try:
                manifest["calibration"] = calibrate(
                    runnable, run_dir, settings, progress, h2_calibration(to_run, scenarios)
                )
            except (CellError, ServerError) as exc:
                manifest["calibration"] = None
                manifest["warnings"].append(f"generator calibration failed: {exc}")
                progress(f"    calibration failed: {exc}")
        runner.run()
    except KeyboardInterrupt:
        interrupted = True
        stop_all()  # a child started just as the interrupt landed has no owner to stop it
        # Only the cell running when the signal came is "interrupted" (Runner.run_one marks
        # it); the cells that never started stay "pending", and --resume runs both.
        progress("gatebench: interrupted; saving the finished cells")
    finally:
        if services is not None:  # stopped (and removed) however the run ends
            services.close()
            manifest["services"] = services.to_dict()
    manifest["status"] = (
        "interrupted"
        if interrupted
        else ("failed" if any(r.status != schema.STATUS_OK for r in records) else "complete")
    )
    manifest["finished_at"] = now_iso()
    manifest["elapsed_s"] = round(time.monotonic() - started, 1)
    runner.save()
    build_all(run_dir, drawing_workers())
    point_latest(run_dir)
    timing = manifest["timing"] = run_timing(to_run, started)
    runner.save()
    ok = sum(r.status == schema.STATUS_OK for r in records)
    progress(
        f"gatebench: {ok}/{len(records)} cells ok in {timing['elapsed_s']:.0f} s; "
        f"report: {run_dir / schema.REPORT_MD}"
    )
    progress(
        f"gatebench: {timing['measured_s']:.0f} s of warm-ups and measurement windows, "
        f"{timing['overhead_s']:.0f} s harness overhead ({timing['overhead_pct']:.1f}% of the "
        "measured time: servers, locust, verify gate, calibration, report)"
    )
    if interrupted:
        progress(f"gatebench: to finish it later: python -m harness run --resume {run_dir}")
        return EXIT_INTERRUPTED
    return EXIT_OK if ok == len(records) else EXIT_FAILED_CELLS


RESUMABLE = (schema.STATUS_PENDING, schema.STATUS_INTERRUPTED)


def run_timing(ran: list[CellRecord], started: float | None) -> Timing:
    """This command's wall time against the windows it measured.

    ``started`` is the ``time.monotonic()`` when the command began (``harness.cli.main``);
    without one, the process's start."""
    if started is not None:
        elapsed = time.monotonic() - started
    else:
        elapsed = time.time() - psutil.Process().create_time()
    measured = sum(
        r.cell.warmup_s + r.cell.duration_s
        for r in ran
        if r.started_at is not None and r.status in (schema.STATUS_OK, schema.STATUS_FAILED)
    )
    overhead = max(elapsed - measured, 0.0)
    return {
        "elapsed_s": round(elapsed, 1),
        "measured_s": round(measured, 1),
        "overhead_s": round(overhead, 1),
        "overhead_pct": round(100 * overhead / measured, 1) if measured else 0.0,
    }


def h2_calibration(records: list[CellRecord], scenarios: dict[str, Scenario]) -> int | None:
    """Streams per user to calibrate the HTTP/2 user with (the most any of these cells'
    scenarios asks for); None when no scenario of them has HTTP/2 users."""
    streams = [
        scenarios[r.cell.scenario].streams
        for r in records
        if "2" in scenarios[r.cell.scenario].http
    ]
    return max(streams) if streams else None


def needing(scenarios: dict[str, Scenario], records: list[CellRecord], service: str) -> list[str]:
    """The scenarios of these cells that need ``service``, in name order."""
    return sorted({r.cell.scenario for r in records if scenarios[r.cell.scenario].needs == service})


def layout(options: RunOptions) -> GeneratorLayout:
    """The load generator's processes the options ask for (harness.run.generators)."""
    external = options.generators_external
    local = options.generators if options.generators is not None else (0 if external else 1)
    if not external:
        return GeneratorLayout(local=local)
    host, port = parse_master(options.master_bind or f"0.0.0.0:{DEFAULT_MASTER_PORT}")
    return GeneratorLayout(local=local, external=external, bind=host, port=port)


def stall_plan(options: RunOptions) -> StallPlan | None:
    if options.stall_at_s is None or options.stall_for_s is None:
        return None
    return StallPlan(options.stall_at_s, options.stall_for_s)


def options_from_manifest(manifest: Manifest, run_dir: Path) -> RunOptions:
    recorded = dict(manifest.get("options") or {})
    known = {f.name for f in fields(RunOptions)}
    try:
        values: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in recorded.items()
            if key in known
        }
        values["overrides"] = tuple(tuple(item) for item in values.get("overrides", ()))
        return RunOptions(**values)
    except TypeError as exc:
        raise UsageError(f"--resume {run_dir}: manifest options unreadable: {exc}") from None


def record_from_manifest(entry: dict[str, Any]) -> CellRecord:
    cell = Cell(**{f.name: entry[f.name] for f in fields(Cell) if f.name in entry})
    return CellRecord(
        cell,
        status=entry.get("status", schema.STATUS_PENDING),
        started_at=entry.get("started_at"),
        finished_at=entry.get("finished_at"),
        error=entry.get("error"),
        warnings=list(entry.get("warnings", [])),
    )


def _pinning_fields(recorded: dict[str, Any]) -> dict[str, Any]:
    server, generator = recorded.get("server_cpus"), recorded.get("generator_cpus")
    return {
        "server_cpus": tuple(server) if server else None,
        "generator_cpus": tuple(generator) if generator else None,
        "applied": bool(recorded.get("applied")),
        "note": recorded.get("note", ""),
    }


class RunLock:
    """An exclusive lock on a run folder: two processes never write into the same run."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self.handle: Any = None

    def __enter__(self) -> RunLock:
        self.handle = open(self.path, "a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise UsageError(
                f"{self.path.parent}: another gatebench run is writing there"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        self.path.unlink(missing_ok=True)


def gate(
    chosen: list[Target],
    run_dir: Path,
    records: list[CellRecord],
    manifest: Manifest,
    pinning: Pinning,
    progress: Progress,
    services: Services | None = None,
    certificate: Certificate | None = None,
) -> None:
    """The verify gate: a target that does not answer like the others is not measured. With
    the real-I/O services running, their routes are checked too. Each target is checked in
    its own protocol (HTTP/2, TLS with the run's certificate)."""
    progress(f"verifying {len(chosen)} targets (same answers, /io?ms=50 takes 50 ms)")
    environment = services.environment if services is not None else None
    results = verify_targets(
        chosen, run_dir / schema.RAW_DIR, pinning.server_cpus, environment=environment,
        tls=certificate,
    )  # fmt: skip
    manifest.setdefault("verify", {}).update({n: r.to_dict() for n, r in results.items()})
    for name, result in results.items():
        if result.passed:
            continue
        reason = f"target {name} failed the verify gate: " + "; ".join(result.problems)
        progress(f"    {reason}")
        manifest["warnings"].append(reason)
        for record in records:
            if record.cell.target == name and record.status == schema.STATUS_PENDING:
                record.status = schema.STATUS_SKIPPED
                record.error = reason
