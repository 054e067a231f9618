"""harness.run.profiles: the profile table stays consistent with targets, scenarios and budgets."""

from __future__ import annotations

import pytest

from harness.run.plan import RunOptions, build_plan
from harness.run.profiles import DEFAULT_PROFILE, MAIN_TARGETS, PROFILES, Profile
from harness.run.scenarios import SCENARIO_DIR, Scenario, discover
from targets.registry import TARGETS

CELL_OVERHEAD_S = 3.0  # server start, verification and locust start-up per cell
SMOKE_BUDGET_S = 60.0


@pytest.fixture(scope="module")
def shipped() -> dict[str, Scenario]:
    scenarios, broken = discover()
    assert not broken, broken
    return scenarios


def test_profile_names_match_keys() -> None:
    assert PROFILES
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.description.strip()


def test_default_profile_exists() -> None:
    assert DEFAULT_PROFILE in PROFILES


@pytest.mark.parametrize("profile", PROFILES.values(), ids=list(PROFILES))
def test_profile_values_are_sane(profile: Profile) -> None:
    assert profile.users and all(u >= 1 for u in profile.users)
    assert len(set(profile.users)) == len(profile.users)
    assert profile.duration_s > 0
    assert profile.warmup_s >= 0
    assert profile.trials >= 1


@pytest.mark.parametrize("profile", PROFILES.values(), ids=list(PROFILES))
def test_profile_targets_exist(profile: Profile) -> None:
    for name in profile.targets or ():
        assert name in TARGETS, f"profile {profile.name} names unknown target {name}"


@pytest.mark.parametrize("profile", PROFILES.values(), ids=list(PROFILES))
def test_profile_scenarios_exist_as_files(profile: Profile) -> None:
    for name in profile.scenarios or ():
        assert (SCENARIO_DIR / f"{name}.py").is_file(), f"profile {profile.name}: no {name}.py"
        assert not name.startswith("_")


def test_main_targets_exist() -> None:
    assert set(MAIN_TARGETS) <= set(TARGETS)


def test_smoke_shape() -> None:
    smoke = PROFILES["smoke"]
    assert smoke.scenarios is not None and len(smoke.scenarios) == 1
    assert smoke.targets is not None and len(smoke.targets) == 2
    assert len(smoke.users) == 2
    assert smoke.trials == 1
    # one WSGI and one ASGI target, so the smoke run still compares the two
    assert {TARGETS[t].interface for t in smoke.targets} == {"wsgi", "asgi"}


def test_smoke_fits_in_a_minute(shipped: dict[str, Scenario]) -> None:
    # Built from the real scenario files: a scenario's own duration/warmup settings
    # override the profile, so they count against the smoke budget too.
    cells = build_plan(RunOptions(profile="smoke"), PROFILES["smoke"], shipped, list(TARGETS))
    assert len(cells) == 4
    estimate = sum(c.warmup_s + c.duration_s + CELL_OVERHEAD_S for c in cells)
    assert estimate < SMOKE_BUDGET_S, f"smoke estimated at {estimate:.0f} s"


@pytest.mark.parametrize("name", ["default", "full"])
def test_default_and_full_cover_main_targets(name: str) -> None:
    targets = PROFILES[name].targets
    covered = set(TARGETS) if targets is None else set(targets)
    assert {"flask-gunicorn-sync", "flask-gunicorn-gthread", "fastapi-uvicorn"} <= covered


def test_default_runs_every_scenario_but_those_for_http2_targets(
    shipped: dict[str, Scenario],
) -> None:
    default = PROFILES["default"]
    cells = build_plan(RunOptions(profile="default"), default, shipped, list(TARGETS))
    assert default.skip_scenarios == ("h2",)
    assert {c.scenario for c in cells} == set(shipped) - {"h2"}
    # the protocol profile runs it, on targets that speak HTTP/2
    protocol = PROFILES["protocol"]
    cells = build_plan(RunOptions(profile="protocol"), protocol, shipped, list(TARGETS))
    assert "h2" in {c.scenario for c in cells}
    assert {TARGETS[c.target].http for c in cells if c.scenario == "h2"} == {"1.1", "2"}


def test_full_has_several_trials() -> None:
    assert PROFILES["full"].trials >= 3
