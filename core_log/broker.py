"""A broker: a process with its own disk that leads some partitions and follows others.

Everything a broker knows arrives as a message (see ``messages.py``):
``PartitionUpdate`` from the controller makes it a leader or a follower,
followers pull records from leaders with Fetch, producers and consumers send
Produce and Fetch. It heartbeats to the controller and, as a leader, watches its
followers' progress to move the high watermark and propose ISR changes.

A broker can crash two ways:

* **kill** — the process dies: memory is gone, but every write it made sits in
  the OS page cache and survives (``SimStorage.crash("keep")``);
* **power loss** — the machine dies: writes not yet fsynced are lost
  (``"drop"``), or torn mid-write (``"tear"``).

On restart it opens every log with the real recovery of ``log.py`` (CRC checks,
torn tails cut), reloads leader-epoch caches, heartbeats, and — once the
controller answers — fetches from each leader. A follower whose log diverged
from its leader's learns the divergence point from the leader's epoch cache and
truncates exactly there before copying on.

Differences from Kafka: one partition per Produce/Fetch request; no replica
fetcher threads (one fetch in flight per partition); topic configs are read from
the cluster's catalogue at restart (Kafka replays its metadata log).
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any, Callable

from core_log.errors import CoreLogError, CorruptRecordError, OffsetOutOfRangeError
from core_log.log import Log
from core_log.messages import (
    CORRUPT_MESSAGE,
    FENCED_LEADER_EPOCH,
    INVALID_RECORD,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    OFFSET_OUT_OF_RANGE,
    REQUEST_TIMED_OUT,
    UNKNOWN_LEADER_EPOCH,
    UNKNOWN_TOPIC_OR_PARTITION,
    COORDINATOR_NOT_AVAILABLE,
    INVALID_GROUP_ID,
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerHeartbeat,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    DeleteRecordsRequest,
    DeleteRecordsResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
    Envelope,
    FetchRequest,
    FetchResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    PartitionUpdate,
    ProduceRequest,
    ProduceResponse,
    StopReplicas,
    TopicPartition,
)
from core_log import txn as txn_module
from core_log.group import GroupCoordinator, coordinator_handlers
from core_log.offsets import OFFSETS_TOPIC, partition_for_group
from core_log.network import Deadlines
from core_log.partition import FollowerState, LeaderState, PendingProduce
from core_log.records import ControlType, RecordBatch, encode_control_batch, iter_batches, read_batch_header
from core_log.replica import Replica
from core_log.storage import SimStorage, Storage

if TYPE_CHECKING:
    from core_log.cluster import Cluster

CRASH_MODES = {"kill": "keep", "power_loss": "drop", "power_loss_torn": "tear"}


def _partition_dir_name(tp: TopicPartition) -> str:
    return f"{tp.topic}-{tp.partition}"


def _parse_partition_dir(name: str) -> TopicPartition | None:
    topic, _, part = name.rpartition("-")
    if not topic or not part.isdigit():
        return None
    return TopicPartition(topic, int(part))


class Broker:
    """One broker process and its disk."""

    def __init__(self, cluster: "Cluster", broker_id: int, storage: Storage, data_dir: str) -> None:
        self.cluster = cluster
        self.broker_id = broker_id
        self.node_id = f"broker-{broker_id}"
        self.storage = storage
        self.data_dir = data_dir
        self.alive = False
        self.incarnation = 0
        self.replicas: dict[TopicPartition, Replica] = {}
        self.leading: dict[TopicPartition, LeaderState] = {}
        self.metadata: dict[TopicPartition, PartitionUpdate] = {}
        self._fetch_in_flight: dict[TopicPartition, int] = {}  # follower: correlation id of its fetch
        self._parked: dict[TopicPartition, list[tuple[FetchRequest, str, int]]] = {}
        self._correlation = 0
        self._deadlines = Deadlines(cluster.schedule, cluster.now_ms)  # follower fetch timeouts, parked fetches
        self.crash_count = 0
        self.groups = GroupCoordinator(self, random.Random(cluster.rng.getrandbits(64)))
        self.txn = txn_module.TransactionCoordinator(self)

    # ── lifecycle ────────────────────────────────────────────────────────────
    def start(self) -> None:
        """Boot (or reboot): recover every log on disk, then start heartbeating."""
        self.alive = True
        self.incarnation += 1
        self.storage.makedirs(self.data_dir)
        for name in self.storage.listdir(self.data_dir):
            tp = _parse_partition_dir(name)
            if tp is None:
                continue
            if tp.topic not in self.cluster.topics:  # deleted while this broker was down
                self._delete_dir(os.path.join(self.data_dir, name))
                continue
            replica = self._open_replica(tp)
            report = replica.log.recovery
            if not report.clean_shutdown:
                self.cluster.events.emit(
                    self.cluster.now_ms(), "LogRecovered", f"Broker {self.broker_id}, {tp}: {report.explain()}",
                    broker=self.broker_id, partition=str(tp), bytes_truncated=report.bytes_truncated)
        self._every(self.cluster.config.broker_heartbeat_interval_ms, self._heartbeat, immediately=True)
        self._every(max(1, self.cluster.config.replica_lag_time_max_ms // 2), self._check_isr)
        self._every(self.cluster.config.log_maintenance_interval_ms, self._maintain_logs)
        self._every(self.cluster.config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
                    self.txn.check_timeouts)

    def crash(self, mode: str) -> None:
        """Stop the process: ``kill`` keeps unsynced writes, ``power_loss``/``power_loss_torn`` do not."""
        if mode not in CRASH_MODES:
            raise ValueError(f"crash mode must be one of {sorted(CRASH_MODES)}, got {mode!r}")
        for replica in self.replicas.values():
            replica.log.abandon()
        if mode != "kill" or isinstance(self.storage, SimStorage):
            self.storage.crash(CRASH_MODES[mode])  # type: ignore[attr-defined]
        self.crash_count += 1
        self._stop()

    def shutdown(self) -> None:
        """A clean stop: logs closed with the clean-shutdown marker."""
        for replica in self.replicas.values():
            replica.log.close()
        self._stop()

    def _stop(self) -> None:
        """The process is gone: everything it held in memory goes with it."""
        self.alive = False
        self.groups.unload_all()
        self.txn.unload_all()
        self.replicas.clear()
        self.leading.clear()
        self.metadata.clear()
        self._fetch_in_flight.clear()
        self._parked.clear()
        self._deadlines.clear()

    def _every(self, interval_ms: int, action: Callable[[], None], immediately: bool = False) -> None:
        incarnation = self.incarnation

        def tick() -> None:
            if self.alive and self.incarnation == incarnation:
                action()
                self.cluster.schedule(interval_ms, tick)

        self.cluster.schedule(0 if immediately else interval_ms, tick)

    def _open_replica(self, tp: TopicPartition) -> Replica:
        replica = self.replicas.get(tp)
        if replica is None:
            config = self.cluster.topics[tp.topic].log_config
            log = Log(os.path.join(self.data_dir, _partition_dir_name(tp)), storage=self.storage,
                      clock=self.cluster.clock, config=config)
            replica = self.replicas[tp] = Replica(tp, log, self.storage)
        return replica

    def _send(self, dst: str, message: object) -> None:
        self.cluster.send(self, dst, message)

    def _next_correlation(self) -> int:
        self._correlation += 1
        return self._correlation

    # ── timers ───────────────────────────────────────────────────────────────
    def _heartbeat(self) -> None:
        self._send("controller", BrokerHeartbeat(self.broker_id, self.incarnation))

    def _check_isr(self) -> None:
        now = self.cluster.now_ms()
        lag = self.cluster.config.replica_lag_time_max_ms
        for tp in sorted(self.leading):
            state = self.leading[tp]
            replica = self.replicas[tp]
            lagging = state.lagging_followers(self.broker_id, now, lag, replica.log_end_offset)
            if lagging and not state.alter_in_flight:
                new_isr = tuple(b for b in state.isr if b not in lagging)
                self._alter_partition(tp, state, new_isr)
            self._expire_pending(tp, state, now)

    def _maintain_logs(self) -> None:
        for tp in sorted(self.replicas):
            replica = self.replicas[tp]
            replica.log.maybe_flush()
            deleted = replica.log.apply_retention(max_offset=replica.high_watermark)
            for d in deleted:
                self.cluster.events.emit(
                    self.cluster.now_ms(), "SegmentDeleted",
                    f"Broker {self.broker_id} deleted segment {d.base_offset}–{d.next_offset - 1} of {tp} "
                    f"({d.reason}); the log now starts at offset {replica.log.log_start_offset}.",
                    broker=self.broker_id, partition=str(tp))
            if replica.log.config.compact:
                result = replica.log.compact()
                if result.ran and result.records_removed:
                    self.cluster.events.emit(
                        self.cluster.now_ms(), "LogCompacted",
                        f"Broker {self.broker_id} compacted {tp}: removed {result.records_removed} records "
                        f"superseded by newer values for their keys (offsets unchanged).",
                        broker=self.broker_id, partition=str(tp))

    # ── dispatch ─────────────────────────────────────────────────────────────
    def receive(self, envelope: Envelope) -> None:
        handler = _HANDLERS.get(type(envelope.message))
        if handler is not None:
            handler(self, envelope.message, envelope.src)
            return
        role = _ROLE_HANDLERS.get(type(envelope.message))
        if role is not None:
            src, incarnation = envelope.src, self.incarnation

            def reply(message: Any) -> None:  # answers may come later (a held JoinGroup): only if still alive
                if self.alive and self.incarnation == incarnation:
                    self._send(src, message)

            attribute, handler = role
            handler(getattr(self, attribute), envelope.message, reply)

    def _on_find_coordinator(self, msg: FindCoordinatorRequest, src: str) -> None:
        """Which broker coordinates a group (or a transactional id): the leader of its internal partition."""
        if not isinstance(msg.group_id, str) or not msg.group_id or msg.key_type not in (0, 1):
            self._send(src, FindCoordinatorResponse(INVALID_GROUP_ID if msg.key_type == 0 else INVALID_REQUEST, -1,
                                                    msg.correlation_id))
            return
        internal = OFFSETS_TOPIC if msg.key_type == 0 else txn_module.TRANSACTION_STATE_TOPIC
        topic = self.cluster.topics.get(internal)
        if topic is None:  # Kafka creates the internal topic on the first FindCoordinator
            if msg.key_type == 0:
                self.cluster.ensure_offsets_topic()
            else:
                self.cluster.ensure_transaction_state_topic()
            self._send(src, FindCoordinatorResponse(COORDINATOR_NOT_AVAILABLE, -1, msg.correlation_id))
            return
        partition = (partition_for_group(msg.group_id, topic.partitions) if msg.key_type == 0
                     else txn_module.partition_for_transactional_id(msg.group_id, topic.partitions))
        update = self.metadata.get(TopicPartition(internal, partition))
        if update is None or update.leader < 0:
            self._send(src, FindCoordinatorResponse(COORDINATOR_NOT_AVAILABLE, -1, msg.correlation_id))
        else:
            self._send(src, FindCoordinatorResponse(NONE, update.leader, msg.correlation_id))

    def _on_init_producer_id(self, msg: InitProducerIdRequest, src: str) -> None:
        if msg.transactional_id is not None:
            incarnation = self.incarnation
            self.txn.handle_init(msg, lambda resp: self._send(src, resp)
                                 if self.alive and self.incarnation == incarnation else None)
            return
        self._send(src, InitProducerIdResponse(NONE, self.cluster.controller.allocate_producer_id(), 0,
                                               msg.correlation_id))

    def _on_stop_replicas(self, msg: StopReplicas, src: str = "") -> None:
        self._stop_replicas(msg.topic)

    def _stop_replicas(self, topic: str) -> None:
        for tp in sorted(tp for tp in self.replicas if tp.topic == topic):
            if topic == OFFSETS_TOPIC:
                self.groups.unload(tp.partition)
            replica = self.replicas.pop(tp)
            self.leading.pop(tp, None)
            self.metadata.pop(tp, None)
            self._fetch_in_flight.pop(tp, None)
            self._parked.pop(tp, None)
            replica.log.abandon()
            self._delete_dir(replica.log.directory)
        for tp in [tp for tp in self.metadata if tp.topic == topic]:
            del self.metadata[tp]

    def _delete_dir(self, path: str) -> None:
        for name in self.storage.listdir(path):
            self.storage.remove(os.path.join(path, name))
        self.storage.remove_dir(path)

    # ── becoming leader or follower ──────────────────────────────────────────
    def _on_partition_update(self, update: PartitionUpdate, src: str = "controller") -> None:
        tp = update.tp
        current = self.metadata.get(tp)
        if current is not None and update.partition_epoch <= current.partition_epoch \
                and update.leader_epoch <= current.leader_epoch:
            return  # stale
        if tp.topic not in self.cluster.topics:
            return
        self.metadata[tp] = update
        if self.broker_id not in update.replicas:
            return
        replica = self._open_replica(tp)
        if update.leader == self.broker_id:
            state = self.leading.get(tp)
            if state is None or state.leader_epoch != update.leader_epoch:
                self._become_leader(replica, update)
            else:
                state.isr, state.partition_epoch = update.isr, update.partition_epoch
                self._maybe_advance_hw(tp)
        elif replica.leader_id != update.leader or replica.leader_epoch != update.leader_epoch or tp in self.leading:
            self._become_follower(replica, update)

    def _become_leader(self, replica: Replica, update: PartitionUpdate) -> None:
        tp = update.tp
        now = self.cluster.now_ms()
        replica.leader_id, replica.leader_epoch = self.broker_id, update.leader_epoch
        replica.epoch_cache.assign(update.leader_epoch, replica.log_end_offset)
        state = LeaderState(update.leader_epoch, update.isr, update.partition_epoch, replica.log_end_offset)
        for b in update.replicas:
            if b != self.broker_id:
                state.followers[b] = FollowerState(last_caught_up_ms=now if b in update.isr else 0)
        self.leading[tp] = state
        self._fetch_in_flight.pop(tp, None)
        self._maybe_advance_hw(tp)
        if tp.topic == OFFSETS_TOPIC:
            self.groups.unload(tp.partition)
            self.groups.load(tp.partition)
        elif tp.topic == txn_module.TRANSACTION_STATE_TOPIC:
            self.txn.unload(tp.partition)
            self.txn.load(tp.partition)

    def _become_follower(self, replica: Replica, update: PartitionUpdate) -> None:
        tp = update.tp
        old = self.leading.pop(tp, None)
        if tp.topic == OFFSETS_TOPIC:
            self.groups.unload(tp.partition)
        elif tp.topic == txn_module.TRANSACTION_STATE_TOPIC:
            self.txn.unload(tp.partition)
        if old is not None:
            for pending in old.pending:
                pending.reply(NOT_LEADER_OR_FOLLOWER, -1)  # type: ignore[operator]
            for req, src, _ in self._parked.pop(tp, []):
                self._reply_fetch(req, src, NOT_LEADER_OR_FOLLOWER)
        replica.leader_id, replica.leader_epoch = update.leader, update.leader_epoch
        self._fetch_in_flight.pop(tp, None)
        if update.leader >= 0:
            self._follower_fetch(tp)

    # ── follower side ────────────────────────────────────────────────────────
    def _follower_fetch(self, tp: TopicPartition) -> None:
        replica = self.replicas.get(tp)
        if replica is None or tp in self.leading or replica.leader_id < 0 or tp in self._fetch_in_flight:
            return
        correlation = self._next_correlation()
        self._fetch_in_flight[tp] = correlation
        cfg = self.cluster.config
        self._send(f"broker-{replica.leader_id}", FetchRequest(
            tp, self.broker_id, replica.log_end_offset, replica.epoch_cache.latest_epoch(), replica.leader_epoch,
            cfg.replica_fetch_max_bytes, cfg.replica_fetch_wait_max_ms, correlation))
        incarnation, leader_epoch = self.incarnation, replica.leader_epoch

        def timeout() -> None:  # no answer (lost, or the leader is gone): ask again
            if self.alive and self.incarnation == incarnation and self._fetch_in_flight.get(tp) == correlation:
                del self._fetch_in_flight[tp]
                r = self.replicas.get(tp)
                if r is not None and r.leader_epoch == leader_epoch:
                    self._follower_fetch(tp)

        self._deadlines.add(cfg.replica_socket_timeout_ms, correlation, timeout)

    def _on_fetch_response(self, resp: FetchResponse, src: str = "") -> None:
        tp = resp.tp
        if self._fetch_in_flight.get(tp) != resp.correlation_id:
            return
        del self._fetch_in_flight[tp]
        self._deadlines.cancel(self.cluster.config.replica_socket_timeout_ms, resp.correlation_id)
        replica = self.replicas.get(tp)
        if replica is None or tp in self.leading:
            return
        if resp.error != NONE:
            if resp.error == OFFSET_OUT_OF_RANGE and replica.log_end_offset < resp.log_start_offset:
                replica.reset_to(resp.log_start_offset)  # the leader's log starts past all we have
            self._retry_fetch_later(tp)
            return
        if resp.diverging_epoch is not None:
            self._truncate_on_divergence(replica, resp)
            self._follower_fetch(tp)
            return
        if resp.records:
            try:
                # Like Kafka's followers: check each batch's header and CRC, append its bytes as they came.
                for batch in iter_batches(resp.records):
                    if batch.base_offset < replica.log_end_offset:
                        continue
                    batch = batch.detached()
                    replica.log.append(batch.buffer, assign_offsets=False, checked=batch)
                    replica.epoch_cache.assign(batch.partition_leader_epoch, batch.base_offset)
                    replica.apply_batch(batch, batch.base_offset)
            except (CorruptRecordError, CoreLogError) as exc:
                self.cluster.events.emit(self.cluster.now_ms(), "FetchRejected",
                                         f"Broker {self.broker_id} refused records for {tp}: {exc}.",
                                         broker=self.broker_id, partition=str(tp))
        if resp.log_start_offset > replica.log.log_start_offset:
            try:
                replica.log.delete_records_before(min(resp.log_start_offset, replica.log_end_offset))
            except OffsetOutOfRangeError:
                pass
        replica.set_high_watermark(resp.high_watermark)
        self._follower_fetch(tp)

    def _retry_fetch_later(self, tp: TopicPartition) -> None:
        incarnation = self.incarnation
        self.cluster.schedule(self.cluster.config.replica_fetch_backoff_ms,
                              lambda: self._follower_fetch(tp) if self.alive and self.incarnation == incarnation else None)

    def _truncate_on_divergence(self, replica: Replica, resp: FetchResponse) -> None:
        epoch, leader_end = resp.diverging_epoch  # type: ignore[misc]
        if epoch < 0:
            point = replica.high_watermark  # the leader knows no common epoch: fall back to the HW
        else:
            my_epoch, my_end = replica.epoch_cache.end_offset_for(epoch, replica.log_end_offset)
            point = min(leader_end, my_end if my_epoch >= 0 else leader_end, replica.log_end_offset)
        removed = replica.truncate_to(point)
        if removed:
            self.cluster.events.emit(
                self.cluster.now_ms(), "RecordsTruncated",
                f"Broker {self.broker_id}'s copy of {replica.tp} diverged from leader {replica.leader_id} after "
                f"epoch {epoch}: it cut {removed} offsets, back to offset {replica.log_end_offset}, "
                f"and copies the leader's records from there.",
                broker=self.broker_id, partition=str(replica.tp), truncated_to=replica.log_end_offset)

    # ── leader side: fetch ───────────────────────────────────────────────────
    def _on_fetch(self, req: FetchRequest, src: str) -> None:
        tp = req.tp
        replica = self.replicas.get(tp)
        state = self.leading.get(tp)
        if tp.topic not in self.cluster.topics:  # deleted: the replica goes when StopReplicas arrives
            self._reply_fetch(req, src, UNKNOWN_TOPIC_OR_PARTITION)
            return
        if replica is None or state is None:
            self._reply_fetch(req, src, NOT_LEADER_OR_FOLLOWER)
            return
        if req.current_leader_epoch >= 0 and req.current_leader_epoch != state.leader_epoch:
            error = FENCED_LEADER_EPOCH if req.current_leader_epoch < state.leader_epoch else UNKNOWN_LEADER_EPOCH
            self._reply_fetch(req, src, error)
            return
        log = replica.log
        if req.replica_id >= 0 and req.last_fetched_epoch >= 0:
            epoch, end = replica.epoch_cache.end_offset_for(req.last_fetched_epoch, log.log_end_offset)
            if epoch < req.last_fetched_epoch or end < req.fetch_offset:
                self._reply_fetch(req, src, NONE, diverging=(epoch, end))
                return
        if req.fetch_offset < log.log_start_offset or req.fetch_offset > log.log_end_offset:
            self._reply_fetch(req, src, OFFSET_OUT_OF_RANGE)
            return
        if req.replica_id >= 0:
            follower = state.followers.get(req.replica_id)
            if follower is None:
                follower = state.followers[req.replica_id] = FollowerState()
            follower.on_fetch(req.fetch_offset, log.log_end_offset, self.cluster.now_ms())
            self._maybe_expand_isr(tp, state, req.replica_id, req.fetch_offset)
            self._maybe_advance_hw(tp)
        upper = _fetch_upper(replica, req)
        if req.fetch_offset >= upper and req.max_wait_ms > 0:
            self._park(req, src)
            return
        self._reply_fetch(req, src, NONE)

    def _park(self, req: FetchRequest, src: str) -> None:
        """Hold a fetch until data arrives or ``max_wait_ms`` passes (Kafka's fetch purgatory)."""
        token = self._next_correlation()
        self._parked.setdefault(req.tp, []).append((req, src, token))
        incarnation = self.incarnation

        def expire() -> None:
            if not (self.alive and self.incarnation == incarnation):
                return
            parked = self._parked.get(req.tp, [])
            for i, (r, s, t) in enumerate(parked):
                if t == token:
                    del parked[i]
                    self._reply_fetch(r, s, NONE)
                    return

        self._deadlines.add(req.max_wait_ms, token, expire)

    def _wake_parked(self, tp: TopicPartition) -> None:
        parked = self._parked.pop(tp, [])
        replica = self.replicas.get(tp)
        still: list[tuple[FetchRequest, str, int]] = []
        for req, src, token in parked:
            upper = _fetch_upper(replica, req) if replica else 0
            if replica is None or req.fetch_offset < upper:
                self._deadlines.cancel(req.max_wait_ms, token)
                self._reply_fetch(req, src, NONE)
            else:
                still.append((req, src, token))
        if still:
            self._parked[tp] = still

    def _reply_fetch(self, req: FetchRequest, src: str, error: str, diverging: tuple[int, int] | None = None) -> None:
        replica = self.replicas.get(req.tp)
        records = b""
        aborted: tuple[tuple[int, int], ...] = ()
        if replica is None:
            hw = start = leo = stable = -1
        else:
            hw, start, leo = replica.high_watermark, replica.log.log_start_offset, replica.log_end_offset
            stable = replica.last_stable_offset
            if error == NONE and diverging is None:
                upper = _fetch_upper(replica, req)
                try:
                    # At least one whole batch whatever the client's limit (Kafka's minOneMessage), so a
                    # zero or negative max_bytes from a client reads one batch rather than failing here.
                    batches = replica.log.read(req.fetch_offset, max(1, req.max_bytes), max_offset=upper)
                    records = _batch_bytes(batches)
                    if req.isolation_level == 1 and batches:
                        aborted = tuple((e.producer_id, e.first_offset) for e in replica.log.aborted_txns(
                            batches[0].base_offset, batches[-1].next_offset))
                except OffsetOutOfRangeError:
                    error = OFFSET_OUT_OF_RANGE
        self._send(src, FetchResponse(req.tp, error, hw, start, leo, records, req.correlation_id, diverging,
                                      stable, aborted))

    # ── leader side: ISR and HW ──────────────────────────────────────────────
    def _maybe_expand_isr(self, tp: TopicPartition, state: LeaderState, follower: int, fetch_offset: int) -> None:
        replica = self.replicas[tp]
        if (follower not in state.isr and not state.alter_in_flight
                and fetch_offset >= replica.high_watermark and fetch_offset >= state.epoch_start_offset):
            self._alter_partition(tp, state, state.isr + (follower,))

    def _alter_partition(self, tp: TopicPartition, state: LeaderState, new_isr: tuple[int, ...]) -> None:
        state.alter_in_flight = True
        self._send("controller", AlterPartitionRequest(tp, self.broker_id, state.leader_epoch,
                                                       state.partition_epoch, new_isr))
        incarnation, epoch = self.incarnation, state.leader_epoch

        def give_up() -> None:  # the controller's answer was lost: allow a new proposal
            s = self.leading.get(tp)
            if self.alive and self.incarnation == incarnation and s is not None and s.leader_epoch == epoch:
                s.alter_in_flight = False

        self.cluster.schedule(self.cluster.config.replica_socket_timeout_ms, give_up)

    def _on_alter_partition_response(self, resp: AlterPartitionResponse, src: str = "") -> None:
        state = self.leading.get(resp.tp)
        if state is None:
            return
        state.alter_in_flight = False
        if resp.update is not None:
            self._on_partition_update(resp.update)

    def _maybe_advance_hw(self, tp: TopicPartition) -> None:
        state = self.leading.get(tp)
        replica = self.replicas.get(tp)
        topic = self.cluster.topics.get(tp.topic)
        if state is None or replica is None or topic is None:
            return  # (no topic: deleted, and this broker's StopReplicas is still on its way)
        min_isr = topic.min_insync_replicas
        candidate = state.compute_high_watermark(self.broker_id, replica.log_end_offset, min_isr)
        if candidate is not None and candidate > replica.high_watermark:
            replica.set_high_watermark(candidate)
            self._complete_pending(tp, state)
            self._wake_parked(tp)

    def _complete_pending(self, tp: TopicPartition, state: LeaderState) -> None:
        hw = self.replicas[tp].high_watermark
        done = [p for p in state.pending if p.last_offset < hw]
        state.pending = [p for p in state.pending if p.last_offset >= hw]
        for p in done:
            p.reply(NONE, p.base_offset)  # type: ignore[operator]

    def _expire_pending(self, tp: TopicPartition, state: LeaderState, now: int) -> None:
        expired = [p for p in state.pending if p.deadline_ms <= now]
        if expired:
            state.pending = [p for p in state.pending if p.deadline_ms > now]
            for p in expired:
                p.reply(REQUEST_TIMED_OUT, -1)  # type: ignore[operator]

    # ── leader side: produce ─────────────────────────────────────────────────
    def _refuse_produce(self, tp: TopicPartition, src: str, why: str) -> None:
        self.cluster.events.emit(self.cluster.now_ms(), "ProduceRefused",
                                 f"Broker {self.broker_id} refused {src}'s write to {tp}: {why}.",
                                 broker=self.broker_id, partition=str(tp), client=src)

    def _on_produce(self, req: ProduceRequest, src: str) -> None:
        tp = req.tp

        def reply(error: str, base_offset: int) -> None:
            if req.acks != 0:
                replica = self.replicas.get(tp)
                self._send(src, ProduceResponse(tp, error, base_offset, req.correlation_id,
                                                replica.log.log_start_offset if replica else -1))

        if tp.topic not in self.cluster.topics:
            reply(UNKNOWN_TOPIC_OR_PARTITION, -1)
            return
        if tp.topic.startswith("__"):
            # Kafka: "Cannot append to internal topic". Only the coordinators write there, and not by Produce.
            self._refuse_produce(tp, src, "it is internal: only the cluster's coordinators write to it")
            reply(INVALID_TOPIC_EXCEPTION, -1)
            return
        replica, state = self.replicas.get(tp), self.leading.get(tp)
        if replica is None or state is None:
            reply(NOT_LEADER_OR_FOLLOWER, -1)
            return
        min_isr = self.cluster.topics[tp.topic].min_insync_replicas
        if req.acks == -1 and len(state.isr) < min_isr:
            reply(NOT_ENOUGH_REPLICAS, -1)
            return
        try:
            batch = read_batch_header(req.records)
            batch.validate()
        except CorruptRecordError:
            reply(CORRUPT_MESSAGE, -1)
            return
        # Kafka (produce v3+) takes exactly one batch per partition, and never a control batch from a client:
        # a second batch would skip the sequence check below, and a forged COMMIT/ABORT would end another
        # producer's transaction.
        if batch.size_bytes != len(req.records) or batch.is_control:
            self._refuse_produce(tp, src, "a client may send one batch per partition, and no control batch"
                                 if batch.is_control else "a request must carry exactly one record batch per partition")
            reply(INVALID_RECORD, -1)
            return
        check = replica.producer_state.check(batch)
        if check.duplicate_of is not None:
            self.cluster.events.emit(
                self.cluster.now_ms(), "DuplicateBatchIgnored",
                f"Leader {self.broker_id} of {tp} recognised a retried batch from producer {batch.producer_id} "
                f"(sequences {batch.base_sequence}–{batch.last_sequence}) and did not write it again.",
                broker=self.broker_id, partition=str(tp))
            reply(NONE, check.duplicate_of.first_offset)
            return
        if check.error is not None:
            reply(check.error, -1)
            return
        try:
            info = replica.log.append(req.records, leader_epoch=state.leader_epoch, checked=batch)
        except CoreLogError as exc:
            reply(getattr(exc, "kafka_name", INVALID_RECORD), -1)
            return
        replica.apply_batch(batch, info.first_offset)
        self._wake_parked(tp)
        if req.acks == -1:
            state.pending.append(PendingProduce(info.last_offset, info.first_offset, reply,
                                                self.cluster.now_ms() + req.timeout_ms))
            self._maybe_advance_hw(tp)
        else:
            self._maybe_advance_hw(tp)
            reply(NONE, info.first_offset)

    def append_internal(self, tp: TopicPartition, records: bytes, timeout_ms: int,
                        done: Callable[[str], None]) -> None:
        """Append a batch as this partition's leader and call ``done(error)`` once the HW passes it.

        The group coordinator writes commits and group metadata this way: like an
        ``acks=all`` produce, so an acknowledged commit is on every in-sync replica.
        """
        replica, state = self.replicas.get(tp), self.leading.get(tp)
        if replica is None or state is None:
            done(NOT_LEADER_OR_FOLLOWER)
            return
        if len(state.isr) < self.cluster.topics[tp.topic].min_insync_replicas:
            done(NOT_ENOUGH_REPLICAS)
            return
        try:
            info = replica.log.append(records, leader_epoch=state.leader_epoch)
        except CoreLogError as exc:
            done(getattr(exc, "kafka_name", INVALID_RECORD))
            return
        replica.apply_batch(read_batch_header(records), info.first_offset)
        self._wake_parked(tp)
        state.pending.append(PendingProduce(info.last_offset, info.first_offset,
                                            lambda error, _offset: done(error), self.cluster.now_ms() + timeout_ms))
        self._maybe_advance_hw(tp)

    def _on_write_txn_markers(self, req: WriteTxnMarkersRequest, src: str) -> None:
        """Append a COMMIT or ABORT marker to each partition this broker leads; answer once replicated."""
        results: dict[TopicPartition, str] = {}
        incarnation = self.incarnation

        def one_done(tp: TopicPartition, error: str) -> None:
            results[tp] = error
            if error == NONE and tp.topic == OFFSETS_TOPIC:
                self.groups.complete_txn(tp.partition, req.producer_id, req.commit)
            if len(results) == len(req.partitions) and self.alive and self.incarnation == incarnation:
                self._send(src, WriteTxnMarkersResponse(req.producer_id, tuple(sorted(results.items())),
                                                        req.correlation_id))

        for tp in req.partitions:
            if tp not in self.leading:
                one_done(tp, NOT_LEADER_OR_FOLLOWER)
                continue
            marker = encode_control_batch(ControlType.COMMIT if req.commit else ControlType.ABORT,
                                          producer_id=req.producer_id, producer_epoch=req.producer_epoch,
                                          coordinator_epoch=req.coordinator_epoch, timestamp_ms=self.cluster.now_ms())
            self.append_internal(tp, marker, self.cluster.config.offsets_commit_timeout_ms,
                                 lambda error, tp=tp: one_done(tp, error))

    def _on_write_txn_markers_response(self, resp: WriteTxnMarkersResponse, src: str) -> None:
        self.txn.on_markers_response(resp)

    def _on_list_offsets(self, req: ListOffsetsRequest, src: str) -> None:
        """ListOffsets on the leader: -2 → log start, -1 → high watermark, else the first record at/after a time."""
        replica, state = self.replicas.get(req.tp), self.leading.get(req.tp)
        if replica is None or state is None:
            self._send(src, ListOffsetsResponse(req.tp, NOT_LEADER_OR_FOLLOWER, -1, -1, req.correlation_id))
            return
        start, hw = replica.log.log_start_offset, replica.high_watermark
        if req.timestamp_ms == -2:
            offset, ts = start, -1
        elif req.timestamp_ms == -1:
            offset, ts = hw, -1
        elif req.timestamp_ms < 0:
            self._send(src, ListOffsetsResponse(req.tp, INVALID_REQUEST, -1, -1, req.correlation_id))
            return
        else:
            found = replica.log.offset_for_timestamp(req.timestamp_ms)
            offset, ts = found if found is not None and found[0] < hw else (-1, -1)
        self._send(src, ListOffsetsResponse(req.tp, NONE, offset, ts, req.correlation_id, start, hw))

    def _on_delete_records(self, req: DeleteRecordsRequest, src: str) -> None:
        """DeleteRecords on the leader: the log start moves up (at most to the HW); followers learn it from
        the log start offset in their next fetch response, as Kafka's do."""
        replica, state = self.replicas.get(req.tp), self.leading.get(req.tp)
        if replica is None or state is None:
            self._send(src, DeleteRecordsResponse(req.tp, NOT_LEADER_OR_FOLLOWER, -1, req.correlation_id))
            return
        target = replica.high_watermark if req.offset == -1 else req.offset
        if target < 0:
            self._send(src, DeleteRecordsResponse(req.tp, OFFSET_OUT_OF_RANGE, -1, req.correlation_id))
            return
        try:
            replica.log.delete_records_before(target, max_offset=replica.high_watermark)
        except OffsetOutOfRangeError:
            self._send(src, DeleteRecordsResponse(req.tp, OFFSET_OUT_OF_RANGE, -1, req.correlation_id))
            return
        start = replica.log.log_start_offset
        self.cluster.events.emit(
            self.cluster.now_ms(), "RecordsDeleted",
            f"Leader {self.broker_id} of {req.tp} moved its log start to offset {start} (DeleteRecords): records "
            f"below it can no longer be read, and the followers drop them when their next fetch tells them.",
            broker=self.broker_id, partition=str(req.tp), log_start_offset=start)
        self._send(src, DeleteRecordsResponse(req.tp, NONE, start, req.correlation_id))

    # ── metadata ─────────────────────────────────────────────────────────────
    def _on_metadata(self, req: MetadataRequest, src: str) -> None:
        partitions = {}
        counts: dict[str, int] = {}
        for tp, u in self.metadata.items():
            if req.topics and tp.topic not in req.topics:
                continue
            partitions[tp] = PartitionMetadata(u.leader, u.leader_epoch, u.replicas, u.isr)
            counts[tp.topic] = counts.get(tp.topic, 0) + 1
        self._send(src, MetadataResponse(partitions, counts, self.cluster.controller.live_brokers(),
                                         req.correlation_id))

    # ── inspection (for the UI and tests) ────────────────────────────────────
    def describe(self) -> dict[str, object]:
        return {
            "broker_id": self.broker_id,
            "alive": self.alive,
            "disk_bytes": sum(r.log.size_bytes for r in self.replicas.values()) if self.alive else None,
            "leading": sorted(str(tp) for tp in self.leading),
        }


def _batch_bytes(batches: list[RecordBatch]) -> bytes:
    """The bytes of consecutive batches (one slice when they sit side by side in one buffer, as a read leaves them)."""
    if not batches:
        return b""
    first, last = batches[0], batches[-1]
    end = last.position + last.size_bytes
    if all(b.buffer is first.buffer for b in batches) and end - first.position == sum(b.size_bytes for b in batches):
        buf = first.buffer
        if first.position == 0 and end == len(buf) and isinstance(buf, bytes):
            return buf
        return bytes(buf[first.position:end])
    return b"".join(b.to_bytes() for b in batches)


def _fetch_upper(replica: Replica, req: FetchRequest) -> int:
    """How far a fetch may read: followers to the log end, consumers to the HW (read_committed: the LSO)."""
    if req.replica_id >= 0:
        return replica.log_end_offset
    return replica.last_stable_offset if req.isolation_level == 1 else replica.high_watermark


#: Message type → the broker method that handles it (a table, not an isinstance chain: it is hot).
_HANDLERS = {
    PartitionUpdate: Broker._on_partition_update,
    FetchRequest: Broker._on_fetch,
    FetchResponse: Broker._on_fetch_response,
    ProduceRequest: Broker._on_produce,
    MetadataRequest: Broker._on_metadata,
    AlterPartitionResponse: Broker._on_alter_partition_response,
    StopReplicas: Broker._on_stop_replicas,
    InitProducerIdRequest: Broker._on_init_producer_id,
    FindCoordinatorRequest: Broker._on_find_coordinator,
    ListOffsetsRequest: Broker._on_list_offsets,
    DeleteRecordsRequest: Broker._on_delete_records,
    WriteTxnMarkersRequest: Broker._on_write_txn_markers,
    WriteTxnMarkersResponse: Broker._on_write_txn_markers_response,
}

#: Requests for a coordinator role (attribute of the broker) — they may be answered later (held joins).
_ROLE_HANDLERS: dict[type, tuple[str, Any]] = {
    **{t: ("groups", h) for t, h in coordinator_handlers().items()},
    **{t: ("txn", h) for t, h in txn_module.coordinator_handlers().items()},
}
