"""A real Prometheus scrapes a real learner and a real actor during a short training run, and every
dashboard query returns data through Prometheus's HTTP API (then the panels render to a PNG)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

from benchmarks.render_panels import KEY_PANELS, dashboard_panels, promql, query, render
from common.ports import free_port_pair
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(150)
PROMETHEUS = shutil.which("prometheus")
SCRAPE_S = 1


class Processes:
    """Started subprocesses, stopped in reverse order: SIGINT (graceful) first, SIGKILL after a grace period."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir, self.started = log_dir, []

    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("w")
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, process, log))
        return process

    def alive(self) -> None:
        for name, process, _log in self.started:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        return "\n".join((self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])

    def stop(self, *names: str, how: signal.Signals = signal.SIGINT) -> None:
        """Signal every named process (all when none are named) at once, then wait; SIGKILL after 20 s."""
        chosen = [(name, process, log) for name, process, log in self.started if not names or name in names]
        for _name, process, _log in chosen:
            if process.poll() is None:
                process.send_signal(how)
        for _name, process, log in chosen:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop()


def distinct_ports(count: int) -> list[int]:
    """`count` free loopback ports P (each with P+1 free too), no two overlapping."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port_pair()
        if all(abs(port - other) > 1 for other in ports):
            ports.append(port)
    return ports


def prometheus_config(path: Path, targets: dict[str, int]) -> Path:
    """A scrape config on loopback (JSON is valid YAML)."""
    config = {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                           for job, port in targets.items()],
    }  # fmt: skip
    path.write_text(json.dumps(config))
    return path


def empty_queries(base_url: str) -> list[str]:
    """Every dashboard query that returns no series yet (an error is raised, not retried)."""
    missing = []
    for panel in dashboard_panels():
        for target in panel["targets"]:
            if not query(base_url, "/api/v1/query", {"query": promql(target["expr"], rate_interval="15s")}):
                missing.append(f"{panel['title']}: {target['expr']}")
    return missing


def ready(base_url: str) -> bool:
    try:
        return bool(query(base_url, "/api/v1/query", {"query": "up"}))
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus package is not installed (scripts/install.sh)")
def test_every_dashboard_query_returns_data_from_a_real_run(processes, tmp_path):
    learner_port, learner_metrics, actor_metrics, prometheus_port = distinct_ports(4)
    processes.start(
        "learner", sys.executable, "-m", "learner", "--port", str(learner_port), "--run-dir", str(tmp_path / "run"),
        "--metrics-port", str(learner_metrics), "--learning-starts", "32", "--publish-every", "5",
        "--checkpoint-every", "0", "--max-minutes", "3",
    )  # fmt: skip
    processes.start(
        "actor", sys.executable, "-m", "actor", "--robot", "fake", "--learner", f"127.0.0.1:{learner_port}",
        "--actor-id", "scraped-fake", "--metrics-port", str(actor_metrics), "--time-scale", "10",
        "--eval-every", "1", "--eval-episodes", "1",
    )  # fmt: skip
    config = prometheus_config(tmp_path / "prometheus.yml", {"learner": learner_metrics, "actor": actor_metrics})
    processes.start(
        "prometheus", PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{prometheus_port}"
    wait_until(lambda: processes.alive() or ready(base_url), timeout_s=30, what="Prometheus to answer")

    def targets_up() -> bool:
        processes.alive()
        return len(query(base_url, "/api/v1/query", {"query": "up == 1"})) == 2

    wait_until(targets_up, timeout_s=30, what="both scrape targets to be up")
    missing: list[str] = []

    last_poll = [0.0]

    def all_queries_have_data() -> bool:
        if time.monotonic() - last_poll[0] < 0.5:  # ~35 HTTP queries per poll: twice a second is plenty
            return False
        last_poll[0] = time.monotonic()
        processes.alive()
        missing[:] = empty_queries(base_url)
        return not missing

    try:
        wait_until(all_queries_have_data, timeout_s=60, what="every dashboard query to return data")
    except pytest.fail.Exception:
        pytest.fail("queries without data:\n" + "\n".join(missing) + "\n--- learner log:\n" + processes.tail("learner"))

    labels = query(base_url, "/api/v1/series", {"match[]": "tandem_actor_policy_version"})
    assert {(s["actor_id"], s["robot"]) for s in labels} == {("scraped-fake", "fake")}
    received = query(base_url, "/api/v1/query", {"query": "tandem_learner_transitions_received_total"})
    assert [(r["metric"]["job"], r["metric"]["actor_id"]) for r in received] == [("learner", "scraped-fake")]
    assert float(received[0]["value"][1]) > 0
    for live in ("rate(tandem_learner_updates_total[15s]) > 0", "rate(tandem_actor_transitions_acked_total[15s]) > 0"):
        wait_until(lambda: query(base_url, "/api/v1/query", {"query": live}), timeout_s=30, what=live)
    # Prometheus keeps the data; graceful shutdown is tested elsewhere, and the renderer needs the CPU.
    processes.stop("learner", "actor", how=signal.SIGKILL)
    png = render(base_url, tmp_path / "panels.png", minutes=2, titles=KEY_PANELS[:3], step_s=1)
    assert png.stat().st_size > 10_000
