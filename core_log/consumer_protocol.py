"""The consumer protocol: what a group member says in JoinGroup and receives in SyncGroup.

The group coordinator never looks inside these payloads — to it they are
opaque bytes tagged with a protocol name (the assignor's name). Only the
members understand them: each member sends a *subscription* (topics it wants,
partitions it owns now, the generation it owned them in), and the leader
member decodes everybody's, runs the assignor and sends back one *assignment*
per member. Keeping them as Kafka's bytes means a real client's JoinGroup
(through ``wire/``) and the engine's own consumer look the same to the
coordinator, and ``__consumer_offsets`` stores them exactly as Kafka does.

Schemas (Kafka's ``ConsumerProtocolSubscription`` / ``ConsumerProtocolAssignment``):

* subscription v0: topics [STRING], user_data BYTES; v1 adds owned_partitions
  [topic STRING, partitions [INT32]]; v2 adds generation_id INT32; v3 adds
  rack_id STRING (read and ignored). We write v2 (v3 only adds the rack).
* assignment v0–v3: assigned_partitions [topic STRING, partitions [INT32]],
  user_data BYTES. We write v1.

A newer version than we know is read as the newest we know, ignoring trailing
fields (Kafka's forward-compatibility rule for these schemas).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from core_log.kafka_types import ProtocolDecodeError, Reader, Writer
from core_log.messages import TopicPartition

SUBSCRIPTION_VERSION = 2
ASSIGNMENT_VERSION = 1
UNKNOWN_GENERATION = -1


@dataclass(frozen=True)
class MemberSubscription:
    topics: tuple[str, ...]
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation: int = UNKNOWN_GENERATION
    user_data: bytes | None = None


def _write_partitions(w: Writer, partitions: Iterable[TopicPartition]) -> None:
    by_topic: dict[str, list[int]] = defaultdict(list)
    for tp in partitions:
        by_topic[tp.topic].append(tp.partition)
    w.int32(len(by_topic))
    for topic in sorted(by_topic):
        w.string(topic)
        parts = sorted(by_topic[topic])
        w.int32(len(parts))
        for p in parts:
            w.int32(p)


def _read_partitions(r: Reader) -> tuple[TopicPartition, ...]:
    out: list[TopicPartition] = []
    for _ in range(r.count()):
        topic = r.required_string()
        for _ in range(r.count()):
            p = r.int32()
            if p < 0:
                raise ProtocolDecodeError(f"negative partition {p} for topic {topic!r}")
            out.append(TopicPartition(topic, p))
    return tuple(sorted(set(out)))


def encode_subscription(sub: MemberSubscription) -> bytes:
    w = Writer().int16(SUBSCRIPTION_VERSION)
    w.int32(len(sub.topics))
    for topic in sub.topics:
        w.string(topic)
    w.bytes_(sub.user_data)
    _write_partitions(w, sub.owned_partitions)
    w.int32(sub.generation)
    return w.done()


def decode_subscription(data: bytes) -> MemberSubscription:
    r = Reader(data)
    version = r.int16()
    if version < 0:
        raise ProtocolDecodeError(f"subscription version {version} is negative")
    topics = tuple(r.required_string() for _ in range(r.count()))
    user_data = r.bytes_()
    owned: tuple[TopicPartition, ...] = ()
    generation = UNKNOWN_GENERATION
    if version >= 1:
        owned = _read_partitions(r)
    if version >= 2:
        generation = r.int32()
    return MemberSubscription(tuple(sorted(set(topics))), owned, generation, user_data)


def encode_assignment(partitions: Iterable[TopicPartition], user_data: bytes | None = None) -> bytes:
    w = Writer().int16(ASSIGNMENT_VERSION)
    _write_partitions(w, partitions)
    w.bytes_(user_data)
    return w.done()


def decode_assignment(data: bytes) -> tuple[TopicPartition, ...]:
    """The partitions in an assignment; empty bytes (a member the leader left out) mean none."""
    if not data:
        return ()
    r = Reader(data)
    version = r.int16()
    if version < 0:
        raise ProtocolDecodeError(f"assignment version {version} is negative")
    partitions = _read_partitions(r)
    r.bytes_()
    return partitions
