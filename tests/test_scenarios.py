"""harness.run.scenarios: real discovery (files imported by harness.loadgen.probe, a subprocess)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.scenarios import (
    SCENARIO_DIR,
    SETTINGS_KEYS,
    Scenario,
    ScenarioError,
    discover,
    from_report,
    scenario_files,
)

PROJECT = Path(__file__).resolve().parent.parent

GOOD = '''\
"""A good scenario: waits on the server.

Second paragraph of the description.
"""

from locust import FastHttpUser, constant, task

settings = {"users": [5, 15], "service_time_ms": 20, "duration": "1m30s", "warmup": 0}


class GoodUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def io(self) -> None:
        self.client.get("/io?ms=20")
'''

MINIMAL = '''\
"""Minimal: no settings at all."""

from locust import HttpUser, task


class MinimalUser(HttpUser):
    @task
    def root(self) -> None:
        self.client.get("/")
'''


def user_file(settings: str = "", host: str = "", header: str = "") -> str:
    host_line = f"    host = {host!r}\n" if host else ""
    return (
        f'"""A scenario."""\n{header}\nfrom locust import FastHttpUser, task\n\n{settings}\n\n'
        f"class U(FastHttpUser):\n{host_line}    @task\n    def t(self) -> None:\n"
        '        self.client.get("/")\n'
    )


# name -> (file text, fragments the error message must contain)
BROKEN: dict[str, tuple[str, tuple[str, ...]]] = {
    "syntax": ('"""Broken."""\nx = (\n', ("syntax error", "line")),
    "missing_import": (
        '"""Broken."""\nimport gatebench_no_such_module_xyz\n',
        ("import failed", "ModuleNotFoundError", "gatebench_no_such_module_xyz"),
    ),
    "raises": ('"""Broken."""\nraise RuntimeError("boom at import")\n', ("RuntimeError", "boom")),
    "no_user": ('"""No user."""\nimport locust\n\nx = 1\n', ("no locust User class",)),
    "no_tasks": (
        '"""No tasks."""\nfrom locust import FastHttpUser\n\n\nclass U(FastHttpUser):\n    pass\n',
        ("no tasks", "U"),
    ),
    "host": (user_file(host="http://example.com"), ("hard-codes a host", "http://example.com")),
    "settings_list": (user_file("settings = [10, 50]"), ("settings must be a dict",)),
    "settings_str": (user_file("settings = 'users=10'"), ("settings must be a dict",)),
    "unknown_key": (
        user_file('settings = {"users": [10], "userz": [5]}'),
        ("unknown settings key", "userz", *SETTINGS_KEYS),
    ),
    "users_zero": (user_file('settings = {"users": [0]}'), ("invalid settings", "users", "0")),
    "users_str": (user_file('settings = {"users": "10"}'), ("invalid settings", "users", "'10'")),
    "users_empty": (user_file('settings = {"users": []}'), ("invalid settings", "users")),
    "users_bool": (user_file('settings = {"users": [True]}'), ("invalid settings", "users")),
    "users_float": (user_file('settings = {"users": [1.5]}'), ("invalid settings", "users")),
    "service_negative": (
        user_file('settings = {"service_time_ms": -1}'),
        ("invalid settings", "service_time_ms", "-1"),
    ),
    "service_zero": (
        user_file('settings = {"service_time_ms": 0}'),
        ("invalid settings", "service_time_ms"),
    ),
    "duration_abc": (
        user_file('settings = {"duration": "abc"}'),
        ("invalid settings", "duration", "'abc'"),
    ),
    "duration_zero": (user_file('settings = {"duration": 0}'), ("invalid settings", "duration")),
    "warmup_negative": (user_file('settings = {"warmup": -1}'), ("invalid settings", "warmup")),
    "connection_word": (
        user_file('settings = {"connection": "sometimes"}'),
        ("invalid settings", "connection", "'sometimes'", "every N"),
    ),
    "connection_every_zero": (
        user_file('settings = {"connection": "every 0"}'),
        ("invalid settings", "connection", "'every 0'"),
    ),
    "tls_text": (user_file('settings = {"tls": "yes"}'), ("invalid settings", "tls", "'yes'")),
    "http_three": (user_file('settings = {"http": ["3"]}'), ("invalid settings", "http", "'3'")),
    "http_text": (user_file('settings = {"http": "2"}'), ("invalid settings", "http")),
    "streams_half": (user_file('settings = {"streams": 1.5}'), ("invalid settings", "streams")),
    "streams_zero": (user_file('settings = {"streams": 0}'), ("invalid settings", "streams")),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scenarios")
    (root / "good.py").write_text(GOOD)
    (root / "minimal.py").write_text(MINIMAL)
    # a helper: not a scenario, and broken on purpose so that importing it would show
    (root / "_helper.py").write_text("this is not python (\n")
    (root / "notes.txt").write_text("not a python file\n")
    for name, (text, _) in BROKEN.items():
        (root / f"{name}.py").write_text(text)
    return root


@pytest.fixture(scope="module")
def discovered(folder: Path) -> tuple[dict[str, Scenario], dict[str, str]]:
    return discover(folder)


def test_discover_returns_scenarios_and_broken(
    discovered: tuple[dict[str, Scenario], dict[str, str]],
) -> None:
    scenarios, broken = discovered
    assert isinstance(scenarios, dict) and isinstance(broken, dict)
    assert set(scenarios) == {"good", "minimal"}
    assert set(broken) == set(BROKEN)
    assert all(isinstance(message, str) for message in broken.values())


def test_helpers_and_non_python_files_ignored(
    folder: Path, discovered: tuple[dict[str, Scenario], dict[str, str]]
) -> None:
    scenarios, broken = discovered
    assert "_helper" not in scenarios and "_helper" not in broken
    assert "notes" not in scenarios and "notes" not in broken
    assert folder / "_helper.py" not in scenario_files(folder)


def test_good_file_read_fully(
    folder: Path, discovered: tuple[dict[str, Scenario], dict[str, str]]
) -> None:
    good = discovered[0]["good"]
    assert good.name == "good"
    assert good.path == folder / "good.py"
    assert good.description.startswith("A good scenario: waits on the server.")
    assert "Second paragraph" in good.description
    assert good.summary == "A good scenario: waits on the server."
    assert good.user_classes == ("GoodUser",)
    assert good.users == (5, 15)
    assert good.service_time_ms == 20.0
    assert good.duration_s == 90.0
    assert good.warmup_s == 0.0
    assert good.settings == {
        "users": [5, 15],
        "service_time_ms": 20,
        "duration": "1m30s",
        "warmup": 0,
    }
    assert good.sha256 == hashlib.sha256((folder / "good.py").read_bytes()).hexdigest()
    assert good.to_dict()["file"] == str(folder / "good.py")


def test_file_without_settings_leaves_everything_to_profile(
    discovered: tuple[dict[str, Scenario], dict[str, str]],
) -> None:
    minimal = discovered[0]["minimal"]
    assert minimal.description == "Minimal: no settings at all."
    assert minimal.user_classes == ("MinimalUser",)
    assert (minimal.users, minimal.service_time_ms, minimal.duration_s, minimal.warmup_s) == (
        None,
        None,
        None,
        None,
    )
    assert minimal.settings == {}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_file_message_names_file_and_problem(
    name: str, folder: Path, discovered: tuple[dict[str, Scenario], dict[str, str]]
) -> None:
    message = discovered[1][name]
    assert str(folder / f"{name}.py") in message
    for fragment in BROKEN[name][1]:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in message
    assert "\n" not in message


def test_from_report_raises_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    path.write_text("")
    report = {"doc": "d", "settings": None, "user_classes": [], "hosts": [], "error": None}
    with pytest.raises(ScenarioError, match=r"x\.py: declares no locust User class"):
        from_report(path, report)


def test_missing_folder_is_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        discover(tmp_path / "nope")


def test_empty_folder_discovers_nothing(tmp_path: Path) -> None:
    assert discover(tmp_path) == ({}, {})


def test_discovery_never_imports_locust_in_the_orchestrator() -> None:
    # Importing locust monkey-patches the stdlib with gevent: discovery must leave that
    # to the probe subprocess. Checked in a fresh interpreter so other tests cannot mask it.
    code = (
        "import sys\n"
        "from harness.run.scenarios import discover\n"
        "scenarios, broken = discover()\n"
        "assert scenarios, 'nothing discovered'\n"
        "print('locust' in sys.modules, 'gevent' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_scenario_may_import_a_helper_file(tmp_path: Path) -> None:
    # Files starting with "_" are helpers for scenarios. locust puts the locustfile's
    # folder on sys.path, so `from _common import PATH` runs under locust, but
    # harness.loadgen.probe loads files with spec_from_file_location without that folder on
    # sys.path: the scenario is reported broken ("No module named '_common'").
    (tmp_path / "_common.py").write_text('PATH = "/io?ms=5"\n')
    (tmp_path / "uses_helper.py").write_text(
        user_file(header="from _common import PATH  # noqa: F401")
    )
    scenarios, broken = discover(tmp_path)
    assert broken == {}
    assert set(scenarios) == {"uses_helper"}


def test_print_at_import_does_not_break_discovery(tmp_path: Path) -> None:
    # harness.loadgen.probe writes its JSON report to stdout, and scenario files run in the same
    # process: a module-level print() corrupts the report and discover() raises
    # json.JSONDecodeError (not even a ScenarioError) for every file in the folder.
    (tmp_path / "chatty.py").write_text(user_file(header='print("loading chatty")'))
    (tmp_path / "good.py").write_text(GOOD)
    scenarios, broken = discover(tmp_path)
    assert broken == {}
    assert set(scenarios) == {"chatty", "good"}


def test_non_json_settings_message_names_the_real_problem(tmp_path: Path) -> None:
    # settings = {"users": {10, 50}} (a set) is a dict; the probe cannot JSON it and sends
    # its repr, so the error says "settings must be a dict" — which it is. The message
    # should point at the value that is not a list/number/string.
    (tmp_path / "setval.py").write_text(user_file('settings = {"users": {10, 50}}'))
    _, broken = discover(tmp_path)
    assert "setval" in broken
    assert "must be a dict" not in broken["setval"]


# --- the shipped scenarios -------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> tuple[dict[str, Scenario], dict[str, str]]:
    return discover(SCENARIO_DIR)


def test_shipped_scenarios_discover_cleanly(
    shipped: tuple[dict[str, Scenario], dict[str, str]],
) -> None:
    scenarios, broken = shipped
    assert broken == {}
    expected = {p.stem for p in SCENARIO_DIR.glob("*.py") if not p.name.startswith("_")}
    assert set(scenarios) == expected
    assert scenarios, "no scenario files shipped"


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in SCENARIO_DIR.glob("*.py") if not p.name.startswith("_"))
)
def test_shipped_scenario_is_described(
    name: str, shipped: tuple[dict[str, Scenario], dict[str, str]]
) -> None:
    scenarios, broken = shipped
    assert name not in broken, broken.get(name)
    scenario = scenarios[name]
    assert scenario.description.strip()
    assert scenario.summary
    assert scenario.user_classes


def test_io_scenario_declares_service_time(
    shipped: tuple[dict[str, Scenario], dict[str, str]],
) -> None:
    # the Little's-law bound needs it for the I/O scenario
    assert shipped[0]["io"].service_time_ms == 50.0
