"""Named checks: they read the real engine, compare with the step's baseline, and never crash on what is missing."""

from __future__ import annotations

from core_log.lab import LabWorld
from messaging_lab.exercises.checks import CHECKS, CheckContext, capture_baseline, run_check


def _ctx(world: LabWorld, baseline=None) -> CheckContext:  # type: ignore[no-untyped-def]
    baseline = baseline or capture_baseline(world)
    log = world.cluster.events
    return CheckContext(world, baseline, list(log)[max(0, baseline["event_index"] - log.dropped):])


def test_every_check_has_a_label_and_typed_arguments():
    """Ensure the registry gives every check a one-line label and only str/int/float/bool arguments."""
    for spec in CHECKS.values():
        assert spec.doc and spec.doc[0].isupper(), spec.name
        assert all(t in (str, int, float, bool) for t, _ in spec.args.values()), spec.name


def test_checks_on_missing_things_are_not_met_instead_of_failing():
    """Ensure a check naming a missing topic, group or REST pipeline answers 'not yet' with the reason."""
    world = LabWorld("sandbox", 1)
    ctx = _ctx(world)
    for name, args in [("rest_dropped_since", {"readings": 1}), ("group_stable", {"group": "nope"}),
                       ("topic_exists", {"topic": "nope"}), ("leader_changed", {"topic": "nope", "partition": 0}),
                       ("value_bytes_at_most", {"producer": "nope", "bytes": 1.0})]:
        ok, detail = run_check(name, ctx, args)
        assert ok is False and detail, (name, detail)


def test_delta_checks_compare_with_the_baseline():
    """Ensure 'since the step began' checks count only what happened after the baseline."""
    world = LabWorld("sandbox", 2)
    world.advance(world.now_ms() + 5000)
    ctx = _ctx(world)
    assert run_check("acked_since", ctx, {"records": 10})[0] is False
    assert run_check("sent_since", ctx, {"producer": "telemetry", "records": 10})[0] is False
    world.advance(world.now_ms() + 5000)
    ok, detail = run_check("acked_since", _ctx(world, ctx.baseline), {"records": 100})
    assert ok and "more records acknowledged" in detail


def test_records_per_request_and_rest_checks_read_real_counters():
    """Ensure batching and REST checks judge from the producer's and the fleet's own counters."""
    world = LabWorld("sandbox", 3)
    world.apply({"kind": "add_rest_pipeline", "rate_per_s": 50, "capacity_per_s": 100})
    world.advance(world.now_ms() + 3000)
    base = capture_baseline(world)
    world.apply({"kind": "rest_burst", "records": 2000})
    world.apply({"kind": "configure_producer", "producer": "telemetry", "rate_per_s": 500, "linger_ms": 50})
    world.advance(world.now_ms() + 5000)
    ctx = _ctx(world, base)
    dropped, detail = run_check("rest_dropped_since", ctx, {"readings": 500})
    assert dropped, detail
    assert run_check("rest_no_drops_since", ctx, {})[0] is False
    per_request, detail = run_check("records_per_request_at_least", ctx, {"producer": "telemetry", "ratio": 2.0})
    assert per_request, detail
