"""LabWorld: the sandbox, commands, deterministic replay, the disk budget, the explorer and the view."""

from __future__ import annotations

import json

import pytest

from core_log.lab import MAX_LAB_DISK_BYTES, LabCommandError, LabWorld


def test_sandbox_is_what_the_guide_describes():
    """Ensure the sandbox has 3 brokers, machine.telemetry with 6 partitions RF 3, a keyed producer and a group of 2."""
    w = LabWorld("sandbox", seed=1)
    w.advance(8000)
    view = w.view()
    assert len(view["brokers"]) == 3 and len(view["partitions"]) == 6
    assert view["topics"][0]["name"] == "machine.telemetry" and view["topics"][0]["replication_factor"] == 3
    assert view["producers"][0]["keys"] == "machines" and view["producers"][0]["acked"] > 0
    group = view["groups"][0]
    assert group["group_id"] == "dashboard" and group["state"] == "Stable" and len(group["members"]) == 2
    assert view["guarantees"]["valid"]
    json.dumps(view)  # the page gets it as JSON


def test_replay_rebuilds_the_same_lab():
    """Ensure replaying the logged commands on the same seed gives the identical view (record for record)."""
    w = LabWorld("sandbox", seed=9)
    log = []
    for at, command in ((3000, {"kind": "crash_broker", "broker": "2"}),
                        (9000, {"kind": "add_consumer", "group": "dashboard"}),
                        (12_000, {"kind": "restart_broker", "broker": "2"}),
                        (15_000, {"kind": "configure_producer", "producer": "telemetry", "acks": "1",
                                  "enable_idempotence": "false"})):
        w.advance(at)
        w.apply(command)
        log.append((at, command))
    w.advance(25_000)
    again = LabWorld.replay("sandbox", 9, log, 25_000)
    assert again.view() == w.view()


def test_commands_are_validated_with_plain_reasons():
    """Ensure bad commands raise LabCommandError saying what was wrong, and nothing changes."""
    w = LabWorld("sandbox", seed=2)
    for command, reason in (({"kind": "crash_broker", "broker": 0}, "from 1 to 3"),
                            ({"kind": "nope"}, "unknown command"),
                            ({"kind": "add_consumer", "group": "bad group!"}, "a-z A-Z"),
                            ({"kind": "configure_producer", "producer": "ghost"}, "no producer"),
                            ({"kind": "burst", "producer": "telemetry", "records": 10**9}, "50000"),
                            ({"kind": "create_topic", "name": "__secret"}, "reserved"),
                            ([1, 2], "object")):
        with pytest.raises(LabCommandError, match=reason):
            w.apply(command)  # type: ignore[arg-type]


def test_topics_get_retention_that_keeps_the_lab_within_its_disk_budget():
    """Ensure every topic gets retention.bytes so all replicas fit in the lab's budget, and an oversized topic is refused."""
    w = LabWorld("sandbox", seed=3)
    w.apply({"kind": "create_topic", "name": "orders", "partitions": "3", "replication_factor": "3"})
    total = sum(t.partitions * t.replication_factor * (t.log_config.retention_bytes + t.log_config.segment_bytes)
                for t in w.cluster.topics.values() if not t.name.startswith("__"))
    assert total <= MAX_LAB_DISK_BYTES
    assert any(e.kind == "TopicBudget" for e in w.cluster.events)
    with pytest.raises(LabCommandError, match="disk budget"):
        for i in range(20):
            w.apply({"kind": "create_topic", "name": f"t{i}", "partitions": "64", "replication_factor": "3"})


def test_explore_reads_back_batches_and_filters_by_key():
    """Ensure the explorer reads a replica's batches with their headers, and a key filter keeps only that key."""
    w = LabWorld("sandbox", seed=4)
    w.advance(6000)
    x = w.explore(1, "machine.telemetry", 1, offset=0)
    assert x["batches"] and all({"base_offset", "leader_epoch", "producer_id", "crc_valid"} <= set(b)
                                for b in x["batches"])
    assert all(b["crc_valid"] for b in x["batches"])
    key = x["batches"][0]["records"][0]["key"]
    only = w.explore(1, "machine.telemetry", 1, offset=0, key=key)
    assert {r["key"] for b in only["batches"] for r in b["records"]} == {key}
    with pytest.raises(LabCommandError, match="no partition"):
        w.explore(1, "machine.telemetry", 9)


def test_view_shows_group_cursors_per_partition():
    """Ensure each partition in the view carries the group's committed offset and the members' positions."""
    w = LabWorld("sandbox", seed=5)
    w.advance(12_000)
    parts = [p for p in w.view()["partitions"] if p["committed"]]
    assert parts and all("dashboard" in p["committed"] for p in parts)
    assert any(p["positions"] for p in parts)


def test_templates_set_up_their_scenario():
    """Ensure each template starts from the sandbox with its scenario's settings (acks, unclean election, slow group)."""
    from core_log.lab import TEMPLATES

    assert set(TEMPLATES) == {"sandbox", "acks1-leader-crash", "unclean-election", "at-least-once",
                              "commit-before-process", "slow-consumer-retention", "read-uncommitted-abort",
                              "cooperative-rebalance"}
    acks1 = LabWorld("acks1-leader-crash", seed=1)
    assert acks1.producers["telemetry"].producer.config.acks == "1"
    assert acks1.checker.context.acks == "1"
    unclean = LabWorld("unclean-election", seed=1)
    assert unclean.cluster.topics["machine.telemetry"].unclean_leader_election
    slow = LabWorld("at-least-once", seed=1)
    assert {c.rate_per_s for c in slow.consumers.values()} == {40}
    with pytest.raises(LabCommandError, match="template must be one of"):
        LabWorld("chaos", seed=1)


def test_add_partitions_spreads_keys_and_the_group_takes_them():
    """Ensure adding partitions gives them replicas, producers write to them and the group assigns them."""
    w = LabWorld("sandbox", seed=6)
    w.advance(8000)
    w.apply({"kind": "add_partitions", "topic": "machine.telemetry", "partitions": "8"})
    w.advance(30_000)
    view = w.view()
    assert len(view["partitions"]) == 8
    new = [p for p in view["partitions"] if p["partition"] >= 6]
    assert all(p["leader"] > 0 and len(p["isr"]) == 3 for p in new)
    assert any(p["replica"][str(p["leader"])]["high_watermark"] > 0 for p in new)  # keys hash over 8 now
    owned = {t for m in view["groups"][0]["members"] for t in m["assignment"]}
    assert {"machine.telemetry-6", "machine.telemetry-7"} <= owned
    assert any(e["kind"] == "PartitionsAdded" for e in view["events"]) or w.cluster.events.of_kind("PartitionsAdded")
    with pytest.raises(LabCommandError, match="never removed"):
        w.apply({"kind": "add_partitions", "topic": "machine.telemetry", "partitions": "8"})


def test_alter_topic_min_isr_and_unclean_election_take_effect():
    """Ensure raising min.insync.replicas above the ISR makes acks=all sends fail, and unclean election can be switched on."""
    w = LabWorld("sandbox", seed=7)
    w.advance(6000)
    w.apply({"kind": "crash_broker", "broker": "3"})
    w.advance(20_000)  # broker 3 fenced: ISRs are {1,2} or {2,1}
    w.apply({"kind": "alter_topic", "topic": "machine.telemetry", "min_insync_replicas": "3"})
    failed_before = w.producers["telemetry"].producer.stats["retries"]
    w.advance(26_000)
    assert w.producers["telemetry"].producer.stats["retries"] > failed_before  # NOT_ENOUGH_REPLICAS
    assert w.producers["telemetry"].producer.last_error == "NOT_ENOUGH_REPLICAS"
    w.apply({"kind": "alter_topic", "topic": "machine.telemetry", "min_insync_replicas": "2",
             "unclean_leader_election": "true"})
    assert w.cluster.topics["machine.telemetry"].unclean_leader_election
    assert w.cluster.controller.unclean_election["machine.telemetry"] is True
    with pytest.raises(LabCommandError, match="say which config"):
        w.apply({"kind": "alter_topic", "topic": "machine.telemetry"})


def test_power_loss_in_a_file_backed_lab(tmp_path):
    """Ensure a lab on real files can lose power on a broker: it recovers what was fsynced and catches up; acks=all keeps all."""
    w = LabWorld("sandbox", seed=8, data_dir=str(tmp_path))
    w.advance(8000)
    w.apply({"kind": "crash_broker", "broker": "2", "mode": "power_loss"})
    w.advance(14_000)
    w.apply({"kind": "restart_broker", "broker": "2"})
    w.advance(40_000)
    view = w.view()
    assert all(b["alive"] for b in view["brokers"])
    assert any(e.kind == "LogRecovered" for e in w.cluster.events)
    assert view["guarantees"]["valid"], view["guarantees"]["anomalies"]


@pytest.mark.parametrize("brokers,rf,min_isr", [(1, 1, 1), (5, 3, 2), (9, 3, 2)])
def test_labs_choose_their_broker_count(brokers, rf, min_isr):
    """Ensure a lab can have 1 to 9 brokers; the sandbox topic's RF is min(3, brokers) and min ISR min(2, RF)."""
    w = LabWorld("sandbox", seed=2, brokers=brokers)
    w.advance(6000)
    topic = w.cluster.topics["machine.telemetry"]
    assert len(w.view()["brokers"]) == brokers
    assert (topic.replication_factor, topic.min_insync_replicas) == (rf, min_isr)
    assert w.view()["guarantees"]["acked"] > 0
    with pytest.raises(LabCommandError, match="1 to 9 brokers"):
        LabWorld("sandbox", seed=2, brokers=10)


def test_transactional_producer_in_a_lab_read_committed_vs_uncommitted():
    """Ensure a lab's transactional producer that aborts every 2nd transaction shows G1a for read_uncommitted only."""
    w = LabWorld("sandbox", seed=10)
    w.apply({"kind": "stop_producer", "producer": "telemetry"})
    w.apply({"kind": "add_txn_producer", "name": "orders", "rate_per_s": "40", "records_per_txn": "5",
             "abort_every": "2"})
    w.apply({"kind": "add_consumer", "group": "ledger", "isolation_level": "read_committed"})
    w.advance(25_000)
    txn = w.producers["orders"]
    assert txn.producer.transactions["committed"] > 2 and txn.producer.transactions["aborted"] > 2
    verdict = w.checker.verdict()
    g1a = verdict.anomalies.get("G1a", ())
    assert g1a and all("dashboard" in a.explanation for a in g1a)  # the sandbox's group reads uncommitted
    assert not any("ledger" in a.explanation for a in g1a)
    with pytest.raises(LabCommandError, match="keeps its settings"):
        w.apply({"kind": "configure_producer", "producer": "orders", "rate_per_s": "5"})


def test_more_scenario_templates_behave_as_described():
    """Ensure the retention template skips (OffsetOutOfRange with a skip), at-most-once commits before processing, and the abort template reads G1a."""
    retention = LabWorld("slow-consumer-retention", seed=11)
    retention.advance(40_000)
    skips = [e for e in retention.cluster.events.of_kind("OffsetOutOfRange") if e.fields.get("skipped", 0) > 0]
    assert skips and retention.cluster.events.of_kind("SegmentDeleted")
    before = LabWorld("commit-before-process", seed=11)
    assert {c.commit for c in before.consumers.values()} == {"before"}
    aborting = LabWorld("read-uncommitted-abort", seed=11)
    aborting.advance(20_000)
    assert "G1a" in aborting.checker.verdict().counts
    coop = LabWorld("cooperative-rebalance", seed=11)
    assert {c.consumer.config.partition_assignment_strategy for c in coop.consumers.values()} == {("cooperative-sticky",)}


# ── the REST pipeline and serializers ────────────────────────────────────────

def test_a_spike_is_dropped_over_rest_but_buffered_by_the_log_and_its_lag_drains():
    """Ensure N readings at once against a downstream of capacity C with a short timeout drop readings over REST,
    while the same N through the topic, read by a consumer processing C/s, all arrive once and the group lag drains."""
    n, capacity = 3000, 100
    w = LabWorld("sandbox", seed=12)
    w.apply({"kind": "stop_producer", "producer": "telemetry"})
    w.apply({"kind": "add_consumer", "group": "ingest", "rate_per_s": str(capacity)})
    w.apply({"kind": "add_rest_pipeline", "rate_per_s": "0", "capacity_per_s": str(capacity), "timeout_ms": "200",
             "retries": "1"})
    w.advance(10_000)  # the group has joined and read what the producer sent before it stopped
    ingest = w.consumers["ingest-1"]
    before = ingest.processed
    acked_before = w.producers["telemetry"].producer.stats["acked"]
    w.apply({"kind": "burst", "producer": "telemetry", "records": str(n)})
    w.apply({"kind": "rest_burst", "records": str(n)})
    w.advance(w.now_ms() + 5000)
    rest = w.view()["rest"]["counters"]
    assert rest["dropped"] > 0 and rest["ok"] < n  # REST: nowhere to put the spike
    assert w.cluster.events.of_kind("RestDropping")
    w.advance(w.now_ms() + n * 1000 // capacity + 20_000)
    rest = w.view()["rest"]["counters"]
    assert rest["ok"] + rest["dropped"] == n and rest["dropped"] > n // 2
    # the log: every record acknowledged, processed once by the consumer at capacity C, lag back to 0
    assert w.producers["telemetry"].producer.stats["acked"] - acked_before == n
    assert ingest.processed - before == n and w.sinks["ingest"].applied_twice() == 0
    lag = [v for _, v in w.metrics.series("lag_records", "ingest-1")]  # HW − the consumer's position
    assert max(lag) > n // 2 and lag[-1] == 0
    assert w.metrics.latest()["group_lag"]["ingest"]["lag_records"] == 0  # and everything is committed
    verdict = w.checker.verdict()
    assert verdict.valid, verdict.counts


def test_rest_commands_are_validated_with_named_limits():
    """Ensure REST commands refuse bad values and missing pipelines with plain reasons, and nothing changes."""
    w = LabWorld("sandbox", seed=13)
    for command, reason in (({"kind": "rest_burst", "records": "10"}, "no REST pipeline"),
                            ({"kind": "crash_downstream"}, "no REST pipeline"),
                            ({"kind": "add_rest_pipeline", "capacity_per_s": "0"}, "capacity_per_s must be .* 1 to 10000"),
                            ({"kind": "add_rest_pipeline", "timeout_ms": "5"}, "timeout_ms must be .* 10 to 60000"),
                            ({"kind": "add_rest_pipeline", "retries": "11"}, "retries must be .* 0 to 10"),
                            ({"kind": "add_rest_pipeline", "queue": "-1"}, "queue must be"),
                            ({"kind": "add_rest_pipeline", "max_in_flight": "abc"}, "max_in_flight must be")):
        with pytest.raises(LabCommandError, match=reason):
            w.apply(command)
    assert w.rest is None and "rest" not in w.view()
    w.apply({"kind": "add_rest_pipeline"})
    for command, reason in (({"kind": "add_rest_pipeline"}, "already"),
                            ({"kind": "configure_rest_pipeline"}, "say which setting"),
                            ({"kind": "configure_rest_pipeline", "workers": "65"}, "workers must be .* 1 to 64"),
                            ({"kind": "rest_burst", "records": "50001"}, "records must be .* 1 to 50000"),
                            ({"kind": "crash_downstream", "mode": "explode"}, "mode must be one of refuse, hang"),
                            ({"kind": "restart_downstream"}, "running"),
                            ({"kind": "configure_producer", "producer": "telemetry", "serializer": "xml"},
                             "serializer must be one of text, json, avro, protobuf")):
        with pytest.raises(LabCommandError, match=reason):
            w.apply(command)
    w.apply({"kind": "crash_downstream", "mode": "hang"})
    with pytest.raises(LabCommandError, match="already hung"):
        w.apply({"kind": "crash_downstream"})


def test_rest_view_section_and_configure():
    """Ensure the view's rest section has counters, latest rates and sparklines, and configure changes the service."""
    w = LabWorld("sandbox", seed=14)
    assert "rest" not in w.view()
    w.apply({"kind": "add_rest_pipeline", "rate_per_s": "40", "capacity_per_s": "100"})
    w.advance(w.now_ms() + 5000)
    rest = w.view()["rest"]
    assert {"name", "caller", "downstream", "counters", "latest", "sparks", "dropping"} <= set(rest)
    assert rest["counters"]["ok"] > 150 and rest["counters"]["dropped"] == 0
    assert rest["latest"]["ok_per_s"] == 40.0 and rest["sparks"]["ok_per_s"][-1] == 40.0
    assert rest["downstream"]["state"] == "up" and rest["caller"]["rate_per_s"] == 40
    w.apply({"kind": "configure_rest_pipeline", "capacity_per_s": "20", "workers": "1", "rate_per_s": "",
             "timeout_ms": "300"})
    assert w.rest.downstream.service_ms == 50.0 and w.rest.caller.rate_per_s == 40
    w.advance(w.now_ms() + 10_000)
    rest = w.view()["rest"]
    assert rest["counters"]["dropped"] > 0 and rest["latest"]["utilisation"] == 1.0 and rest["dropping"]
    assert any(e["kind"] == "RestConfigured" for e in w.view()["events"])
    json.dumps(w.view())
    w.apply({"kind": "crash_downstream"})
    assert w.view()["rest"]["downstream"]["state"] == "down"
    w.apply({"kind": "restart_downstream"})
    assert w.view()["rest"]["downstream"]["state"] == "up"


def test_configure_producer_serializer_changes_the_values_and_keeps_checking():
    """Ensure serializer=avro makes the telemetry producer send Avro readings (describe says so) and the checker stays green."""
    from core_log.messages import TopicPartition
    from core_log.serde import serializer_for

    w = LabWorld("sandbox", seed=15)
    w.advance(4000)
    assert w.view()["producers"][0]["serializer"] == "text"
    w.apply({"kind": "configure_producer", "producer": "telemetry", "serializer": "avro"})
    w.advance(12_000)
    p = w.view()["producers"][0]
    assert p["serializer"] == "avro" and 25 < p["avg_value_bytes"] < 60
    tp = TopicPartition("machine.telemetry", 0)
    log = w.cluster.replica(w.cluster.leader_of(tp), tp).log
    last = list(log.read_records(log.log_end_offset - 1, log.log_end_offset))[0]
    reading = serializer_for("avro").decode(last.value)
    assert reading.producer == "telemetry" and reading.machine_id.encode() == last.key
    w.apply({"kind": "configure_producer", "producer": "telemetry", "serializer": "protobuf", "acks": "1",
             "enable_idempotence": "false"})  # a new client: the serializer goes with it
    w.advance(20_000)
    p = w.view()["producers"][0]
    assert p["serializer"] == "protobuf" and p["acks"] == "1"
    assert w.view()["guarantees"]["valid"], w.view()["guarantees"]["anomalies"]


def test_replay_rebuilds_rest_counters_and_serializers():
    """Ensure replaying REST and serializer commands on the same seed gives the identical view, rest section included."""
    w = LabWorld("sandbox", seed=16)
    log = []
    for at, command in ((1000, {"kind": "add_rest_pipeline", "rate_per_s": "80", "capacity_per_s": "60",
                                "timeout_ms": "250"}),
                        (4000, {"kind": "rest_burst", "records": "1500"}),
                        (6000, {"kind": "configure_producer", "producer": "telemetry", "serializer": "json"}),
                        (8000, {"kind": "crash_downstream", "mode": "refuse"}),
                        (9000, {"kind": "crash_downstream"}),  # refused (already down): replay refuses it too
                        (11_000, {"kind": "restart_downstream"}),
                        (13_000, {"kind": "configure_rest_pipeline", "workers": "8", "capacity_per_s": "200"})):
        w.advance(at)
        try:
            w.apply(command)
        except LabCommandError:
            pass
        log.append((at, command))
    w.advance(20_000)
    again = LabWorld.replay("sandbox", 16, log, 20_000)
    assert again.view() == w.view()
    assert again.view()["rest"]["counters"]["dropped"] > 0 and again.view()["producers"][0]["serializer"] == "json"


def test_an_idempotent_sink_absorbs_the_redelivery_after_a_consumer_crash():
    """Ensure configure_sink makes a group's sink ignore repeats: a crash mid-batch then re-delivers records
    (counted as ignored repeats) but applies none of them a second time."""
    world = LabWorld("at-least-once", 5)
    with pytest.raises(LabCommandError, match="has no sink"):
        world.apply({"kind": "configure_sink", "group": "nope", "idempotent": "true"})
    world.advance(world.now_ms() + 8000)
    world.apply({"kind": "configure_sink", "group": "dashboard", "idempotent": "true"})
    assert world.cluster.events.of_kind("SinkConfigured")
    world.apply({"kind": "burst", "producer": "telemetry", "records": 600})
    world.advance(world.now_ms() + 3000)
    sink = world.sinks["dashboard"]
    twice_before = sink.applied_twice()
    world.apply({"kind": "crash_consumer", "consumer": "dashboard-1"})
    world.advance(world.now_ms() + 30_000)
    assert sink.ignored_repeats > 0, "the takeover re-delivered part of dashboard-1's batch"
    assert sink.applied_twice() == twice_before
    described = {c["name"]: c for c in world.view()["consumers"]}["dashboard-2"]["sink"]
    assert described["idempotent"] is True and described["ignored_repeats"] == sink.ignored_repeats
