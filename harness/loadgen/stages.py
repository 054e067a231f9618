"""The sweep plan: what one locust process runs, and how the orchestrator paces it.

One locust process runs a whole sweep (every load level of a scenario, over every target
of the run) instead of one process per cell: starting locust costs about a second, which
across a default run was most of the harness's overhead. Each **stage** is one cell. The
orchestrator writes the plan (``write_plan``) before starting locust, then paces it one stage
at a time: when the target's server is ready (and the previous stage's results are in), it
writes the stage's go file (``write_go``) into the cell's folder, naming the host to load;
the extension (``harness.loadgen.extension``) waits for it, starts the stage's users from
zero, opens the warm-up and measurement windows, stops the users and writes the cell's files,
``latency.json`` last. A go file that says ``skip`` passes over a stage (its server failed).

Standard library only: the orchestrator imports this module, and must never load locust.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.fileio import atomic_write_text

GO_FILE = "go.json"  # in a cell's folder: the orchestrator's go-ahead for that stage
PLAN_FILE = "sweep.json"  # in the folder of a sweep's first cell
READY_FILE = "generators.json"  # beside the plan: a locust master's workers have all joined


@dataclass(frozen=True)
class Stage:
    """One cell as the locust process runs it."""

    cell_id: str
    out_dir: str  # the cell's raw folder: go.json is read there, its results written there
    load_model: str  # "closed" (users) or "open" (arrival rate)
    users: int
    rate: float | None
    warmup_s: float
    duration_s: float
    arrivals: str = "poisson"  # open load: "poisson" or "fixed"
    seed: int = -1  # open load: arrival seed, -1 for a random one
    log: bool = False  # also write every request's latency (requests.csv)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_plan(path: Path, stages: list[Stage]) -> Path:
    return atomic_write_text(path, json.dumps({"stages": [s.to_dict() for s in stages]}, indent=1))


def read_plan(path: str | Path) -> list[Stage]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return [Stage(**entry) for entry in data["stages"]]


def read_ready(plan_dir: Path) -> dict[str, Any] | None:
    """What a locust master wrote once every expected worker joined, or None before."""
    try:
        data: dict[str, Any] = json.loads((plan_dir / READY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data


def write_go(out_dir: Path, host: str | None, link: dict[str, Any] | None = None) -> Path:
    """Let the stage in ``out_dir`` start against ``host``, reached as ``link`` says
    (``harness.loadgen.link.Link.to_dict``: HTTP version, TLS CA, connection policy, streams;
    None: plain HTTP/1.1 with keep-alive); host None: skip it."""
    payload: dict[str, Any] = {"skip": True} if host is None else {"host": host}
    if host is not None and link is not None:
        payload["link"] = link
    return atomic_write_text(out_dir / GO_FILE, json.dumps(payload))


def read_go(out_dir: str) -> dict[str, Any] | None:
    """The go-ahead for a stage, or None while there is none yet."""
    try:
        with open(os.path.join(out_dir, GO_FILE), encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        return None
    return data
