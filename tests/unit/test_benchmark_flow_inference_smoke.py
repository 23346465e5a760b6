"""benchmarks/flow_inference.py: the --quick smoke times ALOE's chunk plans and prints the ratio to the budget."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def test_quick_run_prints_a_plan_time_and_budget_ratio_per_twin_and_observation():
    result = subprocess.run([sys.executable, "-m", "benchmarks.flow_inference", "--quick"], capture_output=True,
                            text=True, timeout=110, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    pattern = r"^(\w+)\s+(\S+)\s+10\s+10\s+3\s+([\d.]+)ms\s+([\d.]+)ms\s+300ms\s+100ms\s+([\d.]+)$"
    rows = {(m.group(1), m.group(2)): m for m in re.finditer(pattern, result.stdout, re.MULTILINE)}
    assert set(rows) == {(t, o) for t in ("limo_sim", "go2_sim") for o in ("state", "state+84x84")}, result.stdout
    for row in rows.values():
        p50, p99, ratio = float(row.group(3)), float(row.group(4)), float(row.group(5))
        assert 0 < p50 <= p99 and ratio == pytest.approx(p99 / 300.0, abs=1e-4)
