"""Kafka-protocol listeners for a cluster's brokers, and the driver that moves the cluster with wall time.

:class:`WireServer` opens one asyncio TCP listener per broker on 127.0.0.1, so
a client's Metadata names real leaders and a crashed broker's port refuses
connections (its listener closes when the broker goes down and reopens on the
same port when it is back). Each connection is served by one coroutine that
reads a frame, answers it, then reads the next: answers go out in request order,
and a slow client only holds up itself.

While it runs, the server advances the cluster's simulated clock to follow the
wall clock (``speed`` simulated ms per wall ms), in steps of at most
:data:`TICK_S`; the engine itself never reads the wall clock.

Robustness contract: a frame whose size prefix exceeds :data:`MAX_FRAME_BYTES`,
or that cannot be decoded, closes that connection only (Kafka does the same);
an ApiVersions request of a version we do not know gets a v0 UNSUPPORTED_VERSION
reply listing what we serve, never a disconnect; an API we do not advertise
closes the connection, as Kafka does; so does :data:`CONNECTIONS_MAX_IDLE_S`
without a whole request. An exception the engine raises while the driver
advances it is logged and counted (``engine_failures``), and the clock goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from kio.static.constants import EntityType

from core_log.wire import admin, groups, txns
from core_log.wire.bridge import Bridge, SameThread
from core_log.wire.codec import (
    MAX_FRAME_BYTES,
    SIZE,
    FrameError,
    message_class,
    peek_header,
    read_request,
    write_response,
    write_response_as,
)
from core_log.wire.gateway import HOST, NO_TIMEOUT, WireConnection, WireError

if TYPE_CHECKING:
    from core_log.cluster import Cluster

log = logging.getLogger(__name__)

TICK_S = 0.002  # the driver advances the cluster at most this much wall time apart
LIVENESS_POLL_S = 0.05  # when the cluster's owner drives it: how often listeners follow the brokers' state
MAX_CONNECTIONS = 256  # open client connections over all brokers; more are refused at accept
#: A connection that sends no whole request for this long is closed (Kafka's connections.max.idle.ms default,
#: 10 min). It also bounds a client that sends half a frame and stops, holding one of MAX_CONNECTIONS.
CONNECTIONS_MAX_IDLE_S = 600.0
IDLE_SWEEP_S = 1.0  # how often the driver looks for idle connections
API_VERSIONS = 18
#: What we serve: api key → (lowest, highest) version. Only non-flexible versions, except ApiVersions v3
#: (librdkafka asks for v3 first). Every range intersects what each of the three clients speaks.
SUPPORTED: dict[int, tuple[int, int]] = {
    0: (3, 8),    # Produce (≥3: record batch v2)
    1: (4, 11),   # Fetch (≥4: record batch v2; 11 has preferred_read_replica, always -1 here)
    2: (1, 5),    # ListOffsets
    3: (0, 8),    # Metadata (aiokafka bootstraps with v0; kafka-python needs ≥4 in range to infer a modern broker)
    18: (0, 3),   # ApiVersions
    22: (0, 1),   # InitProducerId (idempotent producers; aiokafka speaks v0 only)
    8: (2, 7),    # OffsetCommit (aiokafka: 2-3 only)
    9: (1, 5),    # OffsetFetch
    10: (0, 2),   # FindCoordinator
    11: (0, 5),   # JoinGroup (aiokafka: 0, 1, 2, 5)
    12: (0, 3),   # Heartbeat
    13: (0, 3),   # LeaveGroup
    14: (0, 3),   # SyncGroup
    24: (0, 2),   # AddPartitionsToTxn
    25: (0, 2),   # AddOffsetsToTxn
    26: (0, 2),   # EndTxn
    28: (0, 2),   # TxnOffsetCommit
    15: (0, 4),   # DescribeGroups
    16: (0, 2),   # ListGroups
    19: (2, 4),   # CreateTopics
    20: (1, 3),   # DeleteTopics
    32: (1, 3),   # DescribeConfigs (librdkafka asks v1)
    21: (0, 1),   # DeleteRecords
}

Handler = Callable[[WireConnection, Any, int], Awaitable[dict[str, Any] | None]]


async def _api_versions(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    return {"error_code": "NONE", "api_keys": _api_keys(), "throttle_time": NO_TIMEOUT}


def _api_keys() -> list[dict[str, int]]:
    return [{"api_key": k, "min_version": lo, "max_version": hi} for k, (lo, hi) in sorted(SUPPORTED.items())]


HANDLERS: dict[int, Handler] = {
    0: WireConnection.produce,
    1: WireConnection.fetch,
    2: WireConnection.list_offsets,
    3: WireConnection.metadata,
    18: _api_versions,
    22: WireConnection.init_producer_id,
    8: groups.offset_commit,
    9: groups.offset_fetch,
    10: groups.find_coordinator,
    11: groups.join_group,
    12: groups.heartbeat,
    13: groups.leave_group,
    14: groups.sync_group,
    24: txns.add_partitions_to_txn,
    25: txns.add_offsets_to_txn,
    26: txns.end_txn,
    28: txns.txn_offset_commit,
    15: admin.describe_groups,
    16: admin.list_groups,
    19: admin.create_topics,
    20: admin.delete_topics,
    32: admin.describe_configs,
    21: admin.delete_records,
}


@dataclass
class _Listener:
    broker_id: int
    port: int
    server: asyncio.AbstractServer | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    reopen_error: str = ""  # why the port could not be opened again after a restart (retried every tick)


class WireServer:
    """Listeners for every broker of ``cluster`` plus the wall-clock driver; ``await start()``, ``await close()``.

    ``base_port`` 0 lets the OS choose each port (tests); otherwise broker ``b`` (1-based) listens on
    ``base_port + b - 1``. ``speed`` is simulated ms per wall ms (1.0: real time).
    """

    def __init__(self, cluster: "Cluster", base_port: int = 0, speed: float = 1.0, bridge: Bridge | None = None,
                 drive: bool = True) -> None:
        if not 0 <= base_port <= 65535 - len(cluster.brokers):
            raise ValueError(f"base port must be 0 (any) or 1–{65535 - len(cluster.brokers)}, got {base_port}")
        if not 0.1 <= speed <= 100:
            raise ValueError(f"speed must be 0.1–100 simulated ms per wall ms, got {speed}")
        self.cluster = cluster
        self.speed = speed
        self.bridge: Bridge = bridge or SameThread()
        self.drive = drive  # advance the cluster with the wall clock (False: its owner does, e.g. the lab runtime)
        self._listeners = {b: _Listener(b, base_port + b - 1 if base_port else 0) for b in sorted(cluster.brokers)}
        self._connections = 0
        self._next_connection = 0
        self._driver: asyncio.Task[None] | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()  # one per open connection
        self._by_node: dict[str, WireConnection] = {}  # node id → its connection
        # node id → (when it began waiting for its next frame, its writer): what _close_idle looks at. A
        # sweep rather than a timeout on every read, which would cost a task per request.
        self._waiting: dict[str, tuple[float, asyncio.StreamWriter]] = {}
        self._idle_closed: set[str] = set()
        self._next_idle_sweep = 0.0
        self.frames_read = 0  # request frames read whole, answered or not (for tests and the UI)
        self.requests = 0  # answered or accepted (acks=0) requests, for tests and the UI
        self.errors: list[str] = []  # why connections were closed on us (bounded), newest last
        self.engine_failures = 0  # exceptions the cluster raised while the driver advanced it (a bug; logged)

    # ── lifecycle ──
    async def start(self) -> None:
        alive = await self.bridge.call(self._alive)
        for listener in self._listeners.values():
            if alive[listener.broker_id]:
                await self._open(listener)
        self._driver = asyncio.ensure_future(self._drive())

    def _alive(self) -> dict[int, bool]:
        return {b: broker.alive for b, broker in self.cluster.brokers.items()}

    async def close(self) -> None:
        self._closing = True
        if self._driver is not None:
            self._driver.cancel()
            try:
                await self._driver
            except asyncio.CancelledError:
                pass
        for listener in self._listeners.values():
            self._shut(listener)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def connections(self) -> list[dict[str, Any]]:
        """The open client connections: node id (as the lab's network knows it), client.id, broker."""
        return [{"node_id": c.node_id, "client_id": c.client_id, "broker": c.broker_id}
                for c in sorted(self._by_node.values(), key=lambda c: c.node_id)]

    def ports(self) -> dict[int, int]:
        """Broker id → its port (every broker, up or down: a client learns the port, then finds it refused)."""
        return {b: listener.port for b, listener in self._listeners.items()}

    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{port}" for _, port in sorted(self.ports().items()))

    async def _open(self, listener: _Listener) -> None:
        listener.server = await asyncio.start_server(
            lambda r, w, b=listener.broker_id: self._serve(r, w, b), HOST, listener.port)
        listener.port = listener.server.sockets[0].getsockname()[1]

    def _shut(self, listener: _Listener) -> None:
        if listener.server is not None:
            listener.server.close()
            listener.server = None
        for writer in list(listener.writers):
            writer.close()  # the broker process is gone: its connections reset
        listener.writers.clear()

    # ── the driver ──
    async def _drive(self) -> None:
        """Move simulated time with the wall clock (when ``drive``) and keep each listener open exactly
        while its broker is up."""
        wall0, sim0 = time.monotonic(), self.cluster.now_ms() if self.drive else 0
        while not self._closing:
            if self.drive:
                target = sim0 + int((time.monotonic() - wall0) * 1000 * self.speed)
                if target > self.cluster.now_ms():
                    try:
                        self.cluster.advance(target)
                    except Exception as exc:  # an engine bug: log it, and keep the clock (and every client) going
                        self.engine_failures += 1
                        log.exception("the cluster failed while advancing to %d ms", target)
                        self._note(f"the engine failed at {self.cluster.now_ms()} ms: {exc!r}")
            if time.monotonic() >= self._next_idle_sweep:
                self._close_idle()
            alive = await self.bridge.call(self._alive)
            for listener in self._listeners.values():
                if not alive[listener.broker_id] and listener.server is not None:
                    self._shut(listener)
                elif alive[listener.broker_id] and listener.server is None:
                    try:
                        await self._open(listener)
                        listener.reopen_error = ""
                    except OSError as exc:  # e.g. another program took the port meanwhile: retried next tick
                        if str(exc) != listener.reopen_error:
                            listener.reopen_error = str(exc)
                            self._note(f"could not reopen broker {listener.broker_id}'s port {listener.port}: {exc}")
            await asyncio.sleep(TICK_S if self.drive else LIVENESS_POLL_S)

    def _close_idle(self) -> None:
        """Close connections that have waited longer than CONNECTIONS_MAX_IDLE_S for a whole request."""
        now = time.monotonic()
        self._next_idle_sweep = now + IDLE_SWEEP_S
        for node_id, (since, writer) in list(self._waiting.items()):
            if now - since > CONNECTIONS_MAX_IDLE_S:
                self._idle_closed.add(node_id)
                writer.close()  # its read then ends (IncompleteReadError) and _serve cleans up

    # ── one connection ──
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, broker_id: int) -> None:
        listener = self._listeners[broker_id]
        if self._connections >= MAX_CONNECTIONS:
            self._note(f"refused a connection: {MAX_CONNECTIONS} are open (the limit)")
            writer.close()
            return
        self._connections += 1
        self._next_connection += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        listener.writers.add(writer)
        conn = WireConnection(self.cluster, f"wire-{self._next_connection}", broker_id, self.ports, self.bridge)
        self._by_node[conn.node_id] = conn
        try:
            await self.bridge.call(conn.attach)
            while True:
                self._waiting[conn.node_id] = (time.monotonic(), writer)  # _close_idle's clock starts
                frame = await self._read_frame(reader)
                del self._waiting[conn.node_id]
                self.frames_read += 1
                reply = await self._answer(conn, frame)
                self.requests += 1
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            if conn.node_id in self._idle_closed:
                self._note(f"closed {conn.node_id} ({conn.client_id or 'no client.id'}): no whole request "
                           f"for {CONNECTIONS_MAX_IDLE_S:g} s (connections.max.idle.ms)")
            # else the client went away, or the broker's listener closed it
        except asyncio.CancelledError:
            pass  # the server is closing (asyncio's stream callback would log a cancelled task as an error)
        except (FrameError, WireError) as exc:
            self._note(f"closed {conn.node_id} ({conn.client_id or 'no client.id'}): {exc}")
        except Exception:  # a bug answering one request must not take the listener down
            log.exception("wire connection %s failed", conn.node_id)
            self._note(f"closed {conn.node_id}: internal error")
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self._connections -= 1
            listener.writers.discard(writer)
            self._by_node.pop(conn.node_id, None)
            self._waiting.pop(conn.node_id, None)
            self._idle_closed.discard(conn.node_id)
            conn.close()
            writer.close()

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> bytes:
        """The next request frame's body; FrameError for a size outside 1–MAX_FRAME_BYTES."""
        size = SIZE.unpack(await reader.readexactly(SIZE.size))[0]
        if not 0 < size <= MAX_FRAME_BYTES:
            raise FrameError(f"a frame of {size} bytes (the limit is {MAX_FRAME_BYTES})")
        return await reader.readexactly(size)

    async def _answer(self, conn: WireConnection, frame: bytes) -> bytes | None:
        api_key, version, correlation_id = peek_header(frame)
        if api_key == API_VERSIONS and not SUPPORTED[API_VERSIONS][0] <= version <= SUPPORTED[API_VERSIONS][1]:
            # A version we do not know: a v0 reply (any client can read it) that says which versions we do.
            return write_response_as(message_class(API_VERSIONS, 0, EntityType.response), correlation_id,
                                     {"error_code": "UNSUPPORTED_VERSION", "api_keys": _api_keys()})
        header, request = read_request(frame, SUPPORTED.get(api_key))
        conn.client_id = (header.client_id or "")[:256]
        body = await HANDLERS[api_key](conn, request, version)
        name = type(request).__name__.removesuffix("Request")
        conn.requests = {**conn.requests, name: conn.requests.get(name, 0) + 1}  # replaced whole: read elsewhere
        if body is None:
            return None
        return write_response(api_key, version, correlation_id, body)

    def _note(self, text: str) -> None:
        self.errors.append(text)
        del self.errors[:-100]
        log.info("%s", text)
