"""The live view's WebSocket: snapshot then deltas, validated inbound messages, read-only watchers."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from messaging_lab.labs.models import Lab

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data")]


def _lab_and_cookie() -> tuple[Lab, str]:
    client = Client()
    response = client.post("/labs/new", {"template": "sandbox", "name": "ws"})
    lab = Lab.objects.get(pk=response["Location"].strip("/").split("/")[-1])
    return lab, client.cookies["sessionid"].value


def _communicator(path: str, session: str | None = None) -> WebsocketCommunicator:
    from messaging_lab.asgi import application  # imported late: the test settings are in place by now

    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def _frames_until(ws: WebsocketCommunicator, predicate, timeout: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        frame = await ws.receive_json_from(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if predicate(frame):
            return frame


def test_snapshot_then_deltas_and_commands():
    """Ensure a viewer gets a full snapshot, then deltas with new events, and can command over the socket."""
    lab, session = _lab_and_cookie()

    async def scenario() -> None:
        ws = _communicator(f"/ws/labs/{lab.pk}/", session)
        connected, _ = await ws.connect()
        assert connected
        snapshot = await ws.receive_json_from(timeout=10)
        assert snapshot["type"] == "snapshot" and snapshot["read_only"] is False
        assert {"brokers", "partitions", "guarantees", "groups", "producers"} <= set(snapshot["sections"])
        delta = await _frames_until(ws, lambda f: f.get("type") == "delta")
        assert "time_ms" in delta["sections"] and "seed" not in delta["sections"]  # only what changed
        await ws.send_json_to({"type": "ping"})
        assert (await _frames_until(ws, lambda f: f.get("type") == "pong"))["type"] == "pong"
        await ws.send_json_to({"type": "command", "command": {"kind": "crash_broker", "broker": 1}})
        result = await _frames_until(ws, lambda f: f.get("type") == "result")
        assert result["result"]["kind"] == "crash_broker"
        told = await _frames_until(ws, lambda f: any(e["kind"] == "BrokerCrashed" for e in f.get("events", [])))
        assert any("Broker 1" in e["text"] for e in told["events"])
        await ws.disconnect()

    asyncio.run(scenario())


def test_bad_messages_get_error_frames_and_the_socket_stays_open():
    """Ensure bad JSON, unknown types, oversized and invalid commands are answered with error frames."""
    lab, session = _lab_and_cookie()

    async def scenario() -> None:
        ws = _communicator(f"/ws/labs/{lab.pk}/", session)
        assert (await ws.connect())[0]
        await ws.receive_json_from(timeout=10)
        for raw, expected in (("{not json", "not JSON"), ('{"type": "dance"}', "messages are"),
                              ("x" * 5000, "at most 4096"), ('{"type": "command", "command": 3}', "'kind'"),
                              ('{"type": "command", "command": {"kind": "crash_broker", "broker": 99}}',
                               "broker must be")):
            await ws.send_to(text_data=raw)
            error = await _frames_until(ws, lambda f: f.get("type") == "error")
            assert expected in error["message"], (raw[:30], error)
        await ws.send_json_to({"type": "ping"})
        assert (await _frames_until(ws, lambda f: f.get("type") == "pong"))["type"] == "pong"
        await ws.disconnect()

    asyncio.run(scenario())


def test_read_only_watchers_see_frames_but_cannot_command():
    """Ensure the share link's socket streams the lab and refuses commands."""
    lab, _ = _lab_and_cookie()

    async def scenario() -> None:
        ws = _communicator(f"/ws/watch/{lab.share_token}/")
        assert (await ws.connect())[0]
        snapshot = await ws.receive_json_from(timeout=10)
        assert snapshot["read_only"] is True
        await ws.send_json_to({"type": "command", "command": {"kind": "crash_broker", "broker": 1}})
        error = await _frames_until(ws, lambda f: f.get("type") == "error")
        assert "read-only" in error["message"]
        await ws.disconnect()

    asyncio.run(scenario())


def test_unknown_or_foreign_labs_are_refused():
    """Ensure a socket for an unknown lab, or someone else's lab without its session, is closed."""
    lab, _ = _lab_and_cookie()

    async def scenario() -> None:
        for path in ("/ws/labs/nope/", f"/ws/labs/{lab.pk}/", "/ws/watch/nope/"):
            ws = _communicator(path)
            connected, code = await ws.connect()
            assert not connected, path
            await ws.disconnect()

    asyncio.run(scenario())
