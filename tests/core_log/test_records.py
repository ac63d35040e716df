"""Record batch v2 codec: varints, round trips, byte-compatibility with kafka-python, corruption."""

from __future__ import annotations

import gzip
import struct
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from core_log.errors import CorruptRecordError, UnsupportedCompressionError
from core_log.records import (
    ATTRIBUTES_POS,
    BATCH_HEADER,
    BATCH_HEADER_BYTES,
    CRC_POS,
    Compression,
    ControlType,
    Record,
    TimestampType,
    _encode_record,
    crc32c,
    decode_batch,
    decode_batches,
    decode_records,
    encode_batch,
    encode_batch_of_records,
    encode_control_batch,
    encode_record,
    encode_records,
    make_records,
    parse_control_record,
    read_batch_header,
    read_varint,
    set_base_offset,
    set_partition_leader_epoch,
    varint_size,
    write_varint,
)

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
TS = 1_700_000_000_000

# Deterministic Hypothesis: same examples every run, no example database, no deadline flakiness.
DETERMINISTIC = settings(
    derandomize=True, database=None, deadline=None, max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def recompute_crc(data: bytes | bytearray, position: int = 0) -> bytes:
    """Return ``data`` with the CRC of the batch at ``position`` recomputed over attributes..end."""
    out = bytearray(data)
    length = struct.unpack_from(">i", out, position + 8)[0]
    end = min(len(out), position + 12 + max(length, 0))
    struct.pack_into(">I", out, position + CRC_POS, crc32c(bytes(out[position + ATTRIBUTES_POS:end])))
    return bytes(out)


def replace_body(batch: bytes, body: bytes) -> bytes:
    """The batch's 61-byte header with a new body, batch length and CRC fixed up."""
    out = bytearray(batch[:BATCH_HEADER_BYTES]) + body
    struct.pack_into(">i", out, 8, len(out) - 12)
    return recompute_crc(out)


def set_attributes(batch: bytes, attributes: int) -> bytes:
    out = bytearray(batch)
    struct.pack_into(">h", out, ATTRIBUTES_POS, attributes)
    return recompute_crc(out)


# ── varints ──────────────────────────────────────────────────────────────────


class VarintCase(NamedTuple):
    value: int
    encoded: str  # hex


VARINT_CASES = [
    VarintCase(0, "00"),
    VarintCase(-1, "01"),
    VarintCase(1, "02"),
    VarintCase(63, "7e"),
    VarintCase(-64, "7f"),
    VarintCase(64, "8001"),
    VarintCase(-65, "8101"),
    VarintCase(8191, "fe7f"),
    VarintCase(-8192, "ff7f"),
    VarintCase(8192, "808001"),
    VarintCase(300, "d804"),
    VarintCase((1 << 31) - 1, "feffffff0f"),
    VarintCase(-(1 << 31), "ffffffff0f"),
    VarintCase(INT64_MAX, "feffffffffffffffff01"),
    VarintCase(INT64_MIN, "ffffffffffffffffff01"),
]


@pytest.mark.parametrize("case", VARINT_CASES, ids=lambda c: str(c.value))
def test_varint_exact_bytes(case: VarintCase) -> None:
    """Ensure write_varint produces Kafka's zig-zag bytes and read_varint/varint_size agree."""
    out = bytearray()
    write_varint(out, case.value)
    assert out.hex() == case.encoded
    assert varint_size(case.value) == len(out)
    assert read_varint(bytes(out), 0) == (case.value, len(out))


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX), st.binary(max_size=4))
@DETERMINISTIC
def test_varint_round_trip(value: int, prefix: bytes) -> None:
    """Ensure every int64 round-trips through a varint at any position, with varint_size exact."""
    out = bytearray(prefix)
    write_varint(out, value)
    assert varint_size(value) == len(out) - len(prefix)
    assert 1 <= varint_size(value) <= 10
    assert read_varint(bytes(out) + b"\x00", len(prefix)) == (value, len(out))


def test_varint_longer_than_ten_bytes_is_corrupt() -> None:
    """Ensure an 11-byte varint raises CorruptRecordError and a cut-off one raises IndexError."""
    with pytest.raises(CorruptRecordError):
        read_varint(b"\xff" * 11, 0)
    with pytest.raises(IndexError):
        read_varint(b"\x80\x80", 0)


# ── round trips ──────────────────────────────────────────────────────────────


class BatchCase(NamedTuple):
    name: str
    records: list[Record]
    options: dict[str, Any] = {}


def _recs(*items: tuple, first_offset: int = 0, ts: int = TS) -> list[Record]:
    return make_records(list(items), timestamp_ms=ts, first_offset=first_offset)


BATCH_CASES = [
    BatchCase("one record", _recs((b"k", b"v"))),
    BatchCase("empty key", _recs((b"", b"value"))),
    BatchCase("null key", _recs((None, b"value"), (None, b"v2"))),
    BatchCase("tombstone", _recs((b"key", None))),
    BatchCase("empty value", _recs((b"key", b""))),
    BatchCase("null key and value", _recs((None, None))),
    BatchCase(
        "headers",
        _recs(
            (b"k", b"v", (("trace", b"abc"), ("null-header", None), ("empty", b""))),
            (b"k2", b"v2", (("\u00fcber-\u65e5\u672c-\U0001f600", b"\x00\xff"),)),
            (b"k3", b"v3"),
        ),
    ),
    BatchCase("many records", _recs(*[(str(i).encode(), b"x" * (i % 17)) for i in range(500)], first_offset=10)),
    BatchCase(
        "big values need multi-byte varints",
        _recs((b"K" * 200, b"V" * 20_000, (("h" * 130, b"H" * 1000),)), (None, b"w" * 70_000)),
    ),
    BatchCase(
        "negative timestamp deltas",
        [Record(0, TS, b"a", b"1"), Record(1, TS - 5_000, b"b", b"2"), Record(2, TS - 10**9, b"c", b"3"),
         Record(3, TS + 7, b"d", b"4")],
    ),
    BatchCase("timestamp zero and negative", [Record(0, 0, b"a", b"1"), Record(1, -1, b"b", b"2")]),
    BatchCase("base offset far from zero", _recs((b"k", b"v"), (b"k", b"w"), first_offset=(1 << 40))),
    BatchCase("gzip", _recs(*[(b"key-%d" % i, b"value " * 50) for i in range(50)]), {"compression": Compression.GZIP}),
    BatchCase(
        "gzip with headers and nulls",
        _recs((None, None, (("h", None),)), (b"k", b"v" * 1000)),
        {"compression": Compression.GZIP},
    ),
    BatchCase(
        "transactional",
        _recs((b"k", b"v"), (b"k2", b"v2"), first_offset=5),
        {"is_transactional": True, "producer_id": 123_456_789_012, "producer_epoch": 7, "base_sequence": 42},
    ),
    BatchCase(
        "idempotent, leader epoch, gzip",
        _recs((b"k", b"v"), (b"k", b"v")),
        {"producer_id": 9, "producer_epoch": 0, "base_sequence": 0, "partition_leader_epoch": 3,
         "compression": Compression.GZIP},
    ),
    BatchCase("log append time", _recs((b"k", b"v")), {"timestamp_type": TimestampType.LOG_APPEND_TIME}),
    BatchCase("delete horizon", _recs((b"k", b"v"), (b"k2", None)), {"delete_horizon_ms": TS + 86_400_000}),
    BatchCase(
        "compacted gaps keep last offset delta",
        [Record(100, TS, b"a", b"1"), Record(103, TS + 1, b"b", b"2"), Record(107, TS + 2, b"c", None)],
        {"base_offset": 100, "last_offset_delta": 9},
    ),
    BatchCase("empty batch after compaction", [], {"base_offset": 50, "last_offset_delta": 4}),
    BatchCase("explicit max timestamp", _recs((b"k", b"v")), {"max_timestamp_ms": TS + 99}),
]


@pytest.mark.parametrize("case", BATCH_CASES, ids=lambda c: c.name)
def test_batch_round_trip(case: BatchCase) -> None:
    """Ensure encode_batch → decode_batches gives back the records and every header field."""
    opts = case.options
    encoded = encode_batch(case.records, **opts)
    batches = decode_batches(encoded)
    assert len(batches) == 1
    batch = batches[0]
    assert batch.records() == case.records
    assert decode_records(encoded) == case.records
    assert batch.crc_is_valid()
    assert batch.size_bytes == len(encoded)
    assert batch.to_bytes() == encoded

    base_offset = opts.get("base_offset", case.records[0].offset if case.records else None)
    assert batch.base_offset == base_offset
    expected_last_delta = opts.get("last_offset_delta", case.records[-1].offset - base_offset if case.records else None)
    assert batch.last_offset_delta == expected_last_delta
    assert batch.next_offset == base_offset + expected_last_delta + 1
    assert batch.record_count == len(case.records)
    assert batch.magic == 2
    assert batch.partition_leader_epoch == opts.get("partition_leader_epoch", -1)
    assert batch.producer_id == opts.get("producer_id", -1)
    assert batch.producer_epoch == opts.get("producer_epoch", -1)
    assert batch.base_sequence == opts.get("base_sequence", -1)
    assert batch.compression == opts.get("compression", Compression.NONE)
    assert batch.timestamp_type == opts.get("timestamp_type", TimestampType.CREATE_TIME)
    assert batch.is_transactional == opts.get("is_transactional", False)
    assert batch.is_control is False
    assert batch.delete_horizon_ms == opts.get("delete_horizon_ms")
    if case.records:
        expected_max = opts.get("max_timestamp_ms", max(r.timestamp_ms for r in case.records))
        assert batch.max_timestamp_ms == expected_max
        expected_base_ts = opts.get("delete_horizon_ms", case.records[0].timestamp_ms)
        assert batch.base_timestamp_ms == expected_base_ts
    else:
        assert batch.max_timestamp_ms == -1
    if opts.get("compression", Compression.NONE) == Compression.NONE:
        assert len(encoded) == BATCH_HEADER_BYTES + sum(_record_size(r, batch) for r in case.records)


def _record_size(rec: Record, batch: Any) -> int:
    out = bytearray()
    _encode_record(out, rec, batch.base_offset, batch.base_timestamp_ms)
    return len(out)


def test_many_batches_in_one_buffer() -> None:
    """Ensure concatenated batches decode in order and each knows its position."""
    parts = [encode_batch(c.records, **c.options) for c in BATCH_CASES]
    buf = b"".join(parts)
    batches = decode_batches(buf)
    assert [b.position for b in batches] == [sum(len(p) for p in parts[:i]) for i in range(len(parts))]
    assert decode_records(buf) == [r for c in BATCH_CASES for r in c.records]


@pytest.mark.parametrize("control_type", list(ControlType))
def test_control_batch_round_trip(control_type: ControlType) -> None:
    """Ensure an end-transaction marker decodes as a transactional control batch with its type and epoch."""
    encoded = encode_control_batch(
        control_type, producer_id=4242, producer_epoch=3, coordinator_epoch=17, timestamp_ms=TS, offset=77)
    (batch,) = decode_batches(encoded)
    assert batch.is_control and batch.is_transactional
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (4242, 3, -1)
    assert batch.base_offset == 77 and batch.record_count == 1
    assert batch.size_bytes == len(encoded) and batch.crc_is_valid()
    (rec,) = batch.records()
    assert (rec.offset, rec.timestamp_ms) == (77, TS)
    assert rec.key == struct.pack(">hh", 0, int(control_type))
    assert parse_control_record(rec) == (control_type, 17)


class BadControlCase(NamedTuple):
    name: str
    key: bytes | None


@pytest.mark.parametrize(
    "case",
    [BadControlCase("null key", None), BadControlCase("short key", b"\x00\x00\x01"),
     BadControlCase("unknown version", b"\x00\x01\x00\x01"), BadControlCase("unknown type", b"\x00\x00\x00\x05")],
    ids=lambda c: c.name,
)
def test_parse_control_record_rejects_bad_keys(case: BadControlCase) -> None:
    """Ensure a malformed control record key raises CorruptRecordError."""
    with pytest.raises(CorruptRecordError):
        parse_control_record(Record(0, TS, case.key, b"\x00\x00\x00\x00\x00\x01"))


def test_control_record_without_value_has_unknown_epoch() -> None:
    """Ensure a control record with no value reports coordinator epoch -1."""
    assert parse_control_record(Record(0, TS, b"\x00\x00\x00\x00", None)) == (ControlType.ABORT, -1)


def test_stamping_offset_and_epoch_keeps_crc_valid() -> None:
    """Ensure base offset and leader epoch are stamped outside the CRC, as Kafka's leader does."""
    encoded = bytearray(b"junk" + encode_batch(_recs((b"k", b"v"), (b"k", b"w"))))
    set_base_offset(encoded, 4, 1000)
    set_partition_leader_epoch(encoded, 4, 12)
    batch = decode_batch(bytes(encoded), 4)
    assert (batch.base_offset, batch.partition_leader_epoch, batch.last_offset) == (1000, 12, 1001)
    assert [r.offset for r in batch.records()] == [1000, 1001]


def test_last_sequence_wraps_like_kafka() -> None:
    """Ensure last_sequence wraps at 2^31 and is -1 without a sequence."""
    wrap = encode_batch(_recs((b"a", b"1"), (b"b", b"2"), (b"c", b"3")),
                        producer_id=1, producer_epoch=0, base_sequence=(1 << 31) - 1)
    assert decode_batch(wrap).last_sequence == 1  # Kafka: MAX_VALUE, 0, 1
    assert decode_batch(encode_batch(_recs((b"a", b"1")))).last_sequence == -1


class BadInputCase(NamedTuple):
    name: str
    records: list[Record]
    options: dict[str, Any]


@pytest.mark.parametrize(
    "case",
    [
        BadInputCase("empty without base offset", [], {}),
        BadInputCase("empty without last offset delta", [], {"base_offset": 3}),
        BadInputCase("repeated offset", [Record(0, TS, b"a", b"1"), Record(0, TS, b"b", b"2")], {}),
        BadInputCase("decreasing offsets", [Record(5, TS, b"a", b"1"), Record(4, TS, b"b", b"2")], {}),
        BadInputCase("offset below base offset", [Record(5, TS, b"a", b"1")], {"base_offset": 6}),
        BadInputCase("last offset delta too small", [Record(0, TS, b"a", b"1"), Record(4, TS, b"b", b"2")],
                     {"last_offset_delta": 2}),
        BadInputCase("snappy not implemented", [Record(0, TS, b"a", b"1")], {"compression": Compression.SNAPPY}),
    ],
    ids=lambda c: c.name,
)
def test_encode_batch_rejects_bad_input(case: BadInputCase) -> None:
    """Ensure encode_batch raises ValueError for inputs it cannot encode faithfully."""
    with pytest.raises(ValueError):
        encode_batch(case.records, **case.options)


# ── byte-compatibility with kafka-python's independent encoder ──────────────


def kafka_python_batch(
    records: list[Record], *, compression_type: int = 0, is_transactional: bool = False,
    producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
) -> bytes:
    """Build a batch with kafka-python's DefaultRecordBatchBuilder (base offset 0, leader epoch 0)."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=compression_type, is_transactional=is_transactional,
        producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=base_sequence,
        batch_size=1 << 30)
    for rec in records:
        meta = builder.append(rec.offset, timestamp=rec.timestamp_ms, key=rec.key, value=rec.value,
                              headers=list(rec.headers))
        assert meta is not None
    return bytes(builder.build())


class CompatCase(NamedTuple):
    name: str
    records: list[Record]
    producer: dict[str, Any] = {}


COMPAT_CASES = [
    CompatCase("one record", _recs((b"k", b"v"))),
    CompatCase("null key", _recs((None, b"v"))),
    CompatCase("empty key", _recs((b"", b"v"))),
    CompatCase("tombstone", _recs((b"k", None))),
    CompatCase("headers with null value and unicode key",
               _recs((b"k", b"v", (("a", b"1"), ("\u00e9t\u00e9-\U0001f680", None), ("", b""))))),
    CompatCase("many records", _recs(*[(b"%d" % i, b"v" * (i % 300)) for i in range(300)])),
    CompatCase("big values", _recs((b"K" * 5000, b"V" * 100_000, (("h", b"H" * 3000),)))),
    CompatCase("negative timestamp deltas",
               [Record(0, TS, b"a", b"1"), Record(1, TS - 123_456, b"b", b"2"), Record(2, TS + 1, b"c", b"3")]),
    CompatCase("offset gaps", [Record(0, TS, b"a", b"1"), Record(3, TS, b"b", b"2"), Record(9, TS, b"c", b"3")]),
    CompatCase("idempotent", _recs((b"k", b"v"), (b"k", b"w")),
               {"producer_id": 77, "producer_epoch": 2, "base_sequence": 1000}),
    CompatCase("transactional", _recs((b"k", b"v"), (None, None)),
               {"is_transactional": True, "producer_id": 1 << 40, "producer_epoch": 32767, "base_sequence": 0}),
]


@pytest.mark.parametrize("case", COMPAT_CASES, ids=lambda c: c.name)
def test_uncompressed_bytes_equal_kafka_python(case: CompatCase) -> None:
    """Ensure our uncompressed batch is byte-for-byte what kafka-python's builder writes."""
    theirs = kafka_python_batch(case.records, **case.producer)
    ours = encode_batch(case.records, base_offset=0, partition_leader_epoch=0, **case.producer)
    assert ours.hex() == theirs.hex()


_header = st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8))
_record_fields = st.tuples(
    st.none() | st.binary(max_size=20),
    st.none() | st.binary(max_size=300),
    st.lists(_header, max_size=3).map(tuple),
    st.integers(min_value=0, max_value=1 << 40),
    st.integers(min_value=1, max_value=3),
)


@st.composite
def record_lists(draw: st.DrawFn, min_size: int = 1) -> list[Record]:
    fields = draw(st.lists(_record_fields, min_size=min_size, max_size=8))
    records, offset = [], 0
    for key, value, headers, ts, gap in fields:
        records.append(Record(offset, ts, key, value, headers))
        offset += gap
    return records


@given(record_lists(), st.booleans())
@DETERMINISTIC
def test_uncompressed_bytes_equal_kafka_python_property(records: list[Record], transactional: bool) -> None:
    """Ensure byte equality with kafka-python holds for arbitrary records, headers and timestamps."""
    producer = {"is_transactional": transactional, "producer_id": 5 if transactional else -1,
                "producer_epoch": 1 if transactional else -1, "base_sequence": 9 if transactional else -1}
    theirs = kafka_python_batch(records, **producer)
    assert encode_batch(records, base_offset=0, partition_leader_epoch=0, **producer) == theirs
    assert decode_records(theirs) == records


@given(record_lists(), st.booleans())
@DETERMINISTIC
def test_producer_encoding_makes_the_same_batch(records: list[Record], transactional: bool) -> None:
    """Ensure the producer's path (encode_records or encode_record, encode_batch_of_records) equals encode_batch."""
    records = [r._replace(offset=i) for i, r in enumerate(records)]  # a producer's batch: deltas 0, 1, …
    base_ts = records[0].timestamp_ms
    max_ts = max(r.timestamp_ms for r in records)
    producer = {"is_transactional": transactional, "producer_id": 5 if transactional else -1,
                "producer_epoch": 1 if transactional else -1, "base_sequence": 9 if transactional else -1}
    expected = encode_batch(records, **producer)
    body = encode_records([(r.key, r.value, r.headers, r.timestamp_ms - base_ts) for r in records])
    one_by_one = b"".join(encode_record(r.offset, r.timestamp_ms - base_ts, r.key, r.value, r.headers)
                          for r in records)
    assert body == one_by_one
    ours = encode_batch_of_records(body, len(records), base_timestamp_ms=base_ts, max_timestamp_ms=max_ts,
                                   **producer)
    assert ours == expected
    assert decode_records(ours) == records


def test_encode_records_handles_long_lengths_and_deltas() -> None:
    """Ensure lengths and deltas beyond the varint cache encode as write_varint does."""
    records = [Record(0, TS, b"k" * 70_000, None), Record(1, TS - 5, None, b"v" * 40_000, (("h", None),)),
               Record(2, TS + 10**9, b"", b"", (("\u00fc" * 3, b"x" * 20_000),)),
               Record(3, TS + 1, b"a" * 40_000, b"b" * 10), Record(4, TS + 2, b"c" * 100, b"d" * 33_000),
               Record(5, TS - 2, b"e", b"f"), Record(6, TS, b"g" * 16_380, b"h")]
    body = encode_records([(r.key, r.value, r.headers, r.timestamp_ms - TS) for r in records])
    assert encode_batch_of_records(body, len(records), base_timestamp_ms=TS, max_timestamp_ms=TS + 10**9) == \
        encode_batch(records)


@pytest.mark.parametrize("compression_type", [0, 1], ids=["none", "gzip"])
@pytest.mark.parametrize("case", COMPAT_CASES, ids=lambda c: c.name)
def test_kafka_python_batches_decode_with_ours(case: CompatCase, compression_type: int) -> None:
    """Ensure batches from kafka-python's builder (none and gzip) decode with our decoder."""
    theirs = kafka_python_batch(case.records, compression_type=compression_type, **case.producer)
    (batch,) = decode_batches(theirs)
    assert batch.records() == case.records
    assert batch.size_bytes == len(theirs)
    assert batch.producer_id == case.producer.get("producer_id", -1)
    assert batch.producer_epoch == case.producer.get("producer_epoch", -1)
    assert batch.base_sequence == case.producer.get("base_sequence", -1)
    assert batch.is_transactional == case.producer.get("is_transactional", False)
    if compression_type and case.name in ("many records", "big values"):
        assert batch.compression == Compression.GZIP  # kafka-python keeps gzip only when it helps


def _their_view(encoded: bytes) -> tuple[bool, list[tuple]]:
    batch = DefaultRecordBatch(encoded)
    crc_ok = batch.validate_crc()
    return crc_ok, [(r.offset, r.timestamp, r.key, r.value, tuple(r.headers)) for r in batch]


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.GZIP], ids=["none", "gzip"])
@pytest.mark.parametrize("case", COMPAT_CASES, ids=lambda c: c.name)
def test_our_batches_decode_with_kafka_python(case: CompatCase, compression: Compression) -> None:
    """Ensure our batches (none and gzip, nonzero base offset) decode and CRC-check with kafka-python."""
    records = [r._replace(offset=r.offset + 1000) for r in case.records]
    encoded = encode_batch(records, compression=compression, partition_leader_epoch=4, **case.producer)
    crc_ok, theirs = _their_view(encoded)
    assert crc_ok
    assert theirs == [(r.offset, r.timestamp_ms, r.key, r.value, r.headers) for r in records]
    header = DefaultRecordBatch(encoded)
    assert (header.base_offset, header.leader_epoch, header.compression_type) == (1000, 4, int(compression))
    assert header.producer_id == case.producer.get("producer_id", -1)
    assert header.base_sequence == case.producer.get("base_sequence", -1)


@given(record_lists(), st.sampled_from([Compression.NONE, Compression.GZIP]))
@DETERMINISTIC
def test_our_batches_decode_with_kafka_python_property(records: list[Record], compression: Compression) -> None:
    """Ensure kafka-python reads back exactly what we encoded, for arbitrary records."""
    crc_ok, theirs = _their_view(encode_batch(records, compression=compression))
    assert crc_ok
    assert theirs == [(r.offset, r.timestamp_ms, r.key, r.value, r.headers) for r in records]


def test_our_control_batch_reads_as_kafka_python_control_record() -> None:
    """Ensure kafka-python sees our commit marker as a control record of type commit."""
    encoded = encode_control_batch(ControlType.COMMIT, producer_id=1, producer_epoch=0,
                                   coordinator_epoch=2, timestamp_ms=TS)
    batch = DefaultRecordBatch(encoded)
    assert batch.validate_crc() and batch.is_control_batch and batch.is_transactional
    (rec,) = list(batch)
    assert rec.commit and not rec.abort and rec.version == 0


# ── corruption contract ──────────────────────────────────────────────────────

SAMPLE = encode_batch(
    _recs((b"key", b"value", (("h", b"x"), ("n", None))), (None, b"v" * 200), (b"t", None), first_offset=3),
    producer_id=8, producer_epoch=1, base_sequence=0)
SAMPLE_GZIP = encode_batch(_recs(*[(b"k%d" % i, b"value-%d" % i, (("h", b"1"),)) for i in range(20)]),
                           compression=Compression.GZIP)


@pytest.mark.parametrize("sample", [SAMPLE, SAMPLE_GZIP], ids=["none", "gzip"])
def test_every_truncation_is_corrupt(sample: bytes) -> None:
    """Ensure cutting a batch at any length 1..len-1 raises CorruptRecordError at position 0."""
    for n in range(1, len(sample)):
        with pytest.raises(CorruptRecordError) as info:
            decode_records(sample[:n])
        assert info.value.position == 0 and info.value.reason


def test_empty_buffer_holds_no_batches() -> None:
    """Ensure an empty buffer (an empty segment) decodes to no batches rather than an error."""
    assert decode_batches(b"") == [] and decode_records(b"") == []


def test_truncation_after_a_whole_batch_reports_the_next_batch() -> None:
    """Ensure a torn second batch is reported at its own position and the first still decodes alone."""
    buf = SAMPLE + SAMPLE_GZIP
    for n in range(len(SAMPLE) + 1, len(buf)):
        with pytest.raises(CorruptRecordError) as info:
            decode_records(buf[:n])
        assert info.value.position == len(SAMPLE)
    assert decode_records(buf[: len(SAMPLE)]) == decode_records(SAMPLE)


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
@pytest.mark.parametrize("sample", [SAMPLE, SAMPLE_GZIP], ids=["none", "gzip"])
def test_single_byte_flip_in_crc_region_is_detected(sample: bytes, mask: int) -> None:
    """Ensure flipping any byte from the batch length on is caught, and stamp fields stay outside the CRC."""
    prefix = encode_batch(_recs((b"a", b"b")))
    for i in range(len(sample)):
        flipped = bytearray(sample)
        flipped[i] ^= mask
        data = prefix + bytes(flipped)
        if i < 8 or 12 <= i < 16:  # baseOffset, partitionLeaderEpoch: not covered by the CRC
            assert len(decode_batches(data)) == 2
            continue
        with pytest.raises(CorruptRecordError) as info:
            decode_batches(data)
        assert info.value.position == len(prefix), i


def _check_only_corrupt_record_error(data: bytes) -> None:
    try:
        decode_records(data)
    except CorruptRecordError as exc:
        assert isinstance(exc.position, int) and 0 <= exc.position <= len(data), exc
        assert isinstance(exc.reason, str) and exc.reason, exc
    except Exception as exc:  # noqa: BLE001 - the contract is "nothing else, ever"
        pytest.fail(f"decode_records raised {type(exc).__name__}: {exc!r} for {data.hex()}")


@given(st.binary(max_size=300))
@DETERMINISTIC
def test_arbitrary_bytes_raise_only_corrupt_record_error(data: bytes) -> None:
    """Ensure arbitrary bytes either decode or raise CorruptRecordError with a sane position and reason."""
    _check_only_corrupt_record_error(data)


MUTATION_BASES = [
    SAMPLE,
    SAMPLE_GZIP,
    encode_batch(_recs((b"K" * 200, b"V" * 300, (("\u00fc", b"H" * 150),)))),
    encode_batch([Record(0, TS, b"a", b"1"), Record(5, TS - 99, None, None)], last_offset_delta=7),
    encode_control_batch(ControlType.ABORT, producer_id=1, producer_epoch=1, coordinator_epoch=1, timestamp_ms=TS),
    encode_batch([], base_offset=0, last_offset_delta=0),
]


@st.composite
def mutated_batches(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(MUTATION_BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "header-int"]))
        if kind == "set":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete" and len(data) > 1:
            at = draw(st.integers(0, len(data) - 1))
            del data[at : at + draw(st.integers(1, 12))]
        elif kind == "header-int" and len(data) >= BATCH_HEADER_BYTES:
            # attributes, lastOffsetDelta, recordCount: the fields that steer the record decoder
            fmt, pos = draw(st.sampled_from([(">h", 21), (">i", 23), (">i", 57), (">q", 27), (">i", 8)]))
            bits = struct.calcsize(fmt) * 8
            value = draw(st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1) | st.integers(-2, 40))
            struct.pack_into(fmt, data, pos, value)
    if draw(st.booleans()) and len(data) >= ATTRIBUTES_POS:
        data = bytearray(recompute_crc(data))
    if draw(st.booleans()):
        data += draw(st.sampled_from([b"", SAMPLE, b"\x00" * 5]))
    return bytes(data)


@given(mutated_batches())
@DETERMINISTIC
def test_mutated_batches_raise_only_corrupt_record_error(data: bytes) -> None:
    """Ensure mutations of valid batches (with and without a fixed-up CRC) raise only CorruptRecordError."""
    _check_only_corrupt_record_error(data)


@given(
    st.integers(0, 7),
    st.integers(-2, 12),
    st.integers(-2, 12),
    st.binary(max_size=120),
)
@DETERMINISTIC
def test_valid_header_with_arbitrary_body_raises_only_corrupt_record_error(
    codec: int, record_count: int, last_offset_delta: int, body: bytes,
) -> None:
    """Ensure a sound header (right length, right CRC) over arbitrary record bytes raises only CorruptRecordError."""
    header = bytearray(BATCH_HEADER_BYTES)
    BATCH_HEADER.pack_into(header, 0, 0, BATCH_HEADER_BYTES - 12 + len(body), 0, 2, 0, codec,
                           last_offset_delta, TS, TS, -1, -1, -1, record_count)
    _check_only_corrupt_record_error(recompute_crc(header + body))


class GzipCorruptCase(NamedTuple):
    name: str
    body: bytes


_GOOD_GZIP_BODY = SAMPLE_GZIP[BATCH_HEADER_BYTES:]


@pytest.mark.parametrize(
    "case",
    [
        GzipCorruptCase("garbage", b"this is not gzip at all" * 3),
        GzipCorruptCase("truncated stream", _GOOD_GZIP_BODY[:-10]),
        GzipCorruptCase("trailing garbage member", _GOOD_GZIP_BODY + b"\x1f\x8b\x08junk"),
        GzipCorruptCase("valid gzip of wrong records", gzip.compress(b"\x00\x01\x02")),
        GzipCorruptCase("two members: too many records", _GOOD_GZIP_BODY + _GOOD_GZIP_BODY),
    ],
    ids=lambda c: c.name,
)
def test_bad_gzip_body_is_corrupt(case: GzipCorruptCase) -> None:
    """Ensure a gzip batch whose body does not inflate to its records raises CorruptRecordError at the batch."""
    data = replace_body(SAMPLE_GZIP, case.body)
    (batch,) = decode_batches(data)  # the CRC is right ...
    with pytest.raises(CorruptRecordError) as info:
        batch.records()  # ... the content is not
    assert info.value.position == 0 and info.value.reason


def test_deep_bad_varint_in_gzip_reports_batch_position() -> None:
    """Ensure a bad varint far into inflated gzip data reports the batch's position, not one inside the plain text."""
    records = [Record(i, TS, None, b"\x00" * 20_000) for i in range(10)]
    plain = bytearray()
    for rec in records:
        _encode_record(plain, rec, 0, TS)
    plain += b"\xff" * 11  # an 11th record whose length varint never ends
    template = encode_batch(records + [Record(10, TS, None, b"")], compression=Compression.GZIP)
    prefix = encode_batch(_recs((b"a", b"b")))
    data = prefix + replace_body(template, gzip.compress(bytes(plain)))
    with pytest.raises(CorruptRecordError) as info:
        decode_records(data)
    assert info.value.position == len(prefix)
    assert "varint" in info.value.reason


@pytest.mark.parametrize("codec", [2, 3, 4, 5, 6, 7])
def test_unsupported_codec_raises_unsupported_compression_error(codec: int) -> None:
    """Ensure snappy/lz4/zstd (and unknown codec ids) raise UnsupportedCompressionError, a CorruptRecordError."""
    data = set_attributes(SAMPLE, codec)
    (batch,) = decode_batches(data)
    with pytest.raises(UnsupportedCompressionError) as info:
        batch.records()
    assert isinstance(info.value, CorruptRecordError)
    assert info.value.position == ATTRIBUTES_POS
    if codec == 2:
        assert "snappy" in info.value.reason


class HeaderCorruptCase(NamedTuple):
    name: str
    fmt: str
    pos: int
    value: int


@pytest.mark.parametrize(
    "case",
    [
        HeaderCorruptCase("magic 1", ">b", 16, 1),
        HeaderCorruptCase("magic 0", ">b", 16, 0),
        HeaderCorruptCase("batch length below minimum", ">i", 8, 48),
        HeaderCorruptCase("negative batch length", ">i", 8, -1),
        HeaderCorruptCase("batch length past the end", ">i", 8, len(SAMPLE)),
        HeaderCorruptCase("negative record count", ">i", 57, -1),
        HeaderCorruptCase("record count beyond offset span", ">i", 57, 99),
        HeaderCorruptCase("negative last offset delta", ">i", 23, -1),
    ],
    ids=lambda c: c.name,
)
def test_bad_header_shape_is_corrupt(case: HeaderCorruptCase) -> None:
    """Ensure read_batch_header rejects impossible header fields even when the CRC matches."""
    data = bytearray(SAMPLE)
    struct.pack_into(case.fmt, data, case.pos, case.value)
    data = recompute_crc(data) if case.pos >= ATTRIBUTES_POS else bytes(data)
    with pytest.raises(CorruptRecordError) as info:
        read_batch_header(data)
    assert info.value.position == 0 and info.value.reason


def test_record_count_mismatch_is_corrupt() -> None:
    """Ensure a CRC-valid batch claiming fewer or more records than it holds raises CorruptRecordError."""
    for count in (0, 1, 2):
        data = bytearray(SAMPLE)
        struct.pack_into(">i", data, 57, count)
        batch = decode_batch(recompute_crc(data))
        with pytest.raises(CorruptRecordError):
            batch.records()


def test_log_append_time_gives_every_record_the_batch_max_timestamp() -> None:
    """Ensure records of a LogAppendTime batch read the broker's time (maxTimestamp), as Kafka's clients do."""
    recs = [Record(0, TS, b"a", b"1"), Record(1, TS + 5, b"b", b"2")]
    encoded = encode_batch(recs, timestamp_type=TimestampType.LOG_APPEND_TIME, max_timestamp_ms=TS + 1000)
    (batch,) = decode_batches(encoded)
    assert [r.timestamp_ms for r in batch.records()] == [TS + 1000, TS + 1000]
    theirs = list(DefaultRecordBatch(bytearray(encoded)))
    assert [r.timestamp for r in theirs] == [TS + 1000, TS + 1000]
