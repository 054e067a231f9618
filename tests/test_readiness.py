"""harness.run.servers readiness: serve() yields once every worker is up and has loaded the
app, not at the first 200 from /health; how many processes each server runs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import psutil
import pytest

import targets.registry
from harness.run import servers
from harness.run.servers import (
    SERVER_LAYOUTS,
    ProcessLayout,
    ServerError,
    expected_processes,
    process_layout,
    rss_change,
    serve,
)
from targets.registry import MULTI_WORKERS, SERVER_COMMANDS, TARGETS


def test_every_server_has_a_process_layout() -> None:
    assert set(SERVER_COMMANDS) <= set(SERVER_LAYOUTS)


@pytest.mark.parametrize(
    ("name", "workers", "processes"),
    [
        ("flask-gunicorn-sync", None, 5),  # master + 4 workers
        ("flask-gunicorn-gthread", 2, 3),
        ("fastapi-gunicorn-uvicorn", None, MULTI_WORKERS + 1),
        ("fastapi-uvicorn", None, 1),  # one worker: uvicorn runs it in its own process
        ("fastapi-uvicorn", 3, 4),  # several: a master spawns them
        ("fastapi-uvicorn-workers", None, MULTI_WORKERS + 1),
        ("django-daphne", None, 1),
        ("flask-granian", None, 2),  # granian always runs a worker under its master
        ("fastapi-granian", 2, 3),
        ("fastapi-hypercorn", None, 2),  # hypercorn spawns even one worker under its master
        ("fastapi-hypercorn-h2", 3, 4),
        ("fastapi-granian-h2c", None, 2),
    ],
)
def test_processes_per_target(name: str, workers: int | None, processes: int) -> None:
    target = TARGETS[name].with_settings(workers=workers)
    assert expected_processes(target) == processes
    layout = process_layout(target)
    assert layout.workers == (1 if target.server == "daphne" else target.workers)
    assert layout.processes == processes


def test_rss_change_is_the_largest_relative_move() -> None:
    assert rss_change({}, {1: 100}) is None  # nothing to compare with
    assert rss_change({1: 100, 2: 100}, {1: 100, 3: 100}) is None  # another process
    assert rss_change({1: 100, 2: 100}, {1: 100, 2: 100}) == 0.0
    # one worker still growing shows even when the total hardly moves
    assert rss_change({1: 1000, 2: 10}, {1: 1000, 2: 11}) == pytest.approx(0.1)
    assert rss_change({1: 1000, 2: 1000}, {1: 1005, 2: 1005}) == pytest.approx(0.005)


def served_by(proc: psutil.Process) -> str:
    """The text of the process's memory maps: which shared libraries it has loaded."""
    return Path(f"/proc/{proc.pid}/maps").read_text()


# A C extension each app's import loads: in a worker's maps once it has imported the app.
APP_LIBRARY = {"flask": "markupsafe", "fastapi": "pydantic_core"}


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name", ["flask-gunicorn-sync", "fastapi-uvicorn-workers", "flask-granian", "fastapi-hypercorn"]
)
def test_serve_yields_once_every_worker_has_loaded_the_app(tmp_path: Path, name: str) -> None:
    target = TARGETS[name]
    with serve(target, tmp_path / "server.log") as server:
        workers = server.workers()
        root = psutil.Process(server.pid)
        tree = [root, *root.children(recursive=True)]
        sizes = {w.pid: w.memory_info().rss for w in workers}
        maps = {w.pid: served_by(w) for w in workers}
        helpers = [" ".join(p.cmdline()) for p in tree if p not in workers and p != root]
    layout = process_layout(target)
    assert len(workers) == layout.workers == target.workers
    assert all("multiprocessing" in line for line in helpers), helpers
    assert len(tree) - len(helpers) == expected_processes(target)
    library = APP_LIBRARY[target.framework]
    assert all(library in text for text in maps.values()), f"a worker has not loaded {library}"
    largest = max(sizes.values())
    assert all(size >= 0.8 * largest for size in sizes.values()), sizes


# A stand-in server: answers /health at once, forks CHILDREN processes and, with "grow",
# keeps allocating memory: never settles.
FAKE_SERVER = """
import http.server, os, sys, threading, time
port, children, grow = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "grow"
for _ in range(children):
    if os.fork() == 0:
        time.sleep(120)
        os._exit(0)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
threading.Thread(target=server.serve_forever, daemon=True).start()
held = []
while True:
    if grow and len(held) < 400:
        held.append(bytearray(1_000_000))
        for i in range(0, 1_000_000, 4096):
            held[-1][i] = 1
    time.sleep(0.02)
"""


@pytest.mark.parametrize(
    ("children", "grow", "expected"),
    [
        (1, "still", "1 of its 3 workers running"),
        (3, "grow", "all 3 workers running, but its memory still changed"),
    ],
)
def test_a_server_that_does_not_come_fully_up_fails_naming_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: int, grow: str, expected: str
) -> None:
    monkeypatch.setitem(
        targets.registry.SERVER_COMMANDS,
        "fake",
        lambda t, host, port, tls: [
            sys.executable,
            "-c",
            FAKE_SERVER,
            str(port),
            str(children),
            grow,
        ],
    )
    monkeypatch.setitem(SERVER_LAYOUTS, "fake", "master")
    monkeypatch.setattr(servers, "READY_TIMEOUT_S", 2.5)
    fake = dataclasses.replace(TARGETS["fastapi-uvicorn"], name="fake", server="fake", workers=3)
    assert process_layout(fake) == ProcessLayout(master=True, workers=3)
    log = tmp_path / "fake.log"
    with pytest.raises(ServerError) as info, serve(fake, log):
        pytest.fail("serve() yielded a server that is not fully up")
    message = str(info.value)
    assert "target fake answered /health but was not fully up within 2 s" in message
    assert expected in message and str(log) in message
