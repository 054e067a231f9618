"""The command line: ``python -m harness list|run|serve|report|crosscheck|...``.

Each option is defined once, in ``build_parser``. Bad input is a ``UsageError``: one
line on stderr, exit status 2, no traceback. Exit status of ``run``: 0 every cell ran,
1 some cells failed (the folder is still complete), 130 interrupted. Of ``crosscheck``: 0 every
cell replayed under h2load, 1 some got an error row, 2 bad usage.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import socket
import sys
import tempfile
import time
import urllib.parse
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from harness import schema
from harness.loadgen.link import HTTP_VERSIONS
from harness.run import scenarios as scenario_module
from harness.run.cpus import choose_pinning, usable_cpus
from harness.run.external import EXTERNAL_NAME, INTERFACES, parse_url, read_ca
from harness.run.generators import parse_master
from harness.run.network import MAX_NET_DELAY_MS, delay_device
from harness.run.plan import RunOptions, parse_override
from harness.run.profiles import DEFAULT_PROFILE, PROFILES
from harness.run.scenarios import discover, shown_folder
from harness.schema import EXIT_FAILED_CELLS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from harness.units import (
    UsageError,
    parse_duration,
    parse_int_list,
    parse_name_list,
    parse_positive_int,
    parse_rate_list,
)
from targets.registry import TARGETS


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    commands.add_parser("list", help="scenarios, targets and profiles")

    run = commands.add_parser("run", help="run a benchmark and write a results folder")
    run.add_argument("--profile", help=f"one of {', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    run.add_argument("--scenarios", help="comma-separated scenario names (default: the profile's)")
    run.add_argument("--targets", help="comma-separated target names (default: the profile's)")
    run.add_argument("--users", help="comma-separated user counts, e.g. 10,50,100")
    run.add_argument("--duration", help="measured seconds per cell: 10, 10s, 2m")
    run.add_argument("--warmup", help="warm-up seconds per cell, excluded from figures")
    run.add_argument("--trials", help="repetitions of each cell")
    run.add_argument("--out", help="write the run into this folder (default results/<run-id>)")
    run.add_argument("--server-cpus", help="CPUs for the target server, e.g. 0 or 0,1")
    run.add_argument("--generator-cpus", help="CPUs for locust, e.g. 1")
    run.add_argument("--rates", help="open-model arrival rates in requests/s, e.g. 200,500")
    run.add_argument("--arrivals", help="open-model spacing: poisson (default) or fixed")
    run.add_argument("--stall-at", help="pause the server this many seconds into each window")
    run.add_argument("--stall-for", help="... for this many seconds (default 1)")
    run.add_argument(
        "--latency-log", action="store_true", help="also log every request's latency in raw/"
    )
    run.add_argument(
        "--generators",
        help="locust worker processes on this machine, pinned to the generator CPUs "
        "round-robin, under one locust master (default 1: one plain locust process)",
    )
    run.add_argument(
        "--generators-external",
        help="locust workers joining from other hosts (python -m harness worker --master "
        "THIS_HOST:PORT); the run waits for them",
    )
    run.add_argument(
        "--master-bind",
        help="HOST[:PORT] the locust master listens on for external workers (default 0.0.0.0:5557)",
    )
    run.add_argument("--no-calibrate", action="store_true", help="skip the generator ceiling")
    run.add_argument("--no-verify", action="store_true", help="skip the verify gate")
    run.add_argument(
        "--set",
        action="append",
        metavar="TARGET.SETTING=N",
        help="override a target's workers or threads for this run, e.g. "
        "flask-gunicorn-sync.workers=2 (repeatable; recorded in the manifest)",
    )
    run.add_argument(
        "--resume", metavar="RUN_DIR", help="finish the unfinished cells of an earlier run"
    )
    run.add_argument(
        "--url",
        metavar="http(s)://HOST:PORT",
        help="benchmark a server gatebench did not start (e.g. one of `serve`), target "
        f"{EXTERNAL_NAME}; its CPU and memory are not measured",
    )
    run.add_argument("--slots", help="with --url: requests the server holds at once, for the bound")
    run.add_argument(
        "--ca",
        metavar="FILE",
        help="with an https --url: the CA certificate (PEM) its certificate chains to; the "
        "users verify the server against it",
    )
    run.add_argument(
        "--http",
        metavar="VERSION",
        help="with --url: the HTTP version the server speaks, 1.1 (default) or 2 (the h2 "
        "scenario speaks HTTP/2 to it: h2c over http://, ALPN over https://)",
    )
    run.add_argument("--interface", help="with --url: wsgi or asgi, for the labels and ratios")
    run.add_argument(
        "--allow-remote",
        action="store_true",
        help="with --url: allow a host that is not this machine (loopback)",
    )
    run.add_argument(
        "--net-delay",
        metavar="MS",
        help="with --url: add MS ms of one-way delay on the link to it (Linux netem, as root; "
        "not on loopback); the manifest records the measured round trip",
    )

    worker = commands.add_parser(
        "worker", help="a locust worker for a run on another host (--generators-external)"
    )
    worker.add_argument("--master", required=True, help="the run's host, HOST[:PORT] (5557)")
    worker.add_argument("--cpus", help="pin the worker to these CPUs, e.g. 2 or 2,3")
    worker.add_argument(
        "--idle", default="60", help="seconds to wait for the next master before exiting"
    )

    serve = commands.add_parser("serve", help="start one target by hand and print its URL")
    serve.add_argument("target", help="target name (see `list`)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    serve.add_argument(
        "--cpus", help="pin the server to these CPUs, e.g. 0 (as `run` pins its servers)"
    )

    verify = commands.add_parser("verify", help="check the targets answer alike")
    verify.add_argument("--targets", help="comma-separated target names (default: all)")

    compare = commands.add_parser("compare", help="what changed between two runs, and is it real")
    compare.add_argument("run_a", help="the baseline results folder")
    compare.add_argument("run_b", help="the results folder to compare with it")
    compare.add_argument(
        "--threshold", default="5", help="percent change that counts as a regression (default 5)"
    )
    compare.add_argument(
        "--out",
        help="where to write the comparison, overwritten (default: a new compare-A-vs-B "
        "beside RUN_B, or compare-A-vs-B-2, -3, ... when that exists)",
    )
    compare.add_argument(
        "--per-second",
        action="store_true",
        help="judge groups with fewer than 2 trials a side over per-second throughput "
        "(seconds of one window are not independent: optimistic p-values)",
    )

    report = commands.add_parser("report", help="rebuild summary, charts and report of a run")
    report.add_argument("run_dir", help="a results folder, e.g. results/latest")

    crosscheck = commands.add_parser(
        "crosscheck",
        help="replay a run's HTTP/2 cells with h2load: the load generator's own cost beside it",
    )
    crosscheck.add_argument("run_dir", help="a results folder with HTTP/2 cells")
    crosscheck.add_argument(
        "--cells", help="comma-separated cell ids (default: every ok HTTP/2 cell of the run)"
    )
    crosscheck.add_argument(
        "--duration", help="measured seconds per cell: 10, 10s, 2m (default: the cell's own)"
    )

    runs = commands.add_parser(
        "runs", help="list every run, newest first, and write an index.html beside them"
    )
    runs.add_argument("--results", help="the folder of runs (default: results/ of the checkout)")
    return parser


_started: float | None = None  # when main() began: the start of a run's wall time


def main(argv: list[str] | None = None) -> int:
    global _started
    _started = time.monotonic()  # a run's printed overhead counts from here
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        command = {
            "list": cmd_list,
            "run": cmd_run,
            "serve": cmd_serve,
            "verify": cmd_verify,
            "compare": cmd_compare,
            "report": cmd_report,
            "runs": cmd_runs,
            "crosscheck": cmd_crosscheck,
            "worker": cmd_worker,
        }
        return command[args.command](args)
    except UsageError as exc:
        print(f"gatebench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gatebench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and friends: not an error
        sys.stderr.close()
        return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    folder = scenario_module.SCENARIO_DIR
    scenarios, broken = discover(folder)
    print(f"Scenarios ({Path(shown_folder(folder)) / '*.py'}):")
    for name, scenario in sorted(scenarios.items()):
        extra = []
        if scenario.users:
            extra.append(f"users {','.join(map(str, scenario.users))}")
        if scenario.service_time_ms:
            extra.append(f"service time {scenario.service_time_ms:g} ms")
        if scenario.slot_time_ms:
            extra.append(f"holds a slot {scenario.slot_time_ms:g} ms")
        print(f"  {name:<12} {scenario.summary}" + (f"  [{'; '.join(extra)}]" if extra else ""))
    for name, error in sorted(broken.items()):
        print(f"  {name:<12} BROKEN: {error}")
    for interface in ("wsgi", "asgi"):
        print(f"\nTargets, {interface.upper()} (slots: requests held at once):")
        for name, target in TARGETS.items():
            if target.interface == interface:
                slots = "unbounded" if target.slots is None else str(target.slots)
                print(f"  {name:<26} {slots:>9}  {target.description}")
    print("\nProfiles:")
    for name, profile in PROFILES.items():
        print(f"  {name:<10} {profile.description}")
    return EXIT_OK


def run_options(args: argparse.Namespace) -> RunOptions:
    profile = DEFAULT_PROFILE if args.profile is None else args.profile
    if profile not in PROFILES:
        raise UsageError(f"--profile: unknown {profile!r}; choose from {', '.join(PROFILES)}")

    def durations(option: str, value: str | None, zero_ok: bool = False) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value, zero_ok=zero_ok)
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None

    def cpus(option: str, value: str | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        return tuple(int(v) for v in _digits(option, value))

    external = _external_options(args)  # --url and its conflicts, before anything else
    options = RunOptions(
        profile=profile,
        scenarios=tuple(s.strip() for s in args.scenarios.split(",")) if args.scenarios else None,
        targets=parse_name_list(args.targets, "--targets", list(TARGETS)) if args.targets else None,
        users=parse_int_list(args.users, "--users") if args.users is not None else None,
        duration_s=durations("--duration", args.duration),
        warmup_s=durations("--warmup", args.warmup, zero_ok=True),
        trials=parse_positive_int(args.trials, "--trials") if args.trials is not None else None,
        out=args.out,
        server_cpus=cpus("--server-cpus", args.server_cpus),
        generator_cpus=cpus("--generator-cpus", args.generator_cpus),
        rates=parse_rate_list(args.rates, "--rates") if args.rates is not None else None,
        arrivals=_arrivals(args.arrivals or "poisson"),
        stall_at_s=durations("--stall-at", args.stall_at, zero_ok=True),
        stall_for_s=durations("--stall-for", args.stall_for)
        or (1.0 if args.stall_at is not None else None),
        latency_log=args.latency_log,
        calibrate=not args.no_calibrate,
        verify=not args.no_verify,
        overrides=tuple(parse_override(item) for item in args.set or ()),
        **_generator_options(args),
    )
    return replace(options, **external) if external else options


def _external_options(args: argparse.Namespace) -> dict[str, Any]:
    """--url and its companions (harness.run.external), checked; {} without --url."""
    if args.url is None:
        for option, value in (("--slots", args.slots), ("--interface", args.interface),
                              ("--allow-remote", args.allow_remote),
                              ("--net-delay", args.net_delay), ("--ca", args.ca),
                              ("--http", args.http)):  # fmt: skip
            if value not in (None, False):
                raise UsageError(
                    f"{option} goes with --url only (the targets gatebench starts describe "
                    "themselves: python -m harness list)"
                )
        return {}
    for option, value in (("--targets", args.targets), ("--set", args.set),
                          ("--stall-at", args.stall_at)):  # fmt: skip
        if value is not None:
            raise UsageError(
                f"--url and {option} do not go together: --url benchmarks the one server "
                "at that URL, which gatebench neither starts nor controls"
            )
    interface = args.interface
    if interface is not None and interface not in INTERFACES:
        raise UsageError(f"--interface: unknown {interface!r}; choose from {', '.join(INTERFACES)}")
    url = parse_url(args.url, args.allow_remote)
    http = args.http or "1.1"
    if http not in HTTP_VERSIONS:
        raise UsageError(f"--http {http}: expected one of {', '.join(HTTP_VERSIONS)}")
    if url.startswith("https://") and args.ca is None:
        raise UsageError(
            f"--url {url}: add --ca FILE, the CA certificate (PEM) its certificate chains to "
            "(gatebench verifies the server, as a client would)"
        )
    if args.ca is not None and not url.startswith("https://"):
        raise UsageError(f"--ca goes with an https:// --url only (got {url})")
    if args.ca is not None:
        read_ca(Path(args.ca))  # readable and PEM, or one line now
    return {
        "url": url,
        "url_http": http,
        "url_ca": None if args.ca is None else str(Path(args.ca).resolve()),
        "slots": parse_positive_int(args.slots, "--slots") if args.slots is not None else None,
        "interface": interface,
        "targets": (EXTERNAL_NAME,),
        "net_delay_ms": _net_delay(args.net_delay, url),
    }


def _net_delay(value: str | None, url: str) -> float | None:
    """--net-delay MS, checked: a number of ms, on a link that is not loopback."""
    if value is None:
        return None
    try:
        delay = float(value.removesuffix("ms"))
    except ValueError:
        raise UsageError(f"--net-delay {value!r}: expected milliseconds, e.g. 5") from None
    if not 0 < delay <= MAX_NET_DELAY_MS:
        raise UsageError(
            f"--net-delay {value}: expected more than 0 and at most {MAX_NET_DELAY_MS} ms"
        )
    delay_device(urllib.parse.urlsplit(url).hostname or "")  # refuses loopback
    return delay


def _generator_options(args: argparse.Namespace) -> dict[str, Any]:
    """--generators, --generators-external and --master-bind, checked."""
    local = parse_positive_int(args.generators, "--generators") if args.generators else None
    external = 0
    if args.generators_external is not None:
        external = parse_positive_int(args.generators_external, "--generators-external")
    if args.master_bind is not None:
        if not external:
            raise UsageError("--master-bind goes with --generators-external only")
        parse_master(args.master_bind, "--master-bind")
    return {"generators": local, "generators_external": external, "master_bind": args.master_bind}


def _arrivals(value: str) -> str:
    if value not in ("poisson", "fixed"):
        raise UsageError(f"--arrivals: unknown {value!r}; choose from poisson, fixed")
    return value


def _digits(option: str, value: str) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if not value.strip() or not all(v.isascii() and v.isdigit() for v in items):
        raise UsageError(f"{option} {value!r}: expected CPU numbers such as 0 or 0,1")
    return items


_interrupted = False


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """First Ctrl-C or SIGTERM: stop. Later ones: let the clean-up finish."""
    global _interrupted
    if _interrupted:
        print("gatebench: stopping child processes, one moment", file=sys.stderr, flush=True)
        return
    _interrupted = True
    raise KeyboardInterrupt


def _catch_interrupts() -> None:
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.session import resume_benchmark, run_benchmark

    argv = ["python", "-m", "harness", *sys.argv[1:]]
    if args.resume is not None:
        own = ("command", "resume")
        given = [
            f"--{key.replace('_', '-')}"
            for key, value in vars(args).items()
            if key not in own and value not in (None, False)
        ]
        if given:
            raise UsageError(f"--resume takes the run's own options; drop {', '.join(given)}")
        _catch_interrupts()
        return resume_benchmark(Path(args.resume), argv, _progress, _started)
    options = run_options(args)
    if options.out is not None:
        _check_out(options.out)
    _catch_interrupts()
    return run_benchmark(options, argv, _progress, _started)


def _check_out(out: str) -> None:
    """Refuse an --out that cannot become a run folder, before anything starts."""
    path = Path(out)
    try:
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {out}: exists and is not a folder; give a folder")
        parent = path
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise UsageError(f"--out {out}: {parent} is a file, so no folder can be made there")
        os.rmdir(tempfile.mkdtemp(prefix=".gatebench-check-", dir=parent))
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create a folder there ({exc.strerror})") from None


def build_outputs(run_dir: Path) -> None:
    from harness.report.build import build_all, drawing_workers

    build_all(run_dir, drawing_workers())


def cmd_verify(args: argparse.Namespace) -> int:
    from harness.run.verify import format_results, verify_targets

    names = parse_name_list(args.targets, "--targets", list(TARGETS)) if args.targets else TARGETS
    pinning = choose_pinning()
    log_dir = Path(tempfile.mkdtemp(prefix="gatebench-verify-"))
    results = verify_targets([TARGETS[n] for n in names], log_dir, pinning.server_cpus)
    print(format_results(results))
    return EXIT_OK if all(r.passed for r in results.values()) else EXIT_FAILED_CELLS


def cmd_worker(args: argparse.Namespace) -> int:
    from harness.run.generators import run_worker

    host, port = parse_master(args.master)
    cpus = tuple(int(v) for v in _digits("--cpus", args.cpus)) if args.cpus else None
    try:
        idle_s = parse_duration(args.idle)
    except ValueError as exc:
        raise UsageError(f"--idle: {exc}") from None
    return run_worker(host, port, cpus, idle_s, _progress)


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.run.servers import (
        HOST,
        READY_TIMEOUT_S,
        ServerError,
        free_port,
        start_process,
        stop_all,
        wait_ready,
        wait_settled,
    )
    from harness.run.tls import make_certificate

    if args.target not in TARGETS:
        raise UsageError(f"unknown target {args.target!r}; choose from {', '.join(TARGETS)}")
    target = TARGETS[args.target]
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected 1 to 65535")
    log = Path("results") / f"serve-{target.name}.log"
    _check_bind(args.host, args.port, log)
    if args.host != HOST:
        print(f"gatebench: warning: binding {args.host}, not loopback only", file=sys.stderr)
    port = args.port or free_port(args.host)
    # A TLS row (h2 by ALPN) gets a fresh certificate; clients trust its CA file.
    folder = log.parent.resolve() / f"serve-{target.name}-tls"  # printed: absolute
    certificate = make_certificate(folder) if target.tls else None
    url = f"{'https' if certificate else 'http'}://{args.host}:{port}"
    cpus = _serve_cpus(args.cpus)
    _catch_interrupts()  # before the server starts: a SIGTERM now must still stop it
    try:
        files = certificate.files if certificate else None
        proc = start_process(target.command(args.host, port, files), log, cpus)
        deadline = time.monotonic() + READY_TIMEOUT_S
        ca_file = certificate.ca_file if certificate else None
        wait_ready(url, proc, log, target.name, http=target.http, ca_file=ca_file)
        wait_settled(proc, target, log, deadline)  # every worker up, as for a run
        speaks = f"HTTP/{target.http}" + (f", TLS: trust {ca_file}" if ca_file else "")
        print(f"{target.name} ready at {url} ({speaks}; log: {log}; Ctrl-C to stop)", flush=True)
        proc.wait()
        print(f"{target.name} exited with status {proc.returncode}; see {log}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return EXIT_OK
    except ServerError as exc:
        if _port_taken(log):  # taken after _check_bind: one line, not the server's trace
            print(
                f"gatebench: error: {target.name} did not start: port {port} is already in "
                f"use on {args.host}; see its log {log}",
                file=sys.stderr,
            )
        else:
            print(f"gatebench: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all()


def _serve_cpus(value: str | None) -> tuple[int, ...] | None:
    """``serve --cpus``: CPUs to pin the server to, each usable here (None: not pinned)."""
    if value is None:
        return None
    cpus = tuple(int(v) for v in _digits("--cpus", value))
    usable = usable_cpus()
    for cpu in cpus:
        if cpu not in usable:
            raise UsageError(f"--cpus: CPU {cpu} is not usable here; usable: {usable}")
    return cpus


def _check_bind(host: str, port: int, log: Path) -> None:
    """Bind host:port as the server will, and refuse now if that cannot work."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"--host {host}: not an address ({exc})") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"--port {port}: port {port} is already in use on {host}; "
                    f"the server was not started (its log would be {log})"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UsageError(
                    f"--host {host}: not an address of this machine; use 127.0.0.1, "
                    "0.0.0.0 or one of its own addresses"
                ) from None
            raise UsageError(f"--host {host} --port {port}: cannot bind ({exc.strerror})") from None


_PORT_TAKEN = ("address already in use", "connection in use", "address in use")


def _port_taken(log: Path) -> bool:
    """Whether the server's log says its port was taken (each server words it its own way)."""
    try:
        text = log.read_text(errors="replace").lower()
    except OSError:
        return False
    return any(words in text for words in _PORT_TAKEN)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import run_compare

    try:
        threshold = float(args.threshold)
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold) or threshold < 0:
        raise UsageError(f"--threshold {args.threshold!r}: expected a percentage such as 5")
    for folder in (args.run_a, args.run_b):
        if not (Path(folder) / schema.MANIFEST_FILE).is_file():
            raise UsageError(f"{folder}: not a results folder (no {schema.MANIFEST_FILE})")
    run_a, run_b = Path(args.run_a).resolve(), Path(args.run_b).resolve()
    # --out is overwritten; by default a new compare-A-vs-B[-N] beside the runs, never inside one
    out = Path(args.out) if args.out else None
    try:
        return run_compare(run_a, run_b, threshold, out, per_second=args.per_second)
    except ValueError as exc:  # not a run, or no cell matched (NoMatchedCells)
        raise UsageError(str(exc)) from None


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / schema.MANIFEST_FILE).is_file():
        raise UsageError(f"{run_dir}: not a results folder (no {schema.MANIFEST_FILE})")
    build_outputs(run_dir)
    print(f"report: {run_dir / schema.REPORT_MD}")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from harness.report.runs import index_runs, render_lines, shown_path
    from harness.run.manifest import RESULTS_DIR

    results_dir = Path(args.results) if args.results is not None else RESULTS_DIR
    if not results_dir.is_dir():
        raise UsageError(f"--results {results_dir}: not a folder")
    if (results_dir / schema.MANIFEST_FILE).is_file():
        raise UsageError(f"--results {results_dir}: a run folder; give the folder of runs")
    try:
        entries, index = index_runs(results_dir)
    except OSError as exc:
        raise UsageError(f"--results {results_dir}: cannot read it: {exc}") from None
    if entries:
        print("\n".join(render_lines(entries)))
    else:
        print(f"no runs yet in {shown_path(results_dir)}")
    print(f"index: {shown_path(index)}")
    return EXIT_OK


def cmd_crosscheck(args: argparse.Namespace) -> int:
    from harness.report.crosscheck import format_table
    from harness.run.crosscheck import run_crosscheck

    cells = [c.strip() for c in args.cells.split(",") if c.strip()] if args.cells else None
    if args.cells is not None and not cells:
        raise UsageError(
            f"--cells {args.cells!r}: expected cell ids, e.g. h2__fastapi-granian-h2c__u10__t1"
        )
    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise UsageError(f"--duration: {exc}") from None
    _catch_interrupts()
    rows, path = run_crosscheck(Path(args.run_dir), cells, duration, _progress)
    print(format_table(rows))
    print(f"crosscheck: {path}")
    build_outputs(Path(args.run_dir))  # the report shows the replay beside the cells
    return EXIT_FAILED_CELLS if any(row.get("error") for row in rows) else EXIT_OK


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
