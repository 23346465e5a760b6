"""Aggregate ingest with 1..16 simulated actors: started by the Ray launcher vs started by hand, in one run.

    python -m benchmarks.ray_ingest --out runs/ray_ingest            # counts 1,2,4,8,16, 30 s windows (~12 min)
    python -m benchmarks.ray_ingest --quick --out runs/ray_ingest_q  # counts 1,2, 5 s windows (smoke, ~2 min)

What is measured: transitions/s the learner stores (its /metrics counter
`tandem_learner_transitions_received_total`, summed over actors, read twice over a fixed window that opens
once every actor has delivered and a warm-up has passed). The learner only ingests (`--learning-starts
1000000000`: no gradient step); the actors are the `fake` robot at `--time-scale 20 --batch-size 32` (50 Hz x 20 =
1,000 transitions/s each at most).

- Ray: a two-node LocalCluster on this machine (head + worker, `ray start --block` each) and the launcher
  `learner --launcher ray` uses (deploy.ray.launcher.RayLauncher): the learner host on the driver's node, N
  actor hosts spread over both nodes, each running `actor ... --keys K --spool S` against the learner bound to
  0.0.0.0 with CURVE keys, reached at the node's non-loopback IP.
- By hand (the baseline): the same `learner` and `actor` command lines as plain subprocesses of this script
  (keys made the same way, the same IP, the same spool and key directories), while the cluster idles.
  The only difference is who starts the processes (so also what a Ray worker passes on to its child:
  OMP_NUM_THREADS=1, and Ray's worker niceness, 15).

Per count the two are measured back to back, in alternating order (background load drifts hit both). Reported:
both rates, Ray/hand (Tandem's claim: within 10 % at every count), the learner's CPU share, the machine's busy
CPU and the part of it used by processes outside this benchmark and its cluster during the window, and the
ingest limit: the count after which adding actors raises the rate by less than 10 %. Written to --out:
ingest.csv (every measurement), ingest.md (the table), ingest.png.

Run it on a quiet machine: with Linux's autogroup scheduling (on by default) CPU is shared between sessions
first, and the Ray nodes run in sessions of their own while hand-started processes share this script's, so
under outside load the Ray path gets more CPU (the report warns when other processes used over 10 %).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from common.ports import free_port_pair
from benchmarks.ray_common import (
    BenchCluster,
    Progress,
    cpu_seconds,
    descendants,
    header_lines,
    machine_busy,
    make_scratch,
    markdown_header,
    ray_environment,
    received,
    results_header,
    table,
    updates,
    uptime,
    wait_for,
    write_csv,
)

LEARNER_ARGS = ["--algo", "sac", "--set", "hidden_dims=16,16", "--learning-starts", "1000000000", "--threads", "1"]
PLATEAU = 1.10  # adding actors must raise the rate by at least 10 % to count as still scaling
CLAIM = 0.10  # Ray within 10 % of by hand


@dataclass
class Measurement:
    round: int
    count: int
    path: str  # "ray" or "hand"
    rate: float = 0.0  # transitions/s stored, all actors
    slowest_actor: float = 0.0  # transitions/s of the slowest and fastest actor in the window
    fastest_actor: float = 0.0
    learner_cpu: float = 0.0  # fraction of one core
    updates_per_s: float = 0.0  # the learner's gradient updates in the window (0 when it only stores)
    machine_busy: float = 0.0  # fraction of all cores
    others_busy: float = 0.0  # fraction of all cores used by processes outside this benchmark and its cluster
    connect_s: float = 0.0  # start of the fleet -> every actor delivered
    window_s: float = 0.0
    load1: float = 0.0
    placement: str = ""  # Ray: actors per node (the learner's node first)
    error: str = ""


# ---- the two ways of starting a fleet -----------------------------------------------------------
class HandFleet:
    """The learner and N actors as plain subprocesses, with the command lines the Ray hosts run."""

    def __init__(self, root: Path, processes: list, learner_args: list[str], ip: str, port: int) -> None:
        from learner.keys import create_actor_keys, create_learner_keys

        self.children: list[subprocess.Popen] = []
        run_dir, keys = root / "run", root / "run" / "keys"
        run_dir.mkdir(parents=True)
        create_learner_keys(keys)
        for process in processes:
            create_actor_keys(keys, process.actor_id)
        self._spawn([sys.executable, "-m", "learner", *learner_args, "--run-dir", str(run_dir), "--bind", "0.0.0.0",
                     "--port", str(port), "--keys", str(keys)], run_dir, "learner")  # fmt: skip
        self.learner_pid = self.children[0].pid
        for process in processes:
            workdir = root / "nodes" / process.actor_id
            shutil.copytree(keys / "actors" / process.actor_id, workdir / "keys")  # as ActorHost writes them
            self._spawn(process.command(f"{ip}:{port}", "--keys", str(workdir / "keys"), "--spool",
                                        str(workdir / "spool")), workdir, "actor")  # fmt: skip

    def _spawn(self, command: list[str], workdir: Path, name: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        command = [*command, "--parent-pid", str(os.getpid())]  # as ProcessHost.spawn: dies with its starter
        with (workdir / f"{name}.log").open("a") as out:
            self.children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                                  stderr=subprocess.STDOUT, cwd=workdir))  # fmt: skip

    def alive(self) -> bool:
        return all(child.poll() is None for child in self.children)

    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def stop(self) -> None:
        """SIGINT to the actors (they flush), then to the learner (it checkpoints); SIGKILL after a grace."""
        for group, grace_s in ((self.children[1:], 20.0), (self.children[:1], 60.0)):
            for child in group:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + grace_s
            for child in group:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


class RayFleet:
    """The same run through RayLauncher: learner host on the driver's node, actor hosts spread."""

    def __init__(self, root: Path, processes: list, learner_args: list[str], port: int, actor_cpus: float) -> None:
        from deploy.ray.launcher import Placement, RayLauncher

        self.launcher = RayLauncher(f"ingest{len(processes)}-{uuid.uuid4().hex[:6]}", str(root / "nodes"),
                                    max_restarts=0, actor_cpus=actor_cpus)  # fmt: skip
        self.handles = []
        info = self.launcher.start_learner(learner_args, str(root / "run"), port, [p.actor_id for p in processes],
                                           Placement.choose())  # fmt: skip
        self.learner_pid, self.learner_node = info["pid"], info["node_id"]
        self.handles = [self.launcher.start(process, f"{info['ip']}:{port}") for process in processes]

    def pids(self) -> list[int]:
        return []  # the cluster's processes are counted from its nodes

    def placement(self) -> str:
        """How many actors run on the learner's node and on the other."""
        nodes = [handle.info()["node_id"] for handle in self.handles]
        here = sum(node == self.learner_node for node in nodes)
        return f"{here} with the learner, {len(nodes) - here} on the other node"

    def alive(self) -> bool:
        info = self.launcher.learner_info()
        return info is not None and info["returncode"] is None and all(handle.alive() for handle in self.handles)

    def stop(self) -> None:
        from deploy.ray.run import _stop_fleet

        if self.handles:
            _stop_fleet(self.handles)
        if self.launcher.learner is not None:
            self.launcher.stop_learner()


# ---- one measurement ----------------------------------------------------------------------------
def measure_fleet(fleet, result: Measurement, metrics_port: int, ours: list[int], args, progress: Progress) -> None:
    """Wait until every actor delivered, warm up, then read the learner's counter over the window."""
    begin = time.monotonic()

    def all_delivering():
        counts = received(metrics_port)
        if not fleet.alive():
            raise RuntimeError("a process of the fleet exited before the window")
        return counts is not None and sum(value > 0 for value in counts.values()) >= result.count

    wait_for(all_delivering, args.connect_timeout_s, f"all {result.count} actors to deliver", poll_s=0.5)
    result.connect_s = time.monotonic() - begin
    progress(f"  {result.path} x{result.count}: all delivering after {result.connect_s:.1f} s; "
             f"warm-up {args.warm_s:g} s, window {args.window_s:g} s")  # fmt: skip
    time.sleep(args.warm_s)
    ours = [os.getpid(), *fleet.pids(), *(pid for root in ours for pid in [root, *descendants(root)])]
    before, updates0, t0, busy0 = received(metrics_port), updates(metrics_port), time.monotonic(), machine_busy()
    learner0, ours0 = cpu_seconds(fleet.learner_pid), sum(map(cpu_seconds, ours))
    time.sleep(args.window_s)
    after, updates1, t1, busy1 = received(metrics_port), updates(metrics_port), time.monotonic(), machine_busy()
    learner1, ours1 = cpu_seconds(fleet.learner_pid), sum(map(cpu_seconds, ours))
    if None in (before, after, updates0, updates1) or not fleet.alive():
        raise RuntimeError("the learner stopped answering, or a process exited, during the window")
    result.window_s = t1 - t0
    per_actor = [(after[actor] - before.get(actor, 0.0)) / result.window_s for actor in after]
    result.rate = sum(per_actor)
    result.slowest_actor, result.fastest_actor = min(per_actor), max(per_actor)
    result.learner_cpu = (learner1 - learner0) / result.window_s
    result.updates_per_s = (updates1 - updates0) / result.window_s
    all_cores = max(busy1[1] - busy0[1], 1e-9)
    result.machine_busy = (busy1[0] - busy0[0]) / all_cores
    result.others_busy = max(0.0, result.machine_busy - (ours1 - ours0) / all_cores)


def run_one(path: str, count: int, round_: int, args, cluster: BenchCluster, progress: Progress) -> Measurement:
    """Start a fleet of `count` one way, measure it, stop it (always)."""
    import ray.util  # the token settings are in the environment by now

    from learner.launch import fleet_processes

    result = Measurement(round_, count, path, load1=os.getloadavg()[0])
    processes = fleet_processes([f"fake={count}"], ["--time-scale", str(args.time_scale), "--batch-size",
                                                    str(args.batch_size)])  # fmt: skip
    port, metrics_port = free_port_pair(), free_port_pair()
    learner_args = [*LEARNER_ARGS, "--metrics-port", str(metrics_port)]
    root = cluster.scratch / f"{path}{count}-r{round_}"
    progress(f"{path} x{count} (round {round_ + 1}): starting learner and {count} actor(s)")
    fleet = None
    try:
        if path == "ray":
            fleet = RayFleet(root, processes, learner_args, port, args.actor_cpus)
        else:
            fleet = HandFleet(root, processes, learner_args, ray.util.get_node_ip_address(), port)
        measure_fleet(fleet, result, metrics_port, cluster.node_pids(), args, progress)
        result.placement = fleet.placement() if path == "ray" else ""
        progress(f"  {path} x{count}: {result.rate:,.0f} transitions/s (learner CPU {result.learner_cpu:.0%}, "
                 f"machine busy {result.machine_busy:.0%}, other processes {result.others_busy:.0%}) "
                 f"{result.placement}")  # fmt: skip
    except Exception as exc:  # one failed measurement must not lose the others
        result.error = f"{type(exc).__name__}: {exc}"
        progress(f"  {path} x{count}: FAILED {result.error}")
    finally:
        if fleet is not None:
            fleet.stop()
    return result


# ---- report -------------------------------------------------------------------------------------
def median_of(results: list[Measurement], path: str, count: int, key: str) -> float:
    """The median of field `key` over the successful measurements of `path` at `count` actors (nan: none)."""
    values = [getattr(r, key) for r in results if r.path == path and r.count == count and not r.error]
    return statistics.median(values) if values else float("nan")


def median_rate(results: list[Measurement], path: str, count: int) -> float:
    return median_of(results, path, count, "rate")


def ingest_limit(results: list[Measurement], path: str, counts: list[int]) -> str:
    """Where adding actors stops raising the rate by 10 % or more, and what was saturated there."""
    rates = [median_rate(results, path, count) for count in counts]
    for index in range(len(counts) - 1):
        if rates[index + 1] < PLATEAU * rates[index]:
            at = [r for r in results if r.path == path and r.count == counts[index + 1] and not r.error]
            learner = statistics.median(r.learner_cpu for r in at)
            busy = statistics.median(r.machine_busy for r in at)
            why = "the learner's core" if learner >= 0.9 else "the machine's cores (actors and learner share them)" \
                if busy >= 0.9 else "neither the learner's core nor the machine's"  # fmt: skip
            return (f"{max(rates):,.0f} transitions/s, reached at {counts[index]} actor(s): going to "
                    f"{counts[index + 1]} raised the rate {rates[index + 1] / rates[index] - 1:+.0%}; there the "
                    f"learner used {learner:.0%} of a core and the machine was {busy:.0%} busy: {why} "
                    f"saturated")  # fmt: skip
    return f"not reached up to {counts[-1]} actors ({rates[-1]:,.0f} transitions/s there)"


def summary_rows(results: list[Measurement], counts: list[int], args) -> list[list]:
    rows = []
    for count in counts:
        hand, ray = median_rate(results, "hand", count), median_rate(results, "ray", count)
        ratio = ray / hand if hand == hand and ray == ray and hand > 0 else float("nan")
        pick = lambda path, key: median_of(results, path, count, key)  # noqa: E731
        rows.append([count, f"{count * 50 * args.time_scale:,.0f}", f"{hand:,.0f}", f"{ray:,.0f}",
                     f"{ratio:.3f}" if ratio == ratio else "n/a",
                     ("yes" if abs(ratio - 1) <= CLAIM else "NO") if ratio == ratio else "n/a",
                     f"{pick('hand', 'learner_cpu'):.0%} / {pick('ray', 'learner_cpu'):.0%}",
                     f"{pick('hand', 'machine_busy'):.0%} / {pick('ray', 'machine_busy'):.0%}",
                     f"{pick('hand', 'others_busy'):.0%} / {pick('ray', 'others_busy'):.0%}",
                     f"{pick('hand', 'connect_s'):.1f} / {pick('ray', 'connect_s'):.1f}"])  # fmt: skip
    return rows


HEADERS = ["actors", "ideal tr/s", "by hand tr/s", "Ray tr/s", "Ray/hand", "within 10 %", "learner CPU hand/Ray",
           "machine busy hand/Ray", "other processes hand/Ray", "start->all delivering s hand/Ray"]  # fmt: skip
QUIET = 0.10  # other processes' share of all cores above which the ratios are flagged


def report(results: list[Measurement], counts: list[int], args, header: dict) -> str:
    lines = [f"# Ingest: Ray launcher vs by hand ({args.profile})", "", markdown_header(header), "",
             f"Learner stores (`{LEARNER_ARGS}`), `fake` actors at `--time-scale {args.time_scale} --batch-size "
             f"{args.batch_size}`; rate over a {args.window_s:g} s window after all actors delivered and "
             f"{args.warm_s:g} s warm-up; median of {args.rounds} round(s). Machine busy = all cores.", "",
             table(HEADERS, summary_rows(results, counts, args)), ""]  # fmt: skip
    ratios = {count: median_rate(results, "ray", count) / median_rate(results, "hand", count) for count in counts}
    off = [f"{count} ({ratio:.2f})" for count, ratio in ratios.items() if not abs(ratio - 1) <= CLAIM]
    lines.append(f"- Claim (Ray within {CLAIM:.0%} of by hand at every count): " +
                 ("holds" if not off else "does NOT hold at " + ", ".join(off)))  # fmt: skip
    for path, name in (("hand", "by hand"), ("ray", "Ray")):
        if all(median_rate(results, path, count) == median_rate(results, path, count) for count in counts):
            lines.append(f"- Ingest limit on this machine ({name}): {ingest_limit(results, path, counts)}")
    busy = [r for r in results if r.others_busy > QUIET]
    if busy:
        lines.append(f"- WARNING: the machine was not quiet ({len(busy)} of {len(results)} windows had other processes "
                     f"above {QUIET:.0%} of all cores, up to {max(r.others_busy for r in busy):.0%}). With the "
                     f"autogroup scheduler the Ray nodes' processes (their own `ray start` sessions) get CPU shares "
                     f"of their own against other sessions, the hand-started ones share this script's: under "
                     f"contention the ratios measure that, not the launcher.")  # fmt: skip
    failed = [r for r in results if r.error]
    lines += [f"- FAILED {r.path} x{r.count} round {r.round + 1}: {r.error}" for r in failed]
    return "\n".join(lines)


def plot(results: list[Measurement], counts: list[int], args, header: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(3, 1))
    for which, label, marker in (("hand", "by hand", "o"), ("ray", "Ray launcher", "s")):
        top.plot(counts, [median_rate(results, which, c) for c in counts], marker=marker, label=label)
    top.plot(counts, [c * 50 * args.time_scale for c in counts], "k:", label="actors' ceiling (50 Hz x time scale)")
    top.set_ylabel("transitions/s stored")
    top.legend()
    ratios = [median_rate(results, "ray", c) / median_rate(results, "hand", c) for c in counts]
    bottom.plot(counts, ratios, marker="s", color="C1")
    bottom.axhspan(1 - CLAIM, 1 + CLAIM, color="0.9")
    bottom.set_ylabel("Ray / hand")
    bottom.set_xlabel("simulated actors")
    bottom.set_xscale("log", base=2)
    bottom.set_xticks(counts, [str(c) for c in counts])
    fig.suptitle("Learner ingest: Ray launcher vs by hand", fontsize=11)
    fig.text(0.01, 0.005, f"{header['date']} | {header['uptime']}\n{header['command']}", fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(results: list[Measurement], counts: list[int], args, header: dict, text: str) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    columns = list(asdict(results[0]))
    write_csv(out / "ingest.csv", header, columns, [list(asdict(r).values()) for r in results])
    (out / "ingest.md").write_text(text + "\n")
    plot(results, counts, args, header, out / "ingest.png")


# ---- main ---------------------------------------------------------------------------------------
def add_fleet_arguments(p: argparse.ArgumentParser, out: str, window_s: float) -> None:
    """The options of a benchmark that measures fleets of 1..16 fake actors (this one, `benchmarks.ingest`)."""
    p.add_argument("--quick", action="store_true", help="smoke check: counts 1,2, 5 s windows")
    p.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], help="actor counts (1,2,4,8,16)")
    p.add_argument("--window-s", type=float, help=f"measured window per run ({window_s:g}; quick 5)")
    p.add_argument("--warm-s", type=float, help="after all actors delivered, before the window (5; quick 2)")
    p.add_argument("--rounds", type=int, default=1, help="repeat every count; the median is reported")
    p.add_argument("--time-scale", type=float, default=20.0, help="the fake actors' --time-scale")
    p.add_argument("--batch-size", type=int, default=32, help="the fake actors' --batch-size")
    p.add_argument("--connect-timeout-s", type=float, default=300.0)
    p.add_argument("--out", default=out, help="results directory")
    p.set_defaults(full_window_s=window_s)


def settle_fleet_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The profile's counts and windows where the command line left them out."""
    args.profile = "quick" if args.quick else "full"
    args.counts = args.counts or ([1, 2] if args.quick else [1, 2, 4, 8, 16])
    args.window_s = args.window_s or (5.0 if args.quick else args.full_window_s)
    args.warm_s = args.warm_s if args.warm_s is not None else (2.0 if args.quick else 5.0)
    return args


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_ingest", description=__doc__.split("\n\n")[0])
    add_fleet_arguments(p, "runs/ray_ingest", window_s=30.0)
    p.add_argument("--actor-cpus", type=float, default=0.1, help="Ray CPUs each actor host reserves (nodes offer 2)")
    return settle_fleet_arguments(p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    header = results_header("ray_ingest")
    print("\n".join(header_lines(header)), flush=True)
    scratch = make_scratch("tdm-ingest-")
    ray_environment(scratch)
    progress = Progress()
    results: list[Measurement] = []
    with BenchCluster(scratch, progress=progress) as cluster:
        for round_ in range(args.rounds):
            for index, count in enumerate(args.counts):
                for path in (("hand", "ray") if (index + round_) % 2 == 0 else ("ray", "hand")):
                    results.append(run_one(path, count, round_, args, cluster, progress))
    header["uptime at the end"] = uptime()
    text = report(results, args.counts, args, header)
    print()
    print(text)
    write_results(results, args.counts, args, header, text)
    print(f"\nwritten: {Path(args.out) / 'ingest.csv'}, ingest.md, ingest.png")
    return 0 if not any(r.error for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
