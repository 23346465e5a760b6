"""Choosing algorithms by name and building their configs from CLI-style overrides."""

from __future__ import annotations

import json

import pytest
import torch
from algorithm_fixtures import state_spec

from common.registry import UnknownNameError
from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm
from learner.algorithms.sac import SAC, SACConfig


def test_unknown_algorithm_lists_the_registered_names():
    with pytest.raises(UnknownNameError, match="sac") as error:
        make_algorithm("no_such_algo", state_spec())
    assert "no_such_algo" in str(error.value)


def test_unknown_override_lists_the_fields():
    with pytest.raises(ValueError, match="gammma") as error:
        config_from_overrides("sac", {"gammma": "0.9"})
    assert "gamma" in str(error.value).split("fields:")[1] and "batch_size" in str(error.value)


def test_string_overrides_become_the_field_types():
    config = config_from_overrides(
        "sac",
        {"gamma": "0.9", "batch_size": "128", "hidden_dims": "64, 32", "backup_entropy": "false",
         "target_entropy": "-3", "num_critics": 10.0, "tau": 1},
    )  # fmt: skip
    expected = {"gamma": 0.9, "batch_size": 128, "hidden_dims": (64, 32), "backup_entropy": False,
                "target_entropy": -3.0, "num_critics": 10, "tau": 1.0}  # fmt: skip
    assert config == SACConfig(**expected)
    assert config_from_overrides("sac", {"target_entropy": "None", "batch_size": "1e3"}).batch_size == 1000


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"backup_entropy": "maybe"}, "boolean"),
        ({"batch_size": "1.5"}, "integer"),
        ({"gamma": "fast"}, "gamma"),
        ({"gamma": "1.5"}, "gamma must be"),
        ({"actor_q_reduction": "median"}, "actor_q_reduction"),
        ({"target_min_subset": "3"}, "target_min_subset"),
    ],
)
def test_bad_override_values_are_refused_with_the_field_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        config_from_overrides("sac", overrides)


def test_config_dict_is_json_and_rebuilds_the_same_config():
    config = SACConfig(hidden_dims=(32, 32), target_entropy=None)
    as_dict = config_to_dict(config)
    assert config_from_overrides("sac", json.loads(json.dumps(as_dict))) == config


def test_make_algorithm_applies_overrides_and_device():
    overrides = {"batch_size": "64", "demo_ratio": 0.25}
    algorithm = make_algorithm("sac", state_spec(), overrides, torch.device("cpu"), 3)
    assert isinstance(algorithm, SAC) and algorithm.device == torch.device("cpu")
    assert (algorithm.sampling.batch_size, algorithm.sampling.demo_ratio) == (64, 0.25)


def test_wrong_config_type_is_refused():
    with pytest.raises(TypeError, match="SACConfig"):
        SAC(object(), state_spec(), torch.device("cpu"))
