"""Robots, simulated twins and the fake robot. Importing this package registers them all in ROBOTS.

Vendor SDKs are imported inside each driver's connect(), so `import robots` needs none of them;
MuJoCo is a hard dependency, so the twins are imported (and registered) here.
"""

from robots import fake  # noqa: F401  (registers "fake")
from robots.base import ROBOTS, Robot, RobotError, Task  # noqa: F401
from robots.sim import limo  # noqa: F401  (registers "limo_sim")
