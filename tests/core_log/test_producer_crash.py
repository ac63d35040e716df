"""A producer process crash in the lab: crash_producer / restart_producer, the resend, and what the checker sees."""

from __future__ import annotations

import pytest

from core_log.checker import check
from core_log.lab import LabCommandError, LabWorld
from core_log.messages import TopicPartition
from core_log.snapshot import restore, snapshot

SLOW = [(500, {"kind": "configure_producer", "producer": "telemetry", "rate_per_s": "200"}),
        (600, {"kind": "set_latency", "broker": "2", "latency_ms": "500"})]


def _world(seed: int, commands: list[tuple[int, dict]]) -> LabWorld:
    w = LabWorld("sandbox", seed=seed)
    for at, command in commands:
        w.advance(at)
        w.apply(dict(command))
    return w


def _batch_producer_id(w: LabWorld, partition: str, offset: int) -> int:
    topic, _, p = partition.rpartition("-")
    tp = TopicPartition(topic, int(p))
    replica = w.cluster.brokers[w.cluster.controller.partitions[tp].leader].replicas[tp]
    batch = next(b for b in replica.log.read(offset) if b.base_offset <= offset <= b.last_offset)
    return batch.producer_id


@pytest.mark.parametrize("seed", [1, 4])
def test_crash_with_requests_in_flight_then_restart_and_resend_writes_duplicates_under_a_new_producer_id(seed):
    """Ensure requests that reached the brokers before the crash are appended, and the new instance's resend appends them again."""
    w = _world(seed, SLOW)
    w.advance(10_000)
    telemetry = w.producers["telemetry"]
    assert telemetry.producer.config.enable_idempotence
    old_pid = telemetry.producer.producer_id
    assert old_pid >= 0
    crashed = w.apply({"kind": "crash_producer", "producer": "telemetry"})
    assert crashed["in_requests"] > 50 and crashed["unacknowledged"] == crashed["in_requests"] + crashed["in_memory"]
    assert not telemetry.running and not telemetry.producer.alive
    event = [e for e in w.cluster.events if e.kind == "ProducerCrashed"][-1]
    assert event.fields["in_requests"] == crashed["in_requests"] and "indeterminate" in event.text
    ops = w.cluster.history.ops
    crash_op = next(op for op in ops if op.f == "crash" and op.process == "telemetry" and op.type == "info")
    infos = [op for op in ops if op.f == "send" and op.type == "info" and op.index < crash_op.index
             and op.time_ms == crash_op.time_ms]
    assert len(infos) == crashed["unacknowledged"]  # every unanswered send is indeterminate, none is a failure

    w.advance(w.now_ms() + 2000)  # the process is down; its requests are still appended and committed
    sent_before = telemetry.sent
    assert w.checker.verdict().valid  # indeterminate sends are not lost writes, and nothing is written twice yet
    restarted = w.apply({"kind": "restart_producer", "producer": "telemetry"})
    assert restarted == {"producer": "telemetry", "instance": 2, "resent": crashed["unacknowledged"]}
    w.advance(w.now_ms() + 20_000)
    new_pid = telemetry.producer.producer_id
    assert new_pid >= 0 and new_pid != old_pid and telemetry.producer.previous_producer_ids == [old_pid]
    assert telemetry.running and telemetry.sent > sent_before  # it carries on with new readings too
    assert any(e.kind == "ProducerIdChanged" and e.fields["producer_id"] == new_pid for e in w.cluster.events)

    verdict = w.checker.verdict()
    duplicates = verdict.anomalies["duplicate"]
    # Exactly the records that were in requests at the crash are in the log twice; the ones still in memory once.
    assert verdict.counts == {"duplicate": crashed["in_requests"]}
    for anomaly in duplicates[:20]:  # the two copies are batches of the two instances
        first, second = anomaly.offsets
        assert (_batch_producer_id(w, anomaly.partition, first), _batch_producer_id(w, anomaly.partition, second)) \
            == (old_pid, new_pid)
    assert w.producers["telemetry"].describe()["resent"] == crashed["unacknowledged"]
    full = check(w.cluster.history.ops, w.checker.context, final=False)
    assert full.counts == verdict.counts  # the oracle agrees with the live checker


def test_a_crash_with_nothing_in_flight_and_no_resend_writes_no_duplicates():
    """Ensure a producer that crashes with every send answered resends nothing, and the new instance writes no duplicate."""
    w = _world(2, [])
    w.advance(6000)
    w.apply({"kind": "stop_producer", "producer": "telemetry"})
    w.advance(8000)
    assert w.producers["telemetry"].producer.stats["pending"] == 0
    old_pid = w.producers["telemetry"].producer.producer_id
    crashed = w.apply({"kind": "crash_producer", "producer": "telemetry"})
    assert crashed == {"producer": "telemetry", "in_requests": 0, "in_memory": 0, "unacknowledged": 0}
    w.advance(9000)
    assert w.apply({"kind": "restart_producer", "producer": "telemetry"})["resent"] == 0
    w.advance(12_000)
    telemetry = w.producers["telemetry"]
    assert not telemetry.running  # it was stopped before the crash, so the new instance waits for start_producer
    assert telemetry.producer.producer_id not in (-1, old_pid)
    w.apply({"kind": "start_producer", "producer": "telemetry"})
    w.advance(25_000)
    assert w.checker.verdict().valid and w.checker.verdict().acked > 0


def test_a_crash_without_restart_loses_nothing_in_the_checkers_eyes():
    """Ensure the crashed instance's unanswered sends are neither lost writes nor unseen, even when never resent."""
    w = _world(3, SLOW)
    w.advance(8000)
    assert w.apply({"kind": "crash_producer", "producer": "telemetry"})["in_requests"] > 0
    w.advance(30_000)
    final = check(w.cluster.history.ops, w.checker.context, final=True)
    assert final.valid, final.counts
    assert w.view()["producers"][0]["alive"] is False


def test_bad_producer_commands_are_refused_with_the_reason():
    """Ensure unknown producers, a second crash, a restart of a running producer and sends to a dead one are refused."""
    w = _world(5, [(1000, {"kind": "add_txn_producer", "name": "orders"})])
    for command, reason in (({"kind": "crash_producer", "producer": "ghost"}, "no producer 'ghost'; producers are orders, telemetry"),
                            ({"kind": "restart_producer", "producer": "ghost"}, "producers are orders, telemetry"),
                            ({"kind": "crash_producer"}, "producer must be 1–40"),
                            ({"kind": "restart_producer", "producer": "telemetry"}, "is running"),
                            ({"kind": "crash_producer", "producer": "orders"}, "transactional")):
        with pytest.raises(LabCommandError, match=reason):
            w.apply(command)
    w.apply({"kind": "crash_producer", "producer": "telemetry"})
    for command, reason in (({"kind": "crash_producer", "producer": "telemetry"}, "crashed already"),
                            ({"kind": "burst", "producer": "telemetry", "records": 10}, "restart it first"),
                            ({"kind": "start_producer", "producer": "telemetry"}, "restart it first"),
                            ({"kind": "configure_producer", "producer": "telemetry", "acks": "1"}, "restart it first")):
        with pytest.raises(LabCommandError, match=reason):
            w.apply(command)
    with pytest.raises(ValueError, match="restart"):
        w.producers["telemetry"].producer.send("machine.telemetry", b"k", b"v")


CRASH_LOG = [*SLOW, (7000, {"kind": "crash_producer", "producer": "telemetry"}),
             (7000, {"kind": "crash_producer", "producer": "telemetry"}),  # refused: it is down already
             (9500, {"kind": "restart_producer", "producer": "telemetry"}),
             (9500, {"kind": "restart_producer", "producer": "telemetry"}),  # refused: it runs again
             (12_000, {"kind": "crash_producer", "producer": "telemetry"}),
             (14_000, {"kind": "restart_producer", "producer": "telemetry"})]


def _run_logged(seed: int, log: list[tuple[int, dict]], until_ms: int) -> LabWorld:
    w = LabWorld("sandbox", seed=seed)
    for at, command in log:
        w.advance(at)
        try:
            w.apply(dict(command))
        except LabCommandError:
            pass
    w.advance(until_ms)
    return w


def test_replay_of_the_command_log_rebuilds_the_same_lab():
    """Ensure crash/restart commands replay from the log to the same view and events, refused ones included."""
    w = _run_logged(6, CRASH_LOG, 24_000)
    assert w.producers["telemetry"].instance >= 3 and w.checker.verdict().counts.get("duplicate", 0) > 0
    again = LabWorld.replay("sandbox", 6, CRASH_LOG, 24_000)
    assert again.view() == w.view()
    assert [e.to_json() for e in again.cluster.events] == [e.to_json() for e in w.cluster.events]


def test_a_snapshot_of_a_crashed_producer_restores_and_restarts_the_same_way():
    """Ensure a world snapshotted while its producer is down restarts it exactly as the original does."""
    w = _run_logged(7, [*SLOW, (7000, {"kind": "crash_producer", "producer": "telemetry"})], 8000)
    copy = restore(snapshot(w))
    for world in (w, copy):
        world.apply({"kind": "restart_producer", "producer": "telemetry"})
        world.advance(20_000)
    assert copy.view() == w.view()
    assert [e.to_json() for e in copy.cluster.events] == [e.to_json() for e in w.cluster.events]


def test_the_view_shows_each_producer_state_and_its_current_producer_id():
    """Ensure the view's producer entry says sending/crashed/stopped with the PID: the old one while crashed, a new one after the restart."""
    import json

    w = _world(8, [])
    w.advance(5000)
    entry = w.view()["producers"][0]
    old_pid = w.producers["telemetry"].producer.producer_id
    assert entry["name"] == "telemetry" and entry["state"] == "sending" and entry["pid"] == old_pid >= 0
    w.apply({"kind": "crash_producer", "producer": "telemetry"})
    w.advance(6000)
    entry = w.view()["producers"][0]
    assert (entry["state"], entry["pid"], entry["alive"], entry["running"]) == ("crashed", old_pid, False, False)
    w.apply({"kind": "restart_producer", "producer": "telemetry"})
    assert w.view()["producers"][0]["pid"] is None  # the new instance waits for its InitProducerId answer
    w.advance(9000)
    entry = w.view()["producers"][0]
    assert entry["state"] == "sending" and entry["pid"] is not None and entry["pid"] >= 0 and entry["pid"] != old_pid
    assert entry["pid"] == w.producers["telemetry"].producer.producer_id
    w.apply({"kind": "stop_producer", "producer": "telemetry"})
    assert w.view()["producers"][0]["state"] == "stopped"  # stopped by the learner is not crashed
    assert json.loads(json.dumps(w.view()["producers"])) == w.view()["producers"]
