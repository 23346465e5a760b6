"""Messages exchanged between actors and the learner, and the protocol version.

Every message is a dataclass with scalar fields (str, int, float, bool) and at most one field of
numpy arrays (`arrays` or `tensors`). The codec turns them into a msgpack header plus one raw frame per
array; nothing here is ever pickled.

Flow: actor DEALER -> learner ROUTER: Hello, TransitionBatch, EpisodeSummary, Heartbeat, WeightsRequest.
Learner ROUTER -> actor: Welcome, Ack, Heartbeat, Weights (the "latest please" answer).
Learner PUB -> actor SUB: Weights (every new version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PROTOCOL_VERSION = 6  # 2: Weights name their policy and program; 3: EpisodeSummary.rl_action_fraction;
# 4: Ack and Heartbeat carry the learner's newest policy version (an actor that missed one asks for it);
# 5: a TransitionBatch carries one step record per transition (common.types.step_dtype), 3 frames instead of 14;
# 6: EpisodeSummary.end_reason
READABLE_BATCH_VERSIONS = (4, 5, PROTOCOL_VERSION)  # 6 changed no batch: a 5 batch reads as a 6 one
"""TransitionBatch versions a learner still reads: an actor upgraded with batches in its spool resends them as the
old version encoded them (unpack_transitions reads their layout), where refusing them would stall it for good."""

DEFAULT_EVAL_EPISODES = 5
"""Episodes per actor evaluation block unless `--eval-episodes` says otherwise (the learner's stop-rule
check must know the block size of the actors it starts)."""


@dataclass
class Hello:
    """First message of every connection: who the actor is and what robot it drives."""

    actor_id: str
    robot: str
    spec_hash: str
    spec_json: str
    protocol_version: int = PROTOCOL_VERSION
    first_unacked_seq: int = 1  # oldest batch this actor still holds, else its next seq (0: not known yet)


@dataclass
class Welcome:
    """The learner's answer to Hello. When refused, `reason` names both sides' values."""

    accepted: bool
    reason: str = ""
    acked_seq: int = 0  # highest sequence number of this actor already in replay
    learner_spec_hash: str = ""
    policy_version: int = -1
    rehello: bool = False  # not refused: the learner lost this session (e.g. restarted); say Hello again


@dataclass
class TransitionBatch:
    """Consecutive transitions of one actor in the packed wire layout (see common.types)."""

    seq: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Ack:
    """The batch with this sequence number is in replay (or was already)."""

    seq: int
    learner_updates: int = 0  # gradient updates the learner has made (lets a simulated actor keep pace)
    policy_version: int = -1  # the learner's newest published weights version (-1: none yet)


@dataclass
class EpisodeSummary:
    """One finished episode, for progress reporting and metrics."""

    episode: int
    steps: int
    episode_return: float
    success: bool
    evaluation: bool
    outcome_source: str  # "task", "operator" or "step_limit"
    policy_version: int
    interventions: int = 0
    rl_action_fraction: float = 0.0  # share of steps a gated program ran its second (Q2RL: RL) proposal
    end_reason: str = ""  # what ended it: the task's own word ("success", "wrong_side", ...) or outcome_source


@dataclass
class Heartbeat:
    """Liveness in both directions; any message also counts as a sign of life."""

    sent_at: float = 0.0
    policy_version: int = -1  # learner -> actor: its newest published weights version (-1: none yet)


@dataclass
class WeightsRequest:
    """Ask for the latest weights now (sent at connect, so a late actor catches up at once)."""

    have_version: int = -1


@dataclass
class Weights:
    """Policy weights of one version, with what the actor needs to build the policy network."""

    version: int
    algorithm: str
    policy_config_json: str
    spec_hash: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    policy: str = "online"  # which of the algorithm's policies (`Algorithm.make_named_policy`), e.g. "bc"
    program: str = "one_step"  # the actor program that runs it: one_step, chunked, gated, ensembled
    program_config_json: str = "{}"  # that program's settings (e.g. chunk execution length, deterministic)


MESSAGE_TYPES: dict[str, type] = {
    "hello": Hello,
    "welcome": Welcome,
    "transitions": TransitionBatch,
    "ack": Ack,
    "episode": EpisodeSummary,
    "heartbeat": Heartbeat,
    "weights_request": WeightsRequest,
    "weights": Weights,
}
KIND_OF: dict[type, str] = {cls: kind for kind, cls in MESSAGE_TYPES.items()}
ARRAY_FIELDS = ("arrays", "tensors")
