"""Unit tests for the named checks of the labs of guide sections 2, 3, 5, 8, 9 and 12 (engine only, simulated time)."""

from __future__ import annotations

from core_log.lab import LabWorld
from messaging_lab.exercises.checks import CheckContext, capture_baseline, run_check

TOPIC = "machine.telemetry"


def _events(world: LabWorld, baseline: dict) -> list:
    log = world.cluster.events
    return list(log)[max(0, baseline["event_index"] - log.dropped):]


def check(world: LabWorld, baseline: dict, name: str, memory: dict | None = None, **args) -> tuple[bool, str]:
    return run_check(name, CheckContext(world, baseline, _events(world, baseline), memory or {}), args)


def run(world: LabWorld, seconds: float) -> None:
    world.advance(world.now_ms() + int(seconds * 1000))


def apply(world: LabWorld, command: dict) -> dict:
    result = world.apply(command)
    pending = result.get("pending")
    if pending is not None:
        world.cluster.run_until(lambda: pending.done, 20_000, step_ms=5)
        result["plan"] = pending.result
    return result


def test_group_state_and_sim_time():
    """Ensure group_state names the group's state and sim_time_at_least follows the simulated clock."""
    world = LabWorld("sandbox", 1)
    base = capture_baseline(world)
    assert not check(world, base, "sim_time_at_least", seconds=5)[0]
    run(world, 6)
    assert check(world, base, "sim_time_at_least", seconds=5)[0]
    assert check(world, base, "group_state", group="dashboard", state="Stable")[0]
    apply(world, {"kind": "stop_group", "group": "dashboard"})
    run(world, 1)
    ok, detail = check(world, base, "group_state", group="dashboard", state="Empty")
    assert ok and "Empty" in detail


def test_groups_processed_and_fan_out():
    """Ensure a fast group counts as having received every record, and a slow one does not."""
    world = LabWorld("sandbox", 2)
    apply(world, {"kind": "add_consumer", "group": "archive", "name": "archive-1", "rate_per_s": 10})
    base = capture_baseline(world)
    assert not check(world, base, "groups_processed_since", groups="dashboard,archive", records=50)[0]
    run(world, 15)
    assert check(world, base, "groups_processed_since", groups="dashboard,archive", records=50)[0]
    assert not check(world, base, "groups_processed_since", groups="dashboard,archive", records=400)[0]
    assert check(world, base, "each_group_received", topic=TOPIC, groups="dashboard", fraction=0.9, records=300)[0]
    ok, detail = check(world, base, "each_group_received", topic=TOPIC, groups="dashboard,archive", fraction=0.9,
                       records=300)
    assert not ok and "archive behind" in detail


def test_stop_and_resume_without_reprocessing_or_gaps():
    """Ensure a clean stop and a new member resume exactly: nothing applied twice, nothing skipped below the commit."""
    world = LabWorld("sandbox", 3)
    run(world, 8)
    apply(world, {"kind": "stop_group", "group": "dashboard"})
    run(world, 5)
    base = capture_baseline(world)
    apply(world, {"kind": "add_consumer", "group": "dashboard"})
    run(world, 10)
    assert check(world, base, "not_reprocessed_since", group="dashboard", values=0)[0]
    ok, detail = check(world, base, "no_gap_below_commit", group="dashboard", topic=TOPIC)
    assert ok and "were processed" in detail


def test_replay_is_reprocessing_and_not_a_gap():
    """Ensure a reset to earliest shows up as reprocessing, and resetting to latest leaves a gap below the commit."""
    world = LabWorld("sandbox", 4)
    run(world, 8)
    apply(world, {"kind": "stop_group", "group": "dashboard"})
    run(world, 1)
    base = capture_baseline(world)
    apply(world, {"kind": "reset_offsets", "group": "dashboard", "to": "earliest", "dry_run": False})
    assert check(world, base, "committed_at_log_start", group="dashboard", topic=TOPIC)[0]
    apply(world, {"kind": "add_consumer", "group": "dashboard"})
    run(world, 8)
    ok, detail = check(world, base, "not_reprocessed_since", group="dashboard", values=0)
    assert not ok and "applied twice" in detail
    assert not check(world, base, "committed_at_log_start", group="dashboard", topic=TOPIC)[0]

    other = LabWorld("sandbox", 4)
    apply(other, {"kind": "stop_group", "group": "dashboard"})
    run(other, 6)
    apply(other, {"kind": "reset_offsets", "group": "dashboard", "to": "latest", "dry_run": False})
    ok, detail = check(other, capture_baseline(other), "no_gap_below_commit", group="dashboard", topic=TOPIC)
    assert not ok and "never processed" in detail


def test_no_event_reset_attempted_and_reset_applied():
    """Ensure a refused reset counts as attempted but not applied, and an applied one is seen with its size."""
    world = LabWorld("sandbox", 5)
    run(world, 8)
    base = capture_baseline(world)
    assert not check(world, base, "reset_attempted_since")[0]
    plan = apply(world, {"kind": "reset_offsets", "group": "dashboard", "to": "earliest", "dry_run": False})["plan"]
    assert plan.error and not plan.applied  # the group is running: Kafka's rule refuses it
    assert check(world, base, "reset_attempted_since")[0]
    assert check(world, base, "no_event", kind="OffsetsReset")[0]
    assert not check(world, base, "reset_applied", group="dashboard")[0]
    apply(world, {"kind": "stop_group", "group": "dashboard"})
    run(world, 1)
    apply(world, {"kind": "reset_offsets", "group": "dashboard", "to": "shift", "value": -10, "dry_run": False})
    assert not check(world, base, "no_event", kind="OffsetsReset")[0]
    assert check(world, base, "reset_applied", group="dashboard", to="shift", redelivered_at_least=60,
                 redelivered_at_most=60)[0]
    assert not check(world, base, "reset_applied", group="dashboard", to="earliest")[0]
    ok, detail = check(world, base, "reset_applied", group="dashboard", redelivered_at_least=100)
    assert not ok and "re-delivers 60" in detail


def test_committed_at_timestamp():
    """Ensure a reset to a timestamp puts every committed offset at the first record at or after it."""
    world = LabWorld("sandbox", 6)
    run(world, 12)
    apply(world, {"kind": "stop_group", "group": "dashboard"})
    run(world, 1)
    base = capture_baseline(world)
    assert not check(world, base, "committed_at_timestamp", group="dashboard", topic=TOPIC, timestamp_ms=5000)[0]
    apply(world, {"kind": "reset_offsets", "group": "dashboard", "to": "timestamp", "value": 5000, "dry_run": False})
    assert check(world, base, "committed_at_timestamp", group="dashboard", topic=TOPIC, timestamp_ms=5000)[0]
    assert check(world, base, "reset_applied", group="dashboard", to="timestamp", redelivered_at_least=100)[0]


def test_leaders_replication_and_config_range():
    """Ensure leader spread, replication factor and numeric config ranges read the topic as created."""
    world = LabWorld("sandbox", 7)
    base = capture_baseline(world)
    assert check(world, base, "leaders_spread", topic=TOPIC, brokers=3)[0]
    assert check(world, base, "topic_replication", topic=TOPIC, low=3)[0]
    assert not check(world, base, "topic_replication", topic="audit", low=3)[0]
    apply(world, {"kind": "create_topic", "name": "audit", "partitions": 1, "replication_factor": 2,
                  "retention_ms": 3_600_000})
    assert not check(world, base, "leaders_spread", topic="audit", brokers=2)[0]  # one partition, one leader
    assert check(world, base, "topic_replication", topic="audit", low=2, high=3)[0]
    assert not check(world, base, "topic_replication", topic="audit", low=3)[0]
    assert check(world, base, "topic_config_range", topic="audit", config="retention.ms", low=60_000,
                 high=86_400_000)[0]
    ok, detail = check(world, base, "topic_config_range", topic="audit", config="retention.ms", low=86_400_000,
                       high=604_800_000)
    assert not ok and "3600000" in detail


def test_order_per_partition_only():
    """Ensure a consumer of several partitions is seen in order per partition yet interleaved across them."""
    world = LabWorld("sandbox", 8)
    run(world, 4)
    base = capture_baseline(world)
    run(world, 10)
    ok, detail = check(world, base, "order_per_partition_only", group="dashboard", inversions=5)
    assert ok and "in order" in detail
    assert not check(world, base, "order_per_partition_only", group="nobody", inversions=1)[0]


def test_retention_checks():
    """Ensure retention by size bounds partition bytes, and retention by time leaves no old closed segment."""
    world = LabWorld("slow-consumer-retention", 9)
    apply(world, {"kind": "configure_producer", "producer": "telemetry", "rate_per_s": 50})
    run(world, 2)
    base = capture_baseline(world)
    assert not check(world, base, "log_start_advanced", topic=TOPIC)[0]
    apply(world, {"kind": "burst", "producer": "telemetry", "records": 10000})
    run(world, 8)
    assert check(world, base, "log_start_advanced", topic=TOPIC)[0]
    assert check(world, base, "log_size_at_most", topic=TOPIC, bytes=96 * 1024)[0]
    ok, detail = check(world, base, "log_size_at_most", topic=TOPIC, bytes=32 * 1024)
    assert not ok and "bytes" in detail
    ok, detail = check(world, base, "retention_time_respected", topic=TOPIC, seconds=3)
    assert not ok and "closed segment" in detail  # only retention.bytes so far: the spike's segments stay
    apply(world, {"kind": "alter_topic", "topic": TOPIC, "retention_ms": 5000})
    for _ in range(6):
        run(world, 5)
        assert check(world, base, "retention_time_respected", topic=TOPIC, seconds=12)[0]


def test_unread_records_deleted():
    """Ensure a stopped group whose unread records retention deleted is seen below the log start."""
    world = LabWorld("slow-consumer-retention", 11)
    apply(world, {"kind": "configure_producer", "producer": "telemetry", "rate_per_s": 50})
    apply(world, {"kind": "stop_group", "group": "dashboard"})
    apply(world, {"kind": "add_consumer", "group": "dashboard", "name": "fast-1", "rate_per_s": 2000})
    run(world, 6)
    base = capture_baseline(world)
    assert not check(world, base, "unread_records_deleted", group="dashboard", topic=TOPIC)[0]
    apply(world, {"kind": "alter_topic", "topic": TOPIC, "retention_ms": 3000})
    apply(world, {"kind": "stop_group", "group": "dashboard"})
    apply(world, {"kind": "burst", "producer": "telemetry", "records": 6000})
    run(world, 20)
    ok, detail = check(world, base, "unread_records_deleted", group="dashboard", topic=TOPIC)
    assert ok and "< log start" in detail


def test_appended_since():
    """Ensure appended_since counts records added at new offsets."""
    world = LabWorld("sandbox", 10)
    base = capture_baseline(world)
    assert not check(world, base, "appended_since", topic=TOPIC, records=100)[0]
    run(world, 4)
    ok, detail = check(world, base, "appended_since", topic=TOPIC, records=100)
    assert ok and "nothing rewritten" in detail
