"""Learner algorithms. Importing this package registers every algorithm in `ALGORITHMS`."""

from learner.algorithms import sac, sigent_sac  # noqa: F401  (register "sac", "sigent_sac")
from learner.algorithms.base import (
    ALGORITHMS,
    Algorithm,
    SamplingSpec,
    config_docs,
    config_from_overrides,
    config_to_dict,
    make_algorithm,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "SamplingSpec",
    "config_docs",
    "config_from_overrides",
    "config_to_dict",
    "make_algorithm",
]
