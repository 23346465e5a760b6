"""Why transitions do not go through Ray's object store: batches moved producer -> consumer as Ray actor calls
against Tandem's own acked, CURVE-encrypted ZeroMQ link, in one run on one two-node cluster.

    python -m benchmarks.ray_vs_zmq --out runs/ray_vs_zmq            # 2 payloads x 3 paths (~4 min)
    python -m benchmarks.ray_vs_zmq --quick --out runs/ray_vs_zmq_q  # shorter windows, fewer pings (~1 min)

A two-node LocalCluster on this machine (head + worker, `ray start --block` each). For every payload and path
the producer is a Ray actor on the worker node and the consumer one on the head node (so every batch crosses
from one node's processes to the other's, over TCP on this machine). Payloads (benchmarks/transport_payload.py
shapes, batches of --batch-size transitions): "state" (32 float32 + 7-d action, reward, flags) and "image"
(a 128x128x1 uint8 camera + the same). Both producers build the same Transition objects and both consumers
validate, expand and copy each batch into a numpy ring (benchmarks/ray_vs_zmq_procs.py). Paths:

- ray: `consumer.put.remote(pack_transitions(batch))`, the returned count being the ack (what delivery with
  acks over Ray would take). Ray passes a call's arguments under 100 KiB inline in the call, larger ones
  (the image batches) through the producer's object store, pulled by the consumer's node.
- tandem: actor.sender.Sender -> learner.server.LearnerServer with CURVE keys on the node's non-loopback IP,
  an Ack per batch (no durable replay on the consumer, as in benchmarks/transport.py).
- tandem+spool: the same with the Sender's disk spool (every batch written before it is sent; what fleet
  actors under the Ray launcher run with), for the price of the exactly-once resend.

Throughput: the producer keeps at most --inflight batches unacked and counts acked transitions over a window
after a warm-up (batches/s, transitions/s, MB/s of the packed arrays). Latency: one batch at a time, from the
batch's transitions existing to its ack at the producer (p50, p99). Writes --out/ray_vs_zmq.csv and .md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmarks.ray_common import (
    HEAD,
    BenchCluster,
    Progress,
    header_lines,
    machine_busy,
    make_scratch,
    markdown_header,
    ray_environment,
    results_header,
    table,
    uptime,
    write_csv,
)

PATHS = ("ray", "tandem", "tandem+spool")
LACKS = [  # what the object store path lacks that Tandem's link has (the design's reasons)
    ("ack", "the call's return value, in memory: gone with either process",
     "an Ack per batch once the learner stored it (after fsync with its durable replay)"),
    ("redelivery", "none built in: a call to a dead actor raises; max_task_retries resends (at-least-once, "
     "duplicates possible)", "unacked batches resent in order on reconnect; the learner drops (actor, seq) it "
     "already has: exactly-once"),
    ("disk spool", "none (object spilling relieves memory; spilled objects still die with their owner)",
     "unacked batches on the actor's disk survive its kill -9 and a learner outage (up to --spool-max-mb)"),
    ("encryption", "token auth authenticates callers; data is plaintext unless the whole cluster runs TLS "
     "(RAY_USE_TLS, certificates on every node)", "CURVE on every link, an allow-list of actor keys"),
    ("consumer restart", "in-flight calls fail (RayActorError); the producer must resend what it kept",
     "actors keep spooling, reconnect and resend; the learner resumes from its durable replay"),
    ("producer restart", "objects it owned are lost (Ray's ownership)", "the restarted actor resends its spool"),
    ("robots off the cluster", "must run a Ray worker that joins the cluster", "a plain `actor` with its keys"),
]  # fmt: skip


@dataclass
class Result:
    kind: str
    path: str
    batch_size: int
    payload_bytes: int = 0  # of one packed batch
    transitions_s: float = 0.0
    batches_s: float = 0.0
    mb_s: float = 0.0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    latency_n: int = 0
    machine_busy: float = 0.0  # all cores, during the throughput run
    error: str = ""


# ---- one path -----------------------------------------------------------------------------------
def node_ids() -> tuple[str, str]:
    """(head, worker) node ids, told apart by their custom resources."""
    import ray

    alive = [node for node in ray.nodes() if node["Alive"]]
    head = next(node["NodeID"] for node in alive if HEAD in node["Resources"])
    worker = next(node["NodeID"] for node in alive if HEAD not in node["Resources"])
    return head, worker


def place(cls, node_id: str):
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return ray.remote(cls).options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, False))


def start_pair(path: str, kind: str, args, scratch: Path, ip: str):
    """(producer, consumer) Ray actors of one path: the producer on the worker node, the consumer on the head."""
    import ray

    from benchmarks import ray_vs_zmq_procs as procs
    from benchmarks.transport_payload import ACTOR_ID

    head, worker = node_ids()
    if path == "ray":
        return place(procs.RayProducer, worker).remote(kind, args.batch_size), \
            place(procs.RayConsumer, head).remote(kind)  # fmt: skip
    consumer = place(procs.ZmqConsumer, head).remote(kind, ip, str(scratch / "keys"))
    port = ray.get(consumer.listening_port.remote(), timeout=120)
    spool = str(scratch / f"spool-{kind}") if path == "tandem+spool" else ""
    producer = place(procs.ZmqProducer, worker).remote(kind, args.batch_size, ip, port,
                                                      str(scratch / "keys" / "actors" / ACTOR_ID), spool)  # fmt: skip
    return producer, consumer


def measure(path: str, kind: str, args, scratch: Path, ip: str, progress: Progress) -> Result:
    """Throughput, then latency, of one path and payload; its actors are stopped whatever happens."""
    import ray

    from benchmarks.transport_procs import window_delta

    result = Result(kind, path, args.batch_size)
    producer = consumer = None
    try:
        producer, consumer = start_pair(path, kind, args, scratch, ip)
        result.payload_bytes = ray.get(producer.payload_bytes.remote(), timeout=120)
        extra = (consumer,) if path == "ray" else ()
        busy0 = machine_busy()
        run = ray.get(producer.throughput.remote(*extra, args.warm_s + args.window_s, args.inflight))
        busy1 = machine_busy()
        t0 = run["samples"][0][0] + args.warm_s
        result.transitions_s = window_delta(run["samples"], t0, t0 + args.window_s, 1) / args.window_s
        result.batches_s = result.transitions_s / args.batch_size
        result.mb_s = result.batches_s * result.payload_bytes / 1e6
        result.machine_busy = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9)
        times = ray.get(producer.latency.remote(*extra, args.pings, args.gap_s))
        result.p50_ms, result.p99_ms = (float(np.percentile(times, q)) * 1e3 for q in (50, 99))
        result.latency_n = len(times)
        if path != "ray":
            ray.get(producer.close.remote(), timeout=60)
        progress(f"  {kind:5s} {path:12s}: {result.batches_s:,.0f} batches/s, {result.mb_s:,.1f} MB/s, "
                 f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms")  # fmt: skip
    except Exception as exc:  # one failed path must not lose the others
        result.error = f"{type(exc).__name__}: {exc}"
        progress(f"  {kind:5s} {path:12s}: FAILED {result.error}")
    finally:
        stop_pair(producer, consumer, path)
    return result


def stop_pair(producer, consumer, path: str) -> None:
    import ray

    if consumer is not None and path != "ray":
        try:
            ray.get(consumer.close.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - killed below either way
            pass
    for handle in (producer, consumer):
        if handle is not None:
            ray.kill(handle, no_restart=True)


# ---- report -------------------------------------------------------------------------------------
def rows_of(results: list[Result]) -> list[list]:
    rows = []
    for r in results:
        ray = next((x for x in results if x.kind == r.kind and x.path == "ray" and not x.error), None)
        ratio = r.transitions_s / ray.transitions_s if ray and ray.transitions_s else float("nan")
        if r.error:
            rows.append([r.kind, r.path, "error", "", "", "", "", "", "", r.error[:60]])
            continue
        rows.append([r.kind, r.path, f"{r.payload_bytes / 1024:,.1f}", f"{r.batches_s:,.0f}",
                     f"{r.transitions_s:,.0f}", f"{r.mb_s:,.1f}", f"{ratio:.2f}", f"{r.p50_ms:.2f}",
                     f"{r.p99_ms:.2f}", f"{r.machine_busy:.0%}"])  # fmt: skip
    return rows


HEADERS = ["payload", "path", "KiB/batch", "batches/s", "transitions/s", "MB/s", "vs ray", "p50 ms", "p99 ms",
           "machine busy"]  # fmt: skip


def verdict(results: list[Result]) -> list[str]:
    lines = []
    for kind in dict.fromkeys(r.kind for r in results):
        by = {r.path: r for r in results if r.kind == kind and not r.error}
        if "ray" not in by or "tandem" not in by:
            continue
        ray, tandem = by["ray"], by["tandem"]
        faster = "Ray" if ray.transitions_s > tandem.transitions_s else "Tandem"
        ratio = tandem.transitions_s / ray.transitions_s
        lines.append(f"- {kind}: on raw throughput {faster} is faster (Tandem/Ray {ratio:.2f}); p50 latency "
                     f"Tandem/Ray {tandem.p50_ms / ray.p50_ms:.2f}")  # fmt: skip
    return lines


def report(results: list[Result], args, header: dict) -> str:
    lines = [f"# Transitions over Ray actor calls vs Tandem's link ({args.profile})", "", markdown_header(header), "",
             f"Batches of {args.batch_size} transitions, producer on the worker node, consumer on the head node; "
             f"throughput with at most {args.inflight} batches unacked over {args.window_s:g} s after "
             f"{args.warm_s:g} s; latency one batch at a time, {args.pings} batches {args.gap_s * 1e3:g} ms apart. "
             f"MB/s counts the packed arrays.", "", table(HEADERS, rows_of(results)), "", *verdict(results),
             "- Tandem's latency includes the Sender thread's idle wait: with nothing queued it sleeps in a 10 ms "
             "socket poll that a submit does not cut short (actor/sender.py `_run`).",
             "- tandem+spool writes every batch to the actor's disk before sending it (no fsync by default).", "",
             "## What the object store path lacks", "",
             table(["", "Ray actor calls / object store", "Tandem's ZeroMQ link"], list(map(list, LACKS)), left=True)]
    return "\n".join(lines)


# ---- main ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_vs_zmq", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke check: 3 s windows, 30 pings")
    p.add_argument("--kinds", type=lambda s: s.split(","), default=["state", "image"], help="payloads")
    p.add_argument("--paths", type=lambda s: s.split(","), default=list(PATHS), help=",".join(PATHS))
    p.add_argument("--batch-size", type=int, default=32, help="transitions per batch (the actor's default)")
    p.add_argument("--inflight", type=int, default=32, help="unacked batches a producer may have")
    p.add_argument("--window-s", type=float, help="throughput window (15; quick 3)")
    p.add_argument("--warm-s", type=float, help="before the window (3; quick 1)")
    p.add_argument("--pings", type=int, help="latency batches (300; quick 30)")
    p.add_argument("--gap-s", type=float, default=0.005, help="between latency batches")
    p.add_argument("--object-store-mb", type=int, default=256, help="each node's object store")
    p.add_argument("--out", default="runs/ray_vs_zmq", help="results directory")
    args = p.parse_args(argv)
    args.profile = "quick" if args.quick else "full"
    args.window_s = args.window_s or (3.0 if args.quick else 15.0)
    args.warm_s = args.warm_s if args.warm_s is not None else (1.0 if args.quick else 3.0)
    args.pings = args.pings or (30 if args.quick else 300)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    header = results_header("ray_vs_zmq")
    print("\n".join(header_lines(header)), flush=True)
    scratch = make_scratch("tdm-rvz-")
    ray_environment(scratch)
    progress = Progress()
    results: list[Result] = []
    with BenchCluster(scratch, object_store_mb=args.object_store_mb, progress=progress):
        import ray.util

        from benchmarks.transport_payload import ACTOR_ID
        from learner.keys import create_actor_keys

        create_actor_keys(scratch / "keys", ACTOR_ID)
        ip = ray.util.get_node_ip_address()
        for index, kind in enumerate(args.kinds):
            paths = args.paths if index % 2 == 0 else list(reversed(args.paths))
            for path in paths:
                progress(f"{kind} via {path}: throughput {args.warm_s + args.window_s:g} s, {args.pings} pings")
                results.append(measure(path, kind, args, scratch, ip, progress))
    header["uptime at the end"] = uptime()
    text = report(results, args, header)
    print()
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "ray_vs_zmq.csv", header, list(asdict(results[0])), [list(asdict(r).values()) for r in results])
    (out / "ray_vs_zmq.md").write_text(text + "\n")
    print(f"\nwritten: {out / 'ray_vs_zmq.csv'}, ray_vs_zmq.md")
    return 0 if not any(r.error for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
