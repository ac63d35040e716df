"""A cluster with Kafka listeners on a thread of its own, for tests that drive real Kafka clients against it.

The cluster and its WireServer live on one asyncio loop in a background thread
(the engine is single-threaded); :meth:`WireLab.call` runs a function there and
returns its result, so a test can crash a broker between two client calls.
Ports are chosen by the OS; everything listens on 127.0.0.1 and stops at exit.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from concurrent.futures import Future
from typing import Any, Callable

from core_log.cluster import Cluster, ClusterConfig
from core_log.wire.server import WireServer

START_TIMEOUT_S = 20.0
#: Kafka's settings, but the two slow timers shortened so the tests take seconds: a dead broker is fenced
#: after 3 s (Kafka: 9 s) and a new group waits 0.3 s for more members (Kafka: 3 s).
TEST_CONFIG = ClusterConfig(broker_session_timeout_ms=3000, group_initial_rebalance_delay_ms=300)


class WireLab:
    def __init__(self, data_dir: str, brokers: int = 3, topics: dict[str, int] | None = None, seed: int = 1) -> None:
        self._data_dir, self._brokers, self._topics, self._seed = data_dir, brokers, topics or {}, seed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wire-lab", daemon=True)
        self.cluster: Cluster | None = None
        self.server: WireServer | None = None

    def __enter__(self) -> "WireLab":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(START_TIMEOUT_S)
        return self

    async def _start(self) -> None:
        self.cluster = Cluster(brokers=self._brokers, seed=self._seed, storage="file", data_dir=self._data_dir,
                               config=TEST_CONFIG)
        for name, partitions in self._topics.items():
            self.cluster.create_topic(name, partitions, min(3, self._brokers),
                                      {"min.insync.replicas": min(2, self._brokers)})
        self.cluster.run_for(500)
        self.server = WireServer(self.cluster)
        await self.server.start()

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self.server is not None and self.cluster is not None
            await self.server.close()
            for broker in self.cluster.brokers.values():
                if broker.alive:
                    broker.shutdown()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def bootstrap(self) -> str:
        assert self.server is not None
        return self.server.bootstrap()

    def port(self, broker_id: int) -> int:
        assert self.server is not None
        return self.server.ports()[broker_id]

    def call(self, fn: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Run ``fn`` on the engine's thread (between two steps of the cluster) and return its result."""
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the test's thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout_s)

    def log_values(self, topic: str, partitions: int) -> dict[int, list[bytes]]:
        """Each partition's data record values as its leader's segment files hold them (markers left out)."""
        from core_log.messages import TopicPartition

        def read() -> dict[int, list[bytes]]:
            out: dict[int, list[bytes]] = {}
            for p in range(partitions):
                tp = TopicPartition(topic, p)
                batches = self.cluster.replica(self.cluster.leader_of(tp), tp).log.read(0, 1 << 30)
                out[p] = [r.value for b in batches if not b.is_control for r in b.records()]
            return out
        return self.call(read)


def read_frame(sock: socket.socket) -> bytes:
    """One response frame's body (after its 4-byte size) from a raw socket; ConnectionError if it closes first
    (socket.timeout if nothing comes in the socket's timeout)."""
    (size,) = struct.unpack(">i", _exactly(sock, 4))
    return _exactly(sock, size)


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
