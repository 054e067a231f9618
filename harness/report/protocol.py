"""The "Protocol: TLS, new connections and HTTP/2" section of report.md.

Only when the run has such cells (``harness.results.protocol``): first what TLS and a new
connection per request cost each stack in server CPU per request against ``health`` (the same
cheap route, kept alive over plain TCP), with one sentence per variant giving the range over the
targets; then, per scenario of the HTTP/2 user, its rows per target and users level, and each h2
row against its HTTP/1.1 twin (requests/s and CPU per request), from trusted cells only, with the
ones left out named. Then the chart. Every figure in the words is computed from the tables.
"""

from __future__ import annotations

from harness.charts.paths import PROTOCOL_CAPTION, protocol_chart_path
from harness.format import fmt, fmt_ms, missing, ratio_times
from harness.report.blocks import chart_lines, table, yes_no
from harness.results.folder import Results
from harness.results.protocol import (
    BASELINE,
    CLOSE,
    H2,
    CostTable,
    H2Pair,
    H2Scenario,
    KindCost,
    cost_table,
    h2_scenarios,
    kind_costs,
)

TITLE = "## Protocol: TLS, new connections and HTTP/2"
COST_INTRO = (
    f"What each stack spends per request on the protocol, on the cheapest route (GET /health) "
    f"with locust's FastHttpUser over HTTP/1.1. `{BASELINE}` keeps its connections alive over "
    "plain TCP; the other scenarios add TLS, a new connection per request (`Connection: close`: "
    "the TCP handshake, and the TLS one over TLS, on every request), or both. On this route the "
    "load generator is often the limit, so requests/s mostly measures locust; the server's CPU "
    "is measured either way, so *server CPU per request* (server CPU / requests/s, in µs) is the "
    "cost to compare. *extra* is that minus the same target's `health` at the same users; "
    "*connections per request* is what the generator opened (~0 kept alive, ~1 one per request)."
)
H2_INTRO = (
    "The same client (httpx, `harness.loadgen.h2`) drives both protocols with the same requests "
    "in flight, users × streams: HTTP/2 targets get one connection per user carrying its streams "
    "(h2c over plain TCP, h2 over TLS), HTTP/1.1 targets a connection per stream. Each HTTP/2 row "
    "is compared with its HTTP/1.1 twin (the same framework, server and workers) at the same "
    "users; generator-bound cells measure the client, not the server, and are left out. The "
    "httpx client costs far more CPU per request than FastHttpUser, so these cells reach the "
    "generator's limit sooner."
)
GENERATOR_MARK = "yes"


def _us(value: object) -> str:
    """µs in words: no decimals from 10 µs, one below."""
    if missing(value):
        return "–"
    number = float(value)  # type: ignore[arg-type]
    text = f"{abs(number):.0f}" if abs(number) >= 10 else f"{abs(number):.1f}"
    return f"−{text}" if number < 0 else text


def _range(values: list[float]) -> str:
    low, high = min(values), max(values)
    if _us(low) == _us(high):
        return f"{_us(low)} µs"
    return f"{_us(low)}–{_us(high)} µs" if low >= 0 else f"from {_us(low)} to {_us(high)} µs"


def kind_sentence(cost: KindCost) -> str:
    """ "TLS, keep-alive adds 35–60 µs of server CPU per request over `health` (least:
    a 35, most: b 60)." and, for new connections, whether the generator really opened one."""
    what = cost.kind[0].upper() + cost.kind[1:]
    unkept = ""
    if cost.not_kept:
        shown = ", ".join(f"{t} ({fmt(c, 2)})" for t, c in sorted(cost.not_kept.items()))
        unkept = (
            f" Not counted for {cost.kind}: {shown}, whose server closes every connection "
            "itself (connections per request in brackets), so these cells paid a new "
            "connection, and its handshakes, on every request."
        )
    if cost.unchanged:
        unkept += (
            f" Not counted for {cost.kind}: {', '.join(cost.unchanged)}, whose `{BASELINE}` "
            "already opened a connection per request (its server keeps none alive)."
        )
    if not cost.extras:
        return unkept.strip()
    values = list(cost.extras.values())
    if min(values) >= 0:
        text = f"{what} adds {_range(values)} of server CPU per request over `{BASELINE}`"
    else:  # some target spent less than on its baseline: say it as a change, signed
        low, high = min(values), max(values)
        text = (
            f"{what} changes server CPU per request by {_us(low)} to "
            f"{'+' if high > 0 else ''}{_us(high)} µs against `{BASELINE}` (a change below "
            "zero is within the run's noise: compare the cells' flags)"
        )
    if len(cost.extras) > 1:
        least = min(cost.extras, key=lambda t: cost.extras[t])
        most = max(cost.extras, key=lambda t: cost.extras[t])
        text += f" (least: {least}, {_us(cost.extras[least])}; most: {most}, "
        text += f"{_us(cost.extras[most])})"
    elif len(cost.extras) == 1:
        (only,) = cost.extras
        text += f" on {only}"
    text += "." + unkept
    if cost.connection == CLOSE:
        kept = sorted(t for t, c in cost.connections.items() if c < 0.9)
        if kept:
            shown = ", ".join(f"{t} {fmt(cost.connections[t], 2)}" for t in kept)
            text += (
                f" Fewer than 0.9 connections per request on {shown}: the generator reused "
                "some connections, so part of the handshake cost is missing there."
            )
    return text


def _cost_lines(found: CostTable) -> list[str]:
    header = ["target", "scenario", "connections", "users", "rps", "server CPU %"]
    header += ["server CPU µs/request", "extra µs/request", "connections per request"]
    header += ["generator-bound"]
    body = []
    for _, row in found.rows.iterrows():
        extra = "baseline" if row["baseline"] else _us(row["extra_us"])
        if not row["baseline"] and not missing(row["extra_us"]) and row["extra_us"] >= 0:
            extra = "+" + extra
        body.append(
            [
                str(row["target"]),
                f"`{row['scenario']}`",
                str(row["kind"]),
                fmt(row["users"], 0),
                fmt(row["rps"]),
                fmt(row["server_cpu_pct"]),
                fmt(row["cpu_us"]),
                extra,
                fmt(row["connections_per_request"], 2),
                GENERATOR_MARK if row["generator_bound"] else "",
            ]
        )
    lines = ["### Cost per request: TLS and new connections", "", COST_INTRO, ""]
    lines += [*table(header, body), ""]
    sentences = [s for s in (kind_sentence(c) for c in kind_costs(found)) if s]
    bound = found.rows[found.rows["generator_bound"]]
    if len(bound):
        names = ", ".join(f"{r['target']} `{r['scenario']}`" for _, r in bound.iterrows())
        sentences.append(
            f"Generator-bound (requests/s measures locust there; the CPU per request still "
            f"counts, the server's CPU was measured): {names}."
        )
    if found.missing:
        sentences.append("Not in the table: " + "; ".join(found.missing) + ".")
    return [*lines, " ".join(sentences), ""] if sentences else lines


def _http_text(protocol: object, tls: bool) -> str:
    name = "h2" if protocol == H2 else "HTTP/1.1"
    return f"{name} over TLS" if tls else name


def pair_sentence(pair: H2Pair) -> str:
    """ "fastapi-hypercorn-h2c (h2) against fastapi-hypercorn (HTTP/1.1) at 50 users × 8
    streams: 1.02× the requests/s at 0.85× the server CPU per request." """
    streams = f" × {pair.streams:g} streams" if pair.streams is not None else ""
    twin = _http_text("http", pair.twin_tls)
    if pair.tls != pair.twin_tls:
        twin += ", so TLS differs too"
    text = (
        f"{pair.target} ({_http_text(H2, pair.tls)}) against {pair.twin} ({twin}) at "
        f"{pair.users:g} users{streams}: {ratio_times(pair.rps_ratio)} the requests/s "
        f"({fmt(pair.rps)} vs {fmt(pair.twin_rps)})"
    )
    ratio = pair.cpu_ratio
    if ratio is None:
        return text + "; server CPU per request not measured."
    return (
        f"{text} at {ratio_times(ratio)} the server CPU per request "
        f"({_us(pair.cpu_us)} vs {_us(pair.twin_cpu_us)} µs)."
    )


def _h2_lines(scenario: H2Scenario) -> list[str]:
    header = ["target", "HTTP", "TLS", "users × streams", "rps", "p50 ms", "p99 ms"]
    header += ["server CPU µs/request", "generator CPU %", "connections per request"]
    header += ["limited by", "generator-bound"]
    body = []
    for _, row in scenario.medians.sort_values(["target", "users"]).iterrows():
        streams = "" if missing(row["streams"]) else f" × {row['streams']:g}"
        limit = row["limited_by"] if not missing(row["limited_by"]) else row["limiter"]
        body.append(
            [
                str(row["target"]),
                "h2" if row["protocol"] == H2 else "HTTP/1.1",
                yes_no(row["tls"]).strip("*"),
                f"{row['users']:g}{streams}",
                fmt(row["rps"]),
                fmt_ms(row["p50_ms"]),
                fmt_ms(row["p99_ms"]),
                fmt(row["cpu_us"]),
                fmt(row["generator_cpu_pct"]),
                fmt(row["connections_per_request"], 3),
                "–" if missing(limit) else str(limit),
                GENERATOR_MARK if row["generator_bound"] else "",
            ]
        )
    lines = [f"### HTTP/2 against HTTP/1.1: `{scenario.name}`", "", H2_INTRO, ""]
    lines += [*table(header, body), ""]
    sentences = [pair_sentence(pair) for pair in scenario.pairs]
    if not scenario.pairs:
        sentences.append("No HTTP/2 row has a trusted HTTP/1.1 twin to compare with.")
    if scenario.left_out:
        sentences.append("Left out: " + "; ".join(scenario.left_out) + ".")
    return [*lines, *(f"- {s}" for s in sentences), ""]


def protocol_section(results: Results) -> list[str]:
    """The section: cost per request, HTTP/2 against HTTP/1.1, the chart; [] without cells."""
    cost = cost_table(results)
    h2 = h2_scenarios(results)
    if cost is None and not h2:
        return []
    lines = [TITLE, ""]
    if cost is not None:
        lines += _cost_lines(cost)
    for scenario in h2:
        lines += _h2_lines(scenario)
    path = protocol_chart_path(results.run_dir)
    lines += chart_lines(results, path, "protocol costs", PROTOCOL_CAPTION)
    return lines
