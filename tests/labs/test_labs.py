"""Labs through Django: create, list, limits, ownership, controls with validation, probe, delete."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.test import Client

from messaging_lab.labs.models import MAX_LABS_PER_VISITOR, Lab, LabCommand

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data")]


def _create(client: Client, name: str = "Sandbox") -> Lab:
    response = client.post("/labs/new", {"template": "sandbox", "name": name})
    assert response.status_code == 302, response.content[:500]
    return Lab.objects.get(pk=response["Location"].strip("/").split("/")[-1])


def test_create_lab_runs_the_sandbox_and_lists_it(client):
    """Ensure creating a lab redirects to its page, lists it, and its engine holds the sandbox topic and group."""
    lab = _create(client, "First")
    page = client.get(f"/labs/{lab.pk}/")
    assert page.status_code == 200 and b"First" in page.content and b"/ws/labs/" in page.content
    assert b"First" in client.get("/labs/").content
    state = client.get(f"/labs/{lab.pk}/state.json").json()
    assert [t["name"] for t in state["topics"]] == ["machine.telemetry"]
    assert len(state["partitions"]) == 6 and len(state["brokers"]) == 3
    assert len(lab.pk) >= 20 and lab.share_token != lab.pk


def test_another_browser_cannot_see_or_drive_my_lab(client):
    """Ensure a lab belongs to its browser: another session gets 404 on its page, state and commands."""
    lab = _create(client)
    other = Client()
    assert other.get(f"/labs/{lab.pk}/").status_code == 404
    assert other.get(f"/labs/{lab.pk}/state.json").status_code == 404
    assert other.post(f"/labs/{lab.pk}/command", {"kind": "crash_broker", "broker": "1"}).status_code == 404
    watch = other.get(f"/labs/watch/{lab.share_token}/")
    assert watch.status_code == 200 and b"read-only" in watch.content and b"crash-broker" not in watch.content


def test_labs_per_visitor_limit(client):
    """Ensure a sixth lab is refused with the limit named, and nothing is created."""
    for i in range(MAX_LABS_PER_VISITOR):
        _create(client, f"lab {i}")
    response = client.post("/labs/new", {"template": "sandbox", "name": "one too many"})
    assert response.status_code == 400 and b"delete one first" in response.content
    assert Lab.objects.count() == MAX_LABS_PER_VISITOR


def test_commands_are_validated_logged_and_change_the_cluster(client):
    """Ensure a crash command is applied and logged at its simulated time, and bad input gets an error partial."""
    lab = _create(client)
    ok = client.post(f"/labs/{lab.pk}/command", {"kind": "crash_broker", "broker": "2", "mode": "kill"})
    assert ok.status_code == 200 and b"Done: crash_broker" in ok.content
    state = client.get(f"/labs/{lab.pk}/state.json").json()
    assert [b["alive"] for b in state["brokers"]] == [True, False, True]
    logged = list(LabCommand.objects.filter(lab=lab))
    assert [(c.seq, c.kind, c.args["broker"]) for c in logged] == [(1, "crash_broker", "2")]
    for bad, message in (({"kind": "crash_broker", "broker": "9"}, b"broker must be a whole number from 1 to 3"),
                         ({"kind": "crash_broker", "broker": "2"}, b"already down"),
                         ({"kind": "launch_missiles"}, b"unknown command"),
                         ({"kind": "configure_producer", "producer": "telemetry", "acks": "1",
                           "enable_idempotence": "true"}, b"needs acks=all"),
                         ({"kind": "configure_producer", "producer": "telemetry", "rate_per_s": "60000"},
                          b"rate_per_s must be a whole number from 1 to 50000"),
                         ({"kind": "set_speed", "speed": "3"}, b"speed must be one of")):
        response = client.post(f"/labs/{lab.pk}/command", bad)
        assert response.status_code == 400 and message in response.content, (bad, response.content)
    assert LabCommand.objects.filter(lab=lab).count() == 1  # refused commands are not logged
    assert client.post(f"/labs/{lab.pk}/command", {"kind": "pause"}).status_code == 200
    assert [c.kind for c in LabCommand.objects.filter(lab=lab)] == ["crash_broker", "pause"]  # every command


def test_commands_need_csrf():
    """Ensure a control POST without the CSRF token is refused."""
    client = Client(enforce_csrf_checks=True)
    client.get("/labs/")
    assert client.post("/labs/new", {"template": "sandbox"}).status_code == 403


def test_key_probe_partial(client):
    """Ensure the key probe shows murmur2, the partition now and with other partition counts."""
    lab = _create(client)
    response = client.get(f"/labs/{lab.pk}/probe", {"key": "machine-42"})
    assert response.status_code == 200
    assert b"murmur2 = 217149771" in response.content and b"partition 3</strong> of 6" in response.content
    assert client.get(f"/labs/{lab.pk}/probe", {"key": ""}).status_code == 400


def test_delete_removes_the_lab_and_its_files(client, settings):
    """Ensure deleting a lab removes its row, its command log and its segment files."""
    lab = _create(client)
    data = Path(settings.LAB_DATA_DIR) / lab.pk
    deadline = time.monotonic() + 10
    while not any(data.rglob("*.log")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the engine thread writes the first segment files
    assert any(data.rglob("*.log"))
    assert client.post(f"/labs/{lab.pk}/delete").status_code == 302
    assert not Lab.objects.filter(pk=lab.pk).exists() and not data.exists()


def test_offset_reset_preview_and_apply(client):
    """Ensure a dry-run reset shows per-partition re-deliveries, applying to a running group is refused, and after stopping the group it applies."""
    lab = _create(client)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        group = client.get(f"/labs/{lab.pk}/state.json").json()["groups"]
        if group and sum(group[0]["committed"].values()) > 20:
            break
        time.sleep(0.2)
    assert group and sum(group[0]["committed"].values()) > 20, group  # a Stable group that has consumed
    preview = client.post(f"/labs/{lab.pk}/command", {"kind": "reset_offsets", "group": "dashboard",
                                                      "to": "earliest", "dry_run": "true"})
    assert preview.status_code == 200, preview.content
    html = preview.content.decode()
    assert "would re-deliver" in html and 'id="reset-highlight"' in html
    refused = client.post(f"/labs/{lab.pk}/command", {"kind": "reset_offsets", "group": "dashboard",
                                                      "to": "earliest", "dry_run": "false"})
    assert b"Not applied" in refused.content and b"Stable" in refused.content
    assert client.post(f"/labs/{lab.pk}/command", {"kind": "stop_group", "group": "dashboard"}).status_code == 200
    deadline = time.monotonic() + 20
    applied = None
    while time.monotonic() < deadline:
        applied = client.post(f"/labs/{lab.pk}/command", {"kind": "reset_offsets", "group": "dashboard",
                                                          "to": "earliest", "dry_run": "false"})
        if b"re-delivers" in applied.content:
            break
        time.sleep(0.3)  # the members' LeaveGroup makes the group Empty after its last rebalance
    assert applied is not None and b"re-delivers" in applied.content, applied.content
    committed = client.get(f"/labs/{lab.pk}/state.json").json()["groups"][0]["committed"]
    assert set(committed.values()) == {0}


def test_log_explorer_reads_a_replica_and_decodes_internal_topics(client):
    """Ensure the explorer lists segment files and batch headers, finds records by key, and decodes __consumer_offsets."""
    lab = _create(client)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        groups = client.get(f"/labs/{lab.pk}/state.json").json()["groups"]
        if groups and sum(groups[0]["committed"].values()) > 0:
            break
        time.sleep(0.2)
    page = client.get(f"/labs/{lab.pk}/explore", {"broker": "1", "topic": "machine.telemetry", "partition": "1"})
    html = page.content.decode()
    assert page.status_code == 200 and "00000000000000000000.log" in html and "CRC" in html and "epoch" in html
    by_key = client.get(f"/labs/{lab.pk}/explore", {"broker": "2", "topic": "machine.telemetry", "partition": "1",
                                                    "offset": "0", "key": "machine-1"}).content.decode()
    keys = {line.split("</span>")[1].split("<")[0].strip() for line in by_key.split('class="swatch"')[1:]}
    assert keys <= {"machine-1"}
    offsets = "".join(client.get(f"/labs/{lab.pk}/explore", {"broker": str(b), "topic": "__consumer_offsets",
                                                             "partition": str(p), "offset": "0"}).content.decode()
                      for b in (1, 2, 3) for p in range(3))
    assert "group dashboard committed offset" in offsets
    bad = client.get(f"/labs/{lab.pk}/explore", {"broker": "7", "topic": "machine.telemetry", "partition": "0"})
    assert bad.status_code == 400 and b"broker must be 1 to 3" in bad.content


def test_add_partitions_and_alter_configs_from_the_forms(client):
    """Ensure the topic forms add partitions and change configs, and refuse what cannot be done."""
    lab = _create(client)
    grown = client.post(f"/labs/{lab.pk}/command", {"kind": "add_partitions", "topic": "machine.telemetry",
                                                     "partitions": "8"})
    assert grown.status_code == 200, grown.content
    assert len(client.get(f"/labs/{lab.pk}/state.json").json()["partitions"]) == 8
    shrink = client.post(f"/labs/{lab.pk}/command", {"kind": "add_partitions", "topic": "machine.telemetry",
                                                      "partitions": "4"})
    assert shrink.status_code == 400 and b"never removed" in shrink.content
    changed = client.post(f"/labs/{lab.pk}/command", {"kind": "alter_topic", "topic": "machine.telemetry",
                                                       "retention_ms": "60000", "unclean_leader_election": ""})
    assert changed.status_code == 200
    topic = client.get(f"/labs/{lab.pk}/state.json").json()["topics"][0]
    assert topic["configs"]["retention.ms"] == 60000


def test_create_lab_with_five_brokers(client):
    """Ensure the create form's broker count reaches the engine, and an out-of-range count is refused."""
    response = client.post("/labs/new", {"template": "sandbox", "name": "five", "brokers": "5"})
    lab = Lab.objects.get(pk=response["Location"].strip("/").split("/")[-1])
    assert lab.brokers == 5
    assert len(client.get(f"/labs/{lab.pk}/state.json").json()["brokers"]) == 5
    assert b'<option value="5">5</option>' in client.get(f"/labs/{lab.pk}/").content
    bad = client.post("/labs/new", {"template": "sandbox", "name": "x", "brokers": "12"})
    assert bad.status_code == 400 and b"1 to 9 brokers" in bad.content


def test_fork_rebuilds_the_moment_and_leaves_the_original_alone(client):
    """Ensure a fork replays the source's commands up to a moment: same state then, and the two diverge after."""
    from messaging_lab.labs import services
    from messaging_lab.labs.runtime import runtime

    lab = _create(client)
    runtime.call(lambda: runtime.apply(lab.pk, {"kind": "pause"}))
    runtime.call(lambda: runtime.apply(lab.pk, {"kind": "fast_forward", "seconds": 5}))
    client.post(f"/labs/{lab.pk}/command", {"kind": "crash_broker", "broker": "2", "mode": "kill"})
    runtime.call(lambda: runtime.apply(lab.pk, {"kind": "fast_forward", "seconds": 5}))
    before = client.get(f"/labs/{lab.pk}/state.json").json()
    request = type("R", (), {"session": client.session})()
    fork = services.fork_lab(request, lab)
    forked = client.get(f"/labs/{fork.pk}/state.json").json()
    assert forked["time_ms"] == before["time_ms"] and forked["paused"] is True
    for key in ("brokers", "partitions", "groups", "guarantees"):
        assert forked[key] == before[key], key
    client.post(f"/labs/{fork.pk}/command", {"kind": "restart_broker", "broker": "2"})
    assert [b["alive"] for b in client.get(f"/labs/{fork.pk}/state.json").json()["brokers"]] == [True, True, True]
    assert [b["alive"] for b in client.get(f"/labs/{lab.pk}/state.json").json()["brokers"]] == [True, False, True]
    with pytest.raises(services.LabError, match="fork at a moment"):
        services.fork_lab(request, lab, at_ms=before["time_ms"] + 10_000_000)


def test_the_sink_form_makes_a_group_sink_idempotent(client):
    """Ensure the page's sink row applies configure_sink and a bad group gets the reason back."""
    lab = _create(client)
    assert b'id="sink-form"' in client.get(f"/labs/{lab.pk}/").content
    ok = client.post(f"/labs/{lab.pk}/command", {"kind": "configure_sink", "group": "dashboard", "idempotent": "true"})
    assert ok.status_code == 200
    consumers = client.get(f"/labs/{lab.pk}/state.json").json()["consumers"]
    assert all(c["sink"]["idempotent"] for c in consumers)
    bad = client.post(f"/labs/{lab.pk}/command", {"kind": "configure_sink", "group": "nobody", "idempotent": "true"})
    assert bad.status_code == 400 and b"has no sink" in bad.content
