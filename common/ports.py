"""Free TCP ports for a learner (it binds P for transitions and P + 1 for weights) in tests and benchmarks.

Ports come from below the kernel's ephemeral range. A port the kernel hands out with bind(0) lies inside
that range, and so does the local port of every outgoing connection: P + 1, free when checked, could be
taken by a scrape or an actor's connect before the learner binds it (a CI failure seen: "Address already in
use" on the weights port). Below the range only an explicit bind can take a port.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_LOWEST = 20000  # above the registered services a box may run (Grafana 3000, Prometheus 9090, Ray 6379, ...)
_handed_out: set[int] = set()  # every port given out by this process: two runs of one process never share one
_lock = threading.Lock()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (the IANA one where /proc does not say)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = "") -> int:
    """The first of `count` consecutive ports, all free on `host` ("" = every interface) and outside the
    ephemeral range, none given out before by this process."""
    low = _LOWEST
    high = ephemeral_range()[0] - count
    if high <= low:  # a kernel whose ephemeral range starts low: use the ports above it instead
        low, high = ephemeral_range()[1] + 1, 65535 - count
    chooser = random.Random()  # seeded from the OS: parallel processes pick different ports
    with _lock:
        for _ in range(1000):
            first = chooser.randint(low, high)
            ports = range(first, first + count)
            if any(port in _handed_out for port in ports):
                continue
            if all(_bindable(host, port) for port in ports):
                _handed_out.update(ports)
                return first
    raise RuntimeError(f"no {count} consecutive free ports in {low}..{high}")


def free_port_pair(host: str = "") -> int:
    """A port P with P and P + 1 free: what a learner binds."""
    return free_ports(2, host)


def free_port(host: str = "") -> int:
    """One free port."""
    return free_ports(1, host)
