"""The tanh-squashed Gaussian: a proper density, stable at saturation, consistent scoring paths."""

from __future__ import annotations

import numpy as np
import torch

from learner.networks.distributions import TanhGaussian, log_one_minus_tanh_sq


def one_dim(mean: float, log_std: float) -> TanhGaussian:
    return TanhGaussian(torch.tensor([[mean]], dtype=torch.float64), torch.tensor([[log_std]], dtype=torch.float64))


def test_density_integrates_to_one_and_matches_the_empirical_cdf():
    dist = one_dim(0.3, np.log(0.8))
    grid = torch.linspace(-1 + 1e-9, 1 - 1e-9, 400_001, dtype=torch.float64)[:, None]
    density = dist.log_prob(grid).exp()
    assert abs(torch.trapezoid(density, grid[:, 0]).item() - 1.0) < 1e-4
    # CDF by cumulative integration vs. the fraction of samples below each point.
    cdf = torch.cumulative_trapezoid(density, grid[:, 0])
    generator = torch.Generator().manual_seed(0)
    samples = TanhGaussian(dist.mean.expand(200_000, 1), dist.log_std.expand(200_000, 1)).sample(generator)[0][:, 0]
    for point in (-0.5, 0.0, 0.5, 0.8, 0.95):
        index = int(torch.searchsorted(grid[1:, 0].contiguous(), torch.tensor(point, dtype=torch.float64)))
        empirical = (samples < point).double().mean().item()
        assert abs(cdf[index].item() - empirical) < 5e-3, point


def test_stable_log_one_minus_tanh_sq_is_exact_and_finite():
    u = torch.linspace(-5, 5, 1001, dtype=torch.float64)
    naive = torch.log(1 - torch.tanh(u) ** 2)
    torch.testing.assert_close(log_one_minus_tanh_sq(u), naive, rtol=1e-10, atol=1e-10)
    extreme = log_one_minus_tanh_sq(torch.tensor([-20.0, 20.0]))
    assert torch.isfinite(extreme).all()
    # log(sech^2 20) = 2 log 2 - 40 + O(e^-40); float32 tanh would saturate here.
    torch.testing.assert_close(extreme, torch.full((2,), 2 * np.log(2) - 40.0), rtol=1e-6, atol=1e-4)


def test_scoring_the_sampled_action_matches_the_sample_path_log_prob():
    generator = torch.Generator().manual_seed(1)
    mean = torch.randn(512, 4, generator=generator, dtype=torch.float64)
    log_std = torch.randn(512, 4, generator=generator, dtype=torch.float64).clamp(-2, 0.5)
    dist = TanhGaussian(mean, log_std)
    action, per_dim = dist.rsample(generator)
    # Away from saturation (where atanh(clip(a)) is exact) both paths agree closely.
    ok = action.abs().max(-1).values < 0.999
    torch.testing.assert_close(dist.log_prob_per_dim(action)[ok], per_dim[ok], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(dist.log_prob(action)[ok], per_dim.sum(-1)[ok], rtol=1e-6, atol=1e-6)


def test_per_dimension_log_probs_sum_to_the_joint_and_sampling_is_reparameterised():
    mean = torch.zeros(8, 3, requires_grad=True)
    log_std = torch.full((8, 3), -0.5, requires_grad=True)
    dist = TanhGaussian(mean, log_std)
    action, log_prob = dist.sample(torch.Generator().manual_seed(2))
    _, per_dim = TanhGaussian(mean, log_std).rsample(torch.Generator().manual_seed(2))
    torch.testing.assert_close(per_dim.sum(-1), log_prob)
    assert action.abs().max() < 1
    (action.sum() + log_prob.sum()).backward()
    assert mean.grad.abs().sum() > 0 and log_std.grad.abs().sum() > 0


def test_deterministic_action_is_tanh_of_mean_and_edges_score_finitely():
    mean = torch.tensor([[-3.0, 0.0, 0.7]])
    dist = TanhGaussian(mean, torch.zeros(1, 3))
    torch.testing.assert_close(dist.deterministic_action(), torch.tanh(mean))
    assert torch.isfinite(dist.log_prob(torch.tensor([[-1.0, 1.0, 0.0]]))).all()
