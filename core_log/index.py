"""Sparse indexes beside each segment: ``.index`` (offset → byte) and ``.timeindex``.

Both are derived data: the log file is the truth, and an index that is missing,
damaged or behind the log is rebuilt by scanning the log (as SQLite rebuilds
its wal-index and Kafka its indexes). Entries are appended only every
``index_interval_bytes`` of log data, so a lookup lands *before* the target and
the segment scans forward from there.

Offset index entry (8 bytes, big-endian), ``{base_offset:020d}.index``::

    ┌──────────────────────────┬──────────────────────┐
    │ relative offset  uint32  │ file position uint32 │
    └──────────────────────────┴──────────────────────┘

The relative offset is the last offset of the batch that starts at that
position, minus the segment's base offset (as Kafka does).

Time index entry (12 bytes, big-endian), ``{base_offset:020d}.timeindex``::

    ┌──────────────────────────┬──────────────────────────┐
    │ timestamp (ms)   int64   │ relative offset  uint32  │
    └──────────────────────────┴──────────────────────────┘

An entry says "the largest timestamp up to here is T, reached in the batch whose
last offset is base + relative". Timestamps in the time index only increase.

Differences from Kafka: the files are append-only, not preallocated and
memory-mapped; each index is held in memory as two Python lists once loaded.
"""

from __future__ import annotations

import bisect
import struct

from core_log.errors import CoreLogError
from core_log.storage import Storage, StorageFile

OFFSET_ENTRY = struct.Struct(">II")
TIME_ENTRY = struct.Struct(">qI")


class CorruptIndexError(CoreLogError):
    """An index file is damaged; the segment rebuilds it from the log."""


class _SparseIndex:
    """Shared machinery: a file of fixed-size entries, mirrored in two lists."""

    entry: struct.Struct

    def __init__(self, storage: Storage, path: str, base_offset: int) -> None:
        self.storage = storage
        self.path = path
        self.base_offset = base_offset
        self._file: StorageFile | None = None
        self._keys: list[int] | None = None  # sorted search keys
        self._values: list[int] = []
        # Appended entries not yet written to the file. Kafka's indexes are
        # memory-mapped and reach the disk when the OS pleases; buffering until
        # sync/close is the same contract (an index may lag its log and is then
        # rebuilt or extended from the log) without a syscall per entry.
        self._pending = bytearray()

    @property
    def file(self) -> StorageFile:
        if self._file is None:
            self._file = self.storage.open(self.path)
        return self._file

    def _load(self) -> None:
        if self._keys is not None:
            return
        data = self.file.read(0, self.file.size())
        if len(data) % self.entry.size:
            raise CorruptIndexError(f"{self.path}: size {len(data)} is not a multiple of {self.entry.size}")
        self._keys, self._values = self._parse(data)

    def _parse(self, data: bytes) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def entries_count(self) -> int:
        self._load()
        assert self._keys is not None
        return len(self._keys)

    def reset(self) -> None:
        """Drop every entry (before a rebuild)."""
        self.file.truncate(0)
        self._keys, self._values = [], []
        self._pending.clear()

    def _append_entry(self, entry: bytes) -> None:
        self._pending += entry

    def _write_pending(self) -> None:
        if self._pending:
            self.file.append(self._pending)
            self._pending = bytearray()

    def _truncate_entries(self, keep: int) -> None:
        assert self._keys is not None
        del self._keys[keep:], self._values[keep:]
        self._write_pending()
        self.file.truncate(keep * self.entry.size)

    def sync(self) -> None:
        self._write_pending()
        if self._file is not None:
            self._file.sync()

    def close(self) -> None:
        if self._file is not None:
            self._write_pending()
            self._file.close()
            self._file = None
        self._keys = None
        self._values = []
        self._pending = bytearray()


class OffsetIndex(_SparseIndex):
    """Maps a batch's last offset to the byte position where that batch starts."""

    entry = OFFSET_ENTRY

    def _parse(self, data: bytes) -> tuple[list[int], list[int]]:
        offsets, positions = [], []
        last_rel = last_pos = -1
        for rel, pos in OFFSET_ENTRY.iter_unpack(data):
            if rel <= last_rel or pos <= last_pos:
                raise CorruptIndexError(f"{self.path}: entries are not increasing")
            offsets.append(self.base_offset + rel)
            positions.append(pos)
            last_rel, last_pos = rel, pos
        return offsets, positions

    def sanity_check(self, log_size_bytes: int) -> None:
        """Raise CorruptIndexError if the index cannot belong to a log of this size."""
        self._load()
        if self._values and self._values[-1] >= log_size_bytes:
            raise CorruptIndexError(f"{self.path}: last entry points past the log's end")

    def append(self, last_offset: int, position: int) -> None:
        self._load()
        assert self._keys is not None
        if self._keys and (last_offset <= self._keys[-1] or position <= self._values[-1]):
            raise CorruptIndexError(f"{self.path}: entry ({last_offset}, {position}) does not increase")
        self._append_entry(OFFSET_ENTRY.pack(last_offset - self.base_offset, position))
        self._keys.append(last_offset)
        self._values.append(position)

    def lookup(self, offset: int) -> int:
        """Byte position of the last indexed batch that ends before ``offset`` (0 if none).

        Every batch before that position ends before ``offset``, so a forward
        scan from it finds the batch holding ``offset``.
        """
        self._load()
        assert self._keys is not None
        i = bisect.bisect_left(self._keys, offset) - 1
        return self._values[i] if i >= 0 else 0

    def last_position(self) -> int:
        """Position of the last indexed batch (0 if the index is empty)."""
        self._load()
        return self._values[-1] if self._values else 0

    def truncate_to_position(self, position: int) -> None:
        """Remove entries for batches at or after byte ``position``."""
        self._load()
        assert self._keys is not None
        keep = bisect.bisect_left(self._values, position)
        if keep < len(self._keys):
            self._truncate_entries(keep)


class TimeIndex(_SparseIndex):
    """Maps "largest timestamp so far" to the last offset of the batch that reached it."""

    entry = TIME_ENTRY

    def _parse(self, data: bytes) -> tuple[list[int], list[int]]:
        timestamps, offsets = [], []
        last_ts = last_rel = -(1 << 63)
        for ts, rel in TIME_ENTRY.iter_unpack(data):
            if ts <= last_ts or rel < last_rel:
                raise CorruptIndexError(f"{self.path}: entries are not increasing")
            timestamps.append(ts)
            offsets.append(self.base_offset + rel)
            last_ts, last_rel = ts, rel
        return timestamps, offsets

    def sanity_check(self, next_offset: int) -> None:
        self._load()
        if self._values and self._values[-1] >= next_offset:
            raise CorruptIndexError(f"{self.path}: last entry names an offset past the log's end")

    def maybe_append(self, timestamp_ms: int, last_offset: int) -> None:
        """Append unless ``timestamp_ms`` does not exceed the last entry's."""
        self._load()
        assert self._keys is not None
        if self._keys and timestamp_ms <= self._keys[-1]:
            return
        if self._values and last_offset < self._values[-1]:
            raise CorruptIndexError(f"{self.path}: offset {last_offset} goes backwards")
        self._append_entry(TIME_ENTRY.pack(timestamp_ms, last_offset - self.base_offset))
        self._keys.append(timestamp_ms)
        self._values.append(last_offset)

    def last_entry(self) -> tuple[int, int] | None:
        """``(max timestamp, its offset)`` of the last entry, if any."""
        self._load()
        assert self._keys is not None
        if not self._keys:
            return None
        return self._keys[-1], self._values[-1]

    def lookup(self, timestamp_ms: int) -> int | None:
        """Last offset of the latest batch whose running max timestamp is below ``timestamp_ms``.

        Every record at or before that offset is older than ``timestamp_ms``, so
        the first record at or after ``timestamp_ms`` lies after it. None if no
        entry qualifies (scan from the segment's start).
        """
        self._load()
        assert self._keys is not None
        i = bisect.bisect_left(self._keys, timestamp_ms) - 1
        return self._values[i] if i >= 0 else None

    def truncate_to_offset(self, offset: int) -> None:
        """Remove entries naming offsets at or after ``offset``."""
        self._load()
        assert self._keys is not None
        keep = bisect.bisect_left(self._values, offset)
        if keep < len(self._keys):
            self._truncate_entries(keep)


TXN_ENTRY = struct.Struct(">hqqqq")  # version, producer id, first offset, last offset, last stable offset


class AbortedTxn(tuple):
    """One aborted transaction: its producer and the offsets from its first record to its ABORT marker."""

    __slots__ = ()

    def __new__(cls, producer_id: int, first_offset: int, last_offset: int, last_stable_offset: int) -> "AbortedTxn":
        return tuple.__new__(cls, (producer_id, first_offset, last_offset, last_stable_offset))

    producer_id = property(lambda self: self[0])
    first_offset = property(lambda self: self[1])
    last_offset = property(lambda self: self[2])
    last_stable_offset = property(lambda self: self[3])


class TransactionIndex:
    """``{base_offset:020d}.txnindex``: the aborted transactions whose ABORT marker is in this segment.

    Entry (34 bytes, big-endian, Kafka's layout)::

        ┌─────────────┬──────────────────┬───────────────────┬──────────────────┬─────────────────────────┐
        │ version i16 │ producer id i64  │ first offset i64  │ last offset i64  │ last stable offset i64  │
        └─────────────┴──────────────────┴───────────────────┴──────────────────┴─────────────────────────┘

    A read_committed fetch gets the entries overlapping the range it reads and
    drops those producers' records between first and last offset. Aborts are
    rare, so the file is small: it is rewritten whole (atomically) on change.
    Like the other indexes it is derived data — a replica reconciles it with the
    markers in its log when it opens (see ``Replica``).
    """

    def __init__(self, storage: Storage, path: str) -> None:
        self.storage = storage
        self.path = path
        self._entries: list[AbortedTxn] | None = None

    @property
    def entries(self) -> list[AbortedTxn]:
        if self._entries is None:
            self._entries = []
            if self.storage.exists(self.path):
                data = self.storage.read_file(self.path)
                usable = len(data) - len(data) % TXN_ENTRY.size
                for i in range(0, usable, TXN_ENTRY.size):
                    version, pid, first, last, lso = TXN_ENTRY.unpack_from(data, i)
                    if version == 0 and first <= last:
                        self._entries.append(AbortedTxn(pid, first, last, lso))
        return self._entries

    def _save(self) -> None:
        if not self.entries and not self.storage.exists(self.path):
            return
        self.storage.write_file_atomic(self.path, b"".join(TXN_ENTRY.pack(0, *e) for e in self.entries))

    def append(self, entry: AbortedTxn) -> None:
        self.entries.append(entry)
        self._save()

    def replace(self, entries: list[AbortedTxn]) -> None:
        if entries != self.entries:
            self._entries = list(entries)
            self._save()

    def truncate_to(self, offset: int) -> None:
        """Forget aborts whose marker is at or after ``offset`` (the log was cut there)."""
        kept = [e for e in self.entries if e.last_offset < offset]
        if len(kept) != len(self.entries):
            self._entries = kept
            self._save()

    def delete(self) -> None:
        if self.storage.exists(self.path):
            self.storage.remove(self.path)
