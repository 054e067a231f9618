"""Reading a run folder: summary, trials, histograms, row filters and load levels, factors.

The public entry point is ``load(path) -> Results`` (what the notebook uses). Works on a
folder copied from another machine: never imports ``harness.run``, ``targets`` or matplotlib.
"""

from __future__ import annotations

from harness.results.folder import Results, load, per_second

__all__ = ["Results", "load", "per_second"]
