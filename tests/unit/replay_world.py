"""Random multi-actor episode streams for replay tests, and a brute-force model of what replay must return.

Every row carries a unique marker (its arrival number, plus an offset per storage) in
`observation/state[0]` and `policy_version`, and `marker + 0.5` in `next_observation/state[0]`, so a
test can tell exactly which stored row each sampled step is. The model knows nothing of ring slots or
links: it keeps every row in arrival order and answers from definitions (the successor of a row is the
next row of the same actor's stream if that is the next step of the same episode; a row is stored if
it is among the newest `capacity` rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.specs import ArraySpec, BoundedSpec, RobotSpec
from common.types import Transition, transition_columns
from learner.replay import ReplayBuffer

MARKER_SCALE = 2.0**21  # markers (demo ones from DEMO_OFFSET) scaled into the normalised action range
SPEC = RobotSpec("toy", {"state": ArraySpec("state", (2,))},
                 BoundedSpec("action", (2,), low=(-1.0, -1.0), high=(1.0, 1.0)), 10.0)


@dataclass
class Row:
    actor: str
    episode: int
    step: int
    reward: float
    terminated: bool
    truncated: bool
    intervention: bool

    @property
    def ends(self) -> bool:
        return self.terminated or self.truncated


def actor_stream(rng: np.random.Generator, actor: str, episodes: int, max_length: int, sparse: bool = False
                 ) -> list[Row]:  # fmt: skip
    """One actor's rows in order: episodes that terminate, truncate, are cut (no end flag: the actor
    restarted) or lose a step; the last one may still be running. Episode ids repeat across actors.

    Rewards: per episode either all -1 (a failed sparse episode) or random integers; with `sparse`,
    -1 everywhere except 0 on a terminated last step (success), as the learner's shaped rewards are.
    """
    rows = []
    for episode in range(episodes):
        length = int(rng.integers(1, max_length + 1))
        ending = rng.choice(["terminated", "truncated", "cut"]) if episode < episodes - 1 else rng.choice(
            ["terminated", "truncated", "running"])  # fmt: skip
        constant = sparse or rng.random() < 0.5
        lost = int(rng.integers(1, length)) if length > 2 and rng.random() < 0.15 else -1
        for step in range(length):
            if step == lost:
                continue
            last = step == length - 1
            reward = -1.0 if constant else float(rng.integers(-2, 3))
            reward = 0.0 if sparse and last and ending == "terminated" else reward
            rows.append(Row(actor, episode, step, reward, bool(last and ending == "terminated"),
                            bool(last and ending == "truncated"), bool(rng.random() < 0.3)))  # fmt: skip
    return rows


def interleave(rng: np.random.Generator, streams: dict[str, list[Row]], max_batch: int) -> list[tuple[str, list[Row]]]:
    """Cut each actor's stream into batches of random sizes and interleave actors, each actor in order."""
    queues = {}
    for actor, rows in streams.items():
        cuts = np.flatnonzero(rng.random(max(0, len(rows) - 1)) < 1.0 / max_batch) + 1
        queues[actor] = [batch for batch in np.split(np.arange(len(rows)), cuts) if len(batch)]
    batches = []
    while any(queues.values()):
        actor = rng.choice(sorted(a for a, q in queues.items() if q))
        batches.append((actor, [streams[actor][i] for i in queues[actor].pop(0)]))
    return batches


def action_markers(action: np.ndarray) -> np.ndarray:
    """The row markers `to_columns` writes into each action (exact: a power-of-two scale, < 2^24 in float32)."""
    return np.rint(np.asarray(action)[..., 0] * MARKER_SCALE).astype(np.int64)


def to_columns(rows: list[Row], first_marker: int) -> dict[str, np.ndarray]:
    """Replay columns for `rows`, markers counting up from `first_marker`."""
    count = len(rows)
    columns = {name: np.zeros((count, *s.shape), s.dtype) for name, s in transition_columns(SPEC).items()}
    markers = np.arange(first_marker, first_marker + count)
    columns["observation/state"][:, 0] = markers
    columns["next_observation/state"][:, 0] = markers + 0.5
    columns["policy_version"] = markers.astype(np.int32)
    columns["action"][:, 0] = markers / MARKER_SCALE  # per step in sequence batches too (`action_markers`)
    for name in ("episode", "step", "reward", "terminated", "truncated", "intervention"):
        columns[name] = np.array([getattr(row, name) for row in rows], dtype=columns[name].dtype)
    return columns


def to_transitions(rows: list[Row], first_marker: int) -> list[Transition]:
    """The same rows as the actor records them (for the wire and the durable journal)."""
    columns = to_columns(rows, first_marker)
    return [
        Transition({"state": columns["observation/state"][i]}, columns["action"][i], row.reward, row.terminated,
                   row.truncated, {"state": columns["next_observation/state"][i]}, row.episode, row.step,
                   int(columns["policy_version"][i]), row.intervention)  # fmt: skip
        for i, row in enumerate(rows)
    ]


@dataclass
class Model:
    """What one storage must hold and answer, computed by brute force from every row ever added."""

    capacity: int
    rows: list[Row] = field(default_factory=list)
    _cache: tuple = field(default=(None, -1), repr=False)

    def add(self, rows: list[Row]) -> int:
        """Record rows; returns the marker of the first."""
        self.rows.extend(rows)
        return len(self.rows) - len(rows)

    def stored(self, marker: int) -> bool:
        return len(self.rows) - self.capacity <= marker < len(self.rows)

    def stream_next(self, marker: int) -> int | None:
        """The next row of the same actor's stream, if any."""
        return self._links()[0][marker]

    def successor(self, marker: int) -> int | None:
        return self._links()[1][marker]

    def _links(self) -> tuple[list[int | None], list[int | None], list[int | None]]:
        """Per row: next row of its actor's stream, its successor, its predecessor (recomputed after adds)."""
        if self._cache[1] != len(self.rows):
            stream: list[int | None] = [None] * len(self.rows)
            newest: dict[str, int] = {}
            for marker, row in enumerate(self.rows):
                if row.actor in newest:
                    stream[newest[row.actor]] = marker
                newest[row.actor] = marker
            succ: list[int | None] = [None] * len(self.rows)
            pred: list[int | None] = [None] * len(self.rows)
            for marker, nxt in enumerate(stream):
                row = self.rows[marker]
                if nxt is not None and not row.ends and (self.rows[nxt].episode, self.rows[nxt].step) == (
                        row.episode, row.step + 1):  # fmt: skip
                    succ[marker], pred[nxt] = nxt, marker
            self._cache = ((stream, succ, pred), len(self.rows))
        return self._cache[0]

    def sequence(self, marker: int, horizon: int) -> list[int]:
        """Markers of the valid steps from `marker` (stored successors, never past an episode's end)."""
        steps = [marker]
        while len(steps) < horizon:
            nxt = self.successor(steps[-1])
            if nxt is None or not self.stored(nxt):
                break
            steps.append(nxt)
        return steps

    def run_of(self, marker: int) -> tuple[list[int], str]:
        """The run of consecutive steps holding `marker`, and how it ended: terminated, truncated, cut, running."""
        pred = self._links()[2]
        start = marker
        while pred[start] is not None:
            start = pred[start]
        run = [start]
        while (nxt := self.successor(run[-1])) is not None:
            run.append(nxt)
        last = self.rows[run[-1]]
        if last.terminated:
            return run, "terminated"
        if last.truncated:
            return run, "truncated"
        return run, "cut" if self.stream_next(run[-1]) is not None else "running"

    def mc_return(self, marker: int, gamma: float) -> float | None:
        """Brute-force return-to-go of a row; None while its episode is running."""
        run, ending = self.run_of(marker)
        if ending == "running":
            return None
        rewards = [self.rows[m].reward for m in run]
        if ending != "terminated" and gamma < 1 and len(set(rewards)) == 1:
            return rewards[0] / (1 - gamma)
        tail = run[run.index(marker):]
        return sum(gamma**k * self.rows[m].reward for k, m in enumerate(tail))


DEMO_OFFSET = 1_000_000  # demo-buffer markers start here
DEMO_CAPACITY = 100_000


@dataclass
class World:
    """A replay buffer fed like the learner feeds it, beside brute-force models of its two storages."""

    buffer: ReplayBuffer
    online: Model
    demo: Model

    def add_online(self, rows: list[Row], actor: str) -> None:
        """One actor batch, and (as the learner does) its operator corrections copied to the demo buffer."""
        self.buffer.add_online(to_columns(rows, self.online.add(rows)), actor)
        corrections = [row for row in rows if row.intervention]
        if corrections:
            self.add_demo(corrections, actor)

    def add_demo(self, rows: list[Row], actor: str) -> None:
        self.buffer.add_demo(to_columns(rows, DEMO_OFFSET + self.demo.add(rows)), actor)

    def model_of(self, marker: int) -> tuple[Model, int]:
        """The model holding `marker`, and the row's index in it."""
        return (self.demo, marker - DEMO_OFFSET) if marker >= DEMO_OFFSET else (self.online, marker)


def build_world(seed: int, actors: int, capacity: int, episodes: int, max_length: int, max_batch: int,
                gamma: float = 0.9, demo_episodes: int = 2, sparse: bool = False) -> World:  # fmt: skip
    """A demo file's episodes, then `actors` actors' interleaved batches into a ring of `capacity` rows."""
    rng = np.random.default_rng(seed)
    world = World(ReplayBuffer(SPEC, capacity, demo_capacity=DEMO_CAPACITY, gamma=gamma), Model(capacity),
                  Model(DEMO_CAPACITY))  # fmt: skip
    if demo_episodes:
        world.add_demo(actor_stream(rng, "demo", demo_episodes, max_length, sparse), "demo")
    streams = {f"actor-{i}": actor_stream(rng, f"actor-{i}", episodes, max_length, sparse) for i in range(actors)}
    for actor, rows in interleave(rng, streams, max_batch):
        world.add_online(rows, actor)
    return world
