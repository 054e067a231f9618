"""Reading a run folder: the figures of every cell, and which of them to compare.

``load(path) -> Results`` is the public entry point (what the notebook, the charts and the
report use; ``folder``). Underneath: ``raw`` reads the runner's files, ``summary`` turns them
into the summary table (with ``flags`` and ``trials``), ``rows`` filters its rows and chooses
the load level to compare at, ``targets`` says what each target is, and ``ratios``,
``factors``, ``connections`` and ``compare`` compute what the report and charts show. Works on
a folder copied from another machine: never imports ``harness.run``, ``targets``, matplotlib,
chart or report code.
"""

from __future__ import annotations

from harness.results.folder import Results, load, per_second

__all__ = ["Results", "load", "per_second"]
