"""The orchestration side: from command-line options to a results folder.

``session`` runs a benchmark (plan, verify gate, calibration, cells, outputs); ``runner``
runs the cells of a plan, one locust sweep per group of cells, whose processes ``generators``
starts (one locust process, or a master and its workers, some on other hosts); ``servers``
starts and stops target servers, ``reaper`` ends them if the harness is killed outright;
``external`` stands for a server gatebench did not start (``--url``) and ``network`` for the
link to it; ``sampler`` and ``stall`` watch and pause the servers. Nothing here imports
locust or gevent (locust runs as a subprocess with ``harness.loadgen``) nor pandas: the
results folder is read by ``harness.results`` only.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout: targets/, scenarios/, results/
