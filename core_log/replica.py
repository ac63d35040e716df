"""One broker's copy of one partition: its log, high watermark and leader-epoch cache.

Every replica, leader or follower, has the same three things:

* a :class:`~core_log.log.Log` on that broker's disk;
* a high watermark (HW): the offset below which records are committed, i.e.
  copied to every in-sync replica. Consumers read only below it;
* a leader-epoch cache: for each leader epoch, the first offset written in it.
  It is what lets a replica that comes back after a failover find where its
  log and the new leader's diverge, and cut exactly there (KIP-101/279), instead
  of trusting its high watermark (which lost acknowledged data in old Kafka).

The cache is checkpointed to ``leader-epoch-checkpoint`` in the log directory.
"""

from __future__ import annotations

import bisect
import os

from core_log.index import AbortedTxn
from core_log.log import Log
from core_log.records import RecordBatch
from core_log.messages import TopicPartition
from core_log.producer_state import ProducerState
from core_log.storage import Storage

EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint"
UNDEFINED = -1


class LeaderEpochCache:
    """``(epoch, start_offset)`` pairs, both strictly increasing."""

    def __init__(self, storage: Storage, directory: str) -> None:
        self._storage = storage
        self._path = os.path.join(directory, EPOCH_CHECKPOINT_FILE)
        self.entries: list[tuple[int, int]] = self._load()

    def _load(self) -> list[tuple[int, int]]:
        if not self._storage.exists(self._path):
            return []
        try:
            lines = self._storage.read_file(self._path).decode("ascii").split("\n")
            entries = [(int(e), int(o)) for e, o in (line.split(" ") for line in lines[2:] if line)]
        except (UnicodeDecodeError, ValueError):
            return []  # unreadable: rebuilt from the log's batch epochs by the caller
        return entries

    def _save(self) -> None:
        body = "".join(f"{e} {o}\n" for e, o in self.entries)
        self._storage.write_file_atomic(self._path, f"0\n{len(self.entries)}\n{body}".encode("ascii"))

    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that ``epoch`` starts at ``start_offset`` (ignored unless it is a newer epoch)."""
        if epoch < 0 or (self.entries and epoch <= self.entries[-1][0]):
            return
        while self.entries and self.entries[-1][1] > start_offset:
            self.entries.pop()  # a newer epoch cannot start before an older one ends
        if self.entries and self.entries[-1][1] == start_offset:
            self.entries.pop()  # the older epoch wrote nothing
        self.entries.append((epoch, start_offset))
        self._save()

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """KIP-279: the largest epoch ≤ ``requested_epoch`` and the offset where it ended.

        The end of an epoch is the start of the next one, or the log end for the
        latest. ``(-1, -1)`` when no such epoch is known.
        """
        entries = self.entries
        if entries and requested_epoch >= entries[-1][0]:  # the common case: the latest epoch
            return entries[-1][0], log_end_offset
        epochs = [e for e, _ in entries]
        i = bisect.bisect_right(epochs, requested_epoch) - 1
        if i < 0:
            return UNDEFINED, UNDEFINED
        if i == len(self.entries) - 1:
            return self.entries[i][0], log_end_offset
        return self.entries[i][0], self.entries[i + 1][1]

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs that start at or after ``end_offset`` (the log was cut there)."""
        kept = [(e, o) for e, o in self.entries if o < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._save()

    def rebuild(self, log: Log) -> None:
        """Derive the cache from the epochs stamped into the log's batches."""
        self.entries = []
        for batch in log.all_batches():
            epoch = batch.partition_leader_epoch
            if epoch >= 0 and (not self.entries or epoch > self.entries[-1][0]):
                self.entries.append((epoch, batch.base_offset))
        self._save()


class Replica:
    """A partition's log on one broker, with its HW and epoch cache; leader or follower."""

    def __init__(self, tp: TopicPartition, log: Log, storage: Storage) -> None:
        self.tp = tp
        self.log = log
        self.epoch_cache = LeaderEpochCache(storage, log.directory)
        if not self.epoch_cache.entries and log.log_end_offset > log.log_start_offset:
            self.epoch_cache.rebuild(log)
        self.epoch_cache.truncate_from_end(log.log_end_offset + 1)
        self._load_producer_state()
        self.leader_id = -1
        self.leader_epoch = -1
        # Not checkpointed here: a restarted replica learns the HW from its leader.
        self.high_watermark = log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        """LSO: below the first offset of any open transaction, and never above the HW."""
        first = self.producer_state.first_unstable_offset()
        return self.high_watermark if first is None else min(first, self.high_watermark)

    def _load_producer_state(self) -> None:
        """Rebuild producer and transaction state from the log; make the .txnindex files agree with it."""
        self.producer_state = ProducerState.from_log(self.log)
        self.log.replace_txn_indexes([AbortedTxn(t.producer_id, t.first_offset, t.last_offset, t.first_offset)
                                      for t in self.producer_state.aborted])
        self.producer_state.aborted = []

    def apply_batch(self, batch: RecordBatch, base_offset: int) -> None:
        """Track an appended batch's producer; an ABORT marker adds to the segment's .txnindex."""
        done = self.producer_state.update_from_batch(batch, base_offset)
        if done is not None and done.aborted:
            self.log.append_aborted_txn(AbortedTxn(done.producer_id, done.first_offset, done.last_offset,
                                                   self.last_stable_offset))

    def set_high_watermark(self, offset: int) -> None:
        self.high_watermark = max(self.log.log_start_offset, min(offset, self.log.log_end_offset))

    def reset_to(self, offset: int) -> None:
        """Empty the log and restart it at ``offset`` (the leader no longer has anything we hold)."""
        self.log.truncate_fully_and_start_at(offset)
        self.epoch_cache.truncate_from_end(0)
        self._load_producer_state()
        self.high_watermark = offset

    def truncate_to(self, offset: int) -> int:
        """Cut the log (and what derives from it) at ``offset``; return records removed."""
        before = self.log.log_end_offset
        self.log.truncate_to(offset)
        self.epoch_cache.truncate_from_end(self.log.log_end_offset)
        self._load_producer_state()
        self.high_watermark = min(self.high_watermark, self.log.log_end_offset)
        return before - self.log.log_end_offset
