"""The results contract: schema version, summary columns and the records that cross modules.

This is the one place that names the columns of ``summary.csv`` and the files of a run
folder. The runner writes them, the analysis modules read them; neither invents a name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NotRequired, TypedDict

# History of SCHEMA_VERSION (manifest.json "schema_version"):
#   1 - first results layout: manifest.json, summary.csv, raw/<cell_id>/, charts/, report.md
#   2 - open-model cells, calibration, verify results, trials statistics and flags: summary
#       columns p99_uncorrected_ms .. stall_for_s appended; manifest "calibration", "verify"
#   3 - one locust process per sweep: raw/<cell_id>/ also holds go.json (and, for a sweep's
#       first cell, sweep.json and locust's stdout/stderr), latency.json its "host"; manifest
#       typed (``Manifest`` below) with "timing" (measured windows vs harness overhead)
#   4 - a roofline per cell: summary columns limiter .. other_cpu_pct appended; resources.csv
#       gains pss_mb, conns, steal_pct and the roles "harness" and "other"; latency.json per
#       second mean latency, whole-cell connect timings, held connections, open-load backlog;
#       manifest "order", calibration "runs_rps"/"spread", verify "io_overhead_ms"
#       - keep-alive measured: summary column connections_per_request appended; latency.json
#       "tcp_connects" (the generator's own) and "tcp_active_opens" (the machine's)
#   5 - several load generators (locust master and workers): summary columns generators,
#       generator_budget_pct, worker_cpu_max_pct appended; latency.json "workers" (each
#       worker's own figures); manifest "generators" and "network" (--url: round trip, delay)
#   6 - real I/O (a PostgreSQL server and an upstream HTTP service started by the harness):
#       summary columns database_cpu_pct, database_rss_mb, upstream_cpu_pct, pool_total
#       appended; resources.csv gains the roles "database" and "upstream" (process trees, like
#       "server"); manifest scenarios[].settings "needs", targets[] "pool"
#   7 - the protocol layer: summary columns tls, connection, streams, client appended;
#       protocol "h2"; manifest "tls" (the run's certificate), calibration "h2" (the HTTP/2
#       user's own ceiling), targets[] "http" and "tls"; go.json "link"
SCHEMA_VERSION = 7

# Never rename or reorder these; add new columns at the end.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "scenario",
    "target",
    "interface",
    "server",
    "framework",
    "load_model",
    "users",
    "rate",
    "trial",
    "duration_s",
    "requests",
    "failures",
    "rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "mean_ms",
    "server_cpu_pct",
    "server_rss_mb",
    "generator_cpu_pct",
    "bound_rps",
    "efficiency",
    "generator_bound",
    "status",
    # added after the DESIGN.md list
    "cell_id",
    "slots",
    "service_time_ms",
    "error_rate",
    "locust_rps",
    "locust_p50_ms",
    "locust_p99_ms",
    # measurement you can trust: open load, generator limits, trials
    "p99_uncorrected_ms",  # open load: p99 from the actual send (coordinated omission kept)
    "launched",  # open load: arrivals started
    "late_starts",  # open load: starts more than 10 ms behind schedule
    "dropped",  # open load: arrivals not started (too many in flight)
    "generator_ceiling_rps",  # the run's calibration: what the generator alone can drive
    "flags",  # "; "-separated reasons to distrust the cell, empty when none
    "trials",  # ok cells in this row's group (scenario, target, load_model, users, rate)
    "rps_median",
    "rps_ci_low",  # 95% CI of the mean over the group's trials (Student's t)
    "rps_ci_high",
    "rps_cv",  # sample stdev / mean over the group's trials
    "p99_median_ms",
    "p99_ci_low_ms",
    "p99_ci_high_ms",
    "unstable",  # rps_cv above harness.results.trials.UNSTABLE_CV
    "stall_at_s",  # an injected server stall: seconds after the window opened (raw stall.json)
    "stall_for_s",
    # long-lived connections (harness.loadgen.users): SSE and WebSocket cells
    "protocol",  # "http", "sse" or "ws" (from the request types in latency.json by_name)
    "connections_requested",  # sse/ws: users, one connection each
    "connections_established",  # sse/ws: successful connects over the whole cell
    "rss_per_connection_kb",  # sse/ws: (server RSS peak - RSS before load) / established
    "message_p50_ms",  # sse/ws: per-message delivery latency (receive - server's sent)
    "message_p99_ms",
    "messages_per_s",  # sse/ws: messages received in the window / window seconds
    # the roofline (harness.results.roofline): every ceiling measured in the cell
    "limiter",  # the ceiling that held: users, rate, slots, balance, server_cpu, generator,
    # connections; "unexplained" when efficiency < 0.9 and no ceiling accounts for it
    "limited_by",  # the limiter in words: "server CPU: 85% of its core"
    "ceilings",  # "; "-separated "name rps" of every ceiling that applied, lowest first
    "overhead_ms",  # the target's /io?ms=0 time (verify gate), added to the service time
    "effective_slots",  # threaded servers: sum over workers of min(connections held, threads)
    "server_pss_mb",  # server's proportional set size (shared pages split), peak in the window
    "pss_per_connection_kb",  # sse/ws: (server PSS peak - PSS right before load) / held
    "connections_held",  # sse/ws: connections open when the window closed
    "connect_p99_ms",  # sse/ws: connect (handshake) latency over the whole cell
    "first_message_p99_ms",  # sse/ws: connect start to first message, over the whole cell
    "max_lateness_ms",  # open load: the latest a request actually started after its schedule
    "lateness_p99_ms",
    "in_flight_at_end",  # open load: launched, not finished when the window closed
    "offered",  # open load: arrivals whose intended start fell inside the window
    "latency_rise_ms",  # per-second mean latency: median of the last third - of the first third
    "steal_pct",  # CPU steal during the window, % of one core summed over CPUs
    "other_cpu_pct",  # CPU of processes other than server, generator, harness (% of a core)
    "connections_per_request",  # TCP connections the generator opened in the window / requests:
    # ~1 when the server closes after every response (no keep-alive), ~0 when it keeps them
    "generators",  # locust processes that made the requests (workers; 1: one plain process)
    "generator_budget_pct",  # CPU they could use: 100 per core (one core per process at most)
    "worker_cpu_max_pct",  # several generators: the busiest worker's own CPU over its window
    # real I/O: scenarios that need a database or an upstream service (harness.run.database,
    # harness.run.upstream); empty when the cell's scenario needs neither or it was not sampled
    "database_cpu_pct",  # the PostgreSQL process tree's CPU over the window (% of a core)
    "database_rss_mb",  # its RSS, peak in the window
    "upstream_cpu_pct",  # the upstream HTTP service's CPU over the window (% of a core)
    "pool_total",  # connections the target's pools hold at most: workers x pool per process
    # the protocol layer (harness.loadgen.link, harness.loadgen.h2): protocol is "h2" for
    # requests that went over HTTP/2
    "tls",  # the cell's server spoke TLS (its target's row, or the scenario's settings "tls")
    "connection",  # the scenario's connection policy: keep-alive, close or "every N"
    "streams",  # HTTP/2 user cells: requests each user keeps in flight (users x streams in all)
    "client",  # the generator's HTTP client: "fasthttp" (locust's FastHttpUser) or "httpx"
)

MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.csv"
CROSSCHECK_FILE = "crosscheck.csv"  # python -m harness crosscheck: h2load beside gatebench
RAW_DIR = "raw"
CHARTS_DIR = "charts"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"

# Files inside raw/<cell_id>/
LATENCY_FILE = "latency.json"  # written by harness.loadgen.extension inside the locust process
RESOURCES_FILE = "resources.csv"  # psutil samples (harness.run.sampler): t, role, cpu_pct,
# rss_mb, procs, pss_mb, conns (server: established connections per process), steal_pct;
# roles server, generator, harness, other, and (real I/O) database, upstream
LOCUST_STDOUT = "locust.stdout.txt"
LOCUST_STDERR = "locust.stderr.txt"
LOCUST_CSV_PREFIX = "locust"  # locust --csv writes locust_stats.csv, locust_stats_history.csv, ...
WINDOW_FILE = "window.json"  # written by locust_ext when the measurement window opens
STALL_FILE = "stall.json"  # when and how long the server was paused, if it was
REQUEST_LOG = "requests.csv"  # optional per-request latency log (--latency-log)

# Exit status of `python -m harness run` (and of the other commands where they apply).
EXIT_OK = 0  # every cell ran
EXIT_FAILED_CELLS = 1  # some cells failed or were skipped; the run folder is still complete
EXIT_USAGE = 2  # bad usage: one line on stderr, nothing run
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM; finished cells are saved

# Cell status values (manifest "cells"[].status and summary "status").
STATUS_PENDING = "pending"
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"
STATUS_SKIPPED = "skipped"


@dataclass(frozen=True)
class Cell:
    """One measurement: a scenario against a target at one load level, one trial."""

    scenario: str
    target: str
    load_model: str  # "closed" (users) or "open" (arrival rate)
    users: int
    rate: float | None
    trial: int
    duration_s: float
    warmup_s: float
    service_time_ms: float | None
    slot_time_ms: float | None = None  # how long a request holds a server slot, if not S

    @property
    def cell_id(self) -> str:
        load = f"u{self.users}" if self.load_model == "closed" else f"r{self.rate:g}"
        return f"{self.scenario}__{self.target}__{load}__t{self.trial}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cell_id"] = self.cell_id
        return data


@dataclass
class CellRecord:
    """What the manifest keeps about one cell: its plan entry, status and timings."""

    cell: Cell
    status: str = STATUS_PENDING
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = self.cell.to_dict()
        data.update(
            status=self.status,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error=self.error,
            warnings=list(self.warnings),
        )
        return data


class Calibration(TypedDict):
    """manifest "calibration": the load generator's own ceiling (``harness.run.calibration``)."""

    target: str
    route: str
    users: int
    duration_s: float  # one run's measurement window
    rps: float  # the median of the runs
    runs_rps: list[float]  # each run's rps, in order (repeated until the last two agree)
    spread: float | None  # (max - min) / median of runs_rps
    generator_cpu_pct: float | None
    server_cpu_pct: float | None
    note: str
    # the HTTP/2 user's calibration (harness.loadgen.h2): its streams per user, the HTTP
    # version it spoke; the run's "h2" entry holds it when the run has HTTP/2 scenarios
    streams: NotRequired[int]
    http: NotRequired[str]
    h2: NotRequired[Calibration]


class Timing(TypedDict):
    """manifest "timing": where a run's wall time went (printed at the end of every run)."""

    elapsed_s: float  # from the command's start to the report written
    measured_s: float  # the cells' warm-ups and measurement windows
    overhead_s: float  # everything else: servers, locust, verify, calibration, report
    overhead_pct: float  # overhead_s / measured_s * 100


class Manifest(TypedDict, total=False):
    """``manifest.json``: every key a run folder's manifest may hold, named once here.

    Written by ``harness.run`` (``manifest.new_manifest``, then the session and runner),
    read by ``harness.results`` as a plain dict loaded from JSON. Sub-dicts whose keys belong
    to one module stay ``dict[str, Any]`` (options: ``RunOptions``; profile: ``Profile``;
    pinning: ``Pinning``; scenarios: ``Scenario.to_dict``; targets: ``Target.settings``;
    verify: ``VerifyResult``; cells: ``CellRecord.to_dict``).
    """

    schema_version: int
    run_id: str
    status: str  # "running", "complete", "failed", "interrupted"
    created_at: str
    finished_at: str | None
    argv: list[str]
    machine: dict[str, Any]
    packages: dict[str, str | None]
    git: dict[str, Any]
    warnings: list[str]
    options: dict[str, Any]
    profile: dict[str, Any]
    pinning: dict[str, Any]
    generators: dict[str, Any]  # the load generator's processes (GeneratorLayout.to_dict)
    network: dict[str, Any] | None  # --url: round trip to the target, added delay (run.network)
    services: dict[str, Any]  # database / upstream started for real-I/O scenarios (run.services)
    tls: dict[str, Any]  # the run's TLS certificate (harness.run.tls): its files, the CA
    scenarios: dict[str, dict[str, Any]]
    targets: dict[str, dict[str, Any]]
    verify: dict[str, dict[str, Any]]
    calibration: Calibration | None
    cells: list[dict[str, Any]]
    order: list[str]  # cell_ids in the order their cells started (a resumed run appends)
    resumed: list[dict[str, Any]]
    elapsed_s: float  # seconds the cells, verify gate and calibration took
    timing: Timing
