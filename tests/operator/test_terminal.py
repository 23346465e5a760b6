"""The `actor` program on a real pseudo-terminal, as an operator over SSH would run it.

Each test starts `python -m actor` (or the actor's terminal wiring) as a child process whose stdin,
stdout and stderr are a pty, types keys into it, and reads the screen.
"""

from __future__ import annotations

import re
import signal
import sys
import textwrap

import numpy as np
import pytest

from common.episodes import episode_bounds, load_episodes
from learner.app import Learner, LearnerConfig
from learner.server import LearnerServer
from robots.sim.limo import make_limo_spec
from tests.conftest import wait_until
from tests.integration.test_transport import Store
from tests.operator.pty_process import PtyProcess, same_mode, screen_lines

pytestmark = pytest.mark.timeout(60)
STATUS = re.compile(r"^ep \d+ step \d+ \|")


@pytest.fixture
def terminals():
    started: list[PtyProcess] = []
    yield started.append
    for process in started:
        process.close()


def actor(*args: str) -> PtyProcess:
    return PtyProcess.module("actor", "--robot", "limo_sim", "--metrics-port", "0", "--time-scale", "2",
                             "-o", "max_steps=10000", *args)  # fmt: skip


def test_an_operator_session_labels_intervenes_and_quits_cleanly(port, terminals):
    store, summaries = Store(), []
    server = LearnerServer("127.0.0.1", port, make_limo_spec(), store, on_episode=lambda _a, s: summaries.append(s))
    server.start()
    try:
        term = actor("--learner", f"127.0.0.1:{port}", "--actor-id", "op")
        terminals(term)
        term.expect("operator console on", timeout_s=30)
        term.expect(r"learner up")
        term.send("i")
        term.expect("intervention ON")
        term.send("w")
        term.expect(r"INTERVENING")
        term.send("i")
        term.expect("intervention off")
        term.send("s")
        term.expect(r"episode \d+: success by operator")
        term.send("?")
        term.expect("operator keys:")
        wait_until(lambda: any(s.outcome_source == "operator" and s.success for s in summaries), 10, "the label")
        term.send("\x03")  # Ctrl-C: SIGINT from the terminal, as from a keyboard
        assert term.wait() == 0, term.output[-2000:]
    finally:
        server.close()
    labelled = next(s for s in summaries if s.outcome_source == "operator")
    assert labelled.interventions > 0
    columns = {name: np.concatenate([c[name] for c in store.columns["op"]]) for name in ("episode", "intervention",
                                                                                       "action", "reward")}  # fmt: skip
    mine = columns["episode"] == labelled.episode
    assert columns["intervention"][mine].sum() == labelled.interventions
    driven = columns["action"][mine & columns["intervention"]]
    assert np.any(np.all(np.isclose(driven, [0.5, 0.0]), axis=1)), "w at 50% speed, normalised, flagged"
    assert columns["reward"][mine][-1] == 1.0
    assert same_mode(term.attrs(), term.original_attrs), "the terminal was left raw"
    lines = [line for line in screen_lines(term.raw_output) if line.strip()]
    assert not any(STATUS.search(line) and " actor " in line for line in lines), "a log line ran into the status"
    assert sum(bool(STATUS.search(line)) for line in lines) <= 2, "the status line scrolled instead of redrawing"


def test_sigterm_stops_the_actor_and_restores_the_terminal(port, terminals):
    server = LearnerServer("127.0.0.1", port, make_limo_spec(), Store()).start()
    try:
        term = actor("--learner", f"127.0.0.1:{port}")
        terminals(term)
        term.expect("operator console on", timeout_s=30)
        assert not termios_lflag(term) & icanon(), "the console should have the terminal in cbreak mode"
        term.process.send_signal(signal.SIGTERM)  # what systemd or `kill` sends; Ctrl-C is in the session test
        term.expect(r"SIGTERM: stopping the robot")
        assert term.wait(timeout_s=30) == 0
    finally:
        server.close()
    assert same_mode(term.attrs(), term.original_attrs), "terminal left raw after SIGTERM"


def test_a_crash_inside_the_console_restores_the_terminal(terminals):
    script = textwrap.dedent("""
        import sys, threading
        from actor.operator import Operator, OperatorConfig
        from robots.fake import FakeRobot
        from actor.terminal import operator_terminal
        robot = FakeRobot()
        operator = Operator(robot.spec, robot.stop, OperatorConfig())
        with operator_terminal(operator) as on_status:
            print("console ready", flush=True)
            while not operator.paused:   # wait for the space key, then crash
                threading.Event().wait(0.01)
            raise RuntimeError("simulated crash in the control loop")
    """)
    term = PtyProcess([sys.executable, "-c", script])
    terminals(term)
    term.expect("console ready", timeout_s=30)
    assert not termios_lflag(term) & icanon()
    term.send(" ")
    term.expect("RuntimeError: simulated crash")
    assert term.wait() == 1
    assert same_mode(term.attrs(), term.original_attrs)


@pytest.mark.parametrize("demo_name", ["demo.npz", "lerobot_demo"])  # a Tandem demo file, a LeRobot dataset
def test_a_recorded_demo_loads_into_the_learner_replay_and_matches_what_was_driven(tmp_path, terminals, demo_name):
    demo = tmp_path / demo_name
    term = actor("--record-demo", str(demo))
    terminals(term)
    term.expect("recording demonstrations", timeout_s=30)
    term.expect(r"ep 1 step [1-9]")
    term.send("w")
    term.expect(r"ep 1 step [1-9]\d")  # at least ten steps recorded
    term.send("\r")
    term.expect("demo: kept episode")
    term.send("f")
    term.expect("demo: episode not kept")
    term.send("\x03")
    assert term.wait() == 0, term.output[-2000:]
    spec, columns = load_episodes(demo)
    assert demo.is_file() == demo_name.endswith(".npz")
    learner = Learner(LearnerConfig(algo="sac", demo=str(demo), run_dir=str(tmp_path / "run"), metrics_port=0))
    learner.build(spec)  # exactly what `learner --demo FILE` does before it starts listening
    assert learner.replay.demo_size == len(columns["reward"]) > 10
    assert len(episode_bounds(columns["episode"])) == 1, "only the success-labelled episode is kept"
    assert columns["intervention"].all() and (columns["policy_version"] == -1).all()
    assert columns["reward"][-1] == 1.0 and columns["terminated"][-1] and columns["terminated"].sum() == 1
    actions = columns["action"]
    forward = np.all(np.isclose(actions, [0.5, 0.0]), axis=1)
    idle = np.all(actions == 0.0, axis=1)
    assert forward.any() and np.all(forward | idle), "only what was driven: w at 50% speed, or standing still"
    state, next_state = columns["observation/state"], columns["next_observation/state"]
    np.testing.assert_array_equal(state[1:], next_state[:-1])  # one continuous episode
    assert next_state[forward][:, 8].max() > 0.1, "the twin measured forward motion while w was held"


def termios_lflag(term: PtyProcess) -> int:
    return term.attrs()[3]


def icanon() -> int:
    import termios

    return termios.ICANON
