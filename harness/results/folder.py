"""The one public way to open a finished (or half-finished) run folder for analysis.

``load(path)`` gives the manifest, the summary table and the folder; charts, reports,
``compare`` and notebooks start from it. It reads only the folder: ``summary.csv`` when the
run wrote one, otherwise the table is rebuilt from the raw files. ``per_second`` reads one
cell's successes and failures second by second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness import schema
from harness.results.raw import read_latency, read_manifest
from harness.results.rows import LOAD_AXES, ok_only
from harness.results.summary import build_summary, coerce_summary
from harness.results.trials import GROUP_KEYS
from harness.schema import Calibration, Manifest

PER_SECOND_COLUMNS = ("second", "successes", "failures")


@dataclass
class Results:
    """A run folder opened for analysis."""

    manifest: Manifest
    summary: pd.DataFrame
    run_dir: Path

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.run_dir.name)

    @property
    def status(self) -> str:
        return str(self.manifest.get("status") or "unknown")

    @property
    def targets(self) -> dict[str, dict[str, Any]]:
        """Target settings as recorded in the manifest, by name."""
        return dict(self.manifest.get("targets") or {})

    @property
    def target_names(self) -> list[str]:
        """Every target of the run, sorted: the stable order for colours and tables."""
        names = set(self.targets) | set(self.summary["target"].dropna().astype(str))
        return sorted(names)

    @property
    def scenario_names(self) -> list[str]:
        """Scenarios in the order the run planned them."""
        return list(dict.fromkeys(self.summary["scenario"].dropna().astype(str)))

    def scenario_description(self, scenario: str) -> str:
        """First line of the scenario's description (its docstring), or ""."""
        info = (self.manifest.get("scenarios") or {}).get(scenario) or {}
        text = str(info.get("description") or "").strip()
        return text.splitlines()[0].strip() if text else ""

    def ok_rows(self) -> pd.DataFrame:
        """Rows of cells that ran to completion."""
        return ok_only(self.summary)

    def scenario_rows(self, scenario: str, load_model: str | None = None) -> pd.DataFrame:
        """Every summary row (any status) of one scenario, under one load model if given."""
        summary = self.summary
        rows = summary[summary["scenario"].eq(scenario).fillna(False)]
        if load_model is None:
            return rows
        return rows[rows["load_model"].eq(load_model).fillna(False)]

    def load_models(self, scenario: str) -> list[str]:
        """The load models ("closed", "open") the scenario has cells of, in report order."""
        models = set(self.scenario_rows(scenario)["load_model"].dropna())
        return [model for model in LOAD_AXES if model in models]

    @property
    def calibration(self) -> Calibration | None:
        """The generator's own ceiling as calibrated by the run, None when not measured."""
        calibration = self.manifest.get("calibration")
        return calibration if isinstance(calibration, dict) else None

    @property
    def verify(self) -> dict[str, dict[str, Any]]:
        """The verify gate's result per target ({} when the run did not verify)."""
        verify = self.manifest.get("verify")
        if not isinstance(verify, dict):
            return {}
        return {str(k): v for k, v in verify.items() if isinstance(v, dict)}

    @property
    def options(self) -> dict[str, Any]:
        options = self.manifest.get("options")
        return options if isinstance(options, dict) else {}

    def groups(self) -> pd.DataFrame:
        """One row per group of trials (its first row; the group columns are the same on all)."""
        keys = list(GROUP_KEYS)
        return self.summary.drop_duplicates(subset=keys).reset_index(drop=True)


def _run_dir_of(path: Path | str) -> Path:
    run_dir = Path(path)
    if run_dir.is_file() and run_dir.name in (schema.MANIFEST_FILE, schema.SUMMARY_FILE):
        return run_dir.parent
    return run_dir


def summary_path(run_dir: Path | str) -> Path:
    return _run_dir_of(run_dir) / schema.SUMMARY_FILE


def read_summary(run_dir: Path | str) -> pd.DataFrame:
    """The run's summary.csv with the summary dtypes; rebuilt from raw files when absent.

    A summary.csv written before some columns existed is rebuilt from the raw files too
    (in memory; the folder is not touched) when they are there, so every column is filled.
    """
    path = summary_path(run_dir)
    raw = _run_dir_of(run_dir) / schema.RAW_DIR
    if path.is_file():
        frame = pd.read_csv(path)
        if set(schema.SUMMARY_COLUMNS) <= set(frame.columns) or not raw.is_dir():
            return coerce_summary(frame)
    return build_summary(_run_dir_of(run_dir))


def load(path: Path | str) -> Results:
    """Open a run folder (or its manifest.json); ValueError naming the path when it is not one."""
    run_dir = _run_dir_of(path)
    manifest = read_manifest(run_dir)
    return Results(manifest=manifest, summary=read_summary(run_dir), run_dir=run_dir)


def per_second(run_dir: Path | str, cell_id: str) -> pd.DataFrame:
    """Successes and failures per second of a cell's window (empty frame when not recorded)."""
    latency = read_latency(_run_dir_of(run_dir), cell_id) or {}
    rows = [
        row[:3]
        for row in latency.get("per_second") or []
        if isinstance(row, (list, tuple)) and len(row) >= 3
    ]
    frame = pd.DataFrame(rows, columns=list(PER_SECOND_COLUMNS))
    return frame.apply(pd.to_numeric, errors="coerce").round().astype("Int64")
