"""Offset reset and replay through AdminClient: dry runs, the Empty-group rule, every reset kind."""

from __future__ import annotations

import pytest

from core_log.admin import AdminClient, AdminError, ResetSpec
from core_log.cluster import Cluster
from core_log.consumer import Consumer, ConsumerConfig
from core_log.messages import TopicPartition
from core_log.workloads import TelemetryProducer

TOPIC = "orders"


def _setup(seed: int = 5):
    c = Cluster(brokers=3, seed=seed, strict=True)
    c.create_topic(TOPIC, 3, 3)
    c.run_for(500)
    producer = TelemetryProducer(c, "shop", TOPIC, rate_per_s=100, machines=12)
    producer.start()
    cfg = ConsumerConfig(group_id="billing", auto_offset_reset="earliest", session_timeout_ms=10_000,
                         auto_commit_interval_ms=1000)
    consumers = [Consumer(c, f"billing-{i}", cfg) for i in (1, 2)]
    for m in consumers:
        m.subscribe([TOPIC])
    c.run_for(20_000)
    producer.stop()
    c.run_for(3000)
    return c, consumers, AdminClient(c)


def _wait(c: Cluster, future, ms: int = 20_000):
    assert c.run_until(lambda: future.done, ms), "admin call did not finish"
    assert future.error is None, future.error
    return future.result


def _committed(c: Cluster) -> dict[str, int]:
    return dict(next(g for g in c.describe_groups() if g["group_id"] == "billing")["committed"])


def test_dry_run_counts_redeliveries_and_changes_nothing():
    """Ensure a dry run to earliest reports, per partition, current → new and the records it would re-deliver."""
    c, _, admin = _setup()
    before = _committed(c)
    plan = _wait(c, admin.reset_offsets("billing", TOPIC, ResetSpec("earliest")))
    assert plan.dry_run and not plan.applied and plan.group_state == "Stable"
    for row in plan.rows:
        assert row.current == before[str(row.tp)] and row.new == row.log_start_offset == 0
        assert row.redelivered == row.current and row.skipped == 0
    assert plan.redelivered == sum(before.values()) > 0
    assert "would re-deliver" in plan.explain()
    c.run_for(2000)
    assert _committed(c) == before


def test_applying_to_a_running_group_is_refused_plainly():
    """Ensure applying a reset while members run is refused with the state and the members named, nothing changed."""
    c, _, admin = _setup()
    before = _committed(c)
    plan = _wait(c, admin.reset_offsets("billing", TOPIC, ResetSpec("earliest"), dry_run=False))
    assert not plan.applied and "Stable" in plan.error and "billing-1" in plan.error and "Stop them" in plan.error
    assert _committed(c) == before


def test_reset_to_earliest_then_restart_replays_everything():
    """Ensure reset to earliest on an Empty group, then a restarted consumer, re-reads from offset 0 (replay)."""
    c, consumers, admin = _setup()
    for m in consumers:
        m.close()
    assert c.run_until(lambda: c.describe_groups()[0]["state"] == "Empty", 20_000)
    plan = _wait(c, admin.reset_offsets("billing", TOPIC, ResetSpec("earliest"), dry_run=False))
    assert plan.applied and plan.error is None
    assert all(v == 0 for v in _committed(c).values())
    assert c.events.of_kind("OffsetsReset")
    replayer = Consumer(c, "billing-replay", ConsumerConfig(group_id="billing", session_timeout_ms=10_000))
    replayer.subscribe([TOPIC])
    c.run_for(15_000)
    reads = {}
    for op in c.history.ops:
        if op.process == "billing-replay" and op.f == "poll" and op.type == "ok":
            for p, pairs in op.value.items():
                reads.setdefault(p, []).extend(o for o, _ in pairs)
    for row in plan.rows:
        assert reads[str(row.tp)][0] == 0 and len(reads[str(row.tp)]) >= row.redelivered


@pytest.mark.parametrize("spec,check", [
    (ResetSpec("shift", -5), lambda row: row.new == max(row.log_start_offset, row.current - 5) and row.redelivered == row.current - row.new),
    (ResetSpec("offset", 10_000_000), lambda row: row.new == row.log_end_offset),
    (ResetSpec("latest"), lambda row: row.new == row.log_end_offset and row.skipped == row.new - row.current),
    (ResetSpec("offset", 3), lambda row: row.new == 3),
])
def test_reset_kinds(spec, check):
    """Ensure shift, offset (clamped into the log) and latest compute the new offsets Kafka's tool would."""
    c, _, admin = _setup()
    plan = _wait(c, admin.reset_offsets("billing", TOPIC, spec))
    assert plan.rows and all(check(row) for row in plan.rows)


def test_reset_to_timestamp_finds_first_record_at_or_after():
    """Ensure a timestamp reset lands on the first record written at or after that time."""
    c, _, admin = _setup()
    plan = _wait(c, admin.reset_offsets("billing", TOPIC, ResetSpec("timestamp", 10_000)))
    for row in plan.rows:
        leader = c.leader_of(row.tp)
        records = c.replica(leader, row.tp).log.read_records(0)
        expected = next(r.offset for r in records if r.timestamp_ms >= 10_000)
        assert row.new == expected


def test_copy_another_groups_offsets():
    """Ensure a reset from another group copies that group's committed offsets."""
    c, _, admin = _setup()
    plan = _wait(c, admin.reset_offsets("fresh-service", TOPIC, ResetSpec("group", "billing"), dry_run=False))
    assert plan.applied
    billing = _committed(c)
    fresh = next(g for g in c.describe_groups() if g["group_id"] == "fresh-service")["committed"]
    assert fresh == billing


def test_bad_reset_requests_are_refused_before_sending():
    """Ensure unknown kinds, missing values, negative offsets and unknown topics raise AdminError."""
    c = Cluster(brokers=1, seed=1)
    c.create_topic(TOPIC, 1, 1)
    admin = AdminClient(c)
    with pytest.raises(AdminError, match="reset kind"):
        ResetSpec("yesterday")
    with pytest.raises(AdminError, match="whole number"):
        ResetSpec("shift", "5")
    with pytest.raises(AdminError, match=">= 0"):
        ResetSpec("offset", -1)
    with pytest.raises(AdminError, match="takes no value"):
        ResetSpec("earliest", 3)
    with pytest.raises(AdminError, match="unknown topic"):
        admin.reset_offsets("g", "nope", ResetSpec("earliest"))
    with pytest.raises(AdminError, match="unknown topic"):
        admin.reset_offsets("g", "__consumer_offsets", ResetSpec("earliest"))


def test_describe_group_reports_members_and_committed():
    """Ensure describe_group returns the coordinator's view: Stable, both members, committed offsets."""
    c, consumers, admin = _setup()
    group = _wait(c, admin.describe_group("billing"))
    assert group["state"] == "Stable"
    assert sorted(m["client_id"] for m in group["members"]) == ["billing-1", "billing-2"]
    assert set(group["committed"]) == {f"{TOPIC}-{p}" for p in range(3)}
    assert _wait(c, admin.describe_group("nobody"))["state"] == "Dead"
    assert TopicPartition(TOPIC, 0) in consumers[0].assignment + consumers[1].assignment
