"""The orchestration side: from command-line options to a results folder.

``session`` runs a benchmark (plan, verify gate, calibration, cells, outputs); ``runner``
runs the cells of a plan, one locust subprocess per group of cells; ``servers`` starts and
stops target servers; ``sampler`` and ``stall`` watch and pause them. Nothing here imports
locust or gevent (locust runs as a subprocess with ``harness.loadgen``) nor pandas: the
results folder is read by ``harness.results`` only.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: targets/, scenarios/, results/
