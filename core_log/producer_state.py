"""Idempotent-producer bookkeeping a partition keeps: how the broker spots a retried batch.

An idempotent producer stamps each batch with its producer id (PID), epoch and
the sequence number of its first record; sequences count up per partition. The
broker remembers, per PID, the last five batches it appended
(``NUM_BATCHES_TO_RETAIN``, as Kafka). When a batch arrives:

* same epoch, same first and last sequence as a remembered batch → a retry of a
  batch already written: not appended again, the original offset is returned;
* same epoch, first sequence = last sequence + 1 → the next batch: append;
* same epoch, any other sequence → ``OUT_OF_ORDER_SEQUENCE_NUMBER``;
* an older epoch → ``INVALID_PRODUCER_EPOCH`` (a zombie);
* a newer epoch must start at sequence 0.

The state is rebuilt from the batches in the log (leaders and followers alike),
so it survives a leader change: the new leader recognises a retry too.

Transactions: a transactional batch opens its producer's transaction on this
partition at its first offset (if none is open); the COMMIT or ABORT marker (a
control batch) closes it. The earliest first offset of the still-open
transactions bounds the **last stable offset** (LSO): read_committed consumers
read only below it. A marker with a newer epoch also fences the producer's
older epoch (a timed-out transaction was aborted under epoch + 1). Closing an
aborted transaction yields a :class:`CompletedTxn` the replica writes to the
segment's ``.txnindex``.

Differences from Kafka: no producer-state snapshots and no producer id
expiration (``producer.id.expiration.ms``): the state is rebuilt by scanning the
log's batch headers when a replica is opened or truncated.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from core_log.errors import CorruptRecordError
from core_log.log import Log
from core_log.messages import DUPLICATE_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER
from core_log.records import NO_PRODUCER_ID, ControlType, RecordBatch, parse_control_record

NUM_BATCHES_TO_RETAIN = 5
SEQUENCE_MODULUS = 1 << 31


@dataclass(frozen=True)
class BatchMetadata:
    first_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN))

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else -1


@dataclass(frozen=True)
class SequenceCheck:
    """Verdict on an incoming batch: append it, it is a duplicate of ``duplicate_of``, or an error."""

    error: str | None = None
    duplicate_of: BatchMetadata | None = None


@dataclass(frozen=True)
class CompletedTxn:
    producer_id: int
    first_offset: int
    last_offset: int  # the marker's offset
    aborted: bool


class ProducerState:
    """PID → the last batches appended for it on this partition, and its open transaction."""

    def __init__(self) -> None:
        self.entries: dict[int, ProducerEntry] = {}
        self.ongoing: dict[int, int] = {}  # pid → first offset of its open transaction here
        self.aborted: list[CompletedTxn] = []  # filled by from_log (what the .txnindex files must hold)

    @classmethod
    def from_log(cls, log: Log) -> "ProducerState":
        state = cls()
        for batch in log.all_batches():
            done = state.update_from_batch(batch, batch.base_offset)
            if done is not None and done.aborted:
                state.aborted.append(done)
        return state

    def first_unstable_offset(self) -> int | None:
        return min(self.ongoing.values()) if self.ongoing else None

    def check(self, batch: RecordBatch) -> SequenceCheck:
        pid = batch.producer_id
        if pid == NO_PRODUCER_ID:
            return SequenceCheck()
        entry = self.entries.get(pid)
        if entry is None:
            return SequenceCheck()  # unknown producer: accepted (Kafka 2.5+)
        if batch.producer_epoch < entry.epoch:
            return SequenceCheck(error=INVALID_PRODUCER_EPOCH)
        if batch.producer_epoch > entry.epoch:
            return SequenceCheck() if batch.base_sequence == 0 else SequenceCheck(error=OUT_OF_ORDER_SEQUENCE_NUMBER)
        for meta in entry.batches:
            if meta.first_sequence == batch.base_sequence and meta.last_sequence == batch.last_sequence:
                return SequenceCheck(duplicate_of=meta)
        expected = (entry.last_sequence + 1) % SEQUENCE_MODULUS
        if batch.base_sequence != expected:
            if any(meta.first_sequence <= batch.base_sequence <= meta.last_sequence for meta in entry.batches):
                return SequenceCheck(error=DUPLICATE_SEQUENCE_NUMBER)
            return SequenceCheck(error=OUT_OF_ORDER_SEQUENCE_NUMBER)
        return SequenceCheck()

    def update(self, pid: int, epoch: int, first_sequence: int, last_sequence: int,
               first_offset: int, last_offset: int) -> None:
        entry = self.entries.get(pid)
        if entry is None or epoch > entry.epoch:
            entry = self.entries[pid] = ProducerEntry(epoch)
        entry.batches.append(BatchMetadata(first_sequence, last_sequence, first_offset, last_offset))

    def update_from_batch(self, batch: RecordBatch, base_offset: int) -> CompletedTxn | None:
        """Take an appended batch into account; returns the transaction a marker closed, if any."""
        pid = batch.producer_id
        if pid == NO_PRODUCER_ID:
            return None
        if batch.is_control:
            try:
                records = batch.records()
                control = parse_control_record(records[0]) if records else None
            except CorruptRecordError:
                control = None
            entry = self.entries.get(pid)
            if entry is None or batch.producer_epoch > entry.epoch:
                self.entries[pid] = ProducerEntry(batch.producer_epoch)  # the marker fences older epochs
            first = self.ongoing.pop(pid, None)
            if first is None or control is None:
                return None
            return CompletedTxn(pid, first, base_offset, control[0] == ControlType.ABORT)
        self.update(pid, batch.producer_epoch, batch.base_sequence, batch.last_sequence,
                    base_offset, base_offset + batch.last_offset_delta)
        if batch.is_transactional:
            self.ongoing.setdefault(pid, base_offset)
        return None
