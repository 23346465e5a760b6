"""Fixtures for the fault-injection suite: CURVE key directories, and no process outliving its test."""

from __future__ import annotations

import shutil

import pytest
from zmq.auth import create_certificates

from common.transport import ACTOR_ID_FILE, ACTOR_KEY, LEARNER_KEY, load_actor_security, load_learner_security
from learner.keys import create_actor_keys, create_learner_keys
from tests.faults.processes import kill_leftovers


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """A test that fails mid-way leaves its learner running (holding a port and a core for the rest of the
    suite); kill whatever it started."""
    yield
    kill_leftovers()


@pytest.fixture
def keys(tmp_path):
    """A learner key directory allowing actor 'good', plus an 'intruder' key directory the learner never saw."""
    root = create_learner_keys(tmp_path / "keys")
    good = create_actor_keys(root, "good")
    intruder = tmp_path / "intruder"
    intruder.mkdir()
    create_certificates(intruder, ACTOR_KEY)
    shutil.copy(root / f"{LEARNER_KEY}.key", intruder / f"{LEARNER_KEY}.key")
    (intruder / ACTOR_ID_FILE).write_text("good\n")  # claims an allowed name: the key decides, not the text
    return {"learner": load_learner_security(root), "good": load_actor_security(good),
            "intruder": load_actor_security(intruder), "root": root}  # fmt: skip
