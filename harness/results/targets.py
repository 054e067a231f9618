"""What each target of a run is: its settings, from the run folder alone.

The manifest's "targets" entries hold what the registry declared (framework, server,
interface, worker class, workers, threads, concurrency, slots); framework, server and interface
fall back to summary.csv for a target the manifest does not describe. This never imports the
runner or the target registry, so it works on a run folder copied from anywhere.
"""

from __future__ import annotations

from typing import Any

from harness.format import missing
from harness.results.folder import Results

STACK_FIELDS = ("framework", "server", "interface")


def setting(settings: dict[str, Any], key: str) -> Any:
    """A setting for comparing: strings lower-cased, blank as None."""
    value = settings.get(key)
    if missing(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() or None
    return value


def target_settings(results: Results) -> dict[str, dict[str, Any]]:
    """Each target's settings in the run's order (the manifest's, then summary-only targets),
    framework, server and interface from summary.csv where the manifest lacks them."""
    recorded = results.targets
    summary = results.summary
    names = list(recorded) + sorted(set(summary["target"].dropna().astype(str)) - set(recorded))
    settings: dict[str, dict[str, Any]] = {}
    for name in names:
        entry = dict(recorded.get(name) or {})
        rows = summary[summary["target"].eq(name).fillna(False)]
        for key in STACK_FIELDS:
            if setting(entry, key) is None and key in rows:
                values = rows[key].dropna()
                entry[key] = str(values.iloc[0]) if len(values) else None
        settings[name] = entry
    return settings
