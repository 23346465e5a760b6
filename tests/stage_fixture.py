"""A fixture algorithm with all three stage kinds: SAC plus an offline BC stage and rollouts of the BC policy.

Registered as "staged_fixture" on import: in-process tests import it, real learner and actor processes
get it through `TANDEM_PLUGINS=tests.stage_fixture`. Stages: offline "bc" (`bc_updates` behaviour-cloning
steps of a separate BC policy), rollouts "bc_rollouts" (`bc_rollouts` episodes of that policy), online.
It records its offline updates and the stages it saw end, so tests can check what the learner ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from common.specs import RobotSpec
from common.types import Batch
from learner.algorithms.base import ALGORITHMS, Stage
from learner.algorithms.sac import SAC, SACConfig

NAME = "staged_fixture"
PLUGIN_ENV = {"TANDEM_PLUGINS": "tests.stage_fixture"}


@dataclass(frozen=True)
class StagedConfig(SACConfig):
    """SAC's fields plus the stage lengths."""

    bc_updates: int = 50
    """Offline behaviour-cloning updates of the BC policy (stage "bc")."""
    bc_rollouts: int = 3
    """Training episodes acted by the BC policy before online training (stage "bc_rollouts")."""
    bc_lr: float = 1e-3
    """Adam learning rate of the BC policy."""


class StagedFixture(SAC):
    """SAC whose run begins with BC on the demonstrations and rollouts of the BC policy."""

    Config = StagedConfig

    def __init__(self, config: StagedConfig, spec: RobotSpec, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, spec, device, seed)
        with torch.random.fork_rng(devices=[]):  # seeded, without disturbing the global RNG
            torch.manual_seed(seed + 1)
            self.bc_policy = self.make_policy(config, spec).to(self.device)
        self.bc_optimizer = torch.optim.Adam(self.bc_policy.parameters(), lr=config.bc_lr)
        self.offline_updates = 0
        self.ended_stages: list[str] = []

    def stages(self) -> list[Stage]:
        return [Stage("bc", "offline", self.config.bc_updates),
                Stage("bc_rollouts", "rollouts", self.config.bc_rollouts, policy="bc"),
                Stage("online", "online", 0)]  # fmt: skip

    def offline_update(self, stage: str, batch: Batch) -> dict[str, float]:
        if stage != "bc":
            return super().offline_update(stage, batch)
        loss = (self.bc_policy(batch.observation).deterministic_action() - batch.action).square().mean()
        self.bc_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.bc_optimizer.step()
        self.offline_updates += 1
        return {"bc_loss": float(loss.detach())}

    def end_stage(self, stage: str) -> None:
        self.ended_stages.append(stage)

    @classmethod
    def make_named_policy(cls, config: Any, spec: RobotSpec, policy: str = "online") -> torch.nn.Module:
        # The BC policy has the online policy's architecture, so actors of any version can run it.
        return cls.make_policy(config, spec) if policy == "bc" else super().make_named_policy(config, spec, policy)

    def named_policy_state_dict(self, policy: str = "online") -> dict[str, torch.Tensor]:
        if policy == "bc":
            return {k: v.detach().clone() for k, v in self.bc_policy.state_dict().items()}
        return super().named_policy_state_dict(policy)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "bc_policy": self.bc_policy.state_dict(),
                "bc_optimizer": self.bc_optimizer.state_dict(), "offline_updates": self.offline_updates,
                "ended_stages": list(self.ended_stages)}  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.bc_policy.load_state_dict(state["bc_policy"])
        self.bc_optimizer.load_state_dict(state["bc_optimizer"])
        self.offline_updates = int(state["offline_updates"])
        self.ended_stages = list(state["ended_stages"])


def write_fake_demo(path: Path, episodes: int = 2, steps: int = 20) -> Path:
    """A demonstration file for the fake robot (random actions: the BC stage needs data, not skill)."""
    from common.episodes import save_episodes
    from common.types import Transition
    from robots.fake import FakeRobot

    spec, rng, items = FakeRobot().spec, np.random.default_rng(0), []
    for number in range(episodes):
        for step in range(steps):
            obs = {key: rng.uniform(-1, 1, s.shape).astype(s.dtype) for key, s in spec.observation.items()}
            items.append(Transition(obs, rng.uniform(-1, 1, spec.action.shape).astype(np.float32), 0.0, False,
                                    step == steps - 1, obs, number, step))  # fmt: skip
    return save_episodes(path, spec, items)


def ended_episodes(run_dir: Path, version: int) -> int:
    """Training episodes in RUN_DIR's durable replay whose last step acted with weights `version`."""
    from common.types import unpack_transitions
    from learner.replay.durable import read_journal, read_spec

    count, spec = 0, read_spec(Path(run_dir) / "replay")
    for record in read_journal(Path(run_dir) / "replay") if spec is not None else ():
        if record.arrays is not None:
            a = unpack_transitions(record.arrays, spec)  # either wire layout, as the learner reads it
            ended = (a["terminated"] | a["truncated"]) & (a["policy_version"] == version) & ~a["evaluation"]
            count += int(ended.sum())
    return count


if NAME not in ALGORITHMS:  # importable twice (as a plugin and from a test) without registering twice
    ALGORITHMS.register(NAME)(StagedFixture)
