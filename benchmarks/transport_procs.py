"""The processes of the transport benchmark: Tandem and plain-pyzmq senders, receivers, publishers."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np
import zmq

from common.allocator import keep_freed_memory
from common.ports import free_port_pair
from benchmarks.transport_payload import (
    ACK,
    ACTION_DIM,
    ACTOR_ID,
    BASELINE_BYTES_PER_TRANSITION,
    HOST,
    OBS_SHAPE,
    RING_CAPACITY,
    SAMPLE_S,
    baseline_frames,
    bench_spec,
    make_pool,
    make_transition,
    weight_tensors,
)


def start_learner_server(spec, store, keys_dir: str = ""):
    """A started LearnerServer on a free port pair (retried if another process grabbed a port); CURVE with the
    keys of `learner keys` in `keys_dir`, if given."""
    from common.transport import load_learner_security
    from learner.server import LearnerServer

    security = load_learner_security(keys_dir) if keys_dir else None
    last: Exception | None = None
    for _ in range(10):
        try:
            return LearnerServer(HOST, free_port_pair(), spec, store, security=security).start()
        except zmq.ZMQError as exc:  # lost a race for the port pair
            last = exc
    raise RuntimeError(f"could not bind a LearnerServer: {last}")


def window_delta(samples: list, t0: float, t1: float, column: int) -> float:
    """Increase of samples[:, column] between wall times t0 and t1 (linear interpolation)."""
    if not samples:
        raise RuntimeError("no samples")
    t = np.array([s[0] for s in samples], dtype=np.float64)
    v = np.array([s[column] for s in samples], dtype=np.float64)
    if t[0] > t0 + SAMPLE_S or t[-1] < t1 - SAMPLE_S:
        raise RuntimeError(f"samples cover [{t[0]:.3f}, {t[-1]:.3f}], window is [{t0:.3f}, {t1:.3f}]")
    return float(np.interp(t1, t, v) - np.interp(t0, t, v))


def usage() -> tuple[float, int]:
    """CPU seconds (user + system, all threads) and minor page faults of this process so far."""
    return time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# ---- throughput: Tandem ---------------------------------------------------------------------------
def tandem_learner_proc(out, stop, flowing, actor_done, store_mode: str, keys_dir: str = "") -> None:
    """LearnerServer receiving, validating (unpack_transitions) and storing into a numpy ring."""
    keep_freed_memory()  # every process of both systems, as `actor` and `learner` do at start
    try:
        from prometheus_client import REGISTRY

        from common.types import transition_columns

        spec = bench_spec()
        state = {"n": 0, "batches": 0, "max_batch": 0, "pos": 0}
        ring = None
        if store_mode == "ring":
            ring = {name: s.zeros((RING_CAPACITY,)) for name, s in transition_columns(spec).items()}

        def store(actor_id: str, columns: dict) -> None:
            n = len(columns["reward"])
            if ring is not None:
                if n > RING_CAPACITY:
                    columns = {k: v[-RING_CAPACITY:] for k, v in columns.items()}
                m = min(n, RING_CAPACITY)
                pos = state["pos"]
                first = min(m, RING_CAPACITY - pos)
                for name, column in columns.items():
                    dst = ring[name]
                    dst[pos : pos + first] = column[:first]
                    if first < m:
                        dst[: m - first] = column[first:m]
                state["pos"] = (pos + m) % RING_CAPACITY
            state["n"] += n
            state["batches"] += 1
            state["max_batch"] = max(state["max_batch"], n)

        server = start_learner_server(spec, store, keys_dir)
        out.put(("port", server.port))
        samples = []
        while True:
            samples.append((time.time(), state["n"], *usage()))
            if state["n"] and not flowing.is_set():
                flowing.set()
            if stop.is_set():
                break
            time.sleep(SAMPLE_S)
        actor_done.wait(timeout=20.0)  # the actor's close() flushes its last batches: keep serving until then
        labels = {"actor_id": ACTOR_ID, "robot": spec.name}
        bytes_received = REGISTRY.get_sample_value("tandem_learner_bytes_received_total", labels) or 0.0
        duplicates = REGISTRY.get_sample_value("tandem_learner_duplicate_batches_total", labels) or 0.0
        rejected = {}
        for family in REGISTRY.collect():
            if family.name == "tandem_learner_rejected_messages":
                for s in family.samples:
                    if s.name.endswith("_total") and s.value:
                        rejected[s.labels["reason"]] = s.value
        server.close()
        out.put(
            (
                "receiver",
                {
                    "samples": samples,
                    "total": state["n"],
                    "batches": state["batches"],
                    "max_batch": state["max_batch"],
                    "bytes": bytes_received,
                    "duplicates": duplicates,
                    "rejected": rejected,
                },
            )
        )
    except Exception as exc:  # report, never hang the parent
        out.put(("error", f"tandem learner: {type(exc).__name__}: {exc}"))


def tandem_actor_proc(out, stop, actor_done, port: int, batch_size: int, inflight: int | None,
                      keys_dir: str = "") -> None:
    """Sender fed as fast as it can by a producer thread (this process's main thread)."""
    keep_freed_memory()  # every process of both systems, as `actor` and `learner` do at start
    try:
        from actor.sender import Sender, SenderConfig
        from common.protocol import Hello
        from common.transport import load_actor_security

        spec = bench_spec()
        frames, actions = make_pool()
        hello = Hello(ACTOR_ID, spec.name, spec.spec_hash, spec.to_json())
        security = load_actor_security(Path(keys_dir) / "actors" / ACTOR_ID) if keys_dir else None
        sender = Sender(HOST, port, hello, SenderConfig(batch_size=batch_size), security=security).start()
        if not sender.connected.wait(timeout=20.0):
            out.put(("error", f"tandem actor: no Welcome from the learner (refused: {sender.refused_reason})"))
            sender.close(flush_timeout_s=0.1)
            return
        i = drops = waits = 0
        samples = []
        next_sample = 0.0
        while True:
            now = time.time()
            if now >= next_sample:
                samples.append((now, sender.acked_transitions, *usage()))
                next_sample = now + SAMPLE_S
                if stop.is_set():
                    break
            room = 256 if inflight is None else inflight - (i - sender.acked_transitions)
            if room <= 0:
                waits += 1
                time.sleep(0.0002)
                continue
            for _ in range(min(room, 256)):
                if not sender.submit(make_transition(i, frames, actions)):
                    drops += 1  # queue full (only without flow control); retried, never lost
                    time.sleep(0.0005)
                    break
                i += 1
        flushed = sender.close(flush_timeout_s=15.0)
        out.put(
            (
                "sender",
                {
                    "samples": samples,
                    "submitted": i,
                    "acked": sender.acked_transitions,
                    "flushed": flushed,
                    "queue_full": drops,
                    "waits": waits,
                },
            )
        )
    except Exception as exc:
        out.put(("error", f"tandem actor: {type(exc).__name__}: {exc}"))
    finally:
        actor_done.set()


# ---- throughput: plain pyzmq baseline -------------------------------------------------------------
def zmq_receiver_proc(out, stop, flowing, per_msg: int) -> None:
    """PULL; wrap every frame with np.frombuffer; count."""
    keep_freed_memory()  # every process of both systems, as `actor` and `learner` do at start
    try:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PULL)
        sock.setsockopt(zmq.LINGER, 0)
        port = sock.bind_to_random_port(f"tcp://{HOST}")
        out.put(("port", port))
        n = messages = 0
        samples = []
        next_sample = 0.0
        obs_shape = (per_msg, *OBS_SHAPE)
        while True:
            now = time.time()
            if now >= next_sample:
                samples.append((now, n, *usage()))
                next_sample = now + SAMPLE_S
                if n and not flowing.is_set():
                    flowing.set()
                if stop.is_set():
                    break
            try:
                frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                sock.poll(timeout=int(SAMPLE_S * 1000))
                continue
            obs = np.frombuffer(frames[0].buffer, np.uint8).reshape(obs_shape)
            next_obs = np.frombuffer(frames[1].buffer, np.uint8).reshape(obs_shape)
            action = np.frombuffer(frames[2].buffer, np.float32).reshape(per_msg, ACTION_DIM)
            reward = np.frombuffer(frames[3].buffer, np.float32)
            done = np.frombuffer(frames[4].buffer, np.bool_)
            n += len(reward)
            messages += 1
            del obs, next_obs, action, done
        out.put(("receiver", {"samples": samples, "total": n, "batches": messages, "max_batch": per_msg,
                              "bytes": float(n * BASELINE_BYTES_PER_TRANSITION)}))  # fmt: skip
        ctx.destroy(linger=0)  # report first: a slow teardown must never lose the figures
    except Exception as exc:
        out.put(("error", f"zmq receiver: {type(exc).__name__}: {exc}"))


def zmq_sender_proc(out, stop, _actor_done, port: int, per_msg: int, _inflight) -> None:
    """PUSH the same arrays as multipart frames with copy=False, as fast as the socket takes them."""
    keep_freed_memory()  # every process of both systems, as `actor` and `learner` do at start
    try:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, 200)
        sock.connect(f"tcp://{HOST}:{port}")
        variants = [baseline_frames(per_msg, v) for v in range(8)]
        sent = 0
        samples = []
        next_sample = 0.0
        while True:
            now = time.time()
            if now >= next_sample:
                samples.append((now, sent, *usage()))
                next_sample = now + SAMPLE_S
                if stop.is_set():
                    break
            for k in range(16):
                try:
                    sock.send_multipart(variants[k % 8], copy=False)
                except zmq.Again:
                    break
                sent += per_msg
        out.put(("sender", {"samples": samples, "submitted": sent, "acked": sent}))
        ctx.destroy(linger=0)
    except Exception as exc:
        out.put(("error", f"zmq sender: {type(exc).__name__}: {exc}"))


# ---- latency --------------------------------------------------------------------------------------
def latency_publisher_proc(out, mode: str, sizes_mb: list[int], pushes: int, gap_s: float, keys_dir: str = "") -> None:
    """Publish weights one version at a time; time each until the subscriber's ack for it arrives."""
    keep_freed_memory()  # every process of both systems, as `actor` and `learner` do at start
    try:
        ctx = zmq.Context.instance()
        acks = ctx.socket(zmq.PULL)
        acks.setsockopt(zmq.LINGER, 0)
        ack_port = acks.bind_to_random_port(f"tcp://{HOST}")
        pub_port, send, close = _latency_publisher(ctx, mode, keys_dir)
        out.put(("ports", (pub_port, ack_port)))
        version = 0
        results = {}
        for size_mb in sizes_mb:
            payload, nbytes = _latency_payload(mode, size_mb)
            version, arrived = _warm_up(send, acks, payload, version)
            if not arrived:
                results[size_mb] = {"error": "the subscriber never received a warm-up version"}
                continue
            version, timings = _timed_pushes(out, send, acks, payload, version, pushes, gap_s)
            results[size_mb] = {"bytes": nbytes, **timings}
        close()
        acks.close(linger=0)
        out.put(("latency", results))
    except Exception as exc:
        out.put(("error", f"{mode} publisher: {type(exc).__name__}: {exc}"))


def _latency_publisher(ctx, mode: str, keys_dir: str):
    """(weights port, send(version, payload), close()) of Tandem's LearnerServer (CURVE with `keys_dir`'s
    keys, if given) or a plain PUB socket."""
    if mode.startswith("tandem"):
        from common.protocol import Weights

        spec = bench_spec()
        server = start_learner_server(spec, lambda *_: None, keys_dir)

        def send_weights(version: int, payload) -> None:
            server.publish(Weights(version, "sac", "{}", spec.spec_hash, payload))

        return server.weights_port, send_weights, server.close
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 4)  # as LearnerServer's PUB

    def send(version: int, payload) -> None:
        if mode == "zmq":  # one frame
            payload[0] = version  # the subscriber reads the version from the first float
            pub.send(payload, copy=False)
        else:  # "zmq-frames": the same tensors as Tandem, one frame each, no header
            payload[0][0] = version
            pub.send_multipart(payload, copy=False)

    return pub.bind_to_random_port(f"tcp://{HOST}"), send, lambda: pub.close(linger=0)


def _latency_payload(mode: str, size_mb: int):
    """(payload in the mode's form, its bytes); 4 MB = 1M float32, as in the reference figures."""
    floats = size_mb * 250_000
    if mode.startswith("tandem"):
        payload = weight_tensors(floats)
        return payload, sum(a.nbytes for a in payload.values())
    if mode == "zmq-frames":
        frames = list(weight_tensors(floats).values())
        return frames, sum(a.nbytes for a in frames)
    flat = np.random.default_rng(0).standard_normal(floats).astype(np.float32)
    return flat, flat.nbytes


def _warm_up(send, acks, payload, version: int) -> tuple[int, bool]:
    """Publish until one version arrives (the subscription is then established), then drain the acks."""
    deadline = time.monotonic() + 20.0
    arrived = False
    while not arrived and time.monotonic() < deadline:
        version += 1
        send(version, payload)
        arrived = bool(acks.poll(timeout=250))
    if arrived:
        time.sleep(0.3)  # let late acks of warm-up versions arrive, so none is taken for a timed push's
        while acks.poll(timeout=0):
            acks.recv()
    return version, arrived


def _timed_pushes(out, send, acks, payload, version: int, pushes: int, gap_s: float) -> tuple[int, dict]:
    """`pushes` publications, each timed until its own ack (5 s, else counted lost)."""
    one_way, round_trip, call, lost = [], [], [], 0
    for _ in range(pushes):
        version += 1
        t_wall = time.time()
        t0 = time.perf_counter()
        send(version, payload)
        t_call = time.perf_counter() - t0
        ack_deadline = t0 + 5.0
        while True:
            remaining_ms = int((ack_deadline - time.perf_counter()) * 1000)
            if remaining_ms <= 0 or not acks.poll(timeout=remaining_ms):
                lost += 1
                break
            got_version, t_sub = ACK.unpack(acks.recv())
            if got_version == version:
                round_trip.append(time.perf_counter() - t0)
                one_way.append(t_sub - t_wall)
                call.append(t_call)
                break
        out.put(("progress", 1))
        time.sleep(gap_s)
    return version, {"one_way": one_way, "round_trip": round_trip, "call": call, "lost": lost}


def latency_subscriber_proc(out, stop, mode: str, pub_port: int, ack_port: int, keys_dir: str = "") -> None:
    """SUB -> decode (Tandem: common.codec.decode; baseline: np.frombuffer) -> ack (version, time.time())."""
    keep_freed_memory()  # every process of both systems, as `actor` and `learner` do at start
    try:
        ctx = zmq.Context.instance()
        sub = ctx.socket(zmq.SUB)
        if mode.startswith("tandem"):
            from common.codec import decode
            from common.protocol import Weights
            from common.transport import configure, load_actor_security

            configure(sub, hwm=4)  # exactly as actor.weights.WeightClient
            if keys_dir:
                load_actor_security(Path(keys_dir) / "actors" / ACTOR_ID).apply_client(sub)
        else:
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.RCVHWM, 4)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://{HOST}:{pub_port}")
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.setsockopt(zmq.SNDTIMEO, 1000)
        push.connect(f"tcp://{HOST}:{ack_port}")
        while not stop.is_set():
            if not sub.poll(timeout=100):
                continue
            frames = sub.recv_multipart(copy=False)
            if mode.startswith("tandem"):
                message = decode(frames)
                if not isinstance(message, Weights):
                    continue
                version = message.version
            else:  # plain pyzmq: wrap every frame
                arrays = [np.frombuffer(frame.buffer, np.float32) for frame in frames]
                version = int(arrays[0][0])
            t = time.time()
            try:
                push.send(ACK.pack(version, t))
            except zmq.Again:
                pass
        sub.close(linger=0)
        push.close(linger=0)
    except Exception as exc:
        out.put(("error", f"{mode} subscriber: {type(exc).__name__}: {exc}"))


# ---- orchestration --------------------------------------------------------------------------------
