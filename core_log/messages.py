"""The messages brokers, the controller and clients exchange over ``network.py``.

Each is a dataclass named after the Kafka API it stands for (Produce,
Fetch, Metadata, InitProducerId, AlterPartition, BrokerHeartbeat) and carries
the fields of that API the engine uses. Errors are Kafka's error names. Messages
are never changed once sent: most are frozen; the ones sent for every record
(Produce, Fetch and their responses, the ``Envelope``) are plain slotted
dataclasses only because a frozen one costs several times as much to build.

Differences from Kafka:

* A Produce or Fetch request names one partition (Kafka batches many per request).
* Controller → broker metadata travels as one ``PartitionUpdate`` per partition
  instead of a replicated metadata log (the controller quorum is assumed healthy).
* Followers learn of divergence from the ``diverging_epoch`` field of a Fetch
  response (KIP-320 style, as since Kafka 2.7), not from OffsetsForLeaderEpoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class TopicPartition(NamedTuple):
    """A topic and one of its partitions: the unit of ordering and replication."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


# Kafka's error names (the ones the engine produces).
NONE = "NONE"
NOT_LEADER_OR_FOLLOWER = "NOT_LEADER_OR_FOLLOWER"
NOT_ENOUGH_REPLICAS = "NOT_ENOUGH_REPLICAS"
NOT_ENOUGH_REPLICAS_AFTER_APPEND = "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
OUT_OF_ORDER_SEQUENCE_NUMBER = "OUT_OF_ORDER_SEQUENCE_NUMBER"
DUPLICATE_SEQUENCE_NUMBER = "DUPLICATE_SEQUENCE_NUMBER"
INVALID_PRODUCER_EPOCH = "INVALID_PRODUCER_EPOCH"
UNKNOWN_TOPIC_OR_PARTITION = "UNKNOWN_TOPIC_OR_PARTITION"
OFFSET_OUT_OF_RANGE = "OFFSET_OUT_OF_RANGE"
REQUEST_TIMED_OUT = "REQUEST_TIMED_OUT"
FENCED_LEADER_EPOCH = "FENCED_LEADER_EPOCH"
UNKNOWN_LEADER_EPOCH = "UNKNOWN_LEADER_EPOCH"
CORRUPT_MESSAGE = "CORRUPT_MESSAGE"
MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
INVALID_RECORD = "INVALID_RECORD"
KAFKA_STORAGE_ERROR = "KAFKA_STORAGE_ERROR"
NETWORK_EXCEPTION = "NETWORK_EXCEPTION"
INVALID_REQUEST = "INVALID_REQUEST"
INVALID_TOPIC_EXCEPTION = "INVALID_TOPIC_EXCEPTION"
# group coordination
COORDINATOR_NOT_AVAILABLE = "COORDINATOR_NOT_AVAILABLE"
NOT_COORDINATOR = "NOT_COORDINATOR"
COORDINATOR_LOAD_IN_PROGRESS = "COORDINATOR_LOAD_IN_PROGRESS"
ILLEGAL_GENERATION = "ILLEGAL_GENERATION"
UNKNOWN_MEMBER_ID = "UNKNOWN_MEMBER_ID"
MEMBER_ID_REQUIRED = "MEMBER_ID_REQUIRED"
REBALANCE_IN_PROGRESS = "REBALANCE_IN_PROGRESS"
INCONSISTENT_GROUP_PROTOCOL = "INCONSISTENT_GROUP_PROTOCOL"
INVALID_SESSION_TIMEOUT = "INVALID_SESSION_TIMEOUT"
FENCED_INSTANCE_ID = "FENCED_INSTANCE_ID"
GROUP_ID_NOT_FOUND = "GROUP_ID_NOT_FOUND"
NON_EMPTY_GROUP = "NON_EMPTY_GROUP"
INVALID_GROUP_ID = "INVALID_GROUP_ID"
OFFSET_METADATA_TOO_LARGE = "OFFSET_METADATA_TOO_LARGE"
INVALID_COMMIT_OFFSET_SIZE = "INVALID_COMMIT_OFFSET_SIZE"
GROUP_MAX_SIZE_REACHED = "GROUP_MAX_SIZE_REACHED"

# transactions
PRODUCER_FENCED = "PRODUCER_FENCED"
CONCURRENT_TRANSACTIONS = "CONCURRENT_TRANSACTIONS"
INVALID_TXN_STATE = "INVALID_TXN_STATE"
INVALID_PRODUCER_ID_MAPPING = "INVALID_PRODUCER_ID_MAPPING"
INVALID_TRANSACTION_TIMEOUT = "INVALID_TRANSACTION_TIMEOUT"
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"

UNSTABLE_OFFSET_COMMIT = "UNSTABLE_OFFSET_COMMIT"

#: Errors after which a group member looks for the coordinator again.
COORDINATOR_ERRORS = frozenset({COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
                                REQUEST_TIMED_OUT, NETWORK_EXCEPTION})

#: Errors after which a producer refreshes metadata before retrying.
METADATA_ERRORS = frozenset({NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH,
                             UNKNOWN_LEADER_EPOCH, NETWORK_EXCEPTION, REQUEST_TIMED_OUT})
#: Errors a producer may retry (Kafka's RetriableException family).
RETRIABLE_ERRORS = METADATA_ERRORS | {NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND, KAFKA_STORAGE_ERROR}


# ── controller ↔ broker ──────────────────────────────────────────────────────


@dataclass(frozen=True)
class BrokerHeartbeat:
    broker_id: int
    incarnation: int  # changes at every restart: the controller re-registers the broker


@dataclass(frozen=True)
class PartitionUpdate:
    """The controller's word on one partition: who leads, in which epoch, and the ISR."""

    tp: TopicPartition
    leader: int  # -1: offline, no leader
    leader_epoch: int
    isr: tuple[int, ...]
    replicas: tuple[int, ...]
    partition_epoch: int


@dataclass(frozen=True)
class StopReplicas:
    """The controller tells brokers a topic was deleted: drop its replicas and their files."""

    topic: str


@dataclass(frozen=True)
class AlterPartitionRequest:
    """A leader asks the controller to change the ISR (KIP-497)."""

    tp: TopicPartition
    leader_id: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True)
class AlterPartitionResponse:
    tp: TopicPartition
    error: str
    update: PartitionUpdate | None


# ── replication and consumption ──────────────────────────────────────────────


@dataclass(slots=True)
class FetchRequest:
    """A follower (``replica_id`` ≥ 0) or a consumer (``replica_id`` = -1) asks for records."""

    tp: TopicPartition
    replica_id: int
    fetch_offset: int
    last_fetched_epoch: int  # -1 when unknown; followers use it to detect divergence
    current_leader_epoch: int  # -1 when unknown
    max_bytes: int
    max_wait_ms: int
    correlation_id: int
    isolation_level: int = 0  # 0 read_uncommitted (up to the HW), 1 read_committed (up to the LSO)


@dataclass(slots=True)
class FetchResponse:
    tp: TopicPartition
    error: str
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    records: bytes
    correlation_id: int
    diverging_epoch: tuple[int, int] | None = None  # (epoch, end offset): truncate before fetching on
    last_stable_offset: int = -1
    aborted_transactions: tuple[tuple[int, int], ...] = ()  # (producer id, first offset), read_committed only


# ── clients ──────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class MetadataRequest:
    topics: tuple[str, ...]
    correlation_id: int


@dataclass(frozen=True)
class PartitionMetadata:
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class MetadataResponse:
    partitions: dict[TopicPartition, PartitionMetadata]
    num_partitions: dict[str, int]
    brokers: tuple[int, ...]
    correlation_id: int


@dataclass(slots=True)
class ProduceRequest:
    tp: TopicPartition
    acks: int  # 0, 1 or -1 (all)
    records: bytes
    timeout_ms: int
    correlation_id: int
    client_id: str = ""


@dataclass(slots=True)
class ProduceResponse:
    tp: TopicPartition
    error: str
    base_offset: int
    correlation_id: int
    log_start_offset: int = -1


@dataclass(frozen=True)
class InitProducerIdRequest:
    correlation_id: int
    transactional_id: str | None = None
    transaction_timeout_ms: int = 60_000


@dataclass(frozen=True)
class InitProducerIdResponse:
    error: str
    producer_id: int
    producer_epoch: int
    correlation_id: int


@dataclass(frozen=True)
class DeleteRecordsRequest:
    """Move a partition's log start offset up to ``offset`` (-1: the high watermark), as kafka-delete-records does."""

    tp: TopicPartition
    offset: int
    correlation_id: int


@dataclass(frozen=True)
class DeleteRecordsResponse:
    tp: TopicPartition
    error: str
    low_watermark: int  # the log start offset now, -1 on error
    correlation_id: int


# ── consumer groups (classic protocol) and offsets ──────────────────────────

EARLIEST_TIMESTAMP = -2  # ListOffsets: the log start offset
LATEST_TIMESTAMP = -1  # ListOffsets: the high watermark (what a read_uncommitted consumer can reach)


@dataclass(frozen=True)
class ListOffsetsRequest:
    """Ask a partition's leader for an offset: earliest, latest, or the first at/after a timestamp."""

    tp: TopicPartition
    timestamp_ms: int  # EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, or a time in ms
    correlation_id: int


@dataclass(frozen=True)
class ListOffsetsResponse:
    tp: TopicPartition
    error: str
    offset: int  # -1 when no record is that recent
    timestamp_ms: int
    correlation_id: int
    log_start_offset: int = -1
    high_watermark: int = -1



@dataclass(frozen=True)
class FindCoordinatorRequest:
    group_id: str  # the key: a group id, or a transactional id when key_type is 1
    correlation_id: int
    key_type: int = 0  # 0: consumer group, 1: transaction


@dataclass(frozen=True)
class FindCoordinatorResponse:
    error: str
    coordinator: int  # broker id, -1 when unknown
    correlation_id: int


@dataclass(frozen=True)
class JoinGroupRequest:
    """``protocols``: (assignor name, subscription bytes) in the member's order of preference."""

    group_id: str
    member_id: str  # "" for a new member (the coordinator answers MEMBER_ID_REQUIRED with one)
    group_instance_id: str | None
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    correlation_id: int


@dataclass(frozen=True)
class JoinGroupResponse:
    """The leader gets every member's (member id, instance id, chosen protocol's subscription bytes)."""

    error: str
    generation: int
    protocol: str | None
    leader: str
    member_id: str
    members: tuple[tuple[str, str | None, bytes], ...]
    correlation_id: int


@dataclass(frozen=True)
class SyncGroupRequest:
    group_id: str
    generation: int
    member_id: str
    group_instance_id: str | None
    assignments: tuple[tuple[str, bytes], ...]  # only the leader sends them
    correlation_id: int


@dataclass(frozen=True)
class SyncGroupResponse:
    error: str
    assignment: bytes
    correlation_id: int


@dataclass(frozen=True)
class HeartbeatRequest:
    group_id: str
    generation: int
    member_id: str
    group_instance_id: str | None
    correlation_id: int


@dataclass(frozen=True)
class HeartbeatResponse:
    error: str
    correlation_id: int


@dataclass(frozen=True)
class LeaveGroupRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    reason: str
    correlation_id: int


@dataclass(frozen=True)
class LeaveGroupResponse:
    error: str
    correlation_id: int


@dataclass(frozen=True)
class OffsetCommitRequest:
    """``generation`` -1 and ``member_id`` "" commit for an empty group (admin tools, assign-mode clients)."""

    group_id: str
    generation: int
    member_id: str
    group_instance_id: str | None
    offsets: tuple[tuple[TopicPartition, int, int, str], ...]  # (tp, offset, leader epoch, metadata)
    correlation_id: int


@dataclass(frozen=True)
class OffsetCommitResponse:
    errors: tuple[tuple[TopicPartition, str], ...]
    correlation_id: int


@dataclass(frozen=True)
class OffsetFetchRequest:
    group_id: str
    partitions: tuple[TopicPartition, ...] | None  # None: every partition the group committed
    correlation_id: int
    require_stable: bool = False  # KIP-447: UNSTABLE_OFFSET_COMMIT while a transaction's offsets are pending


@dataclass(frozen=True)
class OffsetFetchResponse:
    error: str
    offsets: tuple[tuple[TopicPartition, int, str], ...]  # (tp, committed offset or -1, metadata)
    correlation_id: int


@dataclass(frozen=True)
class DescribeGroupRequest:
    group_id: str
    correlation_id: int


@dataclass(frozen=True)
class DescribeGroupResponse:
    error: str
    group: dict  # state, generation, protocol, leader, members (JSON-shaped)
    correlation_id: int


# ── transactions ─────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class AddPartitionsToTxnRequest:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    partitions: tuple[TopicPartition, ...]
    correlation_id: int


@dataclass(frozen=True)
class AddPartitionsToTxnResponse:
    errors: tuple[tuple[TopicPartition, str], ...]
    correlation_id: int


@dataclass(frozen=True)
class AddOffsetsToTxnRequest:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group_id: str
    correlation_id: int


@dataclass(frozen=True)
class AddOffsetsToTxnResponse:
    error: str
    correlation_id: int


@dataclass(frozen=True)
class EndTxnRequest:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    correlation_id: int


@dataclass(frozen=True)
class EndTxnResponse:
    error: str
    correlation_id: int


@dataclass(frozen=True)
class WriteTxnMarkersRequest:
    """The transaction coordinator asks a partition leader to append COMMIT/ABORT markers."""

    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: tuple[TopicPartition, ...]
    correlation_id: int


@dataclass(frozen=True)
class WriteTxnMarkersResponse:
    producer_id: int
    errors: tuple[tuple[TopicPartition, str], ...]
    correlation_id: int


@dataclass(frozen=True)
class TxnOffsetCommitRequest:
    """Offsets committed inside a transaction: visible to the group only once the transaction commits."""

    transactional_id: str
    group_id: str
    producer_id: int
    producer_epoch: int
    generation: int
    member_id: str
    offsets: tuple[tuple[TopicPartition, int], ...]
    correlation_id: int


@dataclass(frozen=True)
class TxnOffsetCommitResponse:
    errors: tuple[tuple[TopicPartition, str], ...]
    correlation_id: int


@dataclass(slots=True)
class Envelope:
    """What travels on a link: a message plus where it came from and which process incarnations it binds."""

    src: str
    dst: str
    message: object
    src_incarnation: int
    dst_incarnation: int
    sent_ms: int
    deliver_ms: int
