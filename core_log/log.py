"""A partition replica's log: a directory of segments, appended, read, trimmed and cleaned.

The ``Log`` is where a record becomes durable. It assigns offsets on append,
serves whole batches on read, rolls to a new segment by size or age, flushes to
disk by Kafka's ``flush.messages`` / ``flush.ms`` policy, recovers after a crash,
deletes old segments by retention, and compacts by key. Replication (leaders,
followers, the high watermark) is built on top of it by later layers, which use
``truncate_to`` (a follower dropping a divergent tail) and
``delete_records_before`` (the admin DeleteRecords API).

Files in the log's directory::

    00000000000000000000.log        segment: record batches, Kafka's own format
    00000000000000000000.index      sparse offset index   (see core_log.index)
    00000000000000000000.timeindex  sparse time index
    00000000000000004200.log …      the next segment starts at offset 4200
    partition.checkpoint            log start offset, recovery point, cleaner offset
    .kafka_cleanshutdown            present only while the log is cleanly closed

Opening a log:

1. finish or undo an interrupted compaction swap (``*.cleaned`` / ``*.swap``);
2. read ``partition.checkpoint``;
3. if ``.kafka_cleanshutdown`` exists, trust every segment and only sanity-check
   indexes (fast); delete the marker so a later crash is seen as unclean;
4. otherwise every segment holding offsets at or past the recovery point is
   recovered batch by batch (see :meth:`core_log.segment.Segment.recover`); a
   torn or corrupt tail is cut and every later segment is deleted; what was cut
   is reported in :attr:`Log.recovery`;
5. keep the recovery point where it was (recovered data is valid, not yet known
   durable): the next flush moves it, and a crash before that recovers again.

Differences from Kafka:

* The three per-partition checkpoints Kafka keeps in files shared by a whole
  log directory are kept in one small file per partition directory.
* Compaction cleans each segment into a replacement with the same base offset;
  it does not merge small segments. Transaction markers are kept (transactions
  arrive in a later layer).
* Retention and cleaning run when the owner calls :meth:`Log.apply_retention` /
  :meth:`Log.compact` (the cluster schedules them on simulated time) rather than
  on background threads.
* Records are checked structurally on append only when asked
  (``verify_records=True``, or always on compacted logs, which need keys); the
  CRC of every batch is always checked.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field, fields
from typing import Sequence

from core_log.clock import Clock
from core_log.errors import (
    ConfigError,
    CorruptRecordError,
    InvalidRecordError,
    LogClosedError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
    require_int,
)
from core_log.records import (
    NO_TIMESTAMP,
    Record,
    RecordBatch,
    encode_batch,
    read_batch_header,
    set_base_offset,
    set_partition_leader_epoch,
)
from core_log.index import AbortedTxn
from core_log.segment import Segment, SegmentRecovery, parse_segment_file_name
from core_log.storage import Storage

CHECKPOINT_FILE = "partition.checkpoint"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
CHECKPOINT_VERSION = 0
NEVER = (1 << 63) - 1  # Kafka's Long.MAX_VALUE: "no limit" for flush settings
CLEANUP_POLICIES = ("delete", "compact", "compact,delete", "delete,compact")
DEFAULT_FETCH_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LogConfig:
    """Per-log settings with Kafka's topic-config meanings and defaults.

    Names follow the topic configs with dots as underscores and the unit last.
    ``-1`` means "no limit" for the retention settings, as in Kafka.
    """

    segment_bytes: int = 1024 * 1024 * 1024  # roll when the active segment would exceed this
    segment_ms: int = 7 * 24 * 3600 * 1000  # roll when the active segment's records span this long
    segment_index_bytes: int = 10 * 1024 * 1024  # roll when the offset index reaches this size
    index_interval_bytes: int = 4096  # log bytes between two index entries
    retention_ms: int = 7 * 24 * 3600 * 1000  # delete segments whose newest record is older
    retention_bytes: int = -1  # delete oldest segments while the log is larger
    cleanup_policy: str = "delete"  # "delete", "compact" or both
    delete_retention_ms: int = 24 * 3600 * 1000  # how long a tombstone outlives its first cleaning
    min_cleanable_dirty_ratio: float = 0.5  # compact when dirty bytes / all bytes reaches this
    flush_messages: int = NEVER  # fsync after this many unflushed records
    flush_ms: int = NEVER  # fsync when the oldest unflushed append is this old
    max_batch_bytes: int = 1048588  # message.max.bytes: the largest batch accepted

    def __post_init__(self) -> None:
        limits = {
            "segment_bytes": (14, (1 << 31) - 1),
            "segment_ms": (1, NEVER),
            "segment_index_bytes": (8, (1 << 31) - 1),
            "index_interval_bytes": (0, (1 << 31) - 1),
            "retention_ms": (-1, NEVER),
            "retention_bytes": (-1, NEVER),
            "delete_retention_ms": (0, NEVER),
            "flush_messages": (1, NEVER),
            "flush_ms": (0, NEVER),
            "max_batch_bytes": (61, (1 << 31) - 1),
        }
        for name, (low, high) in limits.items():
            require_int(name, getattr(self, name), low, high)
        if self.cleanup_policy not in CLEANUP_POLICIES:
            raise ConfigError(f"cleanup_policy must be one of {CLEANUP_POLICIES}, got {self.cleanup_policy!r}")
        ratio = self.min_cleanable_dirty_ratio
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"min_cleanable_dirty_ratio must be in [0, 1], got {ratio!r}")

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(slots=True)
class AppendInfo:
    """What one append did (not frozen only because a frozen dataclass is slow to build, and this is hot)."""

    first_offset: int
    last_offset: int
    record_count: int
    batch_count: int
    max_timestamp_ms: int
    size_bytes: int
    segment_base_offset: int
    rolled: bool  # a new segment was started for this append
    batches: tuple[RecordBatch, ...] = ()  # the headers of the batches written, as appended (offsets stamped)


@dataclass(frozen=True)
class RecoveryReport:
    """How the log was opened: clean, or recovered — and what recovery cut off."""

    clean_shutdown: bool
    segments_recovered: int
    indexes_rebuilt: int
    bytes_truncated: int
    segments_deleted: int
    reason: str | None  # why data was cut, None if nothing was
    log_end_offset: int

    def explain(self) -> str:
        """One sentence for the event timeline."""
        if self.clean_shutdown:
            return f"Log opened after a clean shutdown; log end offset {self.log_end_offset}, nothing to recover."
        if not self.bytes_truncated:
            return (f"Log recovered after an unclean shutdown: {self.segments_recovered} segment(s) checked, "
                    f"all batches valid; log end offset {self.log_end_offset}.")
        return (f"Log recovered after an unclean shutdown: cut {self.bytes_truncated} bytes "
                f"({self.reason}); log end offset is now {self.log_end_offset}.")


@dataclass(frozen=True)
class DeletedSegment:
    base_offset: int
    next_offset: int
    size_bytes: int
    reason: str  # "retention.ms", "retention.bytes" or "log start offset"


@dataclass
class CompactionResult:
    """What one cleaning pass did (``ran`` is False when it was not due)."""

    ran: bool
    dirty_ratio: float
    reason: str
    segments_cleaned: int = 0
    records_before: int = 0
    records_removed: int = 0
    tombstones_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    first_dirty_offset_after: int = 0
    removed_offsets: list[int] = field(default_factory=list)


def _read_checkpoint(storage: Storage, path: str) -> dict[str, int]:
    """Parse ``partition.checkpoint``; a missing or unreadable file gives no values."""
    if not storage.exists(path):
        return {}
    try:
        lines = storage.read_file(path).decode("ascii").split("\n")
        if lines[0] != f"version {CHECKPOINT_VERSION}":
            return {}
        values = {}
        for line in lines[1:]:
            if line:
                name, value = line.split(" ")
                values[name] = int(value)
        return values
    except (UnicodeDecodeError, ValueError, IndexError):
        return {}


class Log:
    """One replica's log in ``directory``. Open it; use it; ``close()`` it cleanly.

    Not thread-safe: the engine owns each Log from one thread. After the storage
    crashes, every method raises :class:`LogClosedError`; open a new ``Log`` on the
    same directory to recover.
    """

    def __init__(self, directory: str, *, storage: Storage, clock: Clock, config: LogConfig | None = None) -> None:
        self.directory = directory
        self.storage = storage
        self.clock = clock
        self.config = config or LogConfig()
        self.segments: list[Segment] = []
        self._bases: list[int] = []  # segment base offsets, for bisect
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.recovery_point = 0
        self.first_dirty_offset = 0  # compaction: offsets below this are already clean
        self._unflushed_records = 0
        self._oldest_unflushed_ms: int | None = None
        self._closed = False
        self._tombstone_horizon_ms: int | None = None  # earliest delete horizon in the clean section
        storage.makedirs(directory)
        self.recovery = self._open()

    # ── opening ──────────────────────────────────────────────────────────────
    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _open(self) -> RecoveryReport:
        storage = self.storage
        names = storage.listdir(self.directory)
        for name in names:  # an interrupted compaction swap: the replacement never landed
            if name.endswith((".cleaned", ".tmp")):
                storage.remove(self._path(name))
        names = storage.listdir(self.directory)
        checkpoint = _read_checkpoint(storage, self._path(CHECKPOINT_FILE))
        self.log_start_offset = checkpoint.get("log_start_offset", 0)
        self.recovery_point = checkpoint.get("recovery_point", 0)
        self.first_dirty_offset = checkpoint.get("first_dirty_offset", 0)
        clean = CLEAN_SHUTDOWN_FILE in names
        if clean:
            storage.remove(self._path(CLEAN_SHUTDOWN_FILE))
        bases = sorted(b for b in (parse_segment_file_name(n) for n in names) if b is not None)
        now = self.clock.now_ms()
        self.segments = [self._new_segment_object(b, now) for b in bases]
        segments_recovered = indexes_rebuilt = bytes_truncated = segments_deleted = 0
        reason: str | None = None
        for i, seg in enumerate(self.segments):
            next_base = self.segments[i + 1].base_offset if i + 1 < len(self.segments) else None
            needs_recovery = not clean and (next_base is None or next_base > self.recovery_point)
            if not needs_recovery:
                indexes_rebuilt += seg.load_clean()
                continue
            result: SegmentRecovery = seg.recover()
            segments_recovered += 1
            indexes_rebuilt += 1
            if result.bytes_truncated:
                bytes_truncated += result.bytes_truncated
                reason = f"segment {seg.base_offset}: {result.reason}"
                for later in self.segments[i + 1 :]:
                    bytes_truncated += later.size_bytes
                    later.delete()
                    segments_deleted += 1
                del self.segments[i + 1 :]
                break
        if not self.segments:
            self.segments = [self._create_segment(self.log_start_offset)]
        self._bases = [s.base_offset for s in self.segments]
        self.log_end_offset = max(self.segments[-1].next_offset, self.segments[-1].base_offset)
        if self.log_start_offset > self.log_end_offset:
            # Records below the checkpointed log start were lost with an unsynced tail:
            # start afresh at the log start offset, as Kafka does.
            for seg in self.segments:
                seg.delete()
            self.segments = [self._create_segment(self.log_start_offset)]
            self._bases = [self.log_start_offset]
            self.log_end_offset = self.log_start_offset
        self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
        self.first_dirty_offset = min(max(self.first_dirty_offset, self.log_start_offset), self.log_end_offset)
        # As Kafka does, recovery does not move the recovery point forward: what was
        # recovered is valid but not yet known to be durable; the next flush makes it so.
        self.recovery_point = min(self.recovery_point, self.log_end_offset) if not clean else self.log_end_offset
        self._write_checkpoint()
        return RecoveryReport(
            clean_shutdown=clean, segments_recovered=segments_recovered, indexes_rebuilt=indexes_rebuilt,
            bytes_truncated=bytes_truncated, segments_deleted=segments_deleted, reason=reason,
            log_end_offset=self.log_end_offset,
        )

    def _new_segment_object(self, base_offset: int, now_ms: int) -> Segment:
        return Segment(self.storage, self.directory, base_offset,
                       index_interval_bytes=self.config.index_interval_bytes, created_ms=now_ms)

    def _create_segment(self, base_offset: int) -> Segment:
        seg = self._new_segment_object(base_offset, self.clock.now_ms())
        seg.offset_index.file  # create the index files beside the log file
        seg.time_index.file
        return seg

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"log {self.directory} is closed")

    def _write_checkpoint(self) -> None:
        text = (f"version {CHECKPOINT_VERSION}\nlog_start_offset {self.log_start_offset}\n"
                f"recovery_point {self.recovery_point}\nfirst_dirty_offset {self.first_dirty_offset}\n")
        self.storage.write_file_atomic(self._path(CHECKPOINT_FILE), text.encode("ascii"))

    # ── facts ────────────────────────────────────────────────────────────────
    @property
    def active_segment(self) -> Segment:
        return self.segments[-1]

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.segments)

    def _segment_index_for(self, offset: int) -> int:
        return max(0, bisect.bisect_right(self._bases, offset) - 1)

    # ── appending ────────────────────────────────────────────────────────────
    def append(
        self,
        data: bytes | bytearray,
        *,
        leader_epoch: int | None = None,
        assign_offsets: bool = True,
        verify_records: bool = False,
        checked: RecordBatch | None = None,
    ) -> AppendInfo:
        """Append one or more whole batches; all or nothing.

        With ``assign_offsets`` (a leader), batch base offsets are rewritten to
        continue from the log end. Without it (a follower copying its leader's
        batches), the batches keep their offsets, which must start at or after
        the log end. ``leader_epoch`` is stamped into every batch when given.
        ``checked`` is the header of ``data`` when the caller has already parsed
        and CRC-checked it as the one batch ``data`` holds (its CRC is not checked twice).

        Raises CorruptRecordError (bad bytes), RecordBatchTooLargeError,
        InvalidRecordError (e.g. a record without a key on a compacted log) or
        LogClosedError; nothing is written in any of those cases.
        """
        self._check_open()
        stamp = assign_offsets or leader_epoch is not None
        buf = bytearray(data) if stamp else data  # a private copy: offsets and epochs are stamped into it
        batches: list[RecordBatch] = []
        position = 0
        next_offset = self.log_end_offset
        record_count = 0
        max_ts, offset_of_max_ts = NO_TIMESTAMP, next_offset
        if checked is not None and (checked.position != 0 or checked.size_bytes != len(buf)):
            checked = None  # not the header of exactly this data: check everything
        while position < len(buf):
            batch = checked or read_batch_header(buf, position)
            if batch.size_bytes > self.config.max_batch_bytes:
                raise RecordBatchTooLargeError(
                    f"batch of {batch.size_bytes} bytes exceeds max_batch_bytes={self.config.max_batch_bytes}")
            if checked is None:
                batch.validate()
            if verify_records or self.config.compact:
                records = batch.records()
                if self.config.compact and not batch.is_control and any(r.key is None for r in records):
                    raise InvalidRecordError("compacted topics require every record to have a key")
            if assign_offsets:
                set_base_offset(buf, position, next_offset)
                base = next_offset
            else:
                if batch.base_offset < next_offset:
                    raise InvalidRecordError(
                        f"batch base offset {batch.base_offset} is below the log end offset {next_offset}")
                base = batch.base_offset
            if leader_epoch is not None:
                set_partition_leader_epoch(buf, position, leader_epoch)
            last = base + batch.last_offset_delta
            if batch.max_timestamp_ms > max_ts:
                max_ts, offset_of_max_ts = batch.max_timestamp_ms, last
            record_count += batch.record_count
            next_offset = last + 1
            position += batch.size_bytes
            batches.append(batch)
        if not batches:
            raise CorruptRecordError(0, "nothing to append: no batches in the data")
        first_offset = self.log_end_offset if assign_offsets else batches[0].base_offset
        last_offset = next_offset - 1
        rolled = self._maybe_roll(len(buf), max_ts, last_offset, first_offset)
        seg = self.active_segment
        seg.append(buf, last_offset, max_ts, offset_of_max_ts)
        self.log_end_offset = next_offset
        self._unflushed_records += record_count
        if self._oldest_unflushed_ms is None:
            self._oldest_unflushed_ms = self.clock.now_ms()
        self.maybe_flush()
        return AppendInfo(first_offset, last_offset, record_count, len(batches), max_ts, len(buf),
                          seg.base_offset, rolled, tuple(batches))

    def _maybe_roll(self, size_bytes: int, max_timestamp_ms: int, last_offset: int, first_offset: int) -> bool:
        """Roll before an append if the active segment is full, old, or its index is full."""
        seg = self.active_segment
        seg_size = seg.size_bytes
        if seg_size == 0:
            if first_offset > seg.base_offset:  # a follower's batch leaves a gap: start a segment at it
                self._replace_empty_active(first_offset)
            return False
        cfg = self.config
        too_big = seg_size > cfg.segment_bytes - size_bytes
        too_old = (seg.first_batch_max_timestamp_ms is not None
                   and max_timestamp_ms - seg.first_batch_max_timestamp_ms > cfg.segment_ms)
        index_full = seg.index_entries() >= cfg.segment_index_bytes // 8
        offset_overflow = last_offset - seg.base_offset > (1 << 31) - 1
        if too_big or too_old or index_full or offset_overflow:
            self.roll(first_offset)
            return True
        return False

    def _replace_empty_active(self, base_offset: int) -> None:
        self.active_segment.delete()
        self.segments[-1] = self._create_segment(base_offset)
        self._bases[-1] = base_offset

    def roll(self, base_offset: int | None = None) -> Segment:
        """Start a new active segment at the log end (no-op if the active one is empty)."""
        self._check_open()
        base = self.log_end_offset if base_offset is None else base_offset
        if self.active_segment.size_bytes == 0:
            if base != self.active_segment.base_offset:
                self._replace_empty_active(base)
            return self.active_segment
        self.active_segment.on_become_inactive()
        seg = self._create_segment(base)
        self.segments.append(seg)
        self._bases.append(base)
        return seg

    # ── flushing ─────────────────────────────────────────────────────────────
    def maybe_flush(self) -> bool:
        """Flush if ``flush_messages`` records or ``flush_ms`` of age are unflushed."""
        if not self._unflushed_records:
            return False
        cfg = self.config
        now = self.clock.now_ms()
        due_by_count = self._unflushed_records >= cfg.flush_messages
        due_by_age = self._oldest_unflushed_ms is not None and now - self._oldest_unflushed_ms >= cfg.flush_ms
        if due_by_count or due_by_age:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """fsync every segment holding unflushed data; the recovery point becomes the log end."""
        self._check_open()
        first = self._segment_index_for(self.recovery_point)
        for seg in self.segments[first:]:
            seg.flush()
        self.recovery_point = self.log_end_offset
        self._unflushed_records = 0
        self._oldest_unflushed_ms = None
        self._write_checkpoint()

    # ── reading ──────────────────────────────────────────────────────────────
    def read(self, offset: int, max_bytes: int = DEFAULT_FETCH_MAX_BYTES, max_offset: int | None = None) -> list[RecordBatch]:
        """Whole batches from the one holding ``offset`` on, at most ``max_bytes`` (but ≥ 1 batch).

        ``max_offset`` (exclusive; default the log end) caps what is visible, e.g.
        at the high watermark: only batches ending below it are returned.
        Batches may start before ``offset``; readers skip those records, as Kafka
        clients do. Raises OffsetOutOfRangeError outside [log start, log end].
        """
        self._check_open()
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise OffsetOutOfRangeError(offset, self.log_start_offset, self.log_end_offset)
        upper = self.log_end_offset if max_offset is None else min(max_offset, self.log_end_offset)
        i = self._segment_index_for(offset)
        while i < len(self.segments) and offset < upper:
            batches = self.segments[i].read(offset, max_bytes, upper)
            if batches:
                return batches
            i += 1  # nothing at/after offset here (e.g. compacted away): try the next segment
        return []

    def read_records(self, offset: int, max_offset: int | None = None, max_bytes: int = DEFAULT_FETCH_MAX_BYTES) -> list[Record]:
        """Decoded records with ``offset ≤ record.offset < max_offset``, from one read.

        Like a consumer, it moves past batches that hold no record at or after
        ``offset`` (compaction can leave a batch whose last records are gone, and
        control batches hold none) and reads on, so an empty answer means the
        range holds no data records.
        """
        upper = self.log_end_offset if max_offset is None else max_offset
        out: list[Record] = []
        position = offset
        while not out and position < upper:
            batches = self.read(position, max_bytes, max_offset)
            if not batches:
                break
            for batch in batches:
                if batch.is_control:
                    continue
                for rec in batch.records():
                    if offset <= rec.offset < upper:
                        out.append(rec)
            position = batches[-1].next_offset
        return out

    def all_records(self) -> list[Record]:
        """Every readable data record from the log start to the end (CRC-checked)."""
        self._check_open()
        out: list[Record] = []
        for seg in self.segments:
            for batch in seg.batches():
                if batch.last_offset < self.log_start_offset or batch.is_control:
                    continue
                batch.validate()
                out.extend(r for r in batch.records() if r.offset >= self.log_start_offset)
        return out

    def all_batches(self) -> list[RecordBatch]:
        """Every batch holding readable offsets, in order (headers only)."""
        self._check_open()
        return [b for seg in self.segments for b in seg.batches() if b.last_offset >= self.log_start_offset]

    # ── aborted transactions (the per-segment .txnindex files) ───────────────
    def _segment_holding(self, offset: int):  # type: ignore[no-untyped-def]
        i = max(0, bisect.bisect_right(self._bases, offset) - 1)
        return self.segments[i]

    def append_aborted_txn(self, entry: AbortedTxn) -> None:
        """Record an aborted transaction in the index of the segment holding its ABORT marker."""
        self._check_open()
        self._segment_holding(entry.last_offset).txn_index.append(entry)

    def aborted_txns(self, start_offset: int, upper_offset: int) -> list[AbortedTxn]:
        """Aborted transactions that overlap ``[start_offset, upper_offset)``, in marker order."""
        self._check_open()
        out = []
        for seg in self.segments:
            for e in seg.txn_index.entries:
                if e.last_offset >= start_offset and e.first_offset < upper_offset:
                    out.append(e)
        return sorted(out, key=lambda e: e.last_offset)

    def txn_index_entries(self) -> list[AbortedTxn]:
        return self.aborted_txns(0, 1 << 62)

    def replace_txn_indexes(self, entries: list[AbortedTxn]) -> bool:
        """Make the .txnindex files hold exactly ``entries``; True if anything changed."""
        self._check_open()
        by_segment: dict[int, list[AbortedTxn]] = {seg.base_offset: [] for seg in self.segments}
        for e in sorted(entries, key=lambda e: e.last_offset):
            by_segment[self._segment_holding(e.last_offset).base_offset].append(e)
        changed = False
        for seg in self.segments:
            if seg.txn_index.entries != by_segment[seg.base_offset]:
                seg.txn_index.replace(by_segment[seg.base_offset])
                changed = True
        return changed

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record with timestamp ≥ ``timestamp_ms``; None if none.

        This is ListOffsets by timestamp: the offset a consumer seeks to when it
        resets "to 10:00 this morning".
        """
        self._check_open()
        for seg in self.segments:
            if seg.max_timestamp_ms < timestamp_ms or seg.next_offset <= self.log_start_offset:
                continue
            found = seg.find_offset_for_timestamp(timestamp_ms, self.log_start_offset)
            if found is not None:
                return found
        return None

    # ── trimming ─────────────────────────────────────────────────────────────
    def truncate_to(self, offset: int) -> int:
        """Remove every record at ``offset`` or later; return the bytes removed.

        A follower calls this to drop a tail its new leader does not have. Whole
        batches go: if ``offset`` falls inside a batch, that batch goes too and
        the log end becomes its base offset (but never less than the log
        start). Truncating below the log start empties the log and restarts it
        at ``offset``.
        """
        self._check_open()
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if offset >= self.log_end_offset:
            return 0
        removed = 0
        if offset < self.log_start_offset:
            return self.truncate_fully_and_start_at(offset)
        else:
            while len(self.segments) > 1 and self.segments[-1].base_offset >= offset:
                seg = self.segments.pop()
                self._bases.pop()
                removed += seg.size_bytes
                seg.delete()
            removed += self.active_segment.truncate_to(offset)
        # If the cut went below the log start (a batch straddling it), the log end
        # stays at the log start: offsets below it are never reused.
        self.log_end_offset = max(self.active_segment.next_offset, self.active_segment.base_offset,
                                  self.log_start_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self.first_dirty_offset = min(self.first_dirty_offset, self.log_end_offset)
        self._write_checkpoint()
        return removed

    def truncate_fully_and_start_at(self, offset: int) -> int:
        """Delete every segment and restart the log, empty, at ``offset``; return bytes removed.

        A follower does this when its whole log lies outside its leader's (e.g.
        the leader's retention moved past everything the follower has).
        """
        self._check_open()
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        removed = self.size_bytes
        for seg in self.segments:
            seg.delete()
        self.segments = [self._create_segment(offset)]
        self._bases = [offset]
        self.log_start_offset = self.log_end_offset = offset
        self.recovery_point = self.first_dirty_offset = offset
        self._write_checkpoint()
        return removed

    def delete_records_before(self, offset: int, max_offset: int | None = None) -> list[DeletedSegment]:
        """Advance the log start to ``offset`` (DeleteRecords); drop segments wholly below it.

        ``max_offset`` (default the log end) is the highest allowed value, e.g.
        the high watermark. Records below the new log start become unreadable
        at once; their bytes go when their whole segment does.
        """
        self._check_open()
        upper = self.log_end_offset if max_offset is None else min(max_offset, self.log_end_offset)
        if offset > upper:
            raise OffsetOutOfRangeError(offset, self.log_start_offset, upper)
        if offset <= self.log_start_offset:
            return []
        self.log_start_offset = offset
        self.first_dirty_offset = max(self.first_dirty_offset, offset)
        deleted = self._delete_prefix(lambda seg, nxt: nxt <= self.log_start_offset, "log start offset")
        self._write_checkpoint()
        return deleted

    def _delete_prefix(self, predicate, reason: str) -> list[DeletedSegment]:  # type: ignore[no-untyped-def]
        """Delete the oldest non-active segments while ``predicate(segment, next_base)`` holds."""
        deleted: list[DeletedSegment] = []
        while len(self.segments) > 1:
            seg, nxt = self.segments[0], self.segments[1].base_offset
            if not predicate(seg, nxt):
                break
            deleted.append(DeletedSegment(seg.base_offset, nxt, seg.size_bytes, reason))
            self.segments.pop(0)
            self._bases.pop(0)
            seg.delete()
            self.log_start_offset = max(self.log_start_offset, nxt)
        return deleted

    def apply_retention(self, now_ms: int | None = None, max_offset: int | None = None) -> list[DeletedSegment]:
        """Delete old segments by ``retention_ms`` then ``retention_bytes`` (cleanup.policy=delete).

        Whole segments only, oldest first, never the active one, never one
        holding offsets at or above ``max_offset`` (the high watermark; default
        the log end). The log start offset moves to the first kept segment.
        """
        self._check_open()
        if not self.config.delete:
            return []
        now = self.clock.now_ms() if now_ms is None else now_ms
        upper = self.log_end_offset if max_offset is None else max_offset
        cfg = self.config
        deleted: list[DeletedSegment] = []
        if cfg.retention_ms >= 0:
            deleted += self._delete_prefix(
                lambda seg, nxt: nxt <= upper and now - seg.max_timestamp_ms > cfg.retention_ms, "retention.ms")
        if cfg.retention_bytes >= 0:
            excess = [self.size_bytes - cfg.retention_bytes]

            def over_size(seg: Segment, nxt: int) -> bool:
                if nxt > upper or excess[0] - seg.size_bytes < 0:
                    return False
                excess[0] -= seg.size_bytes
                return True

            deleted += self._delete_prefix(over_size, "retention.bytes")
        if deleted:
            self.first_dirty_offset = max(self.first_dirty_offset, self.log_start_offset)
            self._write_checkpoint()
        return deleted

    # ── compaction ───────────────────────────────────────────────────────────
    def dirty_ratio(self) -> float:
        """Bytes not yet cleaned / all bytes, over the segments before the active one."""
        inactive = self.segments[:-1]
        total = sum(s.size_bytes for s in inactive)
        if not total:
            return 0.0
        dirty = sum(s.size_bytes for s in inactive if s.base_offset >= self.first_dirty_offset
                    or self._next_base(s) > self.first_dirty_offset)
        return dirty / total

    def _next_base(self, seg: Segment) -> int:
        i = self.segments.index(seg)
        return self.segments[i + 1].base_offset if i + 1 < len(self.segments) else self.log_end_offset

    def _tombstone_horizon_due(self, now: int) -> bool:
        if self._tombstone_horizon_ms is None:  # unknown since open: look at the batch headers
            horizons = [b.delete_horizon_ms for s in self.segments[:-1] for b in s.batches()
                        if b.delete_horizon_ms is not None]
            self._tombstone_horizon_ms = min(horizons) if horizons else NEVER
        return self._tombstone_horizon_ms <= now

    def compact(self, now_ms: int | None = None, *, force: bool = False) -> CompactionResult:
        """Clean the log (cleanup.policy=compact): keep the last record per key.

        The aborted-transaction entries of the cleaned segments are carried over
        to the segments that replace them.

        Runs when the dirty ratio reaches ``min_cleanable_dirty_ratio``, when a
        tombstone's delete horizon has passed, or when ``force`` is set. The
        active segment is never touched; a record is removed only if a later
        record with the same key sits in the cleanable range. A tombstone (null
        value) is kept at first and stamped with a delete horizon of now +
        ``delete_retention_ms`` (KIP-534), so consumers have that long to see
        it; a later pass after the horizon removes it. Offsets never change.
        """
        self._check_open()
        now = self.clock.now_ms() if now_ms is None else now_ms
        ratio = self.dirty_ratio()
        if not self.config.compact:
            return CompactionResult(False, ratio, "cleanup.policy does not include compact")
        if len(self.segments) < 2:
            return CompactionResult(False, ratio, "only the active segment exists; it is never cleaned")
        due = force or ratio >= self.config.min_cleanable_dirty_ratio
        horizon_due = self._tombstone_horizon_due(now)
        if not due and not horizon_due:
            return CompactionResult(False, ratio, f"dirty ratio {ratio:.2f} is below min_cleanable_dirty_ratio "
                                                  f"{self.config.min_cleanable_dirty_ratio}")
        end_offset = self.active_segment.base_offset
        # 1. The offset map: each key's latest offset in the dirty range.
        latest: dict[bytes, int] = {}
        for seg in self.segments[:-1]:
            for batch in seg.batches():
                if batch.last_offset < self.first_dirty_offset or batch.is_control:
                    continue
                batch.validate()
                for rec in batch.records():
                    if rec.offset >= self.first_dirty_offset and rec.key is not None:
                        latest[rec.key] = rec.offset
        # 2. Rewrite every inactive segment without the superseded records.
        result = CompactionResult(True, ratio, "forced" if force else
                                  ("dirty ratio reached" if due else "a tombstone's delete horizon passed"))
        next_horizon = NEVER
        aborted = self.txn_index_entries()
        for i in range(len(self.segments) - 1):
            seg = self.segments[i]
            result.bytes_before += seg.size_bytes
            horizon = self._clean_segment(seg, latest, now, result)
            next_horizon = min(next_horizon, horizon)
            result.bytes_after += self.segments[i].size_bytes
            result.segments_cleaned += 1
        self._tombstone_horizon_ms = next_horizon
        self.first_dirty_offset = end_offset
        result.first_dirty_offset_after = end_offset
        self.replace_txn_indexes(aborted)
        self._write_checkpoint()
        return result

    def _clean_segment(self, seg: Segment, latest: dict[bytes, int], now: int, result: CompactionResult) -> int:
        """Rewrite ``seg`` in place (via ``.cleaned`` and a rename); return its earliest tombstone horizon."""
        out = bytearray()
        changed = False
        earliest_horizon = NEVER
        new_horizon = now + self.config.delete_retention_ms
        for batch in seg.batches():
            batch.validate()
            if batch.is_control:
                out += batch.to_bytes()
                continue
            records = batch.records()
            result.records_before += len(records)
            kept: list[Record] = []
            has_tombstone = False
            for rec in records:
                superseded = rec.key is None or latest.get(rec.key, -1) > rec.offset
                expired = (rec.value is None and batch.delete_horizon_ms is not None
                           and batch.delete_horizon_ms <= now)
                if superseded or expired or rec.offset < self.log_start_offset:
                    result.records_removed += 1
                    result.tombstones_removed += rec.value is None
                    result.removed_offsets.append(rec.offset)
                    continue
                kept.append(rec)
                has_tombstone |= rec.value is None
            horizon = batch.delete_horizon_ms
            if has_tombstone and horizon is None:
                horizon = new_horizon
            if has_tombstone:
                earliest_horizon = min(earliest_horizon, horizon)  # type: ignore[arg-type]
            if len(kept) == len(records) and horizon == batch.delete_horizon_ms:
                out += batch.to_bytes()
                continue
            changed = True
            if not kept:
                continue
            out += encode_batch(
                kept, base_offset=batch.base_offset, last_offset_delta=batch.last_offset_delta,
                partition_leader_epoch=batch.partition_leader_epoch, compression=batch.compression,
                timestamp_type=batch.timestamp_type, is_transactional=batch.is_transactional,
                producer_id=batch.producer_id, producer_epoch=batch.producer_epoch,
                base_sequence=batch.base_sequence, max_timestamp_ms=batch.max_timestamp_ms,
                delete_horizon_ms=horizon if has_tombstone else None,
            )
        if changed:
            self._swap_in(seg, bytes(out))
        return earliest_horizon

    def _swap_in(self, seg: Segment, data: bytes) -> None:
        """Replace a segment's contents crash-safely.

        Order: write and sync ``.cleaned``; remove the old indexes (a crash now
        leaves the old log, whose indexes are rebuilt on open); rename
        ``.cleaned`` over the log (atomic); rebuild the indexes.
        """
        cleaned_path = seg.log_path + ".cleaned"
        cleaned = self.storage.open(cleaned_path)
        cleaned.append(data)
        cleaned.sync()
        cleaned.close()
        index_path, time_path = seg.offset_index.path, seg.time_index.path
        seg.close()
        for path in (index_path, time_path):
            if self.storage.exists(path):
                self.storage.remove(path)
        self.storage.rename(cleaned_path, seg.log_path)
        i = self.segments.index(seg)
        fresh = self._new_segment_object(seg.base_offset, seg.created_ms)
        fresh.rebuild_indexes()
        fresh.flush()
        self.segments[i] = fresh

    # ── closing ──────────────────────────────────────────────────────────────
    def close(self) -> None:
        """Flush, finish the active segment's time index, and mark a clean shutdown."""
        if self._closed:
            return
        self.active_segment.on_become_inactive()
        self.flush()
        for seg in self.segments:
            seg.close()
        self.storage.write_file_atomic(self._path(CLEAN_SHUTDOWN_FILE), b"")
        self._closed = True

    def abandon(self) -> None:
        """Drop the log without a clean shutdown (what a killed process does).

        File handles are released; nothing is flushed and no marker is written, so
        the next open runs crash recovery. Buffered index entries are lost, as a
        killed process's would be.
        """
        if not self._closed:
            for seg in self.segments:
                seg.abandon()
        self._closed = True

    def describe(self) -> dict[str, object]:
        """A plain summary for tools and the UI."""
        return {
            "directory": self.directory,
            "log_start_offset": self.log_start_offset,
            "log_end_offset": self.log_end_offset,
            "recovery_point": self.recovery_point,
            "first_dirty_offset": self.first_dirty_offset,
            "size_bytes": self.size_bytes,
            "segments": [
                {"base_offset": s.base_offset, "size_bytes": s.size_bytes, "max_timestamp_ms": s.max_timestamp_ms}
                for s in self.segments
            ],
        }


def open_log(directory: str, storage: Storage, clock: Clock, **config: object) -> Log:
    """Convenience: ``Log(directory, storage=..., clock=..., config=LogConfig(**config))``."""
    return Log(directory, storage=storage, clock=clock, config=LogConfig(**config))  # type: ignore[arg-type]


__all__: Sequence[str] = (
    "AppendInfo", "CompactionResult", "DeletedSegment", "Log", "LogConfig", "RecoveryReport", "open_log",
)
