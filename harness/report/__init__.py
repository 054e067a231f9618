"""Writing what a reader sees: report.md (``markdown``, with ``sections``, ``factors`` and
``connections``, built from ``blocks``), report.html (``html``), the comparison of two runs
(``compare``); ``build.build_all`` makes the summary, the charts and both reports of a run.
"""
