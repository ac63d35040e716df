"""One segment of a partition's log: ``{base_offset:020d}.log`` plus its two indexes.

A segment is a file of whole record batches (see :mod:`core_log.records`)
in offset order, with no framing of its own: Kafka's on-disk format is the
wire format. The segment knows how to scan its batches, find where an offset or
a timestamp lies, recover itself after a crash, and truncate. When to roll,
retain or compact segments is the :class:`~core_log.log.Log`'s business.

Recovery (:meth:`Segment.recover`) walks every batch from byte 0 and checks:

1. the header is complete and its ``batchLength`` fits in the file;
2. the magic byte is 2 and the counts are consistent;
3. the CRC-32C matches;
4. the base offset is not below the segment's base and each batch starts after
   the previous one ended (offsets strictly increase).

The first batch that fails any check, and everything after it, is cut off: a
torn write at the tail of an append-only file looks exactly like this. Both
indexes are rebuilt during the walk.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass
from typing import Iterator

from core_log.errors import CoreLogError, CorruptRecordError
from core_log.index import CorruptIndexError, OffsetIndex, TimeIndex, TransactionIndex
from core_log.records import (
    BATCH_HEADER_BYTES,
    LOG_OVERHEAD_BYTES,
    NO_TIMESTAMP,
    RecordBatch,
    read_batch_header,
)
from core_log.storage import Storage

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIMEINDEX_SUFFIX = ".timeindex"
TXNINDEX_SUFFIX = ".txnindex"
#: Bytes read from the file at a time when scanning batches.
READ_CHUNK_BYTES = 1 << 20
#: Recent appends whose positions a segment remembers in memory (see Segment._scan_start).
TAIL_ENTRIES_MAX = 4096

_LENGTH = struct.Struct(">i")


def segment_file_name(base_offset: int, suffix: str) -> str:
    """Kafka's naming: the base offset, zero-padded to 20 digits."""
    return f"{base_offset:020d}{suffix}"


def parse_segment_file_name(name: str) -> int | None:
    """The base offset of a ``{20 digits}.log`` name, or None for any other name."""
    stem, ext = os.path.splitext(name)
    if ext != LOG_SUFFIX or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


@dataclass(frozen=True)
class SegmentRecovery:
    """What :meth:`Segment.recover` found."""

    base_offset: int
    batches_valid: int
    bytes_valid: int
    bytes_truncated: int
    reason: str | None  # why the tail was cut, None if nothing was cut


class Segment:
    """A segment file and its indexes. Not thread-safe; owned by one Log."""

    def __init__(
        self,
        storage: Storage,
        directory: str,
        base_offset: int,
        *,
        index_interval_bytes: int,
        created_ms: int,
    ) -> None:
        self.storage = storage
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = created_ms
        self.log_path = os.path.join(directory, segment_file_name(base_offset, LOG_SUFFIX))
        self.log = storage.open(self.log_path)
        self.offset_index = OffsetIndex(storage, os.path.join(directory, segment_file_name(base_offset, INDEX_SUFFIX)), base_offset)
        self.time_index = TimeIndex(storage, os.path.join(directory, segment_file_name(base_offset, TIMEINDEX_SUFFIX)), base_offset)
        self.txn_index = TransactionIndex(storage, os.path.join(directory, segment_file_name(base_offset, TXNINDEX_SUFFIX)))
        self.next_offset = base_offset  # one past the last offset held
        self.max_timestamp_ms = NO_TIMESTAMP
        self.offset_of_max_timestamp = base_offset
        self.first_batch_max_timestamp_ms: int | None = None  # drives segment.ms rolls
        self._bytes_since_index_entry = 0
        # In memory only: where each recent append started. Readers mostly ask for the
        # newest offsets (followers and consumers at the tail); this finds them without
        # scanning forward from the last sparse index entry. Bounded; rebuilt never.
        self._tail_offsets: list[int] = []  # first offset of each recent append
        self._tail_positions: list[int] = []

    # ── facts ──
    @property
    def size_bytes(self) -> int:
        return self.log.size()

    def index_entries(self) -> int:
        return self.offset_index.entries_count()

    # ── writing ──
    def append(self, data: bytes | bytearray, last_offset: int, max_timestamp_ms: int, offset_of_max_timestamp: int) -> int:
        """Write whole batches ending at ``last_offset``; return their position.

        Indexes get an entry when more than ``index_interval_bytes`` were written
        since the previous one (Kafka's rule: the check comes before counting
        this append, so the first batch of a segment is never indexed).
        """
        position = self.log.append(data)
        if position == 0:
            self.first_batch_max_timestamp_ms = max_timestamp_ms
        if max_timestamp_ms > self.max_timestamp_ms:
            self.max_timestamp_ms = max_timestamp_ms
            self.offset_of_max_timestamp = offset_of_max_timestamp
        self._tail_offsets.append(self.next_offset)  # every earlier batch ends below it
        self._tail_positions.append(position)
        if len(self._tail_offsets) > TAIL_ENTRIES_MAX:
            del self._tail_offsets[: TAIL_ENTRIES_MAX // 2], self._tail_positions[: TAIL_ENTRIES_MAX // 2]
        if self._bytes_since_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp)
            self._bytes_since_index_entry = 0
        self._bytes_since_index_entry += len(data)
        self.next_offset = last_offset + 1
        return position

    def on_become_inactive(self) -> None:
        """Called when the log rolls past this segment: record its final max timestamp."""
        if self.max_timestamp_ms != NO_TIMESTAMP:
            self.time_index.maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp)

    def flush(self) -> None:
        """Make the log file, then its indexes, durable (log first: indexes derive from it)."""
        self.log.sync()
        self.offset_index.sync()
        self.time_index.sync()

    # ── scanning ──
    def batches(self, position: int = 0, end: int | None = None) -> Iterator[RecordBatch]:
        """Yield batch headers from byte ``position`` on, without checking CRCs.

        Raises CorruptRecordError (with a position in the file) at a malformed header.
        """
        end = self.size_bytes if end is None else end
        chunk = b""
        chunk_position = position
        while position < end:
            rel = position - chunk_position
            if rel + LOG_OVERHEAD_BYTES <= len(chunk):
                need = _LENGTH.unpack_from(chunk, rel + 8)[0] + LOG_OVERHEAD_BYTES
            else:
                need = BATCH_HEADER_BYTES
            if rel + max(need, BATCH_HEADER_BYTES) > len(chunk):
                size = min(max(READ_CHUNK_BYTES, need), end - position)
                chunk = self.log.read(position, size)
                chunk_position, rel = position, 0
            try:
                batch = read_batch_header(chunk, rel)
            except CorruptRecordError as exc:
                raise CorruptRecordError(chunk_position + exc.position, exc.reason) from None
            yield batch
            position += batch.size_bytes

    def batches_with_positions(self, position: int = 0) -> Iterator[tuple[int, RecordBatch]]:
        for batch in self.batches(position):
            yield position, batch
            position += batch.size_bytes

    def _scan_start(self, offset: int) -> int:
        """A byte position before which every batch ends below ``offset``."""
        tail = self._tail_offsets
        if tail and offset >= tail[0]:
            return self._tail_positions[bisect.bisect_right(tail, offset) - 1]
        return self.offset_index.lookup(offset)

    def read(self, start_offset: int, max_bytes: int, end_offset: int) -> list[RecordBatch]:
        """Whole batches holding offsets ≥ ``start_offset`` and ending below ``end_offset``.

        Stops before ``max_bytes`` would be exceeded, except that the first batch
        is always returned whole (so one large batch can never stall a reader).
        """
        out: list[RecordBatch] = []
        total = 0
        for batch in self.batches(self._scan_start(start_offset)):
            if batch.last_offset < start_offset:
                continue
            if batch.last_offset >= end_offset:
                break
            if out and total + batch.size_bytes > max_bytes:
                break
            out.append(batch)
            total += batch.size_bytes
            if total >= max_bytes:
                break
        return out

    def find_offset_for_timestamp(self, timestamp_ms: int, start_offset: int) -> tuple[int, int] | None:
        """``(offset, timestamp)`` of the first record at/after ``start_offset`` with timestamp ≥ ``timestamp_ms``."""
        before = self.time_index.lookup(timestamp_ms)
        from_offset = max(start_offset, before + 1 if before is not None else self.base_offset)
        for batch in self.batches(self.offset_index.lookup(from_offset)):
            if batch.last_offset < from_offset or batch.max_timestamp_ms < timestamp_ms:
                continue
            for rec in batch.records():
                if rec.offset >= from_offset and rec.timestamp_ms >= timestamp_ms:
                    return rec.offset, rec.timestamp_ms
        return None

    # ── opening and recovery ──
    def load_clean(self) -> bool:
        """Open trusting the data (clean shutdown, or below the recovery point).

        The indexes are sanity-checked; one that is missing or fails the check is
        rebuilt by a scan. The log end is found by scanning headers from the
        last indexed batch, so opening costs little however big the segment.
        Returns True if the indexes had to be rebuilt.
        """
        missing = not (self.storage.exists(self.offset_index.path) and self.storage.exists(self.time_index.path))
        try:
            if missing:
                raise CorruptIndexError(f"index files of segment {self.base_offset} are missing")
            self.offset_index.sanity_check(self.size_bytes)
            self._load_tail()
            self.time_index.sanity_check(self.next_offset)
        except (CorruptIndexError, CorruptRecordError):
            self.rebuild_indexes()
            return True
        return False

    def _load_tail(self) -> None:
        """Derive next offset, max timestamp and index spacing from the index and the tail."""
        self.max_timestamp_ms = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        last_entry = self.time_index.last_entry()
        if last_entry is not None:
            self.max_timestamp_ms, self.offset_of_max_timestamp = last_entry
        position = self.offset_index.last_position()
        self.next_offset = self.base_offset
        for batch in self.batches(position):
            self.next_offset = batch.next_offset
            if batch.max_timestamp_ms > self.max_timestamp_ms:
                self.max_timestamp_ms = batch.max_timestamp_ms
                self.offset_of_max_timestamp = batch.last_offset
        self._bytes_since_index_entry = self.size_bytes - position
        self.first_batch_max_timestamp_ms = None
        for batch in self.batches(0):
            self.first_batch_max_timestamp_ms = batch.max_timestamp_ms
            break

    def rebuild_indexes(self) -> None:
        """Rebuild both indexes from the log, assuming the log itself is sound."""
        self.recover(check_crc=False)

    def recover(self, *, check_crc: bool = True) -> SegmentRecovery:
        """Validate every batch, rebuild the indexes, cut off an invalid tail."""
        self._tail_offsets, self._tail_positions = [], []
        self.offset_index.reset()
        self.time_index.reset()
        self.next_offset = self.base_offset
        self.max_timestamp_ms = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.first_batch_max_timestamp_ms = None
        self._bytes_since_index_entry = 0
        size = self.size_bytes
        position = 0
        batches_valid = 0
        reason: str | None = None
        expected_min_offset = self.base_offset
        try:
            for batch in self.batches(0, size):
                if check_crc and not batch.crc_is_valid():
                    reason = f"batch at byte {position} fails its CRC-32C check"
                    break
                if batch.base_offset < expected_min_offset:
                    reason = (f"batch at byte {position} starts at offset {batch.base_offset}, "
                              f"not after the previous batch (expected ≥ {expected_min_offset})")
                    break
                if batches_valid == 0:
                    self.first_batch_max_timestamp_ms = batch.max_timestamp_ms
                if batch.max_timestamp_ms > self.max_timestamp_ms:
                    self.max_timestamp_ms = batch.max_timestamp_ms
                    self.offset_of_max_timestamp = batch.last_offset
                if self._bytes_since_index_entry > self.index_interval_bytes:
                    self.offset_index.append(batch.last_offset, position)
                    self.time_index.maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp)
                    self._bytes_since_index_entry = 0
                self._bytes_since_index_entry += batch.size_bytes
                expected_min_offset = batch.next_offset
                self.next_offset = batch.next_offset
                position += batch.size_bytes
                batches_valid += 1
        except CorruptRecordError as exc:
            reason = exc.reason if exc.position == position else f"{exc.reason} (at byte {exc.position})"
            reason = f"batch at byte {position}: {reason}"
        truncated = size - position
        if truncated:
            self.log.truncate(position)
        return SegmentRecovery(self.base_offset, batches_valid, position, truncated, reason)

    # ── truncation and deletion ──
    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset is ≥ ``offset``; return bytes removed.

        A batch that straddles ``offset`` goes whole (batches are atomic on disk).
        """
        cut = None
        for position, batch in self.batches_with_positions(self._scan_start(offset)):
            if batch.last_offset >= offset:
                cut = position
                break
        if cut is None:
            return 0
        keep = bisect.bisect_left(self._tail_positions, cut)
        del self._tail_offsets[keep:], self._tail_positions[keep:]
        removed = self.size_bytes - cut
        self.log.truncate(cut)
        self.offset_index.truncate_to_position(cut)
        self.time_index.truncate_to_offset(offset)
        self.txn_index.truncate_to(offset)
        self._load_tail()
        return removed

    def close(self) -> None:
        self.log.close()
        self.offset_index.close()
        self.time_index.close()

    def abandon(self) -> None:
        """Release the file handles without writing anything (a crash)."""
        for handle in (self.log, self.offset_index._file, self.time_index._file):
            if handle is not None:
                try:
                    handle.close()
                except CoreLogError:
                    pass

    def delete(self) -> None:
        """Close and remove the segment's files (log, indexes, aborted-transaction index)."""
        self.close()
        self.txn_index.delete()
        for path in (self.offset_index.path, self.time_index.path, self.log_path):
            if self.storage.exists(path):
                self.storage.remove(path)
