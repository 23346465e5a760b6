"""Observation encoders: a robot's dict observation -> one flat float feature vector.

State vectors (every non-image key) are flattened and concatenated unchanged. Each uint8 HxWxC image
goes through its own small conv net (DrQ/SAC-AE style). In the learner one encoder is shared by the
critic and the actor; the critic's loss trains it and the actor sees its output detached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from common.specs import ArraySpec, ImageSpec

DRQ_STRIDES = (2, 1, 1, 1)  # DrQ's and SAC-AE's encoder: stride 2 first, then 1


@dataclass(frozen=True)
class ImageEncoderConfig:
    """The camera encoder's fields, one home for every algorithm's config (state observations ignore them)."""

    image_feature_dim: int = 50
    """Features per camera from the conv encoder."""
    image_strides: tuple[int, ...] = DRQ_STRIDES
    """The image encoder's conv layers, one stride each (DrQ's 2,1,1,1; 2,2,1,1 is cheaper: update_cost)."""
    image_shift_pad: int = 4
    """Random-shift augmentation of images in pixels (DrQ's 4); 0 = off; state observations ignore it."""

    def image_conditions(self) -> dict[str, bool]:
        """These fields' checks (message -> ok), for the algorithm config's own list of conditions."""
        return {
            "image_feature_dim must be positive, image_strides 1 to 8 strides of 1 or 2": self.image_feature_dim > 0
            and 1 <= len(self.image_strides) <= 8 and set(self.image_strides) <= {1, 2},
            "image_shift_pad must be >= 0": self.image_shift_pad >= 0,
        }


def encoder_for(observation_specs: Mapping[str, ArraySpec], config) -> "ObservationEncoder":
    """The observation encoder an algorithm config asks for (its image_feature_dim and image_strides)."""
    return ObservationEncoder(observation_specs, config.image_feature_dim, tuple(config.image_strides))


class ConvEncoder(nn.Module):
    """Conv 3x3 layers of 32 channels, one per stride (DrQ's 2, 1, 1, 1), then Linear -> LayerNorm -> tanh.

    Takes uint8 images batch-first as HxWxC; the permute to NCHW leaves the memory channels-last,
    which is the layout CPU convolutions prefer, so no copy is made.
    """

    def __init__(self, image_shape: tuple[int, int, int], feature_dim: int = 50, channels: int = 32,
                 strides: tuple[int, ...] = DRQ_STRIDES) -> None:  # fmt: skip
        super().__init__()
        height, width, in_channels = image_shape
        layers: list[nn.Module] = []
        for i, stride in enumerate(strides):
            conv_in = in_channels if i == 0 else channels
            layers += [nn.Conv2d(conv_in, channels, 3, stride=stride), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, in_channels, height, width)).numel()
        self.head = nn.Sequential(nn.Linear(flat, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.out_dim = feature_dim

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float().div(255.0)
        return self.head(self.convs(x).reshape(x.shape[0], -1))


class ObservationEncoder(nn.Module):
    """Maps `{key: (B, ...)}` to `(B, out_dim)`: flattened state keys, then one ConvEncoder per image key.

    With no image keys the encoder has no parameters and is exactly a concatenation.
    """

    def __init__(self, observation_specs: Mapping[str, ArraySpec], image_feature_dim: int = 50,
                 image_strides: tuple[int, ...] = DRQ_STRIDES) -> None:  # fmt: skip
        super().__init__()
        self.state_keys = sorted(k for k, s in observation_specs.items() if not isinstance(s, ImageSpec))
        self.image_keys = sorted(k for k, s in observation_specs.items() if isinstance(s, ImageSpec))
        self.images = nn.ModuleDict(
            {k: ConvEncoder(observation_specs[k].shape, image_feature_dim, strides=image_strides)
             for k in self.image_keys}
        )
        state_dim = sum(int(torch.Size(observation_specs[k].shape).numel()) for k in self.state_keys)
        self.out_dim = state_dim + image_feature_dim * len(self.image_keys)

    def forward(self, observation: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = [observation[k].reshape(observation[k].shape[0], -1).float() for k in self.state_keys]
        parts += [self.images[k](observation[k]) for k in self.image_keys]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def random_shift(images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ augmentation: shift each image in `(B, H, W, C)` by up to `pad` pixels, edges replicated.

    Implemented as a gather with clamped indices (equivalent to replicate-padding then cropping), so
    uint8 images stay uint8 and nothing is allocated at the padded size.
    """
    batch, height, width, _ = images.shape
    shifts = torch.randint(0, 2 * pad + 1, (2, batch, 1), generator=generator, device=images.device) - pad
    rows = (torch.arange(height, device=images.device) + shifts[0]).clamp_(0, height - 1)
    cols = (torch.arange(width, device=images.device) + shifts[1]).clamp_(0, width - 1)
    batch_index = torch.arange(batch, device=images.device)[:, None, None]
    return images[batch_index, rows[:, :, None], cols[:, None, :]]
