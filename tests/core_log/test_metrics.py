"""Metrics: rates, lag, disks, replication health and the "lag growing while producers are healthy" alert."""

from __future__ import annotations

import json

import pytest

from core_log.cluster import Cluster
from core_log.consumer import Consumer, ConsumerConfig
from core_log.errors import ConfigError
from core_log.messages import TopicPartition
from core_log.metrics import ALERT_WINDOW_SAMPLES, Metrics, slope_per_s
from core_log.partitioner import partition_for_key
from core_log.producer import Producer
from core_log.workloads import TelemetryProducer

TOPIC = "machine.telemetry"
# A few small batches per fetch, five fetches a second: keeps up with a quiet partition, not with a hot one.
SLOW = ConsumerConfig(auto_offset_reset="earliest", fetch_max_bytes=1000, poll_interval_ms=200)
# One batch per partition per second: too slow for any steady stream.
CRAWLING = ConsumerConfig(auto_offset_reset="earliest", fetch_max_bytes=100, poll_interval_ms=1000)


def _cluster(partitions: int = 6, seed: int = 7) -> Cluster:
    c = Cluster(brokers=3, seed=seed)
    c.create_topic(TOPIC, partitions, 3)
    c.run_for(200)
    return c


def _all(partitions: int = 6) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, p) for p in range(partitions)]


def test_rates_match_a_telemetry_producer_at_a_known_rate():
    """Ensure produce and consume rates read 250 records/s when 250 records/s flow and are read."""
    c = _cluster()
    m = Metrics(c)
    t = TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=250, machines=60)
    t.start()
    reader = Consumer(c, "reader", ConsumerConfig(auto_offset_reset="earliest"))
    reader.assign(_all())
    c.run_for(10_000)
    produced = [v for _, v in m.series("produce_records_per_s")[-5:]]
    consumed = [v for _, v in m.series("consume_records_per_s")[-5:]]
    assert sum(produced) / 5 == pytest.approx(250, rel=0.05)
    assert sum(consumed) / 5 == pytest.approx(250, rel=0.05)
    assert m.latest()["produce_records_per_s_by_client"]["telemetry"] == pytest.approx(250, rel=0.1)
    assert sum(m.latest()["partition_produce_records_per_s"].values()) == pytest.approx(250, rel=0.1)
    json.dumps(m.latest())  # JSON-ready


def test_disk_bytes_equal_the_sum_of_the_replica_log_sizes():
    """Ensure disk_bytes per broker is the sum of its replicas' log sizes as the storage reports them."""
    c = _cluster()
    m = Metrics(c)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=200).start()
    c.run_for(5000)
    m.sample()
    disk = m.latest()["disk_bytes"]
    for broker_id, broker in c.brokers.items():
        expected = sum(r.log.size_bytes for r in broker.replicas.values())
        assert expected > 0 and disk[str(broker_id)] == expected
    assert m.series("disk_bytes", "1")[-1][1] == disk["1"]


def test_under_replicated_and_offline_partitions_after_broker_crashes():
    """Ensure one fenced broker makes its partitions under-replicated, and all brokers down makes them offline."""
    c = Cluster(brokers=3, seed=11)
    c.create_topic(TOPIC, 3, 3)
    c.run_for(500)
    m = Metrics(c)
    c.run_for(2000)
    assert m.latest()["under_replicated_partitions"] == 0 and m.latest()["offline_partitions"] == 0
    c.crash_broker(1, "kill")
    c.run_for(c.config.broker_session_timeout_ms + 3000)
    latest = m.latest()
    assert latest["under_replicated_partitions"] == 3 and latest["offline_partitions"] == 0
    assert latest["isr_shrinks"] == len(c.events.of_kind("IsrShrunk")) > 0 and latest["disk_bytes"]["1"] is None
    c.crash_broker(2, "kill")
    c.crash_broker(3, "kill")
    c.run_for(c.config.broker_session_timeout_ms + 3000)
    assert m.latest()["offline_partitions"] == 3


def test_isr_expands_are_counted_when_a_broker_returns():
    """Ensure a restarted broker rejoining the ISR is counted as ISR expansions."""
    c = Cluster(brokers=3, seed=12)
    c.create_topic(TOPIC, 2, 3)
    c.run_for(500)
    m = Metrics(c)
    c.crash_broker(3, "kill")
    c.run_for(c.config.broker_session_timeout_ms + 3000)
    c.restart_broker(3)
    c.run_for(20_000)
    assert m.latest()["isr_expands"] >= 2 and m.latest()["under_replicated_partitions"] == 0


def test_series_are_bounded_by_the_window():
    """Ensure a series never holds more than window_ms / interval_ms points."""
    c = _cluster()
    m = Metrics(c, interval_ms=100, window_ms=1000)
    c.run_for(5000)
    points = m.series("produce_records_per_s")
    assert len(points) == 10 and points[-1][0] == c.now_ms()
    assert [t for t, _ in points] == list(range(c.now_ms() - 900, c.now_ms() + 1, 100))


@pytest.mark.parametrize("interval_ms, window_ms", [(0, 1000), (1000, 1500), (1000, 10_000_000), (100, 50)])
def test_bad_intervals_and_windows_are_refused(interval_ms, window_ms):
    """Ensure an interval or window outside the limits is a ConfigError, not a silent clamp."""
    with pytest.raises(ConfigError):
        Metrics(_cluster(), interval_ms=interval_ms, window_ms=window_ms)


def test_least_squares_slope():
    """Ensure the trend is the least-squares slope in units per second."""
    assert slope_per_s([(0, 0), (1000, 10), (2000, 20)]) == pytest.approx(10.0)
    assert slope_per_s([(0, 5)]) is None


def test_alert_fires_for_a_slow_consumer_and_names_it_so():
    """Ensure a consumer too slow for all of its partitions raises one LagAlert diagnosed as a slow consumer."""
    c = _cluster()
    m = Metrics(c)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=300, machines=60).start()
    slow = Consumer(c, "slow", CRAWLING)
    slow.assign(_all())
    c.run_for(30_000)
    alerts = c.events.of_kind("LagAlert")
    assert len(alerts) == 1 and alerts[0].fields["consumer"] == "slow"
    assert alerts[0].fields["diagnosis"] == "slow_consumer" and "slow consumer rather than" in alerts[0].text
    assert len(alerts[0].fields["partitions"]) >= 4
    assert [a["consumer"] for a in m.alerts()] == ["slow"]
    lag = m.latest()["lag"]["slow"]
    assert lag["lag_records"] > 1000 and lag["lag_trend_records_per_s"] > 100
    part = lag["partitions"][f"{TOPIC}-1"]
    assert part["lag_s"] > 0 and part["time_to_drain_s"] is None  # behind and not draining


def test_alert_fires_for_a_hot_partition_and_names_the_partition():
    """Ensure with hot keys and one equally slow consumer per partition only the hot partition's consumer alerts."""
    c = _cluster()
    m = Metrics(c)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=300, keys="hot", machines=60, seed=3).start()
    for p in range(6):
        Consumer(c, f"reader-{p}", SLOW).assign([TopicPartition(TOPIC, p)])
    c.run_for(30_000)
    hot = partition_for_key(b"machine-1", 6)
    alerts = c.events.of_kind("LagAlert")
    assert [a.fields["consumer"] for a in alerts] == [f"reader-{hot}"]
    assert alerts[0].fields["diagnosis"] == "hot_partition"
    assert f"{TOPIC}-{hot}" in alerts[0].text and "hot partition" in alerts[0].text
    assert m.latest()["partition_skew"][TOPIC] > 2


def test_no_alert_when_the_consumer_keeps_up():
    """Ensure a consumer that keeps up raises no alert and its lag drains immediately."""
    c = _cluster()
    m = Metrics(c)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=300, machines=60).start()
    Consumer(c, "fast", ConsumerConfig(auto_offset_reset="earliest")).assign(_all())
    c.run_for(30_000)
    assert c.events.of_kind("LagAlert") == [] and m.alerts() == []
    assert m.latest()["lag"]["fast"]["lag_records"] < 50


def test_no_alert_while_a_producer_is_failing():
    """Ensure growing lag does not alert while some producer's failures grow (producers are not healthy)."""
    c = _cluster()
    c.create_topic("tiny", 1, 1, {"max.message.bytes": 200})
    m = Metrics(c)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=300, machines=60).start()
    failing = Producer(c, "oversized")

    def send_too_large() -> None:
        failing.send("tiny", None, b"x" * 1000)
        c.schedule(200, send_too_large)

    send_too_large()
    Consumer(c, "slow", CRAWLING).assign(_all())
    c.run_for(30_000)
    assert failing.stats["failed"] > 0
    assert m.latest()["lag"]["slow"]["lag_trend_records_per_s"] > 100
    assert c.events.of_kind("LagAlert") == [] and not m.producers_healthy()


def test_no_alert_when_all_brokers_are_down():
    """Ensure nothing alerts while every broker is down: no records are acknowledged, so producers are not healthy."""
    c = _cluster()
    m = Metrics(c)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=300, machines=60).start()
    Consumer(c, "slow", CRAWLING).assign(_all())
    c.run_for(ALERT_WINDOW_SAMPLES * 1000 - 3000)
    for broker_id in (1, 2, 3):
        c.crash_broker(broker_id, "kill")
    c.run_for(30_000)
    assert c.events.of_kind("LagAlert") == [] and m.alerts() == []
    assert m.latest()["produce_records_per_s"] == 0 and m.latest()["offline_partitions"] == 6


def test_alert_clears_after_the_consumer_catches_up():
    """Ensure a LagAlertCleared follows once the slow consumer is sped up and its lag stops growing."""
    c = _cluster()
    m = Metrics(c)
    TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=300, machines=60).start()
    slow = Consumer(c, "slow", CRAWLING)
    slow.assign(_all())
    c.run_for(20_000)
    assert len(c.events.of_kind("LagAlert")) == 1
    slow.config = ConsumerConfig(auto_offset_reset="earliest")  # the application got faster
    c.run_for(40_000)
    cleared = c.events.of_kind("LagAlertCleared")
    assert len(cleared) == 1 and cleared[0].fields["consumer"] == "slow" and m.alerts() == []
    assert m.latest()["lag"]["slow"]["lag_records"] < 50


def test_group_lag_is_high_watermark_minus_committed_offset():
    """Ensure group_lag_records per group and partition equals the leader HW minus the group's committed offset."""
    from core_log.consumer import ConsumerConfig as _Cfg

    c = _cluster()
    m = Metrics(c)
    producer = TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=200, machines=30)
    producer.start()
    member = Consumer(c, "member", _Cfg(group_id="dash", auto_offset_reset="earliest", session_timeout_ms=10_000,
                                        enable_auto_commit=False))
    member.subscribe([TOPIC])
    c.run_for(10_000)
    f = member.commit_sync()
    assert c.run_until(lambda: f.done, 5000) and f.ok
    producer.stop()
    c.run_for(3000)
    group = m.latest()["group_lag"]["dash"]
    for tp, committed in f.offsets.items():
        hw = c.replica(c.leader_of(tp), tp).high_watermark
        assert group["partitions"][str(tp)] == hw - committed
    assert group["lag_records"] == sum(group["partitions"].values()) > 0
    assert m.series("group_lag_records", "dash")[-1][1] == group["lag_records"]
