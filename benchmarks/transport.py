"""Tandem's wire against plain pyzmq, on loopback, in one run.

    python -m benchmarks.transport            # about 3 minutes
    python -m benchmarks.transport --quick    # about 1 minute

Prints figures and a final table; asserts nothing about time.

1. Transitions/s actor -> learner. Payload per transition: a 128x128x1 uint8 observation and next
   observation, a 7-d float32 action, reward and done (plus Tandem's own per-transition columns).
   - Tandem: the real path. The actor process runs `actor.sender.Sender` (SenderConfig.batch_size =
     1 or 100) fed by a producer thread that builds `Transition` objects whose `next_observation` is
     the next transition's `observation` object, as the control loop does. The learner process runs
     `learner.server.LearnerServer`: decode, handshake/session, exactly-once check,
     `unpack_transitions` (validation + expansion), the `store` callback (by default a write into a
     preallocated numpy ring; `--store count` only counts), metrics, ack. Counted: transitions the
     learner stored AND the actor got acked (the smaller of the two rates).
   - Tandem with CURVE ("tandem-curve"; `--no-curve` skips it): the same, with the link encrypted and
     authenticated by keys made with `learner.keys` for this run, as every non-loopback link must be.
   - Baseline: plain pyzmq PUSH -> PULL, the same arrays (obs, next_obs, action, reward, done) as
     multipart frames sent with copy=False (1 per message, or stacked 100 per message); the receiver
     wraps each frame with np.frombuffer and counts.
   Both sides of every pair run in separate processes (multiprocessing "spawn"), as on two machines.
   Every process, of both systems, fixes glibc's heap thresholds as `actor` and `learner` do at start
   (`common.allocator.keep_freed_memory`); `TANDEM_DEFAULT_HEAP=1 python -m benchmarks.transport` measures
   with glibc's defaults instead (the "faults/s" column shows the difference: minor page faults per second).
   Each process samples its counter and its CPU time every 20 ms against time.time() (one host
   clock); the rate is the counter's increase over one wall-clock window after a warm-up.
   Producer flow control (Tandem): the producer keeps at most `inflight` transitions submitted but
   not yet acked (256 at batch size 1, 4,096 at 100), below the Sender's window of
   `max_unacked_batches` batches, as a control loop far slower than the wire is in effect. Without it
   (`--no-flow-control`) an as-fast-as-possible producer overflows the Sender's queue: its drops are
   counted and retried, and shown as a note.
2. Weight push latency for 4 MB (1M float32) and 40 MB (10M float32), the subscriber in another
   process.
   - Tandem: `LearnerServer.publish(Weights(...))` (4 tensors summing to the size) -> inproc ->
     server thread -> PUB; the subscriber is a SUB socket configured like `actor.weights.WeightClient`
     that decodes with `common.codec.decode` (WeightClient itself also builds a torch network, which
     is not transport).
   - Tandem with CURVE: the same with the PUB a CURVE server and the SUB its client.
   - Baseline: a plain PUB sending the same number of bytes as one frame with copy=False; the
     subscriber wraps it with np.frombuffer. Shown as well, for context: plain pyzmq sending Tandem's own
     4 tensors as 4 frames (a single frame above glibc's 32 MB mmap threshold costs the receiver a fresh
     mmap and page faults every time, which handicaps the 1-frame baseline at 40 MB).
   Reported latency = one-way: the subscriber's time.time() right after decoding minus the
   publisher's time.time() right before the publish call (both processes read the same host clock,
   so no halving is needed). Also shown: the round trip (publish -> decoded -> a 16-byte ack on a
   separate PUSH socket back -> received), and how long the publish call itself blocks the caller.
   Identical method for Tandem and baseline. Each size is warmed up by publishing until one version
   arrives (the SUB subscription is then established); then ~20 pushes, one at a time, 30 ms apart.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import zmq

from common.allocator import OPT_OUT
from learner.keys import create_actor_keys
from benchmarks.transport_payload import (
    ACTOR_ID,
    PROFILES,
    Profile,
    REF_LATENCY_MS,
    REF_TRANSITIONS,
    SAMPLE_S,
    TARGET_LATENCY_RATIO,
    TARGET_THROUGHPUT_RATIO,
    TARGET_THROUGHPUT_RATIO_DEFAULT,
)
from benchmarks.transport_procs import (
    latency_publisher_proc,
    latency_subscriber_proc,
    tandem_actor_proc,
    tandem_learner_proc,
    window_delta,
    zmq_receiver_proc,
    zmq_sender_proc,
)

class Progress:
    """One tqdm bar over the whole run, advanced by wall time (or by pushes)."""

    def __init__(self, total_s: float, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=round(total_s), unit="s", disable=not enabled, file=sys.stderr,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")  # fmt: skip
        self.start = time.monotonic()

    def phase(self, name: str) -> None:
        self.bar.set_description_str(name)
        self.tick()

    def tick(self) -> None:
        elapsed = min(time.monotonic() - self.start, self.bar.total)
        self.bar.n = round(elapsed)
        self.bar.refresh()

    def sleep_until(self, wall: float) -> None:
        while (left := wall - time.time()) > 0:
            time.sleep(min(left, 0.25))
            self.tick()

    def close(self) -> None:
        self.bar.n = self.bar.total
        self.bar.refresh()
        self.bar.close()


class Children:
    """Started processes; every one is joined with a timeout and terminated if it does not exit."""

    def __init__(self) -> None:
        self.procs: list = []

    def start(self, ctx, target, *args):
        proc = ctx.Process(target=target, args=args, daemon=True, name=target.__name__)
        proc.start()
        self.procs.append(proc)
        return proc

    def reap(self, timeout_s: float = 20.0) -> list[str]:
        stuck = []
        deadline = time.monotonic() + timeout_s
        for proc in self.procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                stuck.append(proc.name)
                proc.terminate()
                proc.join(timeout=3)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=3)
        self.procs = []
        return stuck


def expect(out, wanted: set[str], timeout_s: float, progress: Progress | None = None) -> dict:
    """Messages tagged with `wanted` from the children's queue; raises on an 'error' message or timeout."""
    got: dict = {}
    deadline = time.monotonic() + timeout_s
    while wanted - set(got):
        try:
            tag, value = out.get(timeout=0.25)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {sorted(wanted - set(got))}") from None
            if progress:
                progress.tick()
            continue
        if tag == "error":
            raise RuntimeError(value)
        if tag == "progress":
            if progress:
                progress.tick()
            continue
        got[tag] = value
    return got


@dataclass
class Throughput:
    system: str  # "tandem", "tandem-curve" or "zmq"
    per_batch: int
    rate: float = 0.0  # transitions/s counted
    stored_rate: float = 0.0
    acked_rate: float = 0.0
    bytes_per_transition: float = 0.0
    mean_batch: float = 0.0
    max_batch: int = 0
    sender_cpu: float = 0.0  # fraction of one core
    receiver_cpu: float = 0.0
    sender_faults: float = 0.0  # minor page faults per second
    receiver_faults: float = 0.0
    notes: list = field(default_factory=list)
    error: str = ""

    @property
    def mb_s(self) -> float:
        return self.rate * self.bytes_per_transition / 1e6


def run_throughput(ctx, system: str, per_batch: int, profile: Profile, args, progress: Progress) -> Throughput:
    result = Throughput(system, per_batch)
    out, stop, flowing, actor_done = ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Event()
    children = Children()
    tandem = system.startswith("tandem")
    keys_dir = args.keys_dir if system == "tandem-curve" else ""
    try:
        if tandem:
            children.start(ctx, tandem_learner_proc, out, stop, flowing, actor_done, args.store, keys_dir)
        else:
            children.start(ctx, zmq_receiver_proc, out, stop, flowing, per_batch)
        port = expect(out, {"port"}, 60, progress)["port"]
        inflight = None if args.no_flow_control else (256 if per_batch == 1 else max(4096, 4 * per_batch))
        if tandem:
            children.start(ctx, tandem_actor_proc, out, stop, actor_done, port, per_batch, inflight, keys_dir)
        else:
            children.start(ctx, zmq_sender_proc, out, stop, actor_done, port, per_batch, inflight)
        deadline = time.monotonic() + 60
        while not flowing.wait(timeout=0.25):
            progress.tick()
            if time.monotonic() > deadline:
                raise TimeoutError("no transition arrived within 60 s")
            try:  # surface an early error from a child
                tag, value = out.get_nowait()
                if tag == "error":
                    raise RuntimeError(value)
            except queue.Empty:
                pass
        t0 = time.time() + profile.warm_s
        t1 = t0 + profile.measure_s
        progress.sleep_until(t1 + 3 * SAMPLE_S)
        stop.set()
        got = expect(out, {"sender", "receiver"}, 60, progress)
        rx, tx = got["receiver"], got["sender"]
        duration = t1 - t0
        result.stored_rate = window_delta(rx["samples"], t0, t1, 1) / duration
        result.acked_rate = window_delta(tx["samples"], t0, t1, 1) / duration
        result.rate = result.stored_rate if system == "zmq" else min(result.stored_rate, result.acked_rate)
        result.receiver_cpu = window_delta(rx["samples"], t0, t1, 2) / duration
        result.sender_cpu = window_delta(tx["samples"], t0, t1, 2) / duration
        result.receiver_faults = window_delta(rx["samples"], t0, t1, 3) / duration
        result.sender_faults = window_delta(tx["samples"], t0, t1, 3) / duration
        result.bytes_per_transition = rx["bytes"] / max(rx["total"], 1)
        result.mean_batch = rx["total"] / max(rx["batches"], 1)
        result.max_batch = rx["max_batch"]
        if tandem:
            if rx.get("rejected"):
                result.notes.append(f"learner rejected {rx['rejected']}")
            if rx.get("duplicates"):
                result.notes.append(f"{rx['duplicates']:.0f} duplicate batches")
            if not tx.get("flushed", True):
                result.notes.append(f"{tx['submitted'] - tx['acked']} transitions never acked at close")
            if tx.get("queue_full"):
                result.notes.append(f"send queue full {tx['queue_full']} times")
            if result.max_batch > per_batch:
                result.notes.append(f"batches up to {result.max_batch} transitions (configured {per_batch})")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        stop.set()
        stuck = children.reap()
        if stuck:
            result.notes.append(f"terminated {stuck}")
    return result


def run_latency(ctx, system: str, sizes_mb: list[int], profile: Profile, progress: Progress, keys_dir: str) -> dict:
    out, stop = ctx.Queue(), ctx.Event()
    children = Children()
    keys_dir = keys_dir if system == "tandem-curve" else ""
    try:
        children.start(ctx, latency_publisher_proc, out, system, sizes_mb, profile.pushes, profile.gap_s, keys_dir)
        pub_port, ack_port = expect(out, {"ports"}, 60, progress)["ports"]
        children.start(ctx, latency_subscriber_proc, out, stop, system, pub_port, ack_port, keys_dir)
        return expect(out, {"latency"}, 120, progress)["latency"]
    except Exception as exc:
        return {size: {"error": f"{type(exc).__name__}: {exc}"} for size in sizes_mb}
    finally:
        stop.set()
        stuck = children.reap()
        if stuck:
            print(f"warning: terminated {stuck}", file=sys.stderr)


# ---- report ---------------------------------------------------------------------------------------
def median_of(runs: list[Throughput]) -> Throughput:
    ok = [r for r in runs if not r.error]
    if not ok:
        return runs[0]
    ok.sort(key=lambda r: r.rate)
    best = ok[len(ok) // 2]
    notes = sorted({n for r in runs for n in r.notes} | {f"run failed: {r.error}" for r in runs if r.error})
    best.notes = notes
    if len(ok) > 1:
        best.rate = float(np.median([r.rate for r in ok]))
        best.notes.append("rates of the rounds: " + ", ".join(f"{r.rate:,.0f}" for r in ok))
    return best


def throughput_verdict(tandem: Throughput, zmq_: Throughput, per_batch: int | None) -> str:
    """'0.66 BELOW 0.8' / '0.85 ok': Tandem's rate over the baseline's against the target for `per_batch`
    (None: the ratio alone; CURVE has no target, the issue asks what it costs)."""
    if tandem.error or zmq_.error or not (tandem.rate and zmq_.rate):
        return "n/a"
    ratio = tandem.rate / zmq_.rate
    if per_batch is None:
        return f"{ratio:.2f}"
    target = TARGET_THROUGHPUT_RATIO.get(per_batch, TARGET_THROUGHPUT_RATIO_DEFAULT)
    return f"{ratio:.2f} ok" if ratio >= target else f"{ratio:.2f} BELOW {target:g}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def latency_stats(entry: dict) -> dict:
    if "error" in entry or not entry.get("one_way"):
        return {"error": entry.get("error", f"no push arrived ({entry.get('lost', '?')} lost)")}
    ms = lambda xs: np.asarray(xs) * 1e3  # noqa: E731
    return {
        "median": float(np.median(ms(entry["one_way"]))),
        "p90": float(np.percentile(ms(entry["one_way"]), 90)),
        "rtt": float(np.median(ms(entry["round_trip"]))),
        "call": float(np.median(ms(entry["call"]))),
        "n": len(entry["one_way"]),
        "lost": entry["lost"],
        "bytes": entry["bytes"],
    }


def report(throughput: dict, latency: dict, profile: Profile, args, header: str) -> str:
    lines = [header, ""]
    lines.append("1. Transitions/s actor -> learner: 128x128x1 uint8 obs + next obs, 7-d float32 action, reward, done")
    lines.append(f"   Tandem counted = stored by the learner (store={args.store}) and acked at the actor; "
                 f"baseline = plain pyzmq PUSH->PULL, copy=False frames, np.frombuffer.")  # fmt: skip
    rows = []
    for per_batch in args.batch_sizes:
        t, z = throughput[("tandem", per_batch)], throughput[("zmq", per_batch)]
        c = throughput.get(("tandem-curve", per_batch))
        rows.append([
            per_batch,
            f"{t.rate:,.0f}" if not t.error else "error",
            f"{t.mb_s:,.0f}",
            f"{t.bytes_per_transition:,.0f}",
            f"{t.mean_batch:,.1f}",
            f"{t.sender_cpu:.0%}/{t.receiver_cpu:.0%}",
            f"{t.sender_faults:,.0f}/{t.receiver_faults:,.0f}",
            f"{z.rate:,.0f}" if not z.error else "error",
            f"{z.mb_s:,.0f}",
            f"{z.sender_cpu:.0%}/{z.receiver_cpu:.0%}",
            throughput_verdict(t, z, per_batch),
            "-" if c is None else f"{c.rate:,.0f}" if not c.error else "error",
            "-" if c is None else f"{c.sender_cpu:.0%}/{c.receiver_cpu:.0%}",
            "-" if c is None else throughput_verdict(c, z, None),
        ])  # fmt: skip
    lines.append(table(["per batch", "Tandem tr/s", "MB/s", "B/tr", "tr/batch", "CPU act/lrn", "faults/s act/lrn",
                        "pyzmq tr/s", "MB/s", "CPU snd/rcv", "Tandem/pyzmq (target: >= 0.5 at 1/batch, 0.8 else)",
                        "CURVE tr/s", "CPU act/lrn", "CURVE/pyzmq"], rows))  # fmt: skip
    lines.append("   CURVE: the same Tandem path with the link encrypted and authenticated, as every non-loopback link "
                 "is (keys of `learner keys`); the pyzmq baseline stays plaintext.")  # fmt: skip
    lines.append("   reference (anchors.md, same kind of machine): " +
                 ", ".join(f"{k} {v:,}/s" for k, v in REF_TRANSITIONS.items()) +
                 "; plain pyzmq there ~25,000-59,000/s")  # fmt: skip
    for per_batch in args.batch_sizes:
        for system in args.systems:
            r = throughput[(system, per_batch)]
            for note in ([f"error: {r.error}"] if r.error else []) + r.notes:
                lines.append(f"   note {system} {per_batch}/batch: {note}")
    lines.append("")
    lines.append("2. Weight push latency, publish() call -> decoded at a SUB in another process "
                 f"(one-way by the shared host clock; {profile.pushes} pushes, median and p90)")  # fmt: skip
    rows = []
    for size in args.sizes:
        t, z = latency_stats(latency["tandem"][size]), latency_stats(latency["zmq"][size])
        zf = latency_stats(latency.get("zmq-frames", {}).get(size, {"error": "skipped"}))
        c = latency_stats(latency.get("tandem-curve", {}).get(size, {"error": "skipped"}))
        if "error" in t or "error" in z:
            rows.append([f"{size} MB", t.get("error", "")[:40], "", "", "", z.get("error", "")[:40], "", "", "", "",
                         "", "", "", "", ""])  # fmt: skip
            continue
        ratio = t["median"] / z["median"]
        latency_verdict = "ok" if ratio <= TARGET_LATENCY_RATIO else "ABOVE"
        ref = REF_LATENCY_MS.get(size, {})
        rows.append([
            f"{size} MB",
            f"{t['median']:.1f}", f"{t['p90']:.1f}", f"{t['rtt']:.1f}", f"{t['call']:.2f}",
            f"{z['median']:.1f}", f"{z['p90']:.1f}", f"{z['rtt']:.1f}",
            f"{ratio:.2f}", f"<= {TARGET_LATENCY_RATIO:.1f} {latency_verdict}",
            f"{zf['median']:.1f}" if "error" not in zf else "-",
            f"{t['median'] / zf['median']:.2f}" if "error" not in zf else "-",
            " / ".join(f"{v:g}" for v in ref.values()) or "-",
            f"{c['median']:.1f}" if "error" not in c else "-",
            f"{c['median'] / z['median']:.2f}" if "error" not in c else "-",
        ])  # fmt: skip
    lines.append(table(["size", "Tandem ms", "p90", "RTT", "publish() blocks", "pyzmq 1 frame ms", "p90", "RTT",
                        "Tandem/pyzmq", "target", "pyzmq 4 frames ms", "Tandem/that",
                        "agentlace / LeRobot ms", "CURVE ms", "CURVE/pyzmq"], rows))  # fmt: skip
    lost = [f"{s} {size} MB: {latency_stats(latency[s][size]).get('lost')}" for s in latency
            for size in args.sizes if size in latency[s] and latency_stats(latency[s][size]).get("lost")]  # fmt: skip
    if lost:
        lines.append("   pushes lost (no ack within 5 s): " + ", ".join(lost))
    lines.append("   RTT = publish -> decoded -> 16-byte ack back on a PUSH socket; 'publish() blocks' = time "
                 "inside the publish call (Tandem: encode + inproc handoff; pyzmq: send).")  # fmt: skip
    lines.append("   'pyzmq 4 frames' sends Tandem's own 4 tensors as 4 copy=False frames (no header): a single frame "
                 "over glibc's 32 MB mmap threshold is freshly mmapped, page-faulted and unmapped by the receiver "
                 "every time, which can make the 1-frame baseline slower than Tandem at 40 MB.")  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.transport", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="shorter windows, one round, fewer pushes (< 1 min)")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--store", choices=("ring", "count"), default="ring",
                   help="Tandem learner store callback: write into a numpy ring (default) or only count")  # fmt: skip
    p.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 100])
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[4, 40],
                   help="weight sizes in MB (of float32), comma separated")  # fmt: skip
    p.add_argument("--measure", type=float, help="seconds per throughput window (overrides the profile)")
    p.add_argument("--rounds", type=int, help="throughput rounds; the median is reported")
    p.add_argument("--pushes", type=int, help="weight pushes per size")
    p.add_argument("--skip", choices=("throughput", "latency"), action="append", default=[])
    p.add_argument("--no-curve", action="store_true", help="skip Tandem with CURVE encryption (tandem-curve)")
    p.add_argument("--no-flow-control", action="store_true",
                   help="Tandem producer ignores acks (shows the Sender's oversized-batch behaviour)")  # fmt: skip
    p.add_argument("--json", help="also write the raw results to this file")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = "smoke" if args.smoke else "quick" if args.quick else "default"
    base = PROFILES[name]
    profile = Profile(
        warm_s=base.warm_s,
        measure_s=args.measure or base.measure_s,
        rounds=args.rounds or base.rounds,
        pushes=args.pushes or base.pushes,
        gap_s=base.gap_s,
    )
    ctx = mp.get_context("spawn")
    args.systems = ("zmq", "tandem") if args.no_curve else ("zmq", "tandem", "tandem-curve")
    keys = tempfile.TemporaryDirectory(prefix="tandem-transport-keys-")
    args.keys_dir = keys.name
    create_actor_keys(keys.name, ACTOR_ID)  # the learner's pair, this actor's pair, and the allow-list entry
    header = (
        f"Tandem transport benchmark ({name}): loopback, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
        f"Python {platform.python_version()}, pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}, "
        f"numpy {np.__version__}; throughput window {profile.measure_s:g} s after {profile.warm_s:g} s warm-up, "
        f"{profile.rounds} round(s), heap thresholds "
        f"{'glibc default (TANDEM_DEFAULT_HEAP)' if os.environ.get(OPT_OUT, '') not in ('', '0') else 'fixed'}"
    )
    print(header, flush=True)
    runs = [] if "throughput" in args.skip else [
        (round_, per_batch, system)
        for round_ in range(profile.rounds)
        for per_batch in args.batch_sizes
        for system in args.systems
    ]  # fmt: skip
    lat_estimate = 0 if "latency" in args.skip else (len(args.systems) + 1) * (
        3 + sum(profile.pushes * (profile.gap_s + s * 0.004) + 1 for s in args.sizes)
    )
    progress = Progress(len(runs) * (profile.warm_s + profile.measure_s + 2.5) + lat_estimate, not args.no_progress)
    collected: dict[tuple, list[Throughput]] = {}
    for round_, per_batch, system in runs:
        progress.phase(f"throughput {system} {per_batch}/batch (round {round_ + 1})")
        r = run_throughput(ctx, system, per_batch, profile, args, progress)
        collected.setdefault((system, per_batch), []).append(r)
        progress.bar.write(
            f"  {system:12s} {per_batch:3d}/batch round {round_ + 1}: "
            + (f"{r.rate:,.0f} transitions/s, {r.mb_s:,.0f} MB/s" if not r.error else f"error {r.error}")
        )
    throughput = {key: median_of(rs) for key, rs in collected.items()}
    latency: dict = {"tandem": {}, "zmq": {}}
    if "latency" not in args.skip:
        for system in ("zmq", *args.systems[1:], "zmq-frames"):
            progress.phase(f"weight push latency {system}")
            latency[system] = run_latency(ctx, system, args.sizes, profile, progress, args.keys_dir)
            for size in args.sizes:
                s = latency_stats(latency[system][size])
                progress.bar.write(f"  {system:6s} {size} MB push: " + (
                    f"median {s['median']:.1f} ms, p90 {s['p90']:.1f} ms" if "error" not in s
                    else s["error"]))  # fmt: skip
    progress.close()
    if "throughput" in args.skip:
        args.batch_sizes = []
    if "latency" in args.skip:
        args.sizes = []
    print()
    print(report(throughput, latency, profile, args, header))
    if args.json:
        raw = {
            "profile": profile.__dict__,
            "throughput": {f"{s}/{b}": {**r.__dict__, "mb_s": r.mb_s} for (s, b), r in throughput.items()},
            "latency": {s: {str(k): v for k, v in d.items()} for s, d in latency.items()},
        }
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
