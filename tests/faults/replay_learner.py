"""A real `Learner` that serves and stores but never trains, and writes sampled batches on request.

`python -m tests.faults.replay_learner PORT RUN_DIR [--resume] [--capacity N]`. It is built as the
`learner` command builds it (`Learner.start_server`: the durable journal, `Learner.store` for every
batch, `Learner._resume` on --resume) without the training loop's thread. On SIGUSR1 it samples
`SPECS` from its replay with a fixed generator and writes RUN_DIR/samples-PID.npz (atomically), so
a test can compare what a learner draws before a `kill -9` with what its resumed successor draws.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from pathlib import Path

import numpy as np

from learner.app import Learner, LearnerConfig, config_as_dict
from learner.replay import SamplingSpec

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--capacity", type=int, default=150)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s replay-learner %(levelname)s %(message)s")
    config = LearnerConfig(algo="sac", overrides={"hidden_dims": "16,16"}, port=args.port, run_dir=args.run_dir,
                           device="cpu", threads=1, metrics_port=0, replay_capacity=args.capacity,
                           replay_fsync=False, resume=args.resume)  # fmt: skip
    run_dir = Path(args.run_dir)
    if not args.resume:  # as `Learner.run` does: --resume reads the run's config back
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config_as_dict(config)))
    learner = Learner(config)
    learner.start_server()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: write_samples(learner, run_dir))
    logging.info("listening on 127.0.0.1:%d", learner.server.port)
    stop.wait()
    learner.server.close()


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


if __name__ == "__main__":
    main()
