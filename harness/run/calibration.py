"""The load generator's own ceiling: requests/s it drives against the cheapest route.

Runs CALIBRATION_USERS closed users with no think time on ``/health`` of the fastest target
in the run, with the same pinning as every cell, through the same sweep machinery as the
cells (one locust process, one stage per run). The measurement is repeated until the last
two runs agree within STABLE_WITHIN (at least MIN_RUNS, at most MAX_RUNS runs): the ceiling
is the median of the runs and its spread, (max - min) / median, says how far to trust it.
If the server's CPU was the limit instead, the ceiling is only a lower bound and the note
says so.

A run with HTTP/2 scenarios calibrates their user too (``harness.loadgen.h2``, httpx: several
times locust's FastHttpUser's CPU per request), with the same number of requests in flight
(users x streams), on an h2c target of the run; manifest ``calibration["h2"]``. Their cells
are judged against that ceiling, not FastHttpUser's.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from harness import schema
from harness.loadgen import CALIBRATION_FILE, CALIBRATION_H2_USER, CALIBRATION_USER
from harness.loadgen.link import Link
from harness.loadgen.stages import write_go
from harness.run.external import attach, is_external, sampled_roles
from harness.run.runner import CellError, CellSettings, Generator, Progress, run_stage
from harness.run.sampler import Sampler, mean_cpu, read_rows
from harness.run.servers import serve
from harness.schema import Calibration, Cell
from targets.registry import Target

CALIBRATION_USERS = 64
CALIBRATION_TARGETS = ("fastapi-uvicorn",)  # preferred: the fastest target on /health
H2_CALIBRATION_TARGETS = ("fastapi-granian-h2c",)  # preferred for the HTTP/2 user (h2c)
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


def calibration_cells(
    target: Target, run_dir: Path, folder_name: str = "calibration"
) -> list[tuple[Cell, Path]]:
    """Every run the calibration may take, as stages of one locust process."""
    folder = run_dir / schema.RAW_DIR / folder_name
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


@dataclass(frozen=True)
class Client:
    """A load-generating client to calibrate: its locust user, how many users and what link
    (``harness.loadgen.link``) they use."""

    name: str  # "fasthttp" (locust's FastHttpUser) or "httpx" (harness.loadgen.h2)
    user: str  # the user class in CALIBRATION_FILE
    users: int
    folder: str  # raw/<folder>/run<N>
    streams: int = 1
    http: str = "1.1"


FAST_HTTP = Client("fasthttp", CALIBRATION_USER, CALIBRATION_USERS, "calibration")


def h2_client(streams: int) -> Client:
    """The HTTP/2 user (httpx) with ``streams`` in flight per user: CALIBRATION_USERS
    requests in flight in all, as for FastHttpUser."""
    streams = max(1, streams)
    users = max(1, CALIBRATION_USERS // streams)
    return Client("httpx", CALIBRATION_H2_USER, users, "calibration_h2", streams, "2")


def _reachable(target: Target) -> bool:
    """Whether the calibration can use it: plain, or an https --url (its own CA); the TLS rows
    gatebench starts are served with the run's certificate, which the calibration does not
    make."""
    return not target.tls or is_external(target)


def h2_target(targets: list[Target]) -> Target | None:
    """The target to calibrate the HTTP/2 user on: an h2c one (no TLS), granian first (an https
    --url speaking HTTP/2: itself)."""
    h2c = [t for t in targets if t.http == "2" and _reachable(t)]
    return next((t for t in h2c if t.name in H2_CALIBRATION_TARGETS), h2c[0] if h2c else None)


def calibrate(
    targets: list[Target],
    run_dir: Path,
    settings: CellSettings,
    progress: Progress,
    h2_streams: int | None = None,
) -> Calibration:
    """The generator's ceiling with FastHttpUser; with ``h2_streams`` (the run has HTTP/2
    scenarios), also the HTTP/2 user's, under "h2" (on an h2c target of the run, or over
    HTTP/1.1 on the FastHttpUser's target when the run has none)."""
    plain = [t for t in targets if t.http == "1.1" and _reachable(t)]  # FastHttpUser's
    target = next((t for t in plain if t.name in CALIBRATION_TARGETS), plain[0] if plain else None)
    h2: Calibration | None = None
    if h2_streams is not None or target is None:
        client = h2_client(h2_streams or 1)
        on = h2_target(targets)
        if on is None:  # no h2c target: the HTTP/2 user speaks HTTP/1.1 to a plain one
            if target is None:
                raise CellError("no target of the run to calibrate on: every one serves TLS")
            on, client = target, replace(client, http="1.1")
        h2 = measure(on, run_dir, settings, progress, client)
        h2["streams"], h2["http"] = client.streams, client.http
    if target is None:  # HTTP/2 targets only: no cell uses FastHttpUser
        assert h2 is not None
        return {**h2, "h2": h2}
    result = measure(target, run_dir, settings, progress, FAST_HTTP)
    if h2 is not None:
        result["h2"] = h2
    return result


def measure(
    target: Target, run_dir: Path, settings: CellSettings, progress: Progress, client: Client
) -> Calibration:
    """One client's ceiling: runs on /health until two agree (see the module docstring)."""
    cells = calibration_cells(target, run_dir, client.folder)
    what = f"{client.users} users" + (f" x {client.streams} streams" if client.streams > 1 else "")
    progress(
        f"calibrating the load generator ({client.name}, HTTP/{client.http}): {what} on "
        f"{target.name} /health ({MIN_RUNS} to {MAX_RUNS} runs of {DURATION_S:g} s, until two "
        f"agree within {STABLE_WITHIN:.0%})"
    )
    plain = CellSettings(settings.pinning)
    cells = [(replace(cell, users=client.users), folder) for cell, folder in cells]
    generator = Generator(CALIBRATION_FILE, (client.user,), cells, plain)
    runs_rps: list[float] = []
    generator_cpus: list[float] = []
    server_cpus: list[float] = []
    try:
        log = run_dir / schema.RAW_DIR / f"server__{client.folder}.log"
        with (
            attach(target)  # run --url: its /health, at its URL
            if is_external(target)
            else serve(target, log, settings.pinning.server_cpus)
        ) as server:
            sampler = Sampler(sampled_roles(server, generator.pid))
            with sampler:
                link = Link(http=client.http, ca_pem=server.ca_pem, streams=client.streams)
                for index, (cell, cell_dir) in enumerate(cells):
                    result = run_stage(
                        cell, cell_dir, server, generator, sampler, plain, link.to_dict()
                    )
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
        f"    generator ceiling ({client.name}) {rps:,.0f} rps (median of {len(runs_rps)} runs: "
        f"{' / '.join(f'{r:,.0f}' for r in runs_rps)}; spread {spread_text}) ({note})"
    )
    return {
        "target": target.name, "route": "/health", "users": client.users,
        "duration_s": DURATION_S, "rps": round(rps, 1),
        "runs_rps": [round(r, 1) for r in runs_rps],
        "spread": None if runs_spread is None else round(runs_spread, 4),
        "generator_cpu_pct": generator_cpu, "server_cpu_pct": server_cpu, "note": note,
    }  # fmt: skip
