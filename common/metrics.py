"""Every Prometheus metric Tandem exports, declared once. The names are an interface: dashboards use them.

Conventions: `tandem_` prefix, the process role next, base units in the name (`_seconds`, `_bytes`,
`_total`), and `actor_id` / `robot` labels wherever a value belongs to one actor.

A process calls `serve(port)`, then `init_actor(...)` or `init_learner()`: its series then exist from 0
and /metrics shows only its own role's `tandem_*` families. deploy/grafana/build_dashboard.py may name
only what `exported_names()` lists (tested).
"""

from __future__ import annotations

import logging
import os

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

log = logging.getLogger(__name__)

ACTOR = ("actor_id", "robot")
_PERIOD_BUCKETS = (0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1.0)
_FAST_BUCKETS = (0.0001, 0.0003, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)

# ---- actor -------------------------------------------------------------------------------------
ACTOR_CONTROL_PERIOD = Histogram(
    "tandem_actor_control_period_seconds", "Wall time between control ticks", ACTOR, buckets=_PERIOD_BUCKETS
)
ACTOR_CONTROL_OVERRUNS = Counter("tandem_actor_control_overruns_total", "Control ticks that overran", ACTOR)
ACTOR_TRANSITIONS_SENT = Counter("tandem_actor_transitions_sent_total", "Transitions sent (incl. resends)", ACTOR)
ACTOR_TRANSITIONS_ACKED = Counter("tandem_actor_transitions_acked_total", "Transitions acked by the learner", ACTOR)
ACTOR_TRANSITIONS_DROPPED = Counter(
    "tandem_actor_transitions_dropped_total", "Transitions dropped because the send queue was full", ACTOR
)
ACTOR_BYTES_SENT = Counter("tandem_actor_bytes_sent_total", "Payload bytes sent to the learner", ACTOR)
ACTOR_QUEUE_DEPTH = Gauge("tandem_actor_send_queue_depth", "Transitions waiting for the sender thread", ACTOR)
ACTOR_UNACKED = Gauge("tandem_actor_unacked_transitions", "Transitions sent but not yet acked", ACTOR)
ACTOR_POLICY_VERSION = Gauge("tandem_actor_policy_version", "Version of the weights acting now", ACTOR)
ACTOR_LEARNER_CONNECTED = Gauge("tandem_actor_learner_connected", "1 while the learner answers", ACTOR)
ACTOR_RECONNECTS = Counter("tandem_actor_reconnects_total", "Reconnections to the learner", ACTOR)
ACTOR_EPISODES = Counter("tandem_actor_episodes_total", "Finished episodes", ACTOR + ("outcome", "mode"))
ACTOR_EPISODE_RETURN = Gauge("tandem_actor_episode_return", "Return of the last episode", ACTOR + ("mode",))
ACTOR_EPISODE_LENGTH = Gauge("tandem_actor_episode_length_steps", "Length of the last episode", ACTOR + ("mode",))
ACTOR_INTERVENTIONS = Counter("tandem_actor_intervention_steps_total", "Steps driven by the operator", ACTOR)
ACTOR_SAFETY_STOPS = Counter("tandem_actor_safety_stops_total", "Actions replaced by a stop", ACTOR + ("reason",))
ACTOR_SPOOLED = Counter(
    "tandem_actor_transitions_spooled_total", "Transitions sealed into batches in the disk spool", ACTOR
)
ACTOR_SPOOL_DEPTH = Gauge("tandem_actor_spool_transitions", "Transitions waiting in the disk spool", ACTOR)
ACTOR_SPOOL_BYTES = Gauge("tandem_actor_spool_bytes", "Bytes of unacked batches in the disk spool", ACTOR)
ACTOR_BATCHES_RESENT = Counter("tandem_actor_batches_resent_total", "Batches sent again after a reconnect", ACTOR)

# Policy programs (actor/programs): inference time per control step and who proposed each executed action.
# Buckets are fine from 0.1 to 50 ms, so histogram_quantile gives a readable p50/p99 of small CPU networks.
_INFERENCE_BUCKETS = (0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01,
                      0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)  # fmt: skip
INFERENCE_STEPS = ("forward", "replan", "queued")
"""`step` label: a network ran for this action / a chunk was planned / the action came from a queue."""
ACTOR_POLICY_INFERENCE = Histogram(
    "tandem_actor_policy_inference_seconds", "Policy program time per control step, by step kind",
    ACTOR + ("step",), buckets=_INFERENCE_BUCKETS,
)  # fmt: skip
PROPOSALS = ("single", "first", "second", "operator")
"""`proposal` label: a program without a choice / a gated program's first (BC) or second (RL) / teleop."""
ACTOR_PROPOSALS = Counter(
    "tandem_actor_proposal_actions_total", "Executed actions by who proposed them", ACTOR + ("proposal",)
)

# ---- learner -----------------------------------------------------------------------------------
LEARNER_TRANSITIONS_RECEIVED = Counter(
    "tandem_learner_transitions_received_total", "Transitions stored in replay", ACTOR
)
LEARNER_BYTES_RECEIVED = Counter("tandem_learner_bytes_received_total", "Bytes of accepted messages", ACTOR)
LEARNER_REJECTED = Counter("tandem_learner_rejected_messages_total", "Messages dropped, by reason", ("reason",))
LEARNER_DUPLICATES = Counter("tandem_learner_duplicate_batches_total", "Batches already in replay", ACTOR)
LEARNER_ACTORS_CONNECTED = Gauge("tandem_learner_actors_connected", "Actors heard from recently")
LEARNER_REPLAY_SIZE = Gauge("tandem_learner_replay_size", "Transitions in replay", ("buffer",))
LEARNER_UPDATES = Counter("tandem_learner_updates_total", "Gradient updates")
LEARNER_UPDATE_SECONDS = Histogram(
    "tandem_learner_update_seconds", "Time per gradient update", buckets=_FAST_BUCKETS + (2.5, 5.0)
)
LEARNER_POLICY_VERSION = Gauge("tandem_learner_policy_version", "Latest published weights version")
LEARNER_WEIGHTS_BYTES = Gauge("tandem_learner_weights_bytes", "Size of one published weights message")
LEARNER_STALENESS = Histogram(
    "tandem_learner_transition_staleness_versions",
    "Published version minus the oldest version that acted in a received batch",
    ACTOR,
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 1000),
)
LEARNER_TRAIN_METRIC = Gauge("tandem_learner_train_metric", "Values returned by algorithm.update()", ("name",))
LEARNER_EPISODE_SUCCESS = Gauge(
    "tandem_learner_episode_success_rate", "Success rate over the last 20 episodes", ACTOR + ("mode",)
)
LEARNER_REPLAY_DISK_BYTES = Gauge("tandem_learner_replay_disk_bytes", "Bytes of durable replay segments on disk")
LEARNER_REPLAY_CORRUPT = Counter(
    "tandem_learner_replay_corrupt_records_total", "Torn or corrupt replay records skipped at resume"
)
# Training stages (learner/stages.py): which one runs, its name and kind, and how far it is.
LEARNER_STAGE = Gauge("tandem_learner_stage", "Number of the training stage running (1-based; 0 once all completed)")
LEARNER_STAGE_INFO = Gauge("tandem_learner_stage_info", "1 for the stage running, 0 for the others", ("stage", "kind"))
LEARNER_STAGE_DONE = Gauge("tandem_learner_stage_done", "Progress inside the running stage: updates or episodes")
LEARNER_CHECKPOINT_SECONDS = Histogram(
    "tandem_learner_checkpoint_seconds", "Time to write one checkpoint", buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30)
)


# Label values that exist from the start, so a dashboard shows 0 rather than "no data" before the first event.
SAFETY_STOP_REASONS = ("policy_output", "watchdog")
EPISODE_OUTCOMES = ("success", "failure")
EPISODE_MODES = ("train", "eval")
REJECT_REASONS = (
    "handshake_refused", "unknown_actor", "sequence_gap", "invalid_batch", "unexpected_kind",  # learner/server.py
    "empty", "too_large", "malformed_frame", "header_too_large", "malformed_header", "unknown_kind",  # codec
    "version", "bad_fields", "frame_count", "bad_shape", "size_mismatch", "bad_dtype",
    "unauthorized_key", "identity_mismatch", "handshake_failed", "handshake_failed_protocol",  # CURVE
)  # fmt: skip
METRICS_ADDRESS_ENV = "TANDEM_METRICS_ADDRESS"  # e.g. 0.0.0.0 in a container or on a robot scraped over the network


_roles: set[str] = set()  # "actor" / "learner" once init_* ran: /metrics then serves only those roles' series


def init_actor(actor_id: str, robot: str) -> None:
    """Declare this process an actor and create its series at 0 (an unfired counter would be absent)."""
    _roles.add("actor")
    labels = (actor_id, robot)
    for metric in _metrics():  # the actor's own metrics only: the learner's per-actor ones live in the learner
        if metric._name.startswith("tandem_actor_") and metric._labelnames == ACTOR:
            metric.labels(*labels)
    for reason in SAFETY_STOP_REASONS:
        ACTOR_SAFETY_STOPS.labels(*labels, reason)
    for step in INFERENCE_STEPS:
        ACTOR_POLICY_INFERENCE.labels(*labels, step)
    for proposal in PROPOSALS:
        ACTOR_PROPOSALS.labels(*labels, proposal)
    for mode in EPISODE_MODES:
        for outcome in EPISODE_OUTCOMES:
            ACTOR_EPISODES.labels(*labels, outcome, mode)


def init_learner() -> None:
    """Declare this process the learner and create its label-keyed series at 0 (rejection reasons, buffers)."""
    _roles.add("learner")
    for reason in REJECT_REASONS:
        LEARNER_REJECTED.labels(reason)
    for buffer in ("online", "demo"):
        LEARNER_REPLAY_SIZE.labels(buffer)


def _metrics() -> list[MetricWrapperBase]:
    """Every metric declared in this module. (`_name`, `_type` and `_labelnames`, read below, are
    prometheus_client attributes without a public accessor; stable since its first releases.)"""
    return [value for value in globals().values() if isinstance(value, MetricWrapperBase)]


_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def exported_names() -> set[str]:
    """Every sample name Tandem can export (what a PromQL expression may mention), from the declarations above."""
    return {metric._name + suffix for metric in _metrics() for suffix in _SAMPLE_SUFFIXES[metric._type]}


class _RoleView:
    """What /metrics serves: the default registry without the tandem_* families of roles this process is not
    (every process declares every metric, and an actor exporting `tandem_learner_updates_total 0` would
    mislead a dashboard). Before any init_* call everything is served."""

    def collect(self):
        prefixes = tuple(f"tandem_{role}_" for role in _roles)
        for family in REGISTRY.collect():
            if not prefixes or not family.name.startswith("tandem_") or family.name.startswith(prefixes):
                yield family


def serve(port: int, address: str | None = None) -> bool:
    """Serve /metrics on `port` (0 disables). A busy port is logged, not fatal: training matters more.

    The address defaults to loopback, or to $TANDEM_METRICS_ADDRESS when set (containers, robots).
    """
    if port <= 0:
        return False
    address = address or os.environ.get(METRICS_ADDRESS_ENV, "127.0.0.1")
    try:
        start_http_server(port, addr=address, registry=_RoleView())
    except OSError as exc:
        log.warning("metrics: cannot listen on %s:%d (%s); continuing without /metrics", address, port, exc)
        return False
    return True
