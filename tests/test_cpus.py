"""harness.run.cpus: disjoint CPU sets for server and load generator."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.run import cpus
from harness.run.cpus import Pinning, choose_pinning
from harness.units import UsageError

SetCpus = Callable[[list[int]], None]


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> SetCpus:
    def set_cpus(available: list[int]) -> None:
        monkeypatch.setattr(cpus, "usable_cpus", lambda: list(available))

    return set_cpus


def test_usable_cpus_is_sorted_and_non_empty() -> None:
    found = cpus.usable_cpus()
    assert found and found == sorted(found)
    assert all(isinstance(c, int) and c >= 0 for c in found)


def test_one_cpu_is_shared_not_pinned(machine: SetCpus) -> None:
    machine([0])
    pinning = choose_pinning()
    assert pinning.applied is False
    assert pinning.server_cpus is None and pinning.generator_cpus is None
    assert "1" in pinning.note and "share" in pinning.note


def test_two_cpus(machine: SetCpus) -> None:
    machine([0, 1])
    pinning = choose_pinning()
    assert pinning.applied is True
    assert pinning.server_cpus == (0,)
    assert pinning.generator_cpus == (1,)


def test_four_cpus_server_gets_first_half(machine: SetCpus) -> None:
    machine([0, 1, 2, 3])
    pinning = choose_pinning()
    assert pinning.applied is True
    assert pinning.server_cpus == (0, 1)
    assert pinning.generator_cpus == (2, 3)
    assert not set(pinning.server_cpus) & set(pinning.generator_cpus)


def test_sparse_affinity_uses_the_usable_ids(machine: SetCpus) -> None:
    machine([2, 5, 7])
    pinning = choose_pinning()
    assert pinning.server_cpus == (2,)
    assert pinning.generator_cpus == (5, 7)


@pytest.mark.parametrize("count", [2, 3, 4, 5, 8, 16])
def test_default_sets_are_disjoint_and_cover(machine: SetCpus, count: int) -> None:
    machine(list(range(count)))
    pinning = choose_pinning()
    assert pinning.applied
    assert pinning.server_cpus and pinning.generator_cpus
    server, generator = set(pinning.server_cpus), set(pinning.generator_cpus)
    assert not server & generator
    assert server | generator == set(range(count))
    assert max(server) < min(generator)  # the server gets the first CPUs


def test_explicit_sets_used_as_given(machine: SetCpus) -> None:
    machine([0, 1, 2, 3])
    pinning = choose_pinning(server=[3], generator=[0, 1])
    assert pinning == Pinning((3,), (0, 1), True, pinning.note)


def test_explicit_server_only_generator_gets_the_rest(machine: SetCpus) -> None:
    machine([0, 1, 2, 3])
    pinning = choose_pinning(server=[0])
    assert pinning.server_cpus == (0,)
    assert pinning.generator_cpus == (1, 2, 3)


def test_explicit_generator_only_server_avoids_it(machine: SetCpus) -> None:
    machine([0, 1, 2, 3])
    pinning = choose_pinning(generator=[0])
    assert pinning.applied
    assert pinning.generator_cpus == (0,)
    assert pinning.server_cpus and 0 not in pinning.server_cpus


def test_generator_on_first_half_leaves_server_the_rest(machine: SetCpus) -> None:
    # 4 CPUs, --generator-cpus 0,1: the server is only offered cpus[:half] minus the
    # generator's, i.e. nothing, and pinning is silently dropped with the note "no disjoint
    # CPU sets possible" although CPUs 2 and 3 are free.
    machine([0, 1, 2, 3])
    pinning = choose_pinning(generator=[0, 1])
    assert pinning.applied
    assert pinning.generator_cpus == (0, 1)
    assert pinning.server_cpus == (2, 3)


def test_overlapping_explicit_sets_rejected(machine: SetCpus) -> None:
    machine([0, 1, 2, 3])
    with pytest.raises(UsageError, match="overlap") as info:
        choose_pinning(server=[0, 1], generator=[1, 2])
    assert "--server-cpus" in str(info.value) and "--generator-cpus" in str(info.value)


@pytest.mark.parametrize(
    ("server", "generator", "option"),
    [
        ([7], None, "--server-cpus"),
        (None, [9], "--generator-cpus"),
        ([0], [1, 4], "--generator-cpus"),
    ],
)
def test_unknown_cpu_rejected(
    machine: SetCpus, server: list[int] | None, generator: list[int] | None, option: str
) -> None:
    machine([0, 1, 2, 3])
    with pytest.raises(UsageError) as info:
        choose_pinning(server=server, generator=generator)
    message = str(info.value)
    assert message.startswith(option)
    bad = (server if option == "--server-cpus" else generator or [])[-1]
    assert f"CPU {bad}" in message
    assert "[0, 1, 2, 3]" in message  # lists what is usable


def test_to_dict_round_trip(machine: SetCpus) -> None:
    machine([0, 1])
    data = choose_pinning().to_dict()
    assert data == {
        "server_cpus": [0],
        "generator_cpus": [1],
        "applied": True,
        "note": data["note"],
    }
    machine([0])
    assert choose_pinning().to_dict()["server_cpus"] is None
