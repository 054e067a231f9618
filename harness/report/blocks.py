"""The building blocks every section of report.md is made of: tables, chart links, load levels.

Numbers are written by ``harness.format``; this module puts them into Markdown: a table whose
cells cannot break it, a chart linked relative to the run folder with its caption (nothing when
the chart was not drawn), and the load level of a summary row in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.format import EMPTY, load_text, missing
from harness.results.folder import Results
from harness.results.rows import LOAD_AXES


def cell_text(value: Any) -> str:
    """A table cell: empty as EMPTY, a "|" escaped, a line break as a space."""
    return EMPTY if missing(value) else str(value).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell_text(c) for c in row) + " |" for row in rows]
    return lines


def chart_lines(results: Results, path: Path, alt: str, caption: str) -> list[str]:
    """A chart linked relative to the run folder with its caption; nothing when not drawn."""
    if not path.is_file():
        return []
    rel = path.relative_to(results.run_dir).as_posix()
    return [f"![{alt}]({rel})", "", f"*{caption}*", ""]


def row_load_text(row: pd.Series) -> str:
    """The load level of a summary row: "10 users" or "200 requests/s offered"."""
    model = str(row["load_model"])
    return load_text(model, row[LOAD_AXES.get(model, LOAD_AXES["closed"]).column])


def yes_no(value: Any) -> str:
    if missing(value):
        return EMPTY
    return "**yes**" if bool(value) else "no"
