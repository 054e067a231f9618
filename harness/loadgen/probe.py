"""Imports scenario files in a throw-away process and reports what they declare, as JSON.

Run as ``python -m harness.loadgen.probe FILE...``. Importing a locustfile imports locust, which
patches the standard library with gevent; that must never happen in the orchestrator, so
discovery asks this subprocess instead. One JSON object per file goes to stdout:
``{"path", "doc", "settings", "user_classes", "hosts", "open_problem", "holds_connections",
"error"}``; ``holds_connections`` is true when a user class holds one long-lived connection
per user (``holds_connection = True``, as the SSE and WebSocket users of ``harness.loadgen``).
``open_problem`` says why open-model load cannot run the file: such a user, a TaskSet, or a
user class whose own ``open_problem`` attribute (text) says why (the HTTP/2 user).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any


def probe_file(path: str, index: int) -> dict[str, Any]:
    from locust import User

    report: dict[str, Any] = {
        "path": path,
        "doc": None,
        "settings": None,
        "user_classes": [],
        "hosts": [],
        "open_problem": None,
        "holds_connections": False,
        "error": None,
    }
    try:
        spec = importlib.util.spec_from_file_location(f"gatebench_scenario_{index}", path)
        if spec is None or spec.loader is None:
            report["error"] = "not a loadable Python file"
            return report
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        report["error"] = f"syntax error at line {exc.lineno}: {exc.msg}"
        return report
    except BaseException as exc:
        last = traceback.extract_tb(exc.__traceback__)[-1]
        report["error"] = f"import failed: {type(exc).__name__}: {exc} (line {last.lineno})"
        return report
    report["doc"] = module.__doc__
    settings = getattr(module, "settings", None)
    try:
        report["settings"] = json.loads(json.dumps(settings)) if settings is not None else None
    except (TypeError, ValueError) as exc:
        report["error"] = f"settings must hold plain values (numbers, text, lists): {exc}"
    for name, value in vars(module).items():
        if (
            isinstance(value, type)
            and issubclass(value, User)
            and value.__module__ == module.__name__
            and not getattr(value, "abstract", False)
        ):
            report["user_classes"].append(name)
            if getattr(value, "holds_connection", False):
                report["holds_connections"] = True
            if getattr(value, "host", None):
                report["hosts"].append(f"{name}.host = {value.host!r}")
            if not value.tasks:
                report["error"] = f"user class {name} has no tasks"
            elif getattr(value, "holds_connection", False):
                report["open_problem"] = (
                    f"user class {name} holds one long-lived connection per user; "
                    "open-model load (--rates) launches short requests: use --users"
                )
            elif isinstance(own_problem := getattr(value, "open_problem", None), str):
                # A user class that says why itself (harness.loadgen.h2.Http2User: streams).
                report["open_problem"] = f"user class {name}: {own_problem}"
            elif any(isinstance(item, type) for item in value.tasks):
                # Open-model load calls plain task methods; a TaskSet runs its own loop.
                report["open_problem"] = (
                    f"user class {name} uses a TaskSet; open-model load (--rates) runs "
                    "plain @task methods only"
                )
    return report


def main(paths: list[str]) -> int:
    # A scenario's helpers (_*.py) live next to it; locust finds them the same way.
    for folder in dict.fromkeys(str(Path(p).resolve().parent) for p in paths):
        if folder not in sys.path:
            sys.path.append(folder)
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # a print() in a scenario must not mix in
        reports = [probe_file(path, i) for i, path in enumerate(paths)]
    real_stdout.write(json.dumps(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
