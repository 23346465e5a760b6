"""Smoke runs of both command-line programs, as separate processes, with tiny budgets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tty

import pytest

pytestmark = pytest.mark.timeout(180)


def run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout)


def test_unknown_algorithm_lists_the_known_ones():
    result = run("learner", "--algo", "no_such_algo")
    assert result.returncode == 2
    assert "unknown algorithm 'no_such_algo'" in result.stderr and "sac" in result.stderr


def test_unknown_robot_lists_the_known_ones():
    result = run("actor", "--robot", "no_such_robot")
    assert result.returncode == 2
    assert "unknown robot 'no_such_robot'" in result.stderr and "limo_sim" in result.stderr


def test_unknown_algorithm_field_lists_the_fields():
    result = run("learner", "--set", "no_such_field=1")
    assert result.returncode == 2 and "no_such_field" in result.stderr and "batch_size" in result.stderr


def test_help_is_enough_to_start():
    for program, essential in (("learner", "--algo"), ("actor", "--robot")):
        result = run(program, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout and essential in result.stdout


def test_actor_help_says_what_a_killed_actor_loses_with_and_without_a_spool():
    text = " ".join(run("actor", "--help").stdout.split())
    assert "kill -9 or a crash loses nothing recorded" in text and "WITHOUT --spool a killed or crashed actor" in text


def test_learner_with_a_local_fake_actor_trains_evaluates_and_reports(tmp_path, port):
    result = run(
        "learner", "--port", str(port), "--run-dir", str(tmp_path), "--metrics-port", "0",
        "--max-updates", "60", "--learning-starts", "32", "--publish-every", "10",
        "--local-actor", "fake", "--actor-arg=--time-scale", "--actor-arg=25", "--final-eval", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["updates"] == 60
    assert summary["final_eval_episodes"] == 3
    assert summary["env_steps"] >= 32
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    assert list((tmp_path / "checkpoints").glob("ckpt-*/state.pt"))
    assert "final evaluation: " in result.stdout and "(policy: " in result.stdout
    assert summary["evaluated_policy"] == "latest" or (tmp_path / "best_policy.npz").exists()


# ---- a real robot that does not answer: one line naming what was tried and what to check, exit code 4 ----

def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _no_robot_cases(tmp_path):
    """robot -> (its --robot options against no robot, what the line must name). Fast: short connect timeouts."""
    domain = str(201 + os.getpid() % 30)  # an empty DDS domain of this test process (the robot tests use 1..200)
    return {
        "go2": (["network_interface=lo", f"domain_id={domain}", "connect_timeout_s=0.2"],
                ["no rt/sportmodestate sample within 0.2 s on network interface 'lo'", "powered on"]),
        "g1": (["network_interface=lo", f"domain_id={domain}", "connect_timeout_s=0.2"],
               ["no rt/lowstate sample within 0.2 s on network interface 'lo'", "powered on"]),
        "franka": (["address=127.0.0.2"], ["cannot connect to the arm's FCI at 127.0.0.2:1337", "Desk"]),
        "limo": ([f"port={tmp_path / 'ttyNONE'}"], [f"cannot open serial port {tmp_path / 'ttyNONE'}", "-o port="]),
        "rm65": (["host=127.0.0.1", f"port={_free_tcp_port()}"],
                 ["cannot connect to the arm controller at 127.0.0.1:", "powered on", "-o host="]),
    }


def _assert_one_line(result: subprocess.CompletedProcess, robot: str, expected: list[str]) -> None:
    assert result.returncode == 4, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    ours = [line for line in result.stderr.splitlines() if line.startswith("actor")]  # SDKs may print too
    assert len(ours) == 1 and ours[0].startswith(f"actor: {robot}: "), result.stderr[-3000:]
    assert "; check " in ours[0] and all(text in ours[0] for text in expected), ours[0]


@pytest.mark.parametrize("robot", ["go2", "g1", "franka", "limo", "rm65"])
def test_a_real_robot_that_does_not_answer_ends_the_actor_with_one_line(robot, tmp_path):
    if robot in ("go2", "g1"):
        pytest.importorskip("unitree_sdk2py.core.channel", reason="unitree_sdk2py not installed")
    if robot == "franka":
        pytest.importorskip("franky", reason="franky not installed")
    options, expected = _no_robot_cases(tmp_path)[robot]
    args = [arg for option in options for arg in ("-o", option)]
    result = run("actor", "--robot", robot, *args, "--metrics-port", "0", "--no-console", timeout=60)
    _assert_one_line(result, robot, expected)


def test_a_silent_serial_port_or_tcp_peer_ends_the_actor_with_one_line():
    """Something answers the port or the address, but it is not the robot: the line names the wait."""
    master, slave = os.openpty()  # a serial port nobody writes to: a LIMO base switched off
    tty.setraw(slave)
    with socket.socket() as listener:  # accepts connections (the kernel's backlog) and never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        try:
            limo = run("actor", "--robot", "limo", "-o", f"port={os.ttyname(slave)}", "-o", "connect_timeout_s=0.2",
                       "--metrics-port", "0", "--no-console", timeout=60)
            rm65 = run("actor", "--robot", "rm65", "-o", "host=127.0.0.1", "-o", f"port={listener.getsockname()[1]}",
                       "-o", "timeout_s=0.2", "--metrics-port", "0", "--no-console", timeout=60)
        finally:
            os.close(master)
            os.close(slave)
    _assert_one_line(limo, "limo", ["no state frames from the base on serial port /dev/", "within 0.2 s",
                                    "switched on", "-o baudrate="])
    _assert_one_line(rm65, "rm65", ["no reply to get_current_arm_state within 0.20 s", "-o host="])
