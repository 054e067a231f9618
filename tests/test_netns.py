"""A real network hop on one machine: the server in one network namespace, the generator (a
locust master and two workers) in another, joined by a veth pair, loaded with ``run --url``.

Needs root (CI runs as root) and ``ip netns``; skipped with the reason elsewhere. Addresses
come from 198.18.0.0/15, the range set aside for benchmarks (RFC 2544). The namespaces (and
with them the veth pair) are removed when the test ends, also on failure. Where the kernel
offers netem, ``--net-delay`` is checked to add its delay to the measured round trip and the
bound; where it does not, the refusal is checked to be one clear line with nothing left behind.
"""

from __future__ import annotations

import contextlib
import csv
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PROJECT

BENCHMARK_NET = ipaddress.ip_network("198.18.0.0/15")
SERVER_PORT = 8000
USERS = 10
SERVICE_S = 0.050  # the io scenario's /io?ms=50


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=10)


def _why_no_netns() -> str | None:
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    return None


@dataclass(frozen=True)
class Hop:
    server_ns: str
    generator_ns: str
    generator_device: str
    server_address: str


@pytest.fixture
def hop() -> Iterator[Hop]:
    """Two namespaces joined by a veth pair with a /30 of 198.18.0.0/15; always removed."""
    why = _why_no_netns()
    if why:
        pytest.skip(why)
    tag = f"{os.getpid() % 10000:04d}{random.randrange(100):02d}"
    server_ns, generator_ns = f"gbsrv{tag}", f"gbgen{tag}"
    server_dev, generator_dev = f"gbs{tag}", f"gbg{tag}"
    block = random.randrange(BENCHMARK_NET.num_addresses // 4)
    base = BENCHMARK_NET.network_address + 4 * block
    server_ip, generator_ip = str(base + 1), str(base + 2)
    try:
        added = _ip("netns", "add", server_ns)
        if added.returncode != 0:
            pytest.skip(f"cannot create a network namespace: {added.stderr.strip()}")
        steps = [
            ("netns", "add", generator_ns),
            ("link", "add", server_dev, "type", "veth", "peer", "name", generator_dev),
            ("link", "set", server_dev, "netns", server_ns),
            ("link", "set", generator_dev, "netns", generator_ns),
            ("-n", server_ns, "addr", "add", f"{server_ip}/30", "dev", server_dev),
            ("-n", generator_ns, "addr", "add", f"{generator_ip}/30", "dev", generator_dev),
            ("-n", server_ns, "link", "set", "lo", "up"),
            ("-n", generator_ns, "link", "set", "lo", "up"),
            ("-n", server_ns, "link", "set", server_dev, "up"),
            ("-n", generator_ns, "link", "set", generator_dev, "up"),
        ]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
        yield Hop(server_ns, generator_ns, generator_dev, server_ip)
    finally:
        for namespace in (server_ns, generator_ns):  # the veth pair goes with them
            _ip("netns", "del", namespace)
        _ip("link", "del", server_dev)  # only if it never moved into its namespace
    assert server_ns not in _ip("netns", "list").stdout


@contextlib.contextmanager
def served(hop: Hop, log: Path) -> Iterator[str]:
    """``python -m harness serve fastapi-uvicorn`` inside the server's namespace; its URL."""
    argv = [
        "ip", "netns", "exec", hop.server_ns, sys.executable, "-m", "harness", "serve",
        "fastapi-uvicorn", "--host", hop.server_address, "--port", str(SERVER_PORT),
    ]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "ready at" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start: " + log.read_text()
            time.sleep(0.1)
        yield f"http://{hop.server_address}:{SERVER_PORT}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_in(hop: Hop, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m harness ARGS`` inside the generator's namespace."""
    argv = ["ip", "netns", "exec", hop.generator_ns, sys.executable, "-m", "harness", *args]
    return subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


def cell_args(url: str, out: Path) -> list[str]:
    return [
        "run", "--url", url, "--allow-remote", "--interface", "asgi", "--generators", "2",
        "--scenarios", "io", "--users", str(USERS), "--duration", "2", "--warmup", "1",
        "--no-calibrate", "--out", str(out),
    ]  # fmt: skip


def netem_available(hop: Hop) -> bool:
    add = ["-n", hop.generator_ns, "qdisc", "add", "dev", hop.generator_device, "root"]
    probe = subprocess.run(["tc", *add, "netem", "delay", "1ms"], capture_output=True,
                           text=True, check=False) if shutil.which("tc") else None  # fmt: skip
    if probe is None or probe.returncode != 0:
        return False
    subprocess.run(["tc", "-n", hop.generator_ns, "qdisc", "del", "dev", hop.generator_device,
                    "root"], check=False)  # fmt: skip
    return True


@pytest.mark.e2e
@pytest.mark.solo  # asserts throughput across the hop
def test_a_distributed_cell_across_a_veth_hop(hop: Hop, tmp_path: Path) -> None:
    with served(hop, tmp_path / "serve.log") as url:
        done = run_in(hop, *cell_args(url, tmp_path / "run"))
        assert done.returncode == 0, done.stderr + done.stdout
        with open(tmp_path / "run" / "summary.csv", newline="") as handle:
            (row,) = list(csv.DictReader(handle))
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert row["status"] == "ok" and row["target"] == "external"
        assert row["generators"] == "2" and row["failures"] == "0"
        # 10 users waiting 50 ms each: about 200 requests/s across the hop.
        assert 0.8 * USERS / SERVICE_S < float(row["rps"]) < 1.05 * USERS / SERVICE_S
        assert row["server_cpu_pct"] == ""  # a server gatebench did not start
        assert manifest["verify"]["external"]["passed"] is True
        network = manifest["network"]
        assert network["host"] == hop.server_address and network["net_delay_ms"] is None
        assert network["rtt_ms"] is not None and network["rtt_ms"] < 5
        latency = json.loads(
            (tmp_path / "run" / "raw" / row["cell_id"] / "latency.json").read_text()
        )
        assert sum(w["successes"] for w in latency["workers"]) == latency["successes"]
        assert (
            "**Network:** to " + hop.server_address in (tmp_path / "run" / "report.md").read_text()
        )

        if not netem_available(hop):
            refused = run_in(hop, *cell_args(url, tmp_path / "delayed"), "--net-delay", "5")
            assert refused.returncode == 2
            (line,) = refused.stderr.strip().splitlines()
            assert line.startswith("gatebench: error: --net-delay") and "netem" in line
            assert not (tmp_path / "delayed").exists()  # refused before the run folder
            return
        delayed = run_in(hop, *cell_args(url, tmp_path / "delayed"), "--net-delay", "5")
        assert delayed.returncode == 0, delayed.stderr + delayed.stdout
        network = json.loads((tmp_path / "delayed" / "manifest.json").read_text())["network"]
        assert network["net_delay_ms"] == 5.0
        assert 4.0 < network["rtt_ms"] - network["rtt_before_ms"] < 10.0
        with open(tmp_path / "delayed" / "summary.csv", newline="") as handle:
            (slow,) = list(csv.DictReader(handle))
        assert float(slow["rps"]) < float(row["rps"])  # each request waits 5 ms more
        assert float(slow["overhead_ms"]) > 4.0  # the bound's S holds the round trip
        qdiscs = subprocess.run(["tc", "-n", hop.generator_ns, "qdisc", "show", "dev",
                                 hop.generator_device], capture_output=True, text=True)  # fmt: skip
        assert "netem" not in qdiscs.stdout  # the delay went with the run
