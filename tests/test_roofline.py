"""The roofline of a cell (every ceiling, the limiter, efficiency) and the load flags."""

from __future__ import annotations

import pytest

from harness.results.flags import (
    NOISY,
    OVERLOADED,
    UNSETTLED,
    cell_flags,
    has_flag,
    latency_rise_ms,
    load_flags,
)
from harness.results.roofline import CellLoad, effective_slots, limiter_text, roofline


def test_balance_explains_an_unevenly_spread_threaded_server() -> None:
    # Measured by hand on flask-gunicorn-gthread at 50 users: 4 workers held 3/17/2/28
    # connections with 8 threads each: 3 + 8 + 2 + 8 = 21 requests at once.
    cell = CellLoad(
        users=50, rps=406, service_time_ms=50, slots=32, threads=8,
        connection_samples=[[3, 17, 2, 28], [3, 17, 2, 28]],
        server_cpu_pct=20, server_budget_pct=100, generator_cpu_pct=10,
    )  # fmt: skip
    line = roofline(cell)
    assert line.effective_slots == 21
    assert line.ceilings["balance"] == pytest.approx(420)
    assert line.limiter == "balance"
    assert line.efficiency == pytest.approx(406 / 420)
    assert "connection balance" in limiter_text(line.limiter, line.lowest, cell, line.efficiency)


def test_every_connection_with_a_thread_is_the_users_limit_not_balance() -> None:
    # 10 users on 4 x 8 threads, 3/3/2/2 connections: every connection has a thread.
    cell = CellLoad(users=10, rps=190, slot_time_ms=50, slots=32, threads=8,
                    connection_samples=[[3, 3, 2, 2]], server_cpu_pct=12,
                    server_budget_pct=100, generator_cpu_pct=6)  # fmt: skip
    line = roofline(cell)
    assert "balance" not in line.ceilings
    assert line.limiter == "users"
    assert line.bound_rps == pytest.approx(10 / 0.05)


def test_effective_slots_average_over_samples() -> None:
    assert effective_slots([[10, 0], [4, 4]], 8) == pytest.approx((8 + 8) / 2)
    assert effective_slots(None, 8) is None
    assert effective_slots([[1]], None) is None


def test_busy_server_cpu_is_the_limiter_below_the_users_ceiling() -> None:
    # io at 200 users: 2,764 rps with the server at 85% of its core.
    cell = CellLoad(
        users=200, rps=2764, service_time_ms=50, overhead_ms=1.5, server_cpu_pct=85,
        server_budget_pct=100, generator_cpu_pct=70,
    )  # fmt: skip
    line = roofline(cell)
    assert line.ceilings["users"] == pytest.approx(200 / 0.0515)
    assert line.ceilings["server_cpu"] == pytest.approx(2764 / 0.85)
    assert line.limiter == "server_cpu"
    assert line.efficiency == pytest.approx(0.85)
    text = limiter_text(line.limiter, line.lowest, cell, line.efficiency)
    assert text == "server CPU: 85% of its core"


def test_a_loss_no_ceiling_accounts_for_is_unexplained() -> None:
    # 307 rps against a 640 slots ceiling, CPU idle, no connection samples.
    cell = CellLoad(
        users=200, rps=307, service_time_ms=50, slots=32, server_cpu_pct=20,
        server_budget_pct=100, generator_cpu_pct=15,
    )  # fmt: skip
    line = roofline(cell)
    assert line.lowest == "slots"
    assert line.limiter == "unexplained"
    assert limiter_text(line.limiter, line.lowest, cell, line.efficiency) == (
        "unexplained: below its lowest ceiling (the server's slots); server CPU 20%, "
        "generator CPU 15%: none saturated"
    )


def test_cpu_bound_cells_get_a_bound_without_a_service_time() -> None:
    # json at 1 user: the round trip is the server's CPU time plus the generator's.
    one = CellLoad(users=1, rps=1000, server_cpu_pct=70, server_budget_pct=100,
                   generator_cpu_pct=30)  # fmt: skip
    line = roofline(one)
    assert line.ceilings["users"] == pytest.approx(1 / (0.7 / 1000 + 0.3 / 1000))
    assert line.limiter == "users"
    ten = CellLoad(users=10, rps=1640, server_cpu_pct=99.9, server_budget_pct=100,
                   generator_cpu_pct=55)  # fmt: skip
    assert roofline(ten).limiter == "server_cpu"


def test_open_load_efficiency_is_against_the_offered_rate() -> None:
    # flask-gunicorn-sync on io at 200 requests/s offered: 4 slots / 51 ms = 78 rps.
    cell = CellLoad(
        load_model="open", rate=200, rps=78, service_time_ms=50, overhead_ms=1, slots=4,
        server_cpu_pct=8, server_budget_pct=100, generator_cpu_pct=20,
    )  # fmt: skip
    line = roofline(cell)
    assert line.limiter == "slots"
    assert line.bound_rps == pytest.approx(4 / 0.051)
    assert line.efficiency == pytest.approx(78 / 200)


def test_long_lived_connections_are_bounded_by_slots_and_connections() -> None:
    sync = CellLoad(rps=40, slots=4, protocol="ws", connections_requested=100,
                    connections_held=4)  # fmt: skip
    assert roofline(sync).limiter == "slots"
    asgi = CellLoad(rps=1000, protocol="ws", connections_requested=100, connections_held=100)
    assert roofline(asgi).limiter == "connections"
    # 10 WebSockets on 4 workers x 8 threads, one worker took all ten: 8 held.
    uneven = CellLoad(rps=80, slots=32, threads=8, protocol="ws", connections_requested=10,
                      connections_held=8, connection_samples=[[10, 0, 0, 0]])  # fmt: skip
    line = roofline(uneven)
    assert line.limiter == "balance"
    assert line.bound_rps == pytest.approx(80)


def test_no_ceiling_known() -> None:
    line = roofline(CellLoad(users=10))
    assert line.bound_rps is None and line.limiter is None
    assert limiter_text(None, None, CellLoad(), None) == "no ceiling known"


def _per_second(means: list[float], count: int = 100) -> list[list[float]]:
    return [[s, count, 0, m] for s, m in enumerate(means)]


def test_latency_rise_fits_a_line_through_the_window() -> None:
    climbing = _per_second([100.0 * (s + 1) for s in range(10)])
    assert latency_rise_ms(climbing) == pytest.approx(900 - 200)  # medians of thirds
    # A one-second stall in the middle of the window is not a climb.
    stalled = _per_second([1.0, 1.0, 1.0, 500.0, 1.0, 1.0, 1.0])
    assert latency_rise_ms(stalled) == pytest.approx(0)
    flat = _per_second([50.0, 52.0, 49.0, 51.0, 50.0, 50.0])
    assert abs(latency_rise_ms(flat) or 0) < 5
    assert latency_rise_ms(_per_second([1.0, 2.0])) is None  # too few seconds
    assert latency_rise_ms([[0, 10, 0], [1, 10, 0]]) is None  # an old run: no means


def test_open_cell_that_falls_short_is_overloaded() -> None:
    row = {"load_model": "open", "offered": 2000, "requests": 780, "mean_ms": 4000,
           "latency_rise_ms": 2500}  # fmt: skip
    flags = load_flags(row)
    assert len(flags) == 1 and flags[0].startswith(OVERLOADED)
    assert "780 of 2,000" in flags[0] and "latency rose" in flags[0]
    kept_up = {"load_model": "open", "offered": 2000, "requests": 1990, "mean_ms": 51,
               "latency_rise_ms": 1}  # fmt: skip
    assert load_flags(kept_up) == []


def test_closed_cell_still_queueing_is_unsettled() -> None:
    row = {"load_model": "closed", "mean_ms": 4300, "latency_rise_ms": 8600}
    (flag,) = load_flags(row)
    assert flag.startswith(UNSETTLED) and "lower bound" in flag
    steady = {"load_model": "closed", "mean_ms": 70, "latency_rise_ms": 8}
    assert load_flags(steady) == []


def test_noise_from_steal_or_other_processes() -> None:
    flags = load_flags({"load_model": "closed", "steal_pct": 12.0, "other_cpu_pct": 45.0})
    assert len(flags) == 2 and all(f.startswith(NOISY) for f in flags)
    assert load_flags({"load_model": "closed", "steal_pct": 0.5, "other_cpu_pct": 3.0}) == []


def test_late_starts_against_latency_make_a_cell_generator_bound() -> None:
    late = {"rps": 500, "generator_cpu_pct": 60, "lateness_p99_ms": 40, "p99_ms": 90}
    bound, flags = cell_flags(late)
    assert bound is True and "late at p99" in flags[0]
    on_time = {"rps": 500, "generator_cpu_pct": 60, "lateness_p99_ms": 2, "p99_ms": 90}
    assert cell_flags(on_time) == (False, [])


def test_has_flag_reads_the_summary_column() -> None:
    flags = "overloaded: 780 of 2,000 offered requests completed (-61%); noisy: CPU steal 9%"
    assert has_flag(flags, OVERLOADED) and has_flag(flags, NOISY)
    assert not has_flag(flags, UNSETTLED)
    assert not has_flag(None, OVERLOADED)


def test_work_after_the_response_holds_the_slot() -> None:
    # background: the client gets 202 at once, a sync worker stays busy 50 ms after it.
    cell = CellLoad(users=100, rps=78, slot_time_ms=50, slots=4, server_cpu_pct=8,
                    server_budget_pct=100, generator_cpu_pct=6)  # fmt: skip
    line = roofline(cell)
    assert line.limiter == "slots"
    assert line.bound_rps == pytest.approx(80)
    assert limiter_text(line.limiter, line.lowest, cell, line.efficiency) == (
        "the server's slots: 4 / 50 ms"
    )
