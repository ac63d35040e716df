"""``Consumer``: an assign-mode Kafka consumer that reads up to the high watermark.

The learner (or a scenario) assigns partitions; the consumer keeps a *position*
per partition — the offset of the next record it wants — and fetches from each
partition's leader. The leader only hands out records below the high
watermark, so a consumer never sees a record that a leader failover could take
back. When a position falls outside the log (retention deleted it, or it is past
the end after a truncation) the leader answers ``OFFSET_OUT_OF_RANGE`` and the
consumer applies ``auto_offset_reset`` (``earliest``, ``latest`` or ``none``),
with an event that says how many offsets it skipped or will re-read.

Every fetch that returns records is one ``poll`` in the cluster's history.

Differences from Kafka: no consumer groups yet (they come with the group
coordinator); one fetch in flight per partition, each answered separately; the
consumer polls on its own every ``poll_interval_ms`` rather than when the
application calls ``poll()``; no read_committed (transactions come later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from core_log.errors import ConfigError, CorruptRecordError, require_int
from core_log.history import value_text
from core_log.messages import (
    METADATA_ERRORS,
    NONE,
    OFFSET_OUT_OF_RANGE,
    Envelope,
    FetchRequest,
    FetchResponse,
    MetadataRequest,
    MetadataResponse,
    PartitionMetadata,
    TopicPartition,
)
from core_log.records import Record, iter_batches

if TYPE_CHECKING:
    from core_log.cluster import Cluster

MAX_ASSIGNED_PARTITIONS = 64 * 100


@dataclass(frozen=True)
class ConsumerConfig:
    auto_offset_reset: str = "latest"  # Kafka's default
    fetch_max_bytes: int = 1024 * 1024
    fetch_max_wait_ms: int = 500
    request_timeout_ms: int = 30_000
    retry_backoff_ms: int = 100
    poll_interval_ms: int = 100

    def __post_init__(self) -> None:
        if self.auto_offset_reset not in ("earliest", "latest", "none"):
            raise ConfigError(f"auto_offset_reset must be earliest, latest or none, got {self.auto_offset_reset!r}")
        for name, low, high in (("fetch_max_bytes", 1, 64 * 1024 * 1024), ("fetch_max_wait_ms", 0, 60_000),
                                ("request_timeout_ms", 1, 3_600_000), ("retry_backoff_ms", 0, 60_000),
                                ("poll_interval_ms", 1, 60_000)):
            require_int(name, getattr(self, name), low, high)


class Consumer:
    """Assign-mode consumer. ``assign()`` partitions, then let the cluster run."""

    def __init__(self, cluster: "Cluster", client_id: str, config: ConsumerConfig | None = None,
                 on_records: Callable[[TopicPartition, list[Record]], None] | None = None,
                 record_history: bool = True) -> None:
        self.cluster = cluster
        self.node_id = client_id
        self.config = config or ConsumerConfig()
        self.alive = True
        self.incarnation = 1
        self.on_records = on_records
        self.record_history = record_history
        self.positions: dict[TopicPartition, int | None] = {}
        self.metadata: dict[TopicPartition, PartitionMetadata] = {}
        self.high_watermarks: dict[TopicPartition, int] = {}
        self.log_end_offsets: dict[TopicPartition, int] = {}
        self._in_flight: dict[TopicPartition, tuple[int, object]] = {}
        self._correlation = 0
        self._metadata_pending = False
        self.records_consumed = 0
        self.stopped = False
        cluster.register_client(self)
        self._refresh_metadata()
        self._tick()

    # ── public API ───────────────────────────────────────────────────────────
    def assign(self, partitions: list[TopicPartition], *, from_beginning: bool | None = None) -> None:
        """Read exactly these partitions; each starts per ``auto_offset_reset`` unless told otherwise."""
        if len(partitions) > MAX_ASSIGNED_PARTITIONS:
            raise ValueError(f"at most {MAX_ASSIGNED_PARTITIONS} partitions per consumer")
        for tp in partitions:
            if tp.topic not in self.cluster.topics or not 0 <= tp.partition < self.cluster.topics[tp.topic].partitions:
                raise ValueError(f"unknown partition {tp}")
        self.positions = {tp: (0 if from_beginning else None) for tp in partitions}
        self._in_flight.clear()
        if self.record_history:
            op = self.cluster.history_invoke(self.node_id, "assign", tuple(sorted(str(tp) for tp in partitions)))
            self.cluster.history_complete(op, "ok", tuple(sorted(str(tp) for tp in partitions)))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.positions:
            raise ValueError(f"{tp} is not assigned to {self.node_id}")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        self.positions[tp] = offset

    def stop(self) -> None:
        self.stopped = True

    def lag(self, tp: TopicPartition) -> int | None:
        pos, hw = self.positions.get(tp), self.high_watermarks.get(tp)
        return None if pos is None or hw is None else max(0, hw - pos)

    def describe(self) -> dict[str, object]:
        return {
            "client_id": self.node_id,
            "auto_offset_reset": self.config.auto_offset_reset,
            "records_consumed": self.records_consumed,
            "positions": {str(tp): pos for tp, pos in sorted(self.positions.items())},
            "lag": {str(tp): self.lag(tp) for tp in sorted(self.positions)},
        }

    def caught_up(self) -> bool:
        """True when every assigned partition's position has reached the latest known HW."""
        return all(self.positions.get(tp) is not None and self.high_watermarks.get(tp) is not None
                   and self.positions[tp] >= self.high_watermarks[tp] for tp in self.positions)

    # ── loop ─────────────────────────────────────────────────────────────────
    def _tick(self) -> None:
        if not self.alive:
            return
        if not self.stopped:
            for tp in sorted(self.positions):
                if tp not in self._in_flight:
                    self._fetch(tp)
        self.cluster.schedule(self.config.poll_interval_ms, self._tick)

    def _fetch(self, tp: TopicPartition) -> None:
        meta = self.metadata.get(tp)
        if meta is None or meta.leader < 0:
            self._refresh_metadata()
            return
        position = self.positions[tp]
        if position is None:
            position = 0 if self.config.auto_offset_reset == "earliest" else -1
        self._correlation += 1
        correlation = self._correlation
        op = None
        if self.record_history:
            op = self.cluster.history_invoke(self.node_id, "poll", None)
        self._in_flight[tp] = (correlation, op)
        self.cluster.send(self, f"broker-{meta.leader}", FetchRequest(
            tp, -1, max(position, 0), -1, meta.leader_epoch, self.config.fetch_max_bytes,
            self.config.fetch_max_wait_ms, correlation))
        incarnation = self.incarnation

        def timeout() -> None:
            flight = self._in_flight.get(tp)
            if self.incarnation == incarnation and flight is not None and flight[0] == correlation:
                del self._in_flight[tp]
                if op is not None:
                    self.cluster.history_complete(op, "fail", None)
                self._refresh_metadata()

        self.cluster.schedule(self.config.request_timeout_ms, timeout)

    def receive(self, envelope: Envelope) -> None:
        msg = envelope.message
        if isinstance(msg, FetchResponse):
            self._on_fetch_response(msg)
        elif isinstance(msg, MetadataResponse):
            self._metadata_pending = False
            self.metadata = dict(msg.partitions)

    def _on_fetch_response(self, resp: FetchResponse) -> None:
        tp = resp.tp
        flight = self._in_flight.get(tp)
        if flight is None or flight[0] != resp.correlation_id:
            return
        del self._in_flight[tp]
        op = flight[1]
        if tp not in self.positions:
            if op is not None:
                self.cluster.history_complete(op, "fail", None)
            return
        if resp.error != NONE:
            if op is not None:
                self.cluster.history_complete(op, "fail", None)
            if resp.error == OFFSET_OUT_OF_RANGE:
                self._reset_position(tp, resp)
            elif resp.error in METADATA_ERRORS:
                self._refresh_metadata()
            return
        self.high_watermarks[tp] = resp.high_watermark
        self.log_end_offsets[tp] = resp.log_end_offset
        position = self.positions[tp]
        if position is None:  # first fetch with auto_offset_reset latest: start at the HW
            position = 0 if self.config.auto_offset_reset == "earliest" else resp.high_watermark
            self.positions[tp] = position
        records: list[Record] = []
        try:
            for batch in iter_batches(resp.records):
                if batch.is_control:
                    position = max(position, batch.next_offset)
                    continue
                for rec in batch.records():
                    if rec.offset >= position:
                        records.append(rec)
                position = max(position, batch.next_offset)
        except CorruptRecordError:
            if op is not None:
                self.cluster.history_complete(op, "fail", None)
            return
        self.positions[tp] = position
        if op is not None:
            if records:
                reads = ((rec.offset, value_text(rec.value)) for rec in records)
                self.cluster.history_complete(op, "ok", {str(tp): tuple(reads)})
            else:
                self.cluster.history_complete(op, "ok", {})
        self.records_consumed += len(records)
        if records and self.on_records is not None:
            self.on_records(tp, records)

    def _reset_position(self, tp: TopicPartition, resp: FetchResponse) -> None:
        old = self.positions.get(tp)
        policy = self.config.auto_offset_reset
        if policy == "none":
            self.cluster.events.emit(self.cluster.now_ms(), "OffsetOutOfRange",
                                     f"{self.node_id}'s position {old} on {tp} is outside the log "
                                     f"[{resp.log_start_offset}, {resp.log_end_offset}] and auto.offset.reset=none: "
                                     f"it stops reading {tp}.", client=self.node_id, partition=str(tp))
            self.positions.pop(tp, None)
            return
        new = resp.log_start_offset if policy == "earliest" else resp.high_watermark
        self.positions[tp] = new
        if old is not None and new > old:
            how = f"skips {new - old} offsets that no longer exist"
        elif old is not None:
            how = f"moves back {old - new} offsets"
        else:
            how = "starts"
        self.cluster.events.emit(self.cluster.now_ms(), "OffsetOutOfRange",
                                 f"{self.node_id}'s position {old} on {tp} is outside the log "
                                 f"[{resp.log_start_offset}, {resp.log_end_offset}]; auto.offset.reset={policy}: "
                                 f"it {how} and continues at offset {new}.", client=self.node_id, partition=str(tp))

    def _refresh_metadata(self) -> None:
        if self._metadata_pending:
            return
        self._metadata_pending = True
        live = self.cluster.controller.live_brokers() or tuple(sorted(self.cluster.brokers))
        self._correlation += 1
        self.cluster.send(self, f"broker-{live[self._correlation % len(live)]}", MetadataRequest((), self._correlation))
        incarnation = self.incarnation

        def retry() -> None:
            if self.incarnation == incarnation and self._metadata_pending:
                self._metadata_pending = False
                self._refresh_metadata()

        self.cluster.schedule(1000, retry)

