"""Long-lived connections: the SSE parser, message latency, summary columns, and end to end.

The parser and latency helpers live in ``harness.loadgen.parse`` (no locust), so they are
tested here directly; ``harness.loadgen.users`` imports locust and only runs inside it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from analysis_fixtures import encode

from harness import schema
from harness.loadgen.parse import (
    BadMessage,
    SequenceTracker,
    SseEvent,
    SseParser,
    message_latency_ms,
    parse_message,
)
from harness.results.summary import build_summary, cell_protocol
from targets import streams

PROJECT = Path(__file__).resolve().parent.parent

STREAM = (
    b'id: 1\ndata: {"seq":1,"sent":100.0,"events":3}\n\n'
    b": keep-alive comment\n\n"
    b'id: 2\r\ndata: {"seq":2,\r\ndata: "sent":100.1}\r\n\r\n'
    b"event: tick\rid: 3\rdata: caf\xc3\xa9\r\r"
)
EXPECTED = [
    SseEvent('{"seq":1,"sent":100.0,"events":3}', "message", "1"),
    SseEvent('{"seq":2,\n"sent":100.1}', "message", "2"),
    SseEvent("café", "tick", "3"),
]


def test_sse_parser_whole_stream() -> None:
    assert SseParser().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16])
def test_sse_parser_any_chunking(size: int) -> None:
    """Chunks may split anywhere: inside a field, between CR and LF, inside a UTF-8 char."""
    parser = SseParser()
    events = []
    for i in range(0, len(STREAM), size):
        events += parser.feed(STREAM[i : i + size])
    assert events == EXPECTED
    assert parser.last_event_id == "3"


def test_sse_parser_waits_for_blank_line_and_edge_cases() -> None:
    parser = SseParser()
    assert parser.feed(b"\xef\xbb\xbfdata: a\n") == []  # BOM dropped; no blank line yet
    assert parser.feed(b"\n") == [SseEvent("a")]
    assert parser.feed(b"id: 9\n\n") == []  # no data: not dispatched, but the id is kept
    assert parser.last_event_id == "9"
    assert parser.feed(b"data\nretry: 10\nfoo: bar\n\n") == [SseEvent("", "message", "9")]
    assert parser.feed(b"data:no space\r") == []  # CR ends the line; may be half a CRLF
    assert parser.feed(b"\n\n") == [SseEvent("no space", "message", "9")]  # LF skipped once
    assert parser.feed(b"data: x\r\r") == [SseEvent("x", "message", "9")]  # no wait on CR


def test_parse_message_and_latency() -> None:
    assert parse_message('{"seq": 4, "sent": 1700000000.25, "events": 9}') == (4, 1700000000.25)
    assert parse_message(b'{"seq": 1, "sent": 5}') == (1, 5.0)
    for bad in ("nope", "[1]", '{"seq": "1", "sent": 1}', '{"seq": 1}', '{"seq": true, "sent": 1}'):
        with pytest.raises(BadMessage):
            parse_message(bad)
    assert message_latency_ms(100.0125, 100.0) == pytest.approx(12.5)
    assert message_latency_ms(99.9999, 100.0) == 0.0  # never negative


def test_latency_of_a_late_server_message_counts_from_its_schedule() -> None:
    """The client side of targets.streams' scheduled stamps: a server that stalls 50 ms before
    its second event shows 50 ms more latency on it, in the parser and latency helpers the SSE
    user runs (the WebSocket ticker's messages carry the same stamps)."""
    pause = 0.05
    parser, latencies = SseParser(), []
    for seq, wait_s in streams.Schedule(3, 0.005).ticks():
        time.sleep(wait_s + (pause if seq == 2 else 0.0))
        for event in parser.feed(streams.sse_event(seq, 3)):
            received_at = time.time()
            got_seq, sent = parse_message(event.data)
            assert got_seq == seq
            latencies.append(message_latency_ms(received_at, sent))
        _, ticker_sent = parse_message(streams.tick(seq))
        assert ticker_sent == seq.due
    assert latencies[0] < pause * 1000 / 2
    assert latencies[1] >= pause * 1000
    assert latencies[2] >= (pause - 0.005) * 1000


def test_sequence_tracker_counts_gaps() -> None:
    tracker = SequenceTracker()
    assert [tracker.see(s) for s in (1, 2, 5, 6, 6, 4, 8)] == [0, 0, 2, 0, 0, 0, 1]
    assert tracker.missing == 3 and tracker.last == 8


# --- summary columns ----------------------------------------------------------------------

WINDOW_START = 1_800_000_000.0
DURATION_S = 4.0


def _write_cell(
    run_dir: Path, cell_id: str, by_name: dict[str, np.ndarray], **extra: object
) -> None:
    folder = run_dir / schema.RAW_DIR / cell_id
    folder.mkdir(parents=True)
    everything = np.concatenate(list(by_name.values()))
    latency = {
        "schema": 1,
        "unit": "us",
        "window_start": WINDOW_START,
        "window_end": WINDOW_START + DURATION_S,
        "duration_s": DURATION_S,
        "warmup_s": 1.0,
        "complete": True,
        "successes": len(everything),
        "failures": 0,
        "failures_by_kind": {},
        "histogram": encode(everything),
        "per_second": [],
        "by_name": {
            name: {"successes": len(values), "failures": 0, "histogram": encode(values)}
            for name, values in by_name.items()
        },
        **extra,
    }
    (folder / schema.LATENCY_FILE).write_text(json.dumps(latency))
    with open(folder / schema.RESOURCES_FILE, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "role", "cpu_pct", "rss_mb", "procs"])
        # Before load (t < load_started_at): 50 and 51 MB; in the window up to 60 MB.
        for t, rss in ((-3.0, 51.0), (-2.5, 50.0), (-1.0, 55.0), (0.5, 58.0), (2.0, 60.0)):
            writer.writerow([WINDOW_START + t, "server", 10.0, rss, 1])


def _cell(scenario: str, users: int) -> dict[str, object]:
    cell = schema.Cell(scenario, "fastapi-uvicorn", "closed", users, None, 1, DURATION_S, 1.0, None)
    return {**cell.to_dict(), "status": schema.STATUS_OK}


def test_summary_protocol_columns(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ws, sse, http = _cell("websocket", 10), _cell("sse", 10), _cell("io", 10)
    rng = np.random.default_rng(3)
    messages = rng.integers(200, 3_000, 400)  # microseconds
    load_started = WINDOW_START - 2.0  # after the two "before load" samples
    _write_cell(
        run_dir,
        str(ws["cell_id"]),
        {"WS connect": np.array([900] * 10), "WS message": messages},
        connects=10,
        connect_failures=0,
        load_started_at=load_started,
    )
    _write_cell(run_dir, str(sse["cell_id"]), {"SSE message": messages}, connects=8)
    _write_cell(run_dir, str(http["cell_id"]), {"GET /io": messages}, connects=0)
    manifest = {"schema_version": schema.SCHEMA_VERSION, "cells": [ws, sse, http], "targets": {}}
    (run_dir / schema.MANIFEST_FILE).write_text(json.dumps(manifest))

    rows = build_summary(run_dir).set_index("scenario")
    assert list(rows["protocol"]) == ["ws", "sse", "http"]
    row = rows.loc["websocket"]
    assert row["connections_requested"] == 10 and row["connections_established"] == 10
    # (60 MB peak in the window - 50 MB lowest before load) / 10 connections = 1000 kB.
    assert row["rss_per_connection_kb"] == pytest.approx(1000.0)
    ordered = np.sort(messages)
    assert row["message_p50_ms"] == pytest.approx(ordered[199] / 1000, rel=1e-3)
    assert row["message_p99_ms"] == pytest.approx(ordered[395] / 1000, rel=1e-3)
    assert row["messages_per_s"] == pytest.approx(400 / DURATION_S)
    assert rows.loc["sse", "connections_established"] == 8
    assert pd_isna(rows.loc["sse", "rss_per_connection_kb"])  # no load_started_at: no baseline
    for column in ("connections_requested", "connections_established", "message_p99_ms"):
        assert pd_isna(rows.loc["io", column])


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_cell_protocol() -> None:
    assert cell_protocol({"by_name": {"SSE connect": {}}}) == "sse"
    assert cell_protocol({"by_name": {"GET /a": {}, "WS message": {}}}) == "ws"
    assert cell_protocol({"by_name": {"GET /a": {}}}) == "http"
    assert cell_protocol({}) == "http"


# --- end to end ---------------------------------------------------------------------------


E2E_USERS = 5
E2E_DURATION_S = 1.5
MESSAGES_PER_S = 10  # the sse and websocket scenarios push every 100 ms


@pytest.mark.e2e
@pytest.mark.solo
def test_sse_and_websocket_on_both_stacks(tmp_path: Path) -> None:
    run_dir = tmp_path / "protocols"
    argv = [sys.executable, "-m", "harness", "run", "--scenarios", "sse,websocket",
            "--targets", "fastapi-uvicorn,flask-gunicorn-gthread", "--users", str(E2E_USERS),
            "--duration", str(E2E_DURATION_S), "--warmup", "0.3", "--no-calibrate",
            "--no-verify", "--out", str(run_dir)]  # fmt: skip
    done = subprocess.run(
        argv, cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    with open(run_dir / schema.SUMMARY_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    for row in rows:
        label = f"{row['scenario']} x {row['target']}"
        assert row["status"] == "ok", label
        assert row["protocol"] == {"sse": "sse", "websocket": "ws"}[row["scenario"]], label
        assert int(row["connections_requested"]) == E2E_USERS, label
        assert int(row["connections_established"]) == E2E_USERS, label
        assert int(row["failures"]) == 0, label
        # 5 users x 10 messages/s for 1.5 s: about 75 messages; within a third of that.
        expected = E2E_USERS * MESSAGES_PER_S * E2E_DURATION_S
        messages = float(row["messages_per_s"]) * E2E_DURATION_S
        assert expected * 2 / 3 <= messages <= expected * 4 / 3, label
        assert 0 <= float(row["message_p50_ms"]) < 50, label
        assert float(row["message_p99_ms"]) < 200, label
        # Held at the window's end, each on a fresh server measured from PSS: a connection
        # costs kilobytes (or nothing, when it fits in memory the server had already touched),
        # never the megabytes of workers still booting into the baseline.
        assert int(row["connections_held"]) == E2E_USERS, label
        assert 0 <= float(row["pss_per_connection_kb"]) < 1000, label
        assert float(row["connect_p99_ms"]) > 0 and float(row["first_message_p99_ms"]) > 0
