"""Consumer benchmarks: group consumption against an in-memory peer, and how long a rebalance takes.

* ``consume_records_per_s`` — one consumer-group member (subscribe, 6 partitions,
  3 brokers, RF 3, FileStorage, zero-latency links) fetching and decoding
  ``records`` 200-byte records that were produced beforehand; wall time from
  ``subscribe()`` until every record was handed to the application (the join
  itself included, with the initial rebalance delay set to 0);
* ``mockafka_consume_records_per_s`` — mockafka-py's ``FakeConsumer.poll`` over the
  same number of records in the same run (records produced beforehand, one
  ``poll()`` per record, no brokers, no group protocol); ``consume_vs_mockafka``
  is the ratio;
* ``rebalance_sim_ms`` — simulated time from ten members calling ``subscribe()`` at
  the same moment until the group is Stable and all twelve partitions are owned,
  with the lab's defaults, which are Kafka's (``group.initial.rebalance.delay.ms``
  3,000, ``heartbeat.interval.ms`` 3,000, eager ``range``).
"""

from __future__ import annotations

import shutil
import tempfile
import time

from core_log.cluster import Cluster, ClusterConfig
from core_log.consumer import Consumer, ConsumerConfig
from core_log.network import FaultPlan
from core_log.partitioner import partition_for_key
from core_log.producer import Producer

PARTITIONS = 6
VALUE = b"v" * 200
_RUNS = [0]


def _keys(count: int) -> list[bytes]:
    return [f"machine-{i % 500}".encode() for i in range(count)]


def consume_throughput(records: int) -> float:
    root = tempfile.mkdtemp(prefix="core_log_consume_bench_")
    try:
        cluster = Cluster(brokers=3, seed=3, storage="file", data_dir=root,
                          config=ClusterConfig(group_initial_rebalance_delay_ms=0))
        cluster.network.plan = FaultPlan(default_latency_ms=0)
        cluster.create_topic("bench", PARTITIONS, 3)
        cluster.run_for(100)
        producer = Producer(cluster, "bench-producer", record_history=False)
        for key in _keys(records):
            producer.send("bench", key, VALUE)
        cluster.run_until(lambda: producer.in_flight_count() == 0, timeout_ms=600_000, step_ms=1)
        consumer = Consumer(cluster, "bench-member", ConsumerConfig(group_id="bench", auto_offset_reset="earliest"),
                            record_history=False)
        start = time.perf_counter()
        consumer.subscribe(["bench"])
        cluster.run_until(lambda: consumer.records_consumed >= records, timeout_ms=600_000, step_ms=5)
        elapsed = time.perf_counter() - start
        assert consumer.records_consumed == records, "every record must be consumed exactly once"
        return records / elapsed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def mockafka_consume_throughput(records: int) -> float | None:
    try:
        from mockafka import FakeConsumer, FakeProducer
        from mockafka.admin_client import FakeAdminClientImpl, NewTopic
    except ImportError:
        return None
    _RUNS[0] += 1
    topic = f"bench-mockafka-consume-{_RUNS[0]}"  # mockafka keeps one process-wide store
    FakeAdminClientImpl().create_topics([NewTopic(topic=topic, num_partitions=PARTITIONS)])
    producer = FakeProducer()
    for key in _keys(records):
        producer.produce(topic, value=VALUE, key=key, partition=partition_for_key(key, PARTITIONS))
    consumer = FakeConsumer()
    consumer.subscribe([topic])
    got = 0
    start = time.perf_counter()
    while got < records:
        message = consumer.poll()
        if message is None:
            break
        got += 1
    elapsed = time.perf_counter() - start
    assert got == records, f"mockafka returned {got} of {records} records"
    return records / elapsed


def rebalance_sim_ms(members: int = 10, partitions: int = 12) -> int:
    cluster = Cluster(brokers=3, seed=4)
    cluster.create_topic("rebalance", partitions, 3)
    cluster.run_for(500)
    group = [Consumer(cluster, f"member-{i}", ConsumerConfig(group_id="ten", partition_assignment_strategy=("range",)),
                      record_history=False) for i in range(members)]
    start = cluster.now_ms()
    for member in group:
        member.subscribe(["rebalance"])

    def stable() -> bool:
        groups = cluster.describe_groups()
        owned = sum(len(m.assignment) for m in group)
        return bool(groups) and groups[0]["state"] == "Stable" and owned == partitions and all(
            m.group is not None and m.group.phase == "stable" for m in group)

    assert cluster.run_until(stable, timeout_ms=120_000, step_ms=1), "the group never became stable"
    return cluster.now_ms() - start


def run_consume_bench(records: int = 50_000) -> dict[str, float | int | None]:
    ours = consume_throughput(records)
    peer = mockafka_consume_throughput(records)
    return {
        "consume_records": records,
        "consume_records_per_s": round(ours),
        "mockafka_consume_records_per_s": None if peer is None else round(peer),
        "consume_vs_mockafka": None if peer is None else round(ours / peer, 3),
        "rebalance_sim_ms": rebalance_sim_ms(),
    }
