"""The deployment files, validated by the real tools: docker-compose (v1, Debian), promtool, systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
UNIT = ROOT / "deploy" / "systemd" / "tandem-actor@.service"


def tool(name: str, how: str = "scripts/install.sh apt-installs it when run as root") -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({how})")
    return path


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=90)


def test_docker_compose_validates_the_stack_with_and_without_the_sim_profile():
    compose = tool("docker-compose")
    for extra in ((), ("--profile", "sim")):
        result = run(compose, "-f", str(COMPOSE), *extra, "config", "-q")
        assert result.returncode == 0, result.stderr
    services = run(compose, "-f", str(COMPOSE), "--profile", "sim", "config", "--services").stdout.split()
    assert set(services) == {"keys", "learner", "sim-actor", "prometheus", "grafana"}


def test_docker_compose_check_can_fail(tmp_path):
    compose = tool("docker-compose")
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace('- "9090:9090"', "9090", 1))
    result = run(compose, "-f", str(broken), "config", "-q", cwd=tmp_path)
    assert result.returncode != 0 and "ports" in result.stderr


def test_compose_mounts_exist_and_dockerfiles_are_where_compose_says():
    text = COMPOSE.read_text()
    mounts = re.findall(r"- \./([\w/.-]+):", text)
    assert "deploy/grafana/provisioning" in mounts and "deploy/prometheus" in mounts
    for relative in mounts:
        assert relative == "runs" or (ROOT / relative).exists(), relative  # runs/ is created by the learner
    for dockerfile in re.findall(r"dockerfile: ([\w/.-]+)", text):
        assert (ROOT / dockerfile).is_file(), dockerfile


def test_promtool_accepts_the_prometheus_config():
    promtool = tool("promtool")
    result = run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr  # e.g. a file_sd glob matching no file


def test_scrape_ports_match_the_default_metrics_ports():
    from actor.app import ActorOptions
    from learner.app import LearnerConfig

    text = PROMETHEUS_CONFIG.read_text()
    assert f"learner:{LearnerConfig().metrics_port}" in text
    assert f"port: {ActorOptions('r', 'l', 'a').metrics_port}" in text


def test_systemd_unit_verifies(tmp_path):
    analyze = tool("systemd-analyze", "Debian's systemd package provides it")
    unit_text = UNIT.read_text().replace("/opt/tandem/.venv/bin/actor", "/bin/true")  # no install on this machine
    (tmp_path / UNIT.name).write_text(unit_text)
    (tmp_path / "tandem-actor@franka-1.service").symlink_to(UNIT.name)
    result = run(analyze, "verify", str(tmp_path / "tandem-actor@franka-1.service"), cwd=tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    assert "KillSignal=SIGINT" in unit_text  # the actor's safe shutdown signal


def test_each_sim_actor_replica_claims_its_own_key_and_keeps_it_across_restarts(tmp_path):
    keys, bin_dir = tmp_path / "keys", tmp_path / "bin"
    for name in ("limo-sim-1", "limo-sim-2"):
        (keys / "actors" / name).mkdir(parents=True)
    bin_dir.mkdir()
    (bin_dir / "actor").write_text('#!/bin/sh\necho "$2"\n')  # prints the --keys directory it was given
    (bin_dir / "actor").chmod(0o755)

    def replica(host: str) -> subprocess.CompletedProcess:
        (bin_dir / "hostname").write_text(f"#!/bin/sh\necho {host}\n")
        (bin_dir / "hostname").chmod(0o755)
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "KEYS": str(keys)}
        script = ROOT / "deploy" / "docker" / "sim-actor.sh"
        return subprocess.run(["sh", str(script), "--robot", "limo_sim"], env=env, capture_output=True, text=True)

    assert replica("a").stdout.strip().endswith("limo-sim-1/")
    assert replica("b").stdout.strip().endswith("limo-sim-2/")
    third = replica("c")
    assert third.returncode == 1 and "SIM_ACTORS" in third.stderr
    assert replica("a").stdout.strip().endswith("limo-sim-1/")  # a restarted container keeps its key


def test_every_flag_the_deployment_files_pass_exists_in_the_cli():
    """The compose file, Dockerfiles, systemd unit and its env example pass flags to two CLIs others
    keep changing; each flag must still be in that program's --help."""
    docker = ROOT / "deploy" / "docker"
    compose = COMPOSE.read_text()
    learner_text = compose.split("  learner:", 1)[1].split("\n  sim-actor:", 1)[0]
    learner_text += (docker / "learner.Dockerfile").read_text()
    actor_text = compose.split("  sim-actor:", 1)[1].split("\n  prometheus:", 1)[0] + UNIT.read_text()
    actor_text += (ROOT / "deploy" / "systemd" / "actor.env.example").read_text()
    actor_text += (docker / "sim-actor.sh").read_text()
    for program, text in (("learner", learner_text), ("actor", actor_text)):
        help_text = subprocess.run([sys.executable, "-m", program, "--help"], cwd=ROOT, capture_output=True,
                                   text=True, timeout=60).stdout  # fmt: skip
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", code)) - {"--help"}
        assert flags, program
        assert not [flag for flag in sorted(flags) if flag not in help_text], f"{program}: unknown flags"
