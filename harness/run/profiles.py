"""The profile table: named sets of run options (what `make bench PROFILE=...` means).

Precedence, highest first: command-line options, then a scenario file's ``settings``,
then the profile. A profile that names no scenarios runs every scenario file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from targets.registry import MAIN_TARGETS, PROTOCOL_TARGETS, TARGETS

PROTOCOL_ONLY = ("h2",)  # scenarios whose cells are for HTTP/2 targets (the protocol profile)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    users: tuple[int, ...]
    duration_s: float
    warmup_s: float
    trials: int
    scenarios: tuple[str, ...] | None = None  # None: every scenario file
    targets: tuple[str, ...] | None = None  # None: every target
    # A profile can ignore scenario settings (sweep, duration, warm-up) to keep its budget.
    scenario_settings: bool = True
    # With scenarios None: scenario files left out (their cells need targets this profile
    # does not run: h2 is for the HTTP/2 targets of the protocol profile).
    skip_scenarios: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="smoke",
            description="under a minute: io on two targets, two user counts, a few seconds each",
            users=(10, 50),
            duration_s=3.0,
            warmup_s=1.0,
            trials=1,
            scenarios=("io",),
            targets=("flask-gunicorn-sync", "fastapi-uvicorn"),
            scenario_settings=False,
        ),
        Profile(
            name="default",
            description="what `make bench` runs: every scenario x the three targets, a sweep "
            "(h2 is left to the protocol profile: these targets speak HTTP/1.1)",
            users=(10, 50, 100, 200),
            duration_s=3.0,
            warmup_s=1.5,
            trials=1,
            targets=MAIN_TARGETS,
            skip_scenarios=PROTOCOL_ONLY,
        ),
        Profile(
            name="full",
            description="longer cells and 3 trials each, for numbers you publish",
            users=(10, 25, 50, 100, 200, 400),
            duration_s=20.0,
            warmup_s=5.0,
            trials=3,
            targets=MAIN_TARGETS,
            skip_scenarios=PROTOCOL_ONLY,
        ),
        Profile(
            name="protocol",
            description="HTTP/2, TLS and new connections: h2 on the same servers over HTTP/1.1, "
            "h2c and h2 (TLS), and the cheap route with keep-alive, TLS and a connection per "
            "request on the main stacks",
            users=(10, 64),
            duration_s=3.0,
            warmup_s=1.5,
            trials=1,
            scenarios=("health", "tls", "newconn", "newconn_tls", "h2"),
            targets=PROTOCOL_TARGETS,
        ),
        Profile(
            name="stacks",
            description="io and cpu over every target in the table: where the gap comes from",
            users=(10, 100),
            duration_s=3.0,
            warmup_s=1.5,
            trials=1,
            scenarios=("io", "cpu"),
            targets=tuple(TARGETS),
            scenario_settings=False,
        ),
    )
}

DEFAULT_PROFILE = "default"
