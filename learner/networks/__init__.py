"""Network building blocks for the learner's algorithms (and the actor's copy of the policy)."""

from learner.networks.distributions import TanhGaussian, log_one_minus_tanh_sq
from learner.networks.encoders import ConvEncoder, ObservationEncoder, random_shift
from learner.networks.ensemble import CriticEnsemble, EnsembleLayerNorm, EnsembleLinear, EnsembleMLP
from learner.networks.mlp import MLP
from learner.networks.policies import TanhGaussianPolicy

__all__ = [
    "MLP",
    "ConvEncoder",
    "CriticEnsemble",
    "EnsembleLayerNorm",
    "EnsembleLinear",
    "EnsembleMLP",
    "ObservationEncoder",
    "TanhGaussian",
    "TanhGaussianPolicy",
    "log_one_minus_tanh_sq",
    "random_shift",
]
