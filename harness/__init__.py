"""gatebench's harness: plans, runs and records load tests, then analyses the results.

One package per concern, so the layout shows the data flow (see README, "Layout"):

- ``harness.run``: the orchestration side (session, plan, profiles, scenario discovery,
  runner, servers, verify gate, CPU pinning, sampler, stall, manifest). Never imports locust.
- ``harness.loadgen``: what runs inside the locust process (the extension, open load, the
  SSE/WebSocket users of the public scenario API, the discovery probe, calibration).
- ``harness.results``: reading and tidying a run folder (summary, trials, row filters and
  load levels, factor pairing); ``harness.charts``: drawing only; ``harness.report``:
  Markdown, HTML, compare.
- At the top: the CLI, the results contract (``schema``) and small shared helpers.
"""

__version__ = "0.1.0"
