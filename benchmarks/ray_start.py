"""Start of a two-node Ray run to its first stored transition, against the same run started locally; and the
memory Ray adds, per node and per hosted process.

    python -m benchmarks.ray_start --out runs/ray_start            # 3 starts of each (~3 min)
    python -m benchmarks.ray_start --quick --out runs/ray_start_q  # 1 start of each (~1.5 min)

1. Start to first transition. A two-node LocalCluster (head + worker, `ray start --block` each) is up and idle;
   then, in alternating order, each run is one command as a user types it, timed from the moment it is invoked
   to the learner's first stored transition (its /metrics counter `tandem_learner_transitions_received_total`,
   polled every 0.1 s; the time /metrics first answers is shown too):
   - Ray: `learner --launcher ray --ray-address ADDR --fleet fake=2 ...` (driver, learner host on the driver's
     node, two actor hosts spread over the nodes, CURVE keys made on the learner's node, learner on 0.0.0.0);
   - local (the baseline): `learner --fleet fake=2 ...` (the local launcher: children on loopback).
   Both ingest only (`--learning-starts 1000000000`), actors at `--time-scale 20 --batch-size 32`. Each run is
   stopped with Ctrl-C (SIGINT) once measured; the time to a clean exit is reported as well. `learner --help`
   and `actor --help` run once before the first start, so neither path pays a cold page cache alone. Run it on
   a quiet machine (the report warns when other processes used over 10 % of the CPU while a run started: with
   autogroup scheduling the Ray nodes' own sessions would get more CPU than the local run).
2. Memory: RSS and PSS (/proc/PID/smaps_rollup; PSS splits shared pages among the processes sharing them, so
   PSS sums are the honest totals) of every process of each node, walked from the node's `ray start` process:
   idle before any run, during the first Ray run (every actor delivering, then a settle time), and idle after
   the runs. The `ray start --block` CLI itself is listed but not counted (without --block it exits). Per
   hosted process: the Ray worker that hosts it (the ProcessHost) beside the `learner` / `actor` it runs; the
   driver (the `learner --launcher ray` process on the user's machine) beside them; and the local run's
   processes for comparison. Written to --out: start.csv, memory.csv, start.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common.ports import free_port_pair
from benchmarks.ray_common import (
    BenchCluster,
    Progress,
    command_of,
    cpu_seconds,
    descendants,
    header_lines,
    machine_busy,
    make_scratch,
    markdown_header,
    memory_kb,
    parents,
    ray_environment,
    received,
    results_header,
    table,
    uptime,
    wait_for,
    write_csv,
)

LEARNER_ARGS = ["--algo", "sac", "--set", "hidden_dims=16,16", "--learning-starts", "1000000000", "--threads", "1"]
ROLES = (  # (role, any of these in the command line); first match wins
    ("ray start CLI (not counted)", ("bin/ray start",)),
    ("gcs_server", ("gcs_server",)),
    ("raylet", ("raylet/raylet",)),
    ("dashboard agent", ("ray::DashboardAgent", "dashboard/agent.py")),
    ("runtime env agent", ("ray::RuntimeEnvAgent", "runtime_env/agent/main.py")),
    ("log monitor", ("log_monitor.py",)),
    ("autoscaler monitor", ("autoscaler/_private/monitor.py",)),
    ("dashboard", ("dashboard/dashboard.py",)),
    ("learner host (Ray worker)", ("ray::LearnerHost",)),
    ("actor host (Ray worker)", ("ray::ActorHost",)),
    ("idle Ray worker", ("ray::IDLE", "default_worker.py")),
    ("learner", ("-m learner",)),
    ("actor", ("-m actor",)),
)
TANDEM = ("learner", "actor", "learner host (Ray worker)", "actor host (Ray worker)")


@dataclass
class Start:
    repeat: int
    path: str  # "ray" or "local"
    metrics_up_s: float = float("nan")  # invoked -> the learner's /metrics answers
    first_transition_s: float = float("nan")  # invoked -> the learner stored its first transition
    all_delivering_s: float = float("nan")  # invoked -> every actor stored at least one transition
    stop_s: float = float("nan")  # SIGINT -> the command exited
    exit_code: int | None = None
    load1: float = 0.0
    others_busy: float = 0.0  # share of all cores used by processes outside the benchmark while starting
    error: str = ""


@dataclass
class Proc:
    snapshot: str
    node: str  # "head", "worker", "driver" or "local"
    role: str
    pid: int
    rss_kb: int
    pss_kb: int | None
    hosts: str = ""  # for a host: the pid of the process it runs; for a hosted process: its host's pid
    command: str = ""


# ---- memory --------------------------------------------------------------------------------------
def role_of(command: str) -> str:
    return next((role for role, marks in ROLES if any(mark in command for mark in marks)), "other")


def snapshot(name: str, roots: dict[str, int]) -> list[Proc]:
    """Every process below each root (node name -> pid), with its role, memory and host/child link."""
    tree = parents()
    found = []
    for node, root in roots.items():
        pids = descendants(root, tree) if node not in ("driver", "local") else [root, *descendants(root, tree)]
        for pid in pids:
            command = command_of(pid)
            if not command:
                continue
            rss, pss = memory_kb(pid)
            found.append(Proc(name, node, role_of(command), pid, rss, pss, command=command[:200]))
    by_pid = {proc.pid: proc for proc in found}
    for proc in found:  # link hosts and the processes they run (the child's parent is its host)
        parent = by_pid.get(tree.get(proc.pid, 0))
        if proc.role in ("learner", "actor") and parent is not None and "host" in parent.role:
            proc.hosts, parent.hosts = str(parent.pid), str(proc.pid)
    return found


def megabytes(kb: float | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:,.0f}"


def node_totals(procs: list[Proc]) -> list[list]:
    """Per snapshot and node: Ray's own processes (idle workers apart), and Tandem's hosted ones."""
    rows = []
    for name in dict.fromkeys(p.snapshot for p in procs if p.node in ("head", "worker")):
        for node in ("head", "worker"):
            here = [p for p in procs if p.snapshot == name and p.node == node and not p.role.startswith("ray start")]
            system = [p for p in here if p.role not in TANDEM and p.role != "idle Ray worker"]
            idle = [p for p in here if p.role == "idle Ray worker"]
            rows.append([name, node, len(system), megabytes(sum(p.rss_kb for p in system)), _pss_sum(system),
                         len(idle), megabytes(sum(p.rss_kb for p in idle)), _pss_sum(idle)])  # fmt: skip
    return rows


def _pss_sum(procs: list[Proc]) -> str:
    if any(p.pss_kb is None for p in procs):
        return "n/a"
    return megabytes(sum(p.pss_kb for p in procs))


def process_rows(procs: list[Proc], name: str) -> list[list]:
    """Each Ray process of one snapshot, node by node, by role."""
    rows = []
    for p in sorted((p for p in procs if p.snapshot == name), key=lambda p: (p.node, p.role, p.pid)):
        rows.append([p.node, p.role, p.pid, megabytes(p.rss_kb), megabytes(p.pss_kb)])
    return rows


def hosted_rows(procs: list[Proc]) -> list[list]:
    """Per hosted process of the Ray run: its host's memory beside its own."""
    by_pid = {p.pid: p for p in procs}
    rows = []
    for child in (p for p in procs if p.role in ("learner", "actor") and p.hosts):
        host = by_pid[int(child.hosts)]
        name = child.command.split("--actor-id ", 1)[1].split()[0] if "--actor-id " in child.command else "learner"
        rows.append([name, child.node, megabytes(host.rss_kb), megabytes(host.pss_kb), megabytes(child.rss_kb),
                     megabytes(child.pss_kb),
                     f"{host.pss_kb / child.pss_kb:.2f}" if host.pss_kb and child.pss_kb else "n/a"])  # fmt: skip
    return rows


# ---- one start -----------------------------------------------------------------------------------
def command(path: str, run_dir: Path, args, address: str) -> tuple[list[str], int]:
    """The user's command for one run, and the learner's /metrics port."""
    metrics_port = free_port_pair()
    fleet = ["--fleet", f"fake={args.actors}", "--actor-arg=--time-scale", f"--actor-arg={args.time_scale:g}",
             "--actor-arg=--batch-size", f"--actor-arg={args.batch_size}"]  # fmt: skip
    argv = [sys.executable, "-m", "learner", *LEARNER_ARGS, *fleet, "--run-dir", str(run_dir), "--port",
            str(free_port_pair()), "--metrics-port", str(metrics_port)]  # fmt: skip
    if path == "ray":
        argv += ["--launcher", "ray", "--ray-address", address, "--actor-cpus", str(args.actor_cpus)]
    return argv, metrics_port


def time_start(path: str, repeat: int, cluster: BenchCluster, args, progress: Progress,
               memory: list[Proc]) -> Start:  # fmt: skip
    """Invoke one run, time it to its first stored transition (and all actors delivering), snapshot its
    memory if asked (`memory` empty), stop it with SIGINT."""
    result = Start(repeat, path, load1=os.getloadavg()[0])
    run_dir = cluster.scratch / f"{path}-{repeat}" / "run"
    argv, metrics_port = command(path, run_dir, args, cluster.address)
    log_path = run_dir.parent / "command.log"
    run_dir.parent.mkdir(parents=True)
    env = {**os.environ, "TANDEM_RAY_NODE_DIR": str(cluster.scratch / "nodes")}
    progress(f"{path} start {repeat + 1}: {' '.join(argv[1:])}")
    ours0, busy0 = _our_cpu(cluster), machine_busy()
    with log_path.open("w") as log:
        begin = time.monotonic()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    try:
        _time_milestones(child, begin, metrics_port, result, args)
        ours1, busy1 = _our_cpu(cluster, child.pid), machine_busy()
        all_cores = max(busy1[1] - busy0[1], 1e-9)
        result.others_busy = max(0.0, (busy1[0] - busy0[0] - (ours1 - ours0)) / all_cores)
        progress(f"  {path}: /metrics after {result.metrics_up_s:.1f} s, first transition after "
                 f"{result.first_transition_s:.1f} s, all {args.actors} actors after {result.all_delivering_s:.1f} s")
        if path == "ray" and not any(p.snapshot == "Ray run" for p in memory):
            time.sleep(args.settle_s)
            roots = {"head": cluster.node_pids()[0], "worker": cluster.node_pids()[1], "driver": child.pid}
            memory.extend(snapshot("Ray run", roots))
        elif path == "local" and not any(p.snapshot == "local run" for p in memory):
            time.sleep(args.settle_s)
            memory.extend(snapshot("local run", {"local": child.pid}))
    except Exception as exc:  # one failed start must not lose the others
        result.error = f"{type(exc).__name__}: {exc}"
        progress(f"  {path}: FAILED {result.error}\n{log_path.read_text()[-2000:]}")
    finally:
        result.stop_s, result.exit_code = _stop(child)
        progress(f"  {path}: stopped in {result.stop_s:.1f} s (exit {result.exit_code})")
    return result


def _our_cpu(cluster: BenchCluster, *roots: int) -> float:
    """CPU seconds so far of this script, the cluster's processes and the processes below `roots`."""
    tree = parents()
    pids = [os.getpid(), *(pid for root in (*cluster.node_pids(), *roots) for pid in [root, *descendants(root, tree)])]
    return sum(map(cpu_seconds, pids))


def _time_milestones(child: subprocess.Popen, begin: float, metrics_port: int, result: Start, args) -> None:
    def poll():
        if child.poll() is not None:
            raise RuntimeError(f"the command exited with {child.returncode} before its first transition")
        counts = received(metrics_port, timeout_s=1.0)
        now = time.monotonic() - begin
        if counts is not None and result.metrics_up_s != result.metrics_up_s:
            result.metrics_up_s = now
        if counts and sum(counts.values()) > 0 and result.first_transition_s != result.first_transition_s:
            result.first_transition_s = now
        if counts and sum(value > 0 for value in counts.values()) >= args.actors:
            result.all_delivering_s = now
            return True
        return False

    wait_for(poll, args.timeout_s, "the run's actors to deliver", poll_s=0.1)


def _stop(child: subprocess.Popen, grace_s: float = 150.0) -> tuple[float, int | None]:
    """Ctrl-C as a user would; SIGKILL after `grace_s` (whatever it leaves is killed by the cluster's exit)."""
    begin = time.monotonic()
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return time.monotonic() - begin, child.returncode


def warm_caches(progress: Progress) -> None:
    """Import what a learner and an actor import once, so neither path's first start pays a cold disk cache."""
    begin = time.monotonic()
    for program in ("learner", "actor"):
        subprocess.run([sys.executable, "-m", program, "--help"], capture_output=True, timeout=300)
    progress(f"page cache warmed (learner --help, actor --help) in {time.monotonic() - begin:.1f} s")


# ---- report --------------------------------------------------------------------------------------
def start_rows(starts: list[Start]) -> list[list]:
    rows = []
    for key, label in (("metrics_up_s", "invoked -> learner /metrics up"),
                       ("first_transition_s", "invoked -> first transition stored"),
                       ("all_delivering_s", "invoked -> every actor delivered"),
                       ("stop_s", "Ctrl-C -> exited"),
                       ("others_busy", "other processes' CPU while starting (share of all cores)")):  # fmt: skip
        medians = {}
        for path in ("local", "ray"):
            values = [getattr(s, key) for s in starts if s.path == path and not s.error]
            medians[path] = statistics.median(values) if values else float("nan")
            medians[path + "_all"] = ", ".join(f"{v:.1f}" for v in values)
        ratio = medians["ray"] / medians["local"] if medians["local"] else float("nan")
        rows.append([label, f"{medians['local']:.1f}", f"{medians['ray']:.1f}", f"{ratio:.2f}",
                     medians["local_all"], medians["ray_all"]])  # fmt: skip
    return rows


def report(starts: list[Start], memory: list[Proc], cluster_s: float, args, header: dict) -> str:
    lines = [f"# Ray start and memory ({args.profile})", "", markdown_header(header), "",
             f"## Start to first transition (fleet fake={args.actors}, median of {args.repeats})", "",
             table(["", "local s", "Ray s", "Ray/local", "local runs", "Ray runs"], start_rows(starts)), "",
             f"Starting the two-node cluster itself (`ray start` x2, not in the figures above): {cluster_s:.1f} s.",
             "", "## Ray's processes per node (MB; idle workers apart; the `ray start --block` CLI not counted)", "",
             table(["snapshot", "node", "Ray processes", "RSS", "PSS", "idle workers", "RSS", "PSS"],
                   node_totals(memory)), "",
             "## Per hosted process during the Ray run (MB): the Ray worker hosting it beside the process", "",
             table(["process", "node", "host RSS", "host PSS", "process RSS", "process PSS", "host/process PSS"],
                   hosted_rows(memory)), ""]  # fmt: skip
    driver = [p for p in memory if p.node == "driver"]
    local = [p for p in memory if p.snapshot == "local run"]
    if driver:
        lines.append(f"- the driver (`learner --launcher ray`, on the user's machine): "
                     f"{', '.join(f'{p.role} {megabytes(p.rss_kb)} MB RSS / {megabytes(p.pss_kb)} MB PSS' for p in driver)}")  # noqa: E501
    if local:
        lines.append(f"- the local run for comparison: {len(local)} processes, "
                     f"{megabytes(sum(p.rss_kb for p in local))} MB RSS / {_pss_sum(local)} MB PSS in all ("
                     + ", ".join(f"{p.role} {megabytes(p.pss_kb)}" for p in local) + " MB PSS)")  # fmt: skip
    lines += ["", "## Every process of each snapshot (MB)", ""]
    for name in dict.fromkeys(p.snapshot for p in memory):
        lines += [f"### {name}", "", table(["node", "role", "pid", "RSS", "PSS"], process_rows(memory, name)), ""]
    if any(s.others_busy > 0.10 for s in starts):
        lines.append("- WARNING: the machine was not quiet (other processes above 10 % of all cores while starting). "
                     "With autogroup scheduling the Ray nodes' sessions get CPU shares of their own against other "
                     "sessions, the local run shares this script's: under outside load the start times compare that.")
    lines += [f"- FAILED {s.path} start {s.repeat + 1}: {s.error}" for s in starts if s.error]
    return "\n".join(lines)


def write_results(starts: list[Start], memory: list[Proc], args, header: dict, text: str) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "start.csv", header, list(asdict(starts[0])), [list(asdict(s).values()) for s in starts])
    if memory:
        write_csv(out / "memory.csv", header, list(asdict(memory[0])), [list(asdict(p).values()) for p in memory])
    (out / "start.md").write_text(text + "\n")


# ---- main ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_start", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke check: one start of each, short settles")
    p.add_argument("--repeats", type=int, help="starts of each kind, alternating (3; quick 1)")
    p.add_argument("--actors", type=int, default=2, help="fleet size (fake=N)")
    p.add_argument("--settle-s", type=float, help="after every actor delivered, before a memory snapshot (10; quick 3)")
    p.add_argument("--idle-s", type=float, help="after the cluster started, before the idle snapshot (20; quick 5)")
    p.add_argument("--time-scale", type=float, default=20.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--actor-cpus", type=float, default=0.25, help="Ray CPUs each actor host reserves")
    p.add_argument("--timeout-s", type=float, default=300.0, help="per start, to every actor delivering")
    p.add_argument("--out", default="runs/ray_start", help="results directory")
    args = p.parse_args(argv)
    args.profile = "quick" if args.quick else "full"
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.settle_s = args.settle_s if args.settle_s is not None else (3.0 if args.quick else 10.0)
    args.idle_s = args.idle_s if args.idle_s is not None else (5.0 if args.quick else 20.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    header = results_header("ray_start")
    print("\n".join(header_lines(header)), flush=True)
    scratch = make_scratch("tdm-start-")
    ray_environment(scratch)
    progress = Progress()
    starts: list[Start] = []
    memory: list[Proc] = []
    with BenchCluster(scratch, connect=False, progress=progress) as cluster:
        warm_caches(progress)
        time.sleep(args.idle_s)
        memory += snapshot("idle, before any run", dict(zip(("head", "worker"), cluster.node_pids())))
        for repeat in range(args.repeats):
            for path in (("local", "ray") if repeat % 2 == 0 else ("ray", "local")):
                starts.append(time_start(path, repeat, cluster, args, progress, memory))
        time.sleep(args.idle_s)
        memory += snapshot("idle, after the runs", dict(zip(("head", "worker"), cluster.node_pids())))
    header["uptime at the end"] = uptime()
    text = report(starts, memory, cluster.start_s, args, header)
    print()
    print(text)
    write_results(starts, memory, args, header, text)
    print(f"\nwritten: {Path(args.out) / 'start.csv'}, memory.csv, start.md")
    return 0 if not any(s.error for s in starts) else 1


if __name__ == "__main__":
    sys.exit(main())
