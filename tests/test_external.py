"""``run --url``: a server gatebench did not start (harness.run.external)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROJECT, run_harness
from test_usage_errors import harness, one_line_error

from harness.run.external import (
    EXTERNAL_NAME,
    AttachedServer,
    ExternalTarget,
    attach,
    external_target,
    parse_url,
    run_targets,
    sampled_roles,
)
from harness.run.plan import RunOptions
from harness.run.servers import ServerError, free_port
from harness.units import UsageError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("http://127.9.8.7:80", "http://127.9.8.7:80"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_a_loopback_url_is_accepted(url: str, expected: str) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "http://192.168.0.10:80"])
def test_a_remote_host_needs_allow_remote(url: str) -> None:
    host = url.split("//")[1].rsplit(":", 1)[0]
    with pytest.raises(UsageError, match="--allow-remote") as refused:
        parse_url(url)
    assert host in str(refused.value) and "\n" not in str(refused.value)
    assert parse_url(url, allow_remote=True) == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://127.0.0.1:21", "expected http://HOST:PORT or https://HOST:PORT"),
        ("http://127.0.0.1", "both host and port"),
        ("http://:8000", "both host and port"),
        ("http://127.0.0.1:99999", "not a URL"),
        ("http://127.0.0.1:8000/api", "HOST:PORT only"),
        ("127.0.0.1:8000", "expected http://HOST:PORT"),
    ],
)
def test_a_bad_url_is_refused(url: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_url(url)


def test_the_external_target_records_its_url_slots_and_interface() -> None:
    options = RunOptions(profile="smoke", url="http://127.0.0.1:8000", slots=4, interface="wsgi")
    targets = run_targets(options)
    assert list(targets) == [EXTERNAL_NAME]
    target = targets[EXTERNAL_NAME]
    assert isinstance(target, ExternalTarget) and target.slots == 4
    settings = target.settings()
    assert settings["url"] == "http://127.0.0.1:8000" and settings["external"] is True
    assert settings["slots"] == 4 and settings["interface"] == "wsgi"
    unknown = external_target("http://127.0.0.1:8000").settings()
    assert unknown["slots"] is None and unknown["interface"] == "unknown"
    with pytest.raises(ServerError, match="not started by gatebench"):
        target.command("127.0.0.1", 8000)


def test_attaching_to_nothing_is_one_line_and_samples_no_server() -> None:
    port = free_port()  # nothing listens there
    target = external_target(f"http://127.0.0.1:{port}")
    assert isinstance(target, ExternalTarget)
    with pytest.raises(ServerError, match="does not answer") as failed, attach(target):
        pass
    assert "\n" not in str(failed.value)
    attached = AttachedServer(target)
    assert attached.pid is None and attached.port == port and not attached.alive()
    assert sampled_roles(attached, 123) == {"generator": 123}


@pytest.mark.cli
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--url", "http://10.1.2.3:8000"], ("host 10.1.2.3", "--allow-remote")),
        (["--url", "https://127.0.0.1:8000"], ("add --ca FILE", "verifies the server")),
        (["--url", "http://127.0.0.1:8000", "--ca", "/etc/hostname"], ("--ca goes with",)),
        (["--url", "https://127.0.0.1:8000", "--ca", "/etc/hostname"], ("not a PEM",)),
        (["--url", "https://127.0.0.1:8000", "--ca", "/no/such.pem"], ("cannot be read",)),
        (["--url", "http://127.0.0.1:8000", "--http", "3"], ("--http 3", "1.1, 2")),
        (["--ca", "/etc/hostname"], ("--ca goes with --url",)),
        (["--url", "http://127.0.0.1"], ("both host and port",)),
        (["--url", "http://127.0.0.1:8000", "--targets", "fastapi-uvicorn"], ("--targets",)),
        (["--url", "http://127.0.0.1:8000", "--set", "flask-gunicorn-sync.workers=2"], ("--set",)),
        (["--url", "http://127.0.0.1:8000", "--slots", "0"], ("--slots",)),
        (["--url", "http://127.0.0.1:8000", "--interface", "cgi"], ("--interface", "wsgi")),
        (["--slots", "4"], ("--slots goes with --url",)),
    ],
)
def test_bad_url_usage_is_one_line_and_exit_2(args: list[str], words: tuple[str, ...]) -> None:
    done = harness("run", *args, "--no-verify", "--no-calibrate", "--out", "/nonexistent-never")
    one_line_error(done, *words)
    assert "cells" not in done.stdout + done.stderr  # nothing started


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``python -m harness serve fastapi-uvicorn`` in its own process, as a user would."""
    port = free_port()
    output = tmp_path / "serve.out"
    with open(output, "wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "serve", "fastapi-uvicorn", "--port", str(port)],
            cwd=PROJECT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, output.read_text()
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)  # serve stops its server on SIGTERM
        proc.wait(timeout=15)


@pytest.mark.e2e
def test_run_url_benchmarks_a_server_it_did_not_start(served: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = run_harness(
        "run", "--url", served, "--slots", "8", "--interface", "asgi", "--scenarios", "io",
        "--users", "10", "--duration", "2", "--warmup", "1", "--no-calibrate",
        "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(run_dir / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    row = rows[0]
    assert row["target"] == EXTERNAL_NAME and row["status"] == "ok"
    assert float(row["rps"]) > 0
    for column in ("server_cpu_pct", "server_rss_mb", "server_pss_mb", "other_cpu_pct"):
        assert row[column] == "", column
    assert row["generator_cpu_pct"] != ""
    assert row["slots"] == "8" and row["interface"] == "asgi"
    assert "slots" in row["ceilings"]  # from --slots: 8 / (50 ms + overhead)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    entry = manifest["targets"][EXTERNAL_NAME]
    assert entry["url"] == served and entry["external"] is True and entry["slots"] == 8
    assert manifest["verify"][EXTERNAL_NAME]["passed"] is True
    assert manifest["verify"][EXTERNAL_NAME]["io_overhead_ms"] is not None
    assert not list((run_dir / "raw").glob("server__*.log"))  # no server started, no log
    report = (run_dir / "report.md").read_text()
    assert "server CPU and memory were not measured" in report
    assert f"the target at {served} was not started by gatebench" in report


@pytest.mark.e2e
def test_run_url_over_https_and_http2_verifies_with_the_given_ca(tmp_path: Path) -> None:
    """``serve fastapi-granian-h2`` (HTTP/2 over TLS only, its own certificate) and
    ``run --url https://... --ca ITS_CA --http 2``: the h2 scenario speaks h2 to it, verified
    against that CA, and its ceiling calibrated there; the tls scenario (FastHttpUser, HTTP/1.1)
    is left out."""
    port = free_port()
    output = tmp_path / "serve.out"
    with open(output, "wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", "serve", "fastapi-granian-h2", "--port", str(port)],
            cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while " ready at " not in output.read_text():
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "serve was not ready within 30 s"
            time.sleep(0.1)
        ready = output.read_text().split(" ready at ", 1)[1]
        url = ready.split()[0]
        ca = ready.split("trust ", 1)[1].split(";", 1)[0]
        assert url == f"https://127.0.0.1:{port}" and Path(ca).is_file()
        run_dir = tmp_path / "run"
        done = run_harness(
            "run", "--url", url, "--ca", ca, "--http", "2", "--scenarios", "h2,tls",
            "--users", "4", "--duration", "1", "--warmup", "0.5", "--out", str(run_dir),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        # tls's users (FastHttpUser) speak HTTP/1.1 only: left out, and said so
        assert "scenario tls has users speaking HTTP/1.1, not the HTTP/2 of external" in (
            done.stderr + done.stdout
        )
        with open(run_dir / "summary.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [(r["scenario"], r["status"]) for r in rows] == [("h2", "ok")]
        row = rows[0]
        assert row["protocol"] == "h2" and row["tls"] == "True" and row["failures"] == "0"
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["verify"][EXTERNAL_NAME]["passed"] is True
        assert manifest["targets"][EXTERNAL_NAME]["ca_file"] == ca
        assert "tls" not in manifest  # gatebench made no certificate: the server has its own
        # the HTTP/2 user's ceiling, calibrated on the server itself, over its TLS
        calibration = manifest["calibration"]
        assert calibration["h2"]["http"] == "2" and calibration["h2"]["rps"] > 0
        assert float(row["generator_ceiling_rps"]) == pytest.approx(calibration["h2"]["rps"])
        go = json.loads((run_dir / "raw" / row["cell_id"] / "go.json").read_text())
        assert go["link"]["ca_pem"] == Path(ca).read_text() and go["link"]["http"] == "2"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
