"""deploy/ray/cluster.yaml is a valid Ray cluster config, and it keeps Ray's security defaults on."""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "ray" / "cluster.yaml"


def test_the_cluster_config_passes_rays_own_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    # As `ray up` does: the provider's defaults filled in, then the schema (raises on a violation).
    validate_config(prepare_config(yaml.safe_load(CONFIG.read_text())))


def test_token_auth_stays_on_and_the_dashboard_stays_on_loopback():
    config = yaml.safe_load(CONFIG.read_text())
    head, workers = " ".join(config["head_start_ray_commands"]), " ".join(config["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in workers
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    assert any(target.endswith(".ray/auth_token") for target in config["file_mounts"]), "every node gets the token"
    assert "--gpus all" in config["docker"]["head_run_options"], "the learner's GPU on the head"
