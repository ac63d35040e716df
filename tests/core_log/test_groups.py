"""Consumer groups on the real engine: coordinator, rebalances, commits, failover, static members."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core_log.cluster import Cluster, ClusterError
from core_log.consumer import Consumer, ConsumerConfig
from core_log.consumer_protocol import (
    MemberSubscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from core_log.errors import ConfigError
from core_log.kafka_types import ProtocolDecodeError, Writer
from core_log.messages import ILLEGAL_GENERATION, TopicPartition
from core_log.offsets import (
    OFFSETS_TOPIC,
    OffsetAndMetadata,
    decode_record,
    java_string_hash,
    offset_key,
    offset_value,
    partition_for_group,
)
from core_log.workloads import TelemetryProducer

TOPIC = "machine.telemetry"


def _cluster(partitions: int = 6, seed: int = 3, **config) -> Cluster:
    c = Cluster(brokers=3, seed=seed, strict=True)
    c.create_topic(TOPIC, partitions, 3)
    c.run_for(500)
    return c


def _cfg(**kw) -> ConsumerConfig:
    base = dict(group_id="billing", auto_offset_reset="earliest", session_timeout_ms=10_000)
    base.update(kw)
    return ConsumerConfig(**base)


def _members(c: Cluster, n: int, **kw) -> list[Consumer]:
    out = [Consumer(c, f"c{i}", _cfg(**kw)) for i in range(1, n + 1)]
    for m in out:
        m.subscribe([TOPIC])
    return out


def _stable(c: Cluster, members: list[Consumer]) -> bool:
    groups = c.describe_groups()
    return bool(groups) and groups[0]["state"] == "Stable" and all(
        m.group is not None and m.group.phase == "stable" and not m.group.rejoin_needed for m in members)


def _owners(members: list[Consumer]) -> dict[TopicPartition, str]:
    out: dict[TopicPartition, str] = {}
    for m in members:
        for tp in m.assignment:
            assert tp not in out, f"{tp} owned by {out[tp]} and {m.node_id}"
            out[tp] = m.node_id
    return out


# ── the guide's examples ─────────────────────────────────────────────────────


def test_six_partitions_three_consumers_two_each_and_a_fourth_is_idle():
    """Ensure a group of 3 on 6 partitions splits 2/2/2 and a 4th member gets a share; 7 members leave one idle."""
    c = _cluster()
    members = _members(c, 3)
    assert c.run_until(lambda: _stable(c, members), 20_000)
    assert sorted(len(m.assignment) for m in members) == [2, 2, 2]
    assert len(_owners(members)) == 6
    more = [Consumer(c, f"c{i}", _cfg()) for i in range(4, 8)]
    for m in more:
        m.subscribe([TOPIC])
    everyone = members + more
    assert c.run_until(lambda: _stable(c, everyone) and len(_owners(everyone)) == 6, 60_000)
    idle = [m for m in everyone if not m.assignment]
    assert len(idle) == 1 and idle[0].describe()["group"]["idle"] is True
    rebalanced = c.events.of_kind("GroupRebalanced")[-1]
    assert "idle" in rebalanced.text and idle[0].node_id in rebalanced.text


def test_new_member_gets_its_id_from_the_coordinator_first():
    """Ensure a dynamic member's first JoinGroup is answered MEMBER_ID_REQUIRED and it rejoins with that id (KIP-394)."""
    c = _cluster()
    (m,) = _members(c, 1)
    assert c.run_until(lambda: _stable(c, [m]), 20_000)
    assert m.group is not None and m.group.member_id.startswith("c1-")
    assert c.describe_groups()[0]["members"][0]["member_id"] == m.group.member_id


def test_initial_rebalance_delay_forms_one_generation_for_a_fleet():
    """Ensure members starting together land in generation 1 after group.initial.rebalance.delay.ms, not many generations."""
    c = _cluster()
    members = _members(c, 3)
    assert c.run_until(lambda: _stable(c, members), 20_000)
    assert c.describe_groups()[0]["generation"] == 1
    started = c.events.of_kind("GroupRebalanceStarted")[0].time_ms
    done = c.events.of_kind("GroupRebalanced")[0].time_ms
    assert done - started >= c.config.group_initial_rebalance_delay_ms


def test_crashed_consumer_partitions_move_and_resume_from_committed_offset():
    """Ensure a crashed member is removed after session.timeout.ms and its partitions resume at the committed offset."""
    c = _cluster()
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=200, machines=30).start()
    members = _members(c, 2, enable_auto_commit=False)
    assert c.run_until(lambda: _stable(c, members), 20_000)
    c.run_for(3000)
    victim, survivor = members
    futures = [victim.commit_sync(), survivor.commit_sync()]
    assert c.run_until(lambda: all(f.done for f in futures), 10_000) and all(f.ok for f in futures)
    committed = dict(futures[0].offsets)
    c.run_for(2000)  # the victim reads on past its commit, then dies without committing
    victim.crash()
    crash_ms = c.now_ms()
    assert c.run_until(lambda: len(survivor.assignment) == 6, 40_000)
    removed = c.events.of_kind("GroupMemberRemoved")[-1]
    assert "session.timeout.ms=10000" in removed.text
    assert removed.time_ms - crash_ms >= 10_000 - 3000
    assert c.run_until(lambda: all(survivor.positions.get(tp) is not None for tp in committed), 5000)
    c.run_for(3000)
    polls_after = [op for op in c.history.ops if op.process == "c2" and op.f == "poll" and op.type == "ok"
                   and op.time_ms > removed.time_ms]
    first_read = {}
    for op in polls_after:
        for p, reads in op.value.items():
            first_read.setdefault(p, reads[0][0])
    for tp, offset in committed.items():
        assert first_read[str(tp)] == offset, f"{tp} resumed at {first_read[str(tp)]}, committed {offset}"


def test_coordinator_crash_moves_the_group_and_loses_no_commit():
    """Ensure killing the coordinator's broker moves the group to the new leader with the same generation and commits."""
    c = _cluster()
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=100, machines=20).start()
    members = _members(c, 3)
    assert c.run_until(lambda: _stable(c, members), 20_000)
    c.run_for(8000)
    futures = [m.commit_sync() for m in members]
    assert c.run_until(lambda: all(f.done for f in futures), 10_000) and all(f.ok for f in futures)
    before = c.describe_groups()[0]
    committed = {str(tp): off for f in futures for tp, off in f.offsets.items()}
    c.crash_broker(before["coordinator"])
    assert c.run_until(lambda: bool(c.describe_groups()) and c.describe_groups()[0]["coordinator"]
                       != before["coordinator"], 30_000)
    after = c.describe_groups()[0]
    assert after["generation"] == before["generation"] and after["state"] == "Stable"
    for p, off in committed.items():
        assert after["committed"][p] >= off
    loaded = c.events.of_kind("GroupCoordinatorLoaded")[-1]
    assert "restored 6 committed offset(s)" in loaded.text
    c.run_for(15_000)  # members find the new coordinator and keep heartbeating: no rebalance
    assert c.describe_groups()[0]["generation"] == before["generation"]
    assert all(m.group is not None and m.group.coordinator == after["coordinator"] for m in members)


def test_commits_are_kafka_format_records_in_consumer_offsets():
    """Ensure a commit is a record of __consumer_offsets (compacted) that decodes to the group, partition and offset."""
    c = _cluster()
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=100, machines=20).start()
    (m,) = _members(c, 1)
    assert c.run_until(lambda: _stable(c, [m]), 20_000)
    c.run_for(2000)
    f = m.commit_sync({TopicPartition(TOPIC, 2): 7})
    assert c.run_until(lambda: f.done, 5000) and f.ok
    topic = c.topics[OFFSETS_TOPIC]
    assert topic.log_config.compact and topic.replication_factor == 3
    tp = TopicPartition(OFFSETS_TOPIC, partition_for_group("billing", topic.partitions))
    leader = c.leader_of(tp)
    records = c.replica(leader, tp).log.read_records(0)
    decoded = [decode_record(r.key, r.value) for r in records]
    commits = [d for d in decoded if d.kind == "offset" and d.tp == TopicPartition(TOPIC, 2)]
    assert commits and commits[-1].value.offset == 7
    assert "committed offset 7" in commits[-1].describe()
    groups = [d for d in decoded if d.kind == "group"]
    assert groups and groups[-1].value.generation >= 1


def test_stale_generation_commit_is_refused():
    """Ensure a member whose generation is behind gets ILLEGAL_GENERATION on commit (its partitions may be gone)."""
    c = _cluster()
    members = _members(c, 2, enable_auto_commit=False)
    assert c.run_until(lambda: _stable(c, members), 20_000)
    stale = members[0]
    assert stale.group is not None
    stale.group.generation -= 1  # what a member that slept through a rebalance still believes
    f = stale.commit_async({TopicPartition(TOPIC, 0): 1})
    assert c.run_until(lambda: f.done, 5000)
    assert f.error == ILLEGAL_GENERATION


def test_static_member_restart_within_session_keeps_partitions_without_rebalance():
    """Ensure a static member (group.instance.id) that restarts within session.timeout.ms gets its partitions back, same generation."""
    c = _cluster()
    members = [Consumer(c, f"s{i}", _cfg(group_instance_id=f"host-{i}")) for i in (1, 2, 3)]
    for m in members:
        m.subscribe([TOPIC])
    assert c.run_until(lambda: _stable(c, members), 20_000)
    generation = c.describe_groups()[0]["generation"]
    target = next(m for m in members if m.group is not None
                  and m.group.member_id != c.describe_groups()[0]["leader"])
    before = target.assignment
    target.crash()
    c.run_for(3000)
    target.restart()
    assert c.run_until(lambda: target.assignment == before, 10_000)
    c.run_for(15_000)
    assert c.describe_groups()[0]["generation"] == generation
    assert c.events.of_kind("StaticMemberRejoined")
    assert not c.events.of_kind("GroupMemberRemoved")


def test_member_that_stops_polling_leaves_after_max_poll_interval():
    """Ensure a member that does not poll for max.poll.interval.ms leaves, others take its partitions, and it rejoins on poll."""
    c = _cluster()
    busy = Consumer(c, "busy", _cfg(max_poll_interval_ms=8000), auto_poll=False)
    ok = Consumer(c, "ok", _cfg(max_poll_interval_ms=8000))
    busy.subscribe([TOPIC])
    ok.subscribe([TOPIC])
    assert c.run_until(lambda: _stable(c, [busy, ok]), 20_000)
    busy.poll()
    assert c.run_until(lambda: len(ok.assignment) == 6, 30_000)
    assert c.events.of_kind("PollTimeout")
    busy.poll()
    assert c.run_until(lambda: len(busy.assignment) == 3 and len(ok.assignment) == 3, 30_000)


def test_auto_commit_commits_what_the_previous_poll_returned():
    """Ensure auto-commit inside poll() commits the positions before this poll's records (the previous poll's)."""
    c = _cluster(partitions=1)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=50, machines=5).start()
    m = Consumer(c, "app", _cfg(auto_commit_interval_ms=1000, max_poll_records=10), auto_poll=False)
    m.subscribe([TOPIC])
    assert c.run_until(lambda: _stable(c, [m]), 20_000)
    tp = TopicPartition(TOPIC, 0)
    assert c.run_until(lambda: bool(m._buffers.get(tp)), 10_000)
    c.run_for(1500)
    first = m.poll()
    assert first
    after_first = m.positions[tp]
    c.run_for(1500)
    second = m.poll()  # this poll's auto-commit carries after_first, not the end of `second`
    assert second
    c.run_for(500)
    assert m.committed[tp] == after_first < m.positions[tp]


def test_eager_rebalance_revokes_everything_cooperative_only_what_moves():
    """Ensure adding a 3rd member revokes all 4 owned partitions under eager range but only the moved ones under cooperative-sticky."""
    revoked = {}
    for strategy in ("range", "cooperative-sticky"):
        c = _cluster(partitions=6)
        members = _members(c, 2, partition_assignment_strategy=(strategy,))
        assert c.run_until(lambda: _stable(c, members), 20_000)
        base = sum(m.group.revocations for m in members)
        third = Consumer(c, "c3", _cfg(partition_assignment_strategy=(strategy,)))
        third.subscribe([TOPIC])
        everyone = members + [third]
        assert c.run_until(lambda: _stable(c, everyone) and len(_owners(everyone)) == 6
                           and all(len(m.assignment) == 2 for m in everyone), 60_000)
        revoked[strategy] = sum(m.group.revocations for m in members) - base
    assert revoked["range"] == 6
    assert revoked["cooperative-sticky"] == 2


# ── validation ───────────────────────────────────────────────────────────────


def test_bad_group_configs_are_named_errors():
    """Ensure invalid consumer group settings raise ConfigError/ValueError with a reason and the cluster keeps going."""
    c = _cluster()
    with pytest.raises(ConfigError, match="heartbeat_interval_ms"):
        ConsumerConfig(group_id="g", session_timeout_ms=3000, heartbeat_interval_ms=3000)
    with pytest.raises(ConfigError, match="unknown assignment strategy"):
        ConsumerConfig(group_id="g", partition_assignment_strategy=("fair",))
    with pytest.raises(ConfigError, match="group_instance_id needs a group_id"):
        ConsumerConfig(group_instance_id="x")
    with pytest.raises(ValueError, match="no group_id"):
        Consumer(c, "nog").subscribe([TOPIC])
    with pytest.raises(ValueError, match="unknown topic"):
        Consumer(c, "g1", _cfg()).subscribe(["nope"])
    with pytest.raises(ClusterError, match="reserved"):
        c.create_topic("__mine", 1, 1)


def test_session_timeout_outside_broker_bounds_stops_the_member_with_a_reason():
    """Ensure a session.timeout.ms below group.min.session.timeout.ms is refused (INVALID_SESSION_TIMEOUT), not hung."""
    c = _cluster()
    m = Consumer(c, "tiny", _cfg(session_timeout_ms=2000, heartbeat_interval_ms=500))
    m.subscribe([TOPIC])
    assert c.run_until(lambda: m.group is not None and m.group.fatal is not None, 20_000)
    assert "INVALID_SESSION_TIMEOUT" in m.group.fatal
    assert c.events.of_kind("ConsumerFenced")


# ── formats ──────────────────────────────────────────────────────────────────


def test_java_string_hash_matches_java():
    """Ensure java_string_hash equals Java's String.hashCode on known values (incl. overflow and surrogates)."""
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("polygenelubricants") == -2147483648
    assert java_string_hash("\U0001F600") == 0xD83D * 31 + 0xDE00  # one code point, two UTF-16 units
    assert partition_for_group("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) is 0


def test_offset_record_round_trip():
    """Ensure the OffsetCommit key/value encode and decode back to the same group, partition and offset."""
    key = offset_key("g", TopicPartition("t", 3))
    value = offset_value(OffsetAndMetadata(42, 5, "meta", 1000))
    d = decode_record(key, value)
    assert (d.kind, d.group_id, d.tp, d.value) == ("offset", "g", TopicPartition("t", 3),
                                                   OffsetAndMetadata(42, 5, "meta", 1000))
    assert decode_record(key, None).value is None


def test_consumer_protocol_round_trip_and_old_versions():
    """Ensure subscriptions/assignments round-trip and a v0 subscription (topics + user data only) decodes."""
    sub = MemberSubscription(("a", "b"), (TopicPartition("a", 1), TopicPartition("b", 0)), 7)
    assert decode_subscription(encode_subscription(sub)) == sub
    v0 = Writer().int16(0).int32(1).string("a").bytes_(None).done()
    assert decode_subscription(v0) == MemberSubscription(("a",))
    tps = (TopicPartition("a", 0), TopicPartition("a", 2))
    assert decode_assignment(encode_assignment(tps)) == tps
    assert decode_assignment(b"") == ()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_protocol_decoders_raise_only_protocol_decode_error(data):
    """Ensure arbitrary bytes make the consumer-protocol and offsets decoders raise ProtocolDecodeError or succeed."""
    for decode in (decode_subscription, decode_assignment, lambda b: decode_record(b, b)):
        try:
            decode(data)
        except ProtocolDecodeError:
            pass
