"""Network building blocks: vectorised ensemble, MLP layout, observation encoders, augmentation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from algorithm_fixtures import image_spec, random_observation, state_spec

from learner.networks import CriticEnsemble, MLP, ObservationEncoder, random_shift


def test_ensemble_forward_equals_each_member_computed_by_hand():
    torch.manual_seed(0)
    ensemble = CriticEnsemble(3, feature_dim=5, action_dim=2, hidden_dims=(16, 8), layer_norm=True)
    with torch.no_grad():  # give every member a distinct, non-trivial LayerNorm affine
        for norm in ensemble.mlp.norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    features, action = torch.randn(7, 5), torch.rand(7, 2) * 2 - 1
    q = ensemble(features, action)
    assert q.shape == (3, 7)
    x0 = torch.cat([features, action], -1)
    for member in range(3):
        x = x0
        for layer, norm in zip(ensemble.mlp.hidden, ensemble.mlp.norms):
            x = x @ layer.weight[member] + layer.bias[member, 0]
            x = F.layer_norm(x, x.shape[-1:], norm.weight[member, 0], norm.bias[member, 0])
            x = F.relu(x)
        expected = (x @ ensemble.mlp.output.weight[member] + ensemble.mlp.output.bias[member, 0]).squeeze(-1)
        torch.testing.assert_close(q[member], expected, rtol=1e-5, atol=1e-5)


def test_ensemble_members_are_independent_and_detached_weights_pass_input_gradients():
    ensemble = CriticEnsemble(2, feature_dim=3, action_dim=1, hidden_dims=(8,))
    assert not torch.equal(ensemble.mlp.output.weight[0], ensemble.mlp.output.weight[1])
    action = torch.zeros(4, 1, requires_grad=True)
    ensemble(torch.randn(4, 3), action, detach_params=True).sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    assert all(p.grad is None for p in ensemble.parameters())


def test_mlp_layer_norm_sits_between_dense_and_relu():
    kinds = [type(m).__name__ for m in MLP(4, (8, 8), 2, layer_norm=True).net]
    assert kinds == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
    assert "LayerNorm" not in [type(m).__name__ for m in MLP(4, (8,), 2).net]


def test_state_encoder_is_a_parameter_free_concatenation():
    spec = state_spec(obs_dim=6)
    encoder = ObservationEncoder(spec.observation)
    observation = random_observation(spec, 5, np.random.default_rng(0))
    assert encoder.out_dim == 6 and not list(encoder.parameters())
    torch.testing.assert_close(encoder(observation), observation["state"])


def test_image_encoder_takes_uint8_hwc_and_emits_bounded_features():
    spec = image_spec()
    encoder = ObservationEncoder(spec.observation, image_feature_dim=50)
    observation = random_observation(spec, 4, np.random.default_rng(1))
    features = encoder(observation)
    assert features.shape == (4, 3 + 50) and encoder.out_dim == 53
    torch.testing.assert_close(features[:, :3], observation["state"])
    assert features[:, 3:].abs().max() <= 1.0  # tanh output
    features.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_image_strides_shrink_the_conv_output_and_every_algorithm_takes_them():
    import pytest

    from learner.algorithms import ALGORITHMS, make_algorithm

    spec = image_spec()
    drq, cheap = ObservationEncoder(spec.observation), ObservationEncoder(spec.observation, image_strides=(2, 2, 1, 1))
    (key,) = drq.image_keys
    assert cheap.images[key].head[0].in_features < drq.images[key].head[0].in_features / 4
    for name in ALGORITHMS.names():
        algorithm = make_algorithm(name, spec, {"image_strides": "2,2,1,1", "hidden_dims": "16,16"})
        widths = {conv.head[0].in_features for conv in _conv_encoders(algorithm)}
        assert widths == {cheap.images[key].head[0].in_features}, name
    with pytest.raises(ValueError, match="image_strides"):
        make_algorithm("sac", spec, {"image_strides": "3,1"})


def _conv_encoders(algorithm) -> list:
    """Every ConvEncoder in the algorithm's modules (held directly or by a plain object such as CSIL's nets)."""
    from learner.networks.encoders import ConvEncoder

    holders = [*vars(algorithm).values(), *(v for h in vars(algorithm).values() if hasattr(h, "__dict__")
                                             and not isinstance(h, torch.nn.Module) for v in vars(h).values())]
    return [m for h in holders if isinstance(h, torch.nn.Module) for m in h.modules() if isinstance(m, ConvEncoder)]


def test_random_shift_keeps_dtype_and_moves_content_by_at_most_pad():
    # Pixel value = 10 * row + column, so a shifted pixel tells where it came from.
    grid = torch.arange(10)[:, None] * 10 + torch.arange(10)[None, :]
    images = grid[None, :, :, None].expand(6, 10, 10, 1).to(torch.uint8)
    shifted = random_shift(images, pad=2, generator=torch.Generator().manual_seed(0))
    assert shifted.dtype == torch.uint8 and shifted.shape == images.shape
    rows, cols = shifted[..., 0].long() // 10, shifted[..., 0].long() % 10
    assert (rows - torch.arange(10)[None, :, None]).abs().max() <= 2
    assert (cols - torch.arange(10)[None, None, :]).abs().max() <= 2
    assert not torch.equal(shifted, images)  # 6 images, 25 possible shifts each: some moved
