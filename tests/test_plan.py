"""harness.run.plan: options + profile + scenarios -> the list of cells, with precedence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.run.plan import RunOptions, build_plan, select
from harness.run.profiles import Profile
from harness.run.scenarios import Scenario, ScenarioError
from harness.units import UsageError

TARGET_NAMES = ["flask-gunicorn-sync", "flask-gunicorn-gthread", "fastapi-uvicorn"]

PROFILE = Profile(
    name="test",
    description="a test profile",
    users=(10, 50),
    duration_s=5.0,
    warmup_s=2.0,
    trials=1,
)


def scenario(name: str, **fields: object) -> Scenario:
    base = Scenario(
        name=name,
        path=Path(f"/nowhere/{name}.py"),
        description=f"{name} scenario",
        user_classes=("U",),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def plain() -> dict[str, Scenario]:
    return {"io": scenario("io", service_time_ms=50.0), "cpu": scenario("cpu")}


def test_cell_count_is_the_product() -> None:
    options = RunOptions(profile="test", users=(1, 2, 3), trials=2)
    cells = build_plan(options, PROFILE, plain(), TARGET_NAMES)
    assert len(cells) == 2 * 3 * 3 * 2
    combos = {(c.scenario, c.target, c.users, c.trial) for c in cells}
    assert len(combos) == len(cells)
    assert {c.scenario for c in cells} == {"io", "cpu"}
    assert {c.target for c in cells} == set(TARGET_NAMES)
    assert {c.trial for c in cells} == {1, 2}
    assert all(c.load_model == "closed" and c.rate is None for c in cells)


def test_service_time_comes_from_scenario() -> None:
    cells = build_plan(RunOptions(profile="test"), PROFILE, plain(), TARGET_NAMES)
    assert {c.service_time_ms for c in cells if c.scenario == "io"} == {50.0}
    assert {c.service_time_ms for c in cells if c.scenario == "cpu"} == {None}


def test_profile_values_when_nothing_else_given() -> None:
    cells = build_plan(RunOptions(profile="test"), PROFILE, {"cpu": scenario("cpu")}, TARGET_NAMES)
    assert sorted({c.users for c in cells}) == [10, 50]
    assert {c.duration_s for c in cells} == {5.0}
    assert {c.warmup_s for c in cells} == {2.0}
    assert {c.trial for c in cells} == {1}


def test_scenario_settings_beat_profile() -> None:
    scenarios = {"s": scenario("s", users=(3, 7, 11), duration_s=9.0, warmup_s=0.0)}
    cells = build_plan(RunOptions(profile="test"), PROFILE, scenarios, ["fastapi-uvicorn"])
    assert [c.users for c in cells] == [3, 7, 11]
    assert {c.duration_s for c in cells} == {9.0}
    assert {c.warmup_s for c in cells} == {0.0}  # zero warm-up is a given value, not "missing"


def test_cli_beats_scenario_settings() -> None:
    scenarios = {"s": scenario("s", users=(3, 7), duration_s=9.0, warmup_s=4.0)}
    options = RunOptions(profile="test", users=(100,), duration_s=1.5, warmup_s=0.0)
    cells = build_plan(options, PROFILE, scenarios, ["fastapi-uvicorn"])
    assert [c.users for c in cells] == [100]
    assert {c.duration_s for c in cells} == {1.5}
    assert {c.warmup_s for c in cells} == {0.0}


def test_cli_trials_beat_profile() -> None:
    cells = build_plan(
        RunOptions(profile="test", trials=3), PROFILE, {"s": scenario("s")}, ["fastapi-uvicorn"]
    )
    assert [c.trial for c in cells] == [1, 2, 3] * 2


def test_profile_without_scenario_settings_ignores_scenario_sweep() -> None:
    profile = replace(PROFILE, scenario_settings=False)
    scenarios = {"s": scenario("s", users=(3, 7, 11), duration_s=9.0)}
    cells = build_plan(RunOptions(profile="test"), profile, scenarios, ["fastapi-uvicorn"])
    assert sorted({c.users for c in cells}) == [10, 50]
    # the CLI still wins over such a profile
    cells = build_plan(
        RunOptions(profile="test", users=(4,)), profile, scenarios, ["fastapi-uvicorn"]
    )
    assert [c.users for c in cells] == [4]


def test_profile_scenarios_and_targets_used_when_cli_silent() -> None:
    profile = replace(PROFILE, scenarios=("io",), targets=("fastapi-uvicorn",))
    cells = build_plan(RunOptions(profile="test"), profile, plain(), TARGET_NAMES)
    assert {(c.scenario, c.target) for c in cells} == {("io", "fastapi-uvicorn")}


def test_cli_scenarios_and_targets_beat_profile() -> None:
    profile = replace(PROFILE, scenarios=("io",), targets=("fastapi-uvicorn",))
    options = RunOptions(profile="test", scenarios=("cpu",), targets=("flask-gunicorn-sync",))
    cells = build_plan(options, profile, plain(), TARGET_NAMES)
    assert {(c.scenario, c.target) for c in cells} == {("cpu", "flask-gunicorn-sync")}


def test_order_follows_the_cli() -> None:
    options = RunOptions(
        profile="test",
        scenarios=("io", "cpu"),
        targets=("fastapi-uvicorn", "flask-gunicorn-sync"),
        users=(50, 10),
    )
    cells = build_plan(options, PROFILE, plain(), TARGET_NAMES)
    assert [(c.scenario, c.target, c.users) for c in cells] == [
        ("io", "fastapi-uvicorn", 50),
        ("io", "fastapi-uvicorn", 10),
        ("io", "flask-gunicorn-sync", 50),
        ("io", "flask-gunicorn-sync", 10),
        ("cpu", "fastapi-uvicorn", 50),
        ("cpu", "fastapi-uvicorn", 10),
        ("cpu", "flask-gunicorn-sync", 50),
        ("cpu", "flask-gunicorn-sync", 10),
    ]


def test_unknown_scenario_names_choices() -> None:
    with pytest.raises(UsageError) as info:
        build_plan(RunOptions(profile="test", scenarios=("nope",)), PROFILE, plain(), TARGET_NAMES)
    message = str(info.value)
    assert "'nope'" in message
    assert "cpu" in message and "io" in message


def test_unknown_target_names_choices() -> None:
    options = RunOptions(profile="test", targets=("django-daphne",))
    with pytest.raises(UsageError) as info:
        build_plan(options, PROFILE, plain(), TARGET_NAMES)
    message = str(info.value)
    assert "'django-daphne'" in message
    for name in TARGET_NAMES:
        assert name in message


def test_unknown_scenario_in_profile_is_rejected() -> None:
    profile = replace(PROFILE, scenarios=("gone",))
    with pytest.raises(UsageError, match="'gone'"):
        build_plan(RunOptions(profile="test"), profile, plain(), TARGET_NAMES)


def test_select_defaults_to_every_known() -> None:
    assert select(None, None, ["a", "b"], "thing") == ("a", "b")
    assert select(None, ("b",), ["a", "b"], "thing") == ("b",)
    assert select(("a",), ("b",), ["a", "b"], "thing") == ("a",)
    with pytest.raises(UsageError, match="unknown thing 'c'; choose from a, b"):
        select(("c",), None, ["b", "a"], "thing")


def test_selecting_broken_scenario_raises_its_error() -> None:
    message = "scenario file /x/bad.py: syntax error at line 3: invalid syntax"
    broken = {"bad": message}
    with pytest.raises(UsageError) as info:
        build_plan(
            RunOptions(profile="test", scenarios=("bad",)), PROFILE, plain(), TARGET_NAMES, broken
        )
    assert str(info.value) == message


def test_broken_scenario_also_blocks_every_scenario_run() -> None:
    broken = {"bad": "scenario file /x/bad.py: declares no locust User class"}
    with pytest.raises(UsageError, match=r"bad\.py"):
        build_plan(RunOptions(profile="test"), PROFILE, plain(), TARGET_NAMES, broken)


def test_broken_scenario_not_selected_does_not_matter() -> None:
    broken = {"bad": "scenario file /x/bad.py: broken"}
    cells = build_plan(
        RunOptions(profile="test", scenarios=("io",)), PROFILE, plain(), TARGET_NAMES, broken
    )
    assert {c.scenario for c in cells} == {"io"}


def test_scenario_error_is_a_usage_error() -> None:
    assert issubclass(ScenarioError, UsageError)


@pytest.mark.parametrize("trials", [0, -1])
def test_trials_below_one_rejected(trials: int) -> None:
    with pytest.raises(UsageError, match="trials"):
        build_plan(RunOptions(profile="test", trials=trials), PROFILE, plain(), TARGET_NAMES)


def test_profile_trials_below_one_rejected() -> None:
    with pytest.raises(UsageError, match="trials"):
        build_plan(RunOptions(profile="test"), replace(PROFILE, trials=0), plain(), TARGET_NAMES)


def test_cell_id_format() -> None:
    cells = build_plan(
        RunOptions(profile="test", scenarios=("io",), targets=("fastapi-uvicorn",), users=(25,)),
        PROFILE,
        plain(),
        TARGET_NAMES,
    )
    assert [c.cell_id for c in cells] == ["io__fastapi-uvicorn__u25__t1"]
    assert cells[0].to_dict()["cell_id"] == "io__fastapi-uvicorn__u25__t1"


def test_open_cell_id_uses_rate() -> None:
    cell = replace(
        build_plan(RunOptions(profile="test"), PROFILE, {"s": scenario("s")}, ["fastapi-uvicorn"])[
            0
        ],
        load_model="open",
        rate=250.0,
    )
    assert cell.cell_id == "s__fastapi-uvicorn__r250__t1"


def test_cell_ids_unique_across_plan() -> None:
    scenarios = {**plain(), "json": scenario("json", users=(1, 10, 50))}
    cells = build_plan(RunOptions(profile="test", trials=3), PROFILE, scenarios, TARGET_NAMES)
    ids = [c.cell_id for c in cells]
    assert len(ids) == len(set(ids)) == (2 * 2 + 3) * 3 * 3


def test_duplicate_user_counts_do_not_give_duplicate_cell_ids() -> None:
    # `--users 10,10` passes parse_int_list and build_plan makes two cells with the same
    # cell_id (io__fastapi-uvicorn__u10__t1): both write raw/<cell_id>/. The plan should
    # de-duplicate (or reject) repeated user counts.
    options = RunOptions(profile="test", scenarios=("io",), users=(10, 10))
    cells = build_plan(options, PROFILE, plain(), TARGET_NAMES)
    ids = [c.cell_id for c in cells]
    assert len(ids) == len(set(ids))
