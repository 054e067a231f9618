"""The manifest's keys are named once (harness.schema.Manifest): every key the harness reads
or writes on a manifest is one of them, so a misspelt key fails here, not in a report."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.schema import Manifest

HARNESS = Path(__file__).resolve().parent.parent / "harness"


def manifest_keys_used(source: str) -> list[tuple[int, str]]:
    """(line, key) for ``<...manifest>["key"]`` and ``<...manifest>.get/setdefault("key")``."""

    def is_manifest(node: ast.expr) -> bool:
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
        return name == "manifest"

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and is_manifest(node.value):
            key = node.slice
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "setdefault", "pop")
            and is_manifest(node.func.value)
            and node.args
        ):
            key = node.args[0]
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.append((node.lineno, key.value))
    return found


def test_every_manifest_key_in_the_harness_is_declared() -> None:
    declared = set(Manifest.__annotations__)
    used = {
        f"{path.relative_to(HARNESS.parent)}:{line}": key
        for path in sorted(HARNESS.rglob("*.py"))
        for line, key in manifest_keys_used(path.read_text())
    }
    assert len(used) > 20  # the harness reads and writes its manifest in many places
    unknown = {where: key for where, key in used.items() if key not in declared}
    assert not unknown, f"manifest keys not declared in harness.schema.Manifest: {unknown}"


def test_the_check_sees_a_misspelt_key() -> None:
    source = 'x = results.manifest.get("calibraton")\nmanifest["status"] = "ok"\n'
    assert manifest_keys_used(source) == [(1, "calibraton"), (2, "status")]
