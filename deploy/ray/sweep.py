"""`benchmarks.one_demo --ray ADDR`: a sweep's runs as Ray tasks, merged into the same table and curves.

Each run is one Ray task holding its CPUs (a learner core plus its actors) and, on a cluster with GPUs, a
GPU. The task runs one_demo's own `execute()` on its node: the learner subprocess with its local training
and evaluation actors, exactly as a local sweep runs it, with ports picked free on that node. Its run
directory lives in node-local scratch; the task returns the directory's small result files (episodes.csv,
summary.json, run_info.json, train_metrics.csv, config.json, plots, logs: some hundred KB) as bytes. That is
control-plane metadata, so the object store is fine for it; replay/ and checkpoints/ are big and stay on the
node (run_info.json's "ray" entry says where). The driver writes the files under OUT/RUN and reads them back
with one_demo's read_existing(), the reader of --keep-finished and --report-only, so the figures are those
of a local sweep.

Assumption: every node has this repository at the same path as the driver (the deploy image does, and the
Python environment beside it). A `ray start` worker inherits the cwd and environment of its `ray start`,
which need not include the repository, so the tasks get PYTHONPATH=<repo root> through their runtime_env:
it reaches the learner subprocess and its actors too, which Ray's own sys.path entry for the driver's cwd
would not (and an installed copy elsewhere would be imported instead). A working_dir upload would send the
repository through the GCS (100 MB at most) on every sweep.

A task that fails (an exception on its node, or its worker or node lost after one retry) is reported by name
and the sweep goes on; a learner failing inside a run is a finished run whose figures show it, as locally.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path, PurePosixPath

import ray
from tqdm import tqdm

from benchmarks.one_demo import Profile, RunResult, RunSpec, execute, read_existing
from deploy.ray.cluster import alive_nodes, connect

REPO = Path(__file__).resolve().parents[2]  # the same path on every node (see the module docstring)
NODE_LOCAL = ("replay", "checkpoints")  # big, and only useful on the node that wrote them
MAX_FILE_BYTES = 16 << 20  # a file beyond this (an image run's policy, say) stays on the node, named in the log
# The files the report reads: removed from OUT/RUN before a new result is written, so that a stale one from an
# earlier attempt is never read as this run's when this run did not write it (a learner that died early).
REPORT_FILES = ("episodes.csv", "summary.json", "run_info.json", "train_metrics.csv", "config.json")


def collect(run_dir: Path) -> tuple[dict[str, bytes], list[str]]:
    """A run directory's result files as {relative posix path: bytes} (replay/ and checkpoints/ skipped), and
    the files left out for their size."""
    files, too_big = {}, []
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if not path.is_file() or relative.parts[0] in NODE_LOCAL:
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            too_big.append(relative.as_posix())
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files, too_big


def unpack(files: dict[str, bytes], run_dir: Path) -> None:
    """Write a run's returned files under `run_dir`, replacing what an earlier attempt left there."""
    for name in files:  # checked before anything is written: a path must stay inside run_dir
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
            raise ValueError(f"refusing to write {name!r} outside {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        if name not in files:
            (run_dir / name).unlink(missing_ok=True)
    for name, data in files.items():
        path = run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def default_gpus_per_run(cluster_resources: dict[str, float]) -> float:
    """1 if the cluster lists a GPU, else 0 (a task without GPUs sees none: Ray empties CUDA_VISIBLE_DEVICES)."""
    return 1.0 if cluster_resources.get("GPU", 0) > 0 else 0.0


def check_fits(cpus: float, gpus: float, nodes: list[dict]) -> None:
    """Refuse a per-run need no alive node can meet: Ray would keep such tasks pending for ever."""
    if not any(n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus for n in nodes):
        offered = [(n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes]
        raise SystemExit(f"no Ray node offers {cpus:g} CPUs and {gpus:g} GPUs for a run; nodes (CPU, GPU): {offered}")


def sweep_key(out: Path) -> str:
    """The scratch subdirectory of a sweep: its --out's name and a digest of its path (two sweeps never mix)."""
    resolved = out.resolve()
    return f"{resolved.name}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:10]}"


def run_on_node(run: RunSpec, profile: Profile, scratch: str | None, key: str) -> dict:
    """The body of one run's Ray task: execute() into node-local scratch, then the run's small files."""
    root = Path(scratch or Path(tempfile.gettempdir()) / "tandem_sweep") / key
    run_dir = root / run.name
    shutil.rmtree(run_dir, ignore_errors=True)  # a retried or repeated run must not ship an earlier one's files
    log = io.StringIO()
    with redirect_stdout(log):  # execute's messages go back to the driver, with the host
        # --parent-pid: a learner whose task's worker dies (node lost, sweep interrupted) exits with it
        execute(run, root, profile, _node_slots(), learner_args=("--parent-pid", str(os.getpid())))
    placement = _record_placement(run_dir, scratch_dir=str(run_dir))
    files, too_big = collect(run_dir) if run_dir.exists() else ({}, [])
    for name in too_big:
        print(f"{run.name}: {name} is over {MAX_FILE_BYTES >> 20} MB; left on the node in {run_dir}", file=log)
    return {"host": placement["host"], "files": files, "log": log.getvalue()}


def _node_slots() -> int:
    """Runs of this size the node holds at a time (run_info's "parallel": the load the run shared its node with)."""
    context = ray.get_runtime_context()
    node = next(n for n in alive_nodes() if n["NodeID"] == context.get_node_id())
    return max(1, int(node["Resources"].get("CPU", 1) // max(context.get_assigned_resources().get("CPU", 1), 1)))


def _record_placement(run_dir: Path, scratch_dir: str) -> dict:
    """Add where the run ran to its run_info.json (execute wrote it; absent if the run was skipped)."""
    context = ray.get_runtime_context()
    placement = {"host": socket.gethostname(), "node_id": context.get_node_id(), "worker_pid": os.getpid(),
                 "scratch": scratch_dir, "resources": context.get_assigned_resources()}  # fmt: skip
    info_path = run_dir / "run_info.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        info_path.write_text(json.dumps({**info, "ray": placement}, indent=2))
    return placement


def run_sweep(runs: list[RunSpec], out: Path, profile: Profile, address: str, cpus_per_run: float = 2.0,
              gpus_per_run: float | None = None, scratch: str | None = None) -> dict[str, RunResult]:
    """Run `runs` as Ray tasks on the cluster at `address`; their files land in OUT/RUN as a local sweep's do.

    Returns {run name: result} of the runs that produced one; failed tasks are reported by name and left out.
    `gpus_per_run` None: 1 if the cluster has a GPU, else 0 (a fraction lets learners share one).
    `scratch`: the nodes' scratch root (default: their temp dir's tandem_sweep/)."""
    if not runs:  # everything already finished (--keep-finished): no cluster needed
        return {}
    connect(address)
    gpus = default_gpus_per_run(ray.cluster_resources()) if gpus_per_run is None else gpus_per_run
    check_fits(cpus_per_run, gpus, alive_nodes())
    task = ray.remote(run_on_node).options(
        num_cpus=cpus_per_run, num_gpus=gpus, max_retries=1,  # a retry for a lost worker or node, not for errors
        scheduling_strategy="SPREAD",  # even load over the nodes while the cluster is not full: fairer wall times
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )  # fmt: skip
    key = sweep_key(out)
    pending = {task.remote(run, profile, scratch, key): run for run in runs}
    print(f"{len(runs)} runs on Ray at {address}: {cpus_per_run:g} CPUs and {gpus:g} GPUs each", flush=True)
    results: dict[str, RunResult] = {}
    with tqdm(total=len(runs), unit="run", desc="sweep", file=sys.stderr) as bar:
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)  # blocks until a run ends
            run = pending.pop(done)
            result = _merge(run, done, out, profile)
            if result is not None:
                results[run.name] = result
                bar.set_postfix_str(result.one_line(), refresh=False)
            bar.update(1)
    return results


def _merge(run: RunSpec, ref, out: Path, profile: Profile) -> RunResult | None:
    """One finished task: its files into OUT/RUN, its node's messages printed, its figures read back."""
    try:
        outcome = ray.get(ref)
    except ray.exceptions.RayError as error:  # the task raised, or its worker or node was lost twice
        lines = str(error).strip().splitlines()
        tqdm.write(f"{run.name}: failed on Ray: {type(error).__name__}: {lines[-1] if lines else ''}", file=sys.stdout)
        return None
    unpack(outcome["files"], out / run.name)
    for line in outcome["log"].splitlines():
        tqdm.write(f"[{outcome['host']}] {line}", file=sys.stdout)
    return read_existing(run, out, profile, quiet=True)
