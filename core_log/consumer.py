"""``Consumer``: Kafka's consumer — assign mode, or a member of a consumer group.

Two positions matter per partition, as in Kafka:

* the **fetch position** — the next offset to ask the leader for;
* the **position** — the offset of the next record ``poll()`` will hand to the
  application. Records fetched but not yet polled wait in a per-partition
  buffer; a partition with buffered records is not fetched again.

The leader only hands out records below the high watermark, so a consumer never
sees a record that a leader failover could take back. When a position falls
outside the log (retention deleted it, or it is past the end after a
truncation) the leader answers ``OFFSET_OUT_OF_RANGE`` and the consumer applies
``auto_offset_reset`` (``earliest``, ``latest`` or ``none``), with an event that
says how many offsets it skipped or will re-read.

**Groups** (``group_id`` set, then :meth:`Consumer.subscribe`): the consumer
finds its group coordinator (FindCoordinator), joins (JoinGroup — the first
time the coordinator hands it a member id, KIP-394), and, if it was chosen as
the group's leader, runs the assignor named by the coordinator over every
member's subscription and sends the result in SyncGroup. It heartbeats every
``heartbeat_interval_ms``; a heartbeat answered ``REBALANCE_IN_PROGRESS`` makes
it rejoin. Newly assigned partitions start at the group's committed offset
(OffsetFetch), or per ``auto_offset_reset`` if the group never committed one.

* **Eager** strategies (``range``, ``roundrobin``, ``sticky``): before rejoining,
  the member commits (if auto-commit is on) and gives up *all* its partitions.
* **Cooperative** (``cooperative-sticky``, used when every configured strategy
  is cooperative): the member keeps its partitions while rejoining; the
  assignment then revokes only those that move, and the member rejoins once
  more so they can be handed on (KIP-429).

**Offsets**: :meth:`commit_sync` / :meth:`commit_async` commit the current
positions (the offset of the next record to process — last processed + 1).
With ``enable_auto_commit`` (Kafka's default), every ``poll()`` at least
``auto_commit_interval_ms`` after the last auto-commit first commits the
positions as they were *before* this poll, i.e. what the previous poll
returned — so a record is committed only after the application had it, and a
crash replays whatever the application had not finished (at-least-once).

**Liveness**: if the application does not call ``poll()`` for
``max_poll_interval_ms`` the consumer leaves the group (a static member just
stops heartbeating) and rejoins at its next poll.

With ``auto_poll=True`` (the default) the consumer plays its own application:
every fetched record is polled at once and handed to ``on_records``. Lab
workloads that model a processing speed set ``auto_poll=False`` and call
:meth:`poll` themselves.

Every ``poll()`` that returns records is one ``poll`` op in the cluster's
history; every change of assignment is an ``assign`` op naming the partitions
(re)positioned; a crash is a ``crash`` op.

Differences from Kafka: one fetch in flight per partition, each answered
separately; commits before an eager rebalance are sent but not awaited (the
coordinator handles them in order, before the JoinGroup); the consumer ignores
new partitions of subscribed topics until the next rebalance (no metadata-change
trigger); no pattern subscriptions; no read_committed yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from core_log.assignors import ASSIGNORS, COOPERATIVE, AssignorError, Subscription, assign
from core_log.consumer_protocol import (
    MemberSubscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from core_log.errors import ConfigError, CorruptRecordError, require_int
from core_log.future import ClientFuture
from core_log.history import value_text
from core_log.kafka_types import ProtocolDecodeError
from core_log.messages import (
    COORDINATOR_ERRORS,
    COORDINATOR_NOT_AVAILABLE,
    FENCED_INSTANCE_ID,
    ILLEGAL_GENERATION,
    MEMBER_ID_REQUIRED,
    METADATA_ERRORS,
    NONE,
    OFFSET_OUT_OF_RANGE,
    REBALANCE_IN_PROGRESS,
    REQUEST_TIMED_OUT,
    UNKNOWN_MEMBER_ID,
    Envelope,
    FetchRequest,
    FetchResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    MetadataRequest,
    MetadataResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    PartitionMetadata,
    SyncGroupRequest,
    SyncGroupResponse,
    TopicPartition,
)
from core_log.records import ControlType, Record, iter_batches, parse_control_record

if TYPE_CHECKING:
    from core_log.cluster import Cluster

MAX_ASSIGNED_PARTITIONS = 64 * 100
MAX_SUBSCRIBED_TOPICS = 100
OffsetMap = dict[TopicPartition, int]


@dataclass(frozen=True)
class ConsumerConfig:
    """Kafka's consumer settings (snake_case of the dotted names) and defaults."""

    auto_offset_reset: str = "latest"
    fetch_max_bytes: int = 1024 * 1024
    fetch_max_wait_ms: int = 500
    request_timeout_ms: int = 30_000
    retry_backoff_ms: int = 100
    poll_interval_ms: int = 100  # how often the consumer's own loop runs (fetches, auto-poll)
    group_id: str | None = None
    group_instance_id: str | None = None
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300_000
    max_poll_records: int = 500
    enable_auto_commit: bool = True
    auto_commit_interval_ms: int = 5000
    partition_assignment_strategy: tuple[str, ...] = ("range", "cooperative-sticky")
    isolation_level: str = "read_uncommitted"
    metadata_max_age_ms: int = 300_000

    def __post_init__(self) -> None:
        if self.isolation_level not in ("read_uncommitted", "read_committed"):
            raise ConfigError(f"isolation_level must be read_uncommitted or read_committed, "
                              f"got {self.isolation_level!r}")
        if self.auto_offset_reset not in ("earliest", "latest", "none"):
            raise ConfigError(f"auto_offset_reset must be earliest, latest or none, got {self.auto_offset_reset!r}")
        for name, low, high in (("fetch_max_bytes", 1, 64 * 1024 * 1024), ("fetch_max_wait_ms", 0, 60_000),
                                ("request_timeout_ms", 1, 3_600_000), ("retry_backoff_ms", 0, 60_000),
                                ("poll_interval_ms", 1, 60_000), ("session_timeout_ms", 1, 3_600_000),
                                ("heartbeat_interval_ms", 1, 3_600_000), ("max_poll_interval_ms", 1, 86_400_000),
                                ("max_poll_records", 1, 100_000), ("auto_commit_interval_ms", 1, 86_400_000),
                                ("metadata_max_age_ms", 1, 86_400_000)):
            require_int(name, getattr(self, name), low, high)
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConfigError("heartbeat_interval_ms must be lower than session_timeout_ms (Kafka: at most a third)")
        for name in ("group_id", "group_instance_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value or len(value) > 255):
                raise ConfigError(f"{name} must be None or 1–255 characters, got {value!r}")
        if self.group_instance_id is not None and self.group_id is None:
            raise ConfigError("group_instance_id needs a group_id")
        if not isinstance(self.enable_auto_commit, bool):
            raise ConfigError(f"enable_auto_commit must be true or false, got {self.enable_auto_commit!r}")
        strategies = self.partition_assignment_strategy
        if isinstance(strategies, str) or not isinstance(strategies, (tuple, list)) or not strategies:
            raise ConfigError("partition_assignment_strategy must be a non-empty list of strategy names")
        for s in strategies:
            if s not in ASSIGNORS:
                raise ConfigError(f"unknown assignment strategy {s!r}; known: {', '.join(ASSIGNORS)}")
        if len(set(strategies)) != len(strategies):
            raise ConfigError("partition_assignment_strategy lists a strategy twice")
        object.__setattr__(self, "partition_assignment_strategy", tuple(strategies))

    @property
    def cooperative(self) -> bool:
        """Kafka's rule: the cooperative protocol only if every configured assignor supports it."""
        return all(ASSIGNORS[s].protocol == COOPERATIVE for s in self.partition_assignment_strategy)


class CommitFuture(ClientFuture):
    """The outcome of one commit: pending, then ok or failed with a Kafka error name."""

    __slots__ = ("offsets",)

    def __init__(self, offsets: OffsetMap) -> None:
        super().__init__()
        self.offsets = dict(offsets)

    def _complete(self, error: str | None) -> None:
        self._finish(error=error)


@dataclass
class _GroupState:
    topics: tuple[str, ...] = ()
    coordinator: int | None = None
    lost_coordinator: int | None = None  # the coordinator we last announced as lost (no repeats)
    finding: bool = False
    member_id: str = ""
    generation: int = -1
    protocol: str | None = None
    phase: str = "unjoined"  # unjoined, joining, syncing, stable
    rejoin_needed: bool = True
    request: int = 0  # correlation of the join/sync in flight
    heartbeat_in_flight: int = 0
    left_for_poll_timeout: bool = False
    fatal: str | None = None
    owned_generation: int = -1
    revocations: int = 0  # partitions given up over the consumer's life (eager or cooperative)
    rebalances: int = 0
    on_assigned: Callable[[tuple[TopicPartition, ...]], None] | None = None
    on_revoked: Callable[[tuple[TopicPartition, ...]], None] | None = None
    on_lost: Callable[[tuple[TopicPartition, ...]], None] | None = None
    awaiting_position: set[TopicPartition] = field(default_factory=set)


class Consumer:
    """A Kafka consumer. Use :meth:`assign` (no group) or :meth:`subscribe` (with ``group_id``)."""

    def __init__(self, cluster: "Cluster", client_id: str, config: ConsumerConfig | None = None,
                 on_records: Callable[[TopicPartition, list[Record]], None] | None = None,
                 record_history: bool = True, auto_poll: bool = True) -> None:
        self.cluster = cluster
        self.node_id = client_id
        self.config = config or ConsumerConfig()
        self.alive = True
        self.incarnation = 1
        self.on_records = on_records
        self.record_history = record_history
        self.auto_poll = auto_poll
        self.positions: dict[TopicPartition, int | None] = {}
        self.fetch_positions: dict[TopicPartition, int | None] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.metadata: dict[TopicPartition, PartitionMetadata] = {}
        self.partition_counts: dict[str, int] = {}
        self._metadata_at_ms = -1
        self.high_watermarks: dict[TopicPartition, int] = {}
        self.log_end_offsets: dict[TopicPartition, int] = {}
        self._buffers: dict[TopicPartition, list[Record]] = {}
        self._in_flight: dict[TopicPartition, int] = {}
        # correlation → (handler, what to do if no answer comes, the broker asked)
        self._pending: dict[int, tuple[Callable[[Any], None], Callable[[], None] | None, str]] = {}
        self._fetch_broker: dict[TopicPartition, str] = {}
        self._correlation = 0
        self._metadata_pending = False
        self._rotation = 0
        self.records_consumed = 0
        self.stopped = False
        self.last_poll_ms = cluster.now_ms()
        self._next_auto_commit_ms = cluster.now_ms() + self.config.auto_commit_interval_ms
        self.group: _GroupState | None = _GroupState() if self.config.group_id else None
        self._manual: tuple[TopicPartition, ...] = ()  # assign() mode: the partitions assigned
        cluster.register_client(self)
        self._start()

    def _start(self) -> None:
        self._refresh_metadata()
        incarnation = self.incarnation

        def tick() -> None:
            if self.alive and self.incarnation == incarnation:
                self._tick()
                self.cluster.schedule(self.config.poll_interval_ms, tick)

        def heartbeat() -> None:
            if self.alive and self.incarnation == incarnation:
                self._heartbeat()
                self.cluster.schedule(self.config.heartbeat_interval_ms, heartbeat)

        tick()
        self.cluster.schedule(self.config.heartbeat_interval_ms, heartbeat)

    # ── public API: assign mode ──────────────────────────────────────────────
    def assign(self, partitions: list[TopicPartition], *, from_beginning: bool | None = None) -> None:
        """Read exactly these partitions; each starts per ``auto_offset_reset`` unless told otherwise."""
        if self.group is not None and self.group.topics:
            raise ValueError(f"{self.node_id} is subscribed to a group; a consumer uses assign() or subscribe()")
        if len(partitions) > MAX_ASSIGNED_PARTITIONS:
            raise ValueError(f"at most {MAX_ASSIGNED_PARTITIONS} partitions per consumer")
        for tp in partitions:
            if tp.topic not in self.cluster.topics or not 0 <= tp.partition < self.cluster.topics[tp.topic].partitions:
                raise ValueError(f"unknown partition {tp}")
        start = 0 if from_beginning else None
        self.positions = {tp: start for tp in partitions}
        self.fetch_positions = dict(self.positions)
        self._buffers.clear()
        self._in_flight.clear()
        self._manual = tuple(partitions)
        self._record_assign(tuple(partitions))
        if self.group is not None and from_beginning is None:  # with a group id, start at its committed offsets
            self.group.awaiting_position.update(partitions)
            self._fetch_committed(tuple(partitions))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Move the position: the next poll returns the record at ``offset`` (or the next existing one)."""
        if tp not in self.positions:
            raise ValueError(f"{tp} is not assigned to {self.node_id}")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError("offset must be a whole number >= 0")
        self.positions[tp] = self.fetch_positions[tp] = offset
        self._buffers.pop(tp, None)
        self._in_flight.pop(tp, None)
        self._record_assign((tp,))

    def seek_to_committed(self, partitions: tuple[TopicPartition, ...] | None = None) -> None:
        """Forget what was fetched and polled since the last commit: continue at the group's committed offsets.

        What an application does after aborting a transaction, so the aborted
        round's input is processed again.
        """
        if self.group is None:
            raise ValueError(f"{self.node_id} has no group_id: there are no committed offsets to go back to")
        targets = tuple(sorted(partitions if partitions is not None else self.positions))
        for tp in targets:
            if tp not in self.positions:
                raise ValueError(f"{tp} is not assigned to {self.node_id}")
            self.positions[tp] = self.fetch_positions[tp] = None
            self._buffers.pop(tp, None)
            self._in_flight.pop(tp, None)
            self.group.awaiting_position.add(tp)
        if targets:
            self._fetch_committed(targets)
            self._record_assign(targets)

    # ── public API: groups ───────────────────────────────────────────────────
    def subscribe(self, topics: list[str], *,
                  on_assigned: Callable[[tuple[TopicPartition, ...]], None] | None = None,
                  on_revoked: Callable[[tuple[TopicPartition, ...]], None] | None = None,
                  on_lost: Callable[[tuple[TopicPartition, ...]], None] | None = None) -> None:
        """Join ``config.group_id`` for these topics; the group decides which partitions this member reads.

        ``on_revoked`` runs before partitions are given up (commit what you processed
        there); ``on_lost`` when they were taken away without a chance to commit
        (the member was fenced or timed out); ``on_assigned`` after new ones arrive.
        """
        if self.config.group_id is None:
            raise ValueError(f"{self.node_id} has no group_id: set ConsumerConfig(group_id=...) to subscribe")
        if isinstance(topics, str) or not topics or len(topics) > MAX_SUBSCRIBED_TOPICS:
            raise ValueError(f"subscribe to 1–{MAX_SUBSCRIBED_TOPICS} topics (a list of names)")
        for t in topics:
            if t not in self.cluster.topics:
                raise ValueError(f"unknown topic {t!r}")
        if self.group is None or self._manual:
            raise ValueError(f"{self.node_id} has assigned partitions; a consumer uses assign() or subscribe()")
        g = self.group
        g.topics = tuple(sorted(set(topics)))
        g.on_assigned, g.on_revoked, g.on_lost = on_assigned, on_revoked, on_lost
        g.rejoin_needed = True
        self._refresh_metadata()
        self._group_step()

    @property
    def assignment(self) -> tuple[TopicPartition, ...]:
        return tuple(sorted(self.positions))

    def commit_async(self, offsets: OffsetMap | None = None,
                     callback: Callable[[CommitFuture], None] | None = None) -> CommitFuture:
        """Commit ``offsets`` (default: every current position) without retrying; the future tells how it went."""
        future = CommitFuture(self._offsets_to_commit(offsets))
        if callback is not None:
            future.add_callback(callback)
        self._send_commit(future, retries_left=0)
        return future

    def commit_sync(self, offsets: OffsetMap | None = None) -> CommitFuture:
        """Commit and retry retriable errors (coordinator moved, timeouts) until ``request_timeout_ms`` passes.

        In simulated time nothing blocks: the caller waits for the future, as a
        real application waits inside ``commitSync()``.
        """
        future = CommitFuture(self._offsets_to_commit(offsets))
        deadline = self.cluster.now_ms() + self.config.request_timeout_ms
        self._send_commit(future, retries_left=-1, deadline_ms=deadline)
        return future

    def poll(self, max_records: int | None = None) -> list[tuple[TopicPartition, Record]]:
        """Hand the application up to ``max_records`` (default ``max_poll_records``) buffered records."""
        return [(tp, rec) for tp, records in self.poll_by_partition(max_records).items() for rec in records]

    def poll_by_partition(self, max_records: int | None = None) -> dict[TopicPartition, list[Record]]:
        """:meth:`poll`, grouped by partition (Kafka's ``ConsumerRecords.records(partition)``)."""
        if not self.alive:
            raise ValueError(f"{self.node_id} has crashed; restart() it first")
        now = self.cluster.now_ms()
        self.last_poll_ms = now
        g = self.group
        if g is not None and g.left_for_poll_timeout:
            g.left_for_poll_timeout = False
            g.rejoin_needed = True
            self._group_step()
        if (g is not None and self.config.enable_auto_commit and g.phase == "stable"
                and now >= self._next_auto_commit_ms):
            self._next_auto_commit_ms = now + self.config.auto_commit_interval_ms
            if any(p is not None for p in self.positions.values()):
                self.commit_async()  # the positions before this poll: what the previous poll returned
        limit = self.config.max_poll_records if max_records is None else max_records
        require_int("max_records", limit, 1, 100_000)
        out: dict[TopicPartition, list[Record]] = {}
        count = 0
        order = sorted(tp for tp, buf in self._buffers.items() if buf)
        if order:
            self._rotation = (self._rotation + 1) % len(order)
            order = order[self._rotation:] + order[:self._rotation]
        for tp in order:
            buf = self._buffers[tp]
            room = limit - count
            if room <= 0:
                break
            if len(buf) <= room:  # the whole buffer goes: no copy
                take, self._buffers[tp] = buf, []
            else:
                take = buf[:room]
                del buf[:room]
            out[tp] = take
            count += len(take)
            self.positions[tp] = take[-1].offset + 1
            if not self._buffers[tp]:
                self.positions[tp] = self.fetch_positions.get(tp, self.positions[tp])
        if count:
            self.records_consumed += count
            if self.record_history:
                op = self.cluster.history_invoke(self.node_id, "poll", None)
                self.cluster.history_complete(op, "ok", {str(tp): tuple((r.offset, value_text(r.value)) for r in rs)
                                                         for tp, rs in out.items()})
        return out

    def stop(self) -> None:
        """Stop fetching (the consumer stays in its group and keeps heartbeating)."""
        self.stopped = True

    def close(self) -> None:
        """Shut down cleanly: commit (if auto-commit), leave the group (dynamic members), stop."""
        g = self.group
        if g is not None and g.phase == "stable" and g.coordinator is not None:
            if self.config.enable_auto_commit and self.positions:
                self.commit_async()
            if self.config.group_instance_id is None:
                self._send_group(LeaveGroupRequest(self.config.group_id or "", g.member_id, None,
                                                   "the consumer is being closed", self._next_correlation()),
                                 lambda resp: None)
        self.stopped = True
        self.alive = False
        self.cluster.events.emit(self.cluster.now_ms(), "ConsumerClosed",
                                 f"{self.node_id} closed cleanly"
                                 + (" and left its group, which rebalances at once." if g else "."),
                                 client=self.node_id)

    def crash(self) -> None:
        """The consumer process dies: no commit, no LeaveGroup — the group notices after session.timeout.ms."""
        if not self.alive:
            raise ValueError(f"{self.node_id} is already down")
        self.alive = False
        self.incarnation += 1
        if self.record_history:
            op = self.cluster.history_invoke(self.node_id, "crash", None)
            self.cluster.history_complete(op, "info", None)
        self._forget_partitions()
        self.cluster.events.emit(self.cluster.now_ms(), "ConsumerCrashed",
                                 f"{self.node_id} crashed: everything it fetched but did not commit will be read "
                                 f"again by whoever takes its partitions"
                                 + (f" after session.timeout.ms={self.config.session_timeout_ms}."
                                    if self.group else "."), client=self.node_id)

    def restart(self) -> None:
        """Start again after a crash: a new process (a static member keeps its ``group.instance.id``)."""
        if self.alive:
            raise ValueError(f"{self.node_id} is running")
        self.alive = True
        self.incarnation += 1
        self.stopped = False
        self._pending.clear()
        self._metadata_pending = False
        self.last_poll_ms = self.cluster.now_ms()
        if self.group is not None:
            topics, cbs = self.group.topics, (self.group.on_assigned, self.group.on_revoked, self.group.on_lost)
            self.group = _GroupState(topics=topics)
            self.group.on_assigned, self.group.on_revoked, self.group.on_lost = cbs
        self._start()
        if self._manual:
            self.assign(list(self._manual))
        self.cluster.events.emit(self.cluster.now_ms(), "ConsumerRestarted",
                                 f"{self.node_id} restarted"
                                 + (" and rejoins its group; it resumes from the group's committed offsets."
                                    if self.group else "."), client=self.node_id)

    def lag(self, tp: TopicPartition) -> int | None:
        pos, hw = self.positions.get(tp), self.high_watermarks.get(tp)
        return None if pos is None or hw is None else max(0, hw - pos)

    def caught_up(self) -> bool:
        """True when every assigned partition's position has reached the latest known HW."""
        return all(self.positions.get(tp) is not None and self.high_watermarks.get(tp) is not None
                   and self.positions[tp] >= self.high_watermarks[tp] for tp in self.positions)

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "client_id": self.node_id,
            "alive": self.alive,
            "auto_offset_reset": self.config.auto_offset_reset,
            "records_consumed": self.records_consumed,
            "positions": {str(tp): pos for tp, pos in sorted(self.positions.items())},
            "committed": {str(tp): off for tp, off in sorted(self.committed.items())},
            "lag": {str(tp): self.lag(tp) for tp in sorted(self.positions)},
        }
        g = self.group
        if g is not None and g.topics:
            out["group"] = {"group_id": self.config.group_id, "member_id": g.member_id,
                            "generation": g.generation, "phase": g.phase, "protocol": g.protocol,
                            "coordinator": g.coordinator, "idle": g.phase == "stable" and not self.positions,
                            "revocations": g.revocations, "rebalances": g.rebalances, "fatal": g.fatal}
        return out

    @property
    def read_committed(self) -> bool:
        return self.config.isolation_level == "read_committed"

    # ── the loop ─────────────────────────────────────────────────────────────
    def _tick(self) -> None:
        if 0 <= self._metadata_at_ms <= self.cluster.now_ms() - self.config.metadata_max_age_ms:
            self._refresh_metadata()  # metadata.max.age.ms
        if self.group is not None and self.group.topics:
            self._group_step()
            self._check_poll_interval()
        if not self.stopped:
            awaiting = self.group.awaiting_position if self.group else set()
            for tp in sorted(self.positions):
                if tp not in self._in_flight and not self._buffers.get(tp) and tp not in awaiting:
                    self._fetch(tp)

    def _next_correlation(self) -> int:
        self._correlation += 1
        return self._correlation

    def _fetch(self, tp: TopicPartition) -> None:
        meta = self.metadata.get(tp)
        if meta is None or meta.leader < 0:
            self._refresh_metadata()
            return
        position = self.fetch_positions.get(tp)
        if position is None:
            position = 0 if self.config.auto_offset_reset == "earliest" else -1
        correlation = self._next_correlation()
        self._in_flight[tp] = correlation
        self._fetch_broker[tp] = f"broker-{meta.leader}"
        self.cluster.send(self, f"broker-{meta.leader}", FetchRequest(
            tp, -1, max(position, 0), -1, meta.leader_epoch, self.config.fetch_max_bytes,
            self.config.fetch_max_wait_ms, correlation, 1 if self.read_committed else 0))
        incarnation = self.incarnation

        def timeout() -> None:
            if self.incarnation == incarnation and self._in_flight.get(tp) == correlation:
                del self._in_flight[tp]
                self._refresh_metadata()

        self.cluster.schedule(self.config.request_timeout_ms, timeout)

    def receive(self, envelope: Envelope) -> None:
        msg = envelope.message
        if isinstance(msg, FetchResponse):
            self._on_fetch_response(msg)
        elif isinstance(msg, MetadataResponse):
            self._metadata_pending = False
            self.metadata = dict(msg.partitions)
            self._metadata_at_ms = self.cluster.now_ms()
            g = self.group
            if g is not None and g.topics and g.phase == "stable" and any(
                    t in self.partition_counts and msg.num_partitions.get(t) != self.partition_counts[t]
                    for t in g.topics):
                g.rejoin_needed = True  # a subscribed topic gained partitions: the group must reassign
                self.cluster.events.emit(self.cluster.now_ms(), "PartitionCountChanged",
                                         f"{self.node_id} sees a new partition count for "
                                         f"{', '.join(g.topics)}; it rejoins so the group can assign them.",
                                         client=self.node_id)
            self.partition_counts = dict(msg.num_partitions)
        else:
            correlation = getattr(msg, "correlation_id", None)
            pending = self._pending.pop(correlation, None) if correlation is not None else None
            if pending is not None:
                pending[0](msg)

    def connection_reset(self, node_id: str) -> None:
        """A broker died while we had requests with it: they fail now, as on a TCP reset."""
        for tp in sorted(tp for tp in self._in_flight if self._fetch_broker.get(tp) == node_id):
            del self._in_flight[tp]
            self._refresh_metadata()
        for correlation in sorted(c for c, p in self._pending.items() if p[2] == node_id):
            _, on_timeout, _ = self._pending.pop(correlation)
            if self.group is not None and self.group.coordinator is not None \
                    and node_id == f"broker-{self.group.coordinator}":
                self._coordinator_dead("its connection was reset")
            elif self.group is not None:
                self.group.finding = False
            if on_timeout is not None:
                on_timeout()

    def connection_refused(self, envelope: Envelope) -> None:
        """The broker we sent to is not running (the network tells us at once, as a TCP reset would)."""
        correlation = getattr(envelope.message, "correlation_id", None)
        if isinstance(envelope.message, FetchRequest):
            if self._in_flight.get(envelope.message.tp) == correlation:
                del self._in_flight[envelope.message.tp]
                self._refresh_metadata()
            return
        pending = self._pending.pop(correlation, None) if correlation is not None else None
        if pending is None:
            return
        if isinstance(envelope.message, FindCoordinatorRequest):
            if self.group is not None:
                self.group.finding = False
            return
        self._coordinator_dead(f"connection to {envelope.dst} refused")
        if pending[1] is not None:
            pending[1]()

    def _on_fetch_response(self, resp: FetchResponse) -> None:
        tp = resp.tp
        if self._in_flight.get(tp) != resp.correlation_id:
            return
        del self._in_flight[tp]
        if tp not in self.positions:
            return
        if resp.error != NONE:
            if resp.error == OFFSET_OUT_OF_RANGE:
                self._reset_position(tp, resp)
            elif resp.error in METADATA_ERRORS:
                self._refresh_metadata()
            return
        # A read_committed consumer can reach the last stable offset; that is its end of the log.
        visible_end = resp.last_stable_offset if self.read_committed else resp.high_watermark
        self.high_watermarks[tp] = visible_end
        self.log_end_offsets[tp] = resp.log_end_offset
        position = self.fetch_positions.get(tp)
        if position is None:  # first fetch with no committed offset: start per auto_offset_reset
            position = 0 if self.config.auto_offset_reset == "earliest" else visible_end
            self.positions[tp] = position
        records: list[Record] = []
        # Kafka's read_committed filter: a producer's transactional batches are dropped from the first
        # offset of one of its aborted transactions until that transaction's ABORT marker.
        aborted = sorted(resp.aborted_transactions, key=lambda a: a[1])
        aborting: set[int] = set()
        try:
            for batch in iter_batches(resp.records):
                while aborted and aborted[0][1] <= batch.last_offset:
                    aborting.add(aborted.pop(0)[0])
                if batch.is_control:
                    if batch.producer_id in aborting:
                        controls = batch.records()
                        if controls and parse_control_record(controls[0])[0] == ControlType.ABORT:
                            aborting.discard(batch.producer_id)
                elif not (self.read_committed and batch.is_transactional and batch.producer_id in aborting):
                    decoded = batch.records()
                    if decoded and decoded[0].offset >= position:
                        records.extend(decoded)
                    else:  # the batch starts before our position (we asked from its middle)
                        records.extend(rec for rec in decoded if rec.offset >= position)
                position = max(position, batch.next_offset)
        except CorruptRecordError:
            return
        self.fetch_positions[tp] = position
        if records:
            self._buffers.setdefault(tp, []).extend(records)
        elif not self._buffers.get(tp):
            self.positions[tp] = position  # only control records or compacted gaps: move past them
        if self.auto_poll and records:
            polled = self.poll_by_partition(max_records=100_000)
            if self.on_records is not None:
                for ptp in sorted(polled):
                    self.on_records(ptp, polled[ptp])

    def _reset_position(self, tp: TopicPartition, resp: FetchResponse) -> None:
        old = self.positions.get(tp)
        policy = self.config.auto_offset_reset
        self._buffers.pop(tp, None)
        if policy == "none":
            self.cluster.events.emit(self.cluster.now_ms(), "OffsetOutOfRange",
                                     f"{self.node_id}'s position {old} on {tp} is outside the log "
                                     f"[{resp.log_start_offset}, {resp.log_end_offset}] and auto.offset.reset=none: "
                                     f"it stops reading {tp}.", client=self.node_id, partition=str(tp))
            self.positions.pop(tp, None)
            self.fetch_positions.pop(tp, None)
            return
        new = resp.log_start_offset if policy == "earliest" else resp.high_watermark
        self.positions[tp] = self.fetch_positions[tp] = new
        skipped = max(0, new - old) if old is not None else 0
        if old is not None and new > old:
            how = f"skips {new - old} offsets"
            if resp.log_start_offset > old:
                how += f" ({resp.log_start_offset - old} deleted by retention before it read them)"
        elif old is not None:
            how = f"moves back {old - new} offsets and will read them again"
        else:
            how = "starts"
        self._record_assign((tp,))
        self.cluster.events.emit(self.cluster.now_ms(), "OffsetOutOfRange",
                                 f"{self.node_id}'s position {old} on {tp} is outside the log "
                                 f"[{resp.log_start_offset}, {resp.log_end_offset}]; auto.offset.reset={policy}: "
                                 f"it {how} and continues at offset {new}.", client=self.node_id,
                                 partition=str(tp), skipped=skipped, old_position=old, new_position=new)

    def _refresh_metadata(self) -> None:
        if self._metadata_pending or not self.alive:
            return
        self._metadata_pending = True
        live = self.cluster.controller.live_brokers() or tuple(sorted(self.cluster.brokers))
        correlation = self._next_correlation()
        self.cluster.send(self, f"broker-{live[correlation % len(live)]}", MetadataRequest((), correlation))
        incarnation = self.incarnation

        def retry() -> None:
            if self.incarnation == incarnation and self._metadata_pending:
                self._metadata_pending = False
                self._refresh_metadata()

        self.cluster.schedule(1000, retry)

    def _record_assign(self, partitions: tuple[TopicPartition, ...]) -> None:
        if self.record_history and partitions:
            names = tuple(sorted(str(tp) for tp in partitions))
            op = self.cluster.history_invoke(self.node_id, "assign", names)
            self.cluster.history_complete(op, "ok", names)

    # ── group membership ─────────────────────────────────────────────────────
    def _send_group(self, message: Any, handler: Callable[[Any], None],
                    on_timeout: Callable[[], None] | None = None) -> None:
        """Send to the coordinator and route its answer (by correlation id) to ``handler``."""
        g = self.group
        assert g is not None
        correlation = message.correlation_id
        if g.coordinator is None:
            if on_timeout is not None:
                on_timeout()
            return
        self._pending[correlation] = (handler, on_timeout, f"broker-{g.coordinator}")
        self.cluster.send(self, f"broker-{g.coordinator}", message)
        incarnation = self.incarnation

        def timeout() -> None:
            if self.incarnation == incarnation and self._pending.pop(correlation, None) is not None:
                self._coordinator_dead("a request timed out")
                if on_timeout is not None:
                    on_timeout()

        self.cluster.schedule(self.config.request_timeout_ms, timeout)

    def _coordinator_dead(self, why: str) -> None:
        g = self.group
        if g is None or g.coordinator is None:
            return
        if g.lost_coordinator != g.coordinator:
            self.cluster.events.emit(self.cluster.now_ms(), "CoordinatorLost",
                                     f"{self.node_id} lost its group coordinator (broker {g.coordinator}: {why}); "
                                     f"it looks the coordinator up again.", client=self.node_id)
        g.lost_coordinator = g.coordinator
        g.coordinator = None
        if g.phase in ("joining", "syncing"):
            g.phase = "unjoined"
            g.rejoin_needed = True

    def _group_step(self) -> None:
        """Move the membership forward: find the coordinator, then (re)join when needed."""
        g = self.group
        if g is None or not self.alive or g.fatal:
            return
        if g.coordinator is None:
            if g.topics:
                self._find_coordinator()
            return
        if g.topics and g.rejoin_needed and g.phase in ("unjoined", "stable") and not g.left_for_poll_timeout:
            self._join()

    def _find_coordinator(self) -> None:
        g = self.group
        assert g is not None
        if g.finding:
            return
        g.finding = True
        live = self.cluster.controller.live_brokers() or tuple(sorted(self.cluster.brokers))
        correlation = self._next_correlation()
        broker = live[correlation % len(live)]
        self._pending[correlation] = (self._on_find_coordinator, None, f"broker-{broker}")
        self.cluster.send(self, f"broker-{broker}", FindCoordinatorRequest(self.config.group_id or "", correlation))
        incarnation = self.incarnation

        def timeout() -> None:
            if self.incarnation == incarnation and self._pending.pop(correlation, None) is not None:
                g.finding = False

        self.cluster.schedule(min(self.config.request_timeout_ms, 1000), timeout)

    def _on_find_coordinator(self, resp: FindCoordinatorResponse) -> None:
        g = self.group
        if g is None:
            return
        g.finding = False
        if resp.error == NONE:
            g.coordinator = resp.coordinator
            self._group_step()
        # otherwise the next tick asks again (COORDINATOR_NOT_AVAILABLE while the topic is being created)

    def _join(self) -> None:
        g = self.group
        assert g is not None
        g.rejoin_needed = False
        owned = self.assignment
        if owned and not self.config.cooperative:
            self._revoke(owned, "the group is rebalancing (eager protocol: give up everything, then rejoin)")
            owned = ()
        protocols = tuple(
            (name, encode_subscription(MemberSubscription(g.topics, owned, g.owned_generation)))
            for name in self.config.partition_assignment_strategy)
        g.phase = "joining"
        correlation = self._next_correlation()
        g.request = correlation
        self._send_group(JoinGroupRequest(
            self.config.group_id or "", g.member_id, self.config.group_instance_id, self.node_id,
            self.config.session_timeout_ms, self.config.max_poll_interval_ms, "consumer", protocols, correlation),
            self._on_join, on_timeout=lambda: self._retry_join())

    def _retry_join(self) -> None:
        g = self.group
        if g is not None:
            g.phase = "unjoined"
            g.rejoin_needed = True

    def _on_join(self, resp: JoinGroupResponse) -> None:
        g = self.group
        if g is None or resp.correlation_id != g.request or g.phase != "joining":
            return
        if resp.error == MEMBER_ID_REQUIRED:
            g.member_id = resp.member_id
            g.phase = "unjoined"
            g.rejoin_needed = True
            self._join()
            return
        if resp.error != NONE:
            self._on_group_error(resp.error, "JoinGroup")
            return
        g.member_id, g.generation, g.protocol = resp.member_id, resp.generation, resp.protocol
        assignments: tuple[tuple[str, bytes], ...] = ()
        if resp.leader == resp.member_id:
            assignments = self._lead(resp)
        g.phase = "syncing"
        correlation = self._next_correlation()
        g.request = correlation
        self._send_group(SyncGroupRequest(self.config.group_id or "", g.generation, g.member_id,
                                          self.config.group_instance_id, assignments, correlation),
                         self._on_sync, on_timeout=lambda: self._retry_join())

    def _lead(self, resp: JoinGroupResponse) -> tuple[tuple[str, bytes], ...]:
        """This member leads the group: run the chosen assignor over everyone's subscription."""
        subs = []
        for member_id, instance_id, data in resp.members:
            try:
                s = decode_subscription(data)
            except ProtocolDecodeError:
                s = MemberSubscription(())
            subs.append(Subscription(member_id, s.topics, s.owned_partitions, s.generation, instance_id))
        topics = {t for s in subs for t in s.topics}
        counts = {t: self.partition_counts[t] for t in sorted(topics) if t in self.partition_counts}
        for t in topics:
            if t not in counts and t in self.cluster.topics:
                self._refresh_metadata()
        try:
            result = assign(resp.protocol or "", subs, counts)
        except AssignorError as exc:
            self.cluster.events.emit(self.cluster.now_ms(), "AssignmentFailed",
                                     f"{self.node_id}, the group leader, could not assign partitions: {exc}.",
                                     client=self.node_id)
            return ()
        self.cluster.events.emit(self.cluster.now_ms(), "AssignmentComputed",
                                 f"{self.node_id} leads group {self.config.group_id} (generation {resp.generation}) "
                                 f"and ran {result.strategy}: {result.explanation}", client=self.node_id,
                                 strategy=result.strategy, revoked=result.revoked_count)
        return tuple((m, encode_assignment(tps)) for m, tps in result.assignment.items())

    def _on_sync(self, resp: SyncGroupResponse) -> None:
        g = self.group
        if g is None or resp.correlation_id != g.request or g.phase != "syncing":
            return
        if resp.error != NONE:
            self._on_group_error(resp.error, "SyncGroup")
            return
        try:
            new = set(decode_assignment(resp.assignment))
        except ProtocolDecodeError:
            new = set()
        g.phase = "stable"
        g.lost_coordinator = None
        g.rebalances += 1
        g.owned_generation = g.generation
        owned = set(self.positions)
        revoked = tuple(sorted(owned - new))
        if revoked:
            self._revoke(revoked, "the cooperative rebalance moves them to another member")
            g.rejoin_needed = True  # KIP-429: rejoin so the revoked partitions can be handed on
        added = tuple(sorted(new - owned))
        for tp in added:
            self.positions[tp] = self.fetch_positions[tp] = None
            g.awaiting_position.add(tp)
        if added:
            self._fetch_committed(added)
            self._record_assign(added)
            if g.on_assigned is not None:
                g.on_assigned(added)
        self.last_poll_ms = self.cluster.now_ms()
        if g.rejoin_needed:
            self._group_step()

    def _on_group_error(self, error: str, what: str) -> None:
        g = self.group
        assert g is not None
        g.phase = "unjoined"
        g.rejoin_needed = True
        if error in COORDINATOR_ERRORS:
            self._coordinator_dead(f"{what} answered {error}")
        elif error in (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION):
            self._lose(f"{what} answered {error}: the group moved on without this member")
            if error == UNKNOWN_MEMBER_ID:
                g.member_id = ""
                g.generation = -1
        elif error == REBALANCE_IN_PROGRESS:
            pass
        elif error == FENCED_INSTANCE_ID:
            self._fatal(f"another consumer took over group.instance.id {self.config.group_instance_id}")
        else:
            self._fatal(f"{what} failed with {error}")

    def _fatal(self, why: str) -> None:
        g = self.group
        assert g is not None
        g.fatal = why
        self._lose(why)
        self.stopped = True
        self.cluster.events.emit(self.cluster.now_ms(), "ConsumerFenced", f"{self.node_id} stopped: {why}.",
                                 client=self.node_id)

    def _revoke(self, partitions: tuple[TopicPartition, ...], why: str) -> None:
        """Give partitions up cleanly: the application's revoke hook, an auto-commit, then forget them."""
        g = self.group
        assert g is not None
        if g.on_revoked is not None:
            g.on_revoked(partitions)
        if self.config.enable_auto_commit:
            offsets = {tp: self.positions[tp] for tp in partitions if self.positions.get(tp) is not None}
            if offsets:
                self.commit_async(offsets)  # type: ignore[arg-type]
        g.revocations += len(partitions)
        self.cluster.events.emit(self.cluster.now_ms(), "PartitionsRevoked",
                                 f"{self.node_id} gives up {len(partitions)} partition(s) ({why}).",
                                 client=self.node_id, partitions=[str(tp) for tp in partitions])
        self._drop(partitions)

    def _lose(self, why: str) -> None:
        g = self.group
        assert g is not None
        lost = self.assignment
        if lost:
            if g.on_lost is not None:
                g.on_lost(lost)
            self.cluster.events.emit(self.cluster.now_ms(), "PartitionsLost",
                                     f"{self.node_id} lost {len(lost)} partition(s) without committing ({why}); "
                                     f"their new owner resumes from the last committed offset.",
                                     client=self.node_id, partitions=[str(tp) for tp in lost])
        self._drop(lost)

    def _drop(self, partitions: tuple[TopicPartition, ...]) -> None:
        for tp in partitions:
            self.positions.pop(tp, None)
            self.fetch_positions.pop(tp, None)
            self.committed.pop(tp, None)
            self._buffers.pop(tp, None)
            self._in_flight.pop(tp, None)
            if self.group is not None:
                self.group.awaiting_position.discard(tp)

    def _forget_partitions(self) -> None:
        self._drop(self.assignment)
        self._pending.clear()

    def _fetch_committed(self, partitions: tuple[TopicPartition, ...]) -> None:
        g = self.group
        assert g is not None
        correlation = self._next_correlation()

        def on_response(resp: OffsetFetchResponse) -> None:
            if resp.error != NONE:
                if resp.error in COORDINATOR_ERRORS:
                    self._coordinator_dead(f"OffsetFetch answered {resp.error}")
                self._retry_fetch_committed(partitions)
                return
            for tp, offset, _ in resp.offsets:
                if tp in g.awaiting_position:
                    g.awaiting_position.discard(tp)
                    if offset >= 0:
                        self.positions[tp] = self.fetch_positions[tp] = offset
                        self.committed[tp] = offset

        self._send_group(OffsetFetchRequest(self.config.group_id or "", partitions, correlation,
                                            require_stable=self.read_committed), on_response,
                         on_timeout=lambda: self._retry_fetch_committed(partitions))

    def _retry_fetch_committed(self, partitions: tuple[TopicPartition, ...]) -> None:
        incarnation = self.incarnation

        def again() -> None:
            g = self.group
            if self.incarnation == incarnation and g is not None:
                still = tuple(tp for tp in partitions if tp in g.awaiting_position)
                if still:
                    if g.coordinator is None:
                        self._find_coordinator()
                        self._retry_fetch_committed(still)
                    else:
                        self._fetch_committed(still)

        self.cluster.schedule(max(self.config.retry_backoff_ms, 1), again)

    def _heartbeat(self) -> None:
        g = self.group
        if g is None or g.phase != "stable" or g.coordinator is None or g.heartbeat_in_flight or g.fatal:
            return
        if g.left_for_poll_timeout:
            return  # a static member that exceeded max.poll.interval.ms stops heartbeating
        correlation = self._next_correlation()
        g.heartbeat_in_flight = correlation
        generation = g.generation

        def on_response(resp: HeartbeatResponse) -> None:
            g.heartbeat_in_flight = 0
            if resp.error == NONE:
                g.lost_coordinator = None
            if resp.error == NONE or g.phase != "stable" or g.generation != generation:
                return
            if resp.error == REBALANCE_IN_PROGRESS:
                g.rejoin_needed = True
                self._group_step()
            else:
                self._on_group_error(resp.error, "Heartbeat")

        def on_timeout() -> None:
            g.heartbeat_in_flight = 0

        self._send_group(HeartbeatRequest(self.config.group_id or "", g.generation, g.member_id,
                                          self.config.group_instance_id, correlation), on_response, on_timeout)

    def _check_poll_interval(self) -> None:
        g = self.group
        if (g is None or g.phase != "stable" or g.left_for_poll_timeout or self.auto_poll
                or self.cluster.now_ms() - self.last_poll_ms <= self.config.max_poll_interval_ms):
            return
        g.left_for_poll_timeout = True
        static = self.config.group_instance_id is not None
        self.cluster.events.emit(
            self.cluster.now_ms(), "PollTimeout",
            f"{self.node_id} did not poll for max.poll.interval.ms={self.config.max_poll_interval_ms}: "
            + ("as a static member it stops heartbeating, and the group reassigns its partitions after "
               "session.timeout.ms." if static else
               "it leaves the group so its partitions go to a member that is making progress; "
               "it rejoins at its next poll."), client=self.node_id)
        if not static and g.coordinator is not None:
            self._send_group(LeaveGroupRequest(self.config.group_id or "", g.member_id, None,
                                               "consumer poll timeout has expired", self._next_correlation()),
                             lambda resp: None)
            self._lose("it left the group after max.poll.interval.ms")
            g.member_id, g.generation, g.phase = "", -1, "unjoined"

    # ── commits ──────────────────────────────────────────────────────────────
    def _offsets_to_commit(self, offsets: OffsetMap | None) -> OffsetMap:
        if self.config.group_id is None:
            raise ValueError(f"{self.node_id} has no group_id to commit offsets for")
        if offsets is None:
            return {tp: pos for tp, pos in sorted(self.positions.items()) if pos is not None}
        out = {}
        for tp, off in offsets.items():
            if not isinstance(off, int) or isinstance(off, bool) or off < 0:
                raise ValueError(f"offset for {tp} must be a whole number >= 0, got {off!r}")
            out[TopicPartition(*tp)] = off
        return out

    def _send_commit(self, future: CommitFuture, retries_left: int, deadline_ms: int | None = None) -> None:
        if not future.offsets:
            future._complete(None)
            return
        if not self.alive:
            future._complete("CONSUMER_CLOSED")
            return
        g = self.group
        assert g is not None  # _offsets_to_commit insisted on a group_id
        generation, member_id = (g.generation, g.member_id) if g.topics and g.phase == "stable" else (-1, "")
        correlation = self._next_correlation()
        offsets = tuple((tp, off, -1, "") for tp, off in sorted(future.offsets.items()))

        def retry_or_fail(error: str) -> None:
            if retries_left != 0 and deadline_ms is not None and self.cluster.now_ms() < deadline_ms:
                incarnation = self.incarnation

                def again() -> None:
                    if self.incarnation == incarnation:
                        self._send_commit(future, retries_left - 1, deadline_ms)

                self.cluster.schedule(max(self.config.retry_backoff_ms, 1), again)
            else:
                future._complete(error)

        def on_response(resp: OffsetCommitResponse) -> None:
            errors = {e for _, e in resp.errors if e != NONE}
            if not errors:
                for tp, off in future.offsets.items():
                    if tp in self.positions:  # what this consumer reads: shown beside its position
                        self.committed[tp] = off
                future._complete(None)
                return
            error = sorted(errors)[0]
            if error in COORDINATOR_ERRORS:
                self._coordinator_dead(f"OffsetCommit answered {error}")
                retry_or_fail(error)
            else:
                if error == REBALANCE_IN_PROGRESS:
                    g.rejoin_needed = True
                future._complete(error)

        if g.coordinator is None:
            self._find_coordinator()
            retry_or_fail(COORDINATOR_NOT_AVAILABLE)
            return
        self._send_group(OffsetCommitRequest(self.config.group_id or "", generation, member_id,
                                             self.config.group_instance_id, offsets, correlation),
                         on_response, on_timeout=lambda: retry_or_fail(REQUEST_TIMED_OUT))

