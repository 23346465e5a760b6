"""Joining a Ray cluster as a driver, and choosing nodes.

Token authentication: Ray 2.60 turns it on when RAY_AUTH_MODE=token or when a token file exists
(~/.ray/auth_token, or RAY_AUTH_TOKEN_PATH); the driver needs the same token as the cluster. Tandem never
turns it off. Usage statistics stay off (no call home from a lab's cluster).
"""

from __future__ import annotations

import os

import ray

NAMESPACE = "tandem"  # every named Ray actor of a Tandem run lives here


def connect(address: str) -> None:
    """Join the cluster at ADDRESS ("auto": the one this machine belongs to) as a driver."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    ray.init(address=address, namespace=NAMESPACE, logging_level="WARNING", log_to_driver=False)


def alive_nodes() -> list[dict]:
    return [node for node in ray.nodes() if node["Alive"]]


def gpu_node() -> dict | None:
    """An alive node with a GPU (the most GPUs first), or None."""
    with_gpus = [node for node in alive_nodes() if node["Resources"].get("GPU", 0) >= 1]
    return max(with_gpus, key=lambda node: node["Resources"]["GPU"], default=None)


def this_node_id() -> str:
    """The node the driver runs on."""
    return ray.get_runtime_context().get_node_id()
