"""The network between the generator and an external target: its round trip, and an added delay.

With ``--url`` the target may sit across a real link (another host, or another network
namespace joined by a veth pair, as the tests do). Before anything is measured the harness

- measures the round-trip time to it (``measure_rtt``): the median time of ``RTT_SAMPLES``
  TCP connects, each one SYN and SYN-ACK, so one round trip plus the kernel's handshake work;
- with ``--net-delay MS``, adds MS of one-way delay to the link that leads there (``delayed``:
  Linux's ``netem`` queueing discipline on the outgoing device, ``tc qdisc add ... netem delay``),
  removed again when the run ends, also on failure or Ctrl-C. The delay is on this side's
  outgoing packets only, so a round trip grows by MS. Loopback is refused: delaying ``lo``
  would delay every local connection of the machine, the harness's own included.

The manifest's ``network`` records the device, the added delay and the measured round trip
(before and with the delay). The verify gate and the cells run with the delay in place, so the
target's ``/io?ms=0`` time, which the roofline adds to each request's service time, holds the
round trip: the Little's-law bound includes it.
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.units import UsageError

RTT_SAMPLES = 15
CONNECT_TIMEOUT_S = 2.0
LOOPBACK_DEVICE = "lo"
MAX_NET_DELAY_MS = 10_000


def measure_rtt(host: str, port: int, samples: int = RTT_SAMPLES) -> dict[str, Any]:
    """Median and spread of TCP connect times to host:port, in ms; None figures when none
    connected (the reason is kept)."""
    times: list[float] = []
    error = None
    for _ in range(samples):
        started = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                times.append((time.perf_counter() - started) * 1000)
        except OSError as exc:
            error = str(exc)
    return {
        "rtt_ms": round(statistics.median(times), 3) if times else None,
        "rtt_min_ms": round(min(times), 3) if times else None,
        "rtt_max_ms": round(max(times), 3) if times else None,
        "samples": len(times),
        "error": None if times else error,
    }


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)


def route_device(host: str) -> str:
    """The network device this machine sends packets to ``host`` through (``ip route get``)."""
    if shutil.which("ip") is None:
        raise UsageError("--net-delay: the `ip` command is missing; install iproute2")
    try:
        address = socket.gethostbyname(host)
    except OSError as exc:
        raise UsageError(f"--net-delay: cannot resolve {host}: {exc}") from None
    done = _run(["ip", "-j", "route", "get", address])
    try:
        device = str(json.loads(done.stdout)[0]["dev"])
    except (ValueError, LookupError):
        raise UsageError(
            f"--net-delay: no route to {address}: {done.stderr.strip() or done.stdout.strip()}"
        ) from None
    return device


def delay_device(host: str) -> str:
    """The device a delay to ``host`` would go on; UsageError when that is loopback."""
    device = route_device(host)
    if device == LOOPBACK_DEVICE:
        raise UsageError(
            f"--net-delay: {host} is reached over loopback; delaying `lo` would delay every "
            "local connection of this machine. Use a target across a real link (another host, "
            "or a network namespace joined by a veth pair)"
        )
    return device


@contextmanager
def delayed(host: str, delay_ms: float) -> Iterator[str]:
    """Add ``delay_ms`` one-way delay on the device leading to ``host`` while the block runs;
    yields the device. UsageError (one line) when it cannot be done, before anything changed."""
    device = delay_device(host)
    if shutil.which("tc") is None:
        raise UsageError("--net-delay: the `tc` command is missing; install iproute2")
    added = _run(["tc", "qdisc", "add", "dev", device, "root", "netem", "delay", f"{delay_ms:g}ms"])
    if added.returncode != 0:
        why = added.stderr.strip() or f"exit status {added.returncode}"
        hint = (
            " (this kernel has no netem queueing discipline: module sch_netem)"
            if "unknown" in why.lower() or "no such file" in why.lower()
            else " (needs root, and no other root qdisc on the device)"
        )
        raise UsageError(f"--net-delay: tc could not add netem on {device}: {why}{hint}")
    try:
        yield device
    finally:
        _run(["tc", "qdisc", "del", "dev", device, "root", "netem"])


@contextmanager
def link(url: str | None, delay_ms: float | None, progress: Any) -> Iterator[dict[str, Any] | None]:
    """The network to an external target while the block runs (None without --url): its
    round trip measured, and ``delay_ms`` added when given (the manifest's ``network``)."""
    if url is None:
        yield None
        return
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", int(parts.port or 80)
    before = measure_rtt(host, port)
    info: dict[str, Any] = {"host": host, "port": port, "device": None, "net_delay_ms": None,
                            **before}  # fmt: skip
    if delay_ms is None:
        progress(f"network: round trip to {host}:{port} {_rtt_text(before)}")
        yield info
        return
    with delayed(host, delay_ms) as device:
        during = measure_rtt(host, port)
        info.update(during, device=device, net_delay_ms=delay_ms, rtt_before_ms=before["rtt_ms"])
        progress(
            f"network: +{delay_ms:g} ms one way on {device}; round trip to {host}:{port} "
            f"{_rtt_text(before)} before, {_rtt_text(during)} with the delay"
        )
        yield info


def _rtt_text(measured: dict[str, Any]) -> str:
    if measured.get("rtt_ms") is None:
        return f"not measured ({measured.get('error')})"
    return f"{measured['rtt_ms']:.3f} ms (median of {measured['samples']} TCP connects)"
