"""The load generator's processes: one locust process, or a locust master and its workers.

``Generator`` starts what runs one sweep's plan (``harness.loadgen.stages``):

- one generator (the default): a single ``locust --headless`` process, pinned to the generator
  CPUs, running every stage itself;
- several (``--generators N``): locust's own distributed mode. A ``--master`` process runs the
  plan and N ``--worker`` processes, pinned to the generator CPUs round-robin, make the
  requests; each worker records its share exactly and the master adds the records up
  (``harness.loadgen.extension``, ``harness.loadgen.merge``);
- workers on other hosts (``--generators-external M``): the master also listens on
  ``--master-bind`` (default every address, port 5557) and waits for M workers started there
  with ``python -m harness worker --master HOST[:PORT]`` (``run_worker``). Such a worker
  downloads the sweep's scenario and the extension from the master (locust's ``-f -``), so
  both hosts run the same code; it needs gatebench installed (the same checkout).

The master writes a ready file once every worker has joined (``read_ready``); the runner waits
for it (``Generator.wait_ready``) before the first go, with a line saying how to join when
workers are external.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import schema
from harness.loadgen import EXTENSION_FILE
from harness.loadgen.stages import PLAN_FILE, Stage, read_ready, write_plan
from harness.run.cpus import Pinning
from harness.run.servers import accepts, free_port, pinned, start_process, stop_process
from harness.run.stall import StallPlan
from harness.schema import Cell
from harness.units import UsageError

LOCAL_HOST = "127.0.0.1"
DEFAULT_MASTER_PORT = 5557  # locust's own default
LOCAL_JOIN_S = 60  # local workers have this long to join their master
EXTERNAL_JOIN_S = 600  # workers on other hosts, this long (someone has to start them)
MASTER_EXIT_S = 10.0  # `harness worker`: a finished master closes its port within this

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GeneratorLayout:
    """How many locust processes make the requests, and where."""

    local: int = 1  # worker processes on this machine (1 without external: no master)
    external: int = 0  # workers that join from other hosts
    bind: str = LOCAL_HOST  # the master's address (external workers connect to it)
    port: int = DEFAULT_MASTER_PORT  # ... and port (a free one when all workers are local)

    @property
    def distributed(self) -> bool:
        return self.local > 1 or self.external > 0

    @property
    def workers(self) -> int:
        return self.local + self.external

    def to_dict(self) -> dict[str, object]:
        return {
            "local": self.local,
            "external": self.external,
            "bind": self.bind if self.external else None,
            "port": self.port if self.external else None,
        }


def parse_master(value: str, option: str = "--master") -> tuple[str, int]:
    """HOST[:PORT] (port 5557 when left out); UsageError naming the option otherwise."""
    host, _, port_text = value.rpartition(":") if ":" in value else (value, "", "")
    if not host:
        raise UsageError(f"{option}: expected HOST[:PORT], got {value!r}")
    if not port_text:
        return host, DEFAULT_MASTER_PORT
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"{option}: port must be a number, got {port_text!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"{option}: port {port} is outside 1-65535")
    return host, port


@dataclass(frozen=True)
class CellSettings:
    """Run-wide settings every cell shares."""

    pinning: Pinning
    arrivals: str = "poisson"
    stall: StallPlan | None = None
    latency_log: bool = False
    generators: GeneratorLayout = GeneratorLayout()


def to_stage(cell: Cell, cell_dir: Path, settings: CellSettings) -> Stage:
    return Stage(
        cell_id=cell.cell_id,
        out_dir=str(cell_dir),
        load_model=cell.load_model,
        users=cell.users,
        rate=cell.rate,
        warmup_s=cell.warmup_s,
        duration_s=cell.duration_s,
        arrivals=settings.arrivals,
        seed=cell.trial,
        log=settings.latency_log,
    )


class Generator:
    """The locust process(es) running a sweep of cells, each when the runner says go."""

    def __init__(
        self,
        locustfile: Path,
        user_classes: tuple[str, ...],
        cells: list[tuple[Cell, Path]],
        settings: CellSettings,
        progress: Progress | None = None,
    ) -> None:
        self.layout = settings.generators
        self.progress = progress
        cpus = settings.pinning.generator_cpus
        first_dir = self.plan_dir = cells[0][1]
        first_dir.mkdir(parents=True, exist_ok=True)
        plan = write_plan(first_dir / PLAN_FILE, [to_stage(c, d, settings) for c, d in cells])
        self.argv = [
            sys.executable, "-m", "locust",
            "-f", f"{locustfile},{EXTENSION_FILE}",
            "--headless",
            "--users", "0",  # the extension starts each cell's users when it gets the go
            "--spawn-rate", "1",
            "--stop-timeout", "0",
            "--only-summary",
            "--exit-code-on-error", "0",  # failures are counted, not fatal
            "--loglevel", "WARNING",
            "--gatebench-plan", str(plan),
            *user_classes,  # naming them keeps the open-load driver out of closed load
        ]  # fmt: skip
        self.stderr_path = first_dir / schema.LOCUST_STDERR
        self.workers: list[subprocess.Popen[bytes]] = []
        self.ready = not self.layout.distributed
        if not self.layout.distributed:
            self.proc = start_process(
                self.argv, first_dir / schema.LOCUST_STDOUT, cpus, None, self.stderr_path
            )
            return
        layout = self.layout
        port = layout.port if layout.external else free_port(LOCAL_HOST)
        self.argv += [
            "--master",
            "--master-bind-host", layout.bind if layout.external else LOCAL_HOST,
            "--master-bind-port", str(port),
            "--expect-workers", str(layout.workers),
            "--expect-workers-max-wait",
            str(EXTERNAL_JOIN_S if layout.external else LOCAL_JOIN_S),
        ]  # fmt: skip
        self.proc = start_process(
            self.argv, first_dir / schema.LOCUST_STDOUT, cpus, None, self.stderr_path
        )
        worker_argv = [
            sys.executable, "-m", "locust",
            "-f", f"{locustfile},{EXTENSION_FILE}",
            "--worker", "--master-host", LOCAL_HOST, "--master-port", str(port),
            "--loglevel", "WARNING",
        ]  # fmt: skip
        for index in range(layout.local):
            cpu = [cpus[index % len(cpus)]] if cpus else None
            log = first_dir / f"locust_worker{index + 1}.txt"
            self.workers.append(start_process(worker_argv, log, cpu))
        if layout.external and progress is not None:
            progress(
                f"    waiting for {layout.external} external locust worker(s) to join on port "
                f"{port}; on each host: python -m harness worker --master "
                f"{_reachable_name(layout.bind)}:{port}"
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def procs(self) -> list[subprocess.Popen[bytes]]:
        """Every local locust process: the master (or the only one) and the local workers."""
        return [self.proc, *self.workers]

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self) -> None:
        """Return once every worker has joined the master (at once for one process); raise
        RuntimeError when the master exits first."""
        while not self.ready:
            if read_ready(self.plan_dir) is not None:
                self.ready = True
                if self.layout.external and self.progress is not None:
                    self.progress(f"    all {self.layout.workers} locust workers joined")
                return
            if not self.alive():
                raise RuntimeError(
                    f"the locust master exited (status {self.proc.returncode}) before its "
                    f"{self.layout.workers} workers joined; see {self.stderr_path}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)


def _reachable_name(bind: str) -> str:
    """The name other hosts can reach this master by: its bind address, or this host's name
    when it listens on every address."""
    return socket.gethostname() if bind in ("0.0.0.0", "::", "*") else bind


def run_worker(
    host: str, port: int, cpus: Sequence[int] | None, idle_s: float, progress: Progress
) -> int:
    """``python -m harness worker``: serve the sweeps of a master at host:port, one locust
    worker per sweep (each sweep is a new master), until no master comes for ``idle_s``."""
    argv = [
        sys.executable, "-m", "locust", "-f", "-",  # the master sends scenario and extension
        "--worker", "--master-host", host, "--master-port", str(port), "--loglevel", "WARNING",
    ]  # fmt: skip
    sweeps = 0
    progress(f"gatebench worker: waiting for a locust master at {host}:{port}")
    while True:
        deadline = time.monotonic() + idle_s
        while not accepts(host, port):
            if time.monotonic() > deadline:
                progress(
                    f"gatebench worker: no master at {host}:{port} for {idle_s:.0f} s; "
                    f"served {sweeps} sweep(s), done"
                )
                return 0
            time.sleep(0.5)
        proc = subprocess.Popen(argv, preexec_fn=pinned(cpus), stdin=subprocess.DEVNULL)
        try:
            status = proc.wait()
        except KeyboardInterrupt:
            stop_process(proc)
            raise
        sweeps += 1
        progress(f"gatebench worker: sweep {sweeps} done (locust exit status {status})")
        # The finished master may still be listening for a moment: wait until it is gone, so
        # the next worker joins the next master (bounded: a quick successor is fine too).
        gone_by = time.monotonic() + MASTER_EXIT_S
        while accepts(host, port) and time.monotonic() < gone_by:
            time.sleep(0.1)
