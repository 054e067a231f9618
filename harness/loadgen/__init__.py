"""What runs inside the locust process. Nothing here is imported by the orchestrator.

- ``extension``: loaded next to every scenario file (``locust -f scenario.py,extension.py``):
  exact HDR latency recording, the warm-up and measurement windows, open-model load.
- ``users``: **the public scenario API** — the SSE and WebSocket users scenario files import
  (``from harness.loadgen.users import SseUser, WebSocketUser``).
- ``h2``: **the public scenario API** for HTTP/2 — ``Http2User``, several streams in flight
  over one connection per user (``from harness.loadgen.h2 import Http2User``).
- ``link``: how the process reaches the stage's target (HTTP version, TLS, connection reuse).
- ``open_load``, ``parse``: the open-model driver and the stream parsers behind them.
- ``probe``: imports scenario files in a subprocess for discovery.
- ``calibration_locustfile``: the generator-ceiling calibration users (``FastHttpUser``, and
  ``Http2User``'s own: its client costs several times more CPU per request).

This ``__init__`` itself imports nothing, so the orchestrator can read the file paths and
names below without loading locust (which monkey-patches the standard library).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTENSION_FILE = HERE / "extension.py"
CALIBRATION_FILE = HERE / "calibration_locustfile.py"
CALIBRATION_USER = "CalibrationUser"
CALIBRATION_H2_USER = "CalibrationH2User"  # the same request through harness.loadgen.h2
OPEN_USER_CLASS = "GatebenchOpenUser"  # the user class the extension defines for open load
PROBE_MODULE = "harness.loadgen.probe"
