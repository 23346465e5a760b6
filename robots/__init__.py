"""Robots, simulated twins and the fake robot. Importing this package registers them all in ROBOTS.

Vendor SDKs are imported inside each driver's connect(), so `import robots` needs none of them;
MuJoCo is a hard dependency, so the twins are imported (and registered) here.
"""

from robots import fake  # noqa: F401  (registers "fake")
from robots.base import ROBOTS, Robot, RobotError, Task  # noqa: F401
from robots.sim import limo  # noqa: F401  (registers "limo_sim")
from robots.sim import franka, rm65  # noqa: F401  (register "franka_sim", "rm65_sim")
from robots.sim import go2  # noqa: F401  (registers "go2_sim")
from robots.sim import g1  # noqa: F401  (registers "g1_sim")
import robots.unitree  # noqa: E402,F401  (registers "go2", "g1"; unitree_sdk2py imported in connect)
import robots.franka  # noqa: E402,F401  (registers "franka"; franky imported in connect)
import robots.limo  # noqa: F401  (registers "limo", the real AgileX LIMO over serial; pyserial imported in connect)
import robots.rm65  # noqa: F401  (registers "rm65", the real RealMan RM65-B over JSON/TCP; stdlib only)
