"""Learner algorithms. Importing this package registers every algorithm in `ALGORITHMS`.

`TANDEM_PLUGINS` (comma-separated module names) are imported after the built-in algorithms, so a lab's
own algorithm module (or a test's fixture algorithms) registers itself in the learner and in every actor
that inherits the environment, with no change to Tandem.
"""

import importlib
import os

# Importing each module registers its algorithms: sac, rlpd, sigent_sac, cql, cal_ql, awac, iql, aloe, q2rl,
# csil, csil_pp.
from learner.algorithms import aloe, awac, cql, csil, iql, q2rl, rlpd, sac, sigent_sac  # noqa: F401
from learner.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    SamplingSpec,
    Stage,
    config_docs,
    config_from_overrides,
    config_to_dict,
    make_algorithm,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "SamplingSpec",
    "Stage",
    "config_docs",
    "config_from_overrides",
    "config_to_dict",
    "make_algorithm",
]


for _plugin in filter(None, (name.strip() for name in os.environ.get("TANDEM_PLUGINS", "").split(","))):
    importlib.import_module(_plugin)
