"""Milliseconds per gradient update of every registered algorithm, as ratios to SAC in the same run.

    python -m benchmarks.update_cost                 # both settings, every algorithm (~3 min on 2 CPU cores)
    python -m benchmarks.update_cost --quick         # fewer updates
    python -m benchmarks.update_cost --device cuda   # on a GPU box (default: auto)
    python -m benchmarks.update_cost --algos sigent_sac,sigent_sac:ood_batch_fraction=1   # a config variant too

Settings (issue 3): state observations of 32-d with 7-d actions at batch 256, and one 64x64
grayscale camera at batch 128. Each algorithm runs with its own default config (so RLPD has 10
critics, CQL/Cal-QL 30 sampled actions per row). Batches are pre-built on the device, so the figure is
the update alone. Algorithms are timed in interleaved rounds (A B C ... A B C ...), so a load spike on
a shared machine hits all of them alike; the median over rounds is reported. Beside each figure: the
paper's Table 1 (its hardware, ms/update) and that figure as a ratio to the paper's cheapest method,
since the paper has no SAC row. Target: SigEnt-SAC <= 1.5x SAC. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from tqdm import tqdm

from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec
from common.types import Batch
from learner.algorithms import ALGORITHMS, make_algorithm
from learner.train_loop import select_device

# Table 1 of the SigEnt-SAC paper: ms per update on the authors' hardware.
PAPER_MS = {"sigent_sac": 3.13, "cal_ql": 1.51, "rlpd": 0.78, "iql": 1.31, "awac": 0.61}
TARGET_SIGENT_OVER_SAC = 1.5


def make_spec(setting: str) -> RobotSpec:
    if setting == "state":
        observation, action_dim = {"state": ArraySpec("state", (32,))}, 7
    else:
        observation, action_dim = {"camera": ImageSpec("camera", (64, 64, 1))}, 7
    action = BoundedSpec("action", (action_dim,), low=(-1.0,) * action_dim, high=(1.0,) * action_dim)
    return RobotSpec(f"bench_{setting}", observation, action, 10.0)


def make_batch(spec: RobotSpec, size: int, device: torch.device, seed: int, horizon: int = 1) -> Batch:
    """A random batch already on `device` (half demo rows; Cal-QL's mc_return included); h-step sequences
    (ALOE's chunks, every step valid) when `horizon` > 1."""
    rng = np.random.default_rng(seed)
    steps = (horizon,) if horizon > 1 else ()

    def observation():
        out = {}
        for key, s in spec.observation.items():
            if s.dtype == "uint8":
                out[key] = torch.from_numpy(rng.integers(0, 256, (size, *s.shape), dtype=np.uint8))
            else:
                out[key] = torch.from_numpy(rng.standard_normal((size, *s.shape)).astype(np.float32))
        return {k: v.to(device) for k, v in out.items()}

    def floats(values):
        return torch.from_numpy(np.asarray(values, dtype=np.float32)).to(device)

    extras = {"mc_return": floats(rng.uniform(-100, 0, size))}
    if horizon > 1:
        extras.update(valid=floats(np.ones((size, horizon))), n_step_return=floats(rng.uniform(-horizon, 0, size)),
                      bootstrap=floats(0.99**horizon * (rng.random(size) > 0.05)))  # fmt: skip
    return Batch(
        observation=observation(),
        action=floats(rng.uniform(-1, 1, (size, *steps, spec.action_dim))),
        reward=floats(rng.random((size, *steps)) < 0.05),
        terminated=floats(rng.random((size, *steps)) < 0.05),
        next_observation=observation(),
        is_demo=floats(np.arange(size) < size // 2),
        extras=extras,
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def algo_entries(text: str) -> list[str]:
    """`--algos` entries: comma-separated, except that a tuple value keeps its commas
    ("sac,sigent_sac:image_strides=2,2,1,1" is two entries)."""
    entries: list[str] = []
    for token in filter(None, text.split(",")):
        if entries and ":" in entries[-1] and token.lstrip("-").replace(".", "", 1).isdigit():
            entries[-1] += "," + token
        else:
            entries.append(token)
    return entries


def build(entry: str, spec: RobotSpec, batch_size: int, device: torch.device):
    """An algorithm from `name` or `name:KEY=VALUE[:KEY=VALUE...]` (a variant of its default config)."""
    name, *pairs = entry.split(":")
    if not all("=" in pair for pair in pairs):
        raise SystemExit(f"{entry!r}: a variant is NAME:KEY=VALUE[:KEY=VALUE]")
    overrides = dict(pair.split("=", 1) for pair in pairs)
    return make_algorithm(name, spec, {"batch_size": batch_size, **overrides}, device, seed=0)


def time_setting(setting: str, batch_size: int, names: list[str], rounds: int, per_round: int, device) -> dict:
    """Median ms/update per algorithm over interleaved rounds."""
    spec = make_spec(setting)
    algorithms = {n: build(n, spec, batch_size, device) for n in names}
    horizons = {algorithm.sampling.horizon for algorithm in algorithms.values()}
    batches_of = {h: [make_batch(spec, batch_size, device, seed, h) for seed in range(4)] for h in horizons}
    for algorithm in algorithms.values():  # warm-up: allocator, fused Adam state, lazy init
        for batch in batches_of[algorithm.sampling.horizon]:
            algorithm.update(batch)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for _ in tqdm(range(rounds), desc=f"{setting} batch {batch_size}", leave=False):
        for name, algorithm in algorithms.items():
            synchronize(device)
            start = time.perf_counter()
            batches = batches_of[algorithm.sampling.horizon]
            for i in range(per_round):
                algorithm.update(batches[i % len(batches)])
            synchronize(device)
            samples[name].append((time.perf_counter() - start) * 1000 / per_round)
    return {n: statistics.median(v) for n, v in samples.items()}


def report(setting: str, batch_size: int, ms: dict[str, float]) -> list[str]:
    base = ms["sac"]
    cheapest_paper = min(PAPER_MS.values())
    width = max(12, *(len(name) + 2 for name in ms))
    lines = [f"\n{setting} observations, batch {batch_size}",
             f"{'algorithm':<{width}}{'ms/update':>10}{'x SAC':>8}   {'paper ms':>9}{'paper x AWAC':>13}"]  # fmt: skip
    for name, value in sorted(ms.items(), key=lambda item: item[1]):
        paper = PAPER_MS.get(name)
        paper_cols = f"{paper:>9.2f}{paper / cheapest_paper:>13.2f}" if paper else f"{'-':>9}{'-':>13}"
        lines.append(f"{name:<{width}}{value:>10.2f}{value / base:>8.2f}   {paper_cols}")
    if "sigent_sac" in ms:
        ratio = ms["sigent_sac"] / base
        verdict = "met" if ratio <= TARGET_SIGENT_OVER_SAC else "MISSED"
        lines.append(f"SigEnt-SAC / SAC = {ratio:.2f} (target <= {TARGET_SIGENT_OVER_SAC}: {verdict})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.update_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads on CPU (default 1: on a shared 2-core box a second OpenMP thread stalls under load)",
    )
    parser.add_argument("--algos", default=",".join(ALGORITHMS.names()),
                        help="comma-separated; an entry may be a variant, NAME:KEY=VALUE[:KEY=VALUE]")
    parser.add_argument("--settings", default="state,image", help="state, image or both")
    parser.add_argument("--rounds", type=int, help=argparse.SUPPRESS)  # tests: a tiny smoke run
    args = parser.parse_args(argv)
    device = select_device(args.device)
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    names = algo_entries(args.algos)
    if "sac" not in names:
        names.insert(0, "sac")
    rounds, per_round = (5, 4) if args.quick else (9, 10)
    if args.rounds:
        rounds, per_round = args.rounds, 1
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{rounds} rounds x {per_round} updates, median reported")  # fmt: skip
    lines = []
    for setting in args.settings.split(","):
        batch_size = 256 if setting == "state" else 128
        ms = time_setting(setting, batch_size, names, rounds, per_round, device)
        lines += report(setting, batch_size, ms)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
