"""Sockets and the delivery rules shared by actor and learner.

Ports: the learner's ROUTER (transitions, handshake, acks, heartbeats) listens on PORT and its PUB
(weights) on PORT + 1, so a user only ever types `HOST:PORT`.

Delivery: each actor numbers its batches 1, 2, 3, ...; the learner accepts a batch only if it is the
next expected one for that actor (`SequenceTracker`), acks it, and re-acks duplicates without storing
them again. The actor keeps every batch until it is acked (`UnackedBatches`) and resends the rest, in
order, after a reconnect. Together this puts each transition into replay exactly once.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import zmq

DEFAULT_PORT = 5555
HEARTBEAT_INTERVAL_S = 1.0
MISSED_HEARTBEATS = 3
MAX_MESSAGE_BYTES = 1024 * 1024 * 1024  # ZMQ_MAXMSGSIZE: larger messages drop the connection


def parse_address(address: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """'HOST:PORT' (or 'HOST', or '[v6]:PORT') -> (host, port), with a clear error for nonsense."""
    host, sep, port_text = address.rpartition(":")
    if not sep or "]" in port_text:
        host, port_text = address, str(default_port)
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad address {address!r}: port {port_text!r} is not a number") from None
    if not host or not 0 < port < 65535:
        raise ValueError(f"bad address {address!r}: expected HOST:PORT with 0 < PORT < 65535")
    return host, port


def tcp(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def transitions_endpoint(host: str, port: int) -> str:
    return tcp(host, port)


def weights_endpoint(host: str, port: int) -> str:
    return tcp(host, port + 1)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names resolving only to them."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def configure(sock: zmq.Socket, *, hwm: int = 1000, max_message_bytes: int = MAX_MESSAGE_BYTES) -> zmq.Socket:
    """Options every Tandem socket gets: bounded queues, a size cap, no lingering on close."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
    return sock


class SequenceTracker:
    """Learner side: the highest contiguous batch sequence number stored, per actor."""

    def __init__(self) -> None:
        self._acked: dict[str, int] = {}

    def acked(self, actor_id: str) -> int:
        return self._acked.get(actor_id, 0)

    def resume(self, actor_id: str, first_unacked_seq: int) -> int:
        """At Hello: if the actor holds nothing older than what we stored, continue from there.

        Returns the number of sequence numbers skipped because this learner never saw them
        (only possible when the learner lost its state).
        """
        skipped = max(0, first_unacked_seq - 1 - self.acked(actor_id))
        if skipped:
            self._acked[actor_id] = first_unacked_seq - 1
        return skipped

    def classify(self, actor_id: str, seq: int) -> str:
        """'new' (store it), 'duplicate' (already stored: just ack) or 'gap' (an earlier one is missing)."""
        acked = self.acked(actor_id)
        if seq <= acked:
            return "duplicate"
        return "new" if seq == acked + 1 else "gap"

    def commit(self, actor_id: str, seq: int) -> None:
        self._acked[actor_id] = seq

    def snapshot(self) -> dict[str, int]:
        return dict(self._acked)


class UnackedBatches:
    """Actor side: encoded batches sent but not yet acked, in sequence order."""

    def __init__(self) -> None:
        self._batches: OrderedDict[int, tuple[list, int]] = OrderedDict()
        self.transitions = 0  # running total, so metrics never sum over the whole window

    def add(self, seq: int, frames: list, transitions: int) -> None:
        self._batches[seq] = (frames, transitions)
        self.transitions += transitions

    def ack(self, seq: int) -> int:
        """Drop every batch up to and including `seq` (acks are cumulative); returns transitions released."""
        released = 0
        while self._batches and next(iter(self._batches)) <= seq:
            released += self._batches.popitem(last=False)[1][1]
        self.transitions -= released
        return released

    def in_order(self) -> Sequence[tuple[int, list]]:
        return [(seq, frames) for seq, (frames, _) in self._batches.items()]

    def oldest_seq(self) -> int | None:
        return next(iter(self._batches), None)

    def __len__(self) -> int:
        return len(self._batches)


@dataclass
class Liveness:
    """A peer is alive while something arrived within MISSED_HEARTBEATS intervals."""

    interval_s: float = HEARTBEAT_INTERVAL_S
    last_heard: float = 0.0
    last_sent: float = 0.0

    def heard(self, now: float | None = None) -> None:
        self.last_heard = time.monotonic() if now is None else now

    def sent(self, now: float | None = None) -> None:
        self.last_sent = time.monotonic() if now is None else now

    def should_beat(self, now: float) -> bool:
        return now - self.last_sent >= self.interval_s

    def is_gone(self, now: float) -> bool:
        return now - self.last_heard > MISSED_HEARTBEATS * self.interval_s
