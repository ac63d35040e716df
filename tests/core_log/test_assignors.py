"""Kafka's partition assignors: range, roundrobin, sticky and cooperative-sticky."""

from __future__ import annotations

from typing import Callable, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_log.assignors import (
    ASSIGNORS,
    COOPERATIVE,
    DEFAULT_STRATEGY,
    EAGER,
    MAX_MEMBERS_PER_CALL,
    MAX_PARTITIONS_PER_CALL,
    AssignmentResult,
    AssignorError,
    Subscription,
    assign,
    choose_strategy,
    rebalance_until_stable,
)
from core_log.errors import CoreLogError
from core_log.messages import TopicPartition

STRATEGIES = ("range", "roundrobin", "sticky", "cooperative-sticky")
STICKY = ("sticky", "cooperative-sticky")
DETERMINISTIC = settings(max_examples=150, derandomize=True, database=None, deadline=None)


def tps(spec: str) -> tuple[TopicPartition, ...]:
    """'t0:0,1 t1:2' → (t0-0, t0-1, t1-2)."""
    out = []
    for part in spec.split():
        topic, numbers = part.split(":")
        out.extend(TopicPartition(topic, int(n)) for n in numbers.split(","))
    return tuple(out)


def sub(member_id: str, topics: str, owned: str = "", generation: int = -1,
        group_instance_id: str | None = None) -> Subscription:
    return Subscription(member_id, tuple(topics.split()), tps(owned), generation, group_instance_id)


def final(strategy: str, subs, counts) -> AssignmentResult:
    return rebalance_until_stable(strategy, subs, counts)[-1]


# ── table tests ──────────────────────────────────────────────────────────────


class AssignCase(NamedTuple):
    name: str
    strategy: str
    subscriptions: tuple[Subscription, ...]
    partitions_per_topic: dict[str, int]
    expected: dict[str, str]  # member → tps() spec, "" for idle


TWO_BY_THREE = (sub("C0", "t0 t1"), sub("C1", "t0 t1"))
SIX = {"t": 6}
FOUR_ON_SIX = tuple(sub(f"c{i}", "t") for i in range(1, 5))
KAFKA_JAVADOC_SUBS = (sub("C0", "t0"), sub("C1", "t0 t1"), sub("C2", "t0 t1 t2"))
KAFKA_JAVADOC_COUNTS = {"t0": 1, "t1": 2, "t2": 3}

ASSIGN_CASES = [
    # reference/kafka-semantics.md §2.7, the two worked examples
    AssignCase("range worked example", "range", TWO_BY_THREE, {"t0": 3, "t1": 3},
               {"C0": "t0:0,1 t1:0,1", "C1": "t0:2 t1:2"}),
    AssignCase("roundrobin worked example", "roundrobin", TWO_BY_THREE, {"t0": 3, "t1": 3},
               {"C0": "t0:0,2 t1:1", "C1": "t0:1 t1:0,2"}),
    AssignCase("range 6 on 4", "range", FOUR_ON_SIX, SIX,
               {"c1": "t:0,1", "c2": "t:2,3", "c3": "t:4", "c4": "t:5"}),
    AssignCase("roundrobin 6 on 4", "roundrobin", FOUR_ON_SIX, SIX,
               {"c1": "t:0,4", "c2": "t:1,5", "c3": "t:2", "c4": "t:3"}),
    AssignCase("sticky 6 on 4 from scratch", "sticky", FOUR_ON_SIX, SIX,
               {"c1": "t:0,4", "c2": "t:1,5", "c3": "t:2", "c4": "t:3"}),
    # Kafka's RoundRobinAssignor javadoc example: non-subscribers are skipped
    AssignCase("roundrobin different subscriptions", "roundrobin", KAFKA_JAVADOC_SUBS, KAFKA_JAVADOC_COUNTS,
               {"C0": "t0:0", "C1": "t1:0", "C2": "t1:1 t2:0,1,2"}),
    AssignCase("range different subscriptions", "range", KAFKA_JAVADOC_SUBS, KAFKA_JAVADOC_COUNTS,
               {"C0": "t0:0", "C1": "t1:0", "C2": "t1:1 t2:0,1,2"}),
    AssignCase("sticky different subscriptions is balanced", "sticky", KAFKA_JAVADOC_SUBS, KAFKA_JAVADOC_COUNTS,
               {"C0": "t0:0", "C1": "t1:0,1", "C2": "t2:0,1,2"}),
    AssignCase("roundrobin skips B for t0", "roundrobin", (sub("A", "t0 t1"), sub("B", "t1"), sub("C", "t0 t1")),
               {"t0": 3, "t1": 3}, {"A": "t0:0,2 t1:2", "B": "t1:0", "C": "t0:1 t1:1"}),
    # Kafka's MemberInfo order: static members (group.instance.id) sort before dynamic ones
    AssignCase("range puts static members first", "range", (sub("a", "t"), sub("b", "t", group_instance_id="i-1")),
               {"t": 3}, {"a": "t:2", "b": "t:0,1"}),
    AssignCase("sticky: a member left, the others keep theirs", "sticky",
               (sub("A", "t", "t:0,1", 1), sub("B", "t", "t:2,3", 1)), SIX, {"A": "t:0,1,4", "B": "t:2,3,5"}),
    AssignCase("sticky: a member joins, one partition moves", "sticky",
               (sub("A", "t", "t:0,1", 1), sub("B", "t", "t:2,3", 1), sub("C", "t", "t:4,5", 1), sub("D", "t")),
               SIX, {"A": "t:0,1", "B": "t:2,3", "C": "t:4", "D": "t:5"}),
    AssignCase("sticky: the higher generation wins a double claim", "sticky",
               (sub("A", "t", "t:0,1", 2), sub("B", "t", "t:0,2", 1)), {"t": 4}, {"A": "t:0,1", "B": "t:2,3"}),
    AssignCase("sticky: a same-generation double claim is kept by nobody", "sticky",
               (sub("A", "t", "t:0,1", 1), sub("B", "t", "t:0,2", 1), sub("C", "t")), {"t": 3},
               {"A": "t:1", "B": "t:2", "C": "t:0"}),
    # Kafka's local rule would stop at 2/1/3 (or leave m1 idle); we follow the chain m1 ← m0 ← m2
    AssignCase("sticky balances along a chain", "sticky",
               (sub("m0", "t0 t1", "t0:0,1", 1), sub("m1", "t0"), sub("m2", "t0 t1")), {"t0": 2, "t1": 4},
               {"m0": "t1:2,3", "m1": "t0:0,1", "m2": "t1:0,1"}),
    AssignCase("unknown topic is skipped", "range", (sub("A", "t ghost"), sub("B", "ghost")), {"t": 2},
               {"A": "t:0,1", "B": ""}),
]


@pytest.mark.parametrize("case", ASSIGN_CASES, ids=lambda c: c.name)
def test_assignment_table(case: AssignCase) -> None:
    """Ensure each assignor hands out exactly the partitions Kafka's would for these groups."""
    result = assign(case.strategy, case.subscriptions, case.partitions_per_topic)
    assert dict(result.assignment) == {m: tps(spec) for m, spec in sorted(case.expected.items())}
    assert list(result.assignment) == sorted(case.expected)
    assert result.idle_members == tuple(sorted(m for m, spec in case.expected.items() if not spec))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_six_partitions_three_consumers_two_each(strategy: str) -> None:
    """Ensure every strategy gives 6 partitions to 3 consumers 2 each ("6 partitions, 3 consumers, 2 each")."""
    result = assign(strategy, [sub(f"consumer-{i}", "machine.telemetry") for i in (3, 1, 2)],
                    {"machine.telemetry": 6})
    assert result.partition_counts() == {"consumer-1": 2, "consumer-2": 2, "consumer-3": 2}
    assert result.idle_members == ()
    assert result.explanation == f"{strategy} gave 6 partitions of machine.telemetry to 3 consumers, 2 each."


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_more_consumers_than_partitions_leaves_one_idle(strategy: str) -> None:
    """Ensure with 3 partitions and 4 consumers every strategy leaves the 4th idle and says why."""
    subs = [sub(f"consumer-{i}", "machine.telemetry") for i in range(1, 5)]
    result = final(strategy, subs, {"machine.telemetry": 3})
    assert result.partition_counts() == {"consumer-1": 1, "consumer-2": 1, "consumer-3": 1, "consumer-4": 0}
    assert result.idle_members == ("consumer-4",)
    assert result.explanation == (
        f"{strategy} gave 3 partitions of machine.telemetry to 3 consumers, 1 each; "
        "consumer-4 is idle because there are more consumers than partitions.")


def test_range_idles_a_member_when_no_topic_has_enough_partitions() -> None:
    """Ensure range (per topic) idles the 3rd of 3 members on two 2-partition topics, and says so."""
    result = assign("range", [sub(m, "a b") for m in ("m1", "m2", "m3")], {"a": 2, "b": 2})
    assert result.partition_counts() == {"m1": 2, "m2": 2, "m3": 0}
    assert result.explanation == (
        "range gave 4 partitions of a and b to 2 consumers, 2 each; m3 is idle because range splits each "
        "topic on its own and the consumers before it in member order took every partition.")
    assert assign("roundrobin", [sub(m, "a b") for m in ("m1", "m2", "m3")], {"a": 2, "b": 2}).idle_members == ()


def test_cooperative_join_revokes_first_then_assigns() -> None:
    """Ensure cooperative-sticky only revokes the moving partition, and the follow-up round assigns it."""
    subs = [sub("A", "t", "t:0,1", 1), sub("B", "t", "t:2,3", 1), sub("C", "t", "t:4,5", 1), sub("D", "t")]
    first, second = rebalance_until_stable("cooperative-sticky", subs, SIX)
    assert dict(first.assignment) == {"A": tps("t:0,1"), "B": tps("t:2,3"), "C": tps("t:4"), "D": ()}
    assert dict(first.revoked) == {"A": (), "B": (), "C": tps("t:5"), "D": ()}
    assert first.unassigned == tps("t:5") and first.needs_follow_up and first.idle_members == ()
    assert first.explanation == (
        "cooperative-sticky gave 6 partitions of t to 4 consumers, 1 or 2 each; 5 of the 6 partitions already "
        "owned stayed with their owner; 1 partition is only revoked in this rebalance and will be assigned in "
        "the follow-up rebalance.")
    assert dict(second.assignment) == {"A": tps("t:0,1"), "B": tps("t:2,3"), "C": tps("t:4"), "D": tps("t:5")}
    assert second.revoked_count == 0 and not second.needs_follow_up and second.unassigned == ()


def test_eager_revokes_everything_cooperative_only_what_moves() -> None:
    """Ensure the same join revokes all 6 partitions under eager sticky and 1 under cooperative-sticky."""
    subs = [sub("A", "t", "t:0,1", 1), sub("B", "t", "t:2,3", 1), sub("C", "t", "t:4,5", 1), sub("D", "t")]
    eager = rebalance_until_stable("sticky", subs, SIX)
    assert len(eager) == 1 and eager[0].revoked_count == 6 and eager[0].protocol == EAGER
    assert eager[0].explanation == (
        "sticky gave 6 partitions of t to 4 consumers, 1 or 2 each; 5 of the 6 partitions already owned stayed "
        "with their owner; members first revoked all they owned (6 partitions), as the eager protocol requires.")
    cooperative = rebalance_until_stable("cooperative-sticky", subs, SIX)
    assert sum(r.revoked_count for r in cooperative) == 1 and cooperative[0].protocol == COOPERATIVE
    assert cooperative[-1].assignment == eager[0].assignment


def test_cooperative_stale_and_tied_claims() -> None:
    """Ensure a stale claimant revokes its copy, and a tied double claim is withheld until both revoke it."""
    stale = rebalance_until_stable("cooperative-sticky", [sub("A", "t", "t:0,1", 2), sub("B", "t", "t:0,2", 1)],
                                   {"t": 4})
    assert dict(stale[0].assignment) == {"A": tps("t:0,1"), "B": tps("t:2,3")}
    assert dict(stale[0].revoked) == {"A": (), "B": tps("t:0")} and stale[0].unassigned == ()
    assert len(stale) == 2 and stale[1].assignment == stale[0].assignment
    tied = rebalance_until_stable(
        "cooperative-sticky", [sub("A", "t", "t:0,1", 1), sub("B", "t", "t:0,2", 1), sub("C", "t")], {"t": 3})
    assert dict(tied[0].assignment) == {"A": tps("t:1"), "B": tps("t:2"), "C": ()}
    assert dict(tied[0].revoked) == {"A": tps("t:0"), "B": tps("t:0"), "C": ()}
    assert dict(tied[1].assignment) == {"A": tps("t:1"), "B": tps("t:2"), "C": tps("t:0")}


def test_cooperative_unsubscribed_owner_revokes_before_handover() -> None:
    """Ensure a partition whose owner unsubscribed from its topic goes to the new owner only after revocation."""
    rounds = rebalance_until_stable("cooperative-sticky", [sub("A", "u", "t:0", 1), sub("B", "t u")],
                                    {"t": 1, "u": 2})
    assert rounds[0].revoked["A"] == tps("t:0") and tps("t:0")[0] not in rounds[0].owners()
    assert rounds[-1].owners()[TopicPartition("t", 0)] == "B"


def test_unknown_topics_are_skipped_and_listed() -> None:
    """Ensure a subscription to a topic with no partition count is skipped (as Kafka does) and reported."""
    result = assign("roundrobin", [sub("A", "t ghost"), sub("B", "ghost zz")], {"t": 2})
    assert result.unknown_topics == ("ghost", "zz")
    assert result.idle_members == ("B",)
    assert result.explanation == ("roundrobin gave 2 partitions of t to 1 consumer, 2 each; "
                                  "B is idle because it subscribes to no topic with partitions.")


def test_empty_group_and_topics_with_no_partitions() -> None:
    """Ensure an empty group and zero-partition topics assign nothing without error."""
    assert dict(assign("sticky", [], {"t": 3}).assignment) == {}
    result = assign("cooperative-sticky", [sub("A", "t")], {"t": 0})
    assert dict(result.assignment) == {"A": ()} and result.idle_members == ("A",)


def test_registry_and_default() -> None:
    """Ensure the registry has Kafka's four strategies with their protocols and Kafka's default list."""
    assert {name: (a.name, a.protocol) for name, a in ASSIGNORS.items()} == {
        "range": ("range", EAGER), "roundrobin": ("roundrobin", EAGER), "sticky": ("sticky", EAGER),
        "cooperative-sticky": ("cooperative-sticky", COOPERATIVE)}
    assert DEFAULT_STRATEGY == ("range", "cooperative-sticky")
    assert ASSIGNORS["range"].assign(TWO_BY_THREE, {"t0": 3, "t1": 3}) == assign("range", TWO_BY_THREE,
                                                                                 {"t0": 3, "t1": 3})


def test_subscription_is_normalised() -> None:
    """Ensure topics and owned partitions are sorted, deduplicated and owned pairs become TopicPartition."""
    s = Subscription("m", ("b", "a", "b"), (("t", 2), TopicPartition("t", 0), ("t", 2)))
    assert s.topics == ("a", "b")
    assert s.owned_partitions == (TopicPartition("t", 0), TopicPartition("t", 2))
    assert all(type(tp) is TopicPartition for tp in s.owned_partitions)


class ChooseCase(NamedTuple):
    name: str
    preferences: list[tuple[str, ...]]
    expected: str


CHOOSE_CASES = [
    ChooseCase("Kafka's default list picks range", [DEFAULT_STRATEGY] * 3, "range"),
    ChooseCase("all prefer cooperative-sticky", [("cooperative-sticky", "range")] * 2, "cooperative-sticky"),
    ChooseCase("upgrade half way: majority vote keeps range",
               [("cooperative-sticky", "range"), DEFAULT_STRATEGY, DEFAULT_STRATEGY], "range"),
    ChooseCase("upgrade mostly done: majority vote switches",
               [("cooperative-sticky", "range"), ("cooperative-sticky", "range"), DEFAULT_STRATEGY],
               "cooperative-sticky"),
    ChooseCase("only the common strategy counts", [("sticky", "roundrobin"), ("roundrobin",)], "roundrobin"),
    ChooseCase("tie in votes and ranks: first member's order", [("sticky", "roundrobin"), ("roundrobin", "sticky")],
               "sticky"),
    ChooseCase("tie in votes: best total preference",
               [("range", "sticky", "roundrobin"), ("roundrobin", "sticky", "range"),
                ("sticky", "range", "roundrobin")], "sticky"),
]


@pytest.mark.parametrize("case", CHOOSE_CASES, ids=lambda c: c.name)
def test_choose_strategy(case: ChooseCase) -> None:
    """Ensure the group picks Kafka's selectProtocol choice: common strategies, one vote per member, most votes."""
    assert choose_strategy(case.preferences) == case.expected


# ── validation ───────────────────────────────────────────────────────────────


class ErrorCase(NamedTuple):
    name: str
    call: Callable[[], object]
    message: str
    kafka_name: str = "INVALID_REQUEST"


ERROR_CASES = [
    ErrorCase("unknown strategy", lambda: assign("fair", [sub("a", "t")], {"t": 1}),
              "unknown assignment strategy 'fair'", "INCONSISTENT_GROUP_PROTOCOL"),
    ErrorCase("duplicate member id", lambda: assign("range", [sub("a", "t"), sub("a", "u")], {"t": 1}),
              "member id 'a' appears twice"),
    ErrorCase("negative partition count", lambda: assign("range", [sub("a", "t")], {"t": -1}),
              "topic 't' needs a partition count >= 0"),
    ErrorCase("bool partition count", lambda: assign("range", [sub("a", "t")], {"t": True}),
              "topic 't' needs a partition count >= 0"),
    ErrorCase("empty member id", lambda: Subscription(""), "member_id must be a non-empty string"),
    ErrorCase("topics given as one string", lambda: Subscription("a", "t"), "got the string 't'"),
    ErrorCase("negative owned partition", lambda: Subscription("a", ("t",), (("t", -1),)),
              "needs a partition number >= 0"),
    ErrorCase("generation below -1", lambda: Subscription("a", generation=-2), "generation must be"),
    ErrorCase("empty group.instance.id", lambda: Subscription("a", group_instance_id=""), "group_instance_id"),
    ErrorCase("topics not a sequence", lambda: Subscription("a", 5), "topics must be a sequence, got int"),
    ErrorCase("subscriptions as a mapping", lambda: assign("range", {"a": sub("a", "t")}, {"t": 1}), "not a mapping"),
    ErrorCase("partition counts not a mapping", lambda: assign("range", [sub("a", "t")], [("t", 1)]),
              "partitions_per_topic must be a mapping"),
    ErrorCase("not a Subscription", lambda: assign("range", [("a", ("t",))], {"t": 1}), "expected a Subscription"),
    ErrorCase("shared group.instance.id",
              lambda: assign("range", [sub("a", "t", group_instance_id="i"), sub("b", "t", group_instance_id="i")],
                             {"t": 1}), "share group.instance.id 'i'", "FENCED_INSTANCE_ID"),
    ErrorCase("too many members", lambda: assign("range", [Subscription(f"m{i}") for i in range(10_001)], {}),
              f"exceed max_members_per_call ({MAX_MEMBERS_PER_CALL})"),
    ErrorCase("too many partitions", lambda: assign("range", [sub("a", "t")], {"t": 6_000, "u": 4_001}),
              f"exceed max_partitions_per_call ({MAX_PARTITIONS_PER_CALL})"),
    ErrorCase("max_rounds out of range", lambda: rebalance_until_stable("sticky", [], {}, max_rounds=0),
              "max_rounds must be"),
    ErrorCase("not stable within max_rounds",
              lambda: rebalance_until_stable("cooperative-sticky", [sub("A", "t", "t:0,1", 1), sub("B", "t")],
                                             {"t": 2}, max_rounds=1), "did not reach a stable assignment"),
    ErrorCase("choose for no members", lambda: choose_strategy([]), "no members"),
    ErrorCase("member with no strategy", lambda: choose_strategy([("range",), ()]), "member 1 supports no",
              "INCONSISTENT_GROUP_PROTOCOL"),
    ErrorCase("no common strategy", lambda: choose_strategy([("range",), ("sticky",)]),
              "no assignment strategy is supported by every member", "INCONSISTENT_GROUP_PROTOCOL"),
    ErrorCase("unknown strategy in a list", lambda: choose_strategy([("range", "fair")]),
              "unknown assignment strategy 'fair'", "INCONSISTENT_GROUP_PROTOCOL"),
    ErrorCase("strategy listed twice", lambda: choose_strategy([("range", "range")]), "lists a strategy twice"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.name)
def test_invalid_input_raises_assignor_error(case: ErrorCase) -> None:
    """Ensure invalid input raises AssignorError (a CoreLogError and ValueError) that says what is wrong."""
    with pytest.raises(AssignorError, match=None) as info:
        case.call()
    assert case.message in str(info.value)
    assert isinstance(info.value, CoreLogError) and isinstance(info.value, ValueError)
    assert info.value.kafka_name == case.kafka_name


def test_limits_are_inclusive() -> None:
    """Ensure exactly max_members_per_call members and max_partitions_per_call partitions are accepted."""
    subs = [Subscription(f"m{i:05d}", ("t",)) for i in range(MAX_MEMBERS_PER_CALL)]
    result = assign("roundrobin", subs, {"t": MAX_PARTITIONS_PER_CALL})
    assert set(result.partition_counts().values()) == {1}


# ── properties ───────────────────────────────────────────────────────────────


class Group(NamedTuple):
    subscriptions: list[Subscription]
    partitions_per_topic: dict[str, int]


@st.composite
def groups(draw, identical: bool, max_members: int = 12, max_topics: int = 4, max_partitions: int = 20) -> Group:
    """Random groups: 1–12 members, 1–4 topics of 1–20 partitions, previous owners incl. departed and stale."""
    counts = {f"t{i}": draw(st.integers(1, max_partitions)) for i in range(draw(st.integers(1, max_topics)))}
    topics = sorted(counts)
    member_ids = draw(st.lists(st.text("abcxyz", min_size=1, max_size=3), min_size=1, max_size=max_members,
                               unique=True))
    n = len(member_ids)
    if identical:
        common = draw(st.lists(st.sampled_from(topics), min_size=1, unique=True))
        subscribed = [common] * n
    else:
        subscribed = [draw(st.lists(st.sampled_from(topics + ["ghost"]), unique=True)) for _ in range(n)]
    # previous ownership: one claimant per partition (-1: nobody or a departed member), partitions of a
    # shrunk topic (number >= count), and a few extra claims that double-claim a partition
    everything = [TopicPartition(t, p) for t in topics for p in range(counts[t] + 1)]
    owned: list[set[TopicPartition]] = [set() for _ in range(n)]
    for tp, who in zip(everything, draw(st.lists(st.integers(-1, n - 1), min_size=len(everything),
                                                 max_size=len(everything)))):
        if who >= 0:
            owned[who].add(tp)
    for index, who in draw(st.lists(st.tuples(st.integers(0, len(everything) - 1), st.integers(0, n - 1)),
                                    max_size=4)):
        owned[who].add(everything[index])
    generations = draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n))
    static = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    subs = [Subscription(m, tuple(subscribed[i]), tuple(owned[i]), generations[i],
                         f"static-{m}" if static[i] else None) for i, m in enumerate(member_ids)]
    return Group(subs, counts)


def subscribed_partitions(group: Group) -> set[TopicPartition]:
    topics = {t for s in group.subscriptions for t in s.topics if t in group.partitions_per_topic}
    return {TopicPartition(t, p) for t in topics for p in range(group.partitions_per_topic[t])}


def valid_owned(group: Group) -> dict[str, set[TopicPartition]]:
    """Independent statement of the rule: claims on subscribed, existing partitions; a unique newest claim wins."""
    claims: dict[TopicPartition, list[Subscription]] = {}
    for s in group.subscriptions:
        for tp in s.owned_partitions:
            if tp.topic in s.topics and tp.partition < group.partitions_per_topic.get(tp.topic, 0):
                claims.setdefault(tp, []).append(s)
    out: dict[str, set[TopicPartition]] = {s.member_id: set() for s in group.subscriptions}
    for tp, claimants in claims.items():
        newest = max(s.generation for s in claimants)
        top = [s for s in claimants if s.generation == newest]
        if len(top) == 1:
            out[top[0].member_id].add(tp)
    return out


def check_rounds(group: Group, rounds: list[AssignmentResult]) -> None:
    """Every round: disjoint and safe to apply; the last: every partition has exactly one owner."""
    claims = {s.member_id: set(s.owned_partitions) for s in group.subscriptions}
    topics = {s.member_id: set(s.topics) for s in group.subscriptions}
    for result in rounds:
        seen: list[TopicPartition] = [tp for tps in result.assignment.values() for tp in tps]
        assert len(seen) == len(set(seen)), "a partition is assigned to two members"
        for member, tps in result.assignment.items():
            assert all(tp.topic in topics[member] for tp in tps), "a member got a topic it does not subscribe to"
            assert list(tps) == sorted(tps)
            if result.protocol == COOPERATIVE:
                # a partition is only handed to a new holder once nobody else holds it (a holder
                # that already has it may keep it while a stale claimant revokes its copy)
                others = {tp for m, c in claims.items() if m != member for tp in c}
                assert not others & (set(tps) - claims[member]), "assigned before its holder revoked it"
                assert set(result.revoked[member]) == claims[member] - set(tps)
        assert set(seen) | set(result.unassigned) == subscribed_partitions(group)
        claims = {m: set(tps) for m, tps in result.assignment.items()}
    last = rounds[-1]
    assert last.unassigned == () and not last.needs_follow_up
    assert sorted(last.owners()) == sorted(subscribed_partitions(group))
    assert last.idle_members == tuple(sorted(m for m, tps in last.assignment.items() if not tps))


@pytest.mark.parametrize("strategy", STRATEGIES)
@DETERMINISTIC
@given(group=groups(identical=False), data=st.data())
def test_property_any_group(strategy: str, group: Group, data: st.DataObject) -> None:
    """Ensure any group ends with one owner per partition, subscribers only, safe moves, order-free results."""
    rounds = rebalance_until_stable(strategy, group.subscriptions, group.partitions_per_topic)
    assert len(rounds) <= (1 if ASSIGNORS[strategy].protocol == EAGER else 2)
    check_rounds(group, rounds)
    if strategy in STICKY:  # Kafka's balance rule: no partition could go to a subscriber with 2+ fewer
        counts = rounds[-1].partition_counts()
        for member, tps in rounds[-1].assignment.items():
            for tp in tps:
                for s in group.subscriptions:
                    if tp.topic in s.topics:
                        assert counts[member] <= counts[s.member_id] + 1
    shuffled = data.draw(st.permutations(group.subscriptions))
    assert rebalance_until_stable(strategy, shuffled, group.partitions_per_topic) == rounds


@pytest.mark.parametrize("strategy", STRATEGIES)
@DETERMINISTIC
@given(group=groups(identical=True))
def test_property_identical_subscriptions(strategy: str, group: Group) -> None:
    """Ensure identical subscriptions give counts within one, idle only beyond the partitions, minimal sticky moves."""
    rounds = rebalance_until_stable(strategy, group.subscriptions, group.partitions_per_topic)
    check_rounds(group, rounds)
    result = rounds[-1]
    counts = result.partition_counts()
    n_members = len(group.subscriptions)
    topics = group.subscriptions[0].topics
    total = sum(group.partitions_per_topic[t] for t in topics)
    if strategy == "range":  # range splits each topic on its own: balanced per topic, not overall
        for topic in topics:
            per_topic = [sum(tp.topic == topic for tp in tps) for tps in result.assignment.values()]
            assert max(per_topic) - min(per_topic) <= 1
        assert len(result.idle_members) == max(0, n_members - max(group.partitions_per_topic[t] for t in topics))
    else:
        assert max(counts.values()) - min(counts.values()) <= 1
        assert len(result.idle_members) == max(0, n_members - total)
    if strategy in STICKY:
        owned = valid_owned(group)
        quota, extra = divmod(total, n_members)
        over = sum(1 for tps in owned.values() if len(tps) > quota)
        must_move = sum(max(0, len(tps) - quota - 1) for tps in owned.values()) + max(0, over - extra)
        moved = sum(len(tps - set(result.assignment[m])) for m, tps in owned.items())
        assert moved == must_move
        if strategy == "cooperative-sticky":
            assert len(rounds) <= 2 and rounds[-1].revoked_count == 0
            first = rounds[0]  # what stays is never interrupted: kept in the first round already
            for member, tps in owned.items():
                assert tps & set(result.assignment[member]) <= set(first.assignment[member])


def least_sum_of_squares(group: Group) -> int:
    """The most balanced assignment's sum of squared counts, by dynamic programming over partitions."""
    members = [s.member_id for s in group.subscriptions]
    states = {tuple(0 for _ in members)}
    for tp in sorted(subscribed_partitions(group)):
        takers = [i for i, s in enumerate(group.subscriptions) if tp.topic in s.topics]
        states = {state[:i] + (state[i] + 1,) + state[i + 1:] for state in states for i in takers}
    return min(sum(c * c for c in state) for state in states)


@pytest.mark.parametrize("strategy", STICKY)
@DETERMINISTIC
@given(group=groups(identical=False, max_members=4, max_topics=3, max_partitions=4))
def test_property_sticky_is_most_balanced(strategy: str, group: Group) -> None:
    """Ensure with any subscriptions the sticky strategies reach the most balanced assignment possible."""
    counts = final(strategy, group.subscriptions, group.partitions_per_topic).partition_counts()
    assert sum(c * c for c in counts.values()) == least_sum_of_squares(group)
