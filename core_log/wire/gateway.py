"""One real client's connection as a node of the lab's network: Kafka requests in, engine messages out.

A :class:`WireConnection` is registered with the cluster like the lab's own
producers and consumers (node id ``wire-<n>``), so everything a real client
does goes through the engine: its Produce becomes one engine ``ProduceRequest``
per partition, sent to the broker whose port it connected to, and stored by that
broker's real log after the same validation, idempotence check and replication
as any lab producer's batch. Nothing here keeps records.

Handlers are coroutines that return a response body (a dict for
:func:`core_log.wire.codec.build`), or None for a Produce with acks=0, which
gets no answer. They await engine replies, which arrive while whoever owns
the cluster advances it (the server's driver for ``serve``, the lab runtime's
engine thread in the web app; see :mod:`core_log.wire.bridge`); every wait is
bounded (the client's own timeout plus :data:`ENGINE_REPLY_MARGIN_S`).

Differences from Kafka:

- The leader epoch is reported as -1 in Metadata and ListOffsets, so clients
  skip KIP-320 log-truncation checks (OffsetForLeaderEpoch is not served).
- A Fetch is answered when the first partition with data answers (or when the
  client's max wait runs out); ``fetch.min.bytes`` above 1 is treated as 1.
- No fetch sessions (KIP-227): every Fetch is a full one (session id 0).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, Awaitable, Callable

from core_log.cluster import Cluster, ClusterError
from core_log.messages import (
    NONE,
    REQUEST_TIMED_OUT,
    UNKNOWN_TOPIC_OR_PARTITION,
    Envelope,
    FetchRequest,
    FetchResponse,
    InitProducerIdRequest,
    ListOffsetsRequest,
    MetadataRequest,
    ProduceRequest,
    TopicPartition,
)
from core_log.network import MAX_LATENCY_MS
from core_log.wire.bridge import Bridge, SameThread

#: How much longer than the client's own timeout we wait for the engine before answering REQUEST_TIMED_OUT.
ENGINE_REPLY_MARGIN_S = 1.0
#: A request without its own timeout (Metadata, ListOffsets, InitProducerId) waits this long for the engine.
DEFAULT_REPLY_TIMEOUT_S = 10.0
#: The longest Fetch long-poll honoured, in ms (clients default to 500).
MAX_FETCH_WAIT_MS = 30_000
#: At most this many partitions in one Produce, Fetch or ListOffsets request.
MAX_PARTITIONS_PER_REQUEST = 1_000
HOST = "127.0.0.1"
#: Partitions and replication factor of a topic that a Metadata request with allow_auto_topic_creation
#: creates (Kafka's defaults are 1 and 1; a lab wants replication visible: up to 3 copies, min ISR 2).
AUTO_CREATE_PARTITIONS = 3
AUTO_CREATE_REPLICATION = 3

NO_TIMEOUT = datetime.timedelta(0)


class WireError(ValueError):
    """A request that is well-formed but not acceptable (a limit); the connection closes."""


class WireConnection:
    """A client connection to one broker's port: a network node that relays its requests to that broker.

    Threads: handlers run on the listener's asyncio loop; ``receive`` and the
    other node methods run on the cluster's thread. Everything that touches the
    cluster (and ``_waiting``, the requests awaiting an engine reply) goes
    through the bridge; replies come back with ``call_soon_threadsafe``.
    """

    kind = "wire"  # how the lab's view tells a real client's connection from the lab's own clients

    def __init__(self, cluster: Cluster, node_id: str, broker_id: int, ports: Callable[[], dict[int, int]],
                 bridge: Bridge | None = None) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.broker_id = broker_id
        self.alive = True
        self.incarnation = 0
        self.client_id = ""
        self.bridge: Bridge = bridge or SameThread()
        self.requests: dict[str, int] = {}  # API name → requests answered, for the lab's live view
        self.records_produced = 0  # records in the batches this connection produced (as the client counted)
        self._ports = ports  # broker id → listening port (for Metadata's broker list)
        self.rebalance_timeout_ms = 300_000  # from this member's last JoinGroup: how long a SyncGroup may be held
        self._correlation = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}  # touched on the cluster's thread only
        self._loop = asyncio.get_running_loop()

    def __reduce__(self) -> tuple[Any, ...]:
        """A lab checkpoint (core_log/snapshot.py) keeps a departed stand-in: sockets and futures do not
        survive a rewind; the restored lab has no real clients until they connect again."""
        return (DepartedConnection, (self.node_id, self.client_id, self.broker_id))

    def attach(self) -> None:
        """Join the cluster's network (on the cluster's thread)."""
        self.cluster.register_client(self)

    def ports(self) -> dict[int, int]:
        """Broker id → the port its listener has (for Metadata and FindCoordinator answers)."""
        return self._ports()

    async def engine(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` where the cluster lives and return its result (admin calls, auto-created topics)."""
        return await self.bridge.call(fn)

    def describe(self) -> dict[str, Any]:
        """What the lab's live view shows of this connection (read on the cluster's thread)."""
        role = "producer" if "Produce" in self.requests else "consumer" if "Fetch" in self.requests else \
            "admin" if {"CreateTopics", "DeleteTopics", "DescribeConfigs"} & set(self.requests) else "client"
        return {"client_id": self.client_id or "(no client.id)", "node_id": self.node_id, "kind": "wire",
                "role": role, "broker": self.broker_id, "requests": dict(self.requests),
                "records_produced": self.records_produced}

    # ── the node side (called on the cluster's thread while it advances) ──
    def receive(self, envelope: Envelope) -> None:
        future = self._waiting.pop(getattr(envelope.message, "correlation_id", -1), None)
        if future is not None:
            self._loop.call_soon_threadsafe(_settle, future, envelope.message)

    def connection_refused(self, envelope: Envelope) -> None:
        """The broker's process is gone: fail the request now instead of at its timeout."""
        future = self._waiting.pop(getattr(envelope.message, "correlation_id", -1), None)
        if future is not None:
            self._loop.call_soon_threadsafe(_settle, future, None)

    def close(self) -> None:
        """The client hung up. Requests it already sent still reach the broker (Kafka handles a request it
        has read even if the client is gone, so an acks=0 batch is still written); answers to it are dropped.
        The node is forgotten once no message from it can still be on a link."""
        def on_cluster_thread() -> None:
            self.alive = False
            for future in self._waiting.values():
                self._loop.call_soon_threadsafe(future.cancel)
            self._waiting.clear()
            self.cluster.schedule(MAX_LATENCY_MS + 1, lambda: self.cluster.unregister_client(self.node_id))
        self.bridge.post(on_cluster_thread)

    def ask(self, make: Callable[[int], object], broker_id: int | None = None) -> asyncio.Future[Any]:
        """Send an engine request (built by ``make(correlation id)``) and return the future of its reply."""
        self._correlation += 1
        correlation = self._correlation
        future: asyncio.Future[Any] = self._loop.create_future()
        destination = f"broker-{self.broker_id if broker_id is None else broker_id}"

        def send() -> None:
            if self.alive:
                self._waiting[correlation] = future
                self.cluster.send(self, destination, make(correlation))
        self.bridge.post(send)
        return future

    async def answer(self, future: asyncio.Future[Any], timeout_s: float) -> Any:
        """The engine's reply, or None if none came in time (a lost message, a dead broker)."""
        try:
            return await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            return None

    # ── Metadata ──
    async def metadata(self, request: Any, version: int) -> dict[str, Any]:
        wanted = None if request.topics is None else tuple(t.name for t in request.topics)
        if version == 0 and not wanted:
            wanted = None  # v0 has no null: an empty list means every topic
        # A named topic that does not exist is created, as Kafka's auto.create.topics.enable=true does
        # (v4+ lets the client say no; before v4 a broker always creates).
        auto_create = bool(wanted) and getattr(request, "allow_auto_topic_creation", True)
        invalid, existing = await self.engine(lambda: self._auto_create(wanted if auto_create else ()))
        reply = await self.answer(self.ask(lambda c: MetadataRequest(wanted or (), c)), DEFAULT_REPLY_TIMEOUT_S)
        up = await self.engine(lambda: {b for b, broker in self.cluster.brokers.items() if broker.alive})
        ports = self.ports()
        brokers = [] if reply is None else [
            {"node_id": b, "host": HOST, "port": ports[b], "rack": None} for b in reply.brokers if b in ports]
        by_topic: dict[str, list[dict[str, Any]]] = {}
        if reply is not None:
            for tp, meta in sorted(reply.partitions.items()):
                if tp.topic.startswith("__"):
                    continue  # internal topics: not listed, as Kafka hides them from a plain Metadata call
                by_topic.setdefault(tp.topic, []).append({
                    "error_code": NONE if meta.leader >= 0 else "LEADER_NOT_AVAILABLE",
                    "partition_index": tp.partition, "leader_id": meta.leader, "leader_epoch": -1,
                    "replica_nodes": list(meta.replicas), "isr_nodes": list(meta.isr), "offline_replicas": []})
        names = sorted(by_topic) if wanted is None else list(wanted)
        topics = [{"error_code": NONE if name in by_topic else "INVALID_TOPIC_EXCEPTION" if name in invalid
                   else "LEADER_NOT_AVAILABLE" if name in existing else UNKNOWN_TOPIC_OR_PARTITION,
                   "name": name,
                   "is_internal": False, "partitions": by_topic.get(name, [])} for name in names]
        return {"throttle_time": NO_TIMEOUT, "brokers": brokers, "cluster_id": "messaging-lab",
                # Any live broker takes admin requests (it relays them to the lab's controller), so name one
                # that is up — not merely not yet fenced: a client sends CreateTopics to this id.
                "controller_id": min((b["node_id"] for b in brokers if b["node_id"] in up), default=-1),
                "topics": topics}

    def _auto_create(self, names: tuple[str, ...] | None) -> tuple[set[str], set[str]]:
        """Create the missing topics among ``names`` (cluster thread); (names refused, names that exist)."""
        invalid: set[str] = set()
        brokers = len(self.cluster.brokers)
        for name in names or ():
            if name not in self.cluster.topics:
                try:
                    self.cluster.create_topic(name, AUTO_CREATE_PARTITIONS, min(AUTO_CREATE_REPLICATION, brokers),
                                              {"min.insync.replicas": min(2, brokers)})
                except ClusterError:
                    invalid.add(name)
        return invalid, set(self.cluster.topics)

    # ── InitProducerId ──
    async def init_producer_id(self, request: Any, version: int) -> dict[str, Any]:
        """A producer id for an idempotent producer, or (with a transactional.id, sent to its transaction
        coordinator) the id and a bumped epoch that fences the previous instance."""
        tid = request.transactional_id
        timeout_ms = int(request.transaction_timeout.total_seconds() * 1000) \
            if hasattr(request.transaction_timeout, "total_seconds") else int(request.transaction_timeout)
        reply = await self.answer(self.ask(lambda c: InitProducerIdRequest(c, tid, timeout_ms)),
                                  DEFAULT_REPLY_TIMEOUT_S)
        if reply is None:
            return {"throttle_time": NO_TIMEOUT, "error_code": REQUEST_TIMED_OUT, "producer_id": -1,
                    "producer_epoch": -1}
        return {"throttle_time": NO_TIMEOUT, "error_code": reply.error, "producer_id": reply.producer_id,
                "producer_epoch": reply.producer_epoch}

    # ── Produce ──
    async def produce(self, request: Any, version: int) -> dict[str, Any] | None:
        acks = int(request.acks)
        timeout_ms = max(0, int(request.timeout.total_seconds() * 1000))
        asks: list[tuple[str, int, Awaitable[Any] | str]] = []
        counts: list[int] = []  # records per engine request in asks (0 for the refused ones)
        count = sum(len(t.partition_data) for t in request.topic_data)
        if count > MAX_PARTITIONS_PER_REQUEST:
            raise WireError(f"a Produce for {count} partitions (the limit is {MAX_PARTITIONS_PER_REQUEST})")
        for topic in request.topic_data:
            for part in topic.partition_data:
                if acks not in (-1, 0, 1):
                    asks.append((topic.name, part.index, "INVALID_REQUIRED_ACKS"))
                    counts.append(0)
                    continue
                if part.records is None:
                    asks.append((topic.name, part.index, "INVALID_RECORD"))
                    counts.append(0)
                    continue
                tp = TopicPartition(topic.name, int(part.index))
                records = bytes(part.records)
                if acks == 0:
                    self._correlation += 1
                    request0 = ProduceRequest(tp, 0, records, timeout_ms, self._correlation, self.client_id)
                    self.bridge.post(lambda r=request0: self.cluster.send(self, f"broker-{self.broker_id}", r))
                    self.records_produced += _record_count(records)
                    continue
                asks.append((topic.name, part.index, self.ask(
                    lambda c, tp=tp, records=records: ProduceRequest(tp, acks, records, timeout_ms, c,
                                                                     self.client_id))))
                counts.append(_record_count(records))
        if acks == 0:
            return None
        wait_s = timeout_ms / 1000 + ENGINE_REPLY_MARGIN_S
        results = await asyncio.gather(*(self.answer(a, wait_s) if not isinstance(a, str) else _done(a)
                                          for _, _, a in asks))
        responses: dict[str, list[dict[str, Any]]] = {}
        for (topic_name, index, _), reply, count in zip(asks, results, counts):
            if isinstance(reply, str):
                error, base_offset, start = reply, -1, -1
            elif reply is None:
                error, base_offset, start = REQUEST_TIMED_OUT, -1, -1
            else:
                error, base_offset, start = reply.error, reply.base_offset, reply.log_start_offset
                if error == NONE:
                    self.records_produced += count
            responses.setdefault(topic_name, []).append({
                "index": index, "error_code": error, "base_offset": base_offset, "log_append_time": None,
                "log_start_offset": start, "record_errors": [], "error_message": None})
        return {"responses": [{"name": name, "partition_responses": parts} for name, parts in responses.items()],
                "throttle_time": NO_TIMEOUT}

    # ── Fetch ──
    async def fetch(self, request: Any, version: int) -> dict[str, Any]:
        wanted = [(t.topic, p) for t in request.topics for p in t.partitions]
        if len(wanted) > MAX_PARTITIONS_PER_REQUEST:
            raise WireError(f"a Fetch for {len(wanted)} partitions (the limit is {MAX_PARTITIONS_PER_REQUEST})")
        isolation = int(getattr(request, "isolation_level", 0) or 0)
        max_wait_ms = min(MAX_FETCH_WAIT_MS, max(0, int(request.max_wait.total_seconds() * 1000)))

        def ask(topic: str, p: Any, wait_ms: int) -> asyncio.Future[Any]:
            tp = TopicPartition(topic, int(p.partition))
            return self.ask(lambda c: FetchRequest(tp, -1, int(p.fetch_offset), -1, -1,
                                                    int(p.partition_max_bytes), wait_ms, c, isolation))

        # First without waiting: answer at once if any partition has records (or an error) ...
        first = await asyncio.gather(*(self.answer(ask(topic, p, 0), DEFAULT_REPLY_TIMEOUT_S)
                                       for topic, p in wanted))
        replies: list[FetchResponse | None] = list(first)
        if max_wait_ms > 0 and wanted and not any(r is None or r.records or r.error != NONE for r in replies):
            # ... else long-poll every partition and answer when the first one has records, or the wait is over.
            polls = [asyncio.ensure_future(self.answer(ask(topic, p, max_wait_ms),
                                                        max_wait_ms / 1000 + ENGINE_REPLY_MARGIN_S))
                     for topic, p in wanted]
            try:
                pending = set(polls)
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    if any(r is not None and (r.records or r.error != NONE) for r in (d.result() for d in done)):
                        break
                for i, poll in enumerate(polls):
                    if poll.done() and poll.result() is not None:
                        replies[i] = poll.result()
            finally:  # the partitions still parked answer into nothing (their futures are dropped)
                for poll in polls:
                    poll.cancel()
        topics: dict[str, list[dict[str, Any]]] = {}
        for (topic, p), reply in zip(wanted, replies):
            if reply is None:
                part = {"partition_index": p.partition, "error_code": "NOT_LEADER_OR_FOLLOWER", "high_watermark": -1,
                        "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": [],
                        "preferred_read_replica": -1, "records": b""}
            else:
                part = {"partition_index": p.partition, "error_code": reply.error,
                        "high_watermark": reply.high_watermark,
                        "last_stable_offset": reply.last_stable_offset if reply.last_stable_offset >= 0
                        else reply.high_watermark,
                        "log_start_offset": reply.log_start_offset,
                        "aborted_transactions": [{"producer_id": pid, "first_offset": first_offset}
                                                 for pid, first_offset in reply.aborted_transactions],
                        "preferred_read_replica": -1, "records": reply.records or b""}
            topics.setdefault(topic, []).append(part)
        return {"throttle_time": NO_TIMEOUT, "error_code": NONE, "session_id": 0,
                "responses": [{"topic": name, "partitions": parts} for name, parts in topics.items()]}

    # ── ListOffsets ──
    async def list_offsets(self, request: Any, version: int) -> dict[str, Any]:
        wanted = [(t.name, p) for t in request.topics for p in t.partitions]
        if len(wanted) > MAX_PARTITIONS_PER_REQUEST:
            raise WireError(f"a ListOffsets for {len(wanted)} partitions (the limit is {MAX_PARTITIONS_PER_REQUEST})")
        replies = await asyncio.gather(*(self.answer(self.ask(
            lambda c, tp=TopicPartition(name, int(p.partition_index)), ts=int(p.timestamp):
            ListOffsetsRequest(tp, ts, c)), DEFAULT_REPLY_TIMEOUT_S) for name, p in wanted))
        topics: dict[str, list[dict[str, Any]]] = {}
        for (name, p), reply in zip(wanted, replies):
            error = REQUEST_TIMED_OUT if reply is None else reply.error
            topics.setdefault(name, []).append({
                "partition_index": p.partition_index, "error_code": error,
                "timestamp": -1 if reply is None else reply.timestamp_ms,
                "offset": -1 if reply is None else reply.offset, "leader_epoch": -1})
        return {"throttle_time": NO_TIMEOUT, "topics": [{"name": n, "partitions": ps} for n, ps in topics.items()]}


async def _done(value: Any) -> Any:
    return value


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _record_count(batch: bytes) -> int:
    """The records count of a v2 batch's header (bytes 57–60), 0 if the bytes are too short to have one."""
    return int.from_bytes(batch[57:61], "big", signed=True) if len(batch) >= 61 else 0


class DepartedConnection:
    """What a restored checkpoint has in place of a real client's connection: a dead node that ignores mail."""

    kind = "wire-departed"

    def __init__(self, node_id: str, client_id: str, broker_id: int) -> None:
        self.node_id, self.client_id, self.broker_id = node_id, client_id, broker_id
        self.alive = False
        self.incarnation = 0

    def receive(self, envelope: Envelope) -> None:
        """Answers to a client that is gone reach nobody."""
