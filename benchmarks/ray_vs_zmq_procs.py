"""The Ray actors of `benchmarks/ray_vs_zmq.py`: producers and consumers of transition batches, one pair
moving them as Ray actor calls (numpy arrays through Ray's object store / inline call arguments), one pair
over Tandem's own link (actor.sender.Sender -> learner.server.LearnerServer, CURVE).

Both producers build the same `Transition` objects (benchmarks.transport_payload.make_transition: consecutive
steps share their observation objects, as the control loop's do) and both consumers do the same work per
batch: `unpack_transitions` (validation and expansion) and a copy into a preallocated numpy ring. The Ray
producer packs a batch with `pack_transitions`, the layout the Sender puts on the wire, so both move the same
arrays. Imported by reference in the Ray workers (this module, not __main__, defines the classes).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.transport_payload import ACTION_DIM, ACTOR_ID, POOL, RING_CAPACITY, SAMPLE_S, make_pool
from benchmarks.transport_payload import make_transition

STATE_DIM = 32  # a proprioceptive state vector (the image kind is transport_payload's 128x128x1 camera)


def spec_of(kind: str):
    """The robot spec of a payload kind: "state" (32 float32) or "image" (128x128x1 uint8); 7-d action."""
    from benchmarks.transport_payload import bench_spec
    from common.specs import ArraySpec, BoundedSpec, RobotSpec

    if kind == "image":
        return bench_spec()
    return RobotSpec("bench-state32", {"state": ArraySpec("state", (STATE_DIM,), "float32")},
                     BoundedSpec("action", (ACTION_DIM,), "float32", low=(-1.0,) * ACTION_DIM,
                                 high=(1.0,) * ACTION_DIM), control_hz=10.0)  # fmt: skip


def pool_of(kind: str) -> tuple[list[dict], np.ndarray]:
    """POOL distinct observations and actions the producers cycle through."""
    if kind == "image":
        return make_pool()
    rng = np.random.default_rng(0)
    frames = [{"state": rng.standard_normal(STATE_DIM).astype(np.float32)} for _ in range(POOL)]
    return frames, rng.uniform(-1.0, 1.0, (POOL, ACTION_DIM)).astype(np.float32)


class Ring:
    """A preallocated numpy ring of every stored column (the transport benchmark's learner store)."""

    def __init__(self, spec) -> None:
        from common.types import transition_columns

        self.columns = {name: s.zeros((RING_CAPACITY,)) for name, s in transition_columns(spec).items()}
        self.pos = self.stored = 0

    def store(self, columns: dict) -> int:
        n = len(columns["reward"])
        m = min(n, RING_CAPACITY)
        first = min(m, RING_CAPACITY - self.pos)
        for name, column in columns.items():
            if name in self.columns:
                column = column[-m:]
                self.columns[name][self.pos:self.pos + first] = column[:first]
                self.columns[name][:m - first] = column[first:m]
        self.pos = (self.pos + m) % RING_CAPACITY
        self.stored += n
        return n


class Producer:
    """The Transition objects of consecutive control steps, B at a time."""

    def __init__(self, kind: str, batch_size: int) -> None:
        self.kind, self.batch_size = kind, batch_size
        self.frames, self.actions = pool_of(kind)
        self.step = 0

    def transitions(self) -> list:
        batch = [make_transition(self.step + k, self.frames, self.actions) for k in range(self.batch_size)]
        self.step += self.batch_size
        return batch

    def payload_bytes(self) -> int:
        """Bytes of one packed batch (what both paths move, before any framing)."""
        from common.types import pack_transitions

        return sum(a.nbytes for a in pack_transitions(self.transitions()).values())


# ---- Ray actor calls ------------------------------------------------------------------------------
class RayConsumer:
    """`put(arrays)`: validate, expand, store; the returned count is the ack."""

    def __init__(self, kind: str) -> None:
        self.spec = spec_of(kind)
        self.ring = Ring(self.spec)

    def put(self, arrays: dict) -> int:
        from common.types import unpack_transitions

        return self.ring.store(unpack_transitions(arrays, self.spec))

    def stored(self) -> int:
        return self.ring.stored


class RayProducer(Producer):
    """Batches as `consumer.put.remote(pack_transitions(batch))`, at most `inflight` calls unanswered."""

    def throughput(self, consumer, seconds: float, inflight: int) -> dict:
        import ray

        from common.types import pack_transitions

        pending, acked, samples, next_sample = [], 0, [], 0.0
        end = time.time() + seconds
        while (now := time.time()) < end:
            if now >= next_sample:
                samples.append((now, acked))
                next_sample = now + SAMPLE_S
            while len(pending) < inflight:
                pending.append(consumer.put.remote(pack_transitions(self.transitions())))
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.005, fetch_local=True)
            acked += sum(ray.get(ready))
        samples.append((time.time(), acked))
        ray.get(pending)  # drain: the next measurement starts from an idle consumer
        return {"samples": samples}

    def latency(self, consumer, count: int, gap_s: float) -> list[float]:
        """Seconds from a batch's transitions existing to its returned ack, one batch at a time."""
        import ray

        from common.types import pack_transitions

        times = []
        for _ in range(count):
            batch = self.transitions()
            begin = time.perf_counter()
            ray.get(consumer.put.remote(pack_transitions(batch)))
            times.append(time.perf_counter() - begin)
            time.sleep(gap_s)
        return times


# ---- Tandem's link --------------------------------------------------------------------------------
class ZmqConsumer:
    """A LearnerServer with CURVE keys on `host` storing into the ring (no durable replay: transport only)."""

    def __init__(self, kind: str, host: str, keys_dir: str) -> None:
        import zmq

        from common.transport import load_learner_security
        from learner.server import LearnerServer

        self.spec = spec_of(kind)
        self.ring = Ring(self.spec)
        security = load_learner_security(keys_dir)
        for _ in range(10):  # port 0: a random port; the weights port (+1) may be taken, then try again
            try:
                self.server = LearnerServer(host, 0, self.spec, lambda _actor, columns: self.ring.store(columns),
                                            security=security).start()  # fmt: skip
                break
            except zmq.ZMQError:
                continue
        self.port = self.server.port

    def listening_port(self) -> int:
        return self.port

    def stored(self) -> int:
        return self.ring.stored

    def close(self) -> None:
        self.server.close()


class ZmqProducer(Producer):
    """actor.sender.Sender to the consumer with the actor's CURVE keys (and a disk spool if given)."""

    def __init__(self, kind: str, batch_size: int, host: str, port: int, keys_dir: str, spool_dir: str = "") -> None:
        super().__init__(kind, batch_size)
        from actor.sender import Sender, SenderConfig
        from common.protocol import Hello
        from common.transport import load_actor_security

        spec = spec_of(kind)
        hello = Hello(ACTOR_ID, spec.name, spec.spec_hash, spec.to_json())
        config = SenderConfig(batch_size=batch_size, spool_dir=spool_dir)
        self.sender = Sender(host, port, hello, config, security=load_actor_security(keys_dir)).start()
        if not self.sender.connected.wait(timeout=30.0):
            raise RuntimeError(f"no Welcome from the learner (refused: {self.sender.refused_reason})")

    def throughput(self, seconds: float, inflight: int) -> dict:
        """Submit as fast as the window allows: at most `inflight` batches' transitions unacked."""
        submitted, samples, next_sample = 0, [], 0.0
        limit = inflight * self.batch_size
        end = time.time() + seconds
        while (now := time.time()) < end:
            if now >= next_sample:
                samples.append((now, self.sender.acked_transitions))
                next_sample = now + SAMPLE_S
            if submitted - self.sender.acked_transitions + self.batch_size > limit:
                time.sleep(0.0002)  # the window is full: wait for acks (releases the GIL to the sender thread)
                continue
            for transition in self.transitions():
                while not self.sender.submit(transition):
                    time.sleep(0.0005)
            submitted += self.batch_size
        samples.append((time.time(), self.sender.acked_transitions))
        deadline = time.monotonic() + 30.0
        while self.sender.acked_transitions < submitted and time.monotonic() < deadline:
            time.sleep(0.01)  # drain, as the Ray producer does
        return {"samples": samples}

    def latency(self, count: int, gap_s: float) -> list[float]:
        """Seconds from a batch's transitions existing to the Sender having its ack, one batch at a time."""
        times = []
        for _ in range(count):
            batch = self.transitions()
            target = self.sender.acked_transitions + len(batch)
            begin = time.perf_counter()
            for transition in batch:
                self.sender.submit(transition)
            while self.sender.acked_transitions < target:
                time.sleep(0.0001)  # releases the GIL to the sender thread
            times.append(time.perf_counter() - begin)
            time.sleep(gap_s)
        return times

    def close(self) -> bool:
        return self.sender.close(flush_timeout_s=10.0)
