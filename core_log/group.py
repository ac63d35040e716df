"""The group coordinator: Kafka's classic consumer-group protocol, on the broker that owns the group.

Every group lives on one partition of ``__consumer_offsets`` (see
:mod:`core_log.offsets`); the broker that *leads* that partition is the group's
coordinator. When it stops leading (it crashed, or lost leadership) it forgets
the group; the new leader reads the partition back and carries on with the same
generation, members, assignments and committed offsets.

A group moves through Kafka's states:

``Empty`` → ``PreparingRebalance`` → ``CompletingRebalance`` → ``Stable``

* **PreparingRebalance** — a member joined, left, changed its subscription or
  missed its session timeout. Every member must send JoinGroup again (its
  heartbeat answers ``REBALANCE_IN_PROGRESS`` to tell it so). Joins are held
  until all known members have rejoined or the longest ``rebalance_timeout_ms``
  (the consumer's ``max.poll.interval.ms``) passes; members that did not
  rejoin are removed. An empty group first waits
  ``group.initial.rebalance.delay.ms`` so a fleet starting together forms one
  generation instead of many.
* **CompletingRebalance** — the generation number went up, the protocol
  (assignor) most members prefer was chosen, and the *leader member* got
  everybody's subscription. The coordinator waits for the leader's SyncGroup
  carrying one assignment per member, stores the group (generation, members,
  assignments) in ``__consumer_offsets``, then answers every member's SyncGroup
  with its assignment.
* **Stable** — members heartbeat every ``heartbeat.interval.ms``; one silent
  for ``session.timeout.ms`` is removed and a rebalance starts.

New dynamic members get their id from the coordinator first
(``MEMBER_ID_REQUIRED``, KIP-394). Static members (``group.instance.id``,
KIP-345) keep their identity across restarts: a static member that comes back
under the same instance id replaces its old member id and, when the group is
Stable, gets its old assignment back with no rebalance; the old id is fenced
(``FENCED_INSTANCE_ID``).

Offset commits are validated against the generation (a member of an old
generation gets ``ILLEGAL_GENERATION`` — its partitions may already belong to
someone else), appended to the group's ``__consumer_offsets`` partition, and
acknowledged only once the partition's high watermark passes them, so an
acknowledged commit survives the coordinator's broker crashing.

Differences from Kafka: loading a partition is instantaneous (no
``COORDINATOR_LOAD_IN_PROGRESS`` window); pending member ids (issued with
MEMBER_ID_REQUIRED, not yet used) are kept until the next rebalance instead of
expiring on their own; offsets never expire (``offsets.retention.minutes``
ignored); the initial rebalance delay is waited once, not extended per new
member; a static leader that rejoins triggers a rebalance (as in Kafka after
KAFKA-13435), any other static rejoin in Stable does not.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from core_log.consumer_protocol import decode_assignment
from core_log.kafka_types import ProtocolDecodeError
from core_log.messages import (
    FENCED_INSTANCE_ID,
    GROUP_ID_NOT_FOUND,
    GROUP_MAX_SIZE_REACHED,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
    INVALID_GROUP_ID,
    INVALID_REQUEST,
    INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED,
    NONE,
    NOT_COORDINATOR,
    OFFSET_METADATA_TOO_LARGE,
    PRODUCER_FENCED,
    REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
    UNSTABLE_OFFSET_COMMIT,
    DescribeGroupRequest,
    DescribeGroupResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
    TopicPartition,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)
from core_log.offsets import (
    MAX_METADATA_BYTES,
    OFFSETS_TOPIC,
    OffsetAndMetadata,
    PendingTxnOffsets,
    StoredGroup,
    StoredMember,
    group_key,
    group_value,
    load,
    offset_key,
    offset_value,
    partition_for_group,
)
from core_log.records import Record, encode_batch

if TYPE_CHECKING:
    from core_log.broker import Broker

EMPTY, PREPARING_REBALANCE, COMPLETING_REBALANCE, STABLE, DEAD = (
    "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead")
MAX_GROUP_ID_CHARS = 255
MAX_MEMBERS_PER_GROUP = 1000  # Kafka's group.max.size default is unbounded; a lab needs a limit
MAX_COMMIT_PARTITIONS = 64 * 100

Reply = Callable[[Any], None]


@dataclass
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    join_reply: Reply | None = None
    join_correlation: int = 0
    sync_reply: Reply | None = None
    sync_correlation: int = 0
    heartbeat_token: int = 0

    def subscription_for(self, protocol: str | None) -> bytes:
        for name, data in self.protocols:
            if name == protocol:
                return data
        return b""


@dataclass
class ClassicGroup:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id → member id
    pending_members: set[str] = field(default_factory=set)
    join_earliest_ms: int = 0
    join_deadline_ms: int = 0
    rebalance_token: int = 0
    state_since_ms: int = 0
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    rebalances: int = 0

    def all_joined(self) -> bool:
        return all(m.join_reply is not None for m in self.members.values())


def select_protocol(members: list[Member]) -> str | None:
    """Kafka's classic rule: among protocols every member supports, each member votes for its first."""
    if not members:
        return None
    lists = [[name for name, _ in m.protocols] for m in members]
    candidates = set(lists[0]).intersection(*lists[1:])
    if not candidates:
        return None
    votes = Counter(next(n for n in names if n in candidates) for names in lists)
    return min(sorted(candidates), key=lambda c: (-votes[c], sum(n.index(c) for n in lists)))


class GroupCoordinator:
    """The coordinator role of one broker: the groups of the ``__consumer_offsets`` partitions it leads."""

    def __init__(self, broker: "Broker", rng: random.Random) -> None:
        self.broker = broker
        self.cluster = broker.cluster
        self.rng = rng
        self.groups: dict[str, ClassicGroup] = {}
        self.loaded: set[int] = set()  # __consumer_offsets partitions this broker coordinates
        self.pending_txn: PendingTxnOffsets = {}  # offsets of open transactions: visible once committed

    # ── ownership ────────────────────────────────────────────────────────────
    def _partition_of(self, group_id: str) -> int:
        topic = self.cluster.topics.get(OFFSETS_TOPIC)
        return -1 if topic is None else partition_for_group(group_id, topic.partitions)

    def owns(self, group_id: str) -> bool:
        return self._partition_of(group_id) in self.loaded

    def load(self, partition: int) -> None:
        """Become coordinator for one partition: read it back and rebuild its groups."""
        replica = self.broker.replicas.get(TopicPartition(OFFSETS_TOPIC, partition))
        if replica is None:
            return
        log = replica.log
        batches = []
        position = log.log_start_offset
        while position < log.log_end_offset:
            chunk = log.read(position, max_offset=log.log_end_offset)
            if not chunk:
                break
            batches.extend(b for b in chunk if b.next_offset > position)
            position = chunk[-1].next_offset
        loaded = load(batches)
        now = self.cluster.now_ms()
        for group_id, stored in loaded.groups.items():
            group = ClassicGroup(group_id, generation=stored.generation, protocol_type=stored.protocol_type,
                                 protocol=stored.protocol, leader=stored.leader, state_since_ms=now)
            for sm in stored.members:
                member = Member(sm.member_id, sm.group_instance_id, sm.client_id, sm.session_timeout_ms,
                                sm.rebalance_timeout_ms, ((stored.protocol or "", sm.subscription),), sm.assignment)
                group.members[sm.member_id] = member
                if sm.group_instance_id:
                    group.static_members[sm.group_instance_id] = sm.member_id
            group.state = STABLE if group.members else EMPTY
            self.groups[group_id] = group
            for member in group.members.values():
                self._touch(group, member)
        for group_id, offsets in loaded.offsets.items():
            group = self.groups.setdefault(group_id, ClassicGroup(group_id, state_since_ms=now))
            group.offsets.update(offsets)
        for pid, by_group in (loaded.pending_txn or {}).items():
            for group_id, offsets in by_group.items():
                self.pending_txn.setdefault(pid, {}).setdefault(group_id, {}).update(offsets)
        self.loaded.add(partition)
        names = sorted(g for g in self.groups if self._partition_of(g) == partition)
        if names:
            committed = sum(len(self.groups[g].offsets) for g in names)
            self.cluster.events.emit(
                now, "GroupCoordinatorLoaded",
                f"Broker {self.broker.broker_id} now coordinates group(s) {', '.join(names[:5])}"
                f"{' …' if len(names) > 5 else ''}: it read {loaded.records_read} records of "
                f"{OFFSETS_TOPIC}-{partition} back and restored {committed} committed offset(s).",
                broker=self.broker.broker_id, partition=partition, groups=names)

    def unload(self, partition: int) -> None:
        """Stop coordinating a partition's groups (leadership moved away): answer waiters NOT_COORDINATOR."""
        if partition not in self.loaded:
            return
        self.loaded.discard(partition)
        for by_group in self.pending_txn.values():
            for group_id in [g for g in by_group if self._partition_of(g) == partition]:
                del by_group[group_id]
        for group_id in sorted(g for g in self.groups if self._partition_of(g) == partition):
            group = self.groups.pop(group_id)
            for m in group.members.values():
                if m.join_reply is not None:
                    m.join_reply(self._join_error(NOT_COORDINATOR, m.member_id, m.join_correlation))
                if m.sync_reply is not None:
                    m.sync_reply(SyncGroupResponse(NOT_COORDINATOR, b"", m.sync_correlation))

    def unload_all(self) -> None:
        """The broker died: everything in memory is gone (nothing to answer)."""
        self.groups.clear()
        self.loaded.clear()
        self.pending_txn.clear()

    # ── helpers ──────────────────────────────────────────────────────────────
    def _now(self) -> int:
        return self.cluster.now_ms()

    def _config(self) -> Any:
        return self.cluster.config

    def _new_member_id(self, client_id: str) -> str:
        return f"{client_id}-{self.rng.getrandbits(48):012x}"

    @staticmethod
    def _join_error(error: str, member_id: str, correlation: int) -> JoinGroupResponse:
        return JoinGroupResponse(error, -1, None, "", member_id, (), correlation)

    def _set_state(self, group: ClassicGroup, state: str) -> None:
        group.state = state
        group.state_since_ms = self._now()

    def _touch(self, group: ClassicGroup, member: Member) -> None:
        """A sign of life: (re)arm the member's session timer."""
        member.heartbeat_token += 1
        token = member.heartbeat_token
        incarnation = self.broker.incarnation

        def expire() -> None:
            if not self.broker.alive or self.broker.incarnation != incarnation:
                return
            g = self.groups.get(group.group_id)
            m = g.members.get(member.member_id) if g is not None else None
            if g is None or m is not member or m.heartbeat_token != token:
                return
            if m.join_reply is not None or m.sync_reply is not None:
                self._touch(g, m)  # waiting on the coordinator itself: the rebalance timeout governs
                return
            self._remove_member(g, m, f"sent no heartbeat for session.timeout.ms={m.session_timeout_ms}")

        self.cluster.schedule(member.session_timeout_ms, expire)

    def _emit(self, kind: str, text: str, group: ClassicGroup, **fields: Any) -> None:
        self.cluster.events.emit(self._now(), kind, text, group=group.group_id, generation=group.generation,
                                 coordinator=self.broker.broker_id, **fields)

    # ── membership changes ───────────────────────────────────────────────────
    def _remove_member(self, group: ClassicGroup, member: Member, reason: str) -> None:
        group.members.pop(member.member_id, None)
        if member.group_instance_id and group.static_members.get(member.group_instance_id) == member.member_id:
            del group.static_members[member.group_instance_id]
        if group.leader == member.member_id:
            group.leader = None
        self._emit("GroupMemberRemoved",
                   f"Group {group.group_id}: member {member.client_id} ({member.member_id}) was removed because it "
                   f"{reason}; its partitions will be reassigned in a rebalance.", group,
                   member=member.member_id, client=member.client_id)
        if group.state in (STABLE, COMPLETING_REBALANCE):
            self._prepare_rebalance(group, f"{member.client_id} left")
        elif group.state == PREPARING_REBALANCE:
            self._try_complete_join(group)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.state == PREPARING_REBALANCE:
            return
        if group.state == COMPLETING_REBALANCE:
            for m in group.members.values():
                m.assignment = b""
                if m.sync_reply is not None:
                    m.sync_reply(SyncGroupResponse(REBALANCE_IN_PROGRESS, b"", m.sync_correlation))
                    m.sync_reply = None
        was_empty = group.state == EMPTY
        self._set_state(group, PREPARING_REBALANCE)
        group.rebalance_token += 1
        token = group.rebalance_token
        now = self._now()
        longest = max((m.rebalance_timeout_ms for m in group.members.values()), default=0)
        if was_empty:
            delay = min(self._config().group_initial_rebalance_delay_ms, max(longest, 1))
            group.join_earliest_ms = now + delay
            group.join_deadline_ms = now + max(delay, longest)
        else:
            group.join_earliest_ms = now
            group.join_deadline_ms = now + longest
        self._emit("GroupRebalanceStarted",
                   f"Group {group.group_id} is rebalancing ({reason}): every member must rejoin within "
                   f"{longest} ms (max.poll.interval.ms); until then its partitions are not being read"
                   f"{' by members that revoked them' if group.members else ''}.", group, reason=reason)
        incarnation = self.broker.incarnation

        def at(when: int) -> None:
            def check() -> None:
                g = self.groups.get(group.group_id)
                if (self.broker.alive and self.broker.incarnation == incarnation and g is group
                        and g.rebalance_token == token and g.state == PREPARING_REBALANCE):
                    self._try_complete_join(g)
            self.cluster.schedule(max(0, when - self._now()), check)

        at(group.join_earliest_ms)
        if group.join_deadline_ms != group.join_earliest_ms:
            at(group.join_deadline_ms)

    def _try_complete_join(self, group: ClassicGroup) -> None:
        now = self._now()
        if group.state != PREPARING_REBALANCE or now < group.join_earliest_ms:
            return
        if not group.all_joined() and now < group.join_deadline_ms:
            return
        for m in [m for m in group.members.values() if m.join_reply is None]:
            group.members.pop(m.member_id)
            if m.group_instance_id and group.static_members.get(m.group_instance_id) == m.member_id:
                del group.static_members[m.group_instance_id]
            self._emit("GroupMemberRemoved",
                       f"Group {group.group_id}: member {m.client_id} did not rejoin within the rebalance timeout "
                       f"({m.rebalance_timeout_ms} ms) and was removed.", group, member=m.member_id,
                       client=m.client_id)
        group.pending_members.clear()
        group.generation += 1
        group.rebalances += 1
        members = list(group.members.values())
        if not members:
            group.protocol, group.leader = None, None
            self._set_state(group, EMPTY)
            self._emit("GroupEmpty", f"Group {group.group_id} has no members left (generation "
                       f"{group.generation}); its committed offsets stay for the next consumer.", group)
            self._store_group(group, lambda error: None)
            return
        group.protocol = select_protocol(members)
        if group.leader not in group.members:
            group.leader = members[0].member_id
        self._set_state(group, COMPLETING_REBALANCE)
        everyone = tuple((m.member_id, m.group_instance_id, m.subscription_for(group.protocol)) for m in members)
        for m in members:
            reply, correlation = m.join_reply, m.join_correlation
            m.join_reply = None
            self._touch(group, m)
            assert reply is not None
            reply(JoinGroupResponse(NONE, group.generation, group.protocol, group.leader or "", m.member_id,
                                    everyone if m.member_id == group.leader else (), correlation))

    # ── JoinGroup ────────────────────────────────────────────────────────────
    def _validate_group_id(self, group_id: Any) -> str | None:
        if not isinstance(group_id, str) or not group_id or len(group_id) > MAX_GROUP_ID_CHARS:
            return INVALID_GROUP_ID
        if not self.owns(group_id):
            return NOT_COORDINATOR
        return None

    def handle_join(self, req: JoinGroupRequest, reply: Reply) -> None:
        cfg = self._config()
        error = self._validate_group_id(req.group_id)
        if error is None and not (cfg.group_min_session_timeout_ms <= req.session_timeout_ms
                                  <= cfg.group_max_session_timeout_ms):
            error = INVALID_SESSION_TIMEOUT
        if error is None and (not req.protocols or req.protocol_type != "consumer"
                              or req.rebalance_timeout_ms < 1):
            error = INCONSISTENT_GROUP_PROTOCOL if req.protocol_type != "consumer" else INVALID_REQUEST
        if error is not None:
            reply(self._join_error(error, req.member_id, req.correlation_id))
            return
        group = self.groups.setdefault(req.group_id, ClassicGroup(req.group_id, state_since_ms=self._now()))
        if group.members and not set(n for n, _ in req.protocols) & set.intersection(
                *[set(n for n, _ in m.protocols) for m in group.members.values()]):
            reply(self._join_error(INCONSISTENT_GROUP_PROTOCOL, req.member_id, req.correlation_id))
            return
        group.protocol_type = "consumer"
        if req.member_id == "":
            self._join_unknown_member(group, req, reply)
        else:
            self._join_known_member(group, req, reply)

    def _join_unknown_member(self, group: ClassicGroup, req: JoinGroupRequest, reply: Reply) -> None:
        if len(group.members) + len(group.pending_members) >= MAX_MEMBERS_PER_GROUP:
            reply(self._join_error(GROUP_MAX_SIZE_REACHED, "", req.correlation_id))
            return
        new_id = self._new_member_id(req.client_id)
        instance = req.group_instance_id
        if instance is None:
            group.pending_members.add(new_id)
            reply(self._join_error(MEMBER_ID_REQUIRED, new_id, req.correlation_id))
            return
        old_id = group.static_members.get(instance)
        member = Member(new_id, instance, req.client_id, req.session_timeout_ms, req.rebalance_timeout_ms,
                        req.protocols)
        if old_id is None:
            self._add_and_join(group, member, req, reply, f"static member {instance} joined")
            return
        old = group.members.pop(old_id)
        member.assignment = old.assignment
        group.members[new_id] = member
        group.static_members[instance] = new_id
        if old.join_reply is not None:
            old.join_reply(self._join_error(FENCED_INSTANCE_ID, old_id, old.join_correlation))
        if old.sync_reply is not None:
            old.sync_reply(SyncGroupResponse(FENCED_INSTANCE_ID, b"", old.sync_correlation))
        was_leader = group.leader == old_id
        if was_leader:
            group.leader = new_id
        same_protocols = group.protocol in {name for name, _ in req.protocols}
        if group.state == STABLE and not was_leader and same_protocols:
            self._touch(group, member)
            self._emit("StaticMemberRejoined",
                       f"Group {group.group_id}: static member {instance} came back as {new_id} within its session "
                       f"and keeps its partitions — no rebalance.", group, member=new_id, instance=instance)
            self._store_group(group, lambda error: None)
            reply(JoinGroupResponse(NONE, group.generation, group.protocol, group.leader or "", new_id, (),
                                    req.correlation_id))
            return
        member.join_reply, member.join_correlation = reply, req.correlation_id
        self._touch(group, member)
        if group.state in (STABLE, COMPLETING_REBALANCE, EMPTY):
            self._prepare_rebalance(group, f"static member {instance} rejoined")
        self._try_complete_join(group)

    def _add_and_join(self, group: ClassicGroup, member: Member, req: JoinGroupRequest, reply: Reply,
                      reason: str) -> None:
        group.members[member.member_id] = member
        if member.group_instance_id:
            group.static_members[member.group_instance_id] = member.member_id
        member.join_reply, member.join_correlation = reply, req.correlation_id
        self._touch(group, member)
        if group.state != PREPARING_REBALANCE:
            self._prepare_rebalance(group, reason)
        self._try_complete_join(group)

    def _join_known_member(self, group: ClassicGroup, req: JoinGroupRequest, reply: Reply) -> None:
        member_id = req.member_id
        if member_id in group.pending_members:
            group.pending_members.discard(member_id)
            member = Member(member_id, req.group_instance_id, req.client_id, req.session_timeout_ms,
                            req.rebalance_timeout_ms, req.protocols)
            self._add_and_join(group, member, req, reply, f"{req.client_id} joined")
            return
        member = group.members.get(member_id)
        if member is None:
            reply(self._join_error(UNKNOWN_MEMBER_ID, member_id, req.correlation_id))
            return
        if member.group_instance_id != req.group_instance_id:
            reply(self._join_error(FENCED_INSTANCE_ID, member_id, req.correlation_id))
            return
        changed = member.protocols != req.protocols
        member.protocols = req.protocols
        member.session_timeout_ms, member.rebalance_timeout_ms = req.session_timeout_ms, req.rebalance_timeout_ms
        self._touch(group, member)
        if group.state == PREPARING_REBALANCE:
            member.join_reply, member.join_correlation = reply, req.correlation_id
            self._try_complete_join(group)
            return
        if group.state in (COMPLETING_REBALANCE, STABLE) and not changed and (
                group.state == COMPLETING_REBALANCE or member_id != group.leader):
            everyone = tuple((m.member_id, m.group_instance_id, m.subscription_for(group.protocol))
                             for m in group.members.values()) if member_id == group.leader else ()
            reply(JoinGroupResponse(NONE, group.generation, group.protocol, group.leader or "", member_id,
                                    everyone, req.correlation_id))
            return
        member.join_reply, member.join_correlation = reply, req.correlation_id
        why = "changed its subscription" if changed else "the leader rejoined"
        self._prepare_rebalance(group, f"{req.client_id} {why}")
        self._try_complete_join(group)

    # ── SyncGroup ────────────────────────────────────────────────────────────
    def _member_error(self, group_id: str, generation: int, member_id: str,
                      instance: str | None) -> tuple[str | None, ClassicGroup | None, Member | None]:
        error = self._validate_group_id(group_id)
        if error is not None:
            return error, None, None
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None:
            if group is not None and instance and instance in group.static_members:
                return FENCED_INSTANCE_ID, group, None
            return UNKNOWN_MEMBER_ID, group, None
        if member.group_instance_id != instance:
            return FENCED_INSTANCE_ID, group, member
        if generation != group.generation:
            return ILLEGAL_GENERATION, group, member
        return None, group, member

    def handle_sync(self, req: SyncGroupRequest, reply: Reply) -> None:
        error, group, member = self._member_error(req.group_id, req.generation, req.member_id,
                                                  req.group_instance_id)
        if error is None and group is not None and group.state == PREPARING_REBALANCE:
            error = REBALANCE_IN_PROGRESS
        if error is not None or group is None or member is None:
            reply(SyncGroupResponse(error or UNKNOWN_MEMBER_ID, b"", req.correlation_id))
            return
        self._touch(group, member)
        if group.state == STABLE:
            reply(SyncGroupResponse(NONE, member.assignment, req.correlation_id))
            return
        member.sync_reply, member.sync_correlation = reply, req.correlation_id
        if req.member_id != group.leader:
            return
        given = dict(req.assignments)
        for m in group.members.values():
            m.assignment = given.get(m.member_id, b"")
        generation = group.generation

        def stored(error: str) -> None:
            g = self.groups.get(group.group_id)
            if g is not group or g.generation != generation or g.state != COMPLETING_REBALANCE:
                return
            if error != NONE:
                for m in g.members.values():
                    if m.sync_reply is not None:
                        m.sync_reply(SyncGroupResponse(NOT_COORDINATOR, b"", m.sync_correlation))
                        m.sync_reply = None
                self._prepare_rebalance(g, f"storing the group failed ({error})")
                return
            self._set_state(g, STABLE)
            for m in g.members.values():
                self._touch(g, m)
                if m.sync_reply is not None:
                    m.sync_reply(SyncGroupResponse(NONE, m.assignment, m.sync_correlation))
                    m.sync_reply = None
            self._emit("GroupRebalanced", self._describe_assignment(g), g, protocol=g.protocol,
                       assignment=self._assignment_json(g))

        self._store_group(group, stored)

    def _assignment_json(self, group: ClassicGroup) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for m in group.members.values():
            try:
                out[m.client_id] = [str(tp) for tp in decode_assignment(m.assignment)]
            except ProtocolDecodeError:
                out[m.client_id] = []
        return out

    def _describe_assignment(self, group: ClassicGroup) -> str:
        parts = []
        idle = []
        for client, tps in sorted(self._assignment_json(group).items()):
            if tps:
                shown = ", ".join(t.rsplit("-", 1)[1] for t in tps[:8]) + (" …" if len(tps) > 8 else "")
                parts.append(f"{client} ← partition(s) {shown}")
            else:
                idle.append(client)
        text = (f"Group {group.group_id} is stable at generation {group.generation} ({group.protocol}): "
                + ("; ".join(parts) if parts else "nobody reads anything"))
        if idle:
            text += f"; idle (no partition left for them): {', '.join(idle)}"
        return text + "."

    # ── Heartbeat and LeaveGroup ─────────────────────────────────────────────
    def handle_heartbeat(self, req: HeartbeatRequest, reply: Reply) -> None:
        error, group, member = self._member_error(req.group_id, req.generation, req.member_id,
                                                  req.group_instance_id)
        if group is not None and member is not None and error in (None, ILLEGAL_GENERATION):
            self._touch(group, member)
        if error is None and group is not None and group.state == PREPARING_REBALANCE:
            error = REBALANCE_IN_PROGRESS
        reply(HeartbeatResponse(error or NONE, req.correlation_id))

    def handle_leave(self, req: LeaveGroupRequest, reply: Reply) -> None:
        error = self._validate_group_id(req.group_id)
        group = self.groups.get(req.group_id) if error is None else None
        member = None
        if group is not None:
            member_id = req.member_id or group.static_members.get(req.group_instance_id or "", "")
            member = group.members.get(member_id)
            if member is not None and req.group_instance_id and member.group_instance_id != req.group_instance_id:
                error = FENCED_INSTANCE_ID
        if error is None and (group is None or member is None):
            error = UNKNOWN_MEMBER_ID
        if error is not None or group is None or member is None:
            reply(LeaveGroupResponse(error or UNKNOWN_MEMBER_ID, req.correlation_id))
            return
        reply(LeaveGroupResponse(NONE, req.correlation_id))
        self._remove_member(group, member, f"left the group ({req.reason})")

    # ── offsets ──────────────────────────────────────────────────────────────
    def handle_offset_commit(self, req: OffsetCommitRequest, reply: Reply) -> None:
        def fail_all(error: str) -> None:
            reply(OffsetCommitResponse(tuple((tp, error) for tp, *_ in req.offsets), req.correlation_id))

        error = self._validate_group_id(req.group_id)
        if error is None and len(req.offsets) > MAX_COMMIT_PARTITIONS:
            error = INVALID_REQUEST
        if error is not None:
            fail_all(error)
            return
        group = self.groups.get(req.group_id)
        if req.generation < 0 and not req.member_id:
            if group is not None and group.state != EMPTY:
                fail_all(UNKNOWN_MEMBER_ID)  # an active group only takes commits from its members
                return
        else:
            error, group, member = self._member_error(req.group_id, req.generation, req.member_id,
                                                      req.group_instance_id)
            if error is None and group is not None and group.state == COMPLETING_REBALANCE:
                error = REBALANCE_IN_PROGRESS
            if error is not None:
                fail_all(error)
                return
            assert group is not None and member is not None
            self._touch(group, member)
        errors: dict[TopicPartition, str] = {}
        good: list[tuple[TopicPartition, OffsetAndMetadata]] = []
        now = self._now()
        for tp, offset, epoch, metadata in req.offsets:
            topic = self.cluster.topics.get(tp.topic)
            if topic is None or not 0 <= tp.partition < topic.partitions:
                errors[tp] = UNKNOWN_TOPIC_OR_PARTITION
            elif len((metadata or "").encode("utf-8")) > MAX_METADATA_BYTES:
                errors[tp] = OFFSET_METADATA_TOO_LARGE
            elif not isinstance(offset, int) or offset < 0:
                errors[tp] = INVALID_REQUEST
            else:
                good.append((tp, OffsetAndMetadata(offset, epoch, metadata or "", now)))
        if not good:
            reply(OffsetCommitResponse(tuple(errors.items()), req.correlation_id))
            return
        records = [Record(i, now, offset_key(req.group_id, tp), offset_value(om)) for i, (tp, om) in enumerate(good)]
        group_id = req.group_id

        def done(error: str) -> None:
            g = self.groups.get(group_id)
            if error == NONE and self.owns(group_id):
                g = self.groups.setdefault(group_id, ClassicGroup(group_id, state_since_ms=self._now()))
                for tp, om in good:
                    g.offsets[tp] = om
            else:
                error = NOT_COORDINATOR if error == NONE else error
            for tp, _ in good:
                errors[tp] = error
            reply(OffsetCommitResponse(tuple(errors.items()), req.correlation_id))

        self._append(group_id, records, done)

    def handle_offset_fetch(self, req: OffsetFetchRequest, reply: Reply) -> None:
        error = self._validate_group_id(req.group_id)
        if error is not None:
            reply(OffsetFetchResponse(error, (), req.correlation_id))
            return
        group = self.groups.get(req.group_id)
        committed = group.offsets if group is not None else {}
        wanted = sorted(committed) if req.partitions is None else req.partitions
        if req.require_stable and any(tp in by_group.get(req.group_id, {}) for by_group in self.pending_txn.values()
                                      for tp in wanted):
            reply(OffsetFetchResponse(UNSTABLE_OFFSET_COMMIT, (), req.correlation_id))  # a txn may still commit
            return
        out = []
        for tp in wanted:
            om = committed.get(tp)
            out.append((tp, om.offset if om else -1, om.metadata if om else ""))
        reply(OffsetFetchResponse(NONE, tuple(out), req.correlation_id))

    def handle_txn_offset_commit(self, req: TxnOffsetCommitRequest, reply: Reply) -> None:
        """Offsets committed inside a transaction: stored now, visible once the COMMIT marker lands here."""
        def answer(error: str) -> None:
            reply(TxnOffsetCommitResponse(tuple((tp, error) for tp, _ in req.offsets), req.correlation_id))

        error = self._validate_group_id(req.group_id)
        if error is None and req.member_id:
            error, group, member = self._member_error(req.group_id, req.generation, req.member_id, None)
        if error is None and (not req.offsets or len(req.offsets) > MAX_COMMIT_PARTITIONS):
            error = INVALID_REQUEST
        if error is None and any(tp.topic not in self.cluster.topics or off < 0 for tp, off in req.offsets):
            error = UNKNOWN_TOPIC_OR_PARTITION
        tp = TopicPartition(OFFSETS_TOPIC, self._partition_of(req.group_id))
        replica = self.broker.replicas.get(tp)
        entry = replica.producer_state.entries.get(req.producer_id) if replica else None
        if error is None and entry is not None and req.producer_epoch < entry.epoch:
            error = PRODUCER_FENCED  # a zombie of an older epoch
        if error is not None:
            answer(error)
            return
        now = self._now()
        offsets = {t: OffsetAndMetadata(off, -1, "", now) for t, off in req.offsets}
        records = [Record(i, now, offset_key(req.group_id, t), offset_value(om))
                   for i, (t, om) in enumerate(sorted(offsets.items()))]
        batch = encode_batch(records, is_transactional=True, producer_id=req.producer_id,
                             producer_epoch=req.producer_epoch)

        def done(error: str) -> None:
            if error == NONE and self.owns(req.group_id):
                self.pending_txn.setdefault(req.producer_id, {}).setdefault(req.group_id, {}).update(offsets)
            answer(error if error != NONE or self.owns(req.group_id) else NOT_COORDINATOR)

        self.broker.append_internal(tp, batch, self._config().offsets_commit_timeout_ms, done)

    def complete_txn(self, partition: int, producer_id: int, commit: bool) -> None:
        """A COMMIT/ABORT marker landed in ``__consumer_offsets-partition``: apply or drop the txn's offsets."""
        by_group = self.pending_txn.get(producer_id, {})
        for group_id in [g for g in by_group if self._partition_of(g) == partition]:
            offsets = by_group.pop(group_id)
            if commit:
                group = self.groups.setdefault(group_id, ClassicGroup(group_id, state_since_ms=self._now()))
                group.offsets.update(offsets)
        if not by_group:
            self.pending_txn.pop(producer_id, None)

    def handle_describe(self, req: DescribeGroupRequest, reply: Reply) -> None:
        error = self._validate_group_id(req.group_id)
        group = self.groups.get(req.group_id) if error is None else None
        if error is None and group is None:
            error = GROUP_ID_NOT_FOUND
        reply(DescribeGroupResponse(error or NONE, self.describe_group(group) if group else {}, req.correlation_id))

    def describe_group(self, group: ClassicGroup) -> dict[str, Any]:
        assignment = self._assignment_json(group)
        return {
            "group_id": group.group_id, "state": group.state, "generation": group.generation,
            "protocol": group.protocol, "leader": group.leader, "coordinator": self.broker.broker_id,
            "rebalances": group.rebalances,
            "members": [{"member_id": m.member_id, "client_id": m.client_id, "group_instance_id": m.group_instance_id,
                         "assignment": assignment.get(m.client_id, [])} for m in group.members.values()],
            "committed": {str(tp): om.offset for tp, om in sorted(group.offsets.items())},
        }

    # ── persistence ──────────────────────────────────────────────────────────
    def _store_group(self, group: ClassicGroup, done: Callable[[str], None]) -> None:
        stored = StoredGroup("consumer", group.generation, group.protocol, group.leader, self._now(), tuple(
            StoredMember(m.member_id, m.group_instance_id, m.client_id, "/sim", m.rebalance_timeout_ms,
                         m.session_timeout_ms, m.subscription_for(group.protocol), m.assignment)
            for m in group.members.values()))
        self._append(group.group_id, [Record(0, self._now(), group_key(group.group_id), group_value(stored))], done)

    def _append(self, group_id: str, records: list[Record], done: Callable[[str], None]) -> None:
        tp = TopicPartition(OFFSETS_TOPIC, self._partition_of(group_id))
        batch = encode_batch(records)
        self.broker.append_internal(tp, batch, self._config().offsets_commit_timeout_ms, done)


def coordinator_handlers() -> dict[type, Callable[[GroupCoordinator, Any, Reply], None]]:
    """Request type → coordinator method; the broker wires replies to the sender."""
    return {
        JoinGroupRequest: GroupCoordinator.handle_join,
        SyncGroupRequest: GroupCoordinator.handle_sync,
        HeartbeatRequest: GroupCoordinator.handle_heartbeat,
        LeaveGroupRequest: GroupCoordinator.handle_leave,
        OffsetCommitRequest: GroupCoordinator.handle_offset_commit,
        OffsetFetchRequest: GroupCoordinator.handle_offset_fetch,
        DescribeGroupRequest: GroupCoordinator.handle_describe,
        TxnOffsetCommitRequest: GroupCoordinator.handle_txn_offset_commit,
    }
