"""Learner ingest from 1..16 image actors, storing only and while it trains, in one run (issue 21, item 2).

    python -m benchmarks.ingest --out DIR            # 1,2,4,8,16 actors, both modes, 20 s windows (~7 min)
    python -m benchmarks.ingest --quick --out DIR    # 1,2 actors, 5 s windows (smoke, ~2 min)

Per count N: the real `learner` (CURVE keys, durable replay with fsync, as on a lab network) and N real
`actor --robot fake -o image_size=128` processes: a 128x128 grayscale camera, so a transition carries 32 KiB
of observation and next observation; at 50 Hz x `--time-scale 20` an actor offers at most 1,000
transitions/s. They are started by hand, exactly as `benchmarks.ray_ingest`'s baseline starts them
(`HandFleet`), on one machine. Two modes per count, back to back in alternating order:

- store: the learner only ingests (`--learning-starts 1000000000`: no gradient step, no weights, so the
  actors act at random);
- train: it also trains SAC on the images flat out (DrQ conv encoder with random shifts, the image runs'
  batch 128 and 128x128 networks, one torch thread) and publishes the policy, which the actors then run: a
  conv-encoder forward pass on a 128x128 image every step, as on a robot. On one 2-core box this is what
  bounds the training rows (py-spy of an actor: its main thread is in the policy's Conv2d and Linear
  forward), so they measure a whole fleet sharing one machine, not the learner's own limit.

Counted: transitions the learner stored (its /metrics counter, summed over actors) and its gradient updates
over a fixed window that opens once every actor has delivered and a warm-up has passed; the learner's CPU
(a fraction of one core; its receive thread and its training thread share one process) and the machine's.
Reported per count and mode, and where adding actors stops raising the stored rate by 10 % and why. Each
count's scratch directory (replay journal included: ~32 KiB a transition) is removed after it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.ray_common import (
    Progress,
    header_lines,
    make_scratch,
    markdown_header,
    results_header,
    table,
    uptime,
    write_csv,
)
from benchmarks.ray_ingest import (
    HandFleet,
    Measurement,
    add_fleet_arguments,
    ingest_limit,
    measure_fleet,
    median_of,
    median_rate,
    settle_fleet_arguments,
)
from common.ports import free_port_pair

IMAGE_SIZE = 128
ACTOR_HZ = 50.0  # the fake robot's control rate
COMMON = ["--algo", "sac", "--set", "batch_size=128", "--set", "hidden_dims=128,128", "--threads", "1"]
MODES = {  # mode -> the learner's arguments beyond COMMON
    "store": ["--learning-starts", "1000000000"],
    "train": ["--learning-starts", "1000", "--utd", "1"],
}


def run_one(mode: str, count: int, round_: int, args, progress: Progress) -> Measurement:
    """Start a learner and `count` image actors, measure the window, stop everything and drop the scratch."""
    from learner.launch import fleet_processes

    result = Measurement(round_, count, mode, load1=os.getloadavg()[0])
    actor_args = ["--time-scale", str(args.time_scale), "--batch-size", str(args.batch_size), "-o",
                  f"image_size={IMAGE_SIZE}"]  # fmt: skip
    processes = fleet_processes([f"fake={count}"], actor_args)
    port, metrics_port = free_port_pair(), free_port_pair()
    learner_args = [*COMMON, *MODES[mode], "--metrics-port", str(metrics_port)]
    root = make_scratch(f"tdm-ingest-{mode}{count}-")
    progress(f"{mode} x{count} (round {round_ + 1}): starting the learner and {count} image actor(s)")
    fleet = None
    try:
        fleet = HandFleet(root, processes, learner_args, "127.0.0.1", port)
        measure_fleet(fleet, result, metrics_port, [], args, progress)
        progress(f"  {mode} x{count}: {result.rate:,.0f} transitions/s, {result.updates_per_s:.1f} updates/s "
                 f"(learner CPU {result.learner_cpu:.0%}, machine busy {result.machine_busy:.0%})")  # fmt: skip
    except Exception as exc:  # one failed measurement must not lose the others
        result.error = f"{type(exc).__name__}: {exc}"
        progress(f"  {mode} x{count}: FAILED {result.error}")
    finally:
        if fleet is not None:
            fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
    return result


HEADERS = ["actors", "offered tr/s", "stored tr/s, store only", "stored tr/s, training", "training/store",
           "updates/s", "learner CPU store/train", "machine busy store/train", "MB/s stored, training"]  # fmt: skip
MIB_PER_TRANSITION = 2 * IMAGE_SIZE * IMAGE_SIZE / 2**20  # observation and next observation; the rest is noise


def summary_rows(results: list[Measurement], counts: list[int], args) -> list[list]:
    rows = []
    for count in counts:
        store, train = median_rate(results, "store", count), median_rate(results, "train", count)
        ratio = train / store if store > 0 else float("nan")
        rows.append([count, f"{count * ACTOR_HZ * args.time_scale:,.0f}", f"{store:,.0f}", f"{train:,.0f}",
                     f"{ratio:.2f}", f"{median_of(results, 'train', count, 'updates_per_s'):.1f}",
                     f"{median_of(results, 'store', count, 'learner_cpu'):.0%} / "
                     f"{median_of(results, 'train', count, 'learner_cpu'):.0%}",
                     f"{median_of(results, 'store', count, 'machine_busy'):.0%} / "
                     f"{median_of(results, 'train', count, 'machine_busy'):.0%}",
                     f"{train * MIB_PER_TRANSITION:.0f}"])  # fmt: skip
    return rows


def report(results: list[Measurement], counts: list[int], args, header: dict) -> str:
    lines = [f"# Learner ingest from {IMAGE_SIZE}x{IMAGE_SIZE} image actors, storing only and training "
             f"({args.profile})", "", markdown_header(header), "",
             f"Learner `{' '.join(COMMON)}` plus, store: `{' '.join(MODES['store'])}`, train: "
             f"`{' '.join(MODES['train'])}`; CURVE keys, durable replay; `fake` actors with a {IMAGE_SIZE}x"
             f"{IMAGE_SIZE} camera at `--time-scale {args.time_scale:g} --batch-size {args.batch_size}`. Rate over "
             f"a {args.window_s:g} s window after every actor delivered and {args.warm_s:g} s of warm-up, median of "
             f"{args.rounds} round(s). Learner CPU: fraction of one core; machine busy: of all cores.", "",
             table(HEADERS, summary_rows(results, counts, args)), ""]  # fmt: skip
    for mode in args.modes:
        lines.append(f"- Ingest limit, {mode}: {ingest_limit(results, mode, counts)}")
    lines += [f"- FAILED {r.path} x{r.count} round {r.round + 1}: {r.error}" for r in results if r.error]
    return "\n".join(lines)


def plot(results: list[Measurement], counts: list[int], args, header: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(3, 1))
    for mode, marker in (("store", "o"), ("train", "s")):
        top.plot(counts, [median_rate(results, mode, c) for c in counts], marker=marker, label=f"learner: {mode}")
    top.plot(counts, [c * ACTOR_HZ * args.time_scale for c in counts], "k:", label="offered by the actors")
    top.set_ylabel("transitions/s stored")
    top.set_yscale("log")
    top.legend()
    bottom.plot(counts, [median_of(results, "train", c, "updates_per_s") for c in counts], marker="s", color="C1")
    bottom.set_ylabel("updates/s (train)")
    bottom.set_xlabel("image actors")
    bottom.set_xscale("log", base=2)
    bottom.set_xticks(counts, [str(c) for c in counts])
    fig.suptitle(f"Learner ingest, {IMAGE_SIZE}x{IMAGE_SIZE} grayscale transitions", fontsize=11)
    fig.text(0.01, 0.005, f"{header['date']} | {header['uptime']}\n{header['command']}", fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n\n")[0])
    add_fleet_arguments(p, "runs/ingest", window_s=20.0)
    p.add_argument("--modes", type=lambda s: s.split(","), default=list(MODES), help="store,train (both)")
    args = p.parse_args(argv)
    unknown = set(args.modes) - set(MODES)
    if unknown:
        p.error(f"unknown mode(s) {sorted(unknown)}; modes: {', '.join(MODES)}")
    return settle_fleet_arguments(args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    header = results_header("ingest")
    print("\n".join(header_lines(header)), flush=True)
    progress, results = Progress(), []
    started = time.monotonic()
    for round_ in range(args.rounds):
        for index, count in enumerate(args.counts):
            for mode in (args.modes if (index + round_) % 2 == 0 else args.modes[::-1]):
                results.append(run_one(mode, count, round_, args, progress))
    header["uptime at the end"] = uptime()
    header["wall"] = f"{time.monotonic() - started:.0f} s"
    text = report(results, args.counts, args, header)
    print()
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "ingest.csv", header, list(asdict(results[0])), [list(asdict(r).values()) for r in results])
    (out / "ingest.md").write_text(text + "\n")
    plot(results, args.counts, args, header, out / "ingest.png")
    print(f"\nwritten: {out / 'ingest.csv'}, ingest.md, ingest.png")
    return 0 if not any(r.error for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
