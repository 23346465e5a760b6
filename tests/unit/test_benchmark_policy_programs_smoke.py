"""benchmarks/policy_programs.py: the --quick smoke runs every program on the LIMO twin and prints the table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


def test_quick_run_prints_the_period_and_program_time_of_every_program():
    result = subprocess.run([sys.executable, "-m", "benchmarks.policy_programs", "--quick"], capture_output=True,
                            text=True, timeout=170, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {m.group(1): m for m in re.finditer(r"^(\w+)\s+(\d+)\s+([\d.]+)ms\s+([\d.]+)ms\s+([\d.]+)x(.*)$",
                                                result.stdout, re.MULTILINE)}  # fmt: skip
    assert set(rows) == {"one_step", "chunked", "gated", "ensembled"}, result.stdout
    assert all(int(row.group(2)) == 2 * 19 for row in rows.values()), "2 rounds of 20-step episodes, 19 periods each"
    assert float(rows["one_step"].group(5)) == 1.0
    assert "replan" in rows["chunked"].group(6) and "queued" in rows["chunked"].group(6)
    assert "replan" in rows["ensembled"].group(6) and "forward" in rows["gated"].group(6)
