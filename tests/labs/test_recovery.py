"""A lab survives the server being killed: SIGKILL, start again, and every acknowledged record is back."""

from __future__ import annotations

import time

import pytest

from tests.labs.server import Browser, LiveServer

pytestmark = pytest.mark.slow


def _records(state: dict) -> dict[str, int]:
    """Per partition, the high watermark on its leader: how many records are acknowledged there."""
    out = {}
    for p in state["partitions"]:
        leader = p["replica"].get(str(p["leader"]))
        out[f"{p['topic']}-{p['partition']}"] = leader["high_watermark"] if leader else -1
    return out


def test_sigkill_and_restart_brings_every_lab_back(tmp_path):
    """Ensure after SIGKILL and restart the lab has the same commands applied and at least the records it had shown."""
    server = LiveServer(tmp_path)
    server.start()
    try:
        browser = Browser(server.url)
        browser.get("/labs/")  # a session and a CSRF cookie
        url, _ = browser.post("/labs/new", {"template": "sandbox", "name": "survivor"})
        lab_id = url.rstrip("/").split("/")[-1]
        browser.post(f"/labs/{lab_id}/command", {"kind": "set_speed", "speed": "5.0"})
        time.sleep(1)
        _, body = browser.post(f"/labs/{lab_id}/command", {"kind": "crash_broker", "broker": "3"})
        assert b"Done: crash_broker" in body
        # Until the controller fences broker 3 (broker.session.timeout.ms = 9 s) acks=all waits on it.
        deadline = time.monotonic() + 30
        before = browser.state(lab_id)
        while before["time_ms"] < 20_000 and time.monotonic() < deadline:
            time.sleep(0.3)
            before = browser.state(lab_id)  # each read keeps the lab awake and saves its simulated time
        acked_before = before["guarantees"]["acked"]
        assert acked_before > 100
        server.kill()
        server.start()
        after = browser.state(lab_id)
        assert after["time_ms"] >= before["time_ms"]
        assert after["guarantees"]["acked"] >= acked_before
        assert [b["alive"] for b in after["brokers"]] == [True, True, False]  # the crash was replayed
        for partition, hw in _records(before).items():
            assert _records(after)[partition] >= hw, partition
        assert after["guarantees"]["valid"]
    finally:
        server.stop()
