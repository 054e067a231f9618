"""Trials run in rounds: every cell of trial 1, then of trial 2, with a fresh server per trial
(and per cell where the users hold connections); the manifest's "order" says what ran when."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.run import runner as runner_module
from harness.run.cpus import Pinning
from harness.run.plan import RunOptions, build_plan
from harness.run.profiles import Profile
from harness.run.runner import CellSettings, Runner, chained_sweeps, plan_sweeps, run_order
from harness.run.scenarios import Scenario
from harness.schema import STATUS_OK, CellRecord, Manifest
from targets.registry import TARGETS

PROJECT = Path(__file__).resolve().parent.parent
PROFILE = Profile(name="t", description="t", users=(10,), duration_s=1.0, warmup_s=0.0, trials=1)
TWO = ["fastapi-uvicorn", "flask-gunicorn-sync"]


def scenario(name: str, path: Path | None = None, holds: bool = False) -> Scenario:
    return Scenario(
        name=name,
        path=path or Path(f"/nowhere/{name}.py"),
        description=name,
        user_classes=("U",),
        holds_connections=holds,
    )


def records_for(
    scenarios: dict[str, Scenario], trials: int, users: tuple[int, ...] = (10,),
    rates: tuple[float, ...] | None = None,
) -> list[CellRecord]:  # fmt: skip
    options = RunOptions(
        profile="t", scenarios=tuple(scenarios), targets=tuple(TWO), users=users, trials=trials,
        rates=rates,
    )  # fmt: skip
    return [CellRecord(cell) for cell in build_plan(options, PROFILE, scenarios, TWO)]


def test_two_trials_run_both_targets_of_trial_one_first() -> None:
    records = records_for({"io": scenario("io")}, trials=2)
    assert run_order(records) == [
        "io__fastapi-uvicorn__u10__t1",
        "io__flask-gunicorn-sync__u10__t1",
        "io__fastapi-uvicorn__u10__t2",
        "io__flask-gunicorn-sync__u10__t2",
    ]
    sweeps = plan_sweeps(records)
    assert list(sweeps) == [(1, "io", "closed"), (2, "io", "closed")]
    assert all(list(by_target) == TWO for by_target in sweeps.values())


def test_rounds_cover_every_scenario_load_model_and_level_before_the_next_trial() -> None:
    records = records_for(
        {"a": scenario("a"), "b": scenario("b")}, trials=3, users=(5, 10), rates=(100.0,)
    )
    order = run_order(records)
    assert sorted(order) == sorted(r.cell.cell_id for r in records)  # each cell once
    trials = [int(cell_id.rsplit("__t", 1)[1]) for cell_id in order]
    assert trials == sorted(trials)  # no cell of a trial before every cell of the one before
    keys = list(plan_sweeps(records))
    assert keys == [
        (trial, name, model) for trial in (1, 2, 3) for name in ("a", "b")
        for model in ("closed", "open")
    ]  # fmt: skip
    # the closed sweep, then the open one; within a sweep targets, then load levels, in the
    # plan's order
    first = [cid for cid in order if cid.startswith("a__") and cid.endswith("__t1")]
    assert first == [
        "a__fastapi-uvicorn__u5__t1", "a__fastapi-uvicorn__u10__t1",
        "a__flask-gunicorn-sync__u5__t1", "a__flask-gunicorn-sync__u10__t1",
        "a__fastapi-uvicorn__r100__t1", "a__flask-gunicorn-sync__r100__t1",
    ]  # fmt: skip


def test_one_locust_process_runs_consecutive_sweeps_of_a_scenario() -> None:
    one = plan_sweeps(records_for({"io": scenario("io")}, trials=3))
    assert chained_sweeps(list(one)) == [[(1, "io", "closed"), (2, "io", "closed"),
                                          (3, "io", "closed")]]  # fmt: skip
    two = plan_sweeps(records_for({"a": scenario("a"), "b": scenario("b")}, trials=2))
    assert chained_sweeps(list(two)) == [
        [(1, "a", "closed")],
        [(1, "b", "closed")],
        [(2, "a", "closed")],
        [(2, "b", "closed")],
    ]


def test_only_pending_cells_are_planned() -> None:
    records = records_for({"io": scenario("io")}, trials=2)
    records[0].status = STATUS_OK
    assert records[0].cell.cell_id == "io__fastapi-uvicorn__u10__t1"
    assert run_order(records) == [
        "io__flask-gunicorn-sync__u10__t1",
        "io__fastapi-uvicorn__u10__t2",
        "io__flask-gunicorn-sync__u10__t2",
    ]


# --- the runner's servers, without servers or locust -------------------------------------------


class FakeGenerator:
    def __init__(self, *args: Any) -> None:
        self.pid = 0
        self.pids = [0]
        self.proc = None
        self.procs: list[Any] = []
        self.argv: list[str] = []

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        pass


class FakeSampler:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> FakeSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run_without_servers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, holds: bool, trials: int
) -> tuple[list[tuple[str, str, list[str]]], Manifest, list[CellRecord]]:
    """Run a 2-target plan with fakes; the servers started (target, log, cells run on it)."""
    path = tmp_path / "io.py"
    path.write_text('"""io"""\n')
    scenarios = {"io": scenario("io", path, holds=holds)}
    records = records_for(scenarios, trials=trials, users=(5, 10))
    started: list[tuple[str, str, list[str]]] = []

    @contextlib.contextmanager
    def fake_serve(
        target: Any,
        log: Path,
        cpus: Any,
        background_stop: bool = False,
        env: Any = None,
        tls: Any = None,
    ) -> Iterator[Any]:
        ran: list[str] = []
        started.append((target.name, log.name, ran))
        yield SimpleNamespace(
            pid=0, port=1, url="http://fake", log_path=log, target=target, alive=lambda: True,
            ran=ran, ca_pem=None,
        )  # fmt: skip

    def fake_stage(cell: Any, cell_dir: Path, server: Any, *args: Any) -> dict[str, Any]:
        server.ran.append(cell.cell_id)
        return {"successes": 10, "failures": 0, "duration_s": 1.0, "complete": True}

    monkeypatch.setattr(runner_module, "serve", fake_serve)
    monkeypatch.setattr(runner_module, "run_stage", fake_stage)
    monkeypatch.setattr(runner_module, "Generator", FakeGenerator)
    monkeypatch.setattr(runner_module, "Sampler", FakeSampler)
    monkeypatch.setattr(runner_module, "stop_in_background", lambda proc: None)
    manifest: Manifest = {"warnings": []}
    settings = CellSettings(Pinning(None, None, False, ""))
    runner = Runner(
        tmp_path, manifest, records, scenarios, dict(TARGETS), settings, progress=lambda _: None
    )
    runner.run()
    return started, manifest, records


def test_a_fresh_server_per_target_and_trial(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started, manifest, records = run_without_servers(monkeypatch, tmp_path, holds=False, trials=2)
    assert [(name, log) for name, log, _ in started] == [
        ("fastapi-uvicorn", "server__io__fastapi-uvicorn__t1.log"),
        ("flask-gunicorn-sync", "server__io__flask-gunicorn-sync__t1.log"),
        ("fastapi-uvicorn", "server__io__fastapi-uvicorn__t2.log"),
        ("flask-gunicorn-sync", "server__io__flask-gunicorn-sync__t2.log"),
    ]
    # a target's load levels of one trial share its server; never across trials
    assert started[0][2] == [
        "io__fastapi-uvicorn__u5__t1", "io__fastapi-uvicorn__u10__t1"
    ]  # fmt: skip
    assert manifest["order"] == run_order([replace(r, status="pending") for r in records])
    assert [cid for _, _, ran in started for cid in ran] == manifest["order"]
    assert all(r.status == STATUS_OK for r in records)


def test_connection_holding_users_get_a_fresh_server_every_cell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started, manifest, _ = run_without_servers(monkeypatch, tmp_path, holds=True, trials=1)
    assert [ran for _, _, ran in started] == [[cell_id] for cell_id in manifest["order"]]
    assert len(started) == 4
    # one trial: the server logs keep their plain names
    assert {log for _, log, _ in started} == {
        "server__io__fastapi-uvicorn.log", "server__io__flask-gunicorn-sync.log"
    }  # fmt: skip
