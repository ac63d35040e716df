"""Kafka record batch v2 (magic 2), byte for byte.

This is the format Kafka writes to its segment files and sends on the wire since
0.11, so a batch built here can be stored, replicated and served to real Kafka
clients untouched, and a batch a real client sends can be stored as received.

Batch layout (big-endian; the CRC covers everything from ``attributes`` to the end)::

    ┌────────────┬─────────────┬──────────────────────┬───────┬───────┐
    │ baseOffset │ batchLength │ partitionLeaderEpoch │ magic │ crc   │
    │ int64      │ int32       │ int32                │ int8  │ uint32│
    ├────────────┼─────────────┴─┬────────────────────┴───────┴───────┤
    │ attributes │ lastOffsetDelta│ baseTimestamp │ maxTimestamp       │
    │ int16      │ int32          │ int64         │ int64              │
    ├────────────┴─┬──────────────┴┬──────────────┴──┬─────────────────┤
    │ producerId   │ producerEpoch │ baseSequence    │ recordCount     │
    │ int64        │ int16         │ int32           │ int32           │
    ├──────────────┴───────────────┴─────────────────┴─────────────────┤
    │ records (gzip-compressed as one block when compression = gzip)   │
    └──────────────────────────────────────────────────────────────────┘

``batchLength`` counts the bytes after itself, so a batch occupies
``batchLength + 12`` bytes. ``baseOffset`` and ``partitionLeaderEpoch`` sit before
the CRC'd region on purpose: the leader stamps them on append without
recomputing the checksum.

Attributes: bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
bit 3 timestamp type (0 CreateTime, 1 LogAppendTime), bit 4 transactional,
bit 5 control, bit 6 ``baseTimestamp`` holds the delete horizon (KIP-534).

Record layout (lengths and deltas are zig-zag varints, as in protobuf)::

    length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
    | keyLength varint | key | valueLength varint | value
    | headerCount varint | (headerKeyLength varint, headerKey utf-8,
                            headerValueLength varint, headerValue)*

A length of -1 means null (a null value on a compacted topic is a tombstone).

Contract: every decoder here raises :class:`~core_log.errors.CorruptRecordError`
(with the byte position and a reason) for any malformed input, and nothing else.

Differences from Kafka:

* Only ``none`` and ``gzip`` compression are implemented; other codecs decode to
  an :class:`~core_log.errors.UnsupportedCompressionError`.
* Only magic 2 is read or written; the pre-0.11 message sets (magic 0 and 1) are
  rejected as corrupt.
"""

from __future__ import annotations

import enum
import gzip
import struct
import zlib
from typing import Iterator, NamedTuple, Sequence

import crc32c as _crc32c

from core_log.errors import CorruptRecordError, UnsupportedCompressionError

# ── layout constants ─────────────────────────────────────────────────────────

MAGIC = 2
BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
BATCH_HEADER_BYTES = BATCH_HEADER.size  # 61
LOG_OVERHEAD_BYTES = 12  # baseOffset + batchLength: the part not counted by batchLength
BASE_OFFSET_POS = 0
BATCH_LENGTH_POS = 8
PARTITION_LEADER_EPOCH_POS = 12
MAGIC_POS = 16
CRC_POS = 17
ATTRIBUTES_POS = 21
LAST_OFFSET_DELTA_POS = 23
BASE_TIMESTAMP_POS = 27
MAX_TIMESTAMP_POS = 35
PRODUCER_ID_POS = 43
RECORDS_COUNT_POS = 57
MIN_BATCH_LENGTH = BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES  # 49: a batch with no records

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

#: A decoder refuses to inflate one gzip batch beyond this (a zip bomb guard).
MAX_UNCOMPRESSED_BATCH_BYTES = 64 * 1024 * 1024

_HEADER_AFTER_OFFSET = struct.Struct(">iibIhiqqqhii")  # the header without baseOffset
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_CONTROL_KEY = struct.Struct(">hh")
_CONTROL_VALUE = struct.Struct(">hi")


class Compression(enum.IntEnum):
    """The codec in attribute bits 0-2."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class TimestampType(enum.IntEnum):
    """Attribute bit 3: who set the timestamps."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class ControlType(enum.IntEnum):
    """The type in a control record's key: the end of a transaction."""

    ABORT = 0
    COMMIT = 1


Header = tuple[str, "bytes | None"]


class Record(NamedTuple):
    """One record as a reader sees it: absolute offset and timestamp."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC-32C (Castagnoli), the checksum of record batch v2."""
    return _crc32c.crc32c(data)


# ── varints ──────────────────────────────────────────────────────────────────


def write_varint(out: bytearray, value: int) -> None:
    """Append ``value`` as a zig-zag varint (works for varint and varlong)."""
    v = (value << 1) ^ (value >> 63)
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def varint_size(value: int) -> int:
    """Bytes that :func:`write_varint` uses for ``value``."""
    v = (value << 1) ^ (value >> 63)
    size = 1
    while v >= 0x80:
        v >>= 7
        size += 1
    return size


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read one zig-zag varint at ``pos``; return ``(value, next_pos)``.

    Raises IndexError past the end of ``buf`` (the callers turn that into a
    :class:`CorruptRecordError` with their own position) and CorruptRecordError
    for a varint longer than 10 bytes.
    """
    b = buf[pos]
    pos += 1
    result = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift > 63:
            raise CorruptRecordError(pos, "varint longer than 10 bytes")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


# ── encoding ─────────────────────────────────────────────────────────────────


def _encode_record(out: bytearray, rec: Record, base_offset: int, base_timestamp_ms: int) -> None:
    body = bytearray(b"\x00")  # record attributes: unused, always 0
    ts_delta = rec.timestamp_ms - base_timestamp_ms
    offset_delta = rec.offset - base_offset
    if 0 <= ts_delta < 64 and 0 <= offset_delta < 64:  # the common case: one byte each
        body.append(ts_delta << 1)
        body.append(offset_delta << 1)
    else:
        write_varint(body, ts_delta)
        write_varint(body, offset_delta)
    if rec.key is None:
        body.append(1)  # zig-zag(-1)
    else:
        write_varint(body, len(rec.key))
        body += rec.key
    if rec.value is None:
        body.append(1)
    else:
        write_varint(body, len(rec.value))
        body += rec.value
    if not rec.headers:
        body.append(0)
        write_varint(out, len(body))
        out += body
        return
    write_varint(body, len(rec.headers))
    for hkey, hvalue in rec.headers:
        hkey_bytes = hkey.encode("utf-8")
        write_varint(body, len(hkey_bytes))
        body += hkey_bytes
        if hvalue is None:
            body.append(1)
        else:
            write_varint(body, len(hvalue))
            body += hvalue
    write_varint(out, len(body))
    out += body


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    write_varint(out, value)
    return bytes(out)


#: zig-zag varints of -1 … ``_VARINT_CACHE_MAX - 1``, precomputed: record encoding is hot.
_VARINT_CACHE_MAX = 1 << 15
_VARINT_CACHE = tuple(_varint_bytes(v) for v in range(-1, _VARINT_CACHE_MAX))


def varint_bytes(value: int) -> bytes:
    """``value`` as a zig-zag varint (what :func:`write_varint` appends)."""
    if -1 <= value < _VARINT_CACHE_MAX:
        return _VARINT_CACHE[value + 1]
    return _varint_bytes(value)


def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None,
                  headers: tuple[Header, ...] = ()) -> bytes:
    """One record's bytes inside a batch (its length varint first), as :func:`encode_batch` writes them.

    :func:`encode_records` uses it for records its fast loop does not cover;
    :func:`encode_batch_of_records` puts the batch header in front.
    """
    vi = _VARINT_CACHE
    last = _VARINT_CACHE_MAX - 1
    ts = vi[timestamp_delta + 1] if -1 <= timestamp_delta <= last else _varint_bytes(timestamp_delta)
    od = vi[offset_delta + 1] if offset_delta <= last else _varint_bytes(offset_delta)
    if key is None:
        klen, key, size = b"\x01", b"", 0
    else:
        size = len(key)
        klen = vi[size + 1] if size <= last else _varint_bytes(size)
    if value is None:
        vlen, value = b"\x01", b""
    else:
        n = len(value)
        size += n
        vlen = vi[n + 1] if n <= last else _varint_bytes(n)
    if headers:
        parts = [varint_bytes(len(headers))]
        for hkey, hvalue in headers:
            hkey_bytes = hkey.encode("utf-8")
            parts.append(varint_bytes(len(hkey_bytes)))
            parts.append(hkey_bytes)
            if hvalue is None:
                parts.append(b"\x01")
            else:
                parts.append(varint_bytes(len(hvalue)))
                parts.append(hvalue)
        tail = b"".join(parts)
    else:
        tail = b"\x00"
    # attributes byte + deltas + key and value with their lengths + headers
    size += 1 + len(ts) + len(od) + len(klen) + len(vlen) + len(tail)
    return b"".join((vi[size + 1] if size <= last else _varint_bytes(size), b"\x00", ts, od, klen, key, vlen,
                     value, tail))


def encode_records(items: Sequence[tuple[bytes | None, bytes | None, tuple[Header, ...], int]]) -> bytes:
    """The records part of a batch: ``(key, value, headers, timestamp_delta)`` at offset deltas 0, 1, ….

    Byte for byte what :func:`encode_batch` writes for the same records; one loop
    for the whole batch, as the producer encodes a batch when it first sends it.
    """
    vi = _VARINT_CACHE
    last = _VARINT_CACHE_MAX - 1
    parts: list[bytes] = []
    add = parts.append
    for offset_delta, (key, value, headers, ts_delta) in enumerate(items):
        if headers or key is None or value is None or not -1 <= ts_delta <= last or offset_delta > last:
            add(encode_record(offset_delta, ts_delta, key, value, headers))
            continue
        klen, vlen = len(key), len(value)
        if klen > last or vlen > last:
            add(encode_record(offset_delta, ts_delta, key, value, headers))
            continue
        ts, od, kl, vl = vi[ts_delta + 1], vi[offset_delta + 1], vi[klen + 1], vi[vlen + 1]
        # attributes byte + deltas + key and value with their lengths + an empty header count
        size = 2 + len(ts) + len(od) + len(kl) + klen + len(vl) + vlen
        add(vi[size + 1] if size <= last else _varint_bytes(size))
        add(b"\x00")
        add(ts)
        add(od)
        add(kl)
        add(key)
        add(vl)
        add(value)
        add(b"\x00")
    return b"".join(parts)


def encode_batch_of_records(
    records: bytes,
    count: int,
    *,
    base_timestamp_ms: int,
    max_timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    is_transactional: bool = False,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
) -> bytes:
    """An uncompressed CreateTime batch around ``records`` (``count`` records with offset deltas 0 … count-1).

    ``records`` comes from :func:`encode_records` or :func:`encode_record`; the
    result is byte for byte what :func:`encode_batch` makes of the same records.
    """
    if count < 1:
        raise ValueError("a batch of records needs at least one record")
    header = BATCH_HEADER.pack(
        base_offset, BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + len(records), partition_leader_epoch, MAGIC, 0,
        TRANSACTIONAL_MASK if is_transactional else 0, count - 1, base_timestamp_ms, max_timestamp_ms,
        producer_id, producer_epoch, base_sequence, count)
    crc = _crc32c.crc32c(records, _crc32c.crc32c(header[ATTRIBUTES_POS:]))
    return b"".join((header[:CRC_POS], _UINT32.pack(crc), header[ATTRIBUTES_POS:], records))


def encode_batch(
    records: Sequence[Record],
    *,
    base_offset: int | None = None,
    last_offset_delta: int | None = None,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    compression: Compression = Compression.NONE,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    is_transactional: bool = False,
    is_control: bool = False,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    max_timestamp_ms: int | None = None,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Encode ``records`` as one v2 batch.

    Offsets and timestamps in ``records`` are absolute; the batch stores deltas
    from ``base_offset`` (default: the first record's offset) and from the base
    timestamp (the first record's timestamp, or ``delete_horizon_ms`` when given,
    which also sets attribute bit 6 as Kafka's cleaner does). ``last_offset_delta``
    defaults to the last record's delta; pass it to keep a batch's offset span
    after compaction removed records from it. An empty batch needs both.
    """
    if not records and (base_offset is None or last_offset_delta is None):
        raise ValueError("an empty batch needs base_offset and last_offset_delta")
    if compression not in (Compression.NONE, Compression.GZIP):
        raise ValueError(f"compression {Compression(compression).name} is not implemented")
    if base_offset is None:
        base_offset = records[0].offset
    if last_offset_delta is None:
        last_offset_delta = records[-1].offset - base_offset
    if records:
        first_ts = records[0].timestamp_ms
        max_ts = max(r.timestamp_ms for r in records)
    else:
        first_ts = max_ts = NO_TIMESTAMP
    if max_timestamp_ms is not None:
        max_ts = max_timestamp_ms
    base_ts = first_ts if delete_horizon_ms is None else delete_horizon_ms
    body = bytearray()
    previous_offset = base_offset - 1
    for rec in records:
        if rec.offset <= previous_offset:
            raise ValueError("record offsets must be strictly increasing from base_offset")
        previous_offset = rec.offset
        _encode_record(body, rec, base_offset, base_ts)
    if previous_offset > base_offset + last_offset_delta:
        raise ValueError("last_offset_delta is smaller than the last record's offset delta")
    if compression == Compression.GZIP:
        body = bytearray(gzip.compress(bytes(body), compresslevel=6, mtime=0))
    attributes = (
        int(compression)
        | (TIMESTAMP_TYPE_MASK if timestamp_type == TimestampType.LOG_APPEND_TIME else 0)
        | (TRANSACTIONAL_MASK if is_transactional else 0)
        | (CONTROL_MASK if is_control else 0)
        | (DELETE_HORIZON_MASK if delete_horizon_ms is not None else 0)
    )
    out = bytearray(BATCH_HEADER_BYTES)
    BATCH_HEADER.pack_into(
        out, 0, base_offset, BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + len(body),
        partition_leader_epoch, MAGIC, 0, attributes, last_offset_delta, base_ts,
        max_ts, producer_id, producer_epoch, base_sequence, len(records),
    )
    out += body
    _UINT32.pack_into(out, CRC_POS, crc32c(memoryview(out)[ATTRIBUTES_POS:]))
    return bytes(out)


def make_records(
    items: Sequence[tuple[bytes | None, bytes | None]]
    | Sequence[tuple[bytes | None, bytes | None, tuple[Header, ...]]],
    *,
    timestamp_ms: int,
    first_offset: int = 0,
) -> list[Record]:
    """Records for a producer batch: consecutive offsets, one timestamp."""
    out = []
    for i, item in enumerate(items):
        headers = item[2] if len(item) > 2 else ()  # type: ignore[misc]
        out.append(Record(first_offset + i, timestamp_ms, item[0], item[1], tuple(headers)))
    return out


def encode_control_batch(
    control_type: ControlType,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
    offset: int = 0,
) -> bytes:
    """An end-transaction marker (a control batch with one COMMIT or ABORT record)."""
    key = _CONTROL_KEY.pack(0, int(control_type))
    value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    return encode_batch(
        [Record(offset, timestamp_ms, key, value)],
        is_transactional=True, is_control=True,
        producer_id=producer_id, producer_epoch=producer_epoch,
    )


def parse_control_record(record: Record) -> tuple[ControlType, int]:
    """Return ``(type, coordinator_epoch)`` of a control record."""
    if record.key is None or len(record.key) < _CONTROL_KEY.size:
        raise CorruptRecordError(0, "control record key is shorter than 4 bytes")
    version, ctype = _CONTROL_KEY.unpack_from(record.key)
    if version != 0 or ctype not in (0, 1):
        raise CorruptRecordError(0, f"unknown control record version {version} type {ctype}")
    epoch = -1
    if record.value is not None and len(record.value) >= _CONTROL_VALUE.size:
        epoch = _CONTROL_VALUE.unpack_from(record.value)[1]
    return ControlType(ctype), epoch


def set_base_offset(batch: bytearray, position: int, base_offset: int) -> None:
    """Stamp a batch's base offset in place (outside the CRC, as the leader does)."""
    _INT64.pack_into(batch, position + BASE_OFFSET_POS, base_offset)


def set_partition_leader_epoch(batch: bytearray, position: int, epoch: int) -> None:
    """Stamp a batch's partition leader epoch in place (outside the CRC)."""
    _INT32.pack_into(batch, position + PARTITION_LEADER_EPOCH_POS, epoch)


# ── decoding ─────────────────────────────────────────────────────────────────


class RecordBatch:
    """A view of one v2 batch inside a larger buffer, header already parsed.

    ``buffer[position : position + size_bytes]`` is the batch. Construction via
    :func:`read_batch_header` checks the header's shape (lengths, magic), not the
    CRC; :meth:`crc_is_valid` and :meth:`validate` do that. Records are decoded
    only when :meth:`records` is called.
    """

    __slots__ = (
        "buffer", "position", "base_offset", "batch_length", "partition_leader_epoch",
        "magic", "crc", "attributes", "last_offset_delta", "base_timestamp_ms",
        "max_timestamp_ms", "producer_id", "producer_epoch", "base_sequence", "record_count",
    )

    def __init__(self, buffer: bytes, position: int, fields: tuple) -> None:
        self.buffer = buffer
        self.position = position
        (self.base_offset, self.batch_length, self.partition_leader_epoch, self.magic,
         self.crc, self.attributes, self.last_offset_delta, self.base_timestamp_ms,
         self.max_timestamp_ms, self.producer_id, self.producer_epoch, self.base_sequence,
         self.record_count) = fields

    # ── derived header facts ──
    @property
    def size_bytes(self) -> int:
        return self.batch_length + LOG_OVERHEAD_BYTES

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType((self.attributes & TIMESTAMP_TYPE_MASK) >> 3)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def delete_horizon_ms(self) -> int | None:
        """The KIP-534 delete horizon, when the cleaner has set one."""
        return self.base_timestamp_ms if self.attributes & DELETE_HORIZON_MASK else None

    @property
    def last_sequence(self) -> int:
        """The sequence of the batch's last record (wraps at 2^31 as Kafka's does)."""
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)

    def to_bytes(self) -> bytes:
        """The batch's own bytes (a copy when it sits in a larger buffer)."""
        start = self.position
        if start == 0 and len(self.buffer) == self.size_bytes:
            return bytes(self.buffer)
        return bytes(self.buffer[start : start + self.size_bytes])

    def detached(self) -> "RecordBatch":
        """This batch on bytes of its own (position 0), its header as already parsed."""
        if self.position == 0 and len(self.buffer) == self.size_bytes and isinstance(self.buffer, bytes):
            return self
        copy = RecordBatch.__new__(RecordBatch)
        for name in RecordBatch.__slots__:
            setattr(copy, name, getattr(self, name))
        copy.buffer, copy.position = self.to_bytes(), 0
        return copy

    def crc_is_valid(self) -> bool:
        start = self.position + ATTRIBUTES_POS
        end = self.position + self.size_bytes
        return crc32c(memoryview(self.buffer)[start:end]) == self.crc

    def validate(self) -> None:
        """Raise CorruptRecordError unless the CRC matches the bytes."""
        if not self.crc_is_valid():
            raise CorruptRecordError(self.position, "CRC-32C does not match the batch's bytes")

    def records(self) -> list[Record]:
        """Decode every record (does not check the CRC: call :meth:`validate` first).

        Raises CorruptRecordError whose position is relative to ``buffer``.
        """
        buf = self.buffer
        if not isinstance(buf, bytes):  # keys must come out as hashable bytes
            buf = self.buffer = bytes(buf)
        start = self.position + BATCH_HEADER_BYTES
        end = self.position + self.size_bytes
        if self.compression == Compression.NONE:
            records = _decode_records(buf, start, end, self, self.position)
        elif self.compression == Compression.GZIP:
            plain = _gunzip(bytes(buf[start:end]), self.position)
            records = _decode_records(plain, 0, len(plain), self, self.position)
        else:
            records = None
        if records is not None:
            if self.attributes & TIMESTAMP_TYPE_MASK:
                # LogAppendTime: the broker's time in maxTimestamp is every record's timestamp.
                ts = self.max_timestamp_ms
                records = [r._replace(timestamp_ms=ts) for r in records]
            return records
        codec = self.compression
        name = Compression(codec).name.lower() if codec <= Compression.ZSTD else f"id {codec} (unknown)"
        raise UnsupportedCompressionError(
            self.position + ATTRIBUTES_POS, f"compression codec {name} is not supported")

    def __repr__(self) -> str:
        return (
            f"RecordBatch(base_offset={self.base_offset}, last_offset={self.last_offset}, "
            f"count={self.record_count}, size_bytes={self.size_bytes})"
        )


def _gunzip(data: bytes, position: int) -> bytes:
    """Inflate a gzip stream (one or more members), bounded in size."""
    out = bytearray()
    try:
        while data:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += d.decompress(data, MAX_UNCOMPRESSED_BATCH_BYTES - len(out) + 1)
            if len(out) > MAX_UNCOMPRESSED_BATCH_BYTES:
                raise CorruptRecordError(
                    position, f"gzip data inflates beyond {MAX_UNCOMPRESSED_BATCH_BYTES} bytes")
            if not d.eof:
                raise CorruptRecordError(position, "gzip data is truncated")
            data = d.unused_data
    except zlib.error as exc:
        raise CorruptRecordError(position, f"gzip data is invalid ({exc})") from None
    return bytes(out)


def _decode_records(buf: bytes, pos: int, end: int, batch: RecordBatch, batch_pos: int) -> list[Record]:
    """The hot loop: decode ``batch.record_count`` records from ``buf[pos:end]``.

    Single-byte varints (the common case) are decoded inline; longer ones go
    through :func:`read_varint`.
    """
    base_offset = batch.base_offset
    base_ts = batch.base_timestamp_ms
    max_delta = batch.last_offset_delta
    count = batch.record_count
    out: list[Record] = []
    append = out.append
    new = tuple.__new__
    rv = read_varint
    rec_start = pos
    previous_delta = -1
    try:
        for _ in range(count):
            rec_start = pos
            b = buf[pos]
            if b < 0x80:
                length = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                length, pos = rv(buf, pos)
            rec_end = pos + length
            if length < 6 or rec_end > end:
                raise CorruptRecordError(batch_pos, f"record at byte {rec_start} has impossible length {length}")
            pos += 1  # record attributes
            b = buf[pos]
            if b < 0x80:
                ts_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                ts_delta, pos = rv(buf, pos)
            b = buf[pos]
            if b < 0x80:
                offset_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                offset_delta, pos = rv(buf, pos)
            if offset_delta <= previous_delta or offset_delta > max_delta:
                raise CorruptRecordError(
                    batch_pos, f"record at byte {rec_start} has offset delta {offset_delta} out of order")
            previous_delta = offset_delta
            b = buf[pos]
            if b < 0x80:
                klen = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                klen, pos = rv(buf, pos)
            if klen < 0:
                if klen != -1:
                    raise CorruptRecordError(batch_pos, f"record at byte {rec_start} has key length {klen}")
                key = None
            else:
                key = buf[pos : pos + klen]
                pos += klen
            b = buf[pos]
            if b < 0x80:
                vlen = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                vlen, pos = rv(buf, pos)
            if vlen < 0:
                if vlen != -1:
                    raise CorruptRecordError(batch_pos, f"record at byte {rec_start} has value length {vlen}")
                value = None
            else:
                value = buf[pos : pos + vlen]
                pos += vlen
            hcount = buf[pos]
            if hcount == 0:
                pos += 1
                headers: tuple = ()
            else:
                headers, pos = _decode_headers(buf, pos, rec_end, batch_pos, rec_start)
            if pos != rec_end:
                raise CorruptRecordError(
                    batch_pos, f"record at byte {rec_start} declares {length} bytes but holds {pos - rec_start - 1}")
            append(new(Record, (base_offset + offset_delta, base_ts + ts_delta, key, value, headers)))
    except IndexError:
        raise CorruptRecordError(batch_pos, f"record at byte {rec_start} runs past the end of the batch") from None
    except CorruptRecordError as exc:
        if exc.position == batch_pos:
            raise
        # read_varint's position is within ``buf``, which for gzip is the inflated data.
        raise CorruptRecordError(batch_pos, f"record at byte {rec_start}: {exc.reason}") from None
    if pos != end:
        raise CorruptRecordError(batch_pos, f"{end - pos} bytes left over after {count} records")
    return out


def _decode_headers(buf: bytes, pos: int, rec_end: int, batch_pos: int, rec_start: int) -> tuple[tuple, int]:
    hcount, pos = read_varint(buf, pos)
    if hcount < 0 or hcount > rec_end - pos:
        raise CorruptRecordError(batch_pos, f"record at byte {rec_start} has {hcount} headers")
    headers = []
    for _ in range(hcount):
        hklen, pos = read_varint(buf, pos)
        if hklen < 0 or pos + hklen > rec_end:
            raise CorruptRecordError(batch_pos, f"record at byte {rec_start} has header key length {hklen}")
        try:
            hkey = bytes(buf[pos : pos + hklen]).decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptRecordError(batch_pos, f"record at byte {rec_start} has a header key that is not UTF-8") from None
        pos += hklen
        hvlen, pos = read_varint(buf, pos)
        if hvlen < -1 or pos + hvlen > rec_end:
            raise CorruptRecordError(batch_pos, f"record at byte {rec_start} has header value length {hvlen}")
        if hvlen == -1:
            hvalue = None
        else:
            hvalue = buf[pos : pos + hvlen]
            pos += hvlen
        headers.append((hkey, hvalue))
    return tuple(headers), pos


def read_batch_header(buf: bytes, position: int = 0) -> RecordBatch:
    """Parse the batch header at ``position`` and check its shape (not its CRC).

    Checks: 61 header bytes present, ``batchLength`` ≥ 49 and within ``buf``,
    magic 2, a non-negative record count and last offset delta, and
    ``recordCount ≤ lastOffsetDelta + 1``. Raises CorruptRecordError otherwise.
    """
    available = len(buf) - position
    if available < BATCH_HEADER_BYTES:
        raise CorruptRecordError(
            position, f"only {available} bytes left, a batch header needs {BATCH_HEADER_BYTES}")
    fields = BATCH_HEADER.unpack_from(buf, position)
    batch_length = fields[1]
    if batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(position, f"batch length {batch_length} is below the minimum {MIN_BATCH_LENGTH}")
    if batch_length + LOG_OVERHEAD_BYTES > available:
        raise CorruptRecordError(
            position, f"batch length {batch_length} runs past the end of the data ({available} bytes left)")
    if fields[3] != MAGIC:
        raise CorruptRecordError(position, f"magic byte is {fields[3]}, only magic 2 is supported")
    last_offset_delta, record_count = fields[6], fields[12]
    if last_offset_delta < 0 or record_count < 0 or record_count > last_offset_delta + 1:
        raise CorruptRecordError(
            position, f"record count {record_count} does not fit last offset delta {last_offset_delta}")
    return RecordBatch(buf, position, fields)


def decode_batch(buf: bytes, position: int = 0) -> RecordBatch:
    """Parse and CRC-check the batch at ``position``."""
    batch = read_batch_header(buf, position)
    batch.validate()
    return batch


def iter_batches(buf: bytes, position: int = 0, end: int | None = None) -> Iterator[RecordBatch]:
    """Yield CRC-checked batches from ``buf[position:end]``; the data must end on a batch boundary."""
    if isinstance(buf, (bytearray, memoryview)):
        buf = bytes(buf)
    end = len(buf) if end is None else end
    view = buf if end == len(buf) else buf[:end]
    while position < end:
        batch = decode_batch(view, position)
        yield batch
        position += batch.size_bytes


def decode_batches(buf: bytes) -> list[RecordBatch]:
    """All batches in ``buf`` (CRC-checked); raises CorruptRecordError on any flaw."""
    return list(iter_batches(buf))


def decode_records(buf: bytes) -> list[Record]:
    """Every record of every batch in ``buf``: the strictest decoder, for tests and tools."""
    out: list[Record] = []
    for batch in iter_batches(buf):
        out.extend(batch.records())
    return out
