"""keep_freed_memory: the learner's per-batch expansion stops page-faulting (counted, not timed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.allocator import OPT_OUT

ROOT = Path(__file__).resolve().parents[2]
# The learner's unpack of a 100-transition batch of 128x128 frames: two 1.6 MB arrays alive at once, the
# previous batch's freed as the next is made. Prints whether the thresholds were set and the minor page
# faults per batch after a few warm-up batches.
EXPAND_BATCHES = """
import resource
import numpy as np
from common.allocator import keep_freed_memory
applied = keep_freed_memory()
rows = np.random.default_rng(0).integers(0, 256, (101, 128, 128, 1), dtype=np.uint8)
index = np.arange(100)
def expand():
    return {"observation": rows[index], "next_observation": rows[index + 1]}
for _ in range(5):
    columns = expand()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    columns = expand()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def faults_per_batch(default_heap: bool) -> tuple[bool, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), OPT_OUT: "1" if default_heap else ""}
    done = subprocess.run([sys.executable, "-c", EXPAND_BATCHES], env=env, capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    applied, faults = done.stdout.split()
    return applied == "True", float(faults)


@pytest.mark.timeout(120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_serves_each_batch_without_new_pages_where_the_default_faults_every_batch():
    applied, kept = faults_per_batch(default_heap=False)
    if not applied:
        pytest.skip("this C library has no mallopt (not glibc)")
    opted_out, default = faults_per_batch(default_heap=True)
    assert not opted_out  # TANDEM_DEFAULT_HEAP=1 leaves glibc's thresholds alone
    assert default > 100  # why the module exists: fresh pages for most of the 3.2 MB every batch
    assert kept < 1
