"""``Producer``: Kafka's producer, with its config names, batching, retries and idempotence.

``send()`` puts a record in the accumulator — one open batch per partition —
and returns a :class:`SendFuture`. A batch is sent when it reaches
``batch_size`` bytes or has waited ``linger_ms``; at most
``max_in_flight_requests_per_connection`` requests are outstanding per broker.
The leader answers according to ``acks``: 0 (no answer at all), 1 (once the
leader wrote it), all (once every in-sync replica has it).

Retriable errors (``NOT_LEADER_OR_FOLLOWER``, ``NOT_ENOUGH_REPLICAS``, a
request timeout, …) send the batch again after ``retry_backoff_ms`` — after a
metadata refresh when the leader may have moved — until ``delivery_timeout_ms``
since the batch was created. A retried batch may already have been written (only
its answer was lost). Without idempotence the broker cannot tell: it writes the
batch twice, and retries can overtake later batches. With
``enable_idempotence`` (the default) the producer gets a producer id and epoch
(InitProducerId) and numbers every batch per partition; the leader drops exact
repeats and refuses gaps (``OUT_OF_ORDER_SEQUENCE_NUMBER``), so each record is
written once and in order.

Each send is recorded in the cluster's history as an invoke, then ok (with its
offset), fail (definitely not written) or info (maybe written: it timed out after
an attempt that might have landed) — the checker's input.

The hot path is kept short: a batch's records are encoded once, when the batch
is first sent (a retry re-stamps only the header: producer epoch, base
sequence, CRC); the futures of a batch complete together, as Kafka's
``FutureRecordMetadata`` share one ``ProduceRequestResult``; request timeouts
are checked by one timer per producer (:class:`~core_log.network.Deadlines`),
not one per request.

A producer process can die (:meth:`Producer.crash`, a kill — not ``close()``):
everything in its accumulator and every in-flight request is gone on the client's
side, and each of those sends ends ``info`` in the history (the process never
learns the outcome). Requests already on the network still reach their broker and
may be appended — only the answers go nowhere. :meth:`Producer.restart` starts a
new instance with the same client id: a new ``InitProducerId``, so an idempotent
producer without a ``transactional.id`` gets a **new producer id** whose
sequence numbers start at 0, and brokers cannot recognise the old instance's
batches if the application sends them again.

Differences from Kafka: one partition per produce request; no ``buffer.memory``
or ``max.block.ms`` (sends wait in memory for metadata); on an
``OUT_OF_ORDER_SEQUENCE_NUMBER`` that is not explained by an earlier failed batch,
the producer fails the batch as indeterminate and bumps its epoch (KIP-360's
outcome, simplified); compression is not applied. A restarted instance is the same
network node with a new incarnation: a request the crashed instance sent that is
still travelling when the new instance starts is dropped with the old connection
(in a lab the restart comes long after the link latency, so this never bites).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from core_log.errors import ConfigError, require_int
from core_log.history import value_text
from core_log.messages import (
    DUPLICATE_SEQUENCE_NUMBER,
    METADATA_ERRORS,
    NETWORK_EXCEPTION,
    NONE,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
    REQUEST_TIMED_OUT,
    RETRIABLE_ERRORS,
    Envelope,
    InitProducerIdRequest,
    InitProducerIdResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    ProduceRequest,
    ProduceResponse,
    TopicPartition,
)
from core_log.network import Deadlines
from core_log.partitioner import StickyPartitioner, partition_for_key
from core_log.records import Header, encode_batch_of_records, encode_records

if TYPE_CHECKING:
    from core_log.cluster import Cluster

MAX_PENDING_SENDS = 1_000_000  # records a producer holds before send() refuses
KEY_PARTITION_CACHE_MAX = 100_000  # distinct (topic, partition count, key) partition choices remembered
RECORD_OVERHEAD_MAX_BYTES = 21  # record length, attributes, timestamp/offset deltas, key/value lengths
MAX_VALUE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ProducerConfig:
    """Kafka's producer configs (dots → underscores), Kafka's defaults."""

    acks: str = "all"  # "0", "1" or "all"
    enable_idempotence: bool = True
    linger_ms: int = 0
    batch_size: int = 16384
    max_in_flight_requests_per_connection: int = 5
    retries: int = 2147483647
    retry_backoff_ms: int = 100
    request_timeout_ms: int = 30_000
    delivery_timeout_ms: int = 120_000
    metadata_max_age_ms: int = 300_000

    def __post_init__(self) -> None:
        if self.acks not in ("0", "1", "all", "-1"):
            raise ConfigError(f"acks must be 0, 1 or all, got {self.acks!r}")
        for name, low, high in (("linger_ms", 0, 60_000), ("batch_size", 1, 16 * 1024 * 1024),
                                ("max_in_flight_requests_per_connection", 1, 100), ("retries", 0, 2147483647),
                                ("retry_backoff_ms", 0, 60_000), ("request_timeout_ms", 1, 3_600_000),
                                ("delivery_timeout_ms", 1, 86_400_000), ("metadata_max_age_ms", 1, 86_400_000)):
            require_int(name, getattr(self, name), low, high)
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise ConfigError("delivery_timeout_ms must be at least linger_ms + request_timeout_ms (Kafka's rule)")
        if self.enable_idempotence:
            if self.acks not in ("all", "-1"):
                raise ConfigError("enable_idempotence requires acks=all")
            if self.max_in_flight_requests_per_connection > 5:
                raise ConfigError("enable_idempotence requires max_in_flight_requests_per_connection <= 5")
            if self.retries == 0:
                raise ConfigError("enable_idempotence requires retries > 0")

    @property
    def acks_int(self) -> int:
        return {"0": 0, "1": 1, "all": -1, "-1": -1}[self.acks]


class SendFuture:
    """The outcome of one ``send()``: pending, then ``ok`` (with offset) or failed (with error)."""

    __slots__ = ("tp", "value", "done", "error", "cause", "offset", "maybe_written", "_callbacks", "history_op")

    def __init__(self, value: bytes | None) -> None:
        self.tp: TopicPartition | None = None
        self.value = value
        self.done = False
        self.error: str | None = None
        self.cause: str | None = None  # the last retriable error before the producer gave up
        self.offset: int | None = None
        self.maybe_written = False
        self._callbacks: list[Callable[["SendFuture"], None]] | None = None
        self.history_op: Any = None

    @property
    def ok(self) -> bool:
        return self.done and self.error is None

    def add_callback(self, callback: Callable[["SendFuture"], None]) -> None:
        if self.done:
            callback(self)
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def _complete(self, error: str | None, offset: int | None) -> None:
        self.done, self.error, self.offset = True, error, offset
        callbacks, self._callbacks = self._callbacks, None
        for cb in callbacks or ():
            cb(self)


@dataclass(slots=True)
class ProducerBatch:
    """An accumulator batch.

    ``futures[i]`` is the send of the record at offset delta ``i``; ``items[i]`` that
    record as ``(key, value, headers, timestamp delta)``. The first record's timestamp
    is ``created_ms``, the last's ``max_timestamp_ms``. ``records`` is their encoding,
    made once when the batch is first sent (a retry re-stamps only the header).
    """

    tp: TopicPartition
    futures: list[SendFuture]
    created_ms: int
    items: list[tuple[bytes | None, bytes | None, tuple[Header, ...], int]] = field(default_factory=list)
    max_timestamp_ms: int = -1
    records: bytes | None = None
    size_bytes: int = 0
    base_sequence: int = -1
    producer_epoch: int = -1
    attempts: int = 0
    maybe_written: bool = False
    encoded: bytes | None = None
    retry_at_ms: int = 0
    last_error: str | None = None


@dataclass
class _InFlight:
    batch: ProducerBatch
    broker: int
    correlation_id: int


class Producer:
    """A producer client. Create it with ``cluster`` and configs; call ``send``."""

    def __init__(self, cluster: "Cluster", client_id: str, config: ProducerConfig | None = None,
                 rng_seed: int | None = None, record_history: bool = True) -> None:
        self.cluster = cluster
        self.node_id = client_id
        self.config = config or ProducerConfig()
        self.alive = True
        self.incarnation = 1
        seed = cluster.rng.getrandbits(64) if rng_seed is None else rng_seed
        self.sticky = StickyPartitioner(random.Random(seed), self.config.batch_size)
        self.metadata: dict[TopicPartition, PartitionMetadata] = {}
        self.num_partitions: dict[str, int] = {}
        self._metadata_pending = False
        self._metadata_fetched_ms = -1
        # murmur2 is pure: remember each key's partition, per topic and partition count
        self._key_partitions: dict[str, tuple[int, dict[bytes, TopicPartition]]] = {}
        self._key_partitions_cached = 0
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        self._waiting: deque[tuple[str, bytes | None, bytes | None, tuple[Header, ...], int | None, SendFuture]] = deque()
        self._open: dict[TopicPartition, ProducerBatch] = {}
        self._ready: dict[TopicPartition, deque[ProducerBatch]] = {}
        self._in_flight: dict[int, _InFlight] = {}
        self._in_flight_per_broker: dict[int, int] = {}
        self._in_flight_per_partition: dict[TopicPartition, int] = {}
        self._correlation = 0
        self._deadlines = Deadlines(cluster.schedule, cluster.now_ms)  # request timeouts
        self.producer_id = -1
        self.producer_epoch = -1
        self._next_sequence: dict[TopicPartition, int] = {}
        self._init_pending = False
        self._drain_scheduled = False
        self._wakeup_ms: int | None = None
        self.record_history = record_history
        self._transactional = False  # TransactionalProducer marks its batches
        self._plain_finish = type(self)._finish is Producer._finish  # no subclass watches single sends
        self.stats = {"sent": 0, "acked": 0, "failed": 0, "retries": 0, "requests": 0, "pending": 0}
        self.last_error: str | None = None
        self.crashes = 0  # times this client's process died (crash())
        self.previous_producer_ids: list[int] = []  # each crashed instance's producer id (-1: it had none), oldest first
        self._announce_new_id = False  # a restarted instance narrates the producer id it gets
        cluster.register_client(self)
        self._refresh_metadata()
        if self.config.enable_idempotence:
            self._init_producer_id()

    # ── public API ───────────────────────────────────────────────────────────
    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: tuple[Header, ...] | list[Header] | None = None, partition: int | None = None) -> SendFuture:
        """Queue a record; the returned future completes when the leader answers (or for good fails)."""
        if not self.alive:
            raise ValueError(f"{self.node_id} has crashed; restart() it first")
        if topic not in self.cluster.topics:
            raise ValueError(f"unknown topic {topic!r}")
        if key is not None and (not isinstance(key, bytes) or len(key) > MAX_VALUE_BYTES):
            raise ValueError(f"key must be bytes of at most {MAX_VALUE_BYTES} bytes")
        if value is not None and (not isinstance(value, bytes) or len(value) > MAX_VALUE_BYTES):
            raise ValueError(f"value must be bytes of at most {MAX_VALUE_BYTES} bytes")
        stats = self.stats
        if stats["pending"] >= MAX_PENDING_SENDS:
            raise ValueError(f"more than {MAX_PENDING_SENDS} records are waiting; slow down")
        if 0 <= self._metadata_fetched_ms <= self.cluster.clock.now_ms() - self.config.metadata_max_age_ms:
            self._refresh_metadata()  # metadata.max.age.ms: learn of new partitions and moved leaders
        future = SendFuture(value)
        stats["sent"] += 1
        stats["pending"] += 1
        headers = tuple(headers) if headers else ()
        count = self.num_partitions.get(topic)
        if self._waiting or count is None:
            self._waiting.append((topic, key, value, headers, partition, future))
            self._place_waiting()
        else:
            self._place(topic, key, value, headers, partition, future, count)
        return future

    def flush_pending(self) -> None:
        """Close every open batch now (as ``KafkaProducer.flush`` does before waiting)."""
        for tp in list(self._open):
            self._close_open(tp)
        self._schedule_drain()

    def in_flight_count(self) -> int:
        return self.stats["pending"]

    # ── process crash and restart ────────────────────────────────────────────
    def crash(self) -> dict[str, int]:
        """The producer's process dies now (a kill): its accumulator and in-flight requests are gone.

        Every unanswered send ends ``info`` in the history: the process will never
        know whether it was written. Requests already on the network are not
        recalled — the broker still appends them; only their answers find nobody.
        Returns how many sends were unanswered: ``in_requests`` (sent at least once,
        so maybe written) and ``in_memory`` (never left the client, so not written).
        """
        if not self.alive:
            raise ValueError(f"{self.node_id} has crashed already")
        if self._transactional:
            raise ValueError("a transactional producer crashes with its own crash()")
        self.alive = False
        self.crashes += 1
        sent_batches = [f.batch for f in self._in_flight.values()] + \
            [b for q in self._ready.values() for b in q if b.attempts > 0]
        unsent_batches = list(self._open.values()) + [b for q in self._ready.values() for b in q if b.attempts == 0]
        in_requests = sum(len(b.futures) for b in sent_batches)
        in_memory = sum(len(b.futures) for b in unsent_batches) + len(self._waiting)
        for batch in sent_batches + unsent_batches:
            for future in batch.futures:
                if future.history_op is not None and future.tp is not None:
                    self.cluster.history_complete(future.history_op, "info",
                                                  (str(future.tp), None, value_text(future.value)))
                    future.history_op = None
        self.stats["pending"] -= in_requests + in_memory
        self._waiting.clear()
        self._open.clear()
        self._ready.clear()
        self._in_flight.clear()
        self._in_flight_per_broker.clear()
        self._in_flight_per_partition.clear()
        self._deadlines.clear()
        self._wakeup_ms = None
        self._metadata_pending = self._init_pending = False  # their retry timers find nothing to retry
        if self.record_history:
            op = self.cluster.history_invoke(self.node_id, "crash", None)
            self.cluster.history_complete(op, "info", None)
        unanswered = in_requests + in_memory
        self.cluster.events.emit(
            self.cluster.now_ms(), "ProducerCrashed",
            f"Producer {self.node_id}'s process died with {unanswered} send(s) unanswered: {in_requests} in "
            f"requests already sent, which the brokers may still write although the answers now reach nobody, "
            f"and {in_memory} still in its memory, never sent and gone; the checker counts all {unanswered} as "
            f"indeterminate, not lost.",
            client=self.node_id, producer_id=self.producer_id, in_requests=in_requests, in_memory=in_memory)
        return {"in_requests": in_requests, "in_memory": in_memory}

    def restart(self) -> None:
        """A new instance of this client starts: empty accumulator, fresh metadata, a new InitProducerId.

        Without a ``transactional.id`` the broker hands out a new producer id, so
        sequence numbers start at 0 again and the old instance's batches cannot be
        recognised if the application sends them again.
        """
        if self.alive:
            raise ValueError(f"{self.node_id} is running")
        if self._transactional:
            raise ValueError("a transactional producer restarts as a new TransactionalProducer")
        self.alive = True
        self.incarnation += 1  # answers meant for the crashed instance are dropped with its connections
        self.previous_producer_ids.append(self.producer_id)
        self.producer_id = self.producer_epoch = -1
        self._next_sequence.clear()
        self._init_pending = False
        self._metadata_pending = False
        self.metadata, self.num_partitions = {}, {}
        self._metadata_fetched_ms = -1
        self.last_error = None
        self._announce_new_id = self.config.enable_idempotence
        self._refresh_metadata()
        if self.config.enable_idempotence:
            self._init_producer_id()

    # ── accumulator ──────────────────────────────────────────────────────────
    def _place_waiting(self) -> None:
        while self._waiting:
            topic, key, value, headers, partition, future = self._waiting[0]
            count = self.num_partitions.get(topic)
            if count is None:
                self._refresh_metadata()
                return
            self._waiting.popleft()
            self._place(topic, key, value, headers, partition, future, count)

    def _place(self, topic: str, key: bytes | None, value: bytes | None, headers: tuple[Header, ...],
               partition: int | None, future: SendFuture, count: int) -> None:
        """Choose the record's partition and add it to that partition's open batch."""
        if partition is None and key is not None:
            keyed = self._key_partitions.get(topic)
            if keyed is None or keyed[0] != count:  # a new topic, or it gained partitions: keys hash anew
                keyed = self._key_partitions[topic] = (count, {})
            tp = keyed[1].get(key)
            if tp is None:
                tp = self._tp(topic, partition_for_key(key, count))
                if self._key_partitions_cached < KEY_PARTITION_CACHE_MAX:
                    self._key_partitions_cached += 1
                    keyed[1][key] = tp
            partition = tp.partition
        else:
            if partition is None:
                partition = self.sticky.partition(topic, count)
            elif not 0 <= partition < count:
                self.stats["pending"] -= 1
                future._complete("UNKNOWN_TOPIC_OR_PARTITION", None)
                return
            tp = self._tp(topic, partition)
        future.tp = tp
        if self.record_history:
            sent = (str(tp), value_text(value)) + (("txn",) if self._transactional else ())
            future.history_op = self.cluster.history_invoke(self.node_id, "send", sent)
        # Kafka's accumulator estimate: an upper bound of the record's encoded size.
        size = (_record_size(key, value, headers) if headers else
                RECORD_OVERHEAD_MAX_BYTES + (len(key) if key else 0) + (len(value) if value else 0))
        if key is None:
            self.sticky.record_appended(topic, partition, size)
        self._append(tp, key, value, headers, size, future)

    def _tp(self, topic: str, partition: int) -> TopicPartition:
        tp = self._tps.get((topic, partition))
        if tp is None:
            tp = self._tps[(topic, partition)] = TopicPartition(topic, partition)
        return tp

    def _append(self, tp: TopicPartition, key: bytes | None, value: bytes | None, headers: tuple[Header, ...],
                size: int, future: SendFuture) -> None:
        now = self.cluster.clock.now_ms()
        batch_size = self.config.batch_size
        batch = self._open.get(tp)
        if batch is not None and batch.size_bytes + size > batch_size and batch.futures:
            self._close_open(tp)
            batch = None
        if batch is None:
            batch = self._open[tp] = ProducerBatch(tp, [], now)
            if self.config.linger_ms > 0:
                self.cluster.schedule(self.config.linger_ms, lambda b=batch: self._linger_expired(b))
        futures = batch.futures
        batch.items.append((key, value, headers, now - batch.created_ms))
        batch.max_timestamp_ms = now
        futures.append(future)
        batch.size_bytes += size
        if batch.size_bytes >= batch_size:
            self._close_open(tp)
        # With linger_ms=0 the batch stays open until the sender can take it: records that
        # arrive while earlier requests are in flight join it (Kafka batches the same way).
        if not self._drain_scheduled:
            self._schedule_drain()

    def _linger_expired(self, batch: ProducerBatch) -> None:
        if self._open.get(batch.tp) is batch:
            self._close_open(batch.tp)
            self._drain()

    def _close_open(self, tp: TopicPartition) -> None:
        batch = self._open.pop(tp, None)
        if batch is not None and batch.futures:
            self._ready.setdefault(tp, deque()).append(batch)

    def _schedule_drain(self) -> None:
        # Sends made at the same simulated instant share one drain: they batch together.
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.cluster.schedule(0, self._drain_now)

    def _wake_at(self, when_ms: int) -> None:
        """Drain again at ``when_ms``; one pending wake-up at a time, the earliest wins."""
        if self._wakeup_ms is not None and self._wakeup_ms <= when_ms:
            return
        self._wakeup_ms = when_ms

        def wake() -> None:
            if self._wakeup_ms == when_ms:
                self._wakeup_ms = None
                self._drain()

        self.cluster.schedule(when_ms - self.cluster.now_ms(), wake)

    def _drain_now(self) -> None:
        self._drain_scheduled = False
        self._drain()

    # ── sender ───────────────────────────────────────────────────────────────
    def _drain(self) -> None:
        if not self.alive:
            return
        if self.config.enable_idempotence and self.producer_id < 0:
            self._init_producer_id()
            return
        now = self.cluster.now_ms()
        for tp in sorted(self._open):  # open batches whose linger has passed are ready to go
            batch = self._open[tp]
            if now - batch.created_ms >= self.config.linger_ms and not self._ready.get(tp):
                self._close_open(tp)
        for tp in sorted(self._ready):
            queue = self._ready[tp]
            while queue:
                batch = queue[0]
                if now - batch.created_ms >= self.config.delivery_timeout_ms:
                    queue.popleft()
                    self._fail_batch(batch, REQUEST_TIMED_OUT)
                    continue
                if batch.retry_at_ms > now:
                    self._wake_at(batch.retry_at_ms)
                    break
                if not self._may_send(tp):
                    break
                meta = self.metadata.get(tp)
                if meta is None or meta.leader < 0:
                    self._refresh_metadata()
                    break
                broker = meta.leader
                if self._in_flight_per_broker.get(broker, 0) >= self.config.max_in_flight_requests_per_connection:
                    break
                if self.config.enable_idempotence and batch.base_sequence >= 0:
                    if batch.producer_epoch != self.producer_epoch:
                        queue.popleft()
                        if batch.maybe_written:  # re-sequenced under a new epoch it could land twice
                            self._fail_batch(batch, OUT_OF_ORDER_SEQUENCE_NUMBER)
                            continue
                        batch.base_sequence, batch.encoded = -1, None
                        queue.append(batch)
                        continue
                    if self._in_flight_per_partition.get(tp, 0) > 0:
                        break  # a retried idempotent batch goes alone, so sequences stay in order
                if (self.config.enable_idempotence and batch.base_sequence < 0
                        and self._unacknowledged(tp) >= self.config.max_in_flight_requests_per_connection):
                    break  # the broker remembers only the last 5 batches: never have more unacknowledged
                queue.popleft()
                self._send_batch(batch, broker)
        for tp in [tp for tp, q in self._ready.items() if not q]:
            del self._ready[tp]

    def _may_send(self, tp: TopicPartition) -> bool:
        """Whether batches of ``tp`` may go now (a transactional producer first registers the partition)."""
        return True

    def _queued_records(self) -> list[SendFuture]:
        """Every send not yet answered: in open, ready or in-flight batches."""
        batches = list(self._open.values()) + [b for q in self._ready.values() for b in q] + \
            [f.batch for f in self._in_flight.values()]
        return [f for b in batches for f in b.futures]

    def _unacknowledged(self, tp: TopicPartition) -> int:
        """Sequenced batches of ``tp`` not yet answered: in flight, or waiting to be retried."""
        queued = sum(1 for b in self._ready.get(tp, ()) if b.base_sequence >= 0)
        return self._in_flight_per_partition.get(tp, 0) + queued

    def _encode(self, batch: ProducerBatch) -> bytes:
        if batch.encoded is None or (self.config.enable_idempotence and batch.producer_epoch != self.producer_epoch):
            if self.config.enable_idempotence and (batch.base_sequence < 0 or batch.producer_epoch != self.producer_epoch):
                seq = self._next_sequence.get(batch.tp, 0)
                batch.base_sequence = seq
                batch.producer_epoch = self.producer_epoch
                self._next_sequence[batch.tp] = seq + len(batch.futures)
            if batch.records is None:
                batch.records = encode_records(batch.items)
            batch.encoded = encode_batch_of_records(
                batch.records, len(batch.futures),
                base_timestamp_ms=batch.created_ms,
                max_timestamp_ms=batch.max_timestamp_ms,
                is_transactional=self._transactional,
                producer_id=self.producer_id if self.config.enable_idempotence else -1,
                producer_epoch=self.producer_epoch if self.config.enable_idempotence else -1,
                base_sequence=batch.base_sequence if self.config.enable_idempotence else -1,
            )
        return batch.encoded

    def _send_batch(self, batch: ProducerBatch, broker: int) -> None:
        self._correlation += 1
        correlation = self._correlation
        batch.attempts += 1
        data = self._encode(batch)
        acks = self.config.acks_int
        self.stats["requests"] += 1
        self.cluster.send(self, f"broker-{broker}", ProduceRequest(
            batch.tp, acks, data, self.config.request_timeout_ms, correlation, self.node_id))
        if acks == 0:
            batch.maybe_written = True
            self._complete_batch(batch, None)  # fire and forget: no offset, no answer
            return
        self._in_flight[correlation] = _InFlight(batch, broker, correlation)
        self._in_flight_per_broker[broker] = self._in_flight_per_broker.get(broker, 0) + 1
        self._in_flight_per_partition[batch.tp] = self._in_flight_per_partition.get(batch.tp, 0) + 1
        incarnation = self.incarnation

        def timeout() -> None:
            if self.incarnation == incarnation and correlation in self._in_flight:
                batch.maybe_written = True  # no answer: the attempt may or may not have landed
                self._on_produce_response(ProduceResponse(batch.tp, REQUEST_TIMED_OUT, -1, correlation))

        self._deadlines.add(self.config.request_timeout_ms, correlation, timeout)

    # ── responses ────────────────────────────────────────────────────────────
    def connection_reset(self, node_id: str) -> None:
        """A broker process died with our requests in flight: they fail now as a disconnect would.

        Each may or may not have been written before the process died, so the
        batches are retried as indeterminate (``maybe_written``) — exactly the case
        idempotence exists for.
        """
        for correlation in sorted(c for c, f in self._in_flight.items() if f"broker-{f.broker}" == node_id):
            flight = self._in_flight.get(correlation)
            if flight is not None:
                flight.batch.maybe_written = True
                self._on_produce_response(ProduceResponse(flight.batch.tp, NETWORK_EXCEPTION, -2, correlation))

    def receive(self, envelope: Envelope) -> None:
        msg = envelope.message
        if isinstance(msg, ProduceResponse):
            self._on_produce_response(msg)
        elif isinstance(msg, MetadataResponse):
            self._on_metadata(msg)
        elif isinstance(msg, InitProducerIdResponse):
            self._on_init_producer_id(msg)

    def _on_produce_response(self, resp: ProduceResponse) -> None:
        flight = self._in_flight.get(resp.correlation_id)
        if flight is None:
            return  # answered already (e.g. after our own timeout)
        if resp.error != REQUEST_TIMED_OUT or resp.base_offset != -2:
            # Kafka's connection answers in order. An answer that overtakes an older request to
            # the same broker means that older answer was lost: the connection broke, so the
            # older requests fail now (as a disconnect) instead of at their timeouts.
            older = sorted(c for c, f in self._in_flight.items()
                           if f.broker == flight.broker and c < resp.correlation_id)
            for c in older:
                self._in_flight[c].batch.maybe_written = True
                self._on_produce_response(ProduceResponse(self._in_flight[c].batch.tp, REQUEST_TIMED_OUT, -2, c))
        flight = self._in_flight.pop(resp.correlation_id, None)
        if flight is None:
            return
        self._deadlines.cancel(self.config.request_timeout_ms, resp.correlation_id)
        batch, broker = flight.batch, flight.broker
        self._in_flight_per_broker[broker] -= 1
        self._in_flight_per_partition[batch.tp] -= 1
        error = resp.error
        if error in (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND):
            batch.maybe_written = True  # the leader appended it but could not confirm replication
        if error == NONE:
            self._complete_batch(batch, resp.base_offset)
        elif error == DUPLICATE_SEQUENCE_NUMBER:
            self._complete_batch(batch, None)  # written earlier; offset unknown
        elif self._can_retry(batch, error):
            self.stats["retries"] += 1
            self.last_error = batch.last_error = error
            batch.retry_at_ms = self.cluster.now_ms() + self.config.retry_backoff_ms
            queue = self._ready.setdefault(batch.tp, deque())
            queue.appendleft(batch)
            if self.config.enable_idempotence:  # keep the queue in sequence order
                ordered = sorted(queue, key=lambda b: (b.base_sequence < 0, b.base_sequence, b.created_ms))
                queue.clear()
                queue.extend(ordered)
            if error in METADATA_ERRORS:
                self._refresh_metadata()
            self._wake_at(batch.retry_at_ms)
        else:
            if error == OUT_OF_ORDER_SEQUENCE_NUMBER and self.config.enable_idempotence:
                self._bump_epoch()
            self._fail_batch(batch, error)
        self._schedule_drain()

    def _can_retry(self, batch: ProducerBatch, error: str) -> bool:
        if self.cluster.now_ms() - batch.created_ms >= self.config.delivery_timeout_ms:
            return False
        if batch.attempts > self.config.retries:
            return False
        if error == OUT_OF_ORDER_SEQUENCE_NUMBER and self.config.enable_idempotence:
            # An earlier batch of this partition failed and is being retried: this one just came too soon.
            return any(b.base_sequence < batch.base_sequence for b in self._ready.get(batch.tp, ())) or \
                any(f.batch.tp == batch.tp and f.batch.base_sequence < batch.base_sequence
                    for f in self._in_flight.values())
        return error in RETRIABLE_ERRORS

    def _complete_batch(self, batch: ProducerBatch, base_offset: int | None) -> None:
        futures = batch.futures
        if self._plain_finish:
            for future in futures:
                if future.history_op is not None or future._callbacks:
                    break
            else:  # nobody watches single sends: complete the batch in one pass (Kafka's ProduceRequestResult)
                n = len(futures)
                self.stats["pending"] -= n
                self.stats["acked"] += n
                if base_offset is None or base_offset < 0:
                    for future in futures:
                        future.maybe_written = future.done = True
                else:
                    for offset, future in enumerate(futures, base_offset):
                        future.maybe_written = future.done = True
                        future.offset = offset
                return
        for i, future in enumerate(futures):
            offset = None if base_offset is None or base_offset < 0 else base_offset + i
            self._finish(future, None, offset, maybe_written=True)

    def _fail_batch(self, batch: ProducerBatch, error: str) -> None:
        """Give up on a batch: a definite failure unless some attempt may have been written."""
        self.last_error = error
        for future in batch.futures:
            future.cause = batch.last_error
            self._finish(future, error, None, maybe_written=batch.maybe_written)

    def _finish(self, future: SendFuture, error: str | None, offset: int | None, maybe_written: bool) -> None:
        self.stats["pending"] -= 1
        future.maybe_written = maybe_written
        if error is None:
            self.stats["acked"] += 1
        else:
            self.stats["failed"] += 1
        if future.history_op is not None and future.tp is not None:
            value = value_text(future.value)
            if error is None and offset is not None and self.config.acks_int != 0:
                self.cluster.history_complete(future.history_op, "ok", (str(future.tp), offset, value))
            elif error is None or maybe_written:
                self.cluster.history_complete(future.history_op, "info", (str(future.tp), None, value))
            else:
                self.cluster.history_complete(future.history_op, "fail", (str(future.tp), None, value))
        future._complete(error, offset)

    # ── metadata and producer ids ────────────────────────────────────────────
    def _bootstrap_broker(self) -> int:
        live = self.cluster.controller.live_brokers() or tuple(sorted(self.cluster.brokers))
        self._correlation += 1
        return live[self._correlation % len(live)]

    def _refresh_metadata(self) -> None:
        if self._metadata_pending or not self.alive:
            return
        self._metadata_pending = True
        self._correlation += 1
        correlation = self._correlation
        self.cluster.send(self, f"broker-{self._bootstrap_broker()}", MetadataRequest((), correlation))
        incarnation = self.incarnation

        def retry() -> None:  # no answer: ask another broker
            if self.incarnation == incarnation and self._metadata_pending and self._metadata_correlation == correlation:
                self._metadata_pending = False
                self._refresh_metadata()

        self._metadata_correlation = correlation
        self.cluster.schedule(max(self.config.retry_backoff_ms, 1000), retry)

    def _on_metadata(self, resp: MetadataResponse) -> None:
        self._metadata_pending = False
        self.metadata = dict(resp.partitions)
        self.num_partitions = dict(resp.num_partitions)
        self._metadata_fetched_ms = self.cluster.now_ms()
        if any(m.leader < 0 for m in self.metadata.values()) and (self._ready or self._waiting):
            self.cluster.schedule(max(self.config.retry_backoff_ms, 100), self._refresh_metadata)
        self._place_waiting()
        self._drain()

    def _init_producer_id(self) -> None:
        if self._init_pending:
            return
        self._init_pending = True
        self._correlation += 1
        self.cluster.send(self, f"broker-{self._bootstrap_broker()}", InitProducerIdRequest(self._correlation))
        incarnation = self.incarnation

        def retry() -> None:
            if self.incarnation == incarnation and self._init_pending:
                self._init_pending = False
                self._init_producer_id()

        self.cluster.schedule(self.config.request_timeout_ms, retry)

    def _on_init_producer_id(self, resp: InitProducerIdResponse) -> None:
        if not self._init_pending:
            return
        self._init_pending = False
        self.producer_id, self.producer_epoch = resp.producer_id, resp.producer_epoch
        self._next_sequence.clear()
        self.cluster.events.emit(self.cluster.now_ms(), "ProducerIdAssigned",
                                 f"Producer {self.node_id} got producer id {self.producer_id}, epoch "
                                 f"{self.producer_epoch}: from now on brokers can recognise its retries.",
                                 client=self.node_id, producer_id=self.producer_id)
        if self._announce_new_id:
            self._announce_new_id = False
            old = self.previous_producer_ids[-1] if self.previous_producer_ids else -1
            had = f"the crashed one had {old}" if old >= 0 else "the crashed one had none yet"
            self.cluster.events.emit(self.cluster.now_ms(), "ProducerIdChanged",
                                     f"Producer {self.node_id}'s new instance got producer id {self.producer_id} "
                                     f"({had}); its sequence numbers start again at 0, so "
                                     f"brokers cannot recognise anything it sends again as a retry of the old "
                                     f"instance's batches.", client=self.node_id, producer_id=self.producer_id,
                                     previous_producer_id=old)
        self._drain()

    def _bump_epoch(self) -> None:
        """KIP-360, simplified: after an unexplained sequence gap, start a fresh epoch at sequence 0."""
        self.producer_epoch += 1
        self._next_sequence.clear()
        for tp in sorted(self._ready):
            kept: deque[ProducerBatch] = deque()
            for batch in self._ready[tp]:
                if batch.maybe_written:
                    # Re-sending it under the new epoch could write it twice: give it up as indeterminate.
                    self._fail_batch(batch, OUT_OF_ORDER_SEQUENCE_NUMBER)
                    continue
                batch.encoded = None
                batch.base_sequence = -1
                kept.append(batch)
            self._ready[tp] = kept
        self.cluster.events.emit(self.cluster.now_ms(), "ProducerEpochBumped",
                                 f"Producer {self.node_id} hit OUT_OF_ORDER_SEQUENCE_NUMBER; it bumps its epoch to "
                                 f"{self.producer_epoch} and restarts its sequence numbers.", client=self.node_id)

    def describe(self) -> dict[str, object]:
        return {"client_id": self.node_id, "acks": self.config.acks,
                "enable_idempotence": self.config.enable_idempotence, **self.stats, "last_error": self.last_error}


def _record_size(key: bytes | None, value: bytes | None, headers: tuple[Header, ...]) -> int:
    """An upper bound of the record's encoded size, as Kafka's accumulator estimates it.

    Lengths, deltas and attributes take at most ``RECORD_OVERHEAD_MAX_BYTES``; headers add
    their bytes plus up to 10 bytes of lengths each.
    """
    size = RECORD_OVERHEAD_MAX_BYTES + (len(key) if key else 0) + (len(value) if value else 0)
    for k, v in headers:
        size += len(k) + (len(v) if v else 0) + 10
    return size



__all__ = ["Producer", "ProducerConfig", "SendFuture"]
