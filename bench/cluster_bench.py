"""Cluster benchmarks: the replicated produce path against an in-memory peer, and simulation speed.

* ``produce_records_per_s`` — ``Producer.send`` per record into 3 brokers, RF 3,
  acks=all, idempotence on, 6 partitions, keyed 200-byte values, zero-latency
  links, FileStorage, until every record is acknowledged;
* ``mockafka_produce_records_per_s`` — the same record count through mockafka-py's
  ``FakeProducer.produce`` (explicit partition, one in-memory list, no brokers), in
  the same run; ``produce_vs_mockafka`` is the ratio;
* ``sim_speedup`` — simulated seconds per wall second for 3 brokers, 6 partitions
  and a producer sending 1,000 records/s (acks=all, replication, an assign-mode
  consumer reading everything).

Detail (not targets): ``produce_requests`` and ``produce_messages`` (ProduceRequests
the producer sent, messages on the network) for the produce run;
``sim_messages_per_record`` and ``sim_events_per_record`` (network messages and
scheduled events the simulation ran, per record sent) for the speed run.
"""

from __future__ import annotations

import shutil
import tempfile
import time

from core_log.cluster import Cluster
from core_log.consumer import Consumer, ConsumerConfig
from core_log.messages import TopicPartition
from core_log.network import FaultPlan
from core_log.partitioner import partition_for_key
from core_log.producer import Producer

PARTITIONS = 6
VALUE = b"v" * 200
_MOCKAFKA_RUNS = [0]


def _keys(count: int) -> list[bytes]:
    return [f"machine-{i % 500}".encode() for i in range(count)]


_DETAIL: dict[str, float | int] = {}


def produce_throughput(records: int, value: bytes = VALUE) -> float:
    root = tempfile.mkdtemp(prefix="core_log_cluster_bench_")
    try:
        cluster = Cluster(brokers=3, seed=1, storage="file", data_dir=root)
        cluster.network.plan = FaultPlan(default_latency_ms=0)
        cluster.create_topic("bench", PARTITIONS, 3)
        cluster.run_for(100)
        producer = Producer(cluster, "bench-producer", record_history=False)
        cluster.run_for(100)
        keys = _keys(records)
        sent_before = cluster.network.sent
        start = time.perf_counter()
        futures = [producer.send("bench", key, value) for key in keys]
        cluster.run_until(lambda: producer.in_flight_count() == 0, timeout_ms=600_000, step_ms=1)
        elapsed = time.perf_counter() - start
        assert all(f.ok for f in futures), "every record must be acknowledged"
        _DETAIL["produce_requests"] = producer.stats["requests"]
        _DETAIL["produce_messages"] = cluster.network.sent - sent_before
        return records / elapsed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def mockafka_throughput(records: int) -> float | None:
    try:
        from mockafka import FakeProducer
        from mockafka.admin_client import FakeAdminClientImpl, NewTopic
    except ImportError:
        return None
    # mockafka keeps one process-wide store: a fresh topic name per call.
    _MOCKAFKA_RUNS[0] += 1
    topic = f"bench-mockafka-{_MOCKAFKA_RUNS[0]}"
    FakeAdminClientImpl().create_topics([NewTopic(topic=topic, num_partitions=PARTITIONS)])
    producer = FakeProducer()
    keys = _keys(records)
    partitions = [partition_for_key(k, PARTITIONS) for k in keys]
    start = time.perf_counter()
    for key, partition in zip(keys, partitions):
        producer.produce(topic, value=VALUE, key=key, partition=partition)
    return records / (time.perf_counter() - start)


def sim_speedup(simulated_ms: int = 30_000) -> float:
    cluster = Cluster(brokers=3, seed=2)
    cluster.create_topic("sim", PARTITIONS, 3, {"min.insync.replicas": 2})
    cluster.run_for(100)
    producer = Producer(cluster, "sim-producer")
    consumer = Consumer(cluster, "sim-consumer", ConsumerConfig(auto_offset_reset="earliest"))
    consumer.assign([TopicPartition("sim", p) for p in range(PARTITIONS)])
    counter = [0]

    def tick() -> None:  # 1,000 records/s: one per simulated millisecond
        counter[0] += 1
        producer.send("sim", f"machine-{counter[0] % 500}".encode(), VALUE)
        cluster.schedule(1, tick)

    cluster.schedule(0, tick)
    sent_before = cluster.network.sent
    start = time.perf_counter()
    events = cluster.run_for(simulated_ms)
    elapsed = time.perf_counter() - start
    _DETAIL["sim_messages_per_record"] = round((cluster.network.sent - sent_before) / max(1, counter[0]), 2)
    _DETAIL["sim_events_per_record"] = round(events / max(1, counter[0]), 2)
    return (simulated_ms / 1000) / elapsed


def run_cluster_bench(records: int = 50_000) -> dict[str, float | int | None]:
    ours = produce_throughput(records)
    peer = mockafka_throughput(records)
    speedup = sim_speedup()
    return {
        "produce_records": records,
        "produce_records_per_s": round(ours),
        "mockafka_produce_records_per_s": None if peer is None else round(peer),
        "produce_vs_mockafka": None if peer is None else round(ours / peer, 3),
        "sim_speedup": round(speedup, 1),
        **_DETAIL,
    }
