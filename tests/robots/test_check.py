"""`actor --robot NAME --check [--move]` against the fake robot and the LIMO driver on its pty peer."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from actor.__main__ import main
from tests.robots.peers.limo_base import FakeLimoBase

pytestmark = pytest.mark.timeout(60)


def test_check_streams_observations_without_moving(tmp_path):
    base = FakeLimoBase(str(tmp_path / "ttyLIMO")).start()
    try:
        result = CliRunner().invoke(main, ["--robot", "limo", "-o", f"port={base.port}", "--check",
                                           "--check-observations", "5", "--no-console"])
        assert result.exit_code == 0, result.output
        assert "observation state: float32[4]" in result.output and "5 observations at" in result.output
        assert "check passed" in result.output
        values = [v[:2] for _, v in base.commands]
        assert all(v == (0.0, 0.0) for v in values), values  # only stops: nothing moved
    finally:
        base.close()


def test_check_move_is_small_bounded_and_ends_stopped(tmp_path):
    base = FakeLimoBase(str(tmp_path / "ttyLIMO")).start()
    try:
        result = CliRunner().invoke(main, ["--robot", "limo", "-o", f"port={base.port}", "--check", "--move",
                                           "--check-observations", "2", "--no-console"])
        assert result.exit_code == 0, result.output
        assert base.wait_for(lambda b: b.command_count() >= 10, 3.0)
        values = np.array([v[:2] for _, v in base.commands])
        assert np.abs(values[:, 0]).max() == pytest.approx(0.05) and np.all(values[:, 1] == 0)
        assert values[:, 0].sum() == pytest.approx(0.0)  # as far back as forward
        assert tuple(values[-1]) == (0.0, 0.0)
    finally:
        base.close()


def test_check_reports_a_silent_robot_clearly(tmp_path):
    base = FakeLimoBase(str(tmp_path / "ttyLIMO"))
    base.silent = True
    base.start()
    try:
        result = CliRunner().invoke(main, ["--robot", "limo", "-o", f"port={base.port}", "-o", "connect_timeout_s=0.3",
                                           "--check", "--no-console"])
        assert result.exit_code == 1 and "CHECK FAILED: limo: no state frames" in result.output, result.output
    finally:
        base.close()


def test_move_without_check_is_a_usage_error():
    result = CliRunner().invoke(main, ["--robot", "fake", "--move"])
    assert result.exit_code == 2 and "--move only goes with --check" in result.output


def test_check_on_the_fake_robot():
    result = CliRunner().invoke(main, ["--robot", "fake", "--check", "--check-observations", "3", "--move"])
    assert result.exit_code == 0 and "moved back" in result.output, result.output
