"""Does CSIL's coherent reward tell a successful episode from a failed one?

    python -m benchmarks.coherent_reward_probe RUN_DIR [RUN_DIR ...]

For each finished CSIL / CSIL++ run: every training transition in its durable replay is scored with the coherent
log-ratio alpha_r (log pi(a|s) - log p(a)) twice, under the frozen BC policy (the reward the run started from)
and under the refined reward network of its latest checkpoint (the reward it ended with). Per episode the mean
per-step reward; printed per run: the means over successful and failed episodes (success: the task's sparse
reward, stored in replay as the actor saw it, reached 1.0; a failure may also end terminated, e.g. leaving the
arena) and the AUC, the chance that a successful episode outscores a failed one (0.5:
the reward does not tell them apart).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from common.types import OBS_PREFIX
from learner.algorithms import make_algorithm
from learner.algorithms.csil import coherent_reward
from learner.checkpoint import latest_checkpoint, load_checkpoint
from learner.replay.durable import read_spec, restore


def auc(higher: np.ndarray, lower: np.ndarray) -> float:
    """P(a value of `higher` > one of `lower`), ties counting half (the Mann-Whitney AUC); NaN if either is empty."""
    higher, lower = np.asarray(higher, dtype=float), np.asarray(lower, dtype=float)
    if not len(higher) or not len(lower):
        return float("nan")
    diff = higher[:, None] - lower[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def episode_means(reward: np.ndarray, episode: np.ndarray, succeeded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean per-step `reward` of each successful episode (one of its rows `succeeded`) and of each failed one."""
    success, failure = [], []
    for e in np.unique(episode):
        rows = episode == e
        (success if succeeded[rows].any() else failure).append(float(reward[rows].mean()))
    return np.array(success), np.array(failure)


def replay_columns(run_dir: Path, spec) -> dict[str, np.ndarray]:
    """Every online transition in the run's durable replay, as columns."""
    parts: dict[str, list[np.ndarray]] = {}

    def keep(_actor_id: str, columns: dict) -> None:
        for name, column in columns.items():
            parts.setdefault(name, []).append(column)

    restore(run_dir / "replay", spec, keep)
    return {name: np.concatenate(columns) for name, columns in parts.items()}


def probe(run_dir: Path) -> dict:
    """The figures of one run (see the module doc)."""
    config = json.loads((run_dir / "config.json").read_text())
    spec = read_spec(run_dir / "replay")
    algorithm = make_algorithm(config["algo"], spec, config["overrides"], torch.device("cpu"), 0)
    state, _ = load_checkpoint(latest_checkpoint(run_dir))
    algorithm.load_state_dict(state["algorithm"])
    columns = replay_columns(run_dir, spec)
    observation = {k[len(OBS_PREFIX):]: torch.as_tensor(v) for k, v in columns.items() if k.startswith(OBS_PREFIX)}
    action = torch.as_tensor(columns["action"])
    with torch.no_grad():
        rewards = {"bc": coherent_reward(algorithm.nets.prior(observation), action, algorithm.reward_scale).numpy(),
                   "refined": algorithm.log_ratio_reward(observation, action).numpy()}  # fmt: skip
    figures = {"run": run_dir.name}
    for name, reward in rewards.items():
        success, failure = episode_means(reward, columns["episode"], columns["reward"] >= 1.0)
        figures.update({"episodes": (len(success), len(failure)), f"{name}_success": float(np.mean(success)),
                        f"{name}_failure": float(np.mean(failure)), f"{name}_auc": auc(success, failure)})
    return figures


def markdown(rows: list[dict]) -> str:
    lines = ["| run | episodes (success / failure) | BC reward: success / failure per step | AUC | "
             "refined reward: success / failure | AUC |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['episodes'][0]} / {r['episodes'][1]} | {r['bc_success']:.3g} / "
                     f"{r['bc_failure']:.3g} | {r['bc_auc']:.2f} | {r['refined_success']:.3g} / "
                     f"{r['refined_failure']:.3g} | {r['refined_auc']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coherent_reward_probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="finished CSIL / CSIL++ run directories")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(markdown([probe(run) for run in args.runs]))


if __name__ == "__main__":
    main()
