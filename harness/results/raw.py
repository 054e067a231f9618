"""Reading a run folder's files as the runner left them: the manifest and each cell's raw files.

``manifest.json``, and per cell under ``raw/<cell_id>/``: ``latency.json``, ``resources.csv``,
locust's own ``locust_stats.csv`` and ``stall.json``. A missing or unreadable raw file reads as
None, never an exception: a half-finished run still renders. Only a missing or broken manifest
is an error (the folder is not a run). Nothing here computes a figure.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, cast

import pandas as pd

from harness import schema
from harness.schema import Manifest

LOCUST_STATS_FILE = f"{schema.LOCUST_CSV_PREFIX}_stats.csv"


def finite_number(value: Any) -> float | None:
    """A finite float, or None for empty, null, "N/A" and other non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_manifest(run_dir: Path | str) -> Manifest:
    """The run's manifest.json; ValueError naming the path when there is none or it is broken."""
    path = Path(run_dir) / schema.MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"{Path(run_dir)} is not a gatebench run folder: no {path.name} there")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return cast(Manifest, manifest)


def calibration_rps(manifest: Manifest) -> float | None:
    """The generator's ceiling measured by the run's calibration, None when not measured."""
    calibration = manifest.get("calibration")
    return finite_number(calibration.get("rps")) if isinstance(calibration, dict) else None


def cell_dir(run_dir: Path | str, cell_id: str) -> Path:
    return Path(run_dir) / schema.RAW_DIR / cell_id


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_latency(run_dir: Path | str, cell_id: str) -> dict[str, Any] | None:
    """A cell's latency.json, or None when it is missing or unreadable."""
    return _read_json(cell_dir(run_dir, cell_id) / schema.LATENCY_FILE)


def read_stall(run_dir: Path | str, cell_id: str) -> dict[str, Any] | None:
    """A cell's stall.json (``at`` epoch seconds, ``for_s``), or None when there was no stall."""
    return _read_json(cell_dir(run_dir, cell_id) / schema.STALL_FILE)


def read_resources(run_dir: Path | str, cell_id: str) -> pd.DataFrame | None:
    """A cell's resources.csv (``schema.RESOURCES_FILE``), or None when unusable; the numeric
    columns as floats (a run from before pss_mb/conns/steal_pct reads without them)."""
    path = cell_dir(run_dir, cell_id) / schema.RESOURCES_FILE
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if not {"t", "role", "cpu_pct", "rss_mb"} <= set(frame.columns):
        return None
    for column in ("t", "cpu_pct", "rss_mb", "pss_mb", "steal_pct"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    if "conns" in frame:
        frame["conns"] = frame["conns"].astype("string")
    return frame


def read_locust_aggregate(run_dir: Path | str, cell_id: str) -> dict[str, str] | None:
    """The ``Aggregated`` row of locust's own stats CSV, or None."""
    path = cell_dir(run_dir, cell_id) / LOCUST_STATS_FILE
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("Name") == "Aggregated":
                    return row
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None
