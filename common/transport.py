"""Sockets and the delivery rules shared by actor and learner.

Ports: the learner's ROUTER (transitions, handshake, acks, heartbeats) listens on PORT and its PUB
(weights) on PORT + 1, so a user only ever types `HOST:PORT`.

Delivery: each actor numbers its batches 1, 2, 3, ...; the learner accepts a batch only if it is the
next expected one for that actor (`SequenceTracker`), acks it, and re-acks duplicates without storing
them again. The actor keeps every batch until it is acked (`UnackedBatches`) and resends the rest, in
order, after a reconnect. Together this puts each transition into replay exactly once.

Security: `LinkSecurity` holds CURVE keys. The learner's sockets are CURVE servers (its secret key),
the actor's are CURVE clients that only talk to the learner's public key. `require_security` applies
the rule "encrypted for any non-loopback address; plaintext only on loopback".
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
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


# ---- CURVE ---------------------------------------------------------------------------------------
_SNDMORE = int(zmq.SNDMORE)  # plain ints: pyzmq's Flag enum arithmetic costs about a microsecond per frame
_NOBLOCK = int(zmq.NOBLOCK)


def send_frames(sock: zmq.Socket, frames: Sequence) -> None:
    """`sock.send_multipart(frames, copy=False)` without its per-frame type check and enum arithmetic (a third of
    a 14-frame batch's send and receive at 1 transition per batch). Frames are bytes, memoryviews or zmq.Frames."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        sock.send(frame, _SNDMORE if i < last else 0, copy=False)


def recv_frames(sock: zmq.Socket) -> list[zmq.Frame]:
    """`sock.recv_multipart(zmq.NOBLOCK, copy=False)`, reading each frame's `more` flag instead of a getsockopt per
    frame. Raises zmq.Again when nothing is queued; a multipart message arrives whole, so the rest never waits."""
    parts = [sock.recv(_NOBLOCK, copy=False)]
    while parts[-1].more:
        parts.append(sock.recv(_NOBLOCK, copy=False))
    return parts


LEARNER_KEY = "learner"  # learner.key (public) and learner.key_secret in the learner's key directory
ACTOR_KEY = "actor"  # actor.key / actor.key_secret in an actor's key directory
ALLOWED_ACTORS_DIR = "authorized_actors"  # one NAME.key (public only) per allowed actor
ACTOR_ID_FILE = "actor_id"  # the actor's name, as the learner knows its key


class SecurityError(ValueError):
    """A link would be insecure (or keys are missing/unreadable); the message says what to do."""


@dataclass(frozen=True)
class LinkSecurity:
    """CURVE keys for one side. `server_public` is set on an actor (it talks only to that learner key)."""

    public: bytes
    secret: bytes
    server_public: bytes | None = None
    allowed_dir: Path | None = None  # learner only: the allow-list of actor public keys
    actor_id: str = ""  # actor only: its name on the learner's allow-list

    def apply_server(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE server (call before bind)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def apply_client(self, sock: zmq.Socket) -> None:
        """Make `sock` a CURVE client of the learner (call before connect)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_serverkey = self.server_public


def _load_pair(path: Path) -> tuple[bytes, bytes]:
    from zmq.auth import load_certificate

    secret_file = path.with_name(path.name + "_secret")
    if not secret_file.is_file():
        raise SecurityError(f"missing key file {secret_file}")
    public, secret = load_certificate(secret_file)
    if not public or not secret:
        raise SecurityError(f"{secret_file} holds no key pair")
    return public, secret


def load_learner_security(keys_dir: str | Path) -> LinkSecurity:
    """The learner's key pair and allow-list, as written by `learner keys DIR`."""
    root = Path(keys_dir)
    public, secret = _load_pair(root / f"{LEARNER_KEY}.key")
    allowed = root / ALLOWED_ACTORS_DIR
    if not allowed.is_dir():
        raise SecurityError(f"{allowed} is missing: create it with `learner keys {root}`")
    return LinkSecurity(public, secret, allowed_dir=allowed)


def load_actor_security(keys_dir: str | Path) -> LinkSecurity:
    """An actor's key pair, its name and the learner's public key (`learner keys DIR --actor NAME`)."""
    from zmq.auth import load_certificate

    root = Path(keys_dir)
    public, secret = _load_pair(root / f"{ACTOR_KEY}.key")
    learner_file = root / f"{LEARNER_KEY}.key"
    if not learner_file.is_file():
        raise SecurityError(f"missing the learner's public key {learner_file}")
    learner_public, _ = load_certificate(learner_file)
    name_file = root / ACTOR_ID_FILE
    actor_id = name_file.read_text().strip() if name_file.is_file() else ""
    return LinkSecurity(public, secret, server_public=learner_public, actor_id=actor_id)


def require_security(host: str, security: LinkSecurity | None, insecure: bool, role: str) -> LinkSecurity | None:
    """Apply the policy: CURVE for any non-loopback address; plaintext only on loopback.

    `insecure` (an explicit flag) turns CURVE off, and is refused for a non-loopback address.
    """
    loopback = is_loopback(host)
    if insecure:
        if not loopback:
            raise SecurityError(
                f"--insecure is only allowed on loopback; {host} is not. Create keys with "
                f"`learner keys DIR` and pass --keys instead"
            )
        return None
    if security is None and not loopback:
        hint = "learner keys DIR" if role == "learner" else "learner keys DIR --actor NAME (copy DIR/actors/NAME here)"
        raise SecurityError(
            f"{host} is not a loopback address, so the link must be encrypted: pass --keys "
            f"(create them with `{hint}`)"
        )
    if not zmq.has("curve") and security is not None:
        raise SecurityError("this libzmq was built without CURVE support")
    return security


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
    """Actor side: sealed batches not yet acked, in sequence order.

    `frames` may be None for a batch that lives only in the on-disk spool (memory is bounded).
    """

    def __init__(self) -> None:
        self._batches: OrderedDict[int, tuple[list | None, int]] = OrderedDict()
        self.transitions = 0  # running total, so metrics never sum over the whole window
        self.in_memory = 0  # batches whose frames are held in memory

    def add(self, seq: int, frames: list | None, transitions: int) -> None:
        self._batches[seq] = (frames, transitions)
        self.transitions += transitions
        self.in_memory += frames is not None

    def ack(self, seq: int) -> int:
        """Drop every batch up to and including `seq` (acks are cumulative); returns transitions released."""
        released = 0
        while self._batches and next(iter(self._batches)) <= seq:
            frames, count = self._batches.popitem(last=False)[1]
            released += count
            self.in_memory -= frames is not None
        self.transitions -= released
        return released

    def in_order(self) -> Sequence[tuple[int, list | None]]:
        return [(seq, frames) for seq, (frames, _) in self._batches.items()]

    def after(self, seq: int):
        """(seq, frames, transitions) of every batch newer than `seq`, oldest first. Walks back from the newest
        (batches are kept in sequence order), so the sender's per-batch call costs what is unsent, not what is
        unacked."""
        newer = []
        for key in reversed(self._batches):
            if key <= seq:
                break
            newer.append(key)
        for key in reversed(newer):
            frames, count = self._batches[key]
            yield key, frames, count

    def oldest_seq(self) -> int | None:
        return next(iter(self._batches), None)

    def newest_seq(self) -> int | None:
        return next(reversed(self._batches), None)

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
