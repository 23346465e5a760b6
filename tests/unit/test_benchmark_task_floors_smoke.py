"""benchmarks.task_floors: constant-action floors under the benchmark tasks."""

from __future__ import annotations

import pytest

from benchmarks import task_floors

pytestmark = pytest.mark.timeout(120)


def test_a_constant_action_is_scored_on_the_tasks_twin_and_reversing_never_reaches_the_goal():
    successes, steps = task_floors.constant_action_success("limo_sim", (-1.0, 0.0), episodes=3)
    assert successes == 0 and 1 <= steps <= 100  # backing away from the ball: a failure or the step limit


def test_the_table_has_a_row_per_constant_action(capsys):
    assert task_floors.main(["--episodes", "1", "--tasks", "slalom_go2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| slalom_go2 |")]
    assert len(rows) == len(task_floors.CONSTANT_ACTIONS["go2_sim"])
