"""What runs inside the locust process. Nothing here is imported by the orchestrator.

- ``extension``: loaded next to every scenario file (``locust -f scenario.py,extension.py``):
  exact HDR latency recording, the warm-up and measurement windows, open-model load.
- ``users``: **the public scenario API** — the SSE and WebSocket users scenario files import
  (``from harness.loadgen.users import SseUser, WebSocketUser``).
- ``open_load``, ``parse``: the open-model driver and the stream parsers behind them.
- ``probe``: imports scenario files in a subprocess for discovery.
- ``calibration_locustfile``: the generator-ceiling calibration user.

This ``__init__`` itself imports nothing, so the orchestrator can read the file paths and
names below without loading locust (which monkey-patches the standard library).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTENSION_FILE = HERE / "extension.py"
CALIBRATION_FILE = HERE / "calibration_locustfile.py"
CALIBRATION_USER = "CalibrationUser"
OPEN_USER_CLASS = "GatebenchOpenUser"  # the user class the extension defines for open load
PROBE_MODULE = "harness.loadgen.probe"
