"""The checks of the producer-crash lab (guide §10) on the real engine: crashed, restarted with a new id, duplicates."""

from __future__ import annotations

from core_log.lab import LabWorld
from messaging_lab.exercises.checks import CheckContext, capture_baseline, run_check


def _ctx(world: LabWorld, baseline=None) -> CheckContext:  # type: ignore[no-untyped-def]
    baseline = baseline or capture_baseline(world)
    log = world.cluster.events
    return CheckContext(world, baseline, list(log)[max(0, baseline["event_index"] - log.dropped):])


def _run(world: LabWorld, seconds: float) -> None:
    world.advance(world.now_ms() + int(seconds * 1000))


def _slow_lab(seed: int) -> LabWorld:
    world = LabWorld("sandbox", seed)
    world.apply({"kind": "configure_producer", "producer": "telemetry", "rate_per_s": 200})
    world.apply({"kind": "set_latency", "broker": 2, "latency_ms": 500})
    _run(world, 6)
    return world


def test_producer_in_flight_at_least_counts_sends_waiting_for_an_answer():
    """Ensure the in-flight check is red on a fast cluster between sends and green once acknowledgements are slow."""
    fast = LabWorld("sandbox", 1)
    fast.apply({"kind": "stop_producer", "producer": "telemetry"})
    _run(fast, 3)
    ok, detail = run_check("producer_in_flight_at_least", _ctx(fast), {"producer": "telemetry", "records": 1})
    assert ok is False and "0 send(s) waiting" in detail
    slow = _slow_lab(1)
    ok, detail = run_check("producer_in_flight_at_least", _ctx(slow), {"producer": "telemetry", "records": 100})
    assert ok, detail


def test_producer_crashed_needs_a_crash_since_the_step_began_with_requests_in_flight():
    """Ensure producer_crashed is red before the crash, green after it with the counts, and red for a later step."""
    world = _slow_lab(2)
    base = capture_baseline(world)
    ok, detail = run_check("producer_crashed", _ctx(world, base), {"producer": "telemetry", "in_flight": 1})
    assert ok is False and "has not crashed" in detail
    world.apply({"kind": "crash_producer", "producer": "telemetry"})
    ok, detail = run_check("producer_crashed", _ctx(world, base), {"producer": "telemetry", "in_flight": 1})
    assert ok, detail
    assert "in requests already sent" in detail and "still in its memory" in detail
    too_many = run_check("producer_crashed", _ctx(world, base), {"producer": "telemetry", "in_flight": 100_000})
    assert too_many[0] is False and "the step wants" in too_many[1]
    assert run_check("producer_crashed", _ctx(world), {"producer": "telemetry"})[0] is False  # a step begun now
    world.apply({"kind": "restart_producer", "producer": "telemetry"})
    ok, detail = run_check("producer_crashed", _ctx(world, base), {"producer": "telemetry"})
    assert ok is False and "runs again" in detail


def test_producer_crashed_after_nothing_in_flight_says_so():
    """Ensure a crash with every send answered does not satisfy in_flight = 1, and the detail says why."""
    world = LabWorld("sandbox", 3)
    world.apply({"kind": "stop_producer", "producer": "telemetry"})
    _run(world, 3)
    base = capture_baseline(world)
    world.apply({"kind": "crash_producer", "producer": "telemetry"})
    ok, detail = run_check("producer_crashed", _ctx(world, base), {"producer": "telemetry", "in_flight": 1})
    assert ok is False and "0 in requests" in detail
    assert run_check("producer_crashed", _ctx(world, base), {"producer": "telemetry"})[0] is True


def test_restarted_with_new_pid_and_duplicates_at_least_follow_the_restart():
    """Ensure the restart check waits for the new producer id and the duplicate check counts only new duplicates."""
    world = _slow_lab(4)
    world.apply({"kind": "crash_producer", "producer": "telemetry"})
    _run(world, 1)
    base = capture_baseline(world)
    args = {"producer": "telemetry", "resent": 1}
    ok, detail = run_check("producer_restarted_with_new_pid", _ctx(world, base), args)
    assert ok is False and "has not restarted" in detail
    dupes = {"producer": "telemetry", "count": 1}
    assert run_check("duplicates_at_least", _ctx(world, base), dupes)[0] is False
    world.apply({"kind": "restart_producer", "producer": "telemetry"})
    ok, detail = run_check("producer_restarted_with_new_pid", _ctx(world, base), args)
    assert ok is False and "no producer id yet" in detail  # InitProducerId is still on its way
    _run(world, 10)
    ok, detail = run_check("producer_restarted_with_new_pid", _ctx(world, base), args)
    assert ok, detail
    old = world.producers["telemetry"].producer.previous_producer_ids[-1]
    assert f"the crashed one had {old}" in detail and "instance 2" in detail
    assert run_check("producer_restarted_with_new_pid", _ctx(world, base), {"producer": "telemetry",
                                                                          "resent": 10**6})[0] is False
    ok, detail = run_check("duplicates_at_least", _ctx(world, base), {**dupes, "count": 50})
    assert ok, detail
    ok, detail = run_check("duplicates_at_least", _ctx(world, base), {"count": 50})  # any producer's
    assert ok, detail
    later = _ctx(world)  # a step that begins now has seen none of these duplicates
    assert run_check("duplicates_at_least", later, dupes)[0] is False
    assert run_check("producer_restarted_with_new_pid", later, {"producer": "telemetry"})[0] is False


def test_the_new_checks_on_a_missing_producer_are_not_met():
    """Ensure the producer-crash checks naming an unknown producer answer 'not yet' instead of failing."""
    ctx = _ctx(LabWorld("sandbox", 5))
    for name, args in (("producer_crashed", {"producer": "ghost"}),
                       ("producer_restarted_with_new_pid", {"producer": "ghost"}),
                       ("producer_in_flight_at_least", {"producer": "ghost", "records": 1}),
                       ("duplicates_at_least", {"producer": "ghost", "count": 1})):
        ok, detail = run_check(name, ctx, args)
        assert ok is False and "ghost" in detail, (name, detail)
