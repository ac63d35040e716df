"""A lab's Kafka listeners in the web app: open them, run a real client against the live lab, see it, close them."""

from __future__ import annotations

import re
import socket

import pytest
from django.test import Client
from kafka import KafkaProducer

from core_log.snapshot import restore, snapshot
from messaging_lab.labs.models import Lab
from messaging_lab.labs.runtime import close_world, runtime
from tests.wire.clients import Member, produce, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data"), pytest.mark.slow]
TOPIC = "machine.telemetry"


def _create(client: Client) -> Lab:
    response = client.post("/labs/new", {"template": "sandbox", "name": "Wire"})
    assert response.status_code == 302, response.content[:300]
    return Lab.objects.get(pk=response["Location"].strip("/").split("/")[-1])


def _wire(client: Client, lab: Lab, action: str | None = None):  # noqa: ANN202
    if action is None:
        return client.get(f"/labs/{lab.pk}/wire")
    return client.post(f"/labs/{lab.pk}/wire", {"action": action}, HTTP_HX_REQUEST="true")


def _view(client: Client, lab: Lab) -> dict:
    return client.get(f"/labs/{lab.pk}/state.json").json()


def _snapshot_and_restore(world, tmp_path) -> dict:  # noqa: ANN001
    restored = restore(snapshot(world), str(tmp_path / "restored"))
    try:
        departed = [c for c in restored.cluster.clients.values() if getattr(c, "kind", "") == "wire-departed"]
        assert departed and not any(c.alive for c in departed)
        return restored.view()
    finally:
        close_world(restored)


def test_a_real_client_produces_into_a_live_lab_joins_its_group_and_shows_in_the_view(client, tmp_path):
    """Ensure opening the listeners shows a bootstrap address and snippets naming it and the lab's topic; a
    kafka-python producer's records land in the lab's partitions, its consumer group is the lab's own kind of
    group, both show in the live view under their client.id; closing the listeners refuses connections."""
    lab = _create(client)
    page = client.get(f"/labs/{lab.pk}/")
    assert b'id="wire-panel"' in page.content and b"Your own Kafka client" in page.content
    assert b"Open Kafka listeners" in _wire(client, lab).content
    opened = _wire(client, lab, "open")
    assert opened.status_code == 200, opened.content[:500]
    text = opened.content.decode()
    bootstrap = re.search(r'id="wire-bootstrap">([^<]+)<', text).group(1)
    assert bootstrap.count("127.0.0.1:") == 3 and f'"{TOPIC}"' in text and "snippet-confluent-kafka" in text

    before = sum(p["replica"][str(p["leader"])]["log_end_offset"] for p in _view(client, lab)["partitions"])
    values = [b"learner-%d" % i for i in range(30)]
    acked, errors = produce("kafka-python", bootstrap, TOPIC, values, client_id="learner-producer")
    assert sorted(acked) == sorted(values), errors
    member = Member("kafka-python", bootstrap, TOPIC, "learner-group", "learner-consumer").start()
    try:
        wait_for(lambda: set(values) <= set(member.got), "the learner's consumer to read its records")
        view = _view(client, lab)
        clients = {c["client_id"]: c for c in view["wire_clients"]}
        assert "learner-consumer" in clients and "consumer" in clients["learner-consumer"]["roles"]
        live = KafkaProducer(bootstrap_servers=bootstrap, client_id="learner-live-producer", acks="all")
        try:  # a producer shows while it is connected, with the records it wrote
            for i in range(7):
                live.send(TOPIC, value=b"live-%d" % i).get(timeout=30)
            shown = {c["client_id"]: c for c in _view(client, lab)["wire_clients"]}["learner-live-producer"]
            assert "producer" in shown["roles"] and shown["records_produced"] == 7 and shown["requests"]["Produce"]
        finally:
            live.close()
        group = next(g for g in view["groups"] if g["group_id"] == "learner-group")
        assert [m["client_id"] for m in group["members"]] == ["learner-consumer"]
        # A timeline checkpoint taken now keeps departed stand-ins for the sockets: it still snapshots and
        # restores, and the restored lab shows no real clients.
        restored_view = runtime.call(lambda: _snapshot_and_restore(runtime.get(lab.pk).world, tmp_path))
        assert restored_view["wire_clients"] == []
    finally:
        member.stop()
    after = sum(p["replica"][str(p["leader"])]["log_end_offset"] for p in _view(client, lab)["partitions"])
    assert after >= before + 37  # the lab's own producer keeps writing too

    ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", bootstrap)]
    closed = _wire(client, lab, "close")
    assert b"Open Kafka listeners" in closed.content
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_while_the_listeners_are_open_the_lab_runs_at_real_time(client):
    """Ensure opening the listeners resumes a paused lab at 1×, and a faster speed, a pause, a step and a
    fast-forward are refused with the reason until they close; a bad action is a 400 that says what is
    allowed."""
    lab = _create(client)
    client.post(f"/labs/{lab.pk}/command", {"kind": "set_speed", "speed": "5.0"})
    client.post(f"/labs/{lab.pk}/command", {"kind": "pause"})
    assert Lab.objects.get(pk=lab.pk).paused
    assert _wire(client, lab, "open").status_code == 200
    assert Lab.objects.get(pk=lab.pk).speed == 1.0 and not Lab.objects.get(pk=lab.pk).paused
    for command in ({"kind": "set_speed", "speed": "5.0"}, {"kind": "pause"}, {"kind": "step"},
                    {"kind": "fast_forward", "seconds": "10"}):
        refused = client.post(f"/labs/{lab.pk}/command", command)
        assert refused.status_code == 400 and b"real time" in refused.content, command
    bad = _wire(client, lab, "explode")
    assert bad.status_code == 400 and b"open or close" in bad.content
    _wire(client, lab, "close")
    assert client.post(f"/labs/{lab.pk}/command", {"kind": "set_speed", "speed": "5.0"}).status_code == 200


def test_deleting_a_lab_closes_its_listeners(client):
    """Ensure a deleted lab's ports stop accepting connections (the runtime's forget hook closes them)."""
    lab = _create(client)
    bootstrap = re.search(r'id="wire-bootstrap">([^<]+)<', _wire(client, lab, "open").content.decode()).group(1)
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    client.post(f"/labs/{lab.pk}/delete")

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return False
        except (ConnectionRefusedError, ConnectionResetError):
            return True
    wait_for(refused, "the deleted lab's port to close", timeout_s=10)
