"""Every ceiling on a cell's throughput, from what was measured in that cell, and which one held.

A cell's throughput is capped by several things at once; the lowest cap is its bound and
names its *limiter* (``LIMITERS``):

- ``users``: closed load, U users without think time send at most U / S requests/s, where S is
  the scenario's service time plus the per-request overhead the verify gate measured on
  ``/io?ms=0`` for that target; without a service time (CPU-bound routes), S is the server's
  plus the generator's CPU time per request, measured in the cell (one after the other: an
  estimate, as a little of the two overlaps, so efficiency can read slightly above 1); on a
  threaded server every connection of which had a thread, the users' connections / S;
- ``rate``: open load offers ``rate`` requests/s, no more;
- ``slots``: a server holding K requests at once serves at most K / S (Little's law); when
  work goes on after the response (the scenario's ``slot_time_ms``), S is that hold time;
- ``pool``: real I/O (a scenario that needs a database or an upstream service): a request
  holds one of the target's pooled connections for its service time, so K is
  min(server slots, pool_total) (an event loop's unbounded slots: pool_total); the ceiling is
  named ``pool`` when pool_total is the smaller, ``slots`` otherwise (never both);
- ``balance``: with keep-alive a connection stays on the worker that accepted it, so a
  threaded server whose workers hold c_i connections with T threads each runs at most
  sum(min(c_i, T)) requests at once: those effective slots / S;
- ``server_cpu``: the server's CPU budget (cores it may use x 100%) divided by the server CPU
  per request measured in the cell: rps x budget / CPU%;
- ``database``: the database is pinned to the server's CPUs, so the two share them: the shared
  ceiling is the shared budget (the server's CPUs x 100%; the server's own budget when not
  given) over the server's plus the database's CPU per request: rps x budget / (server CPU% +
  database CPU%). It is named ``database`` when the database used more of it than the server;
  otherwise it is merged into ``server_cpu`` (the lower of the two);
- ``generator``: the same for the load generator (one locust process: one core);
- ``connections``: SSE/WebSocket cells deliver at most (messages per held connection per s) x
  (connections requested); their ``slots`` and ``balance`` ceilings are that rate times the
  slots (effective slots) instead, since each held connection takes a slot for its lifetime.

Efficiency is rps / bound (open load: rps / offered rate, did it keep up). When efficiency is
below ``EXPLAINED`` and the limiter is not a resource that was busy (a CPU at or above
``CPU_BUSY`` of its budget), no ceiling explains the loss and the limiter is ``unexplained``;
with a database measured, server plus database CPU at or above ``CPU_BUSY`` of the shared
budget is such a busy resource, whichever ceiling is the lowest.
Pure: it reads no file; ``harness.results.summary`` gathers the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from harness.format import fmt_exact, fmt_pct_brief

LIMITERS = (
    "users",
    "rate",
    "slots",
    "pool",
    "balance",
    "server_cpu",
    "database",
    "generator",
    "connections",
    "unexplained",
)
EXPLAINED = 0.9  # efficiency at or above this: the lowest ceiling explains the cell
CPU_BUSY = 0.8  # a CPU this busy (share of its budget) explains being below its ceiling
GENERATOR_BUDGET_PCT = 100.0  # one locust process runs on one core at most
CPU_RESOURCES = ("server_cpu", "database", "generator")


@dataclass(frozen=True)
class CellLoad:
    """What the roofline needs from one cell (None where it was not measured)."""

    load_model: str = "closed"
    users: float | None = None
    rate: float | None = None
    rps: float | None = None
    service_time_ms: float | None = None
    overhead_ms: float | None = None  # the target's /io?ms=0 time (verify gate)
    slot_time_ms: float | None = None  # how long a request holds a slot, when it is not S
    slots: float | None = None
    threads: float | None = None  # per worker, for the balance ceiling
    # established connections per server process, one list per sample in the window
    connection_samples: list[list[int]] | None = None
    server_cpu_pct: float | None = None
    server_budget_pct: float | None = None
    generator_cpu_pct: float | None = None
    generator_budget_pct: float = GENERATOR_BUDGET_PCT
    protocol: str = "http"
    connections_requested: float | None = None
    connections_held: float | None = None
    # real I/O: connections the target's pools hold at most (workers x pool), None otherwise
    pool_total: float | None = None
    # the database's CPU (% of a core), sharing the server's CPUs: shared_budget_pct of them
    database_cpu_pct: float | None = None
    shared_budget_pct: float | None = None  # None: the server's own budget

    @property
    def long_lived(self) -> bool:
        """SSE and WebSocket cells: each user holds one connection (not requests)."""
        return self.protocol in ("sse", "ws")


@dataclass(frozen=True)
class Roofline:
    ceilings: dict[str, float] = field(default_factory=dict)
    bound_rps: float | None = None
    limiter: str | None = None  # the lowest ceiling, or "unexplained"
    lowest: str | None = None  # the lowest ceiling's name, even when it does not explain
    efficiency: float | None = None
    effective_slots: float | None = None

    def ceilings_text(self) -> str | None:
        """``slots 78; users 3,883; server_cpu 3,252`` (lowest first), or None."""
        if not self.ceilings:
            return None
        ordered = sorted(self.ceilings.items(), key=lambda item: item[1])
        return "; ".join(f"{name} {fmt_exact(value)}" for name, value in ordered)


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def held_connections(samples: list[list[int]] | None) -> float | None:
    """Connections the server's processes held, averaged over the window's samples."""
    if not samples:
        return None
    return sum(sum(sample) for sample in samples) / len(samples)


def effective_slots(samples: list[list[int]] | None, threads: float | None) -> float | None:
    """Requests a threaded server could run at once given how its connections were spread:
    sum over workers of min(connections, threads), averaged over the window's samples."""
    if not samples or not _positive(threads):
        return None
    assert threads is not None
    return sum(sum(min(c, threads) for c in sample) for sample in samples) / len(samples)


def ceilings(cell: CellLoad) -> tuple[dict[str, float], float | None]:
    """Every ceiling that applies to the cell (requests/s), and its effective slots if known."""
    found: dict[str, float] = {}
    overhead_s = (cell.overhead_ms or 0.0) / 1000
    service_ms, slot_ms = _positive(cell.service_time_ms), _positive(cell.slot_time_ms)
    service_s = None if service_ms is None else service_ms / 1000 + overhead_s
    # How long a request holds a slot: its service time, unless work continues after the
    # response (then the client waits less than the slot is held).
    hold_s = service_s if slot_ms is None else slot_ms / 1000 + overhead_s
    users, rate, slots = _positive(cell.users), _positive(cell.rate), _positive(cell.slots)
    capacity_name, capacity = concurrency_limit(cell)
    rps = _positive(cell.rps)
    long_lived = cell.long_lived
    held = _positive(cell.connections_held)
    if cell.load_model == "open" and rate is not None:
        found["rate"] = rate
    if long_lived:
        requested = _positive(cell.connections_requested)
        if rps is not None and held is not None:
            per_connection = rps / held
            if requested is not None:
                found["connections"] = per_connection * requested
            if slots is not None:
                found["slots"] = per_connection * slots
    else:
        if capacity is not None and hold_s is not None:
            found[capacity_name] = capacity / hold_s
        if cell.load_model == "closed" and users is not None:
            if service_s is not None:
                found["users"] = users / service_s
            elif rps is not None:
                # No wait to speak of: each request needs the server's CPU, then the
                # generator's, one after the other: U users complete at most U / (D_s + D_g).
                demands = [
                    used / 100.0 / rps
                    for used in (cell.server_cpu_pct, cell.generator_cpu_pct)
                    if used is not None and used > 0
                ]
                if len(demands) == 2:
                    found["users"] = users / sum(demands)
    balanced = effective_slots(cell.connection_samples, cell.threads)
    connections = held_connections(cell.connection_samples)
    if (
        balanced is not None
        and connections is not None
        and (capacity is None or balanced < capacity)
    ):
        # A threaded server runs at most its usable slots at once. When every connection had
        # a thread, that is the users' own limit (each user holds one connection: with work
        # after the response, a user waits for its thread too); when some waited for a
        # thread of a busy worker while others sat idle, it is the connections' balance.
        uneven = balanced < connections - 0.5
        if long_lived and rps is not None and held is not None and uneven:
            found["balance"] = rps / held * max(balanced, 1.0)
        elif not long_lived and hold_s is not None:
            ceiling = max(balanced, 1.0) / hold_s
            if uneven:
                found["balance"] = ceiling
            elif cell.load_model == "closed":
                found["users"] = min(found.get("users", ceiling), ceiling)
    if rps is not None:
        for name, used, budget in (
            ("server_cpu", cell.server_cpu_pct, cell.server_budget_pct),
            ("generator", cell.generator_cpu_pct, cell.generator_budget_pct),
        ):
            if _positive(used) is not None and _positive(budget) is not None:
                assert used is not None and budget is not None
                found[name] = rps * budget / used
        shared = shared_cpu(cell)
        if shared is not None:
            name, ceiling = shared
            found[name] = min(found.get(name, ceiling), ceiling)
    return found, balanced


def concurrency_limit(cell: CellLoad) -> tuple[str, float | None]:
    """Requests the cell could hold at once and the ceiling's name: ``slots`` (the server's),
    or ``pool`` when the target's pools (real I/O) hold fewer connections than that."""
    slots, pool = _positive(cell.slots), _positive(cell.pool_total)
    if pool is not None and not cell.long_lived and (slots is None or pool < slots):
        return "pool", pool
    return "slots", slots


def shared_budget(cell: CellLoad) -> float | None:
    """The CPU budget the server and the database share (% of a core)."""
    return _positive(cell.shared_budget_pct) or _positive(cell.server_budget_pct)


def shared_cpu(cell: CellLoad) -> tuple[str, float] | None:
    """The server's and the database's shared CPU ceiling, named ``database`` when the
    database used more of it than the server, else ``server_cpu``; None when not measured."""
    rps, budget = _positive(cell.rps), shared_budget(cell)
    database, server = _positive(cell.database_cpu_pct), cell.server_cpu_pct or 0.0
    if rps is None or budget is None or database is None:
        return None
    name = "database" if database > server else "server_cpu"
    return name, rps * budget / (server + database)


def shared_utilization(cell: CellLoad) -> float | None:
    """Share of the shared budget the server and the database used together (None without a
    database measured)."""
    budget, database = shared_budget(cell), _positive(cell.database_cpu_pct)
    if budget is None or database is None:
        return None
    return ((cell.server_cpu_pct or 0.0) + database) / budget


def utilization(cell: CellLoad, resource: str) -> float | None:
    """Share of its budget a CPU resource used in the cell (``database``: the shared budget,
    server and database together; ``server_cpu`` the busier of its own and the shared one)."""
    if resource == "database":
        return shared_utilization(cell)
    if resource == "server_cpu" and _positive(cell.database_cpu_pct) is not None:
        shares = [
            share
            for share in (utilization(replace(cell, database_cpu_pct=None), resource),
                          shared_utilization(cell))
            if share is not None
        ]  # fmt: skip
        return max(shares) if shares else None
    used, budget = {
        "server_cpu": (cell.server_cpu_pct, cell.server_budget_pct),
        "generator": (cell.generator_cpu_pct, cell.generator_budget_pct),
    }.get(resource, (None, None))
    if used is None or not budget:
        return None
    return used / budget


def roofline(cell: CellLoad) -> Roofline:
    """The cell's ceilings, bound, limiter and efficiency (see the module docstring)."""
    found, balanced = ceilings(cell)
    if not found:
        return Roofline(effective_slots=balanced)
    lowest = min(found, key=lambda name: found[name])
    bound = found[lowest]
    rps = cell.rps
    if rps is None:
        return Roofline(found, bound, None, lowest, None, balanced)
    efficiency = rps / bound
    explained = efficiency >= EXPLAINED
    if not explained and lowest in CPU_RESOURCES:
        busy = utilization(cell, lowest)
        explained = busy is not None and busy >= CPU_BUSY
    if not explained:  # the server's CPUs, shared with the database, were busy
        busy = shared_utilization(cell)
        explained = busy is not None and busy >= CPU_BUSY
    if cell.load_model == "open" and cell.rate:
        efficiency = rps / cell.rate  # open load: did it keep up with what was offered
    return Roofline(
        found, bound, lowest if explained else "unexplained", lowest, efficiency, balanced
    )


def limiter_text(
    limiter: str | None, lowest: str | None, cell: CellLoad, efficiency: float | None
) -> str:
    """The limiter in words: "server CPU: 98% of its core" (read after "limited by")."""
    if limiter is None:
        return "no ceiling known"
    if limiter == "unexplained":
        named = f"below its lowest ceiling ({_NAMES.get(lowest or '', lowest)})" if lowest else ""
        shares = [
            f"{label} {fmt_pct_brief(share)}"
            for label, share in (
                ("server CPU", utilization(replace(cell, database_cpu_pct=None), "server_cpu")),
                ("database CPU", _database_share(cell)),
                ("generator CPU", utilization(cell, "generator")),
            )
            if share is not None
        ]
        measured = f"; {', '.join(shares)}: none saturated" if shares else ""
        return f"unexplained: {named}{measured}"
    text = _NAMES.get(limiter, limiter)
    if limiter == "database":
        share, together = _database_share(cell), shared_utilization(cell)
        if share is None or together is None:
            return text
        unit = _cores_text(shared_budget(cell), "the server's")
        return f"{text}: {_pct(share)} of {unit} (with the server: {_pct(together)})"
    own = utilization(replace(cell, database_cpu_pct=None), limiter)
    if own is not None:
        budget = (
            cell.server_budget_pct if limiter == "server_cpu" else cell.generator_budget_pct
        ) or 100.0
        # Samples half a second apart can add up to a little over the budget: say "100%".
        text = f"{text}: {_pct(own)} of {_cores_text(budget, 'its')}"
        together = shared_utilization(cell) if limiter == "server_cpu" else None
        if together is not None:
            same = shared_budget(cell) == _positive(cell.server_budget_pct)
            shared = _cores_text(shared_budget(cell), "the server's")
            where = "" if same else f" of {shared}"
            text += f" (with the database: {_pct(together)}{where})"
        return text
    service = service_ms(cell, cell.service_time_ms)
    per = "" if service is None else f" / {service:g} ms"
    if limiter == "users" and cell.users and per:
        return f"{text}: {cell.users:g}{per}"
    if limiter == "slots" and cell.slots and cell.long_lived:
        return f"{text}: {cell.slots:g} connections at once"
    if limiter == "slots" and cell.slots:
        hold = service_ms(cell, cell.slot_time_ms or cell.service_time_ms)
        return f"{text}: {cell.slots:g} / {hold:g} ms" if hold else text
    if limiter == "pool" and cell.pool_total:
        hold = service_ms(cell, cell.slot_time_ms or cell.service_time_ms)
        return f"{text}: {cell.pool_total:g} / {hold:g} ms" if hold else text
    if limiter == "balance" and cell.slots:
        usable = effective_slots(cell.connection_samples, cell.threads)
        spread = _spread_text(cell.connection_samples)
        held = f"{usable:.3g} of {cell.slots:g} slots usable{spread}" if usable is not None else ""
        hold = service_ms(cell, cell.slot_time_ms or cell.service_time_ms)
        per = f" / {hold:g} ms" if hold and not cell.long_lived else ""
        return f"{text}: {held}{per}"
    return text


def _pct(share: float) -> str:
    return fmt_pct_brief(min(share, 1.0))


def _cores_text(budget: float | None, owner: str) -> str:
    """ "its core", "its 2 cores", "the server's core"."""
    cores = (budget or 100.0) / 100.0
    return f"{owner} core" if cores == 1 else f"{owner} {cores:g} cores"


def _database_share(cell: CellLoad) -> float | None:
    """The database's share of the CPU budget it shares with the server."""
    budget, database = shared_budget(cell), _positive(cell.database_cpu_pct)
    return None if budget is None or database is None else database / budget


def _spread_text(samples: list[list[int]] | None) -> str:
    """ " (connections per worker 3/17/2/28)", from the window's last sample."""
    if not samples:
        return ""
    return " (connections per worker " + "/".join(str(c) for c in samples[-1]) + ")"


def service_ms(cell: CellLoad, base_ms: float | None) -> float | None:
    """A time of the Little's-law ceilings (service or slot time) plus the target's overhead,
    rounded for text."""
    if base_ms is None or base_ms <= 0:
        return None
    return round(base_ms + (cell.overhead_ms or 0.0), 1)


_NAMES = {
    "users": "the users",
    "rate": "the offered rate",
    "slots": "the server's slots",
    "pool": "the connection pool",
    "balance": "connection balance across workers",
    "server_cpu": "server CPU",
    "database": "the database's CPU",
    "generator": "the load generator's CPU",
    "connections": "the connections requested",
}
