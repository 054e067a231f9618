"""The protocol layer in the analysis: what TLS, a new connection and HTTP/2 cost each stack.

Two questions, from the summary's protocol columns (``tls``, ``connection``, ``streams``,
``client``, ``protocol``):

Cost per request (``cost_table``). The HTTP/1.1 scenarios driven by locust's FastHttpUser on the
same cheap route: ``health`` over plain TCP with keep-alive is the baseline, every scenario whose
cells speak TLS or do not keep connections alive (``tls``, ``newconn``, ``newconn_tls``) a variant.
On this route the load generator is often the limit, so requests/s says little about the server;
the server's CPU is measured either way, and server CPU / rps (µs of server CPU per request) is
the honest cost. Each target is compared at the highest users level its scenarios share, and a
variant's *extra* is its µs per request minus the baseline's on the same target at that level.

HTTP/2 (``h2_scenarios``). The scenarios driven by the HTTP/2 user (client "httpx"): the same
client speaks h2 to an HTTP/2 target row and HTTP/1.1 to the others, with the same users x
streams in flight. Each h2 row is compared with its HTTP/1.1 twin, the target that differs from
it only in its HTTP version (``harness.results.factors.classify``; or in its HTTP version and TLS
when the run has no closer one, said so), at the same users level, from trusted cells only
(ok, not generator-bound); the cells left out are named with the reason.

The words are ``harness.report.protocol``'s, the chart ``harness.charts.protocol``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.format import missing
from harness.results.factors import classify
from harness.results.folder import Results
from harness.results.rows import generator_bound, ok_only
from harness.results.targets import setting, target_settings

BASELINE = "health"  # the cheap route over plain TCP with keep-alive
KEEP_ALIVE = "keep-alive"
CLOSE = "close"
HTTPX = "httpx"  # the HTTP/2 user's client (harness.loadgen.h2)
H2 = "h2"  # summary "protocol" of requests that went over HTTP/2
US_PER_S = 1e6
NOT_KEPT = 0.9  # connections per request from which a "keep-alive" cell kept none (no keep-alive)
COST_FIGURES = ["rps", "cpu_us", "connections_per_request", "server_cpu_pct"]
H2_FIGURES = ["rps", "p50_ms", "p99_ms", "cpu_us", "generator_cpu_pct", "connections_per_request"]
H2_FIGURES += ["server_cpu_pct"]


def cpu_us_per_request(server_cpu_pct: Any, rps: Any) -> float | None:
    """µs of server CPU per request: server_cpu_pct / 100 CPU-seconds per second, over rps."""
    if missing(server_cpu_pct) or missing(rps) or not float(rps) > 0:
        return None
    return float(server_cpu_pct) / 100.0 / float(rps) * US_PER_S


def _with_cost(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with ``cpu_us`` (each trial's own, so a median over trials is of the trials')."""
    rows = rows.copy()
    rows["cpu_us"] = [
        cpu_us_per_request(cpu, rps)
        for cpu, rps in zip(rows["server_cpu_pct"], rows["rps"], strict=True)
    ]
    rows["cpu_us"] = rows["cpu_us"].astype("float64")
    return rows


def _tls(rows: pd.DataFrame) -> pd.Series:
    return rows["tls"].fillna(False).astype(bool)


def _connection(rows: pd.DataFrame) -> pd.Series:
    return rows["connection"].fillna(KEEP_ALIVE).astype(str)


def _httpx(rows: pd.DataFrame) -> pd.Series:
    return rows["client"].eq(HTTPX).fillna(False).astype(bool)


def link_kind(tls: bool, connection: str) -> str:
    """What a cell's connections were, in words: "TLS, keep-alive", "a new connection per
    request", "a new TLS connection every 10 requests", "plain TCP, keep-alive"."""
    if connection == KEEP_ALIVE:
        return "TLS, keep-alive" if tls else "plain TCP, keep-alive"
    what = "a new TLS connection" if tls else "a new connection"
    if connection == CLOSE:
        return f"{what} per request"
    return f"{what} {connection} requests"  # "every N"


def kind_order(tls: bool, connection: str) -> tuple[int, int, str]:
    """Baseline first, then TLS, then new connections (plain before TLS), then every N."""
    rank = 0 if connection == KEEP_ALIVE else (1 if connection == CLOSE else 2)
    return (rank, int(tls), connection)


# ---- cost per request: health against tls, newconn, newconn_tls ---------------------------------


@dataclass(frozen=True)
class CostTable:
    """Per target, its HTTP/1.1 scenarios at one users level: medians over ok trials.

    ``rows``: target, scenario, tls, connection, kind, users, trials, the COST_FIGURES,
    generator_bound (any of its trials was), baseline (the row is ``health`` over plain TCP with
    keep-alive) and extra_us (µs per request minus the baseline's; empty for the baseline and
    when the target has none at that level). ``missing``: what has no cell at a target's level.
    """

    rows: pd.DataFrame
    missing: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> list[tuple[bool, str]]:
        """The (tls, connection) variants present, in report order."""
        found = {(bool(r.tls), str(r.connection)) for r in self.rows.itertuples() if not r.baseline}
        return sorted(found, key=lambda kind: kind_order(*kind))


def _http1_closed(results: Results) -> pd.DataFrame:
    """Ok closed-load rows of the FastHttpUser scenarios that went over HTTP/1.1."""
    ok = ok_only(results.summary)
    ok = ok[ok["load_model"].eq("closed").fillna(False)]
    http = ok["protocol"].fillna("http").eq("http")
    return ok[~_httpx(ok) & http.astype(bool)].dropna(subset=["users"])


def _is_baseline(rows: pd.DataFrame) -> pd.Series:
    return (
        rows["scenario"].eq(BASELINE).fillna(False) & ~_tls(rows) & _connection(rows).eq(KEEP_ALIVE)
    )


def _is_variant(rows: pd.DataFrame) -> pd.Series:
    return _tls(rows) | _connection(rows).ne(KEEP_ALIVE)


def _shared_level(rows: pd.DataFrame) -> float:
    """The users level covered by the most of these scenarios, the highest of those."""
    coverage = rows.groupby("users")["scenario"].nunique()
    return float(max(coverage.index, key=lambda level: (coverage[level], level)))


def cost_table(results: Results) -> CostTable | None:
    """The cost per request of TLS and new connections per target; None when the run has no
    HTTP/1.1 cell with TLS or without keep-alive."""
    rows = _http1_closed(results)
    variants = rows[_is_variant(rows)]
    if variants.empty:
        return None
    rows = _with_cost(rows)
    chosen = rows[_is_baseline(rows) | _is_variant(rows)]
    records: list[dict[str, Any]] = []
    absent: list[str] = []
    for target in sorted(set(variants["target"].astype(str))):
        mine = chosen[chosen["target"].eq(target).fillna(False)]
        level = _shared_level(mine)
        at = mine[mine["users"].astype("float64") == level]
        for name in sorted(set(mine["scenario"].astype(str)) - set(at["scenario"].astype(str))):
            absent.append(f"{target}: `{name}` has no ok cell at {level:g} users")
        for scenario, trials in at.groupby("scenario", sort=False):
            first = trials.iloc[0]
            tls, connection = bool(_tls(trials).iloc[0]), str(_connection(trials).iloc[0])
            record: dict[str, Any] = {
                "target": target,
                "scenario": str(scenario),
                "tls": tls,
                "connection": connection,
                "kind": link_kind(tls, connection),
                "users": level,
                "trials": len(trials),
                "generator_bound": bool(generator_bound(trials).any()),
                "baseline": bool(_is_baseline(trials).iloc[0]),
                "limited_by": first["limited_by"],
            }
            for column in COST_FIGURES:
                record[column] = trials[column].astype("float64").median()
            records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame["extra_us"] = math.nan
    for who, group in frame.groupby("target"):
        base = group[group["baseline"]]
        if base.empty:
            absent.append(f"{who}: no `{BASELINE}` cell over plain TCP with keep-alive")
            continue
        cost = float(base["cpu_us"].iloc[0])
        variant = frame["target"].eq(who) & ~frame["baseline"]
        frame.loc[variant, "extra_us"] = frame.loc[variant, "cpu_us"] - cost
    frame["order"] = [
        kind_order(bool(t), str(c)) for t, c in zip(frame["tls"], frame["connection"], strict=True)
    ]
    frame = frame.sort_values(["target", "order", "scenario"]).drop(columns="order")
    return CostTable(frame.reset_index(drop=True), absent)


@dataclass(frozen=True)
class KindCost:
    """What one variant (tls, connection) adds per request over the baseline, across targets."""

    tls: bool
    connection: str
    extras: dict[str, float]  # target -> extra µs per request (targets with a baseline)
    connections: dict[str, float]  # target -> connections per request measured
    # keep-alive variants: targets that closed every connection themselves (a server without
    # keep-alive: ~1 connection per request), whose cells paid a handshake per request; they
    # are not in ``extras``
    not_kept: dict[str, float] = field(default_factory=dict)
    # plain-TCP new-connection variants: targets whose baseline already opened a connection per
    # request (no keep-alive), so the variant changed nothing to compare; not in ``extras``
    unchanged: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return link_kind(self.tls, self.connection)


def kind_costs(table: CostTable) -> list[KindCost]:
    """Per variant present, each target's extra µs per request (the sentence's figures)."""
    found = []
    baseline = table.rows[table.rows["baseline"]]
    unkept_base = {
        str(r["target"])
        for _, r in baseline.iterrows()
        if not missing(r["connections_per_request"]) and r["connections_per_request"] >= NOT_KEPT
    }
    for tls, connection in table.kinds:
        rows = table.rows[
            ~table.rows["baseline"]
            & table.rows["tls"].eq(tls)
            & table.rows["connection"].eq(connection)
        ]
        extras = {
            str(r["target"]): float(r["extra_us"])
            for _, r in rows.iterrows()
            if not missing(r["extra_us"])
        }
        connections = {
            str(r["target"]): float(r["connections_per_request"])
            for _, r in rows.iterrows()
            if not missing(r["connections_per_request"])
        }
        not_kept = {}
        if connection == KEEP_ALIVE:
            not_kept = {t: c for t, c in connections.items() if c >= NOT_KEPT}
            extras = {t: v for t, v in extras.items() if t not in not_kept}
        unchanged = []
        if connection != KEEP_ALIVE and not tls:
            unchanged = sorted(t for t in extras if t in unkept_base)
            extras = {t: v for t, v in extras.items() if t not in unkept_base}
        found.append(KindCost(tls, connection, extras, connections, not_kept, unchanged))
    return found


# ---- HTTP/2: the HTTP/2 user's scenarios, each h2 row against its HTTP/1.1 twin ------------------


@dataclass(frozen=True)
class H2Pair:
    """An h2 row against its HTTP/1.1 twin at one users level (medians over trusted trials)."""

    target: str
    twin: str
    users: float
    streams: float | None
    tls: bool  # the h2 row's
    twin_tls: bool
    rps: float
    twin_rps: float
    cpu_us: float | None
    twin_cpu_us: float | None

    @property
    def rps_ratio(self) -> float:
        return self.rps / self.twin_rps if self.twin_rps > 0 else math.nan

    @property
    def cpu_ratio(self) -> float | None:
        if self.cpu_us is None or self.twin_cpu_us is None or not self.twin_cpu_us > 0:
            return None
        return self.cpu_us / self.twin_cpu_us


@dataclass(frozen=True)
class H2Scenario:
    """A scenario of the HTTP/2 user: its rows per target and users level, the h2-vs-HTTP/1.1
    pairs and the comparisons left out (with why)."""

    name: str
    rows: pd.DataFrame  # every summary row of the scenario under closed load
    medians: pd.DataFrame  # per (target, users): medians over ok trials, see h2_medians
    pairs: list[H2Pair]
    left_out: list[str]


def _mode(values: pd.Series) -> Any:
    values = values.dropna()
    return values.mode().iloc[0] if len(values) else None


def h2_medians(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (target, users) of ok rows: the H2_FIGURES' medians, the protocol its requests went
    over ("h2" or "http"), tls, streams, in_flight (users x streams), limiter and its words,
    trials and generator_bound (any of its trials was)."""
    ok = _with_cost(ok_only(rows).dropna(subset=["users"]))
    records = []
    for (target, level), trials in ok.groupby(["target", "users"], sort=True):
        users = float(str(level))
        streams = trials["streams"].astype("float64").median()
        record: dict[str, Any] = {
            "target": str(target),
            "users": users,
            "protocol": _mode(trials["protocol"]) or "http",
            "tls": bool(_tls(trials).any()),
            "streams": None if missing(streams) else float(streams),
            "in_flight": users * (1.0 if missing(streams) else float(streams)),
            "trials": len(trials),
            "generator_bound": bool(generator_bound(trials).any()),
            "limiter": _mode(trials["limiter"]),
            "limited_by": _mode(trials["limited_by"]),
        }
        for column in H2_FIGURES:
            record[column] = trials[column].astype("float64").median()
        records.append(record)
    columns = ["target", "users", "protocol", "tls", "streams", "in_flight", "trials"]
    columns += ["generator_bound", "limiter", "limited_by", *H2_FIGURES]
    return pd.DataFrame.from_records(records, columns=columns)


def _speaks_h2(settings: dict[str, Any], rows: pd.DataFrame) -> bool:
    """An HTTP/2 side: its row says HTTP "2", or its requests went over h2."""
    if str(setting(settings, "http") or "") == "2":
        return True
    return bool(ok_only(rows)["protocol"].eq(H2).fillna(False).any())


def find_twin(name: str, others: list[str], settings: dict[str, dict[str, Any]]) -> str | None:
    """The HTTP/1.1 target differing from ``name`` in its HTTP version only; failing that, in
    its HTTP version and TLS (the run's HTTP/1.1 rows rarely serve TLS)."""
    exact = [o for o in others if classify(settings[o], settings[name]) == "http"]
    if exact:
        return exact[0]
    mine = settings[name]
    for other in others:
        same_tls = {**settings[other], "tls": mine.get("tls", False)}
        if classify(same_tls, mine) == "http":
            return other
    return None


def _trusted_figures(rows: pd.DataFrame, target: str, users: float) -> tuple[float, float | None]:
    there = rows[rows["target"].eq(target).fillna(False) & rows["users"].eq(users).fillna(False)]
    there = _with_cost(there)
    cpu = there["cpu_us"].dropna()
    return float(there["rps"].median()), float(cpu.median()) if len(cpu) else None


def _why_not(rows: pd.DataFrame, target: str, users: float) -> str:
    there = rows[rows["target"].eq(target).fillna(False) & rows["users"].eq(users).fillna(False)]
    ok = ok_only(there).dropna(subset=["rps"])
    if there.empty:
        return "no cell"
    if ok.empty:
        return "/".join(sorted(set(there["status"].fillna("unknown").astype(str)))) + " cell"
    if bool(generator_bound(ok).all()):
        return "generator-bound"
    return "no throughput"


def _pairs(
    name: str, rows: pd.DataFrame, settings: dict[str, dict[str, Any]]
) -> tuple[list[H2Pair], list[str]]:
    ok = ok_only(rows).dropna(subset=["rps", "users"])
    trusted = ok[~generator_bound(ok)]
    trusted = trusted[trusted["rps"].astype("float64") > 0]
    present = [t for t in settings if rows["target"].eq(t).any()]
    of = {t: rows[rows["target"].eq(t).fillna(False)] for t in present}
    h2 = [t for t in present if _speaks_h2(settings[t], of[t])]
    http1 = [t for t in present if t not in h2]
    pairs: list[H2Pair] = []
    left_out: list[str] = []
    for target in h2:
        twin = find_twin(target, http1, settings)
        if twin is None:
            left_out.append(f"{target}: no HTTP/1.1 twin (same framework, server and workers)")
            continue
        levels = sorted(set(of[target]["users"].dropna().astype("float64")))
        for users in levels:
            gone = [
                t
                for t in (target, twin)
                if trusted[trusted["target"].eq(t) & trusted["users"].eq(users)].empty
            ]
            if gone:
                why = "; ".join(f"{t} {_why_not(rows, t, users)}" for t in gone)
                left_out.append(f"{target} vs {twin} at {users:g} users: {why}")
                continue
            rps, cpu = _trusted_figures(trusted, target, users)
            twin_rps, twin_cpu = _trusted_figures(trusted, twin, users)
            mine = trusted[trusted["target"].eq(target) & trusted["users"].eq(users)]
            streams = mine["streams"].astype("float64").median()
            twin_rows = trusted[trusted["target"].eq(twin)]
            pairs.append(
                H2Pair(
                    target=target,
                    twin=twin,
                    users=users,
                    streams=None if missing(streams) else float(streams),
                    tls=bool(_tls(mine).any()),
                    twin_tls=bool(_tls(twin_rows).any()),
                    rps=rps,
                    twin_rps=twin_rps,
                    cpu_us=cpu,
                    twin_cpu_us=twin_cpu,
                )
            )
    return pairs, left_out


def h2_scenarios(results: Results) -> list[H2Scenario]:
    """The run's scenarios driven by the HTTP/2 user, with ok cells, in run order."""
    settings = target_settings(results)
    found = []
    for name in results.scenario_names:
        rows = results.scenario_rows(name, "closed")
        if ok_only(rows).empty or not _httpx(ok_only(rows)).any():
            continue
        pairs, left_out = _pairs(name, rows, settings)
        found.append(H2Scenario(name, rows, h2_medians(rows), pairs, left_out))
    return found
