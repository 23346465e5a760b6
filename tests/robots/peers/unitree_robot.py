"""A fake Unitree Go2 or G1 on CycloneDDS: the real SDK's own server and publisher classes, so the driver's
client code (SportClient / LocoClient, ChannelSubscriber) runs unchanged against it.

    python tests/robots/peers/unitree_robot.py --robot go2|g1 --domain D [--interface lo] [--rate-hz 50]

It publishes the robot's state topic (Go2: rt/sportmodestate, unitree_go SportModeState_; G1: rt/lowstate,
unitree_hg LowState_) and serves the "sport" RPC service with `unitree_sdk2py.rpc.server.Server`
(Go2: Damp, BalanceStand, StopMove, StandUp, StandDown, Move; G1: SetFsmId, SetVelocity, GetFsmId).
Commanded velocities are integrated into the published odometry (Go2) / yaw (G1), and a G1 SetVelocity
expires after its `duration`, as on the robot.

Every request the service receives is printed to stdout as one line `PEER {"api": id, "name": ..., "param":
{...}, "t": monotonic_seconds}`; `PEER {"event": "ready", ...}` is printed once the service and the state
writer exist. The SDK prints its own lines too: readers keep only lines starting with "PEER ". The peer exits
when its stdin closes, so it never outlives the test process that started it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time

from unitree_sdk2py.core.channel import ChannelFactoryInitialize, ChannelPublisher
from unitree_sdk2py.rpc.server import Server

GO2_APIS = {1001: "Damp", 1002: "BalanceStand", 1003: "StopMove", 1004: "StandUp", 1005: "StandDown", 1008: "Move"}
G1_APIS = {7001: "GetFsmId", 7101: "SetFsmId", 7105: "SetVelocity"}


def emit(record: dict) -> None:
    sys.stdout.write("PEER " + json.dumps(record) + "\n")
    sys.stdout.flush()


class FakeLegged:
    """Robot state driven by the velocity commands received (integrated by the publisher thread)."""

    def __init__(self, robot: str) -> None:
        self.robot = robot
        self.lock = threading.Lock()
        self.command = (0.0, 0.0, 0.0)  # body frame vx, vy, yaw rate
        self.command_until = math.inf  # G1: the command expires at this monotonic time
        self.x = self.y = self.yaw = 0.0
        self.fsm_id = 200  # G1: locomotion mode

    def handler(self, api_id: int, name: str):
        def handle(parameter: str):
            param = json.loads(parameter) if parameter else {}
            emit({"api": api_id, "name": name, "param": param, "t": time.monotonic()})
            with self.lock:
                return self.apply(name, param)
        return handle

    def apply(self, name: str, param: dict):
        if name == "Move":
            self.command, self.command_until = (param["x"], param["y"], param["z"]), math.inf
        elif name in ("StopMove", "StandDown", "Damp"):
            self.command = (0.0, 0.0, 0.0)
        elif name == "SetVelocity":
            self.command = tuple(param["velocity"])
            self.command_until = time.monotonic() + float(param["duration"])
        elif name == "SetFsmId":
            self.fsm_id = int(param["data"])
        elif name == "GetFsmId":
            return 0, json.dumps({"data": self.fsm_id})
        return 0, ""

    def advance(self, dt: float) -> tuple[float, float, float]:
        """Integrate one publisher period; returns the world-frame velocity (vx, vy) and yaw rate."""
        with self.lock:
            if time.monotonic() >= self.command_until:
                self.command = (0.0, 0.0, 0.0)
            vx, vy, yaw_rate = self.command
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            world_vx, world_vy = c * vx - s * vy, s * vx + c * vy
            self.x += world_vx * dt
            self.y += world_vy * dt
            self.yaw += yaw_rate * dt
            return world_vx, world_vy, yaw_rate


def make_state_writer(robot: str):
    """(publisher, fill(sample, state, velocity)) for the robot's state topic."""
    if robot == "go2":
        from unitree_sdk2py.idl.default import (
            unitree_go_msg_dds__SportModeState_ as make_sample,
        )
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import (
            SportModeState_ as message_type,
        )
        topic = "rt/sportmodestate"

        def fill(sample, state, velocity):
            sample.position = [state.x, state.y, 0.0]
            sample.velocity = [velocity[0], velocity[1], 0.0]
            sample.yaw_speed = velocity[2]
            sample.imu_state.rpy = [0.0, 0.0, state.yaw]
            sample.body_height = 0.32
    else:
        from unitree_sdk2py.idl.default import (
            unitree_hg_msg_dds__LowState_ as make_sample,
        )
        from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowState_ as message_type
        topic = "rt/lowstate"

        def fill(sample, state, velocity):
            sample.imu_state.rpy = [0.0, 0.0, state.yaw]
            sample.imu_state.gyroscope = [0.0, 0.0, velocity[2]]
            sample.tick += 1
    publisher = ChannelPublisher(topic, message_type)
    publisher.Init()
    return publisher, make_sample, fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", choices=("go2", "g1"), required=True)
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--interface", default="lo")
    parser.add_argument("--rate-hz", type=float, default=50.0)
    args = parser.parse_args()

    ChannelFactoryInitialize(args.domain, args.interface)
    state = FakeLegged(args.robot)
    server = Server("sport")
    server._SetApiVersion("1.0.0.1" if args.robot == "go2" else "1.0.0.0")
    for api_id, name in (GO2_APIS if args.robot == "go2" else G1_APIS).items():
        server._RegistHandler(api_id, state.handler(api_id, name), False)
    server.Start(False)
    publisher, make_sample, fill = make_state_writer(args.robot)
    emit({"event": "ready", "robot": args.robot, "domain": args.domain, "t": time.monotonic()})

    # Exit with the test that started us: it holds our stdin open, so EOF means it is gone (even if killed).
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    period = 1.0 / args.rate_hz
    sample = make_sample()
    ticker = threading.Event()  # never set: wait() is the publisher's period timer
    while True:
        fill(sample, state, state.advance(period))
        publisher.Write(sample)
        ticker.wait(period)


if __name__ == "__main__":
    main()
