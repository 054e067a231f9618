"""CPU pinning: disjoint CPU sets for the target server and the load generator.

On a small machine the generator and the server compete for CPU; pinning them apart
makes every target get the same CPU budget and keeps the generator from stealing it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.units import UsageError


@dataclass(frozen=True)
class Pinning:
    server_cpus: tuple[int, ...] | None
    generator_cpus: tuple[int, ...] | None
    applied: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "server_cpus": list(self.server_cpus) if self.server_cpus else None,
            "generator_cpus": list(self.generator_cpus) if self.generator_cpus else None,
            "applied": self.applied,
            "note": self.note,
        }


def usable_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def choose_pinning(
    server: Sequence[int] | None = None, generator: Sequence[int] | None = None
) -> Pinning:
    """Defaults: the first half of the usable CPUs for the server, the rest for locust."""
    cpus = usable_cpus()
    for option, chosen in (("--server-cpus", server), ("--generator-cpus", generator)):
        for cpu in chosen or ():
            if cpu not in cpus:
                raise UsageError(f"{option}: CPU {cpu} is not usable here; usable: {cpus}")
    if server and generator and set(server) & set(generator):
        raise UsageError(
            f"--server-cpus {list(server)} and --generator-cpus {list(generator)} overlap"
        )
    if server is None and generator is None and len(cpus) < 2:
        return Pinning(
            None, None, False, f"only {len(cpus)} usable CPU: server and generator share it"
        )
    half = max(1, len(cpus) // 2)
    if server:
        server_set = tuple(server)
    elif generator:
        server_set = tuple(c for c in cpus if c not in generator)
    else:
        server_set = tuple(cpus[:half])
    generator_set = tuple(generator) if generator else tuple(c for c in cpus if c not in server_set)
    if not server_set or not generator_set:
        return Pinning(None, None, False, "no disjoint CPU sets possible: pinning not applied")
    return Pinning(server_set, generator_set, True, "server and generator on disjoint CPU sets")
