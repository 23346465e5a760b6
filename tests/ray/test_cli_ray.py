"""One command: `learner --launcher ray --fleet ...` on a real cluster trains to its stop rule, prints the
summary, and leaves no learner, actor or named Ray actor behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.ports import free_port_pair

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]


def test_one_command_starts_the_learner_and_a_fleet_on_the_cluster_and_ends_clean(ray_cluster, tmp_path):
    import ray

    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "learner", "--launcher", "ray", "--ray-address", ray_cluster.address,
               "--fleet", "fake=2", "--algo", "sac", "--set", "hidden_dims=16,16", "--max-updates", "100",
               "--learning-starts", "50", "--run-dir", str(run_dir), "--port", str(free_port_pair()),
               "--metrics-port", "0", "--actor-arg=--time-scale", "--actor-arg=20", "--actor-cpus", "0.25"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "=== Tandem run summary ===" in result.stdout and "updates: 100" in result.stdout
    log = (run_dir / "learner.log").read_text()
    assert re.search(r"actor fake-0 \(fake\) connected", log) and re.search(r"actor fake-1 \(fake\) connected", log)
    assert "--keys" in log.splitlines()[0] and "--bind 0.0.0.0" in log.splitlines()[0], "CURVE off one machine"
    left = subprocess.run(["pgrep", "-f", f"{run_dir}|--actor-id fake-"], capture_output=True, text=True)
    assert left.stdout == "", f"processes left behind: {left.stdout}"
    named = [a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(run_dir.name + "-")]
    assert named == [], named


def test_ctrl_c_in_the_launchers_terminal_stops_the_run_safely(ray_cluster, tmp_path):
    """SIGINT (twice, as an impatient operator does): actors stop and flush, the learner checkpoints and
    writes its summary, the launcher prints it and exits 130, and nothing is left running."""
    import signal
    import time

    from tests.conftest import wait_until

    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "learner", "--launcher", "ray", "--ray-address", ray_cluster.address,
               "--fleet", "fake=2", "--algo", "sac", "--set", "hidden_dims=16,16", "--run-dir", str(run_dir),
               "--port", str(free_port_pair()), "--metrics-port", "0", "--actor-arg=--time-scale",
               "--actor-arg=20", "--actor-cpus", "0.25"]  # fmt: skip
    # Started with SIGINT ignored, as a shell starts a background job (`learner ... &` in a script): the
    # launcher must still stop on it (it did not, and the suite run as a background job hung here).
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                              preexec_fn=ignore_sigint)  # fmt: skip
    log = run_dir / "learner.log"
    wait_until(lambda: log.exists() and log.read_text().count(") connected;") >= 2, timeout_s=180,
               what="both fleet actors connected")  # fmt: skip
    driver.send_signal(signal.SIGINT)
    time.sleep(0.5)  # a second Ctrl-C half a second later (timing of the operator, not synchronisation)
    driver.send_signal(signal.SIGINT)
    try:
        out, _ = driver.communicate(timeout=200)
    except subprocess.TimeoutExpired:
        signals = re.findall(r"^Sig\w+:\s*\S+", Path(f"/proc/{driver.pid}/status").read_text(), re.M)
        driver.kill()  # not left hogging the cluster for the tests after this one
        pytest.fail(f"the launcher ignored Ctrl-C ({signals}):\n{driver.communicate()[0][-3000:]}")
    assert driver.returncode == 130, out[-3000:]
    assert "received SIGINT: checkpointing" in log.read_text()
    assert '"interrupted": true' in out and (run_dir / "checkpoints").is_dir(), out[-3000:]
    left = subprocess.run(["pgrep", "-f", f"{run_dir}|--actor-id fake-"], capture_output=True, text=True)
    assert left.stdout == "", f"processes left behind: {left.stdout}"
