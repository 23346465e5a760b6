"""ALOE's chunk inference on one CPU core against the time the actor has for it, per twin (issue 18 figure).

The actor re-plans synchronously when its queue of e actions runs dry (actor/programs/chunked.py), so a
plan must fit in one control period to keep the rate; ALOE's budget is stated as the issue asks, e control
periods: the time the executed actions of one chunk last. For each twin this builds ALOE's policy as the
learner would (`ALOE.make_policy` with the default config: h and e from the twin's control rate, 10 Euler
steps, 256x256 velocity field; random weights, the cost matters here), wraps it in the real "chunked"
program, and times the re-plan steps (`interrupt()` then `act`, i.e. batch-of-one conversion, the Euler
steps and the output check). Rows: the twin's own state observation, and the same with an added 84x84
camera through the shared conv encoder (none of the twins has a camera today). Printed: p50/p99 of one
plan, the budget e/control_hz and one period, and the ratio p99/budget (must be < 1; < 1/e means a plan
also fits inside a single period).

    python -m benchmarks.flow_inference            # every twin, 200 plans each
    python -m benchmarks.flow_inference --quick    # smoke: limo_sim and go2_sim, 20 plans, < 30 s
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch

from actor.policy import INFERENCE_THREADS
from actor.programs import make_program
from common.specs import ImageSpec, RobotSpec
from learner.algorithms import config_from_overrides
from learner.algorithms.aloe import ALOE, chunk_lengths

TWINS = "limo_sim,go2_sim,g1_sim,franka_sim,rm65_sim"
CAMERA = ImageSpec("camera", (84, 84, 3))


def observation_of(spec: RobotSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random observation of `spec` (uint8 images, float states)."""
    return {key: rng.integers(0, 256, s.shape, dtype=np.uint8) if s.dtype == "uint8"
            else rng.standard_normal(s.shape).astype(s.dtype) for key, s in spec.observation.items()}  # fmt: skip


def plan_seconds(spec: RobotSpec, plans: int, overrides: dict) -> tuple[list[float], int, int]:
    """Seconds of `plans` re-plans of ALOE's policy in the chunked program; and (h, e)."""
    config = config_from_overrides("aloe", overrides)
    chunk, execute = chunk_lengths(config, spec)
    program = make_program("chunked", ALOE.make_policy(config, spec), spec, 1, json.dumps({"execute": execute}))
    rng, seconds = np.random.default_rng(0), []
    for number in range(plans + 5):  # 5 warm-up plans (allocator, first-call dispatch)
        observation = observation_of(spec, rng)
        program.interrupt()  # an empty queue: the next act plans a chunk
        start = time.perf_counter()
        program.act(observation)
        if number >= 5:
            seconds.append(time.perf_counter() - start)
        assert program.step_kind == "replan"
    return seconds, chunk, execute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", default=TWINS, help="Twins whose specs and control rates are used.")
    parser.add_argument("--plans", type=int, default=200, help="Timed plans per row.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ALOE config override.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: limo_sim and go2_sim, 20 plans.")
    args = parser.parse_args()
    if args.quick:
        args.robots, args.plans = "limo_sim,go2_sim", 20
    overrides = dict(item.split("=", 1) for item in args.set)
    torch.manual_seed(0)
    torch.set_num_threads(INFERENCE_THREADS)  # the actor's one core
    import robots  # noqa: F401  (registers the twins)
    from robots.base import ROBOTS

    print(f"torch threads {torch.get_num_threads()}; ALOE overrides {overrides or 'none'}; {args.plans} plans per row")
    print(f"{'twin':<11} {'obs':<13} {'Hz':>4} {'h':>3} {'e':>3} {'plan p50':>9} {'p99':>8} "
          f"{'budget e/Hz':>11} {'period':>8} {'p99/budget':>10}")  # fmt: skip
    for name in args.robots.split(","):
        spec = ROBOTS.get(name)().spec
        with_camera = dataclasses.replace(spec, observation={**spec.observation, "camera": CAMERA})
        for label, row_spec in (("state", spec), ("state+84x84", with_camera)):
            seconds, chunk, execute = plan_seconds(row_spec, args.plans, overrides)
            p50, p99 = (1000.0 * float(np.percentile(seconds, q)) for q in (50, 99))
            period = 1000.0 / spec.control_hz
            print(f"{name:<11} {label:<13} {spec.control_hz:>4g} {chunk:>3} {execute:>3} {p50:>7.2f}ms {p99:>6.2f}ms "
                  f"{execute * period:>9.0f}ms {period:>6.0f}ms {p99 / (execute * period):>10.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
