"""benchmarks/safe_stop.py kills real actor processes against the peers and prints one row per figure."""

from __future__ import annotations

import sys

import pytest

from benchmarks import safe_stop as bench

pytestmark = pytest.mark.timeout(120)


def test_a_short_run_prints_kill_to_stop_and_supervisor_exit_per_driver(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["safe_stop", "--kills", "1", "--drivers", "rm65,limo", "--no-compare"])
    bench.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if " ms: min " in line]
    assert [row.split()[:4] for row in rows] == [
        ["rm65", "kill", "->", "stop"], ["rm65", "kill", "->", "gone"],
        ["limo", "kill", "->", "stop"], ["limo", "kill", "->", "gone"]]
    assert all(" target " in row and " n=  1 " in row for row in rows)
