"""Shared fixtures: a free port pair, polling with a deadline (never sleeping to synchronise), metric reads."""

from __future__ import annotations

import os
import time
from typing import Callable

import pytest
from prometheus_client import REGISTRY

from common.ports import free_port_pair

os.environ.setdefault("MUJOCO_GL", "egl")


def wait_until(condition: Callable[[], object], timeout_s: float = 10.0, what: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.01)  # poll interval, not synchronisation: the deadline decides


def transitions_by_episode(recorded: list) -> list[list]:
    """What a control loop submitted (transitions and episode summaries), as each episode's transitions."""
    from common.types import Transition

    by_episode: dict[int, list] = {}
    for item in recorded:
        if isinstance(item, Transition):
            by_episode.setdefault(item.episode, []).append(item)
    return list(by_episode.values())


def metric(name: str, **labels: str) -> float:
    """Current value of a Prometheus sample (0.0 if it was never set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def port() -> int:
    return free_port_pair()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need a real robot")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs real hardware; run with --hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


class RecordingServer:
    """The learner's server reduced to what `Learner.build` and publishing need: it keeps what is published."""

    def __init__(self) -> None:
        from robots.fake import FakeRobot  # here, so importing conftest stays light

        self.spec = FakeRobot().spec
        self.published: list = []

    def publish(self, weights) -> None:
        self.published.append(weights)
