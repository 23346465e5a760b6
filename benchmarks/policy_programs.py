"""Control-loop period with each actor policy program against one_step, on the simulated twins (issue 16 figure).

The real `ActorLoop` drives each twin at its control rate with the reference networks of
learner/networks/programs.py (random weights: the cost matters here, not the behaviour). Programs take
turns episode by episode, so all of them share the machine's load of the same run. Per twin and program
it prints the control period p50/p99 (the time between consecutive `send_action` calls, i.e. what the
robot sees), the p99 ratio to one_step (target <= 1.1), and the program's own time per step kind
(replan: a chunk was planned in that step; queued/forward: every other step) at p50/p99.

A re-plan runs synchronously inside its control step (actor/programs/chunked.py says why); this
benchmark is the evidence that a plan fits in the period.

    python -m benchmarks.policy_programs                   # limo_sim and go2_sim at 10 Hz, real time
    python -m benchmarks.policy_programs --quick           # smoke: limo_sim, short episodes, < 30 s
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict

import numpy as np
import torch

from actor.loop import ActorLoop, LoopConfig
from actor.policy import INFERENCE_THREADS, ActingPolicy
from actor.programs import make_program
from common.specs import RobotSpec
from learner.networks.encoders import ObservationEncoder
from learner.networks.policies import TanhGaussianPolicy
from learner.networks.programs import ChunkPolicy, EnsembledPolicies, GatedPolicies

PROGRAMS = ("one_step", "chunked", "gated", "ensembled")


def make_module(program: str, spec: RobotSpec, args: argparse.Namespace) -> tuple[torch.nn.Module, dict]:
    """The reference network a program runs, and the program's settings."""
    observation, action_dim, hidden = spec.observation, spec.action_dim, args.hidden
    if program == "chunked":
        return ChunkPolicy(observation, action_dim, args.chunk, hidden), {"execute": args.execute}
    if program == "gated":
        return GatedPolicies(observation, action_dim, hidden, args.critics), {}
    if program == "ensembled":
        return EnsembledPolicies(observation, action_dim, args.chunk, hidden), {"every": args.execute}
    return TanhGaussianPolicy(ObservationEncoder(observation), action_dim, hidden), {}


class StampedRobot:
    """A robot seen through a stamp on every `send_action` (everything else passes straight through)."""

    def __init__(self, robot) -> None:
        self._robot = robot
        self.stamps: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self._robot, name)

    def send_action(self, action: np.ndarray) -> np.ndarray:
        self.stamps.append(time.perf_counter())
        return self._robot.send_action(action)


class TimedProgram(ActingPolicy):
    """A program whose every `act` is timed, by the kind of step it was."""

    def __init__(self, program: ActingPolicy) -> None:
        self.program, self.version = program, program.version
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def act(self, observation, deterministic: bool = False) -> np.ndarray:
        start = time.perf_counter()
        action = self.program.act(observation, deterministic)
        self.seconds[self.program.step_kind].append(time.perf_counter() - start)
        self.proposal, self.step_kind = self.program.proposal, self.program.step_kind
        return action

    def interrupt(self) -> None:
        self.program.interrupt()

    @property
    def mid_chunk(self) -> bool:
        return self.program.mid_chunk


def run_episode(robot: StampedRobot, program: TimedProgram, time_scale: float) -> list[float]:
    """One training episode of `program`; the control periods inside it (the reset's gap excluded)."""
    robot.stamps.clear()
    offer = lambda version: program if version < program.version else None  # noqa: E731
    loop = ActorLoop(robot, robot.task, lambda _item: None, offer, LoopConfig(episodes=1, time_scale=time_scale),
                     "bench")  # fmt: skip
    loop.run()
    return list(np.diff(robot.stamps))


def measure_twin(name: str, args: argparse.Namespace) -> dict[str, dict]:
    """Interleaved episodes of every program on twin `name`; periods and program times per program."""
    import robots  # noqa: F401  (registers the twins)
    from robots.base import ROBOTS

    robot = StampedRobot(ROBOTS.get(name)(max_steps=args.steps))
    programs = {}
    for number, program in enumerate(PROGRAMS, start=1):
        module, settings = make_module(program, robot.spec, args)
        programs[program] = TimedProgram(make_program(program, module, robot.spec, number, json.dumps(settings)))
    periods: dict[str, list[float]] = defaultdict(list)
    with robot._robot:
        robot.enable()
        for _ in range(args.rounds):
            for program, timed in programs.items():
                periods[program] += run_episode(robot, timed, args.time_scale)
    return {p: {"periods": periods[p], "seconds": programs[p].seconds} for p in PROGRAMS}


def ms(values: list[float], q: float) -> float:
    return 1000.0 * float(np.percentile(values, q)) if values else float("nan")


def report(name: str, hz: float, results: dict[str, dict]) -> None:
    base_p99 = ms(results["one_step"]["periods"], 99)
    print(f"\n{name} at {hz:g} Hz (target period {1000 / hz:.1f} ms)")
    header = f"{'program':<10} {'steps':>6} {'period p50':>11} {'p99':>8} {'p99/one_step':>13}"
    print(header + "   program time p50/p99 (ms)")
    for program, result in results.items():
        periods = result["periods"]
        times = "  ".join(f"{kind} {ms(s, 50):.2f}/{ms(s, 99):.2f}" for kind, s in sorted(result["seconds"].items()))
        print(f"{program:<10} {len(periods):>6} {ms(periods, 50):>9.2f}ms {ms(periods, 99):>6.2f}ms "
              f"{ms(periods, 99) / base_p99:>12.3f}x   {times}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", default="limo_sim,go2_sim", help="Twins to drive, comma-separated.")
    parser.add_argument("--rounds", type=int, default=5, help="Episodes of each program, taken in turns.")
    parser.add_argument("--steps", type=int, default=100, help="Steps per episode (the task's max_steps).")
    parser.add_argument("--time-scale", type=float, default=1.0, help="Faster than real time (1: the twins' rates).")
    parser.add_argument("--hidden", type=lambda s: tuple(int(x) for x in s.split(",")), default=(256, 256))
    parser.add_argument("--chunk", type=int, default=10, help="Chunk length h (chunked; ensembled's base).")
    parser.add_argument("--execute", type=int, default=5, help="Actions executed per chunk / steps per base re-plan.")
    parser.add_argument("--critics", type=int, default=10, help="Critics valuing the gated program's second policy.")
    parser.add_argument("--threads", type=int, default=INFERENCE_THREADS, help="Torch threads (the actor uses 1).")
    parser.add_argument("--quick", action="store_true", help="Smoke run: limo_sim, 2 rounds of 20-step episodes.")
    args = parser.parse_args()
    if args.quick:
        args.robots, args.rounds, args.steps = "limo_sim", 2, 20
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}; hidden {args.hidden}, chunk {args.chunk}, "
          f"execute/every {args.execute}, critics {args.critics}, time scale {args.time_scale:g}")  # fmt: skip
    for name in args.robots.split(","):
        results = measure_twin(name, args)
        from robots.base import ROBOTS

        report(name, ROBOTS.get(name)().spec.control_hz * args.time_scale, results)


if __name__ == "__main__":
    main()
