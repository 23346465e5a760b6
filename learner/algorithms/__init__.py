"""Learner algorithms. Importing this package registers every algorithm in `ALGORITHMS`."""

# Importing each module registers its algorithms: sac, rlpd, sigent_sac, cql, cal_ql, awac, iql.
from learner.algorithms import awac, cql, iql, sac, sigent_sac  # noqa: F401
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
