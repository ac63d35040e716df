"""A lab's Kafka listeners: real clients (kafka-python, confluent-kafka, aiokafka) talk to the lab's brokers.

One asyncio loop on a thread of its own ("lab-wire") serves the listeners of
every lab that has them open (core_log.wire.server.WireServer, one port per
broker on 127.0.0.1). The lab's cluster stays on the runtime's engine thread:
the listeners reach it through an EngineThread bridge, and the engine thread
keeps advancing the lab as always — at 1×, because real clients count real
time, and awake while the listeners are open.

Contract: :func:`open_listeners` / :func:`close_listeners` / :func:`listener_info`
are called from request threads; they never touch the cluster themselves.
Listeners close when the lab's world goes away (deleted, replaced), and are not
reopened after a server restart (the page shows them closed; open them again).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from core_log.wire.bridge import EngineThread
from core_log.wire.server import WireServer

from .models import Lab
from .runtime import LabCommandError, _write_retrying, runtime

#: Labs that may have listeners open at once in this process (each holds a port per broker).
MAX_LABS_WITH_LISTENERS = 10
CALL_TIMEOUT_S = 20.0


class _WireHost:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._servers: dict[str, WireServer] = {}  # lab id → its listeners (touched on the wire loop only)
        runtime.forget_hooks.append(self._forget)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="lab-wire", daemon=True)
                self._thread.start()
            return self._loop

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop()).result(CALL_TIMEOUT_S)

    # ── from request threads ──
    def open(self, lab_id: str) -> dict[str, Any]:
        def mark() -> Any:  # on the engine thread: the lab runs (unpaused) at 1× and stays awake
            running = runtime.get(lab_id)
            running.speed = 1.0
            if running.paused:
                running.paused = False
                running.last_wall = time.monotonic()
            running.wire_open = True
            running.last_frame = 0.0
            _write_retrying(lambda: Lab.objects.filter(pk=lab_id).update(speed=1.0, paused=False))
            return running.world.cluster
        open_ids = self._run(self._ids())
        if lab_id not in open_ids and len(open_ids) >= MAX_LABS_WITH_LISTENERS:
            raise LabCommandError(f"{MAX_LABS_WITH_LISTENERS} labs have listeners open on this server (the "
                                  f"limit); close one first")
        cluster = runtime.call(mark)
        try:
            return self._run(self._open(lab_id, cluster))
        except BaseException:  # no port (OSError), a timeout: the lab is not left locked at 1× and awake
            runtime.call(lambda: self._unmark(lab_id))
            raise

    def close(self, lab_id: str) -> dict[str, Any]:
        info = self._run(self._close(lab_id))
        runtime.call(lambda: self._unmark(lab_id))
        return info

    @staticmethod
    def _unmark(lab_id: str) -> None:
        """On the engine thread: the lab no longer has listeners (speed free again, may sleep)."""
        running = runtime._labs.get(lab_id)  # noqa: SLF001 (the runtime's own record of the lab)
        if running is not None:
            running.wire_open = False
            running.last_frame = 0.0

    def info(self, lab_id: str) -> dict[str, Any]:
        if self._loop is None:  # no lab has opened listeners in this process: do not start the loop to say so
            return {"open": False}
        return self._run(self._info(lab_id))

    # ── on the wire loop ──
    async def _ids(self) -> set[str]:
        return set(self._servers)

    async def _open(self, lab_id: str, cluster: Any) -> dict[str, Any]:
        if lab_id not in self._servers:
            server = WireServer(cluster, bridge=EngineThread(runtime.submit), drive=False)
            await server.start()
            self._servers[lab_id] = server
        return await self._info(lab_id)

    async def _close(self, lab_id: str) -> dict[str, Any]:
        server = self._servers.pop(lab_id, None)
        if server is not None:
            await server.close()
        return await self._info(lab_id)

    async def _info(self, lab_id: str) -> dict[str, Any]:
        server = self._servers.get(lab_id)
        if server is None:
            return {"open": False}
        return {"open": True, "bootstrap": server.bootstrap(), "ports": server.ports(),
                "connections": server.connections(), "requests": server.requests,
                "closed_connections": list(server.errors[-5:])}

    # ── from the engine thread (runtime.forget_hooks): never wait here ──
    def _forget(self, lab_id: str) -> None:
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close(lab_id), self._loop)


_host = _WireHost()


def open_listeners(lab_id: str) -> dict[str, Any]:
    return _host.open(lab_id)


def close_listeners(lab_id: str) -> dict[str, Any]:
    return _host.close(lab_id)


def listener_info(lab_id: str) -> dict[str, Any]:
    return _host.info(lab_id)
