"""targets.registry: the target table, capacity (slots) and server command lines."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

import targets.registry
from targets.registry import (
    FASTAPI_APP,
    PROTOCOL_TARGETS,
    SERVER_COMMANDS,
    TARGETS,
    Target,
    TlsFiles,
)


def option(argv: list[str], flag: str) -> str:
    assert argv.count(flag) == 1, f"{flag} not exactly once in {argv}"
    return argv[argv.index(flag) + 1]


def test_names_match_keys_and_main_targets_present() -> None:
    for name, target in TARGETS.items():
        assert target.name == name
    assert {"flask-gunicorn-sync", "flask-gunicorn-gthread", "fastapi-uvicorn"} <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_row_is_consistent(target: Target) -> None:
    assert target.server in SERVER_COMMANDS
    assert target.interface in {"wsgi", "asgi"}
    module, _, attribute = target.app.partition(":")
    assert module.startswith("targets.") and attribute
    assert target.workers >= 1 and target.threads >= 1
    assert target.description.strip()


def test_both_interfaces_represented() -> None:
    assert {t.interface for t in TARGETS.values()} == {"wsgi", "asgi"}


def test_slots_sync_is_workers() -> None:
    sync = TARGETS["flask-gunicorn-sync"]
    assert sync.worker_class == "sync"
    assert sync.slots == sync.workers == 4


def test_slots_gthread_is_workers_times_threads() -> None:
    gthread = TARGETS["flask-gunicorn-gthread"]
    assert gthread.worker_class == "gthread"
    assert gthread.slots == gthread.workers * gthread.threads == 32


def test_slots_asyncio_is_unbounded() -> None:
    assert TARGETS["fastapi-uvicorn"].slots is None
    assert TARGETS["fastapi-uvicorn"].with_settings(workers=4).slots is None


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_command_is_argv_with_host_port_app(target: Target) -> None:
    argv = target.command("127.0.0.1", 18765)
    assert isinstance(argv, list) and argv
    assert all(isinstance(item, str) for item in argv)
    assert argv[-1] == target.app
    assert "127.0.0.1" in " ".join(argv)
    assert "18765" in " ".join(argv)
    assert "0.0.0.0" not in argv
    # one argument per item: never a shell string
    assert not any(" " in item for item in argv)


def test_gunicorn_binds_host_port() -> None:
    argv = TARGETS["flask-gunicorn-sync"].command("127.0.0.1", 8001)
    assert "gunicorn" in argv
    assert option(argv, "--bind") == "127.0.0.1:8001"
    assert option(argv, "--worker-class") == "sync"
    assert option(argv, "--workers") == "4"
    assert "--threads" not in argv


def test_gthread_passes_threads() -> None:
    argv = TARGETS["flask-gunicorn-gthread"].command("127.0.0.1", 8002)
    assert option(argv, "--worker-class") == "gthread"
    assert option(argv, "--workers") == "4"
    assert option(argv, "--threads") == "8"


def test_uvicorn_binds_host_port() -> None:
    argv = TARGETS["fastapi-uvicorn"].command("127.0.0.1", 8003)
    assert "uvicorn" in argv
    assert option(argv, "--host") == "127.0.0.1"
    assert option(argv, "--port") == "8003"
    assert option(argv, "--workers") == "1"


def test_with_settings_overrides_counts() -> None:
    base = TARGETS["flask-gunicorn-gthread"]
    changed = base.with_settings(workers=2, threads=3)
    assert (changed.workers, changed.threads, changed.slots) == (2, 3, 6)
    argv = changed.command("127.0.0.1", 9000)
    assert option(argv, "--workers") == "2"
    assert option(argv, "--threads") == "3"
    # the table itself is untouched
    assert (base.workers, base.threads) == (4, 8)
    assert TARGETS["flask-gunicorn-gthread"].slots == 32


def test_with_settings_partial_keeps_the_rest() -> None:
    base = TARGETS["flask-gunicorn-gthread"]
    assert base.with_settings(workers=1).threads == base.threads
    assert base.with_settings(threads=2).workers == base.workers
    assert base.with_settings() == base


def test_sync_target_refuses_a_thread_count_it_would_not_run() -> None:
    # gunicorn passes --threads only to gthread workers: accepting threads=8 on a sync
    # target would report 32 slots for a server that runs 4, a bound 8x too high.
    with pytest.raises(ValueError, match="only gthread workers and granian"):
        TARGETS["flask-gunicorn-sync"].with_settings(threads=8)
    changed = TARGETS["flask-gunicorn-gthread"].with_settings(threads=2)
    argv = changed.command("127.0.0.1", 9000)
    assert changed.slots == changed.workers * int(option(argv, "--threads"))


def test_settings_record_for_manifest() -> None:
    settings = TARGETS["fastapi-uvicorn"].settings()
    assert settings["name"] == "fastapi-uvicorn"
    assert settings["slots"] is None
    assert settings["interface"] == "asgi"
    assert TARGETS["flask-gunicorn-gthread"].settings()["slots"] == 32


def registry_on_a_machine_with(cpus: int, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """targets/registry.py executed afresh as if the host had ``cpus`` usable CPUs.

    Loaded under another module name, so the real ``targets.registry`` (and the ``Target``
    class other modules hold) is left alone.
    """
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    name = f"_registry_with_{cpus}_cpus"
    spec = importlib.util.spec_from_file_location(name, targets.registry.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_target_names_do_not_depend_on_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # `compare` matches targets across runs by name: a run on a 2-CPU laptop and one on a
    # 64-CPU server must name the same targets alike. Worker counts may differ (they are
    # settings, recorded in the manifest), names may not.
    tables = {cpus: registry_on_a_machine_with(cpus, monkeypatch).TARGETS for cpus in (1, 2, 8, 64)}
    for cpus, table in tables.items():
        assert list(table) == list(TARGETS), f"names differ with {cpus} CPUs"
    # The fake CPU count did reach the table: the CPU-budget rows scale with it.
    workers = {cpus: table["fastapi-uvicorn-workers"].workers for cpus, table in tables.items()}
    assert workers == {1: 2, 2: 2, 8: 4, 64: 32}
    assert tables[64]["fastapi-uvicorn-workers"].settings()["workers"] == 32


# --- HTTP versions and TLS ------------------------------------------------------------------

TLS = TlsFiles(certfile=Path("/run/tls/server.pem"), keyfile=Path("/run/tls/server.key"))
# Each server's TLS options: (certificate flag, key flag).
TLS_OPTIONS = {
    "gunicorn": ("--certfile", "--keyfile"),
    "uvicorn": ("--ssl-certfile", "--ssl-keyfile"),
    "granian": ("--ssl-certificate", "--ssl-keyfile"),
    "hypercorn": ("--certfile", "--keyfile"),
}
TLS_FLAGS = {flag for pair in TLS_OPTIONS.values() for flag in pair} | {"--endpoint"}


def test_protocol_rows() -> None:
    rows = {
        name: (TARGETS[name].server, TARGETS[name].http, TARGETS[name].tls)
        for name in PROTOCOL_TARGETS
    }
    assert rows == {
        "fastapi-hypercorn": ("hypercorn", "1.1", False),
        "fastapi-hypercorn-tls": ("hypercorn", "1.1", True),
        "fastapi-hypercorn-h2c": ("hypercorn", "2", False),
        "fastapi-hypercorn-h2": ("hypercorn", "2", True),
        "fastapi-granian": ("granian", "1.1", False),
        "fastapi-granian-h2c": ("granian", "2", False),
        "fastapi-granian-h2": ("granian", "2", True),
        "fastapi-uvicorn": ("uvicorn", "1.1", False),
        "flask-gunicorn-gthread": ("gunicorn", "1.1", False),
    }
    for name in PROTOCOL_TARGETS[:7]:  # the new rows differ from fastapi-granian by server/link
        target = TARGETS[name]
        assert (target.app, target.framework, target.interface) == (FASTAPI_APP, "fastapi", "asgi")
        assert (target.workers, target.concurrency, target.pool) == (1, "event-loop", 10)
    # Only the protocol rows speak HTTP/2 or always serve TLS.
    others = [t for t in TARGETS.values() if t.name not in PROTOCOL_TARGETS]
    assert all(t.http == "1.1" and not t.tls for t in others)


def test_http_and_tls_are_validated() -> None:
    base = TARGETS["fastapi-hypercorn"]
    with pytest.raises(ValueError, match=re.escape("target x: http '3' unknown; one of 1.1, 2")):
        replace(base, name="x", http="3")
    with pytest.raises(ValueError, match="target x: tls must be True or False"):
        replace(base, name="x", tls="yes")  # type: ignore[arg-type]


def test_settings_record_http_and_tls() -> None:
    settings = TARGETS["fastapi-granian-h2"].settings()
    assert (settings["http"], settings["tls"]) == ("2", True)
    plain = TARGETS["fastapi-uvicorn"].settings()
    assert plain["http"] == "1.1" and plain["tls"] is False


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_without_tls_a_command_has_no_tls_options(target: Target) -> None:
    argv = target.command("127.0.0.1", 18765)
    assert argv == target.command("127.0.0.1", 18765, None)
    assert not TLS_FLAGS & set(argv)


@pytest.mark.parametrize(
    "name", [n for n, t in TARGETS.items() if t.server in TLS_OPTIONS], ids=str
)
def test_with_tls_each_server_gets_its_options(name: str) -> None:
    target = TARGETS[name]
    argv = target.command("127.0.0.1", 18765, TLS)
    cert_flag, key_flag = TLS_OPTIONS[target.server]
    assert option(argv, cert_flag) == "/run/tls/server.pem"
    assert option(argv, key_flag) == "/run/tls/server.key"
    assert argv[-1] == target.app
    # TLS only adds its options: everything else is the plain command.
    plain = target.command("127.0.0.1", 18765)
    assert [
        a for a in argv if a not in (cert_flag, key_flag, str(TLS.certfile), str(TLS.keyfile))
    ] == plain


def test_daphne_serves_tls_through_a_twisted_endpoint() -> None:
    daphne = TARGETS["django-daphne"]
    files = TlsFiles(certfile=Path("/tmp/a:b/c=d.pem"), keyfile=Path("/tmp/k.key"))
    argv = daphne.command("127.0.0.1", 8443, files)
    assert "--bind" not in argv and "--port" not in argv
    assert option(argv, "--endpoint") == (
        "ssl:port=8443:interface=127.0.0.1:privateKey=/tmp/k.key:certKey=/tmp/a\\:b/c\\=d.pem"
    )
    assert argv[-1] == daphne.app


def test_granian_speaks_http2_only_for_http2_rows() -> None:
    assert "--http" not in TARGETS["fastapi-granian"].command("127.0.0.1", 1)
    for name in ("fastapi-granian-h2c", "fastapi-granian-h2"):
        assert option(TARGETS[name].command("127.0.0.1", 1), "--http") == "2"


def test_hypercorn_command() -> None:
    argv = TARGETS["fastapi-hypercorn-h2c"].command("127.0.0.1", 8004)
    assert argv[1:3] == ["-m", "hypercorn"]
    assert option(argv, "--bind") == "127.0.0.1:8004"
    assert option(argv, "--workers") == "1"
    assert option(argv, "--backlog") == "4096"
    assert option(argv, "--log-level") == "warning"
    assert not any("access" in item for item in argv)  # hypercorn logs no access by default
    # One command for HTTP/1.1, h2c and h2: hypercorn serves them all on one port.
    assert argv == TARGETS["fastapi-hypercorn"].command("127.0.0.1", 8004)
