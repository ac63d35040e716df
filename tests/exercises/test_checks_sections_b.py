"""The checks written for the labs of guide sections 10, 11, 14, 15 and 16, on the real engine (simulated time only)."""

from __future__ import annotations

from core_log.lab import LabWorld
from messaging_lab.exercises.checks import CheckContext, capture_baseline, run_check
from messaging_lab.exercises.guide import resolve_command


def _ctx(world: LabWorld, baseline=None, memory=None) -> CheckContext:  # type: ignore[no-untyped-def]
    baseline = baseline or capture_baseline(world)
    log = world.cluster.events
    events = list(log)[max(0, baseline["event_index"] - log.dropped):]
    return CheckContext(world, baseline, events, memory if memory is not None else {})


def _run(world: LabWorld, seconds: float) -> None:
    world.advance(world.now_ms() + int(seconds * 1000))


def _crash_leader(world: LabWorld, partition: int = 0) -> None:
    world.apply(resolve_command(world, {"kind": "crash_broker", "mode": "kill",
                                        "broker": {"leader": f"machine.telemetry-{partition}"}}))


def test_acks_stalled_needs_a_quiet_period_of_acknowledgements():
    """Ensure acks_stalled is red while records are acknowledged and green once none were for N seconds."""
    world = LabWorld("sandbox", 5)
    _run(world, 3)
    base, memory = capture_baseline(world), {}
    assert run_check("acks_stalled", _ctx(world, base, memory), {"seconds": 3})[0] is False
    _run(world, 2)
    assert run_check("acks_stalled", _ctx(world, base, memory), {"seconds": 3})[0] is False
    world.apply({"kind": "stop_producer", "producer": "telemetry"})
    _run(world, 1)
    run_check("acks_stalled", _ctx(world, base, memory), {"seconds": 3})  # the last acknowledgements arrive
    _run(world, 4)
    ok, detail = run_check("acks_stalled", _ctx(world, base, memory), {"seconds": 3})
    assert ok, detail


def test_anomaly_in_group_separates_read_uncommitted_from_read_committed():
    """Ensure aborted reads are attributed to the read_uncommitted group, and the read_committed group stays clean."""
    world = LabWorld("read-uncommitted-abort", 6)
    base = capture_baseline(world)
    ctx = _ctx(world, base)
    assert run_check("anomaly_in_group", ctx, {"name": "G1a", "group": "dashboard"})[0] is False
    assert run_check("no_anomaly_in_group", ctx, {"group": "ledger", "name": "G1a", "reads": 10})[0] is False
    _run(world, 6)
    ctx = _ctx(world, base)
    ok, detail = run_check("anomaly_in_group", ctx, {"name": "G1a", "group": "dashboard", "count": 3})
    assert ok, detail
    ok, detail = run_check("no_anomaly_in_group", ctx, {"group": "ledger", "name": "G1a", "reads": 10})
    assert ok, detail
    assert run_check("no_anomaly_in_group", ctx, {"group": "dashboard", "name": "G1a"})[0] is False
    later = _ctx(world)  # a step that begins now has seen no aborted read yet
    assert run_check("anomaly_in_group", later, {"name": "G1a", "group": "dashboard"})[0] is False


def test_member_removed_after_measures_the_session_timeout():
    """Ensure the check waits for the coordinator's removal and reports how long after the crash it came."""
    world = LabWorld("sandbox", 7)
    _run(world, 6)
    base = capture_baseline(world)
    world.apply({"kind": "crash_consumer", "consumer": "dashboard-1"})
    _run(world, 2)
    ok, detail = run_check("member_removed_after", _ctx(world, base),
                           {"group": "dashboard", "consumer": "dashboard-1", "ms": 5000})
    assert ok is False and "still counts it as a member" in detail
    _run(world, 12)
    ctx = _ctx(world, base)
    ok, detail = run_check("member_removed_after", ctx, {"group": "dashboard", "consumer": "dashboard-1", "ms": 5000})
    assert ok, detail
    assert run_check("member_removed_after", ctx, {"group": "dashboard", "consumer": "dashboard-1",
                                                    "ms": 11_000})[0] is False  # 10 s session: removed sooner
    assert run_check("member_removed_after", ctx, {"group": "dashboard", "consumer": "dashboard-2",
                                                    "ms": 1})[0] is False


def test_lag_on_one_partition_sees_a_hot_key_but_not_an_even_backlog():
    """Ensure the hot-partition check wants both enough lag and most of it on one partition."""
    world = LabWorld("sandbox", 8)
    _run(world, 6)
    world.apply({"kind": "stop_group", "group": "dashboard"})
    _run(world, 12)
    even = _ctx(world)
    assert run_check("group_lag_at_least", even, {"group": "dashboard", "records": 300})[0]
    ok, detail = run_check("lag_on_one_partition", even, {"group": "dashboard", "share": 0.8, "records": 300})
    assert ok is False and "holds" in detail
    world.apply({"kind": "add_consumer", "group": "dashboard"})
    world.apply({"kind": "configure_producer", "producer": "telemetry", "keys": "hot", "rate_per_s": 400})
    _run(world, 15)
    ok, detail = run_check("lag_on_one_partition", _ctx(world), {"group": "dashboard", "share": 0.8, "records": 500})
    assert ok, detail


def test_no_anomaly_for_producer_judges_only_the_current_client():
    """Ensure a non-idempotent client's duplicates count against it, and not against its idempotent successor."""
    world = LabWorld("sandbox", 9)
    world.apply({"kind": "configure_producer", "producer": "telemetry", "rate_per_s": 200,
                 "enable_idempotence": False})
    _run(world, 2)
    _crash_leader(world)
    _run(world, 15)
    ctx = _ctx(world)
    assert run_check("anomaly_seen", _ctx(world, {**capture_baseline(world), "anomalies": {}}),
                     {"name": "duplicate"})[0]
    ok, detail = run_check("no_anomaly_for_producer", ctx, {"producer": "telemetry", "name": "duplicate"})
    assert ok is False and "duplicate among the records of telemetry.v2" in detail
    world.apply({"kind": "configure_producer", "producer": "telemetry", "enable_idempotence": True})
    assert run_check("no_anomaly_for_producer", _ctx(world), {"producer": "telemetry", "name": "duplicate",
                                                              "records": 100})[0] is False  # nothing acked yet
    _run(world, 3)
    ok, detail = run_check("no_anomaly_for_producer", _ctx(world), {"producer": "telemetry", "name": "duplicate",
                                                                    "records": 100})
    assert ok, detail


def test_lag_gap_at_least_compares_two_groups_on_one_log():
    """Ensure long transactions hold the read_committed group behind the read_uncommitted one."""
    world = LabWorld("read-uncommitted-abort", 10)
    _run(world, 5)
    assert run_check("lag_gap_at_least", _ctx(world), {"behind": "ledger", "ahead": "dashboard",
                                                      "records": 100})[0] is False
    world.apply({"kind": "add_txn_producer", "rate_per_s": 40, "records_per_txn": 200, "abort_every": 0})
    _run(world, 4)
    ok, detail = run_check("lag_gap_at_least", _ctx(world), {"behind": "ledger", "ahead": "dashboard",
                                                            "records": 100})
    assert ok, detail
