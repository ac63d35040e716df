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


# ── lab consumers and sinks ──────────────────────────────────────────────────

from core_log.checker import Checker  # noqa: E402
from core_log.consumer import ConsumerConfig  # noqa: E402
from core_log.workloads import LabConsumer, Sink  # noqa: E402

_GROUP_CFG = ConsumerConfig(auto_offset_reset="earliest", session_timeout_ms=10_000)


def test_lab_consumer_processes_at_its_rate_and_lags_behind_a_faster_producer():
    """Ensure a 50 records/s consumer processes about 50/s and falls behind a 200 records/s producer."""
    c = _cluster()
    TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=200).start()
    worker = LabConsumer(c, "worker", "machine.telemetry", "g", rate_per_s=50, config=_GROUP_CFG)
    c.run_for(8000)  # join (incl. the 3 s initial rebalance delay)
    start = worker.processed
    c.run_for(10_000)
    assert 450 <= worker.processed - start <= 520
    assert sum(worker.consumer.lag(tp) or 0 for tp in worker.consumer.assignment) > 1000


def test_idempotent_sink_ignores_repeats_and_plain_sink_applies_them_twice():
    """Ensure re-processing after a crash is applied twice by a plain sink and ignored by an idempotent one."""
    results = {}
    for idempotent in (False, True):
        c = _cluster()
        checker = Checker()
        c.attach_checker(checker)
        producer = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=300)
        producer.start()
        sink = Sink("db", idempotent=idempotent)
        workers = [LabConsumer(c, f"w{i}", "machine.telemetry", "g", rate_per_s=120, commit="after", sink=sink,
                               config=_GROUP_CFG) for i in (1, 2)]
        c.run_for(10_000)
        assert c.run_until(lambda: workers[0].mid_batch, 5000, step_ms=5)
        workers[0].crash()
        c.run_for(15_000)
        producer.stop()
        c.run_until(lambda: not workers[1].batch and workers[1].consumer.caught_up()
                    and len(workers[1].consumer.assignment) == 6, 60_000, step_ms=100)
        stats = checker.verdict(final=True).stats["sink"]
        results[idempotent] = (stats, sink.describe())
    plain, plain_sink = results[False]
    assert plain["duplicates"] > 0 and plain["lost"] == 0 and plain_sink["applied_twice"] > 0
    idem, idem_sink = results[True]
    assert idem["duplicates"] == 0 and idem["ignored_repeats"] > 0 and idem["lost"] == 0
    assert idem_sink["ignored_repeats"] == idem["ignored_repeats"]


def test_lab_consumer_validation():
    """Ensure unknown commit strategies, topics and bad rates are refused with a reason."""
    c = _cluster()
    with pytest.raises(ValueError, match="commit must be"):
        LabConsumer(c, "x", "machine.telemetry", "g", commit="sometimes")
    with pytest.raises(ValueError, match="unknown topic"):
        LabConsumer(c, "y", "nope", "g")
    with pytest.raises(ConfigError, match="rate_per_s"):
        LabConsumer(c, "z", "machine.telemetry", "g", rate_per_s=0)
