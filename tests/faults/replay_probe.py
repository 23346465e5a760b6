"""The real `learner` CLI with two test hooks: `python -m tests.faults.replay_probe LEARNER_ARGS...`.

Everything is the CLI's own (argument parsing, `Learner.run`, the server, the durable journal,
`--resume` reading the run back after a `kill -9`) except:
- a fresh run's replay holds `CAPACITY` transitions (the CLI's default is 1,000,000): a small ring makes
  a test cover wrap-around, and `--resume` keeps it from the run's config like any resumed field;
- SIGUSR1 samples `SPECS` from the replay with a fixed generator and writes RUN_DIR/samples-PID.npz
  (atomically), so a test can compare what a learner draws before a `kill -9` with what its resumed
  successor draws.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np

from learner.__main__ import main
from learner.app import Learner
from learner.replay import SamplingSpec

CAPACITY = 150
GAMMA = 0.99  # SAC's, which the learner gives its replay for returns-to-go
SPECS = {
    "transitions": SamplingSpec(64, demo_ratio=0.25),
    "returns": SamplingSpec(64, gamma=GAMMA, returns_to_go=True),
    "sequences": SamplingSpec(64, horizon=5, gamma=GAMMA),
    "full_sequences": SamplingSpec(64, horizon=5, gamma=GAMMA, full_sequences=True, returns_to_go=True),
}
SEED = 7


def sample_arrays(learner: Learner) -> dict[str, np.ndarray]:
    """Every SPECS batch, flattened to `name/field` arrays."""
    out = {}
    for name, sampling in SPECS.items():
        batch = learner.replay.sample(sampling, np.random.default_rng(SEED))
        fields = {"action": batch.action, "reward": batch.reward, "terminated": batch.terminated,
                  "is_demo": batch.is_demo, **batch.extras,
                  **{f"observation.{k}": v for k, v in batch.observation.items()},
                  **{f"next_observation.{k}": v for k, v in batch.next_observation.items()}}  # fmt: skip
        out.update({f"{name}/{key}": value for key, value in fields.items()})
    return out


def write_samples(learner: Learner, run_dir: Path) -> None:
    try:
        arrays = sample_arrays(learner)
    except Exception:  # reported in the log the test reads, never a crash of the process under test
        logging.exception("sampling failed")
        return
    path = run_dir / f"samples-{os.getpid()}.npz"
    with open(path.with_suffix(".tmp"), "wb") as file:
        np.savez(file, **arrays)
    path.with_suffix(".tmp").rename(path)
    logging.info("wrote %s", path.name)


def install_hooks() -> None:
    build, start_server = Learner.__init__, Learner.start_server

    def small_replay(self: Learner, config, launcher=None) -> None:
        build(self, config if config.resume else replace(config, replay_capacity=CAPACITY), launcher)

    def with_sampling(self: Learner) -> None:
        start_server(self)  # in the main thread, where signal handlers are installed
        signal.signal(signal.SIGUSR1, lambda *_: write_samples(self, self.run_dir))

    Learner.__init__, Learner.start_server = small_replay, with_sampling


if __name__ == "__main__":
    install_hooks()
    main()
