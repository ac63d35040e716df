"""The telemetry producer: steady rates on simulated time, key modes, bursts, validation."""

from __future__ import annotations

from collections import Counter

import pytest

from core_log.cluster import Cluster
from core_log.errors import ConfigError
from core_log.partitioner import partition_for_key
from core_log.workloads import TelemetryProducer


def _cluster(partitions: int = 6) -> Cluster:
    c = Cluster(brokers=3, seed=4, strict=True)
    c.create_topic("machine.telemetry", partitions, 3)
    c.run_for(200)
    return c


def test_steady_rate_sends_exactly_rate_times_seconds():
    """Ensure 250 records/s for 4 simulated seconds sends 1,000 records, all acknowledged."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=250)
    t.start()
    c.run_for(4000)
    t.stop()
    c.run_for(3000)
    assert t.sent == 1000 and t.producer.stats["acked"] == 1000


def test_machine_keys_keep_each_machine_on_its_murmur2_partition():
    """Ensure machine-N always lands on murmur2(machine-N) % partitions, so per-machine order holds."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=0, machines=12)
    futures = t.burst(120)
    c.run_for(3000)
    for f in futures:
        key = f"machine-{(futures.index(f) % 12) + 1}".encode()
        assert f.tp.partition == partition_for_key(key, 6)


def test_hot_key_concentrates_traffic_on_one_partition():
    """Ensure keys='hot' sends about hot_share of records to machine-1's partition."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=0, keys="hot", hot_share=0.8, seed=1)
    futures = t.burst(1000)
    c.run_for(3000)
    counts = Counter(f.tp.partition for f in futures)
    hot = partition_for_key(b"machine-1", 6)
    assert counts[hot] > 750 and max(v for p, v in counts.items() if p != hot) < 150


def test_null_keys_spread_by_the_sticky_partitioner():
    """Ensure keys='null' reaches several partitions in runs (sticky batches), not one record each."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=2000, keys="null")
    t.start()
    c.run_for(3000)
    t.stop()
    c.run_for(2000)
    replicas = [c.replica(c.leader_of(tp), tp).log_end_offset for tp in c.partitions()]
    assert sum(replicas) == t.sent and sum(1 for n in replicas if n) > 1


def test_rate_changes_and_restarts_do_not_double_the_loop():
    """Ensure stop/start/set_rate keep one sending loop at the current rate."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=100)
    t.start()
    t.start()
    c.run_for(1000)
    t.stop()
    t.set_rate(300)
    t.start()
    c.run_for(1000)
    assert t.sent == 400


@pytest.mark.parametrize("kwargs", [{"rate_per_s": -1}, {"rate_per_s": 50_001}, {"keys": "random"},
                                    {"machines": 0}, {"hot_share": 1.5}])
def test_bad_settings_are_refused(kwargs):
    """Ensure rates, key modes and shares outside their named limits raise a clear error."""
    c = _cluster()
    with pytest.raises((ValueError, ConfigError)):
        TelemetryProducer(c, "telemetry", "machine.telemetry", **kwargs)
    with pytest.raises(ValueError):
        TelemetryProducer(c, "t2", "no.such.topic")
