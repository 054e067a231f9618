"""notebooks/analysis.ipynb runs top to bottom on a real smoke run, and is stored clean.

The smoke run is the session's shared one (conftest.py): the notebook only reads it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import SharedRun

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"
KERNEL = "gatebench-test"


def test_notebook_is_stored_clean() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    source = "\n".join(c.source for c in code)
    assert "GATEBENCH_RUN" in source and "load(RUN)" in source and "per_second(" in source
    for forbidden in ("harness.run.runner", "locust", "targets."):
        assert forbidden not in source


@pytest.mark.e2e
@pytest.mark.solo
# jupyter_core warns at import and on path lookups about its move to platformdirs.
@pytest.mark.filterwarnings("ignore:Jupyter is migrating its paths:DeprecationWarning")
def test_notebook_runs_on_a_smoke_run(
    smoke_run: SharedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    run_dir = smoke_run.run_dir
    assert smoke_run.done.returncode == 0, smoke_run.done.stderr
    # A kernelspec of this very interpreter (the venv's), found first through JUPYTER_PATH:
    # whatever "python3" resolves to on this machine, the kernel has harness and pandas.
    prefix = tmp_path / "jupyter"
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", KERNEL],
        check=True,
        capture_output=True,
        timeout=60,
    )
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("GATEBENCH_RUN", str(run_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=180,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {})) for o in outputs)
    assert run_dir.name in text and "fastapi-uvicorn" in text
