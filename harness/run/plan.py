"""Turning options, a profile and the discovered scenarios into the list of cells to run.

A cell is one scenario x target x load level x trial. Values come from, highest first:
command-line options, the scenario file's settings, the profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness.run.profiles import Profile
from harness.run.scenarios import Scenario
from harness.schema import Cell
from harness.units import UsageError
from targets.registry import Target


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
    rates: tuple[float, ...] | None = None  # open-model arrival rates, requests/s
    arrivals: str = "poisson"  # open-model spacing: "poisson" or "fixed"
    stall_at_s: float | None = None  # pause the server this long into each window...
    stall_for_s: float | None = None  # ...for this many seconds (testing the tester)
    latency_log: bool = False  # also write every request's latency to raw/<cell>/
    calibrate: bool = True
    verify: bool = True
    # One-run target overrides: (target, setting, value), setting "workers" or "threads".
    overrides: tuple[tuple[str, str, int], ...] = ()
    # --url: a server gatebench does not start (harness.run.external), its slots and interface
    url: str | None = None
    slots: int | None = None
    interface: str | None = None
    url_http: str = "1.1"  # --http: the HTTP version the server at --url speaks
    url_ca: str | None = None  # --ca: the CA file an https --url's certificate chains to
    # Several load generators (harness.run.generators): local locust workers (None: one plain
    # locust process, or none beside external ones), workers joining from other hosts, and
    # the master's HOST[:PORT] for them.
    generators: int | None = None
    generators_external: int = 0
    master_bind: str | None = None
    net_delay_ms: float | None = None  # --url: one-way delay added on the link (netem)

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
    known = sorted([*scenarios, *broken])
    default = profile.scenarios
    if default is None:  # every scenario file but those the profile leaves to another
        default = tuple(name for name in known if name not in profile.skip_scenarios)
    chosen_scenarios = select(options.scenarios, default, known, "scenario")
    for name in chosen_scenarios:
        if name in broken:
            raise UsageError(broken[name])
    chosen_targets = select(options.targets, profile.targets, target_names, "target")
    for name, setting, value in options.overrides:
        if name not in chosen_targets:
            raise UsageError(
                f"--set {name}.{setting}={value}: target {name} is not in this run "
                f"(its targets: {', '.join(chosen_targets)}); add it to --targets or drop --set"
            )
    trials = options.trials if options.trials is not None else profile.trials
    if trials < 1:
        raise UsageError(f"--trials {trials}: must be at least 1")
    cells = []
    for scenario_name in chosen_scenarios:
        scenario = scenarios[scenario_name]
        if options.rates and scenario.open_problem:
            raise UsageError(
                f"scenario {scenario_name} supports closed load only (--users): "
                f"{scenario.open_problem}"
            )
        own = profile.scenario_settings
        # --rates alone asks for open load only; with --users too, for both.
        closed = not options.rates or options.users is not None
        users = (options.users or (own and scenario.users) or profile.users) if closed else ()
        duration = options.duration_s or (own and scenario.duration_s) or profile.duration_s
        warmup = _first_given(
            options.warmup_s, scenario.warmup_s if own else None, profile.warmup_s
        )
        if options.stall_at_s is not None and options.stall_at_s >= duration:
            raise UsageError(
                f"--stall-at {options.stall_at_s:g}: outside the measurement window, which "
                f"lasts {duration:g} s (scenario {scenario_name}); choose a value below "
                f"{duration:g}"
            )
        levels: list[tuple[str, int, float | None]] = [
            ("closed", count, None) for count in dict.fromkeys(users)
        ]
        levels += [("open", 1, rate) for rate in options.rates or ()]
        for target in chosen_targets:
            for load_model, user_count, rate in levels:
                for trial in range(1, trials + 1):
                    cells.append(
                        Cell(
                            scenario=scenario_name,
                            target=target,
                            load_model=load_model,
                            users=user_count,
                            rate=rate,
                            trial=trial,
                            duration_s=duration,
                            warmup_s=warmup,
                            service_time_ms=scenario.service_time_ms,
                            slot_time_ms=scenario.slot_time_ms,
                        )
                    )
    return cells


def _first_given(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    raise ValueError("no value given")


def apply_overrides(
    targets: dict[str, Target], overrides: tuple[tuple[str, str, int], ...]
) -> dict[str, Target]:
    """The target table with one run's worker/thread overrides applied (a copy)."""
    table = dict(targets)
    for name, setting, value in overrides:
        if name not in table:
            raise UsageError(f"--set: unknown target {name!r}; choose from {', '.join(table)}")
        try:
            table[name] = table[name].with_settings(**{setting: value})
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--set {name}.{setting}={value}: {exc}") from None
    return table


def parse_override(text: str) -> tuple[str, str, int]:
    """'flask-gunicorn-sync.workers=2' -> ('flask-gunicorn-sync', 'workers', 2)."""
    target, dot, rest = text.partition(".")
    setting, equals, value = rest.partition("=")
    if not (dot and equals and target and setting in OVERRIDABLE):
        raise UsageError(
            f"--set {text!r}: expected TARGET.SETTING=N with SETTING one of "
            f"{', '.join(OVERRIDABLE)}, e.g. flask-gunicorn-sync.workers=2"
        )
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise UsageError(f"--set {text!r}: {value!r} is not a positive whole number")
    return target, setting, int(value)


OVERRIDABLE = ("workers", "threads", "pool")


def served_cells(
    cells: list[Cell], scenarios: dict[str, Scenario], targets: dict[str, Target]
) -> tuple[list[Cell], list[str]]:
    """The cells a target can serve, and a note per (scenario, target) left out: a scenario
    that needs a service (settings "needs") runs only on targets serving the real-I/O routes,
    and a scenario runs only on targets speaking an HTTP version its users speak (settings
    "http": locust's FastHttpUser speaks HTTP/1.1 only, so an HTTP/2-only server is left to
    the HTTP/2 scenarios). A plan left with no cell at all is a UsageError."""
    kept: list[Cell] = []
    dropped: dict[tuple[str, str], list[str]] = {}  # (scenario, why) -> targets left out
    for cell in cells:
        why = _not_served(scenarios[cell.scenario], targets[cell.target])
        if why is None:
            kept.append(cell)
            continue
        names = dropped.setdefault((cell.scenario, why), [])
        if cell.target not in names:
            names.append(cell.target)
    notes = [
        f"scenario {name} "
        + why.format(targets=", ".join(names), verb="does" if len(names) == 1 else "do")
        + ": left out"
        for (name, why), names in dropped.items()
    ]
    if cells and not kept:
        raise UsageError("; ".join(notes))
    return kept, notes


def _not_served(scenario: Scenario, target: Target) -> str | None:
    """Why the target cannot serve the scenario's cells, with ``{targets}`` and ``{verb}`` to
    fill in (several targets may share the reason); None when it can."""
    if scenario.needs is not None and not target.serves_real_io:
        return f"needs the {scenario.needs} routes, which {{targets}} {{verb}} not serve"
    if scenario.tls and not target.tls and not target.tls_on_demand:
        return "asks for TLS, which {targets} (not started by gatebench) {verb} not serve"
    if target.http not in scenario.http:
        speaks = " or ".join(f"HTTP/{v}" for v in scenario.http)
        return f"has users speaking {speaks}, not the HTTP/{target.http} of {{targets}}"
    return None
