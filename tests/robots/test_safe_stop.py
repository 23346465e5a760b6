"""The safe stop outside the actor (robots/deadman.py): a real actor process driving a real driver against its
protocol peer is killed with SIGKILL, and the peer must then receive the robot's stop, from the supervisor.

Why a stop after the kill is the supervisor's: the killed actor runs with its in-process watchdog at 30 s, so
while it drives it sends nothing but motion commands (checked: no stop between its first move and the kill),
and once it is reaped it sends nothing at all. The supervisor's own log line names the stop, RM65's arrives
on a connection other than the actor's, and the same kill with `-o deadman=false` leaves the peer unstopped.
Franka has no supervisor: franky-sim's own reaction to losing its client is what is checked.
Order and outcome only; how fast is benchmarks/safe_stop.py's.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from robots.base import RobotError
from robots.limo import LimoRobot
from robots.rm65 import RM65Robot
from tests.robots.peers.killed_actor import DrivingActor, reaping_orphans, wait_exited
from tests.robots.peers.limo_base import FakeLimoBase
from tests.robots.peers.rm65_arm import FakeRM65Arm
from tests.robots.peers.stop_probes import QUIET_WATCHDOG_MS, FrankaProbe, LeggedProbe, LimoProbe, RM65Probe

pytestmark = pytest.mark.timeout(180)

WAIT_S = 10.0  # generous bound for a stop to cross processes on a loaded 2-core machine
QUIET_S = 1.5  # how long a peer must stay unstopped to show that nothing else would have stopped it
EXIT_S = 15.0  # the supervisor's stop budget (robots.deadman.STOP_BUDGET_S) plus its exit
LIMO_DRIVE, RM65_DRIVE = LimoProbe.drive, RM65Probe.drive
DOMAIN = 1 + (os.getpid() + 100) % 200  # own DDS domain (the driver tests use pid % 200)
needs_unitree = pytest.mark.skipif(importlib.util.find_spec("unitree_sdk2py") is None,
                                   reason="unitree_sdk2py/cyclonedds not installed")
needs_franky = pytest.mark.skipif(importlib.util.find_spec("franky_sim") is None, reason="franky-sim not installed")


@pytest.fixture(autouse=True)
def orphans_come_here():
    with reaping_orphans():
        yield


PROBES = {"limo": LimoProbe, "rm65": RM65Probe,
          "go2": lambda workdir: LeggedProbe("go2", DOMAIN), "g1": lambda workdir: LeggedProbe("g1", DOMAIN)}
ROBOT_PARAMS = ["limo", "rm65", pytest.param("go2", marks=needs_unitree), pytest.param("g1", marks=needs_unitree)]


@pytest.fixture(params=ROBOT_PARAMS)
def peer(request, tmp_path):
    probe = PROBES[request.param](tmp_path)
    yield probe
    probe.close()


def start_driving(peer, tmp_path, **options) -> DrivingActor:
    actor = DrivingActor(peer.robot, {**peer.options, "watchdog_ms": QUIET_WATCHDOG_MS, **options}, peer.drive,
                         tmp_path / "actor.log").wait_driving()
    assert peer.wait_for(lambda: len(peer.moves()) >= 3, WAIT_S), "the actor's motion never reached the peer"
    return actor


# ---- kill -9 of a driving actor ----

def test_a_killed_actor_is_stopped_by_its_supervisor(peer, tmp_path):
    actor = start_driving(peer, tmp_path)
    first_move = peer.moves()[0]
    assert actor.deadman_pid is not None
    assert peer.stops_after(first_move) == [], "the actor stopped by itself: a stop after the kill proves nothing"
    killed_at = actor.kill()
    assert peer.wait_for(lambda: peer.stops_after(killed_at), WAIT_S), f"no stop after the kill:\n{actor.log()}"
    assert wait_exited(actor.deadman_pid, EXIT_S) == 0, "the supervisor did not exit cleanly after its stop"
    assert "safe stop sent" in actor.log()
    if peer.robot == "rm65":  # the stop came on the supervisor's own connection, not on the actor's
        moves_on, stops_on = set(peer.arm.connections("movep_canfd")), set(peer.arm.connections("set_arm_slow_stop"))
        assert len(moves_on) == 1 and stops_on and not stops_on & moves_on


def test_without_the_supervisor_a_killed_actor_leaves_the_robot_moving(peer, tmp_path):
    """The control experiment: nothing else (peer, driver, test) stops the robot after a kill."""
    actor = start_driving(peer, tmp_path, deadman="false")
    assert actor.deadman_pid is None
    killed_at = actor.kill()
    assert not peer.wait_for(lambda: peer.stops_after(killed_at), QUIET_S)


def test_the_supervisor_gives_up_and_exits_when_the_robot_link_is_gone(tmp_path):
    peer = LimoProbe(tmp_path)
    try:
        actor = start_driving(peer, tmp_path)
        peer.base.close()  # the base powers off: the supervisor's port is dead and cannot be reopened
        actor.kill()
        assert wait_exited(actor.deadman_pid, EXIT_S) == 1, "the supervisor should fail, say so, and exit"
        assert "safe stop FAILED" in actor.log()
    finally:
        peer.close()


@needs_franky
def test_a_killed_franka_actor_leaves_franky_sim_holding_the_arm(tmp_path):
    """No supervisor: the simulated FCI stops following velocity commands once its client is gone."""
    sim = FrankaProbe(f"127.{1 + os.getpid() % 250}.{(os.getpid() // 250) % 250}.2")
    try:
        actor = start_driving(sim, tmp_path)
        assert actor.deadman_pid is None
        assert sim.stops_after(0.0) == [], "the arm was held while the actor still drove it"
        killed_at = actor.kill()
        assert sim.wait_for(lambda: sim.stops_after(killed_at), WAIT_S), "franky-sim followed the dead actor on"
        commands = sim.sim.ask("stats")["velocity_commands"]
        assert sim.sim.ask("stats")["velocity_commands"] == commands  # and follows no velocity any more
    finally:
        sim.close()


# ---- in-process: clean shutdown and a supervisor that dies ----

def test_a_clean_disconnect_ends_the_supervisor_without_a_stop_of_its_own(tmp_path):
    arm = FakeRM65Arm().start()
    try:
        robot = RM65Robot(host="127.0.0.1", port=arm.port, watchdog_ms=30000)
        robot.connect()
        robot.enable()
        deadman = robot.deadman
        robot.send_action(np.array(RM65_DRIVE, dtype=np.float32))
        robot.disconnect()
        assert deadman.process.returncode == 0 and robot.deadman is None  # told to quit, exited, reaped
        (driver_connection,) = set(arm.connections("movep_canfd"))
        assert arm.connections("set_arm_slow_stop") == [driver_connection]  # the driver's own final stop only
    finally:
        arm.close()


def test_a_clean_limo_disconnect_sends_one_stop(tmp_path):
    base = FakeLimoBase(str(tmp_path / "ttyLIMO")).start()
    try:
        robot = LimoRobot(port=base.port, watchdog_ms=30000)
        robot.connect()
        robot.enable()
        robot.send_action(np.array(LIMO_DRIVE, dtype=np.float32))
        robot.disconnect()
        assert base.wait_for(lambda b: b.command_count() >= 2, WAIT_S)
        assert not base.wait_for(lambda b: b.command_count() > 2, QUIET_S)  # the supervisor's would be 2 more
        assert base.last_command()[1][:2] == (0.0, 0.0)
    finally:
        base.close()


def test_a_dead_supervisor_stops_the_robot_and_refuses_actions_until_reconnected(tmp_path):
    base = FakeLimoBase(str(tmp_path / "ttyLIMO")).start()
    robot = LimoRobot(port=base.port, watchdog_ms=30000)
    try:
        robot.connect()
        robot.enable()
        robot.send_action(np.array(LIMO_DRIVE, dtype=np.float32))
        assert base.wait_for(lambda b: b.command_count() >= 1, WAIT_S)
        os.kill(robot.deadman.pid, 9)
        assert base.wait_for(lambda b: b.command_count() >= 2 and b.last_command()[1][:2] == (0.0, 0.0), WAIT_S)
        assert robot.deadman.process.returncode == -9  # noticed and reaped
        with pytest.raises(RobotError, match="safe-stop supervisor .* died"):
            robot.send_action(np.array(LIMO_DRIVE, dtype=np.float32))
        robot.disconnect()
        robot.connect()
        robot.enable()
        robot.send_action(np.array(LIMO_DRIVE, dtype=np.float32))  # a fresh supervisor: driving again
        assert robot.deadman is not None and not robot.deadman.lost
    finally:
        robot.disconnect()
        base.close()


def test_a_supervisor_that_cannot_open_its_link_fails_connect(tmp_path):
    from robots.deadman import Deadman

    with pytest.raises(RobotError, match="safe-stop supervisor could not open .*unknown robot 'nonexistent'"):
        Deadman("nonexistent", {}, on_lost=lambda: None).start()
