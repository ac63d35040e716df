"""WebSocket fan-out: one sandbox lab producing fast, many viewers on one Daphne process.

``python -m bench.ws_fanout --viewers 100 --seconds 60 --rate 5000 --json`` starts a
real Daphne (its own database and lab data in a temporary folder), opens a
sandbox lab, sets its producer to ``--rate`` records/s, connects ``--viewers``
WebSocket viewers to the lab's read-only share link and reads frames for
``--seconds``. It reports:

* ``frames_per_s_per_viewer`` — mean over viewers (the runtime sends at most 10);
* ``p95_frame_bytes`` — size of the frames viewers received;
* ``p95_event_to_frame_ms`` — from the wall time the engine produced the oldest
  new event in a frame to the frame's arrival at a viewer (server and viewers are
  on one machine, one clock);
* ``server_cpu_percent`` — Daphne's CPU time over wall time (100 = one core);
* ``viewers_dropped`` — viewers whose connection closed before the end;
* ``page_bytes_first_load`` — HTML + CSS + JS of the lab page, uncompressed;
* ``create_to_first_frame_ms`` — from posting "create lab" to the snapshot frame.

The viewers are a minimal RFC 6455 client on asyncio (no library needed): they
only read text frames, as a browser tab would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from tests.labs.server import Browser, LiveServer


async def _ws_open(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Origin: http://127.0.0.1:{port}\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    return reader, writer


def _pong(writer: asyncio.StreamWriter, payload: bytes) -> None:
    """Answer a ping as a browser does (a client's frames are masked)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)


async def _ws_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
    """One whole message (text or binary); None when the server closes. Pings are answered."""
    message = b""
    while True:
        b0, b1 = await reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack(">H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(length)  # frames from a server are never masked
        opcode = b0 & 0x0F
        if opcode == 8:
            return None
        if opcode == 9:
            _pong(writer, payload)
            continue
        if opcode == 10:
            continue
        message += payload
        if b0 & 0x80:
            return message


async def _viewer(port: int, path: str, seconds: float, stats: dict) -> None:
    try:
        reader, writer = await _ws_open(port, path)
    except (OSError, ConnectionError, asyncio.IncompleteReadError):
        stats["dropped"] += 1
        return
    end = time.time() + seconds
    frames = 0
    try:
        while time.time() < end:
            try:
                data = await asyncio.wait_for(_ws_read(reader, writer), timeout=max(0.1, end - time.time()))
            except asyncio.TimeoutError:
                break
            if data is None:
                stats["dropped"] += 1
                return
            now_ms = time.time() * 1000
            frames += 1
            stats["bytes"].append(len(data))
            frame = json.loads(data)
            if frame.get("oldest_event_wall_ms"):
                stats["delays"].append(now_ms - frame["oldest_event_wall_ms"])
    except (asyncio.IncompleteReadError, ConnectionError):
        stats["dropped"] += 1
        return
    finally:
        writer.close()
    stats["rates"].append(frames / seconds)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(viewers: int, seconds: float, rate: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ws_fanout_") as root, LiveServer(Path(root)) as server:
        browser = Browser(server.url)
        browser.get("/labs/")
        started = time.time()
        url, html = browser.post("/labs/new", {"template": "sandbox", "name": "fan-out"})
        lab_id = url.rstrip("/").split("/")[-1]
        share = re.search(rb"/labs/watch/([A-Za-z0-9_-]+)/", html).group(1).decode()  # type: ignore[union-attr]

        async def first_frame() -> float:
            reader, writer = await _ws_open(server.port, f"/ws/watch/{share}/")
            await _ws_read(reader, writer)
            writer.close()
            return (time.time() - started) * 1000

        create_to_first = asyncio.run(first_frame())
        page = len(html)
        for asset in re.findall(rb'(?:src|href)="(/static/[^"]+)"', html):
            page += len(browser.get(asset.decode())[1])
        browser.post(f"/labs/{lab_id}/command", {"kind": "configure_producer", "producer": "telemetry",
                                                  "rate_per_s": str(rate)})
        stats: dict = {"bytes": [], "delays": [], "rates": [], "dropped": 0}
        assert server.process is not None
        cpu_before, wall_before = _cpu_seconds(server.process.pid), time.time()

        async def everyone() -> None:
            await asyncio.gather(*(_viewer(server.port, f"/ws/watch/{share}/", seconds, stats)
                                   for _ in range(viewers)))

        asyncio.run(everyone())
        cpu = (_cpu_seconds(server.process.pid) - cpu_before) / (time.time() - wall_before)
        state = browser.state(lab_id)

    def p95(values: list[float]) -> float | None:
        return round(statistics.quantiles(values, n=20)[-1], 1) if len(values) >= 20 else None

    return {
        "viewers": viewers, "seconds": seconds, "produce_rate_per_s": rate,
        "acked_records": state["guarantees"]["acked"],
        "engine_behind": state["behind"],
        "frames_per_s_per_viewer": round(statistics.mean(stats["rates"]), 2) if stats["rates"] else 0.0,
        "p95_frame_bytes": p95(stats["bytes"]),
        "p95_event_to_frame_ms": p95(stats["delays"]),
        "server_cpu_percent": round(cpu * 100, 1),
        "viewers_dropped": stats["dropped"],
        "page_bytes_first_load": page,
        "create_to_first_frame_ms": round(create_to_first, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=5000, help="the sandbox producer's records/s")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.viewers <= 1000 or not 1 <= args.seconds <= 3600 or not 1 <= args.rate <= 50_000:
        print("ws_fanout: --viewers 1–1000, --seconds 1–3600, --rate 1–50000", file=sys.stderr)
        return 2
    figures = run(args.viewers, args.seconds, args.rate)
    print(json.dumps(figures, sort_keys=True) if args.json else
          "\n".join(f"{k:28} {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
