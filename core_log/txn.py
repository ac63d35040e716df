"""Transactions: the transaction coordinator, its log ``__transaction_state``, and the transactional producer.

A transaction lets one producer write to several partitions — and commit a
consumer group's offsets — so that either all of it becomes visible or none
of it does. That is what makes consume-transform-produce *exactly once*: the
output records and the input offsets commit together.

**The coordinator.** Each ``transactional.id`` hashes (Kafka's rule: Java
``hashCode``) to a partition of the compacted internal topic
``__transaction_state``; the leader of that partition coordinates it and
stores every state change there before acting on it:

``Empty`` → ``Ongoing`` (partitions added) → ``PrepareCommit`` / ``PrepareAbort``
(the decision is durable; the client is answered) → ``CompleteCommit`` /
``CompleteAbort`` (every partition has its marker).

* **InitProducerId** returns the producer id bound to the transactional id and
  *bumps its epoch*. Any older instance (a "zombie" that was presumed dead)
  still using the old epoch is fenced: brokers refuse its writes
  (``INVALID_PRODUCER_EPOCH``) and the coordinator its requests
  (``PRODUCER_FENCED``). An unfinished transaction of the old instance is
  aborted first.
* **AddPartitionsToTxn / AddOffsetsToTxn** — before the first write to a
  partition (or the first offset commit for a group) the producer registers it.
* **EndTxn** — the coordinator writes PrepareCommit/PrepareAbort, answers, then
  sends **WriteTxnMarkers** to the leader of every registered partition: a
  control batch (COMMIT or ABORT) appended to each log. Until its marker
  lands, a partition's *last stable offset* (LSO) stays at the transaction's
  first record, so read_committed consumers wait; after an ABORT marker the
  transaction goes into that segment's ``.txnindex`` and read_committed
  consumers skip its records.
* A transaction ``Ongoing`` for longer than its ``transaction.timeout.ms`` is
  aborted by the coordinator, with a bumped epoch so the slow producer is fenced.
* When the coordinator's broker dies, the new leader of the partition reads
  ``__transaction_state`` back and finishes any decision it finds prepared.

**The producer** (:class:`TransactionalProducer`): ``init_transactions()``,
``begin_transaction()``, ``send()``, ``send_offsets_to_transaction()``,
``commit_transaction()`` / ``abort_transaction()`` — each returning a
:class:`TxnFuture` (nothing blocks in simulated time). Its sends appear in the
history as ``ok`` only when the transaction commits (with their offsets), and as
``fail`` when it aborts — so the checker can call a read of an aborted record
``G1a`` and a read before the commit a ``precommitted-read``.

Record format of ``__transaction_state`` (Kafka's ``TransactionLogKey`` v0 /
``TransactionLogValue`` v0): key INT16 version=0, transactional_id STRING; value
INT16 version=0, producer_id INT64, producer_epoch INT16, timeout_ms INT32,
status INT8, partitions [topic STRING, [INT32]], last_update_ms INT64,
start_ms INT64.

Differences from Kafka: no KIP-890 partition verification (a produce is not
checked against the coordinator's partition list); epochs do not wrap (no new
producer id after 32767 bumps); the producer sends EndTxn only after every
send of the transaction has been answered; markers are retried until they land
(Kafka likewise, through its marker channel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from core_log.future import ClientFuture
from core_log.history import value_text
from core_log.kafka_types import ProtocolDecodeError, Reader, Writer
from core_log.messages import (
    CONCURRENT_TRANSACTIONS,
    COORDINATOR_ERRORS,
    COORDINATOR_NOT_AVAILABLE,
    INVALID_GROUP_ID,
    INVALID_PRODUCER_EPOCH,
    INVALID_PRODUCER_ID_MAPPING,
    INVALID_REQUEST,
    INVALID_TRANSACTION_TIMEOUT,
    INVALID_TXN_STATE,
    NONE,
    NOT_COORDINATOR,
    PRODUCER_FENCED,
    REQUEST_TIMED_OUT,
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    Envelope,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    TopicPartition,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)
from core_log.offsets import OFFSETS_TOPIC, java_string_hash, partition_for_group
from core_log.producer import Producer, ProducerConfig, SendFuture
from core_log.records import Record, encode_batch

if TYPE_CHECKING:
    from core_log.broker import Broker
    from core_log.cluster import Cluster

TRANSACTION_STATE_TOPIC = "__transaction_state"
MAX_TRANSACTION_TIMEOUT_MS = 900_000  # Kafka's transaction.max.timeout.ms
MARKER_RETRY_MS = 100
MARKER_TIMEOUT_MS = 5000

EMPTY, ONGOING, PREPARE_COMMIT, PREPARE_ABORT, COMPLETE_COMMIT, COMPLETE_ABORT, DEAD, PREPARE_EPOCH_FENCE = range(8)
STATE_NAMES = ("Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead",
               "PrepareEpochFence")


def partition_for_transactional_id(transactional_id: str, partitions: int) -> int:
    h = java_string_hash(transactional_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


# ── the log format ───────────────────────────────────────────────────────────


@dataclass
class TxnMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: int = EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    start_ms: int = -1
    last_update_ms: int = -1
    writing: bool = False  # a state change is being stored: other requests wait (CONCURRENT_TRANSACTIONS)
    markers_pending: set[TopicPartition] = field(default_factory=set)

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]


def txn_key(transactional_id: str) -> bytes:
    return Writer().int16(0).string(transactional_id).done()


def txn_value(m: TxnMetadata) -> bytes:
    w = Writer().int16(0).int64(m.producer_id).int16(m.producer_epoch).int32(m.timeout_ms).int8(m.state)
    by_topic: dict[str, list[int]] = {}
    for tp in m.partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    w.int32(len(by_topic))
    for topic in sorted(by_topic):
        w.string(topic).int32(len(by_topic[topic]))
        for p in sorted(by_topic[topic]):
            w.int32(p)
    return w.int64(m.last_update_ms).int64(m.start_ms).done()


def decode_txn_record(key: bytes | None, value: bytes | None) -> tuple[str, TxnMetadata | None]:
    """Decode one ``__transaction_state`` record; raises ProtocolDecodeError if it is not one."""
    if key is None:
        raise ProtocolDecodeError("a __transaction_state record needs a key")
    r = Reader(key)
    if r.int16() != 0:
        raise ProtocolDecodeError("unknown transaction log key version")
    txn_id = r.required_string()
    if value is None:
        return txn_id, None
    v = Reader(value)
    if v.int16() != 0:
        raise ProtocolDecodeError("unknown transaction log value version")
    pid, epoch, timeout, state = v.int64(), v.int16(), v.int32(), v.int8()
    if not 0 <= state < len(STATE_NAMES):
        raise ProtocolDecodeError(f"unknown transaction state {state}")
    parts: set[TopicPartition] = set()
    for _ in range(v.count()):
        topic = v.required_string()
        for _ in range(v.count()):
            parts.add(TopicPartition(topic, v.int32()))
    last_update, start = v.int64(), v.int64()
    return txn_id, TxnMetadata(txn_id, pid, epoch, timeout, state, parts, start, last_update)


# ── the coordinator (a role of every broker) ─────────────────────────────────


class TransactionCoordinator:
    """The transactions of the ``__transaction_state`` partitions this broker leads."""

    def __init__(self, broker: "Broker") -> None:
        self.broker = broker
        self.cluster = broker.cluster
        self.txns: dict[str, TxnMetadata] = {}
        self.loaded: set[int] = set()
        self._correlation = 0
        self._marker_waits: dict[int, Callable[[WriteTxnMarkersResponse | None], None]] = {}

    def _partition_of(self, txn_id: str) -> int:
        topic = self.cluster.topics.get(TRANSACTION_STATE_TOPIC)
        return -1 if topic is None else partition_for_transactional_id(txn_id, topic.partitions)

    def owns(self, txn_id: str) -> bool:
        return isinstance(txn_id, str) and bool(txn_id) and self._partition_of(txn_id) in self.loaded

    def _now(self) -> int:
        return self.cluster.now_ms()

    def _emit(self, kind: str, text: str, m: TxnMetadata, **fields: Any) -> None:
        self.cluster.events.emit(self._now(), kind, text, transactional_id=m.transactional_id,
                                 producer_id=m.producer_id, producer_epoch=m.producer_epoch,
                                 coordinator=self.broker.broker_id, **fields)

    # ── ownership ────────────────────────────────────────────────────────────
    def load(self, partition: int) -> None:
        replica = self.broker.replicas.get(TopicPartition(TRANSACTION_STATE_TOPIC, partition))
        if replica is None:
            return
        log = replica.log
        position, latest = log.log_start_offset, {}
        while position < log.log_end_offset:
            chunk = log.read_records(position, log.log_end_offset)
            if not chunk:
                break
            for rec in chunk:
                try:
                    txn_id, meta = decode_txn_record(rec.key, rec.value)
                except ProtocolDecodeError:
                    continue
                latest[txn_id] = meta
            position = chunk[-1].offset + 1
        self.loaded.add(partition)
        unfinished = []
        for txn_id, meta in sorted(latest.items()):
            if meta is None:
                self.txns.pop(txn_id, None)
                continue
            self.txns[txn_id] = meta
            if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                unfinished.append(txn_id)
                self._send_markers(meta)
        if latest:
            self.cluster.events.emit(
                self._now(), "TransactionCoordinatorLoaded",
                f"Broker {self.broker.broker_id} now coordinates {len(latest)} transactional id(s) of "
                f"{TRANSACTION_STATE_TOPIC}-{partition}"
                + (f"; it finishes the prepared decision of {', '.join(unfinished)}." if unfinished else "."),
                broker=self.broker.broker_id, partition=partition)

    def unload(self, partition: int) -> None:
        self.loaded.discard(partition)
        for txn_id in [t for t in self.txns if self._partition_of(t) == partition]:
            del self.txns[txn_id]

    def unload_all(self) -> None:
        self.txns.clear()
        self.loaded.clear()
        self._marker_waits.clear()

    # ── storing state ────────────────────────────────────────────────────────
    def _store(self, m: TxnMetadata, done: Callable[[str], None]) -> None:
        m.writing = True
        m.last_update_ms = self._now()
        tp = TopicPartition(TRANSACTION_STATE_TOPIC, self._partition_of(m.transactional_id))
        batch = encode_batch([Record(0, self._now(), txn_key(m.transactional_id), txn_value(m))])

        def stored(error: str) -> None:
            m.writing = False
            done(error)

        self.broker.append_internal(tp, batch, self.cluster.config.offsets_commit_timeout_ms, stored)

    def _validate(self, txn_id: str, pid: int, epoch: int) -> tuple[str | None, TxnMetadata | None]:
        if not self.owns(txn_id):
            return NOT_COORDINATOR, None
        m = self.txns.get(txn_id)
        if m is None or m.producer_id != pid:
            return INVALID_PRODUCER_ID_MAPPING, m
        if epoch < m.producer_epoch:
            return PRODUCER_FENCED, m
        if epoch > m.producer_epoch:
            return INVALID_PRODUCER_EPOCH, m
        if m.writing or m.state in (PREPARE_COMMIT, PREPARE_ABORT, PREPARE_EPOCH_FENCE):
            return CONCURRENT_TRANSACTIONS, m
        return None, m

    # ── requests ─────────────────────────────────────────────────────────────
    def handle_init(self, req: InitProducerIdRequest, reply: Callable[[Any], None]) -> None:
        txn_id = req.transactional_id or ""

        def answer(error: str, m: TxnMetadata | None = None) -> None:
            reply(InitProducerIdResponse(error, m.producer_id if m and error == NONE else -1,
                                         m.producer_epoch if m and error == NONE else -1, req.correlation_id))

        if not self.owns(txn_id):
            answer(NOT_COORDINATOR)
            return
        if not 1 <= req.transaction_timeout_ms <= MAX_TRANSACTION_TIMEOUT_MS:
            answer(INVALID_TRANSACTION_TIMEOUT)
            return
        m = self.txns.get(txn_id)
        if m is None:
            m = self.txns[txn_id] = TxnMetadata(txn_id, self.cluster.controller.allocate_producer_id(), -1,
                                                req.transaction_timeout_ms)
        if m.writing or m.state in (PREPARE_COMMIT, PREPARE_ABORT, PREPARE_EPOCH_FENCE):
            answer(CONCURRENT_TRANSACTIONS)
            return
        if m.state == ONGOING:  # an earlier instance left a transaction open: fence it and abort it first
            self._abort(m, "a new instance called initTransactions() while it was open")
            answer(CONCURRENT_TRANSACTIONS)
            return
        m.producer_epoch += 1
        m.state, m.partitions, m.start_ms, m.timeout_ms = EMPTY, set(), -1, req.transaction_timeout_ms

        def stored(error: str) -> None:
            if error != NONE:
                answer(NOT_COORDINATOR if error != CONCURRENT_TRANSACTIONS else error)
                return
            if m.producer_epoch > 0:
                self._emit("ProducerFenced",
                           f"Transactional id {txn_id} re-initialised: epoch {m.producer_epoch} of producer id "
                           f"{m.producer_id} fences every older instance (its writes and commits are refused).", m)
            answer(NONE, m)

        self._store(m, stored)

    def handle_add_partitions(self, req: AddPartitionsToTxnRequest, reply: Callable[[Any], None]) -> None:
        error, m = self._validate(req.transactional_id, req.producer_id, req.producer_epoch)
        if error is None and (not req.partitions or any(tp.topic not in self.cluster.topics for tp in req.partitions)):
            error = INVALID_REQUEST
        if error is not None or m is None:
            reply(AddPartitionsToTxnResponse(tuple((tp, error or INVALID_REQUEST) for tp in req.partitions),
                                             req.correlation_id))
            return
        self._add(m, set(req.partitions), lambda e: reply(AddPartitionsToTxnResponse(
            tuple((tp, e) for tp in req.partitions), req.correlation_id)))

    def handle_add_offsets(self, req: AddOffsetsToTxnRequest, reply: Callable[[Any], None]) -> None:
        error, m = self._validate(req.transactional_id, req.producer_id, req.producer_epoch)
        offsets_topic = self.cluster.topics.get(OFFSETS_TOPIC)
        if error is None and not req.group_id:
            error = INVALID_GROUP_ID
        if error is None and offsets_topic is None:
            self.cluster.ensure_offsets_topic()  # the group's offsets partition must exist to join the txn
            error = COORDINATOR_NOT_AVAILABLE
        if error is not None or m is None or offsets_topic is None:
            reply(AddOffsetsToTxnResponse(error or INVALID_REQUEST, req.correlation_id))
            return
        tp = TopicPartition(OFFSETS_TOPIC, partition_for_group(req.group_id, offsets_topic.partitions))
        self._add(m, {tp}, lambda e: reply(AddOffsetsToTxnResponse(e, req.correlation_id)))

    def _add(self, m: TxnMetadata, partitions: set[TopicPartition], done: Callable[[str], None]) -> None:
        if m.state == ONGOING and partitions <= m.partitions:
            done(NONE)
            return
        if m.state != ONGOING:
            m.partitions, m.start_ms = set(), self._now()
        m.state = ONGOING
        m.partitions |= partitions
        self._store(m, lambda error: done(NONE if error == NONE else NOT_COORDINATOR))

    def handle_end(self, req: EndTxnRequest, reply: Callable[[Any], None]) -> None:
        error, m = self._validate(req.transactional_id, req.producer_id, req.producer_epoch)
        if error is None and m is not None:
            if m.state == (COMPLETE_COMMIT if req.commit else COMPLETE_ABORT):
                reply(EndTxnResponse(NONE, req.correlation_id))  # a retry of a finished EndTxn
                return
            if m.state != ONGOING:
                error = INVALID_TXN_STATE
        if error is not None or m is None:
            reply(EndTxnResponse(error or INVALID_TXN_STATE, req.correlation_id))
            return
        m.state = PREPARE_COMMIT if req.commit else PREPARE_ABORT

        def stored(error: str) -> None:
            if error != NONE:
                m.state = ONGOING
                reply(EndTxnResponse(NOT_COORDINATOR, req.correlation_id))
                return
            reply(EndTxnResponse(NONE, req.correlation_id))
            self._send_markers(m)

        self._store(m, stored)

    def _abort(self, m: TxnMetadata, why: str) -> None:
        """Fence the current epoch and abort its open transaction (timeout, or a new instance)."""
        m.producer_epoch += 1
        m.state = PREPARE_ABORT
        self._emit("TransactionAborted",
                   f"Transactional id {m.transactional_id}'s open transaction is aborted by the coordinator ({why}); "
                   f"epoch {m.producer_epoch} now fences the producer that opened it.", m, reason=why)
        self._store(m, lambda error: self._send_markers(m) if error == NONE else None)

    def check_timeouts(self) -> None:
        now = self._now()
        for txn_id in sorted(self.txns):
            m = self.txns[txn_id]
            if m.state == ONGOING and not m.writing and m.start_ms >= 0 and now - m.start_ms > m.timeout_ms:
                self._abort(m, f"it was open longer than transaction.timeout.ms={m.timeout_ms}")

    # ── markers ──────────────────────────────────────────────────────────────
    def _send_markers(self, m: TxnMetadata) -> None:
        commit = m.state == PREPARE_COMMIT
        m.markers_pending = set(m.partitions)
        if not m.markers_pending:
            self._complete(m, commit)
            return
        epoch = m.producer_epoch
        self._marker_round(m, commit, epoch)

    def _marker_round(self, m: TxnMetadata, commit: bool, epoch: int) -> None:
        if (self.txns.get(m.transactional_id) is not m or m.producer_epoch != epoch
                or m.state != (PREPARE_COMMIT if commit else PREPARE_ABORT) or not self.broker.alive):
            return
        by_leader: dict[int, list[TopicPartition]] = {}
        for tp in sorted(m.markers_pending):
            update = self.broker.metadata.get(tp)
            if update is not None and update.leader >= 0:
                by_leader.setdefault(update.leader, []).append(tp)
        if not by_leader:
            self.cluster.schedule(MARKER_RETRY_MS, lambda: self._marker_round(m, commit, epoch))
            return
        outstanding = [len(by_leader)]
        incarnation = self.broker.incarnation

        def answered(resp: WriteTxnMarkersResponse | None) -> None:
            if resp is not None:
                for tp, error in resp.errors:
                    if error == NONE:
                        m.markers_pending.discard(tp)
            outstanding[0] -= 1
            if outstanding[0] == 0 and self.broker.incarnation == incarnation:
                if m.markers_pending:
                    self.cluster.schedule(MARKER_RETRY_MS, lambda: self._marker_round(m, commit, epoch))
                else:
                    self._complete(m, commit)

        for leader, tps in sorted(by_leader.items()):
            self._correlation += 1
            correlation = self._correlation
            self._marker_waits[correlation] = answered
            self.cluster.send(self.broker, f"broker-{leader}", WriteTxnMarkersRequest(
                m.producer_id, epoch, commit, 0, tuple(tps), correlation))

            def timeout(c: int = correlation) -> None:
                waiting = self._marker_waits.pop(c, None)
                if waiting is not None:
                    waiting(None)

            self.cluster.schedule(MARKER_TIMEOUT_MS, timeout)

    def on_markers_response(self, resp: WriteTxnMarkersResponse) -> None:
        waiting = self._marker_waits.pop(resp.correlation_id, None)
        if waiting is not None:
            waiting(resp)

    def _complete(self, m: TxnMetadata, commit: bool) -> None:
        partitions = sorted(m.partitions)
        m.state = COMPLETE_COMMIT if commit else COMPLETE_ABORT
        self._emit("TransactionCompleted" if commit else "TransactionAbortCompleted",
                   f"Transaction of {m.transactional_id} (producer id {m.producer_id}, epoch {m.producer_epoch}) "
                   + ("committed: COMMIT markers are in all " if commit else "aborted: ABORT markers are in all ")
                   + f"{len(partitions)} partition(s), so read_committed consumers "
                   + ("now see its records." if commit else "skip its records."), m,
                   partitions=[str(tp) for tp in partitions], commit=commit)
        m.partitions = set()
        self._store(m, lambda error: None)

    def describe(self) -> list[dict[str, Any]]:
        return [{"transactional_id": m.transactional_id, "producer_id": m.producer_id,
                 "producer_epoch": m.producer_epoch, "state": m.state_name,
                 "partitions": sorted(str(tp) for tp in m.partitions), "coordinator": self.broker.broker_id}
                for m in sorted(self.txns.values(), key=lambda m: m.transactional_id)]


def coordinator_handlers() -> dict[type, Callable[[TransactionCoordinator, Any, Callable[[Any], None]], None]]:
    return {
        AddPartitionsToTxnRequest: TransactionCoordinator.handle_add_partitions,
        AddOffsetsToTxnRequest: TransactionCoordinator.handle_add_offsets,
        EndTxnRequest: TransactionCoordinator.handle_end,
    }


# ── the client ───────────────────────────────────────────────────────────────


class TxnFuture(ClientFuture):
    """A transactional step's outcome (init, offsets, commit, abort): ok, or a Kafka error name."""

    __slots__ = ()


class TransactionError(ValueError):
    """A transactional call made in the wrong state (e.g. send() outside a transaction)."""


class TransactionalProducer(Producer):
    """Kafka's transactional producer. Every step returns a :class:`TxnFuture`; advance the cluster to finish it."""

    def __init__(self, cluster: "Cluster", client_id: str, transactional_id: str,
                 config: ProducerConfig | None = None, transaction_timeout_ms: int = 60_000,
                 rng_seed: int | None = None, record_history: bool = True) -> None:
        if not isinstance(transactional_id, str) or not 1 <= len(transactional_id) <= 255:
            raise TransactionError("transactional_id must be 1–255 characters")
        config = config or ProducerConfig()
        if not config.enable_idempotence or config.acks_int != -1:
            raise TransactionError("a transactional producer needs enable_idempotence=true and acks=all")
        if not isinstance(transaction_timeout_ms, int) or not 1 <= transaction_timeout_ms <= MAX_TRANSACTION_TIMEOUT_MS:
            raise TransactionError(f"transaction_timeout_ms must be 1–{MAX_TRANSACTION_TIMEOUT_MS}")
        self.transactional_id = transactional_id
        self.transaction_timeout_ms = transaction_timeout_ms
        self.txn_state = "initializing"
        self.fatal_error: str | None = None
        self._coordinator: int | None = None
        self._added: set[TopicPartition] = set()
        self._adding: set[TopicPartition] = set()
        self._txn_sends: list[tuple[SendFuture, Any]] = []
        self._abortable: str | None = None
        self._registered = False  # the coordinator knows this transaction (a partition or offsets were added)
        self._steps_in_flight = 0
        self._pending_calls: dict[int, tuple[Callable[[Any], None], int]] = {}  # correlation → (handler, broker)
        self._init_future = TxnFuture()
        self.transactions = {"committed": 0, "aborted": 0}
        super().__init__(cluster, client_id, config, rng_seed=rng_seed, record_history=record_history)
        self._transactional = True  # batches carry the transactional bit; history sends are tagged "txn"

    # ── public API ───────────────────────────────────────────────────────────
    def init_transactions(self) -> TxnFuture:
        """Get the producer id and a new epoch (fencing older instances); done once."""
        return self._init_future

    def begin_transaction(self) -> None:
        self._require("ready", "begin_transaction")
        self.txn_state = "in_transaction"
        self._added, self._adding, self._txn_sends, self._abortable = set(), set(), [], None
        self._registered = False

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None,
             partition: int | None = None) -> SendFuture:
        self._require("in_transaction", "send")
        return super().send(topic, key, value, headers, partition)

    def send_offsets_to_transaction(self, offsets: dict[TopicPartition, int], group_id: str,
                                    generation: int = -1, member_id: str = "") -> TxnFuture:
        """Commit a consumer group's offsets as part of this transaction (consume-transform-produce)."""
        self._require("in_transaction", "send_offsets_to_transaction")
        future = TxnFuture()
        self._steps_in_flight += 1

        def finished(error: str | None) -> None:
            self._steps_in_flight -= 1
            if error is not None:
                self._fail_txn(error)
            future._finish(error=error)

        def commit_offsets(group_coordinator: int) -> None:
            req = lambda c: TxnOffsetCommitRequest(  # noqa: E731
                self.transactional_id, group_id, self.producer_id, self.producer_epoch, generation, member_id,
                tuple(sorted(offsets.items())), c)

            def on(resp: TxnOffsetCommitResponse | None) -> None:
                errors = sorted({e for _, e in resp.errors if e != NONE}) if resp else [REQUEST_TIMED_OUT]
                if errors and errors[0] in COORDINATOR_ERRORS:
                    self._after(lambda: self._find(group_id, 0, commit_offsets))
                else:
                    finished(errors[0] if errors else None)

            self._call(group_coordinator, req, on)

        def add_offsets() -> None:
            def on(resp: AddOffsetsToTxnResponse | None) -> None:
                error = resp.error if resp else REQUEST_TIMED_OUT
                if error in COORDINATOR_ERRORS or error == CONCURRENT_TRANSACTIONS:
                    self._coordinator = None if error != CONCURRENT_TRANSACTIONS else self._coordinator
                    self._after(add_offsets)
                elif error != NONE:
                    finished(error)
                else:
                    self._registered = True
                    self._find(group_id, 0, commit_offsets)

            self._with_coordinator(lambda coord: self._call(coord, lambda c: AddOffsetsToTxnRequest(
                self.transactional_id, self.producer_id, self.producer_epoch, group_id, c), on))

        add_offsets()
        return future

    def commit_transaction(self) -> TxnFuture:
        return self._end(True)

    def abort_transaction(self) -> TxnFuture:
        return self._end(False)

    @property
    def registered(self) -> bool:
        """The coordinator knows the open transaction (a partition or a group's offsets were added)."""
        return self._registered

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "transactional_id": self.transactional_id, "txn_state": self.txn_state,
                "producer_id": self.producer_id, "producer_epoch": self.producer_epoch, **self.transactions,
                "fatal_error": self.fatal_error}

    # ── internals ────────────────────────────────────────────────────────────
    def _require(self, state: str, what: str) -> None:
        if self.fatal_error:
            raise TransactionError(f"{what}: this producer was fenced or failed for good ({self.fatal_error})")
        if self.txn_state != state:
            raise TransactionError(f"{what} needs state {state!r}; the producer is {self.txn_state!r}")

    def _after(self, action: Callable[[], None]) -> None:
        incarnation = self.incarnation
        self.cluster.schedule(max(self.config.retry_backoff_ms, 1),
                              lambda: action() if self.alive and self.incarnation == incarnation else None)

    def _call(self, broker: int, make: Callable[[int], Any], handler: Callable[[Any], None]) -> None:
        self._correlation += 1
        correlation = self._correlation
        self._pending_calls[correlation] = (handler, broker)
        self.cluster.send(self, f"broker-{broker}", make(correlation))

        def timeout() -> None:
            pending = self._pending_calls.pop(correlation, None)
            if pending is not None:
                pending[0](None)

        self.cluster.schedule(self.config.request_timeout_ms, timeout)

    def connection_refused(self, envelope: Envelope) -> None:
        pending = self._pending_calls.pop(getattr(envelope.message, "correlation_id", -1), None)
        if pending is not None:
            if self._coordinator is not None and envelope.dst == f"broker-{self._coordinator}":
                self._coordinator = None
            pending[0](None)

    def connection_reset(self, node_id: str) -> None:
        """A broker we had requests with died: those requests will never be answered."""
        if self._coordinator is not None and node_id == f"broker-{self._coordinator}":
            self._coordinator = None
        for correlation in sorted(c for c, (_, b) in self._pending_calls.items() if f"broker-{b}" == node_id):
            handler, _ = self._pending_calls.pop(correlation)
            handler(None)

    def receive(self, envelope: Envelope) -> None:
        pending = self._pending_calls.pop(getattr(envelope.message, "correlation_id", -1), None)
        if pending is not None:
            pending[0](envelope.message)
        else:
            super().receive(envelope)

    def _find(self, key: str, key_type: int, then: Callable[[int], None]) -> None:
        def on(resp: FindCoordinatorResponse | None) -> None:
            if resp is None or resp.error != NONE:
                self._after(lambda: self._find(key, key_type, then))
            else:
                then(resp.coordinator)
        self._call(self._bootstrap_broker(), lambda c: FindCoordinatorRequest(key, c, key_type), on)

    def _with_coordinator(self, then: Callable[[int], None]) -> None:
        if self._coordinator is not None:
            then(self._coordinator)
            return

        def found(coordinator: int) -> None:
            self._coordinator = coordinator
            then(coordinator)
        self._find(self.transactional_id, 1, found)

    def _init_producer_id(self) -> None:
        if self._init_pending or self.fatal_error:
            return
        self._init_pending = True

        def on(resp: InitProducerIdResponse | None) -> None:
            error = resp.error if resp else REQUEST_TIMED_OUT
            if error in COORDINATOR_ERRORS or error == CONCURRENT_TRANSACTIONS:
                if error != CONCURRENT_TRANSACTIONS:
                    self._coordinator = None
                self._init_pending = False
                self._after(self._init_producer_id)
                return
            if error != NONE:
                self._init_pending = False
                self._fatal(error)
                self._init_future._finish(error=error)
                return
            self._on_init_producer_id(resp)  # type: ignore[arg-type]
            self.txn_state = "ready"
            self._init_future._finish()

        self._with_coordinator(lambda coord: self._call(coord, lambda c: InitProducerIdRequest(
            c, self.transactional_id, self.transaction_timeout_ms), on))

    def _may_send(self, tp: TopicPartition) -> bool:
        if tp in self._added:
            return True
        if tp not in self._adding:
            self._add_partitions()
        return False

    def _add_partitions(self) -> None:
        wanted = {tp for tp in self._ready if tp not in self._added} - self._adding
        if not wanted or self.txn_state not in ("in_transaction", "committing", "aborting"):
            return
        self._adding |= wanted
        self._steps_in_flight += 1

        def on(resp: AddPartitionsToTxnResponse | None) -> None:
            errors = sorted({e for _, e in resp.errors if e != NONE}) if resp else [REQUEST_TIMED_OUT]
            self._adding -= wanted
            self._steps_in_flight -= 1
            if not errors:
                self._added |= wanted
                self._registered = True
                self._schedule_drain()
            elif errors[0] in COORDINATOR_ERRORS or errors[0] == CONCURRENT_TRANSACTIONS:
                if errors[0] != CONCURRENT_TRANSACTIONS:
                    self._coordinator = None
                self._after(self._add_partitions)
            else:
                self._fail_txn(errors[0])

        self._with_coordinator(lambda coord: self._call(coord, lambda c: AddPartitionsToTxnRequest(
            self.transactional_id, self.producer_id, self.producer_epoch, tuple(sorted(wanted)), c), on))

    def _finish(self, future: SendFuture, error: str | None, offset: int | None, maybe_written: bool) -> None:
        """A send was answered: its history op waits for the transaction's outcome."""
        op, future.history_op = future.history_op, None
        super()._finish(future, error, offset, maybe_written)
        self._txn_sends.append((future, op))
        if error is not None:
            self._fail_txn(error)

    def _fail_txn(self, error: str) -> None:
        if error in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED):
            self._fatal(error)
        elif self._abortable is None:
            self._abortable = error

    def _fatal(self, error: str) -> None:
        if self.fatal_error:
            return
        self.fatal_error = error
        self.txn_state = "fatal"
        self.cluster.events.emit(self.cluster.now_ms(), "ProducerFenced",
                                 f"Transactional producer {self.node_id} ({self.transactional_id}) stops: {error}. "
                                 f"A newer instance owns this transactional id; this one is a zombie and "
                                 f"nothing it writes can commit.", client=self.node_id)
        for future, op in self._txn_sends:
            self._settle(future, op, committed=False)
        self._txn_sends = []

    def _settle(self, future: SendFuture, op: Any, committed: bool) -> None:
        if op is None or future.tp is None:
            return
        value = self._history_value(future)
        if committed and future.error is None and future.offset is not None:
            self.cluster.history_complete(op, "ok", (str(future.tp), future.offset, value))
        else:
            self.cluster.history_complete(op, "fail", (str(future.tp), None, value))

    @staticmethod
    def _history_value(future: SendFuture) -> str:
        return value_text(future.value)

    def _end(self, commit: bool) -> TxnFuture:
        self._require("in_transaction", "commit_transaction" if commit else "abort_transaction")
        future = TxnFuture()
        self.txn_state = "committing" if commit else "aborting"
        self.flush_pending()

        def when_quiet() -> None:
            if self.fatal_error:
                future._finish(error=self.fatal_error)
                return
            if self.in_flight_count() or self._steps_in_flight or self._adding:
                self.cluster.schedule(5, when_quiet)
                return
            if commit and self._abortable:
                self.txn_state = "in_transaction"
                future._finish(error=f"the transaction must be aborted: {self._abortable}")
                return
            if not self._registered:
                self._finish_txn(commit, future)  # nothing was registered: nothing to end at the coordinator
                return
            send_end()

        def send_end() -> None:
            def on(resp: EndTxnResponse | None) -> None:
                error = resp.error if resp else REQUEST_TIMED_OUT
                if error in COORDINATOR_ERRORS or error == CONCURRENT_TRANSACTIONS:
                    if error != CONCURRENT_TRANSACTIONS:
                        self._coordinator = None
                    self._after(send_end)
                elif error in (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH):
                    self._fatal(error)
                    future._finish(error=error)
                elif error != NONE:
                    self._fatal(error)
                    future._finish(error=error)
                else:
                    self._finish_txn(commit, future)

            self._with_coordinator(lambda coord: self._call(coord, lambda c: EndTxnRequest(
                self.transactional_id, self.producer_id, self.producer_epoch, commit, c), on))

        when_quiet()
        return future

    def _finish_txn(self, commit: bool, future: TxnFuture) -> None:
        for f, op in self._txn_sends:
            self._settle(f, op, committed=commit)
        self._txn_sends = []
        self.transactions["committed" if commit else "aborted"] += 1
        self.txn_state = "ready"
        future._finish()

    def crash(self) -> None:
        """The producer process dies mid-transaction: its open transaction is left for the coordinator."""
        self.alive = False
        self.incarnation += 1
        unanswered = [(f, f.history_op) for f in self._queued_records()]
        for future, op in self._txn_sends + unanswered:
            if op is not None and future.tp is not None:
                self.cluster.history_complete(op, "info", (str(future.tp), None, self._history_value(future)))
                future.history_op = None
        self._txn_sends = []
        self.cluster.events.emit(self.cluster.now_ms(), "ProducerCrashed",
                                 f"Transactional producer {self.node_id} crashed; its open transaction stays open "
                                 f"until a new instance of {self.transactional_id} initialises (or it times out).",
                                 client=self.node_id)
