"""Ports handed to learners in tests and benchmarks: outside the kernel's ephemeral range, free, never twice."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from common import ports
from common.ports import ephemeral_range, free_port_pair

pytestmark = pytest.mark.timeout(30)


def test_a_pair_lies_below_the_ephemeral_range_where_no_outgoing_connection_can_take_it():
    low, _high = ephemeral_range()
    for _ in range(50):
        first = free_port_pair()
        assert first + 1 < low


def test_parallel_runs_never_get_the_same_ports():
    with ThreadPoolExecutor(4) as pool:
        pairs = list(pool.map(lambda _: free_port_pair(), range(100)))
    taken = pairs + [p + 1 for p in pairs]
    assert len(set(taken)) == len(taken)


class _Scripted:
    """A chooser that proposes the given ports in order."""

    def __init__(self, proposals: list[int]) -> None:
        self.proposals = iter(proposals)

    def randint(self, _low: int, _high: int) -> int:
        return next(self.proposals)


def _unused_ports(count: int) -> list[int]:
    found = []
    for _ in range(count):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            found.append(probe.getsockname()[1])
    return found


def test_a_pair_whose_second_port_is_bound_by_a_listener_is_skipped(monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        others = _unused_ports(10)
        monkeypatch.setattr(ports.random, "Random", lambda: _Scripted([busy - 1, *others]))
        chosen = free_port_pair()
    assert chosen != busy - 1 and chosen in others
