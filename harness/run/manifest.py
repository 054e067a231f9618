"""The run folder and its manifest: run id, machine facts, versions, atomic writes.

The manifest is rewritten (atomically) after every cell, so a crash at any moment leaves
a readable record of what was planned, what ran and how it ended.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.fileio import atomic_write_text
from harness.run import PROJECT_ROOT
from harness.schema import MANIFEST_FILE, RAW_DIR, SCHEMA_VERSION, Manifest
from harness.units import UsageError

RESULTS_DIR = PROJECT_ROOT / "results"
PACKAGES = (
    "locust", "gunicorn", "uvicorn", "uvicorn-worker", "daphne", "granian", "twisted",
    "flask", "fastapi", "starlette", "django", "werkzeug",
    "uvloop", "httptools", "gevent", "geventhttpclient", "hdrhistogram", "psutil",
    "pandas", "matplotlib",
)  # fmt: skip


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    sha = git("rev-parse", "--short=7", "HEAD")
    return {"sha": sha or None, "dirty": bool(git("status", "--porcelain")) if sha else None}


def run_id() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{git_info()['sha'] or 'nogit'}"


def create_run_dir(out: str | None) -> Path:
    """A new, empty run folder: ``out`` itself if given, else results/<run-id>/."""
    if out is not None:
        run_dir = Path(out)
        if (run_dir / MANIFEST_FILE).exists():
            raise UsageError(f"--out {out}: already holds a run (manifest.json); choose another")
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        base = run_id()
        for attempt in range(100):
            run_dir = RESULTS_DIR / (base if attempt == 0 else f"{base}-{attempt}")
            try:
                run_dir.mkdir(parents=True)  # atomic: two runs never share a folder
                break
            except FileExistsError:
                continue
        else:
            raise UsageError(f"could not create a new run folder under {RESULTS_DIR}")
    (run_dir / RAW_DIR).mkdir(exist_ok=True)
    return run_dir


def point_latest(run_dir: Path) -> None:
    """results/latest -> the newest run (only for runs inside results/)."""
    if run_dir.resolve().parent != RESULTS_DIR.resolve():
        return
    link = RESULTS_DIR / "latest"
    tmp = RESULTS_DIR / f".latest.tmp{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "hostname": socket.gethostname(),
        "memory_gb": _memory_gb(),
    }


def _memory_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:
        return None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def new_manifest(run_dir: Path, argv: list[str]) -> Manifest:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "status": "running",
        "created_at": now_iso(),
        "finished_at": None,
        "argv": argv,
        "machine": machine_info(),
        "packages": package_versions(),
        "git": git_info(),
        "warnings": [],
    }


def save_manifest(run_dir: Path, manifest: Manifest) -> None:
    atomic_write_text(run_dir / MANIFEST_FILE, json.dumps(manifest, indent=2, default=str) + "\n")
