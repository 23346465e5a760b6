"""CURVE on real sockets: allowed keys get in, unknown keys are refused and counted, weights only from the learner."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import zmq

from actor.sender import Sender
from actor.weights import WeightClient
from common.codec import encode
from common.transport import SecurityError, load_learner_security, require_security, transitions_endpoint
from learner.keys import create_learner_keys
from learner.server import LearnerServer
from tests.conftest import metric, wait_until
from tests.integration.test_transport import SPEC, Store, hello, make_weights, transitions

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def secure_server(port, keys):
    store = Store()
    server = LearnerServer("127.0.0.1", port, SPEC, store, security=keys["learner"]).start()
    server.store_log = store
    yield server
    server.close()


def rejected(reason: str) -> float:
    return metric("tandem_learner_rejected_messages_total", reason=reason)


def test_an_allowed_key_delivers_everything(secure_server, port, keys):
    sender = Sender("127.0.0.1", port, hello("good"), security=keys["good"]).start()
    for item in transitions(0, 100):
        assert sender.submit(item)
    assert sender.close(flush_timeout_s=15.0), f"{sender.outstanding()} never acked"
    assert secure_server.store_log.markers("good") == list(range(100))


def test_an_unknown_key_is_refused_counted_and_stores_nothing(secure_server, port, keys):
    before = rejected("unauthorized_key")
    sender = Sender("127.0.0.1", port, hello("good"), security=keys["intruder"]).start()
    for item in transitions(0, 20):
        sender.submit(item)
    wait_until(lambda: rejected("unauthorized_key") > before, what="the refusal to be counted")
    assert not sender.connected.is_set()
    sender.close(flush_timeout_s=0.3)
    assert secure_server.store_log.markers("good") == []


def test_a_hello_naming_another_actor_is_refused(secure_server, port, keys):
    before = rejected("identity_mismatch")
    sender = Sender("127.0.0.1", port, hello("someone-else"), security=keys["good"]).start()
    assert sender.refused.wait(timeout=10)
    assert "'good'" in sender.refused_reason and "someone-else" in sender.refused_reason
    assert rejected("identity_mismatch") == before + 1
    sender.close(flush_timeout_s=0.2)


def test_a_plaintext_client_gets_nothing_in(secure_server, port):
    before = rejected("handshake_failed_protocol") + rejected("handshake_failed")
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(transitions_endpoint("127.0.0.1", port))
    # The handshake fails whether or not the message is queued; once it has failed the DEALER has no
    # peer and a blocking send would wait forever (seen on a loaded machine), so do not block.
    with contextlib.suppress(zmq.Again):
        sock.send_multipart(encode(hello("good")), flags=zmq.NOBLOCK)
    wait_until(lambda: rejected("handshake_failed_protocol") + rejected("handshake_failed") > before,
               what="the failed handshake to be counted")  # fmt: skip
    assert sock.poll(200) == 0 and not secure_server.sessions
    sock.close()


def test_weights_reach_an_allowed_actor_and_nobody_else(secure_server, port, keys, tmp_path):
    forged = load_learner_security(create_learner_keys(tmp_path / "forged"))
    wrong_server = dataclasses.replace(keys["good"], server_public=forged.public)
    clients = {
        "good": WeightClient("127.0.0.1", port, SPEC, security=keys["good"]).start(),
        "intruder": WeightClient("127.0.0.1", port, SPEC, security=keys["intruder"]).start(),
        "wrong_server": WeightClient("127.0.0.1", port, SPEC, security=wrong_server).start(),
    }
    try:
        def published_and_received() -> bool:
            secure_server.publish(make_weights(secure_server.latest_version + 2))
            return clients["good"].take_newer(-1) is not None

        wait_until(published_and_received, what="weights at the allowed actor")
        for name in ("intruder", "wrong_server"):
            assert clients[name].take_newer(-1) is None, name
    finally:
        for client in clients.values():
            client.close()


def test_the_security_policy():
    assert require_security("127.0.0.1", None, insecure=False, role="learner") is None  # the loopback demo
    with pytest.raises(SecurityError, match="not a loopback"):
        require_security("10.1.2.3", None, insecure=False, role="learner")
    with pytest.raises(SecurityError, match="only allowed on loopback"):
        require_security("0.0.0.0", None, insecure=True, role="actor")


def test_a_revoked_key_is_refused_at_its_next_connection(secure_server, port, keys):
    first = Sender("127.0.0.1", port, hello("good"), security=keys["good"]).start()
    assert first.connected.wait(timeout=10)
    first.close(flush_timeout_s=0.5)
    (keys["root"] / "authorized_actors" / "good.key").unlink()  # revocation: no restart needed
    before = rejected("unauthorized_key")
    again = Sender("127.0.0.1", port, hello("good"), security=keys["good"]).start()
    wait_until(lambda: rejected("unauthorized_key") > before, what="the revoked key to be refused")
    assert not again.connected.is_set()
    again.close(flush_timeout_s=0.2)


def test_learner_keys_command_lays_out_both_sides(tmp_path, capsys):
    from common.transport import load_actor_security
    from learner.keys import keys_main

    assert keys_main([str(tmp_path / "k"), "--actor", "arm-1", "--actor", "arm-2"]) == 0
    learner = load_learner_security(tmp_path / "k")
    arm = load_actor_security(tmp_path / "k" / "actors" / "arm-1")
    assert arm.actor_id == "arm-1" and arm.server_public == learner.public
    assert sorted(p.name for p in learner.allowed_dir.iterdir()) == ["arm-1.key", "arm-2.key"]
    assert oct((tmp_path / "k" / "learner.key_secret").stat().st_mode & 0o777) == "0o600"
    assert "actor --keys" in capsys.readouterr().out


def test_keys_command_is_idempotent(tmp_path):
    from common.transport import load_actor_security
    from learner.keys import create_actor_keys

    first = load_actor_security(create_actor_keys(tmp_path, "robot"))
    again = load_actor_security(create_actor_keys(tmp_path, "robot"))
    assert first.public == again.public and first.server_public == again.server_public
