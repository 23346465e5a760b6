"""benchmarks/ingest.py: real image actors reach a real learner and the report counts what it stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.ingest import MIB_PER_TRANSITION, parse_args, report
from benchmarks.ray_ingest import Measurement

ROOT = Path(__file__).resolve().parents[2]


def test_the_report_names_the_count_where_storing_stops_scaling(tmp_path):
    args = parse_args(["--counts", "1,2,4", "--out", str(tmp_path)])
    rates = {("store", 1): 900.0, ("store", 2): 1700.0, ("store", 4): 1750.0, ("train", 1): 500.0,
             ("train", 2): 990.0, ("train", 4): 1980.0}  # fmt: skip
    results = [Measurement(0, count, mode, rate=rate, learner_cpu=0.5, machine_busy=1.0)
               for (mode, count), rate in rates.items()]  # fmt: skip
    text = report(results, [1, 2, 4], args, {"date": "d", "command": "c"})
    assert "Ingest limit, store: 1,750 transitions/s, reached at 2 actor(s)" in text
    assert "Ingest limit, train: not reached up to 4 actors" in text
    row = next(line for line in text.splitlines() if line.startswith("|      4 |"))
    assert row.split("|")[-2].strip() == f"{1980 * MIB_PER_TRANSITION:.0f}"  # MB/s of images stored while training


def test_an_unknown_mode_is_refused_by_name():
    with pytest.raises(SystemExit):
        parse_args(["--modes", "store,fly"])


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_one_image_actor_delivers_to_a_storing_learner(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.ingest", "--counts", "1", "--modes", "store", "--window-s", "2",
         "--warm-s", "0.5", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line for line in (tmp_path / "ingest.md").read_text().splitlines() if line.startswith("|      1 |")]
    stored = float(rows[0].split("|")[3].replace(",", ""))
    assert stored > 0, rows
