"""A synchronous REST downstream and the fleet that calls it: capacity, 503s, timeouts, retries, drops, narration."""

from __future__ import annotations

import math

import pytest

from core_log.cluster import Cluster
from core_log.network import DEFAULT_LATENCY_MS
from core_log.rest import (DROP_REPORT_INTERVAL_MS, LIMITS, SERIES_POINTS, SPARK_POINTS, RestError, RestPipeline,
                           percentile)


def _pipeline(**settings) -> tuple[Cluster, RestPipeline]:
    c = Cluster(brokers=1, seed=3, strict=True)
    base = {"rate_per_s": 0, "capacity_per_s": 100, "workers": 4, "queue": 50, "timeout_ms": 1000, "retries": 2,
            "backoff_ms": 100, "max_in_flight": 8, "buffer": 100}
    return c, RestPipeline(c, **{**base, **settings})


def _conserved(p: RestPipeline) -> bool:
    """Every reading the fleet took is answered OK, dropped, or still held (in flight or buffered) — exactly once."""
    k = p.caller.counters
    return k["readings"] == k["ok"] + k["dropped"] + p.caller.connections_in_use + p.caller.buffered


def test_under_capacity_every_reading_is_answered_at_service_time_plus_network():
    """Ensure 50 readings/s against 100 requests/s all succeed, with latency = service time + two link latencies."""
    c, p = _pipeline(rate_per_s=50)
    c.run_for(10_000)
    k = p.view()["counters"]
    assert k["dropped"] == k["rejected_503"] == k["timed_out"] == 0
    assert k["ok"] >= 50 * 10 - 10 and _conserved(p)
    expected = math.ceil(p.downstream.service_ms) + 2 * DEFAULT_LATENCY_MS
    assert k["latency_p50_ms"] == k["latency_p99_ms"] == expected
    assert p.view()["latest"]["utilisation"] == pytest.approx(0.5, abs=0.02)


def test_saturated_downstream_serves_exactly_its_capacity():
    """Ensure a backlog is served at capacity_per_s (utilisation 1.0), never faster."""
    c, p = _pipeline(queue=2000, max_in_flight=1000, buffer=5000, timeout_ms=60_000)
    p.caller.burst(1000)
    c.run_for(5000)
    ok = p.series("ok_per_s")
    assert max(ok) <= 100 and ok[1:4] == [100.0, 100.0, 100.0]
    assert p.series("utilisation")[1:4] == [1.0, 1.0, 1.0]
    assert p.series("queue_depth")[0] > p.series("queue_depth")[3] > 0  # the backlog drains at capacity


def test_fractional_service_times_keep_the_capacity_exact():
    """Ensure 3,000 requests/s on one worker (1/3 ms each) processes 3,000 requests in about one second."""
    c, p = _pipeline(capacity_per_s=3000, workers=1, queue=10_000, max_in_flight=1000, buffer=10_000,
                     timeout_ms=60_000)
    p.caller.burst(3000)
    c.run_for(995)
    assert 2950 <= p.downstream.counters["processed"] < 3000
    c.run_for(100)
    assert p.downstream.counters["processed"] == 3000 and p.caller.counters["ok"] == 3000


def test_a_full_queue_answers_503_and_without_retries_those_readings_are_dropped():
    """Ensure with 4 workers and a queue of 10, 100 simultaneous requests get 14 accepted and 86 answered 503."""
    c, p = _pipeline(queue=10, max_in_flight=100, retries=0)
    p.caller.burst(100)
    c.run_for(3000)
    k = p.caller.counters
    assert (k["ok"], k["rejected_503"], k["dropped_gave_up"], k["dropped_buffer_full"]) == (14, 86, 86, 0)
    assert p.downstream.counters["rejected_503"] == 86 and _conserved(p)


def test_a_blocked_caller_buffers_then_drops_on_overflow():
    """Ensure readings beyond the connections wait in the buffer, and beyond the buffer are dropped at once."""
    c, p = _pipeline(max_in_flight=2, buffer=5)
    p.caller.burst(20)
    assert (p.caller.connections_in_use, p.caller.buffered, p.caller.counters["dropped_buffer_full"]) == (2, 5, 13)
    assert _conserved(p)
    c.run_for(2000)
    assert p.caller.counters["ok"] == 7 and p.caller.buffered == 0 and _conserved(p)


def test_timeouts_are_retried_with_exponential_backoff_then_given_up():
    """Ensure against a hung downstream one reading is tried 3 times (timeout 200, backoff 100 then 200) and dropped at 900 ms."""
    c, p = _pipeline(timeout_ms=200, retries=2, backoff_ms=100)
    c.run_for(100)
    p.downstream.crash("hang")
    start = c.now_ms()
    p.caller.burst(1)
    assert c.run_until(lambda: p.caller.counters["dropped"] == 1, 5000, step_ms=1)
    assert c.now_ms() - start == 200 + 100 + 200 + 200 + 200
    k = p.caller.counters
    assert (k["sent"], k["timed_out"], k["retries"], k["dropped_gave_up"], k["refused"]) == (3, 3, 2, 1, 0)


def test_a_killed_downstream_refuses_fast_and_comes_back():
    """Ensure a 'refuse' crash resets open calls and refuses new ones (no timeouts), and a restart serves again."""
    c, p = _pipeline(rate_per_s=100, timeout_ms=5000, capacity_per_s=50, queue=20)
    c.run_for(2000)
    p.downstream.crash("refuse")
    assert p.downstream.counters["lost_in_crash"] > 0  # it had work in hand
    c.run_for(3000)
    k = dict(p.caller.counters)
    assert k["refused"] > 0 and k["timed_out"] == 0 and k["dropped_gave_up"] > 0
    with pytest.raises(RestError, match="already down"):
        p.downstream.crash("hang")
    p.downstream.restart()
    ok_before = p.caller.counters["ok"]
    c.run_for(3000)
    assert p.caller.counters["ok"] > ok_before and _conserved(p)
    with pytest.raises(RestError, match="running"):
        p.downstream.restart()
    kinds = [e.kind for e in c.events if e.kind.startswith("Downstream")]
    assert kinds == ["DownstreamCrashed", "DownstreamRestarted"]


def test_slow_service_with_short_timeout_wastes_work_and_applies_readings_twice():
    """Ensure timed-out requests are still processed (late responses) and their retries are duplicates,
    and every response the downstream sent is matched or counted late."""
    c, p = _pipeline(capacity_per_s=10, workers=1, queue=10, timeout_ms=150, retries=1, backoff_ms=0,
                     max_in_flight=5, buffer=50)
    p.caller.burst(30)
    c.run_for(30_000)
    k, d = p.caller.counters, p.downstream.counters
    assert k["timed_out"] > 0 and k["late_responses"] > 0 and d["duplicates"] > 0
    assert d["processed"] + d["rejected_503"] == k["ok"] + k["rejected_503"] + k["late_responses"]
    assert _conserved(p) and p.caller.connections_in_use == 0


def test_link_latency_and_isolation_apply_to_rest_calls():
    """Ensure a slow link adds its latency both ways, and an isolated downstream makes calls time out."""
    c, p = _pipeline(rate_per_s=20, timeout_ms=300, retries=0)
    c.set_link("rest-fleet", "rest-downstream", latency_ms=50)
    c.run_for(3000)
    assert p.view()["counters"]["latency_p50_ms"] == math.ceil(p.downstream.service_ms) + 100
    c.isolate("rest-downstream")
    c.run_for(3000)
    assert p.caller.counters["timed_out"] > 0 and p.caller.counters["refused"] == 0


def test_narration_is_aggregate_and_adds_up():
    """Ensure a long overload gives one RestRejecting, at most one RestDropping per 5 s, and a RestRecovered whose
    total equals every reading dropped."""
    c, p = _pipeline(rate_per_s=300, queue=10, max_in_flight=40, buffer=50, timeout_ms=400)
    c.run_for(30_000)
    p.configure(rate_per_s=20)
    c.run_for(10_000)
    events = [e for e in c.events if e.kind.startswith("Rest")]
    dropping = [e for e in events if e.kind == "RestDropping"]
    recovered = [e for e in events if e.kind == "RestRecovered"]
    assert [e.kind for e in events].count("RestRejecting") == 1
    assert 1 < len(dropping) <= 30_000 // DROP_REPORT_INTERVAL_MS + 1
    assert all(b.time_ms - a.time_ms >= DROP_REPORT_INTERVAL_MS for a, b in zip(dropping, dropping[1:]))
    assert len(recovered) == 1 and recovered[0].fields["dropped"] == p.caller.counters["dropped"] > 0
    assert sum(e.fields["dropped"] for e in dropping) <= p.caller.counters["dropped"]
    first = dropping[0].text
    assert "503" in first and "dropped" in first and "nowhere" in first
    assert str(dropping[0].fields["dropped"]) in first


def test_configure_changes_capacity_workers_and_limits():
    """Ensure more workers drain a queue faster, fewer leave when idle, and changes are validated before applying."""
    c, p = _pipeline(queue=500, max_in_flight=500, buffer=500, timeout_ms=60_000)
    p.caller.burst(400)
    c.run_for(1000)
    p.configure(workers=16, capacity_per_s=400)
    assert p.downstream.busy_workers == 16
    c.run_for(1000)
    assert max(p.series("ok_per_s")[1:]) > 300
    p.configure(workers=2)
    c.run_for(2000)
    assert len(p.downstream._pool) == 2 and p.downstream.service_ms == 5.0
    with pytest.raises(RestError, match="workers must be a whole number"):
        p.configure(workers=0, rate_per_s=10)
    assert p.caller.rate_per_s == 0  # nothing changed
    with pytest.raises(RestError, match="unknown setting 'speed'"):
        p.configure(speed=3)


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_every_setting_has_named_limits(name):
    """Ensure each setting below or above its limit is refused with its name and range."""
    low, high = LIMITS[name]
    for bad in (low - 1, high + 1, "7", True):
        with pytest.raises(RestError, match=name):
            _pipeline(**{name: bad})


def test_series_are_bounded_and_the_run_is_deterministic():
    """Ensure per-second series keep SERIES_POINTS points (the view SPARK_POINTS), and the same run gives the same view."""
    views = []
    for _ in range(2):
        c, p = _pipeline(rate_per_s=40, capacity_per_s=30, timeout_ms=200)
        c.run_for(20_000)
        p.caller.burst(300)
        c.run_for(20_000)
        views.append((p.view(), [e.text for e in c.events]))
    assert views[0] == views[1]
    c, p = _pipeline()
    c.run_for((SERIES_POINTS + 20) * 1000)
    assert len(p.series("ok_per_s")) == SERIES_POINTS
    assert all(len(v) == SPARK_POINTS for v in p.view()["sparks"].values())


def test_percentile_reads_buckets():
    """Ensure percentiles of bucketed latencies pick the bucket at the rank, None when empty."""
    from collections import Counter

    assert percentile(Counter(), 0.5) is None
    buckets = Counter({10: 98, 500: 1, 2000: 1})
    assert percentile(buckets, 0.5) == 10 and percentile(buckets, 0.99) == 500 and percentile(buckets, 1.0) == 2000


def test_rest_nodes_are_not_mistaken_for_kafka_clients():
    """Ensure the cluster's Metrics sampler counts no REST traffic as produced or consumed records."""
    from core_log.metrics import Metrics

    c, p = _pipeline(rate_per_s=100)
    m = Metrics(c)
    c.run_for(5000)
    assert p.caller.counters["ok"] > 0
    assert m.latest()["produce_records_per_s"] in (0, 0.0, None)
    assert m.latest()["consume_records_per_s"] in (0, 0.0, None)
    assert c.snapshot()["clients"]  # both nodes describe themselves
