"""Writing what a reader sees: report.md (``markdown``, ``sections``), report.html
(``html``), the comparison of two runs (``compare``); ``build.build_all`` makes them all.
"""
