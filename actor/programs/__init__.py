"""Actor policy programs: how a policy's network turns observations into the actions the robot executes.

`Weights.program` names one of `PROGRAMS` and `Weights.program_config_json` its settings; an algorithm
picks them in `Algorithm.policy_program(policy)`, so a new algorithm adds a program here, not an
if-branch in the loop. Registered: one_step (today's behaviour), chunked (ALOE/Q-chunking action
chunks), gated (Q2RL's higher-valued of two proposals), ensembled (CSIL++'s mean or residual with a
frozen base chunk policy). Each module documents the Protocol its network must follow.
"""

from actor.programs import chunked, ensembled, gated, one_step  # noqa: F401  (registers each program)
from actor.programs.base import PROGRAMS, NetworkProgram, ProgramConfig, batch_of_one, make_program

__all__ = ["PROGRAMS", "NetworkProgram", "ProgramConfig", "batch_of_one", "make_program"]
