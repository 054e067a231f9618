"""One cell's record from the records of several locust workers: added, never averaged.

With ``--generators N`` a cell runs as one locust master and N workers
(``harness.loadgen.extension``). Each worker records its own share of the cell exactly as a
single process does (``harness.loadgen.recorder``) and sends the record to the master, which
merges them here into the one ``latency.json`` the analysis reads:

- histograms (``histogram``, ``histogram_uncorrected``, per name, connect and first message,
  open load's lateness) are decoded and **added** bucket by bucket, so the merged percentiles
  are those of every request of every worker (within HDR's 3 significant digits), never an
  average of the workers' percentiles;
- counts (successes, failures by kind, connects, connections held, TCP connects, open load's
  arrivals, late starts, ...) are summed; ``per_second`` rows are summed by second of the
  window (each worker counts seconds from its own window start; the master tells every worker
  to open its window at once, so they agree to within the message's delivery, about 1 ms),
  with the mean latency weighted by each worker's successes;
- ``max_lateness_ms`` is the largest of the workers'; ``tcp_active_opens`` (the machine's
  count, which every worker on one machine reads alike) the largest too;
- the window is the earliest start to the latest end, ``complete`` only when every worker's
  window completed;
- ``workers`` lists each worker's own figures (``worker_summary``): its index, host, requests,
  CPU over its window, lateness, so each worker can be judged on its own.

Imported inside the locust master and by tests; needs only ``hdrh``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.loadgen.recorder import HIGHEST_US, SIGNIFICANT_DIGITS

SUMMED = (
    "successes",
    "failures",
    "connects",
    "connect_failures",
    "tcp_connects",
    "connections_held",
)
OPEN_SUMMED = (
    "rate",
    "offered",
    "launched",
    "launched_in_window",
    "dropped",
    "in_flight_at_end",
    "late_scheduler",
    "late",
)
WORKER_KEY = "worker"  # a worker's own figures inside its record (see worker_summary)


def add_histograms(encoded: Iterable[str | None]) -> str:
    """The sum of encoded HDR histograms (``HdrHistogram.encode()``), encoded as ASCII."""
    total = HdrHistogram(1, HIGHEST_US, SIGNIFICANT_DIGITS)
    for item in encoded:
        if item:
            total.add(HdrHistogram.decode(item.encode("ascii")))
    result = total.encode()
    return result.decode("ascii") if isinstance(result, bytes) else str(result)


def _sum(values: Iterable[Any]) -> Any:
    """The sum of the values that are numbers; None when none is."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(numbers) if numbers else None


def _timing(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge ``{successes, failures, histogram}`` entries."""
    return {
        "successes": sum(int(p.get("successes", 0)) for p in parts),
        "failures": sum(int(p.get("failures", 0)) for p in parts),
        "histogram": add_histograms(p.get("histogram") for p in parts),
    }


def _per_second(records: list[dict[str, Any]]) -> list[list[Any]]:
    seconds: dict[int, list[float]] = {}  # second -> [ok, failed, ok x mean_ms]
    for record in records:
        for second, ok, failed, mean_ms in record.get("per_second", []):
            row = seconds.setdefault(int(second), [0, 0, 0.0])
            row[0] += ok
            row[1] += failed
            if ok and mean_ms is not None:
                row[2] += ok * mean_ms
    return [
        [second, int(ok), int(failed), round(total / ok, 3) if ok else None]
        for second, (ok, failed, total) in sorted(seconds.items())
    ]


def _by_name(records: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({name for r in records for name in r.get("by_name", {})})
    return {
        name: _timing([r["by_name"][name] for r in records if name in r.get("by_name", {})])
        for name in names
    }


def _failures_by_kind(records: list[dict[str, Any]]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for record in records:
        for kind, count in record.get("failures_by_kind", {}).items():
            kinds[kind] = kinds.get(kind, 0) + int(count)
    return dict(sorted(kinds.items()))


def _open(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {key: _sum(p.get(key) for p in parts) for key in OPEN_SUMMED}
    merged["arrivals"] = parts[0].get("arrivals")
    lateness = [float(p["max_lateness_ms"]) for p in parts if p.get("max_lateness_ms") is not None]
    merged["max_lateness_ms"] = max(lateness) if lateness else None
    merged["lateness_histogram"] = add_histograms(p.get("lateness_histogram") for p in parts)
    histogram = HdrHistogram.decode(merged["lateness_histogram"].encode("ascii"))
    merged["lateness_p99_ms"] = (
        round(histogram.get_value_at_percentile(99.0) / 1000, 3)
        if histogram.get_total_count()
        else None
    )
    return merged


def merge_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``latency.json`` record from the workers' records (see the module docstring)."""
    if not records:
        raise ValueError("no worker records to merge")
    first = records[0]
    starts = [r["window_start"] for r in records if r.get("window_start") is not None]
    ends = [r["window_end"] for r in records if r.get("window_end") is not None]
    loads = [r["load_started_at"] for r in records if r.get("load_started_at") is not None]
    opens = [r["tcp_active_opens"] for r in records if r.get("tcp_active_opens") is not None]
    merged: dict[str, Any] = {
        "schema": first.get("schema", 1),
        "unit": first.get("unit", "us"),
        "window_start": min(starts) if starts else None,
        "window_end": max(ends) if ends else None,
        "duration_s": first.get("duration_s"),
        "warmup_s": first.get("warmup_s"),
        "complete": all(bool(r.get("complete")) for r in records),
        "failures_by_kind": _failures_by_kind(records),
        "histogram": add_histograms(r.get("histogram") for r in records),
        "per_second": _per_second(records),
        "connect": _timing([r["connect"] for r in records if "connect" in r]),
        "first_message": _timing([r["first_message"] for r in records if "first_message" in r]),
        "load_started_at": min(loads) if loads else None,
        "tcp_active_opens": max(opens) if opens else None,
        "by_name": _by_name(records),
    }
    for key in SUMMED:
        if any(key in r for r in records):
            merged[key] = _sum(r.get(key) for r in records)
    if any("histogram_uncorrected" in r for r in records):
        merged["histogram_uncorrected"] = add_histograms(
            r.get("histogram_uncorrected") for r in records
        )
    opened = [r["open"] for r in records if r.get("open")]
    if opened:
        merged["open"] = _open(opened)
    merged["workers"] = [worker_summary(r) for r in records]
    return merged


def worker_summary(record: dict[str, Any]) -> dict[str, Any]:
    """One worker's own figures: what it reported about itself, and its counts."""
    own = dict(record.get(WORKER_KEY) or {})
    own["successes"] = int(record.get("successes", 0))
    own["failures"] = int(record.get("failures", 0))
    opened = record.get("open") or {}
    for key in ("late", "max_lateness_ms", "lateness_p99_ms", "launched_in_window"):
        if key in opened:
            own[key] = opened[key]
    return own


def merge_logs(logs: Iterable[list[list[Any]]]) -> list[tuple[float, int]]:
    """Every worker's request log (rows ``[t, latency_us]``), in completion order."""
    return sorted((float(t), int(us)) for log in logs for t, us in log)
