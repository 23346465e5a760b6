"""`learner --algo aloe` with the paper's rounds, and a real actor that runs ALOE's policy with the chunked program."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.ports import free_port_pair
from tests.faults.processes import ROOT
from tests.stage_fixture import write_fake_demo

pytestmark = pytest.mark.timeout(240)

EXECUTE = 15  # e on the fake robot: round(0.3 s * 50 Hz)


def inference_steps(metrics_port: int) -> dict[str, float]:
    """The actor's count of control steps by policy step kind (forward, replan, queued)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tandem_actor_policy_inference_seconds_count":
                counts[sample.labels["step"]] = sample.value
    return counts


def test_aloe_runs_bc_a_round_and_online_while_the_actor_executes_e_of_each_chunk(tmp_path, port):
    run_dir, actor_metrics = tmp_path / "run", free_port_pair()
    learner = [
        sys.executable, "-m", "learner", "--algo", "aloe", "--port", str(port), "--run-dir", str(run_dir),
        "--demo", str(write_fake_demo(tmp_path / "demo.npz")), "--metrics-port", "0", "--threads", "1",
        "--max-updates", "20", "--learning-starts", "32", "--publish-every", "10", "--final-eval", "0",
        "--set", "batch_size=32", "--set", "hidden_dims=32,32", "--set", "offline_updates=15",
        "--set", "schedule=rounds", "--set", "rounds=1", "--set", "round_episodes=2",
        "--set", "round_critic_updates=10", "--set", "round_actor_updates=5",
    ]  # fmt: skip
    actor = subprocess.Popen(
        [sys.executable, "-m", "actor", "--robot", "fake", "--learner", f"127.0.0.1:{port}", "--actor-id", "a1",
         "--metrics-port", str(actor_metrics), "--time-scale", "25", "--no-console"],
        cwd=ROOT, stdout=(tmp_path / "actor.log").open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        result = subprocess.run(learner, capture_output=True, text=True, timeout=200, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        steps = inference_steps(actor_metrics)  # the actor outlives the learner: read it before stopping it
    finally:
        actor.send_signal(signal.SIGINT)
        actor.wait(timeout=30)
    log = result.stderr
    events = ["stage 1/5 offline 'bc' completed", "stage 2/5 rollouts 'rollouts_1' completed",
              "stage 3/5 offline 'critic_1' completed", "stage 4/5 offline 'actor_1' completed",
              "stage 5/5 online 'online' 0 updates started"]  # fmt: skip
    positions = [log.find(event) for event in events]
    assert -1 not in positions and positions == sorted(positions), log[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["offline_updates"], summary["updates"]) == (15 + 10 + 5, 20)
    # The chunked program planned once and then took e - 1 actions from its queue, until an episode ended.
    replans, queued = steps.get("replan", 0), steps.get("queued", 0)
    assert replans >= 2 and replans <= queued <= (EXECUTE - 1) * replans, steps
    assert "refusing weights" not in (tmp_path / "actor.log").read_text()
