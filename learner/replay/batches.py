"""Moving sampled numpy batches onto the training device."""

from __future__ import annotations

import numpy as np
import torch

from common.types import Batch


def _tensor(value: np.ndarray, device: torch.device) -> torch.Tensor:
    # from_numpy shares memory with the freshly sampled copy, so on CPU this costs nothing.
    return torch.from_numpy(np.ascontiguousarray(value)).to(device, non_blocking=True)


def to_torch(batch: Batch, device: torch.device | str) -> Batch:
    """The same batch as tensors on `device`, dtypes kept (uint8 images stay uint8; encoders scale them)."""
    device = torch.device(device)
    return Batch(
        observation={k: _tensor(v, device) for k, v in batch.observation.items()},
        action=_tensor(batch.action, device),
        reward=_tensor(batch.reward, device),
        terminated=_tensor(batch.terminated, device),
        next_observation={k: _tensor(v, device) for k, v in batch.next_observation.items()},
        is_demo=_tensor(batch.is_demo, device),
        extras={k: _tensor(v, device) for k, v in batch.extras.items()},
    )
