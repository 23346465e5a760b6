"""Base-velocity safety envelopes of the legged robots, shared by the real drivers and their MuJoCo twins.

Go2 and G1 are driven through Unitree's high-level locomotion interface (Go2 `SportClient.Move(vx, vy,
vyaw)`, G1 `LocoClient.Move / SetVelocity(vx, vy, omega)`): a body-frame velocity command that the
robot's own gait controller tracks. The action is therefore (vx, vy, yaw_rate) in m/s, m/s, rad/s.

The SDKs accept much more than a learning policy should ever command (Go2 Move is documented with
vx up to ~3.8 m/s forward, ~2.5 m/s back, vy ~1 m/s, yaw ~4 rad/s; G1 walks at up to ~2 m/s). The
envelopes here are deliberately a fraction of that: walking speeds at which a fall or a collision with
a person or a box is harmless, as for the LIMO. A real driver clips every command into the same
envelope (via robots.safety.ActionSafety on `bounded_action_spec()`) and sends StopMove / zero velocity
when no command arrives for `command_timeout_s`.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.specs import BoundedSpec


@dataclass(frozen=True)
class VelocityLimits:
    """Inclusive (low, high) bounds for a base-velocity command, and the command rate."""

    vx: tuple[float, float]  # forward, m/s (body frame, x forward)
    vy: tuple[float, float]  # sideways, m/s (y left)
    yaw_rate: tuple[float, float]  # rad/s, counter-clockwise positive
    control_hz: float = 10.0  # policy / command rate
    command_timeout_s: float = 0.5  # a real driver stops the robot when commands stop for this long

    def __post_init__(self) -> None:
        for name in ("vx", "vy", "yaw_rate"):
            low, high = getattr(self, name)
            if not low <= 0.0 <= high or low >= high:
                raise ValueError(f"{name} bounds must satisfy low <= 0 <= high and low < high, got {(low, high)}")
        if self.control_hz <= 0 or self.command_timeout_s <= 0:
            raise ValueError("control_hz and command_timeout_s must be positive")

    @property
    def low(self) -> tuple[float, float, float]:
        return (self.vx[0], self.vy[0], self.yaw_rate[0])

    @property
    def high(self) -> tuple[float, float, float]:
        return (self.vx[1], self.vy[1], self.yaw_rate[1])

    def bounded_action_spec(self) -> BoundedSpec:
        """The action spec (vx, vy, yaw_rate) both the real driver and the twin declare."""
        return BoundedSpec("action", (3,), "float32", low=self.low, high=self.high)


# Unitree Go2 (quadruped, ~15 kg): trotting speeds.
GO2_LIMITS = VelocityLimits(vx=(-0.6, 1.0), vy=(-0.5, 0.5), yaw_rate=(-1.5, 1.5))

# Unitree G1 (humanoid, ~35 kg): walking speeds; slower sideways and in yaw, where a biped is least stable.
G1_LIMITS = VelocityLimits(vx=(-0.4, 0.7), vy=(-0.3, 0.3), yaw_rate=(-1.0, 1.0))
