"""/metrics over real HTTP reflects real traffic: transitions sent, acked and received per actor."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actor.sender import Sender
from common import metrics
from learner.server import LearnerServer
from common.ports import free_port_pair
from tests.integration.test_transport import SPEC, Store, hello, transitions

pytestmark = pytest.mark.timeout(60)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_endpoint_counts_what_crossed_the_wire(port, monkeypatch):
    monkeypatch.setattr(metrics, "_roles", set())  # serve every role: this process is learner and actor at once
    http_port = free_port_pair()
    assert metrics.serve(http_port)
    assert not metrics.serve(http_port)  # a busy port is reported, not fatal
    server = LearnerServer("127.0.0.1", port, SPEC, Store()).start()
    sender = Sender("127.0.0.1", port, hello("scraped")).start()
    for item in transitions(0, 77):
        sender.submit(item)
    assert sender.close(flush_timeout_s=10)
    server.close()
    samples = scrape(http_port)
    labels = (("actor_id", "scraped"), ("robot", SPEC.name))
    assert samples[("tandem_learner_transitions_received_total", labels)] == 77
    assert samples[("tandem_actor_transitions_acked_total", labels)] == 77
    assert samples[("tandem_actor_transitions_sent_total", labels)] == 77
    assert samples[("tandem_learner_bytes_received_total", labels)] > 77 * 4 * 4
    for name in (
        "tandem_learner_updates_total", "tandem_learner_update_seconds_count", "tandem_learner_policy_version"
    ):
        assert any(key[0] == name for key in samples), name


def test_an_actor_process_serves_its_own_series_from_zero_and_no_learner_series(monkeypatch):
    monkeypatch.setattr(metrics, "_roles", set())  # this process plays every role in other tests
    http_port = free_port_pair()
    assert metrics.serve(http_port)
    metrics.init_actor("fresh", "fake")
    samples = scrape(http_port)
    labels = (("actor_id", "fresh"), ("robot", "fake"))
    assert not [name for name, _ in samples if name.startswith("tandem_learner_")]
    for name in ("tandem_actor_intervention_steps_total", "tandem_actor_reconnects_total",
                 "tandem_actor_transitions_spooled_total", "tandem_actor_spool_transitions"):  # fmt: skip
        assert samples[(name, labels)] == 0, name
    assert samples[("tandem_actor_safety_stops_total", tuple(sorted(labels + (("reason", "watchdog"),))))] == 0
    metrics.init_learner()  # a process that is both (as in the tests) serves both
    samples = scrape(http_port)
    assert samples[("tandem_learner_rejected_messages_total", (("reason", "sequence_gap"),))] >= 0
    assert any(name == "tandem_learner_updates_total" for name, _ in samples)
