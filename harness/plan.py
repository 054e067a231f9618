"""Turning options, a profile and the discovered scenarios into the list of cells to run.

A cell is one scenario x target x load level x trial. Values come from, highest first:
command-line options, the scenario file's settings, the profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.profiles import Profile
from harness.scenarios import Scenario
from harness.schema import Cell
from harness.units import UsageError


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for on the command line (None: not given)."""

    profile: str
    scenarios: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    users: tuple[int, ...] | None = None
    duration_s: float | None = None
    warmup_s: float | None = None
    trials: int | None = None
    out: str | None = None
    server_cpus: tuple[int, ...] | None = None
    generator_cpus: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select(
    names: tuple[str, ...] | None, default: tuple[str, ...] | None, known: list[str], what: str
) -> tuple[str, ...]:
    """The chosen names, in the order given; every one must be known."""
    chosen = names if names is not None else (default if default is not None else tuple(known))
    for name in chosen:
        if name not in known:
            raise UsageError(f"unknown {what} {name!r}; choose from {', '.join(sorted(known))}")
    return chosen


def build_plan(
    options: RunOptions,
    profile: Profile,
    scenarios: dict[str, Scenario],
    target_names: list[str],
    broken: dict[str, str] | None = None,
) -> list[Cell]:
    broken = broken or {}
    chosen_scenarios = select(
        options.scenarios, profile.scenarios, sorted([*scenarios, *broken]), "scenario"
    )
    for name in chosen_scenarios:
        if name in broken:
            raise UsageError(broken[name])
    chosen_targets = select(options.targets, profile.targets, target_names, "target")
    trials = options.trials if options.trials is not None else profile.trials
    if trials < 1:
        raise UsageError(f"--trials {trials}: must be at least 1")
    cells = []
    for scenario_name in chosen_scenarios:
        scenario = scenarios[scenario_name]
        own = profile.scenario_settings
        users = options.users or (own and scenario.users) or profile.users
        duration = options.duration_s or (own and scenario.duration_s) or profile.duration_s
        warmup = _first_given(
            options.warmup_s, scenario.warmup_s if own else None, profile.warmup_s
        )
        for target in chosen_targets:
            for user_count in dict.fromkeys(users):  # a repeated count would reuse a cell_id
                for trial in range(1, trials + 1):
                    cells.append(
                        Cell(
                            scenario=scenario_name,
                            target=target,
                            load_model="closed",
                            users=user_count,
                            rate=None,
                            trial=trial,
                            duration_s=duration,
                            warmup_s=warmup,
                            service_time_ms=scenario.service_time_ms,
                        )
                    )
    return cells


def _first_given(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    raise ValueError("no value given")
