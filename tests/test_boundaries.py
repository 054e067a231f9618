"""Who may import whom (DESIGN.md, "Boundaries"), checked on the source with ``ast``.

Every ``import`` counts, at module level or inside a function. ``from harness.x import y``
imports ``harness.x.y`` when that is a module, else ``harness.x``. A failure names the file,
the line and the import. The last tests import modules in a subprocess and look at
``sys.modules``, which also sees what third-party packages pull in.
"""

from __future__ import annotations

import ast
import functools
import itertools
import subprocess
import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCUST_SIDE = ("locust", "gevent", "geventhttpclient", "websocket")
# The public scenario API: the long-lived connection users and the HTTP/2 user.
SCENARIO_API = ("harness.loadgen.users", "harness.loadgen.h2")


@dataclass(frozen=True)
class Import:
    file: str  # relative to the checkout
    line: int
    module: str  # absolute name of what is imported
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def module_name(relative: Path) -> str:
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(root: Path, name: str) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(root: Path, path: Path) -> list[Import]:
    relative = path.relative_to(root)
    source = path.read_text()
    package = module_name(relative).split(".")
    if relative.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(source, filename=str(relative))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base_parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
            names = [
                f"{base}.{alias.name}" if is_module(root, f"{base}.{alias.name}") else base
                for alias in node.names
            ]
        else:
            continue
        text = " ".join((ast.get_source_segment(source, node) or "").split())
        found += [Import(relative.as_posix(), node.lineno, name, text) for name in names]
    return list(dict.fromkeys(found))  # `from x import a, b`: one import of x


@functools.cache
def scan(root: Path, pattern: str) -> dict[str, list[Import]]:
    """Module name -> its imports, for every file under root matching pattern."""
    return {
        module_name(path.relative_to(root)): imports_of(root, path)
        for path in sorted(root.glob(pattern))
    }


def within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def forbidden_imports(
    root: Path, pattern: str, forbidden: tuple[str, ...], skip: tuple[str, ...] = ()
) -> list[str]:
    modules = scan(root, pattern)
    assert modules, f"no file matches {pattern} under {root}: the rule would check nothing"
    return [
        str(found)
        for module, imports in modules.items()
        if not within(module, skip)
        for found in imports
        if within(found.module, forbidden)
    ]


def harness_graph(root: Path) -> dict[str, dict[str, Import]]:
    """harness module -> the harness modules it imports (first import line of each)."""
    modules = scan(root, "harness/**/*.py")
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for name, imports in modules.items():
        for found in imports:
            if found.module in graph and found.module != name:
                graph[name].setdefault(found.module, found)
    return graph


def transitive_imports(root: Path, start: str, forbidden: tuple[str, ...]) -> list[str]:
    """What ``start`` loads through harness modules (their packages' __init__ included)."""
    modules = scan(root, "harness/**/*.py")
    chains = {start: [start]}
    queue = deque([start])
    problems = []
    while queue:
        name = queue.popleft()
        parent = name.rpartition(".")[0]
        steps = [found.module for found in modules[name]] + ([parent] if parent else [])
        for found in modules[name]:
            if within(found.module, forbidden):
                problems.append(f"{' -> '.join(chains[name])}: {found}")
        for step in steps:
            if step in modules and step not in chains:
                chains[step] = [*chains[name], step]
                queue.append(step)
    return problems


def cycles(graph: dict[str, dict[str, Import]]) -> list[str]:
    """A shortest import loop through each module that lies on one, told edge by edge."""
    found: list[str] = []
    on_a_loop: set[str] = set()
    for start in sorted(graph):
        if start in on_a_loop:
            continue
        parents: dict[str, str] = {}
        queue = deque([start])
        while queue and start not in parents:
            node = queue.popleft()
            for step in sorted(graph[node]):
                if step not in parents:
                    parents[step] = node
                    queue.append(step)
        if start not in parents:
            continue
        loop = [start]
        while len(loop) == 1 or loop[-1] != start:
            loop.append(parents[loop[-1]])
        loop.reverse()
        on_a_loop.update(loop)
        edges = [f"  {a} -> {b}   ({graph[a][b]})" for a, b in itertools.pairwise(loop)]
        found.append("\n".join([" -> ".join(loop), *edges]))
    return found


def scenario_imports(root: Path) -> list[str]:
    helpers = {path.stem for path in root.glob("scenarios/_*.py")}
    allowed = {*sys.stdlib_module_names, *helpers, "locust"}
    modules = scan(root, "scenarios/*.py")
    assert modules, "no scenario file found: the rule would check nothing"
    return [
        str(found)
        for imports in modules.values()
        for found in imports
        if found.module.partition(".")[0] not in allowed
        and not within(found.module, list(SCENARIO_API))
    ]


def report(rule: str, problems: list[str]) -> str:
    return f"{rule}:\n" + "\n".join(f"  {problem}" for problem in problems)


NO_RUN = ("harness.run", "targets")
ANALYSIS = "analysis reads a results folder from any machine: no harness.run, no targets"
# id -> (files, what none of their imports may name, modules exempt, the rule in words)
DIRECT_RULES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "targets": ("targets/**/*.py", ("harness",), (), "targets/ stand alone, as deployed"),
    "locust-side": ("harness/**/*.py", LOCUST_SIDE, ("harness.loadgen",),
                    "locust, gevent and websocket-client run inside locust: harness/loadgen only"),
    "results-run": ("harness/results/**/*.py", NO_RUN, (), ANALYSIS),
    "charts-run": ("harness/charts/**/*.py", NO_RUN, (), ANALYSIS),
    "report-run": ("harness/report/**/*.py", NO_RUN, (), ANALYSIS),
    "charts-report": ("harness/charts/**/*.py", ("harness.report",), (),
                      "charts draw; report code imports charts, never back"),
    "results-charts": ("harness/results/**/*.py", ("harness.charts", "harness.report",
                       "matplotlib"), (), "reading a run folder draws nothing, writes no report"),
}  # fmt: skip


@pytest.mark.parametrize("rule_id", DIRECT_RULES)
def test_never_imports(rule_id: str) -> None:
    pattern, forbidden, exempt, rule = DIRECT_RULES[rule_id]
    problems = forbidden_imports(ROOT, pattern, forbidden, skip=exempt)
    assert not problems, report(rule, problems)


def test_scenarios_import_locust_stdlib_and_the_scenario_api_only() -> None:
    problems = scenario_imports(ROOT)
    api = " and ".join(SCENARIO_API)
    rule = f"a scenario file imports locust, the standard library and {api} only"
    assert not problems, report(rule, problems)


def test_loadgen_stays_light() -> None:
    forbidden = ("pandas", "matplotlib", "scipy", "numpy", "harness.run", "harness.results",
                 "harness.charts", "harness.report")  # fmt: skip
    starts = scan(ROOT, "harness/loadgen/**/*.py")
    assert starts, "no harness/loadgen module found: the rule would check nothing"
    problems = [p for start in starts for p in transitive_imports(ROOT, start, forbidden)]
    rule = "harness/loadgen runs inside locust: no analysis libraries, no other harness side"
    assert not problems, report(rule, problems)


def test_no_import_loop_among_harness_modules() -> None:
    loops = cycles(harness_graph(ROOT))
    assert not loops, report("import loops among harness modules", loops)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("harness.run.runner", (*LOCUST_SIDE, "pandas")),
        ("harness.run.session", LOCUST_SIDE),  # it builds the report, which needs pandas
        ("harness.cli", LOCUST_SIDE),
        ("harness.report.markdown", ("matplotlib",)),
        ("harness.loadgen", LOCUST_SIDE),
    ],
)
def test_importing_does_not_load(module: str, forbidden: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(sorted({{m.partition('.')[0] for m in sys.modules}}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
    assert not loaded & set(forbidden), f"import {module} loads {sorted(loaded & set(forbidden))}"


def test_the_checker_catches_violations(tmp_path: Path) -> None:
    files = {
        "harness/__init__.py": "",
        "harness/run/__init__.py": "",
        "harness/run/fake.py": "import os\n\n\ndef go() -> None:\n    import locust\n",
        "harness/a.py": "import pandas\nfrom harness import b\n",
        "harness/b.py": "def late() -> None:\n    from . import a\n",
        "harness/loadgen/__init__.py": "",
        "harness/loadgen/ext.py": "from harness.b import late\n",
        "scenarios/s.py": "import json\nimport pandas\nfrom harness.loadgen.users import SseUser\n",
    }
    for name, source in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    pattern, forbidden, exempt, _ = DIRECT_RULES["locust-side"]
    problems = forbidden_imports(tmp_path, pattern, forbidden, exempt)
    assert problems == ["harness/run/fake.py:5: import locust"]
    assert cycles(harness_graph(tmp_path)) == [
        "harness.a -> harness.b -> harness.a\n"
        "  harness.a -> harness.b   (harness/a.py:2: from harness import b)\n"
        "  harness.b -> harness.a   (harness/b.py:2: from . import a)"
    ]
    assert scenario_imports(tmp_path) == ["scenarios/s.py:2: import pandas"]
    assert transitive_imports(tmp_path, "harness.loadgen.ext", ("pandas",)) == [
        "harness.loadgen.ext -> harness.b -> harness.a: harness/a.py:1: import pandas"
    ]
