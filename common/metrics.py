"""Every Prometheus metric Tandem exports, declared once. The names are an interface: dashboards use them.

Conventions: `tandem_` prefix, the process role next, base units in the name (`_seconds`, `_bytes`,
`_total`), and `actor_id` / `robot` labels wherever a value belongs to one actor.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

ACTOR = ("actor_id", "robot")
_PERIOD_BUCKETS = (0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1.0)
_FAST_BUCKETS = (0.0001, 0.0003, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)

# ---- actor -------------------------------------------------------------------------------------
ACTOR_CONTROL_PERIOD = Histogram(
    "tandem_actor_control_period_seconds", "Wall time between control ticks", ACTOR, buckets=_PERIOD_BUCKETS
)
ACTOR_CONTROL_OVERRUNS = Counter("tandem_actor_control_overruns_total", "Control ticks that overran", ACTOR)
ACTOR_POLICY_INFERENCE = Histogram(
    "tandem_actor_policy_inference_seconds", "Policy forward pass time", ACTOR, buckets=_FAST_BUCKETS
)
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


def serve(port: int, address: str = "127.0.0.1") -> bool:
    """Serve /metrics on `port` (0 disables). A busy port is logged, not fatal: training matters more."""
    if port <= 0:
        return False
    try:
        start_http_server(port, addr=address)
    except OSError as exc:
        log.warning("metrics: cannot listen on %s:%d (%s); continuing without /metrics", address, port, exc)
        return False
    return True
