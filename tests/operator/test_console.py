"""The keyboard reader on its own: tokenising, the keymap, and the terminal mode on a real pty."""

from __future__ import annotations

import os
import queue
import sys
import termios

import pytest

from actor.console import Console, Keymap, parse_keys
from tests.operator.pty_process import PtyProcess, same_mode, screen_lines

pytestmark = pytest.mark.timeout(20)


def test_bursts_arrows_and_lone_escape_are_tokenised():
    assert parse_keys("a\x1b[A\x1b[B\x1b[C\x1b[D q") == ["a", "UP", "DOWN", "RIGHT", "LEFT", "SPACE", "q"]
    assert parse_keys("\x1bOA\x1b[1;5D") == ["UP", "LEFT"]  # application mode, and Ctrl+arrow
    assert parse_keys("\x1b") == ["ESC"]
    assert parse_keys("\x1bx") == ["ESC", "x"]  # ESC followed by a key: both are e-stops
    assert parse_keys("\r+-?") == ["ENTER", "+", "-", "?"]


def test_teleop_keys_win_only_while_intervening_and_bindings_can_change():
    keymap = Keymap()
    assert keymap.command("s", intervening=False) == "success"
    assert keymap.command("s", intervening=True) == "backward"
    assert keymap.command("ENTER", intervening=True) == "success"
    assert keymap.command("UP", intervening=False) is None  # teleop keys do nothing unless intervening
    assert keymap.command("x", intervening=True) == "estop"
    custom = Keymap.with_overrides({"success": "y", "estop": "ESC,k"})
    assert custom.command("y", False) == "success" and custom.command("s", False) is None
    assert custom.command("k", True) == "estop"
    with pytest.raises(ValueError, match="unknown operator command 'fly'"):
        Keymap.with_overrides({"fly": "z"})
    with pytest.raises(ValueError, match="e-stop needs at least one key"):
        Keymap.with_overrides({"estop": ""})
    assert Keymap.with_overrides({"pause": "p,space"}).command("SPACE", False) == "pause"


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def test_keys_arrive_in_order_and_the_terminal_is_raw_only_while_open(pty_pair):
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    keys: queue.Queue = queue.Queue()
    with Console(lambda key, _t: keys.put(key), fd=slave) as console:
        assert console.active
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & termios.ICANON and not lflag & termios.ECHO and lflag & termios.ISIG
        os.write(master, b"i\x1b[Aw ")
        assert [keys.get(timeout=5) for _ in range(4)] == ["i", "UP", "w", "SPACE"]
    assert same_mode(termios.tcgetattr(slave), before)


def test_the_terminal_is_restored_when_the_body_raises(pty_pair):
    _, slave = pty_pair
    before = termios.tcgetattr(slave)
    with pytest.raises(RuntimeError):
        with Console(lambda *_: None, fd=slave):
            raise RuntimeError("crash inside the control loop")
    assert same_mode(termios.tcgetattr(slave), before)


def test_a_failing_key_handler_does_not_kill_the_keyboard(pty_pair):
    master, slave = pty_pair
    keys: queue.Queue = queue.Queue()

    def handler(key, _t):
        if key == "a":
            raise ValueError("bad handler")
        keys.put(key)

    with Console(handler, fd=slave):
        os.write(master, b"a")
        os.write(master, b"x")
        assert keys.get(timeout=5) == "x"


def test_without_a_terminal_the_console_is_off():
    read, write = os.pipe()
    try:
        with Console(lambda *_: None, fd=read) as console:
            assert not console.active
    finally:
        os.close(read)
        os.close(write)


def test_screen_lines_overwrites_a_redrawn_line():
    raw = "\r\x1b[2Kstatus 1\r\x1b[2Klog line\nstatus 1\r\x1b[2Kstatus 2"
    assert screen_lines(raw) == ["log line", "status 2"]


def test_a_background_job_leaves_the_terminal_alone():
    """`actor ... &` in an interactive shell: changing the terminal mode would stop the job (SIGTTOU)."""
    inner = "from actor.console import Console\nwith Console(lambda *_: None) as c: print('console', c.active)"
    # The pty's session leader starts the job in its own process group, as a shell does for `&`.
    job = f"subprocess.run([sys.executable, '-c', {inner!r}], process_group=0)"
    script = f"import subprocess, sys; sys.exit({job}.returncode)"
    term = PtyProcess([sys.executable, "-c", script])
    try:
        term.expect("console False", timeout_s=20)
        assert term.wait() == 0
    finally:
        term.close()
