"""The cluster: replication, ISR and HW, elections, epoch truncation, crashes, commands, determinism."""

from __future__ import annotations

import pytest

from core_log.cluster import Cluster, ClusterConfig, ClusterError
from core_log.consumer import Consumer, ConsumerConfig
from core_log.errors import ConfigError
from core_log.messages import TopicPartition
from core_log.producer import Producer, ProducerConfig

T0 = TopicPartition("t", 0)
FAST = ClusterConfig(replica_lag_time_max_ms=5000)


def _cluster(brokers: int = 3, seed: int = 1, **topic) -> Cluster:
    c = Cluster(brokers=brokers, seed=seed, config=FAST, strict=True)
    c.create_topic("t", topic.pop("partitions", 1), topic.pop("rf", brokers), topic.pop("configs", None))
    c.run_for(500)
    return c


def _send(c: Cluster, producer: Producer, n: int, prefix: str = "v", step_ms: int = 5) -> list:
    futures = []
    for i in range(n):
        futures.append(producer.send("t", b"key", f"{prefix}{i}".encode()))
        c.run_for(step_ms)
    return futures


def _values(c: Cluster, broker: int, tp: TopicPartition = T0) -> list[bytes | None]:
    return [r.value for r in c.replica(broker, tp).log.all_records()]


def test_acks_all_write_reaches_every_replica_and_the_consumer():
    """Ensure acks=all records are on every ISR replica, below the HW, and read by a consumer."""
    c = _cluster(configs={"min.insync.replicas": 2})
    producer = Producer(c, "p1")
    consumer = Consumer(c, "c1", ConsumerConfig(auto_offset_reset="earliest"))
    consumer.assign([T0])
    futures = _send(c, producer, 30)
    c.run_for(2000)
    assert all(f.ok for f in futures) and [f.offset for f in futures] == list(range(30))
    for b in (1, 2, 3):
        replica = c.replica(b, T0)
        assert replica.log_end_offset == 30 and replica.high_watermark == 30
        assert _values(c, b) == [f"v{i}".encode() for i in range(30)]
    assert consumer.records_consumed == 30
    assert c.history.ops  # every send and poll was recorded


def test_hw_waits_for_min_isr_and_acks_all_is_refused():
    """Ensure with |ISR| < min.insync.replicas acks=all fails NOT_ENOUGH_REPLICAS and the HW stands still."""
    c = _cluster(configs={"min.insync.replicas": 2})
    leader = c.leader_of(T0)
    others = [b for b in (1, 2, 3) if b != leader]
    for b in others:
        c.crash_broker(b, "kill")
    c.run_for(12_000)  # both fenced, ISR = {leader}
    assert c.controller.partitions[T0].isr == (leader,)
    safe = Producer(c, "safe", ProducerConfig(delivery_timeout_ms=35_000))
    unsafe = Producer(c, "unsafe", ProducerConfig(acks="1", enable_idempotence=False))
    hw_before = c.replica(leader, T0).high_watermark
    f_safe = safe.send("t", b"k", b"needs-two-copies")
    f_unsafe = unsafe.send("t", b"k", b"leader-only")
    c.run_for(40_000)
    # retried until delivery.timeout.ms, then given up; the cause says why
    assert f_safe.done and f_safe.error == "REQUEST_TIMED_OUT" and f_safe.cause == "NOT_ENOUGH_REPLICAS"
    assert f_unsafe.ok  # acks=1: the leader alone acknowledges
    replica = c.replica(leader, T0)
    assert replica.log_end_offset == hw_before + 1 and replica.high_watermark == hw_before  # not committed
    for b in others:
        c.restart_broker(b)
    c.run_for(5000)
    assert c.replica(leader, T0).high_watermark == hw_before + 1  # committed once the ISR is back


def test_isolated_follower_leaves_and_rejoins_the_isr():
    """Ensure a cut-off follower drops out of the ISR after replica.lag.time.max.ms and rejoins after healing."""
    c = _cluster()
    producer = Producer(c, "p1")
    leader = c.leader_of(T0)
    follower = max(b for b in (1, 2, 3) if b != leader)
    c.isolate(follower, [f"broker-{leader}"])
    _send(c, producer, 200, step_ms=50)  # 10 s of writes
    assert follower not in c.controller.partitions[T0].isr
    assert c.events.of_kind("IsrShrunk")
    c.heal()
    # The follower's last fetch was lost in the partition; like Kafka it asks again once
    # replica.socket.timeout.ms (30 s) passes, then catches up.
    c.run_for(c.config.replica_socket_timeout_ms + 3000)
    assert follower in c.controller.partitions[T0].isr
    assert "caught up" in c.events.of_kind("IsrExpanded")[-1].text
    assert _values(c, follower) == _values(c, leader)


def test_leader_failover_elects_an_isr_member_with_a_new_epoch():
    """Ensure a killed leader is fenced after the session timeout and an ISR member leads in epoch + 1."""
    c = _cluster()
    before = c.controller.partitions[T0]
    c.crash_broker(before.leader, "kill")
    c.run_for(c.config.broker_session_timeout_ms + 1500)
    after = c.controller.partitions[T0]
    assert after.leader != before.leader and after.leader in before.isr
    assert after.leader_epoch == before.leader_epoch + 1
    event = c.events.of_kind("LeaderElected")[-1]
    assert f"moved from {before.leader} to {after.leader}" in event.text


def test_diverged_follower_truncates_at_the_epoch_boundary_not_its_hw():
    """Ensure a returning old leader cuts exactly the records the new leader never had (KIP-101/279)."""
    c = _cluster(configs={"min.insync.replicas": 1})
    producer = Producer(c, "p1", ProducerConfig(acks="1", enable_idempotence=False))
    _send(c, producer, 20)
    c.run_for(1000)
    old = c.leader_of(T0)
    c.isolate(old, [f"broker-{b}" for b in (1, 2, 3) if b != old])
    futures = _send(c, producer, 10, prefix="orphan")  # acked by the old leader alone
    assert all(f.ok for f in futures)
    old_replica = c.replica(old, T0)
    assert old_replica.log_end_offset == 30 and old_replica.high_watermark <= 30
    c.crash_broker(old, "kill")
    c.heal()
    c.run_for(12_000)
    new = c.leader_of(T0)
    _send(c, producer, 5, prefix="after")
    c.restart_broker(old)
    c.run_for(5000)
    truncation = c.events.of_kind("RecordsTruncated")[-1]
    assert truncation.fields["broker"] == old and truncation.fields["truncated_to"] == 20
    assert _values(c, old) == _values(c, new)
    assert b"orphan0" not in _values(c, new)


def test_no_isr_member_left_means_offline_unless_unclean_election():
    """Ensure a partition with no live ISR member goes offline, or elects a stale replica if allowed."""
    for unclean, kind in ((False, "PartitionOffline"), (True, "UncleanLeaderElected")):
        c = _cluster(configs={"unclean.leader.election.enable": unclean})
        leader = c.leader_of(T0)
        stale = max(b for b in (1, 2, 3) if b != leader)
        c.isolate(stale)
        c.run_for(12_000)  # fenced, out of the ISR
        for b in (1, 2, 3):
            if b != stale:
                c.crash_broker(b, "kill")
        c.heal()
        c.run_for(12_000)
        assert c.events.of_kind(kind), kind
        state = c.controller.partitions[T0]
        assert state.leader == (stale if unclean else -1)


@pytest.mark.parametrize("mode, survives", [("kill", True), ("power_loss", False)])
def test_kill_keeps_unsynced_writes_power_loss_does_not(mode, survives):
    """Ensure a process kill keeps page-cache writes while a power loss drops unflushed ones."""
    c = _cluster(brokers=1)
    producer = Producer(c, "p1", ProducerConfig(acks="1", enable_idempotence=False))
    futures = _send(c, producer, 10)
    assert all(f.ok for f in futures)
    c.crash_broker(1, mode)
    c.restart_broker(1)
    c.run_for(3000)
    assert c.replica(1, T0).log_end_offset == (10 if survives else 0)
    recovered = c.events.of_kind("LogRecovered")[-1]
    assert "unclean shutdown" in recovered.text


def test_flushed_records_survive_power_loss():
    """Ensure flush.messages=1 makes every acknowledged record durable on one broker."""
    c = _cluster(brokers=1, configs={"flush.messages": 1})
    producer = Producer(c, "p1", ProducerConfig(acks="1", enable_idempotence=False))
    _send(c, producer, 10)
    c.crash_broker(1, "power_loss")
    c.restart_broker(1)
    c.run_for(2000)
    assert c.replica(1, T0).log_end_offset == 10


def test_idempotent_producer_is_deduplicated_by_the_leader():
    """Ensure lost produce responses make an idempotent producer retry without writing twice."""
    c = _cluster(configs={"min.insync.replicas": 2})
    producer = Producer(c, "p1", ProducerConfig(request_timeout_ms=500, delivery_timeout_ms=30_000))
    c.run_for(200)
    leader = c.leader_of(T0)
    c.set_link(leader, "p1", loss_probability=0.5, both_ways=False)
    futures = _send(c, producer, 40, step_ms=20)
    c.heal()
    c.run_for(10_000)
    values = _values(c, leader)
    assert len(values) == len(set(values)) == 40
    assert c.events.of_kind("DuplicateBatchIgnored")
    assert all(f.ok for f in futures)


def test_same_seed_and_commands_give_the_same_run():
    """Ensure determinism: the same seed and commands produce identical events and histories."""
    def run(seed: int) -> tuple:
        c = _cluster(seed=seed)
        producer = Producer(c, "p1", ProducerConfig(request_timeout_ms=500, delivery_timeout_ms=30_000))
        c.set_link(1, "p1", loss_probability=0.3)
        _send(c, producer, 30)
        c.crash_broker(c.leader_of(T0), "kill")
        c.run_for(15_000)
        return [(e.time_ms, e.kind, e.text) for e in c.events], [op.to_json() for op in c.history.ops]
    assert run(5) == run(5)
    assert run(5)[1] != run(6)[1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: c.create_topic("bad name!", 1, 1), "topic name"),
        (lambda c: c.create_topic("x", 0, 1), "partitions must be 1 to 64"),
        (lambda c: c.create_topic("x", 65, 1), "partitions must be 1 to 64"),
        (lambda c: c.create_topic("x", 1, 4), "replication factor"),
        (lambda c: c.create_topic("x", 1, 3, {"min.insync.replicas": 4}), "min.insync.replicas"),
        (lambda c: c.create_topic("x", 1, 1, {"retention.hours": 1}), "unknown topic config"),
        (lambda c: c.create_topic("x", 1, 1, {"segment.bytes": -5}), "segment_bytes"),
        (lambda c: c.create_topic("t", 1, 1), "already exists"),
        (lambda c: c.crash_broker(7), "no broker 7"),
        (lambda c: c.crash_broker(1, "meteor"), "crash mode"),
        (lambda c: c.restart_broker(1), "already running"),
        (lambda c: c.isolate("broker-9"), "no node"),
        (lambda c: c.set_link(1, 2, latency_ms=-1), "latency_ms"),
        (lambda c: c.advance(0), "back in time"),
    ],
)
def test_bad_commands_get_named_errors_and_change_nothing(call, message):
    """Ensure invalid commands raise ClusterError with a reason and the cluster keeps running."""
    c = _cluster()
    events_before = len(c.events)
    with pytest.raises(ClusterError, match=message):
        call(c)
    assert len(c.events) == events_before
    c.run_for(1000)  # still runs


def test_cluster_and_client_configs_are_validated():
    """Ensure cluster size, storage and producer configs are checked with Kafka's rules."""
    with pytest.raises(ClusterError):
        Cluster(brokers=10)
    with pytest.raises(ClusterError):
        Cluster(storage="file")
    with pytest.raises(ConfigError):
        ClusterConfig(broker_session_timeout_ms=0)
    with pytest.raises(ConfigError, match="requires acks=all"):
        ProducerConfig(acks="1")  # idempotence is on by default
    with pytest.raises(ConfigError, match="delivery_timeout_ms"):
        ProducerConfig(request_timeout_ms=50_000, delivery_timeout_ms=40_000)
    with pytest.raises(ConfigError):
        ProducerConfig(max_in_flight_requests_per_connection=6)
    with pytest.raises(ConfigError):
        ConsumerConfig(auto_offset_reset="middle")


def test_null_keys_stick_to_one_partition_per_batch():
    """Ensure null-key records fill one partition before the sticky partitioner moves on."""
    c = Cluster(brokers=1, seed=3, strict=True)
    c.create_topic("t", 4, 1)
    producer = Producer(c, "p1", ProducerConfig(batch_size=1000, linger_ms=10))
    c.run_for(100)
    futures = [producer.send("t", None, b"x" * 100) for _ in range(30)]
    c.run_for(1000)
    partitions = [f.tp.partition for f in futures]
    runs = [p for i, p in enumerate(partitions) if i == 0 or p != partitions[i - 1]]
    assert len(runs) < 10 and len(set(partitions)) > 1


def test_file_storage_cluster_writes_real_segment_files(tmp_path):
    """Ensure a cluster on real files stores each replica as Kafka segment files."""
    c = Cluster(brokers=2, seed=1, storage="file", data_dir=str(tmp_path))
    c.create_topic("t", 1, 2)
    c.run_for(500)
    producer = Producer(c, "p1")
    _send(c, producer, 5)
    c.run_for(2000)
    for b in (1, 2):
        assert (tmp_path / f"broker-{b}" / "t-0" / "00000000000000000000.log").stat().st_size > 0


def test_power_loss_on_real_files_cuts_them_back_to_what_was_fsynced(tmp_path):
    """Ensure a power loss on a file-backed broker truncates its files to the last fsync; recovery then serves the rest from the leader."""
    c = Cluster(brokers=2, seed=1, storage="file", data_dir=str(tmp_path))
    c.create_topic("t", 1, 2)  # flush.messages is Kafka's default: never fsync per write
    c.run_for(500)
    producer = Producer(c, "p1")
    _send(c, producer, 20)
    c.run_for(2000)
    segment = tmp_path / "broker-2" / "t-0" / "00000000000000000000.log"
    assert segment.stat().st_size > 0
    c.crash_broker(2, "power_loss")
    assert segment.stat().st_size == 0  # nothing was fsynced: the page cache took it all
    c.restart_broker(2)
    c.run_for(15_000)
    assert c.replica(2, TopicPartition("t", 0)).log_end_offset == c.replica(1, TopicPartition("t", 0)).log_end_offset


def test_delete_topic_removes_replicas_and_files_even_on_a_down_broker():
    """Ensure deleting a topic drops its replicas and directories, including on a broker that was down."""
    c = _cluster()
    producer = Producer(c, "p1")
    _send(c, producer, 5)
    c.crash_broker(3, "kill")
    c.delete_topic("t")
    c.run_for(1000)
    for b in (1, 2):
        assert not c.brokers[b].replicas and "t-0" not in c.brokers[b].storage.listdir(c.brokers[b].data_dir)
    c.restart_broker(3)
    c.run_for(1000)
    assert "t-0" not in c.brokers[3].storage.listdir(c.brokers[3].data_dir)
    assert c.events.of_kind("TopicDeleted")
    with pytest.raises(ClusterError, match="no topic"):
        c.delete_topic("t")
    c.create_topic("t", 1, 3)  # the name can be used again
    c.run_for(1000)
    assert c.replica(1, T0).log_end_offset == 0


def test_deleting_a_topic_while_its_followers_fetch_never_breaks_the_cluster():
    """Ensure a topic deleted at any millisecond of busy replication (a follower's fetch may still be on the
    wire, and the leader keeps the partition until StopReplicas arrives) leaves every broker working: the
    leader answers that fetch UNKNOWN_TOPIC_OR_PARTITION instead of failing on the topic it can no longer
    look up. The wire fuzz (tests/wire/test_requests.py's search) found it: KeyError in _maybe_advance_hw."""
    c = _cluster()
    producer = Producer(c, "p1", ProducerConfig(acks="all"))
    for delay_ms in range(0, 40):
        name = f"gone-{delay_ms}"
        c.create_topic(name, 1, 3)
        c.run_for(300)
        tp = TopicPartition(name, 0)
        for i in range(3):
            producer.send(name, b"k", b"v%d" % i)
        c.run_for(delay_ms)  # the answers and the followers' next fetches are in flight now, or not
        c.delete_topic(name)
        c.run_for(600)
        assert all(tp not in b.replicas for b in c.brokers.values())
    _send(c, producer, 5)  # the cluster still replicates its other topic
    c.run_for(1000)
    assert c.replica(2, T0).log_end_offset == c.replica(1, T0).log_end_offset > 0


def test_snapshot_is_plain_json_with_every_replica_and_client():
    """Ensure snapshot() describes brokers, partitions with per-replica offsets, clients and faults as JSON."""
    import json

    c = _cluster(partitions=2)
    producer = Producer(c, "p1")
    consumer = Consumer(c, "c1", ConsumerConfig(auto_offset_reset="earliest"))
    consumer.assign([T0])
    _send(c, producer, 10)
    c.run_for(1000)
    c.crash_broker(3, "kill")
    c.isolate("c1", ["broker-1"])
    snap = json.loads(json.dumps(c.snapshot()))
    assert [b["alive"] for b in snap["brokers"]] == [True, True, False]
    part = snap["partitions"][0]
    assert part["replica_state"]["3"] is None
    leader_state = part["replica_state"][str(part["leader"])]
    assert leader_state["high_watermark"] <= leader_state["log_end_offset"]
    assert sum(p["replica_state"][str(p["leader"])]["log_end_offset"] for p in snap["partitions"]) == 10
    assert {cl["client_id"] for cl in snap["clients"]} == {"p1", "c1"}
    assert snap["network"]["isolated"] == {"c1": ["broker-1"]}


def test_strict_mode_catches_each_broken_invariant():
    """Ensure strict mode's check after every event names a broken HW ≤ LEO, ISR ⊆ replicas, or a second leader in an epoch."""
    import dataclasses

    c = _cluster()
    tp = T0
    leader = c.controller.partitions[tp].leader
    replica = c.brokers[leader].replicas[tp]
    replica.high_watermark = replica.log.log_end_offset + 1
    with pytest.raises(AssertionError, match="out of order.*seed=1"):
        c.run_for(100)
    replica.high_watermark = replica.log.log_end_offset

    good = c.controller.partitions[tp]
    c.controller.partitions[tp] = dataclasses.replace(good, isr=good.isr + (9,))
    with pytest.raises(AssertionError, match="ISR .* replicas"):
        c.run_for(100)
    other = next(b for b in good.replicas if b != good.leader)
    c.controller.partitions[tp] = dataclasses.replace(good, leader=other)  # same epoch, another leader
    with pytest.raises(AssertionError, match="two leaders"):
        c.run_for(100)
