"""Partition assignors: which member of a consumer group reads which partition.

In Kafka's classic group protocol the group coordinator only picks a strategy
(:func:`choose_strategy`); the *leader consumer* runs the assignor and hands the
result back through SyncGroup. An assignor is therefore a pure function of what
the members said in JoinGroup — their subscribed topics, the partitions they
owned after the previous rebalance and their generation — plus the partition
count of each topic. This module holds Kafka's four built-in assignors under
Kafka's names (``partition.assignment.strategy``):

``range`` (eager)
    Per topic: partitions in numeric order, the topic's subscribers in member
    order; each gets ⌊P/C⌋ consecutive partitions and the first P mod C one
    more. Topics are split independently, so with several topics the first
    members get the extras of every topic, and a member is idle as soon as it
    sorts after the partition count of every topic it reads.
``roundrobin`` (eager)
    All partitions of all subscribed topics, sorted by topic then partition,
    dealt one at a time over the members in member order, skipping a member
    that does not subscribe to the partition's topic.
``sticky`` (eager)
    As balanced as possible, and otherwise keeps every partition where it was.
    With identical subscriptions the counts differ by at most one and the
    number of partitions taken from their owners is the minimum any such
    assignment needs. With differing subscriptions the result is the most
    balanced assignment the subscriptions allow (least sum of squared counts;
    in particular no partition could move to a subscriber of its topic holding
    two or more fewer — Kafka's balance rule), and owners keep all their
    partitions whenever that balance allows it.
``cooperative-sticky`` (cooperative, KIP-429)
    The same target as ``sticky``, reached in two steps. A partition that moves
    from A to B is only revoked from A in this rebalance (it is in A's
    ``revoked`` and in nobody's assignment); A then rejoins and the follow-up
    rebalance gives it to B. Partitions that stay put are never interrupted.
    The follow-up never revokes anything, so two rebalances always suffice;
    :func:`rebalance_until_stable` runs them.

Member order is Kafka's (``MemberInfo.compareTo``): static members (with a
``group.instance.id``) first, by instance id, then dynamic members by member id.
Without static members that is plain member-id order.

Previous ownership is trusted only when it is unambiguous. A claim counts if the
member still subscribes to the topic and the partition still exists; when
several members claim one partition (a member that missed a rebalance still
reports its old assignment) the claim with the highest generation wins, and
when the highest generation is shared nobody keeps it (Kafka revokes it from
both).

Contract: :func:`assign` and every ``ASSIGNORS[name].assign`` are pure and
deterministic — the same subscriptions (in any order) and partition counts give
the same :class:`AssignmentResult`; no set or dict iteration order decides
anything. Invalid input raises :class:`AssignorError` and nothing else. Every
partition of every topic that at least one member subscribes to is in exactly
one member's assignment, except, under the cooperative protocol, partitions
withheld for the follow-up rebalance (``AssignmentResult.unassigned``). A
member only ever receives partitions of topics it subscribes to.

Differences from Kafka:

* No rack awareness (``client.rack``, KIP-881): assignors ignore racks.
* A subscription to a topic with no known partition count is skipped, as Kafka
  does (it logs and skips it); the topic is listed in
  ``AssignmentResult.unknown_topics``.
* When a sticky assignor must choose *which* partitions to keep or hand out,
  Kafka's choice follows Java ``HashMap`` iteration order; ours is fixed: an
  owner over its quota keeps its lowest-numbered partitions, and free
  partitions go out lowest-numbered first, to members in member order.
* With differing subscriptions Kafka's sticky assignors stop at a local rule
  (``isBalanced``: no single partition can move to a subscriber with two or more
  fewer). Ours also follow chains of moves through several members and reach the
  most balanced assignment, so they are never less balanced than Kafka's and
  sometimes more — at the price of moving a partition along such a chain.
* Under ``cooperative-sticky`` a partition is withheld from its new owner while
  *any* member still claims it (Kafka withholds it only when ownership
  transfers from the recorded previous owner). Stricter, and it never lets two
  consumers read one partition at once.
* ``choose_strategy`` breaks a tie in votes deterministically (Kafka leaves it to
  ``HashMap`` order); see its docstring.
* Names sort by Python's code-point order; Java's ``String.compareTo`` compares
  UTF-16 units. The two differ only for characters outside the Basic
  Multilingual Plane.
* The assignor reads owned partitions and generations directly from
  :class:`Subscription` (Kafka's eager sticky assignor carries them in the
  subscription's user data, the cooperative one in ``ownedPartitions``).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter, deque
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

from core_log.errors import CoreLogError
from core_log.messages import TopicPartition

EAGER = "eager"
COOPERATIVE = "cooperative"

#: Kafka's ``DEFAULT_GENERATION``: the member does not know its generation.
UNKNOWN_GENERATION = -1

#: Kafka's default ``partition.assignment.strategy`` (range used; the list allows a
#: one-bounce upgrade to cooperative-sticky).
DEFAULT_STRATEGY: tuple[str, ...] = ("range", "cooperative-sticky")

#: Largest group one assignor call accepts.
MAX_MEMBERS_PER_CALL = 10_000
#: Largest number of partitions (summed over all topics) one assignor call accepts.
MAX_PARTITIONS_PER_CALL = 10_000
#: Largest ``max_rounds`` :func:`rebalance_until_stable` accepts.
MAX_REBALANCE_ROUNDS = 10


class AssignorError(CoreLogError, ValueError):
    """Input an assignor cannot work with: unknown strategy, bad member or topic data, a limit exceeded.

    Nothing was assigned; the message says what to fix. ``kafka_name`` is the
    error Kafka's coordinator would answer with where one applies.
    """

    kafka_name = "INVALID_REQUEST"

    def __init__(self, message: str, kafka_name: str | None = None) -> None:
        super().__init__(message)
        if kafka_name is not None:
            self.kafka_name = kafka_name


#: What a rebalance hands out: member id → its partitions, sorted.
Assignment = Mapping[str, tuple[TopicPartition, ...]]


def _as_tuple(values: object, what: str) -> tuple:
    if isinstance(values, (str, bytes)):
        raise AssignorError(f"{what} must be a sequence, got the string {values!r}")
    try:
        return tuple(values)  # type: ignore[arg-type]
    except TypeError:
        raise AssignorError(f"{what} must be a sequence, got {type(values).__name__}") from None


@dataclass(frozen=True)
class Subscription:
    """What one member tells the group in JoinGroup.

    ``topics`` and ``owned_partitions`` are normalised to sorted tuples without
    duplicates (partitions become :class:`TopicPartition`). ``owned_partitions``
    is what the member held after the previous rebalance (empty for a new
    member); ``generation`` is the generation of that rebalance
    (:data:`UNKNOWN_GENERATION` if unknown); ``group_instance_id`` is set for a
    static member (KIP-345).
    """

    member_id: str
    topics: tuple[str, ...] = ()
    owned_partitions: tuple[TopicPartition, ...] = ()
    generation: int = UNKNOWN_GENERATION
    group_instance_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.member_id, str) or not self.member_id:
            raise AssignorError(f"member_id must be a non-empty string, got {self.member_id!r}")
        who = f"member {self.member_id!r}"
        topics = _as_tuple(self.topics, f"{who}: topics")
        for topic in topics:
            if not isinstance(topic, str) or not topic:
                raise AssignorError(f"{who}: every topic must be a non-empty string, got {topic!r}")
        owned: list[TopicPartition] = []
        for tp in _as_tuple(self.owned_partitions, f"{who}: owned_partitions"):
            if not isinstance(tp, tuple) or len(tp) != 2:
                raise AssignorError(f"{who}: owned partitions must be (topic, partition) pairs, got {tp!r}")
            topic, partition = tp
            if not isinstance(topic, str) or not topic:
                raise AssignorError(f"{who}: owned partition {tp!r} has no topic name")
            if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
                raise AssignorError(f"{who}: owned partition {tp!r} needs a partition number >= 0")
            owned.append(TopicPartition(topic, partition))
        if not isinstance(self.generation, int) or isinstance(self.generation, bool) \
                or self.generation < UNKNOWN_GENERATION:
            raise AssignorError(f"{who}: generation must be a whole number >= -1, got {self.generation!r}")
        if self.group_instance_id is not None and (
                not isinstance(self.group_instance_id, str) or not self.group_instance_id):
            raise AssignorError(f"{who}: group_instance_id must be None or a non-empty string, "
                                f"got {self.group_instance_id!r}")
        object.__setattr__(self, "topics", tuple(sorted(set(topics))))
        object.__setattr__(self, "owned_partitions", tuple(sorted(set(owned))))


@dataclass(frozen=True)
class AssignmentResult:
    """The outcome of one rebalance.

    ``assignment`` has every member (idle ones with ``()``), keys in member-id
    order. ``revoked`` says, per member, what it gives up in this rebalance:
    under the eager protocol everything it owned (it revokes all before
    rejoining), under the cooperative protocol only what it owned and does not
    keep. ``unassigned`` lists partitions revoked in this rebalance that nobody
    holds yet — the follow-up rebalance assigns them. ``idle_members`` are the
    members that get no partition even once the follow-up is done.
    ``unknown_topics`` are subscribed topics with no known partition count
    (skipped). ``explanation`` is one sentence for the UI.
    """

    strategy: str
    protocol: str
    assignment: Mapping[str, tuple[TopicPartition, ...]]
    revoked: Mapping[str, tuple[TopicPartition, ...]]
    idle_members: tuple[str, ...]
    unassigned: tuple[TopicPartition, ...]
    unknown_topics: tuple[str, ...]
    explanation: str

    @property
    def revoked_count(self) -> int:
        """How many partitions members revoke in this rebalance, summed over members."""
        return sum(len(tps) for tps in self.revoked.values())

    @property
    def needs_follow_up(self) -> bool:
        """True if Kafka's cooperative protocol would rejoin: some member revoked a partition."""
        return self.protocol == COOPERATIVE and self.revoked_count > 0

    def owners(self) -> dict[TopicPartition, str]:
        """Partition → the member it is assigned to, in partition order."""
        return dict(sorted((tp, member) for member, tps in self.assignment.items() for tp in tps))

    def partition_counts(self) -> dict[str, int]:
        """Member → how many partitions it was assigned."""
        return {member: len(tps) for member, tps in self.assignment.items()}


# ── validated input ──────────────────────────────────────────────────────────


def _member_sort_key(sub: Subscription) -> tuple[int, str, str]:
    """Kafka's MemberInfo order: static members first by instance id, then dynamic ones by member id."""
    if sub.group_instance_id is not None:
        return (0, sub.group_instance_id, sub.member_id)
    return (1, sub.member_id, "")


class _Group:
    """One assignor call's input, validated, with the lookups every assignor needs."""

    def __init__(self, subscriptions: Iterable[Subscription], partitions_per_topic: Mapping[str, int]) -> None:
        if not isinstance(partitions_per_topic, Mapping):
            raise AssignorError("partitions_per_topic must be a mapping of topic name to partition count, "
                                f"got {type(partitions_per_topic).__name__}")
        counts: dict[str, int] = {}
        total = 0
        for topic, count in partitions_per_topic.items():
            if not isinstance(topic, str) or not topic:
                raise AssignorError(f"topic names must be non-empty strings, got {topic!r}")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise AssignorError(f"topic {topic!r} needs a partition count >= 0, got {count!r}")
            counts[topic] = count
            total += count
        if total > MAX_PARTITIONS_PER_CALL:
            raise AssignorError(f"{total} partitions in one assignment exceed max_partitions_per_call "
                                f"({MAX_PARTITIONS_PER_CALL})")
        if isinstance(subscriptions, Mapping):
            raise AssignorError("subscriptions must be a sequence of Subscription, one per member, not a mapping")
        subs = _as_tuple(subscriptions, "subscriptions")
        if len(subs) > MAX_MEMBERS_PER_CALL:
            raise AssignorError(f"{len(subs)} members exceed max_members_per_call ({MAX_MEMBERS_PER_CALL})")
        by_id: dict[str, Subscription] = {}
        instance_owner: dict[str, str] = {}
        for sub in subs:
            if not isinstance(sub, Subscription):
                raise AssignorError(f"expected a Subscription per member, got {type(sub).__name__}")
            if sub.member_id in by_id:
                raise AssignorError(f"member id {sub.member_id!r} appears twice; member ids must be unique")
            if sub.group_instance_id is not None:
                other = instance_owner.get(sub.group_instance_id)
                if other is not None:
                    raise AssignorError(
                        f"members {other!r} and {sub.member_id!r} share group.instance.id "
                        f"{sub.group_instance_id!r}; Kafka fences the older one", kafka_name="FENCED_INSTANCE_ID")
                instance_owner[sub.group_instance_id] = sub.member_id
            by_id[sub.member_id] = sub

        self.counts = counts
        self.subs = by_id
        self.members: list[str] = [s.member_id for s in sorted(by_id.values(), key=_member_sort_key)]
        self.order: dict[str, int] = {m: i for i, m in enumerate(self.members)}
        self.topics_of: dict[str, tuple[str, ...]] = {
            m: tuple(t for t in by_id[m].topics if t in counts) for m in self.members}
        self.topic_sets: dict[str, frozenset[str]] = {m: frozenset(ts) for m, ts in self.topics_of.items()}
        self.unknown_topics: tuple[str, ...] = tuple(sorted(
            {t for s in by_id.values() for t in s.topics if t not in counts}))
        self.topics: tuple[str, ...] = tuple(sorted({t for ts in self.topics_of.values() for t in ts}))
        #: topic → its subscribers, in member order
        self.subscribers: dict[str, list[str]] = {t: [] for t in self.topics}
        for m in self.members:
            for t in self.topics_of[m]:
                self.subscribers[t].append(m)
        #: every partition some member subscribes to, sorted by topic then partition
        self.partitions: list[TopicPartition] = [
            TopicPartition(t, p) for t in self.topics for p in range(counts[t])]
        #: partition → every member that claims it (whether or not the claim is valid), in member order
        self.claimants: dict[TopicPartition, list[str]] = {}
        for m in self.members:
            for tp in by_id[m].owned_partitions:
                self.claimants.setdefault(tp, []).append(m)

    def all_subscriptions_equal(self) -> bool:
        first = self.topic_sets[self.members[0]]
        return all(self.topic_sets[m] == first for m in self.members)

    def valid_owners(self) -> dict[TopicPartition, str]:
        """Partition → its previous owner, where the claim is unambiguous (see the module docstring)."""
        owners: dict[TopicPartition, str] = {}
        for tp, claimants in self.claimants.items():
            if tp.topic not in self.counts or tp.partition >= self.counts[tp.topic]:
                continue  # the topic or partition no longer exists
            valid = [m for m in claimants if tp.topic in self.topic_sets[m]]
            if not valid:
                continue
            newest = max(self.subs[m].generation for m in valid)
            top = [m for m in valid if self.subs[m].generation == newest]
            if len(top) == 1:
                owners[tp] = top[0]
        return owners


# ── the four assignors ───────────────────────────────────────────────────────


Target = dict[str, list[TopicPartition]]


def _range_target(group: _Group) -> Target:
    target: Target = {m: [] for m in group.members}
    for topic in group.topics:
        consumers = group.subscribers[topic]
        per_member, extra = divmod(group.counts[topic], len(consumers))
        start = 0
        for i, member in enumerate(consumers):
            length = per_member + (1 if i < extra else 0)
            target[member].extend(TopicPartition(topic, p) for p in range(start, start + length))
            start += length
    return target


def _roundrobin_target(group: _Group) -> Target:
    target: Target = {m: [] for m in group.members}
    n = len(group.members)
    # member positions (in member order) of each topic's subscribers, ascending
    positions = {t: [group.order[m] for m in group.subscribers[t]] for t in group.topics}
    cursor = 0  # Kafka's CircularIterator over the sorted members
    for tp in group.partitions:
        eligible = positions[tp.topic]
        lo = bisect_left(eligible, cursor)  # first subscriber at or after the cursor, wrapping around
        position = eligible[lo] if lo < len(eligible) else eligible[0]
        target[group.members[position]].append(tp)
        cursor = (position + 1) % n
    return target


def _sticky_target(group: _Group) -> Target:
    if not group.members:
        return {}
    owners = group.valid_owners()
    if group.all_subscriptions_equal():
        return _sticky_equal_subscriptions(group, owners)
    return _sticky_general(group, owners)


def _sticky_equal_subscriptions(group: _Group, owners: dict[TopicPartition, str]) -> Target:
    """Every member reads the same topics: quotas of ⌊P/C⌋ or ⌈P/C⌉, kept owners first."""
    members = group.members
    min_quota, extra = divmod(len(group.partitions), len(members))
    owned: dict[str, list[TopicPartition]] = {m: [] for m in members}
    for tp in group.partitions:
        owner = owners.get(tp)
        if owner is not None:
            owned[owner].append(tp)
    # The `extra` members allowed one more than min_quota go to those that already hold that many:
    # each such choice saves one move. Ties: the member order.
    ranked = sorted(members, key=lambda m: (-min(len(owned[m]), min_quota + 1), group.order[m]))
    quota = {m: min_quota for m in members}
    for m in ranked[:extra]:
        quota[m] = min_quota + 1
    target: Target = {m: owned[m][:quota[m]] for m in members}
    kept = {tp for m in members for tp in target[m]}
    # Deal the free partitions one at a time over the members still under quota, in member order
    # (as Kafka does), so each gets a spread of topics rather than one block.
    needy = deque(m for m in members if len(target[m]) < quota[m])
    for tp in group.partitions:
        if tp in kept:
            continue
        member = needy.popleft()
        target[member].append(tp)
        if len(target[member]) < quota[member]:
            needy.append(member)
    return target


def _sticky_general(group: _Group, owners: dict[TopicPartition, str]) -> Target:
    """Members read different topics: keep owners, fill the least loaded, then balance along paths.

    The goal is the most balanced assignment possible: the least sum of squared
    counts. Partitions move along *improving paths*: a member takes a partition
    from a second member, which takes one from a third, … which holds two or
    more partitions more than the first; only the two ends' counts change. An
    assignment with no improving path has the least sum of squares (this is a
    min-cost flow with convex costs), and in particular no partition could move
    to a subscriber with two or more fewer (Kafka's balance rule).

    Paths are searched twice: first moving only partitions that are not with
    their previous owner — so owners keep all of theirs whenever balance allows
    it — then any partition, preferring paths that take few partitions from
    their owners. A consequence the cooperative protocol relies on: when the
    owned partitions are part of some most-balanced assignment (as in the
    follow-up rebalance), no owned partition moves at all.
    """
    count = {m: 0 for m in group.members}
    holder: dict[TopicPartition, str] = {}
    for tp in group.partitions:
        owner = owners.get(tp)
        if owner is not None:
            holder[tp] = owner
            count[owner] += 1
    fresh = [tp for tp in group.partitions if tp not in holder]
    # Partitions with the fewest possible takers first (Kafka does the same), each to the least
    # loaded subscriber. Counts only grow here, so a heap with lazily refreshed entries works.
    fresh.sort(key=lambda tp: (len(group.subscribers[tp.topic]), tp))
    heaps: dict[str, list[tuple[int, int, str]]] = {}
    for tp in fresh:
        heap = heaps.get(tp.topic)
        if heap is None:
            heap = [(count[m], group.order[m], m) for m in group.subscribers[tp.topic]]
            heapq.heapify(heap)
            heaps[tp.topic] = heap
        while heap[0][0] != count[heap[0][2]]:
            _, position, m = heap[0]
            heapq.heapreplace(heap, (count[m], position, m))
        _, position, member = heap[0]
        holder[tp] = member
        count[member] += 1
        heapq.heapreplace(heap, (count[member], position, member))

    # previous owner of each partition, by topic and number
    owner_of: dict[str, dict[int, str]] = {t: {} for t in group.topics}
    for tp, owner in owners.items():
        owner_of[tp.topic][tp.partition] = owner
    # kept[topic][member]: partition numbers of topic the member holds and owned before;
    # foreign[topic][member]: the ones it holds and did not own. Members in member order.
    kept: dict[str, dict[str, list[int]]] = {t: {} for t in group.topics}
    foreign: dict[str, dict[str, list[int]]] = {t: {} for t in group.topics}
    for m in group.members:
        for t in group.topics_of[m]:
            kept[t][m] = []
            foreign[t][m] = []
    for tp in group.partitions:
        member = holder[tp]
        (kept if owners.get(tp) == member else foreign)[tp.topic][member].append(tp.partition)

    def move(taker: str, giver: str, topic: str, allow_owned: bool) -> None:
        # Prefer a partition going back to its previous owner, then one the giver did not own
        # before, then the highest-numbered.
        previous = owner_of[topic]
        choices = kept[topic][giver] + foreign[topic][giver] if allow_owned else foreign[topic][giver]
        choice = max(choices, key=lambda p: (previous.get(p) == taker, previous.get(p) != giver, p))
        (kept if previous.get(choice) == giver else foreign)[topic][giver].remove(choice)
        (kept if previous.get(choice) == taker else foreign)[topic][taker].append(choice)
        count[taker] += 1
        count[giver] -= 1

    def one_step_moves(allow_owned: bool) -> None:
        # Paths of length one are cheap to find: a subscriber of a topic takes one of its
        # partitions straight from a holder with two or more partitions more.
        moved_any = True
        while moved_any:
            moved_any = False
            for topic in group.topics:
                subscribers = group.subscribers[topic]
                while True:
                    taker = min(subscribers, key=lambda m: (count[m], group.order[m]))
                    givers = [m for m in subscribers if count[m] >= count[taker] + 2 and (
                        foreign[topic][m] or (allow_owned and kept[topic][m]))]
                    if not givers:
                        break
                    giver = max(givers, key=lambda m: (count[m], bool(foreign[topic][m]), -group.order[m]))
                    move(taker, giver, topic, allow_owned)
                    moved_any = True

    def augment(allow_owned: bool, dead: set[str]) -> bool:
        """Apply a batch of node-disjoint improving paths; False if there is none.

        One search from the lightest members outwards; an edge x → y means x takes a
        partition of topic t from y, and costs 1 if y must give up a partition it owned
        before, so cheap paths are found first. Sources join level by level (members with
        at most ``level`` partitions); a member reached is a target if it holds ``level + 2``
        or more. A member reached at a lower level was no target then and cannot be one
        later; each topic's holders are reached once. Paths that share no member with a path
        already applied in this search stay valid, so they are applied too.

        When a level finds no target, everything it reached goes into ``dead``: that region
        holds at most ``level + 1`` per member and no edge leaves it, and later paths (which
        run outside it and move partitions of topics nobody in it reads) cannot change that,
        so later searches skip it.
        """
        by_level: dict[int, list[str]] = {}
        for m in group.members:
            if m not in dead:
                by_level.setdefault(count[m], []).append(m)
        levels = sorted(by_level)
        best: dict[str, tuple[int, int]] = {}
        came_from: dict[str, tuple[str, str]] = {}
        queue: list[tuple[tuple[int, int], int, str]] = []
        settled: set[str] = set()
        expanded: set[str] = set()
        used: set[str] = set()
        for level in levels:
            if level + 2 > levels[-1]:
                return False
            for m in by_level[level]:
                best[m] = (0, 0)
                came_from.pop(m, None)
                heapq.heappush(queue, ((0, 0), group.order[m], m))
            while queue:
                cost, _, x = heapq.heappop(queue)
                if x in settled or cost != best[x]:
                    continue
                settled.add(x)
                if count[x] >= level + 2 and x not in used:
                    path = []  # (taker, giver, topic) from the heavy end to the light one
                    node = x
                    while node in came_from:
                        taker, topic = came_from[node]
                        path.append((taker, node, topic))
                        node = taker
                    nodes = {x} | {taker for taker, _, _ in path}
                    if not nodes & used:
                        used |= nodes
                        for taker, giver, topic in path:
                            move(taker, giver, topic, allow_owned)
                    continue
                for topic in group.topics_of[x]:
                    if topic in expanded:
                        continue
                    expanded.add(topic)
                    for y, parts in kept[topic].items():
                        gives_up_owned = 0 if foreign[topic][y] else 1
                        if y in settled or y in dead or (gives_up_owned and (not parts or not allow_owned)):
                            continue
                        new_cost = (cost[0] + gives_up_owned, cost[1] + 1)
                        if y not in best or new_cost < best[y]:
                            best[y] = new_cost
                            came_from[y] = (x, topic)
                            heapq.heappush(queue, (new_cost, group.order[y], y))
            if used:
                return True
            dead |= settled
        return False

    for allow_owned in (False, True):
        one_step_moves(allow_owned)
        dead: set[str] = set()
        while augment(allow_owned, dead):
            pass

    target: Target = {m: [] for m in group.members}
    for topic in group.topics:
        for member, parts in kept[topic].items():
            target[member].extend(TopicPartition(topic, p) for p in sorted(parts + foreign[topic][member]))
    return target


class _Assignor:
    """Shared flow: validate, compute the target, apply the rebalance protocol, explain."""

    name = ""
    protocol = EAGER
    sticky = False

    def _target(self, group: _Group) -> Target:
        raise NotImplementedError

    def assign(self, subscriptions: Iterable[Subscription],
               partitions_per_topic: Mapping[str, int]) -> AssignmentResult:
        """Assign the partitions of ``partitions_per_topic`` to the members in ``subscriptions``."""
        group = _Group(subscriptions, partitions_per_topic)
        target = self._target(group)
        withheld: list[TopicPartition] = []
        if self.protocol == COOPERATIVE:
            given: Target = {}
            for member in group.members:
                given[member] = []
                for tp in target[member]:
                    claimants = group.claimants.get(tp)
                    if claimants and member not in claimants:
                        withheld.append(tp)  # its holder revokes it first; the follow-up assigns it
                    else:
                        given[member].append(tp)
        else:
            given = target
        revoked: dict[str, tuple[TopicPartition, ...]] = {}
        for member in sorted(group.members):
            owned = group.subs[member].owned_partitions
            if self.protocol == COOPERATIVE:
                keep = frozenset(given[member])
                revoked[member] = tuple(tp for tp in owned if tp not in keep)
            else:
                revoked[member] = owned
        assignment = {m: tuple(sorted(given[m])) for m in sorted(group.members)}
        idle = tuple(sorted(m for m in group.members if not target[m]))
        owners = group.valid_owners() if self.sticky else {}
        target_sets = {m: frozenset(tps) for m, tps in target.items()}
        kept = sum(1 for tp, m in owners.items() if tp in target_sets[m])
        explanation = _explain(self, group, target, idle, sorted(withheld), len(owners), kept,
                               sum(len(tps) for tps in revoked.values()))
        return AssignmentResult(
            strategy=self.name, protocol=self.protocol, assignment=assignment, revoked=revoked,
            idle_members=idle, unassigned=tuple(sorted(withheld)), unknown_topics=group.unknown_topics,
            explanation=explanation)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, protocol={self.protocol!r})"


class RangeAssignor(_Assignor):
    """Kafka's ``range``: per topic, consecutive partitions, the first members get the extras."""

    name = "range"
    protocol = EAGER

    def _target(self, group: _Group) -> Target:
        return _range_target(group)


class RoundRobinAssignor(_Assignor):
    """Kafka's ``roundrobin``: all partitions dealt one by one over the members, skipping non-subscribers."""

    name = "roundrobin"
    protocol = EAGER

    def _target(self, group: _Group) -> Target:
        return _roundrobin_target(group)


class StickyAssignor(_Assignor):
    """Kafka's ``sticky``: balanced, keeps ownership where it can; eager protocol."""

    name = "sticky"
    protocol = EAGER
    sticky = True

    def _target(self, group: _Group) -> Target:
        return _sticky_target(group)


class CooperativeStickyAssignor(_Assignor):
    """Kafka's ``cooperative-sticky``: the sticky target, moved partitions revoked first (KIP-429)."""

    name = "cooperative-sticky"
    protocol = COOPERATIVE
    sticky = True

    def _target(self, group: _Group) -> Target:
        return _sticky_target(group)


#: Strategy name (Kafka's ``partition.assignment.strategy`` name) → assignor.
ASSIGNORS: Mapping[str, _Assignor] = {
    a.name: a for a in (RangeAssignor(), RoundRobinAssignor(), StickyAssignor(), CooperativeStickyAssignor())}


def _assignor(strategy_name: str) -> _Assignor:
    assignor = ASSIGNORS.get(strategy_name) if isinstance(strategy_name, str) else None
    if assignor is None:
        raise AssignorError(f"unknown assignment strategy {strategy_name!r}; known: {', '.join(ASSIGNORS)}",
                            kafka_name="INCONSISTENT_GROUP_PROTOCOL")
    return assignor


def assign(strategy_name: str, subscriptions: Iterable[Subscription],
           partitions_per_topic: Mapping[str, int]) -> AssignmentResult:
    """Run the assignor named ``strategy_name`` (one of :data:`ASSIGNORS`) for one rebalance."""
    return _assignor(strategy_name).assign(subscriptions, partitions_per_topic)


def rebalance_until_stable(strategy: str, subscriptions: Iterable[Subscription],
                           partitions_per_topic: Mapping[str, int],
                           max_rounds: int = 3) -> list[AssignmentResult]:
    """Run a rebalance and the follow-up rebalances it triggers; return every round in order.

    An eager strategy needs one round. Under the cooperative protocol a member
    that revoked partitions rejoins at once (Kafka's rule), so another round runs
    with every member owning what the last round gave it, at the next generation,
    until a round revokes nothing. Raises :class:`AssignorError` if that takes
    more than ``max_rounds`` rounds (1 ≤ max_rounds ≤ :data:`MAX_REBALANCE_ROUNDS`).
    """
    assignor = _assignor(strategy)
    if not isinstance(max_rounds, int) or isinstance(max_rounds, bool) \
            or not 1 <= max_rounds <= MAX_REBALANCE_ROUNDS:
        raise AssignorError(f"max_rounds must be a whole number in [1, {MAX_REBALANCE_ROUNDS}], got {max_rounds!r}")
    if isinstance(subscriptions, Mapping):
        raise AssignorError("subscriptions must be a sequence of Subscription, one per member, not a mapping")
    subs = list(_as_tuple(subscriptions, "subscriptions"))
    rounds: list[AssignmentResult] = []
    for _ in range(max_rounds):
        result = assignor.assign(subs, partitions_per_topic)
        rounds.append(result)
        if not result.needs_follow_up:
            return rounds
        generation = max(s.generation for s in subs) + 1
        subs = [replace(s, owned_partitions=result.assignment[s.member_id], generation=generation) for s in subs]
    raise AssignorError(f"{strategy} did not reach a stable assignment within {max_rounds} rebalances")


def choose_strategy(member_preferences: Sequence[Sequence[str]]) -> str:
    """The strategy the group coordinator picks, given each member's ordered strategy list.

    Kafka's rule (classic ``GroupMetadata.selectProtocol``): the candidates are the
    strategies every member lists; each member votes for the first candidate in its
    own list; the candidate with the most votes wins. Kafka leaves a tie to hash-map
    order; here a tie goes to the candidate with the best total preference (lowest
    sum of positions across all lists), then to the earlier one in the first
    member's list. Raises :class:`AssignorError` — with ``kafka_name``
    INCONSISTENT_GROUP_PROTOCOL, as Kafka's JoinGroup would answer, if a member
    lists nothing, no strategy is common to all, or a name is not one of
    :data:`ASSIGNORS` — also for no members or a name listed twice.
    """
    prefs = _as_tuple(member_preferences, "member_preferences")
    if not prefs:
        raise AssignorError("cannot choose a strategy for a group with no members")
    if len(prefs) > MAX_MEMBERS_PER_CALL:
        raise AssignorError(f"{len(prefs)} members exceed max_members_per_call ({MAX_MEMBERS_PER_CALL})")
    lists: list[tuple[str, ...]] = []
    for i, pref in enumerate(prefs):
        names = _as_tuple(pref, f"member {i}: strategies")
        if not names:
            raise AssignorError(f"member {i} supports no assignment strategy",
                                kafka_name="INCONSISTENT_GROUP_PROTOCOL")
        for name in names:
            if not isinstance(name, str) or name not in ASSIGNORS:
                raise AssignorError(f"member {i}: unknown assignment strategy {name!r}; known: "
                                    f"{', '.join(ASSIGNORS)}", kafka_name="INCONSISTENT_GROUP_PROTOCOL")
        if len(set(names)) != len(names):
            raise AssignorError(f"member {i} lists a strategy twice: {names!r}")
        lists.append(names)
    candidates = set(lists[0]).intersection(*lists[1:])
    if not candidates:
        raise AssignorError("no assignment strategy is supported by every member: "
                            + "; ".join(", ".join(names) for names in lists[:3])
                            + ("; …" if len(lists) > 3 else ""),
                            kafka_name="INCONSISTENT_GROUP_PROTOCOL")
    votes = Counter(next(name for name in names if name in candidates) for names in lists)
    rank_sum = {c: sum(names.index(c) for names in lists) for c in candidates}
    first = lists[0]
    return min(sorted(candidates), key=lambda c: (-votes[c], rank_sum[c], first.index(c)))


# ── explanation ──────────────────────────────────────────────────────────────


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _join(names: Sequence[str], limit: int = 3) -> str:
    if len(names) > limit:
        return f"{', '.join(names[:limit])} and {len(names) - limit} more"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _idle_reason(assignor: _Assignor, group: _Group, subscribed: tuple[str, ...]) -> str:
    topics = [t for t in subscribed if group.counts[t] > 0]
    if not topics:
        return "no-topics"
    sharers = {m for t in topics for m in group.subscribers[t]}
    if len(sharers) > sum(group.counts[t] for t in topics):
        return "more"
    return "range" if assignor.name == "range" else "taken"


_IDLE_REASONS = {  # reason → (because ... for one member, for several)
    "more": ("there are more consumers than partitions", "there are more consumers than partitions"),
    "no-topics": ("it subscribes to no topic with partitions", "they subscribe to no topic with partitions"),
    "range": ("range splits each topic on its own and the consumers before it in member order took every "
              "partition", "range splits each topic on its own and the consumers before them in member order "
              "took every partition"),
    "taken": ("the partitions of its topics all went to other consumers",
              "the partitions of their topics all went to other consumers"),
}


def _explain(assignor: _Assignor, group: _Group, target: Target, idle: tuple[str, ...],
             withheld: list[TopicPartition], owned_valid: int, kept: int, revoked_total: int) -> str:
    name = assignor.name
    if not group.members:
        return f"{name} had no members to give partitions to."
    given = [m for m in group.members if target[m]]
    sizes = [len(target[m]) for m in given]
    clauses: list[str] = []
    if not given:
        clauses.append(f"{name} had no partitions to give out")
    else:
        topics = sorted({tp.topic for m in given for tp in target[m]})
        topic_phrase = _join(topics) if len(topics) <= 3 else f"{len(topics)} topics"
        low, high = min(sizes), max(sizes)
        each = f"{low} each" if low == high else (
            f"{low} or {high} each" if high == low + 1 else f"between {low} and {high} each")
        clauses.append(f"{name} gave {_plural(sum(sizes), 'partition')} of {topic_phrase} "
                       f"to {_plural(len(given), 'consumer')}, {each}")
    if assignor.sticky and owned_valid:
        clauses.append(f"{kept} of the {_plural(owned_valid, 'partition')} already owned stayed with their owner")
    if assignor.protocol == COOPERATIVE and withheld:
        clauses.append(f"{_plural(len(withheld), 'partition')} {'is' if len(withheld) == 1 else 'are'} only "
                       "revoked in this rebalance and will be assigned in the follow-up rebalance")
    if assignor.protocol == EAGER and revoked_total:
        clauses.append(f"members first revoked all they owned ({_plural(revoked_total, 'partition')}), "
                       "as the eager protocol requires")
    by_reason: dict[str, list[str]] = {}
    reason_of_topics: dict[tuple[str, ...], str] = {}  # the reason depends on the member's topics only
    for member in idle:
        topics = group.topics_of[member]
        if topics not in reason_of_topics:
            reason_of_topics[topics] = _idle_reason(assignor, group, topics)
        by_reason.setdefault(reason_of_topics[topics], []).append(member)
    for reason in ("more", "range", "taken", "no-topics"):
        members = by_reason.get(reason)
        if members:
            one, many = _IDLE_REASONS[reason]
            verb, why = ("is", one) if len(members) == 1 else ("are", many)
            clauses.append(f"{_join(members)} {verb} idle because {why}")
    return "; ".join(clauses) + "."
