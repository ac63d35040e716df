"""Committed offsets and group state as records of the internal topic ``__consumer_offsets``.

A consumer group's progress is data, stored like any other: every OffsetCommit
appends one record per partition to the ``__consumer_offsets`` partition that
the group hashes to, and every completed rebalance appends the group's
metadata (generation, leader, members, assignments). The topic is compacted,
so the newest record per key is what survives. When a coordinator moves (its
broker crashed), the new leader of that partition *reads the log back* to
rebuild every group's committed offsets and membership — that is why nothing
committed is lost in a failover, and why a learner can open
``__consumer_offsets`` in the log explorer and read the commits.

Record formats are Kafka's (``OffsetCommitKey`` v1, ``OffsetCommitValue`` v3,
``GroupMetadataKey`` v2, ``GroupMetadataValue`` v3), so a dump of our topic reads
like a dump of Kafka's:

* offset key: INT16 version=1, group STRING, topic STRING, partition INT32;
  value: INT16 version=3, offset INT64, leader_epoch INT32, metadata STRING,
  commit_timestamp INT64. A null value (tombstone) deletes the commit.
* group key: INT16 version=2, group STRING; value: INT16 version=3,
  protocol_type STRING, generation INT32, protocol STRING?, leader STRING?,
  current_state_timestamp INT64, members [member_id, group_instance_id?,
  client_id, client_host, rebalance_timeout INT32, session_timeout INT32,
  subscription BYTES, assignment BYTES].

Which partition holds a group: ``abs(java_string_hash(group_id)) % partitions``
— Kafka's rule, so the same group id lands on the same partition number as in
Kafka with the same partition count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from core_log.errors import CorruptRecordError
from core_log.kafka_types import ProtocolDecodeError, Reader, Writer
from core_log.messages import TopicPartition
from core_log.records import ControlType, Record, RecordBatch, parse_control_record

OFFSETS_TOPIC = "__consumer_offsets"
OFFSET_KEY_VERSION = 1
OFFSET_VALUE_VERSION = 3
GROUP_KEY_VERSION = 2
GROUP_VALUE_VERSION = 3
MAX_METADATA_BYTES = 4096  # Kafka's offset.metadata.max.bytes


def java_string_hash(s: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units, 32-bit wrap-around)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for_group(group_id: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition of a group (Kafka's ``Utils.abs(hashCode) % n``)."""
    h = java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


@dataclass(frozen=True)
class OffsetAndMetadata:
    """A committed offset: the next record the group will read (last processed + 1)."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp_ms: int = -1


@dataclass(frozen=True)
class StoredMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class StoredGroup:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    state_timestamp_ms: int
    members: tuple[StoredMember, ...]


def offset_key(group_id: str, tp: TopicPartition) -> bytes:
    return Writer().int16(OFFSET_KEY_VERSION).string(group_id).string(tp.topic).int32(tp.partition).done()


def offset_value(om: OffsetAndMetadata) -> bytes:
    return (Writer().int16(OFFSET_VALUE_VERSION).int64(om.offset).int32(om.leader_epoch).string(om.metadata)
            .int64(om.commit_timestamp_ms).done())


def group_key(group_id: str) -> bytes:
    return Writer().int16(GROUP_KEY_VERSION).string(group_id).done()


def group_value(g: StoredGroup) -> bytes:
    w = Writer().int16(GROUP_VALUE_VERSION).string(g.protocol_type).int32(g.generation).string(g.protocol)
    w.string(g.leader).int64(g.state_timestamp_ms).int32(len(g.members))
    for m in g.members:
        w.string(m.member_id).string(m.group_instance_id).string(m.client_id).string(m.client_host)
        w.int32(m.rebalance_timeout_ms).int32(m.session_timeout_ms).bytes_(m.subscription).bytes_(m.assignment)
    return w.done()


@dataclass(frozen=True)
class DecodedOffsetsRecord:
    """One ``__consumer_offsets`` record, decoded. ``value`` is None for a tombstone."""

    kind: str  # "offset" or "group"
    group_id: str
    tp: TopicPartition | None
    value: OffsetAndMetadata | StoredGroup | None

    def describe(self) -> str:
        """One line for the log explorer."""
        if self.kind == "offset":
            if self.value is None:
                return f"group {self.group_id}: commit for {self.tp} deleted (tombstone)"
            assert isinstance(self.value, OffsetAndMetadata)
            return f"group {self.group_id} committed offset {self.value.offset} for {self.tp}"
        if self.value is None:
            return f"group {self.group_id} deleted (tombstone)"
        assert isinstance(self.value, StoredGroup)
        return (f"group {self.group_id} generation {self.value.generation}: {len(self.value.members)} member(s), "
                f"protocol {self.value.protocol}, leader {self.value.leader}")


def decode_record(key: bytes | None, value: bytes | None) -> DecodedOffsetsRecord:
    """Decode a record of ``__consumer_offsets``; raises ProtocolDecodeError if it is not one."""
    if key is None:
        raise ProtocolDecodeError("an __consumer_offsets record needs a key")
    r = Reader(key)
    version = r.int16()
    if version in (0, 1):
        group = r.required_string()
        tp = TopicPartition(r.required_string(), r.int32())
        if value is None:
            return DecodedOffsetsRecord("offset", group, tp, None)
        v = Reader(value)
        vv = v.int16()
        if vv not in (1, 3):
            raise ProtocolDecodeError(f"offset commit value version {vv} is not supported")
        offset = v.int64()
        epoch = v.int32() if vv >= 3 else -1
        metadata = v.string() or ""
        ts = v.int64()
        return DecodedOffsetsRecord("offset", group, tp, OffsetAndMetadata(offset, epoch, metadata, ts))
    if version == 2:
        group = r.required_string()
        if value is None:
            return DecodedOffsetsRecord("group", group, None, None)
        v = Reader(value)
        vv = v.int16()
        if vv != GROUP_VALUE_VERSION:
            raise ProtocolDecodeError(f"group metadata value version {vv} is not supported")
        protocol_type = v.required_string()
        generation = v.int32()
        protocol = v.string()
        leader = v.string()
        ts = v.int64()
        members = []
        for _ in range(v.count()):
            members.append(StoredMember(v.required_string(), v.string(), v.required_string(), v.required_string(),
                                        v.int32(), v.int32(), v.bytes_() or b"", v.bytes_() or b""))
        return DecodedOffsetsRecord("group", group, None,
                                    StoredGroup(protocol_type, generation, protocol, leader, ts, tuple(members)))
    raise ProtocolDecodeError(f"unknown __consumer_offsets key version {version}")


PendingTxnOffsets = dict[int, dict[str, dict[TopicPartition, OffsetAndMetadata]]]  # pid → group → offsets


@dataclass
class LoadedPartition:
    """What one ``__consumer_offsets`` partition holds once read back: offsets, groups, open txn offsets."""

    offsets: dict[str, dict[TopicPartition, OffsetAndMetadata]]
    groups: dict[str, StoredGroup]
    records_read: int = 0
    records_skipped: int = 0
    pending_txn: PendingTxnOffsets | None = None


def load(batches: list[RecordBatch]) -> LoadedPartition:
    """Replay batches in offset order; the newest per key wins, tombstones delete.

    Offsets committed inside a transaction (TxnOffsetCommit) count only once the
    transaction's COMMIT marker follows; an ABORT marker discards them; without a
    marker yet they stay pending.
    """
    out = LoadedPartition({}, {}, pending_txn={})
    pending = out.pending_txn
    assert pending is not None
    for batch in batches:
        if batch.is_control:
            try:
                records = batch.records()
                commit = bool(records) and parse_control_record(records[0])[0] == ControlType.COMMIT
            except CorruptRecordError:
                commit = False
            for group_id, offsets in pending.pop(batch.producer_id, {}).items():
                if commit:
                    out.offsets.setdefault(group_id, {}).update(offsets)
            continue
        try:
            records = batch.records()
        except CorruptRecordError:
            out.records_skipped += 1
            continue
        if batch.is_transactional:
            for d in _decode_all(out, records):
                if d.kind == "offset" and d.value is not None:
                    assert d.tp is not None
                    pending.setdefault(batch.producer_id, {}).setdefault(d.group_id, {})[d.tp] = d.value  # type: ignore[assignment]
            continue
        _apply(out, records)
    return out


def _decode_all(out: LoadedPartition, records: list[Record]) -> Iterator[DecodedOffsetsRecord]:
    """Decode records, counting what was read and skipping (and counting) what is not an offsets record."""
    for rec in records:
        try:
            d = decode_record(rec.key, rec.value)
        except ProtocolDecodeError:
            out.records_skipped += 1
            continue
        out.records_read += 1
        yield d


def _apply(out: LoadedPartition, records: list[Record]) -> None:
    for d in _decode_all(out, records):
        if d.kind == "offset":
            assert d.tp is not None
            if d.value is None:
                out.offsets.get(d.group_id, {}).pop(d.tp, None)
            else:
                out.offsets.setdefault(d.group_id, {})[d.tp] = d.value  # type: ignore[assignment]
        elif d.value is None:
            out.groups.pop(d.group_id, None)
        else:
            out.groups[d.group_id] = d.value  # type: ignore[assignment]
