"""Milliseconds to sample 256 sequences of h = 10 from replay, as a ratio to 256 transitions from the same replay.

    python -m benchmarks.sampling            # state, 64x64 and 128x128 image replays (~2 min on 2 CPU cores)
    python -m benchmarks.sampling --quick    # smaller replays, fewer rounds (under 30 s)

Each setting fills one `ReplayBuffer` as the learner does: four actors' episodes (50 to 300 steps,
ending by termination or truncation) arriving in interleaved batches of 32 until the online ring has
wrapped, and a demo file's episodes in the demo buffer; batches mix them 50/50. Settings (issue 16):
32-d state observations, and one uint8 camera of 64x64 or 128x128 (one channel, as Tandem's robots
send). Every sampler is timed in interleaved rounds (A B C D, then D C B A, ...), so a load spike on a
shared machine hits all of them alike; the median over rounds is reported beside the transitions
baseline. Target: sequences of h = 10 <= 1.5x transitions. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from common.specs import ArraySpec, BoundedSpec, ImageSpec, RobotSpec
from common.types import transition_columns
from learner.replay import ReplayBuffer, SamplingSpec

TARGET_RATIO = 1.5
BATCH, HORIZON, ACTION_DIM, ACTORS, BATCH_ROWS = 256, 10, 7, 4, 32
SAMPLERS = {
    "transitions (baseline)": SamplingSpec(BATCH),
    f"sequences h={HORIZON}": SamplingSpec(BATCH, horizon=HORIZON),
    f"sequences h={HORIZON}, full only": SamplingSpec(BATCH, horizon=HORIZON, full_sequences=True),
    "transitions, returns-to-go": SamplingSpec(BATCH, returns_to_go=True),
}
TARGET_ROW = f"sequences h={HORIZON}"
SETTINGS = {"state": None, "image64": 64, "image128": 128}


def make_spec(setting: str) -> RobotSpec:
    size = SETTINGS[setting]
    observation = {"state": ArraySpec("state", (32,))} if size is None else {
        "image": ImageSpec("image", (size, size, 1))}  # fmt: skip
    action = BoundedSpec("action", (ACTION_DIM,), low=(-1.0,) * ACTION_DIM, high=(1.0,) * ACTION_DIM)
    return RobotSpec(f"bench_{setting}", observation, action, 10.0)


def episode_columns(spec: RobotSpec, episode: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One episode's rows with random contents (images from a small pool: filling must stay cheap)."""
    length = int(rng.integers(50, 301))
    columns = {}
    for name, column in transition_columns(spec).items():
        if column.dtype == "uint8":
            pool = rng.integers(0, 256, (16, *column.shape), dtype=np.uint8)
            columns[name] = pool[rng.integers(0, 16, length)]
        else:
            columns[name] = rng.standard_normal((length, *column.shape)).astype(column.dtype)
    columns.update(episode=np.full(length, episode), step=np.arange(length, dtype=np.int32),
                   reward=-np.ones(length, np.float32), terminated=np.zeros(length, bool),
                   truncated=np.zeros(length, bool), intervention=np.zeros(length, bool))  # fmt: skip
    columns["terminated" if rng.random() < 0.5 else "truncated"][-1] = True
    return columns


def fill(spec: RobotSpec, capacity: int, rng: np.random.Generator) -> ReplayBuffer:
    """Demo episodes, then four actors' episodes in interleaved batches until the ring has wrapped once."""
    buffer = ReplayBuffer(spec, capacity, demo_capacity=capacity)
    demo_rows = 0
    while demo_rows < capacity // 4:
        demo_rows += buffer.add_demo(episode_columns(spec, demo_rows, rng))
    pending = {actor: [] for actor in range(ACTORS)}
    added, episode = 0, 0
    while added < capacity * 1.2:
        actor = int(rng.integers(ACTORS))
        while sum(len(c["reward"]) for c in pending[actor]) < BATCH_ROWS:
            pending[actor].append(episode_columns(spec, episode, rng))
            episode += 1
        rows = {name: np.concatenate([c[name] for c in pending[actor]]) for name in pending[actor][0]}
        added += buffer.add_online({name: value[:BATCH_ROWS] for name, value in rows.items()}, f"actor-{actor}")
        pending[actor] = [{name: value[BATCH_ROWS:] for name, value in rows.items()}]
    return buffer


def time_samplers(buffer: ReplayBuffer, rounds: int, per_round: int) -> dict[str, float]:
    """Median ms per batch of each sampler over interleaved rounds (order reversed every other round)."""
    rng = np.random.default_rng(0)
    for sampling in SAMPLERS.values():  # warm-up: sampler objects, page faults on first touch
        buffer.sample(sampling, rng)
    times: dict[str, list[float]] = {name: [] for name in SAMPLERS}
    for round_ in range(rounds):
        order = list(SAMPLERS.items())
        for name, sampling in order if round_ % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            for _ in range(per_round):
                buffer.sample(sampling, rng)
            times[name].append((time.perf_counter() - start) * 1000 / per_round)
    return {name: statistics.median(values) for name, values in times.items()}


def report(setting: str, capacity: int, ms: dict[str, float]) -> list[str]:
    base = ms["transitions (baseline)"]
    lines = [f"\n{setting}: batch {BATCH}, online ring {capacity} rows (wrapped) + demo buffer, demo ratio 0.5",
             f"{'sampler':<32}{'ms/batch':>10}{'x transitions':>15}"]  # fmt: skip
    for name, value in ms.items():
        lines.append(f"{name:<32}{value:>10.3f}{value / base:>15.2f}")
    ratio = ms[TARGET_ROW] / base
    lines.append(f"{TARGET_ROW} / transitions = {ratio:.2f} (target <= {TARGET_RATIO}: "
                 f"{'met' if ratio <= TARGET_RATIO else 'MISSED'})")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sampling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller replays, fewer rounds (under 30 s)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated: state, image64, image128")
    args = parser.parse_args(argv)
    rounds, per_round = (15, 10) if args.quick else (31, 20)
    print(f"numpy {np.__version__}, {rounds} rounds x {per_round} batches per sampler, median reported")
    lines = []
    for setting in args.settings.split(","):
        if setting not in SETTINGS:
            parser.error(f"unknown setting {setting!r}; choose from {', '.join(SETTINGS)}")
        capacity = (5_000 if args.quick else 50_000) if SETTINGS[setting] != 128 else (3_000 if args.quick else 20_000)
        buffer = fill(make_spec(setting), capacity, np.random.default_rng(0))
        lines += report(setting, capacity, time_samplers(buffer, rounds, per_round))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
