"""benchmarks/watchdog_latency.py runs against the peers and prints one row per figure beside its target."""

from __future__ import annotations

import sys

import pytest

from benchmarks import watchdog_latency as bench

pytestmark = pytest.mark.timeout(120)


def test_a_short_run_prints_each_figure_with_its_target(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["watchdog_latency", "--trials", "2", "--drivers", "watchdog,rm65"])
    bench.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if " ms: min " in line]
    assert [row.split()[:3] for row in rows] == [
        ["wd50ms", "watchdog", "stop"], ["wd200ms", "watchdog", "stop"], ["rm65", "watchdog", "stop"],
        ["rm65", "stalled", "step"], ["rm65", "silent", "connect"], ["rm65", "silent", "observe"]]
    assert all(" target " in row and row.rstrip().endswith(("/1", "/2")) for row in rows)
