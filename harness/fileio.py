"""Atomic file writing: a reader never sees half a file, a crash never leaves one.

The one place that knows how (a temporary file in the same folder, then ``os.replace``).
Standard library only, so the code inside the locust process (``harness.loadgen``) uses it
too. Files are made readable by everyone (0644): results are meant to be shared.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path | str) -> Iterator[str]:
    """A temporary path next to ``path``; it replaces ``path`` when the block succeeds.

    For writers that want a file name (``fig.savefig(tmp)``). On an exception the
    temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically; returns the path."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return Path(path)
