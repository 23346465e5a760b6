"""One real two-node Ray cluster per test session, started as a user starts one (`ray start`), and torn down
with a check that no Ray process is left behind."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from common.ports import free_port_pair

HEAD, WORKER = "tandem_head", "tandem_worker"  # each node's own custom resource

# Token authentication stays on. Ray reads the token settings once per process, so they are in the
# environment before anything here imports ray (test modules are imported after this conftest).
_TOKEN_DIR = Path(tempfile.mkdtemp(prefix="tandem-ray-token-"))
TOKEN = _TOKEN_DIR / "auth_token"
TOKEN.write_text(secrets.token_hex(32))
TOKEN.chmod(0o600)
atexit.register(shutil.rmtree, _TOKEN_DIR, True)  # also when no test here needed the cluster
os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(TOKEN), "RAY_USAGE_STATS_ENABLED": "0"})


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    from deploy.ray.cluster import connect
    from deploy.ray.local_cluster import LocalCluster, NodeSpec

    cluster = LocalCluster(free_port_pair(), [NodeSpec(4, {HEAD: 1}), NodeSpec(4, {WORKER: 1})], TOKEN)
    try:
        cluster.start()
        connect(cluster.address)
        yield cluster
    finally:
        ray.shutdown()
        left = cluster.stop()
    assert left == [], f"Ray processes left behind: {left}"


@pytest.fixture
def two_nodes(ray_cluster):
    """The cluster with both nodes up (a test that stops the worker node leaves it to be restarted here)."""
    if ray_cluster.processes[1] is None:
        ray_cluster.start_node(1)
    return ray_cluster
