"""`PeriodLog`: the control loop's tick log that benchmarks/control_period.py reads."""

import time

import numpy as np

from common.timing import PeriodLog


def test_ticks_come_back_in_order_with_their_period_and_version_after_a_flush(tmp_path):
    path = str(tmp_path / "ticks.f8")
    log = PeriodLog(path, block=4)
    before = time.monotonic()
    for tick in range(10):
        log.record(0.1 + tick / 1000, version=tick // 5)
    assert len(PeriodLog.read(path)) == 8  # two whole blocks written; two ticks still buffered
    log.flush()
    ticks = PeriodLog.read(path)
    assert ticks.shape == (10, 3)
    assert np.all(np.diff(ticks[:, 0]) >= 0) and before <= ticks[0, 0] <= time.monotonic()
    assert np.allclose(ticks[:, 1], 0.1 + np.arange(10) / 1000)
    assert list(ticks[:, 2]) == [0] * 5 + [1] * 5


def test_a_new_log_starts_empty_and_a_torn_last_row_is_not_read(tmp_path):
    path = tmp_path / "ticks.f8"
    path.write_bytes(b"old run")
    log = PeriodLog(str(path), block=1)
    assert len(PeriodLog.read(str(path))) == 0
    log.record(0.05, version=3)
    with open(path, "ab") as f:
        f.write(np.zeros(2, "<f8").tobytes())  # a kill -9 mid-write leaves part of a row
    assert PeriodLog.read(str(path)).tolist()[0][1:] == [0.05, 3.0] and len(PeriodLog.read(str(path))) == 1
