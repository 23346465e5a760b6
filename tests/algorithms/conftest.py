"""Fixtures for algorithm tests (builders live in algorithm_fixtures.py so tests can import them)."""

from __future__ import annotations

import pytest
import torch
from algorithm_fixtures import image_spec, state_spec

from common.specs import RobotSpec


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Test nets are tiny: a second intra-op thread buys nothing, and on a shared CI box its OpenMP
    barriers stall for whole scheduler slices (observed: a 3 s test taking 60 s at load 7)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(params=["state", "image"])
def spec(request) -> RobotSpec:
    return state_spec() if request.param == "state" else image_spec()
