"""``Metrics``: what a platform engineer watches, sampled on simulated time, and one alert.

The guide's observability lesson is that a handful of numbers tell you whether a
Kafka pipeline is healthy: how fast records go in and come out, how far each
consumer is behind (in records *and* in seconds), whether that gap is growing,
how full the disks are, whether traffic is spread evenly, and whether any
partition is under-replicated or offline. :class:`Metrics` samples all of them
from a :class:`~core_log.cluster.Cluster` every ``interval_ms`` of *simulated*
time (it schedules itself, like every other timer in the engine), keeps a
bounded series of each for the last ``window_ms`` (10 simulated minutes of
one-second points by default), and raises one alert.

What is measured, per sample (units are in the series names):

* ``produce_records_per_s`` — records acknowledged per second, summed over every
  producer in ``cluster.clients`` (key ``None``) and per producer (key: client id).
  A producer is any client with a ``stats`` dict that has ``"acked"``.
* ``consume_records_per_s`` — records handed to the application per second
  (``Consumer.records_consumed``), total and per consumer; per consumer and
  partition (key ``"client/topic-p"``) it is how fast the position moves.
* ``partition_produce_records_per_s`` — how fast each partition's high watermark
  moves (key ``"topic-p"``): the rate records become readable there.
* ``lag_records`` — high watermark − position, per consumer and partition (key
  ``"client/topic-p"``) and summed per consumer (key ``"client"``). The high
  watermark is the leader's own, not the consumer's last view of it, so a
  consumer that polls rarely cannot hide its lag. A consumer that has not
  fetched yet and starts from ``earliest`` is counted from the log start.
* ``lag_s`` — lag in records ÷ the consumer's recent consume rate on that
  partition (mean over the last :data:`RATE_SAMPLES` samples): how old the next
  record it will read is, roughly. ``0.0`` with no lag; ``None`` when it has
  lag but consumed nothing recently (it would never catch up at that rate).
* ``lag_trend_records_per_s`` — the least-squares slope of ``lag_records`` over
  the last :data:`TREND_SAMPLES` samples; positive means falling further behind.
* ``time_to_drain_s`` — lag ÷ (consume rate − produce rate into the partition)
  when that difference is positive; ``0.0`` with no lag; ``None`` means "not
  draining" (the consumer reads no faster than records arrive).
* ``disk_bytes`` — per broker (key: broker id as text), the sum of its replicas'
  log sizes as the storage reports them (real file sizes with ``FileStorage``);
  ``None`` while the broker is down.
* ``partition_skew`` — per topic: the largest partition's record count divided
  by the mean record count of the topic's partitions (records = leader HW − log
  start offset). ``1.0`` is a perfectly even spread; a topic of N partitions
  with everything in one partition scores N. ``None`` while the topic is empty.
* ``under_replicated_partitions`` — partitions whose ISR is smaller than their
  replica set; ``offline_partitions`` — partitions with no leader (−1).
* ``isr_shrinks`` / ``isr_expands`` — cumulative counts of ``IsrShrunk`` /
  ``IsrExpanded`` events since the sampler was attached.
* ``group_lag_records`` — per consumer group (key: group id) and per group and
  partition (key ``"group/topic-p"``): high watermark − the group's committed
  offset. This is the lag Kafka's tools report for a group: what would be
  re-read or still read if every member stopped now.

The alert — "lag growing while producers are healthy" — is evaluated per
consumer at every sample. It **fires** when all of these hold:

1. the consumer has at least :data:`ALERT_WINDOW_SAMPLES` samples of total lag
   (W = 10 samples, i.e. the last 10 s at the default interval);
2. its total lag now is at least :data:`ALERT_MIN_LAG_RECORDS` (50) records;
3. its total lag is growing: the least-squares slope over the last W samples is
   greater than :data:`ALERT_MIN_TREND_RECORDS_PER_S` (1.0 record/s) *and* the
   lag now is larger than W samples ago;
4. producers are healthy over the same W samples: at least one producer exists,
   together they had records acknowledged in *every* one of those sample
   intervals (acked rate > 0 throughout — a stall of one interval is not
   healthy), and no producer's ``failed`` count rose.

Once active, the alert **clears** when the rule no longer holds (the lag stops
growing, falls under the minimum, or producers stop being healthy — the alert
is about the consumer side only while the producer side is fine).

When it starts, one ``LagAlert`` event says, in one sentence, which partitions
carry the lag and the diagnosis: **hot partition** when one partition holds at
least :data:`HOT_LAG_SHARE` (50 %) of the consumer's lag *and* records arrive
there at least :data:`HOT_RATE_RATIO` (2×) as fast as the mean partition of its
topic over the window — the key spread is the problem, not the consumer;
otherwise **slow consumer** — the lag sits on partitions with ordinary traffic
(typically spread over all of its partitions): the consumer reads too slowly.
``LagAlertCleared`` says when it stops. :meth:`Metrics.alerts` lists the active ones.

Every series is a ``deque`` with ``maxlen = window_ms // interval_ms`` (at most
:data:`MAX_SERIES_POINTS`), and the number of series is capped at
:data:`MAX_SERIES` (a series past the cap is not created, counted in
``series_dropped`` and reported once with a ``MetricsSeriesDropped`` event).
Everything is iterated in sorted order, so the same run gives the same numbers.

Differences from Kafka: Kafka exposes these as JMX metrics of brokers and
clients (``records-lag-max``, ``UnderReplicatedPartitions``, ``OfflinePartitionsCount``,
``IsrShrinksPerSec`` …) and leaves alerting to an external system (Burrow,
Prometheus rules); here one sampler reads the simulated cluster directly and
the alert is built in. Lag in seconds is estimated from consume rates, not from
record timestamps. Producer health is judged over all producers, not per topic.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from core_log.errors import ConfigError, require_int
from core_log.events import Event
from core_log.messages import TopicPartition

if TYPE_CHECKING:
    from core_log.cluster import Cluster

DEFAULT_INTERVAL_MS = 1000
DEFAULT_WINDOW_MS = 600_000  # the last 10 simulated minutes
MAX_INTERVAL_MS = 60_000
MAX_SERIES_POINTS = 3600  # points kept per series (window_ms // interval_ms may not exceed it)
MAX_SERIES = 5000  # distinct (name, key) series per sampler
RATE_SAMPLES = 5  # samples averaged for the "recent" consume/produce rate of a partition
TREND_SAMPLES = 10  # samples in the least-squares lag trend
ALERT_WINDOW_SAMPLES = 10  # W: samples the alert looks back over
ALERT_MIN_LAG_RECORDS = 50  # below this total lag a consumer is not "behind" enough to alert
ALERT_MIN_TREND_RECORDS_PER_S = 1.0  # lag must grow faster than this
HOT_LAG_SHARE = 0.5  # one partition holding at least this share of a consumer's lag …
HOT_RATE_RATIO = 2.0  # … and fed at least this many times its topic's mean partition rate: hot partition
MAX_NAMED_PARTITIONS = 5  # partitions named in an alert sentence before "and N more"

SERIES_NAMES = (
    "produce_records_per_s", "consume_records_per_s", "partition_produce_records_per_s",
    "lag_records", "lag_s", "lag_trend_records_per_s", "time_to_drain_s", "disk_bytes",
    "partition_skew", "under_replicated_partitions", "offline_partitions", "isr_shrinks", "isr_expands",
    "group_lag_records",
)


def slope_per_s(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of ``(time_ms, value)`` points, in value units per second."""
    if len(points) < 2:
        return None
    xs = [t / 1000 for t, _ in points]
    ys = [float(v) for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var


def _is_producer(client: Any) -> bool:
    stats = getattr(client, "stats", None)
    return isinstance(stats, dict) and "acked" in stats


def _is_consumer(client: Any) -> bool:
    return isinstance(getattr(client, "positions", None), dict) and hasattr(client, "records_consumed")


class Metrics:
    """Samples ``cluster`` every ``interval_ms`` of simulated time. See the module docstring."""

    def __init__(self, cluster: "Cluster", interval_ms: int = DEFAULT_INTERVAL_MS,
                 window_ms: int = DEFAULT_WINDOW_MS) -> None:
        require_int("interval_ms", interval_ms, 1, MAX_INTERVAL_MS)
        require_int("window_ms", window_ms, interval_ms, interval_ms * MAX_SERIES_POINTS)
        if window_ms % interval_ms:
            raise ConfigError(f"window_ms ({window_ms}) must be a whole number of intervals ({interval_ms} ms)")
        self.cluster = cluster
        self.interval_ms = interval_ms
        self.window_ms = window_ms
        self.points_per_series = window_ms // interval_ms
        self._series: dict[tuple[str, str | None], deque[tuple[int, Any]]] = {}
        self.series_dropped = 0
        self.isr_shrinks = 0
        self.isr_expands = 0
        self._latest: dict[str, Any] = {}
        self._alerts: dict[str, dict[str, Any]] = {}
        self._last_time_ms = cluster.now_ms()
        # counters at the previous sample, to turn totals into rates
        self._acked: dict[str, int] = {}
        self._consumed: dict[str, int] = {}
        self._positions: dict[tuple[str, TopicPartition], int] = {}
        self._hws: dict[TopicPartition, int] = {}
        self._log_starts: dict[TopicPartition, int] = {}
        # per-sample producer health for the alert window: (total acked, {client: failed})
        self._health: deque[tuple[int, dict[str, int]]] = deque(maxlen=ALERT_WINDOW_SAMPLES + 1)
        self._read_counters()
        cluster.events.subscribe(self._on_event)
        cluster.schedule(interval_ms, self._tick)

    # ── public API ───────────────────────────────────────────────────────────
    def latest(self) -> dict[str, Any]:
        """The most recent value of every metric, as JSON-ready data (keys are text, sorted)."""
        return {name: (dict(value) if isinstance(value, dict) else value) for name, value in self._latest.items()}

    def series(self, name: str, key: str | None = None) -> list[tuple[int, Any]]:
        """The kept points ``[(time_ms, value)]`` of one series, oldest first (``[]`` if none yet)."""
        if name not in SERIES_NAMES:
            raise ValueError(f"unknown series {name!r}; known: {', '.join(SERIES_NAMES)}")
        return list(self._series.get((name, key), ()))

    def series_keys(self, name: str) -> list[str | None]:
        """The keys one series name is kept under (``None`` for a cluster-wide total)."""
        return sorted((k for n, k in self._series if n == name), key=lambda k: (k is not None, k or ""))

    def alerts(self) -> list[dict[str, Any]]:
        """Active "lag growing while producers are healthy" alerts, one per consumer, sorted by consumer."""
        return [dict(self._alerts[c]) for c in sorted(self._alerts)]

    # ── sampling ─────────────────────────────────────────────────────────────
    def _on_event(self, event: Event) -> None:
        if event.kind == "IsrShrunk":
            self.isr_shrinks += 1
        elif event.kind == "IsrExpanded":
            self.isr_expands += 1

    def _record(self, name: str, key: str | None, time_ms: int, value: Any) -> None:
        series = self._series.get((name, key))
        if series is None:
            if len(self._series) >= MAX_SERIES:
                self.series_dropped += 1
                if self.series_dropped == 1:
                    self.cluster.events.emit(
                        time_ms, "MetricsSeriesDropped",
                        f"Metrics keeps at most {MAX_SERIES} series; {name} for {key} and any later new "
                        f"series are not recorded.", limit=MAX_SERIES)
                return
            series = self._series[(name, key)] = deque(maxlen=self.points_per_series)
        series.append((time_ms, value))

    def _producers(self) -> list[tuple[str, Any]]:
        return [(cid, c) for cid, c in sorted(self.cluster.clients.items()) if _is_producer(c)]

    def _consumers(self) -> list[tuple[str, Any]]:
        return [(cid, c) for cid, c in sorted(self.cluster.clients.items()) if _is_consumer(c)]

    def _leader_view(self, tp: TopicPartition) -> tuple[int, int] | None:
        """(high watermark, log start offset) from the partition's live leader, or None."""
        update = self.cluster.controller.partitions.get(tp)
        if update is None or update.leader < 0:
            return None
        broker = self.cluster.brokers.get(update.leader)
        if broker is None or not broker.alive:
            return None
        replica = self.cluster.replica(update.leader, tp)
        if replica is None:
            return None
        return replica.high_watermark, replica.log.log_start_offset

    def _read_counters(self) -> None:
        for cid, p in self._producers():
            self._acked[cid] = p.stats["acked"]
        for cid, c in self._consumers():
            self._consumed[cid] = c.records_consumed
        for tp in self.cluster.partitions():
            view = self._leader_view(tp)
            if view is not None:
                self._hws[tp], self._log_starts[tp] = view
        self._health.append((sum(self._acked.values()), {cid: p.stats["failed"] for cid, p in self._producers()}))

    def _tick(self) -> None:
        self.sample()
        self.cluster.schedule(self.interval_ms, self._tick)

    def _recent_rate(self, name: str, key: str) -> float | None:
        points = list(self._series.get((name, key), ()))[-RATE_SAMPLES:]
        values = [v for _, v in points if v is not None]
        return sum(values) / len(values) if values else None

    def _client_rates(self, name: str, clients: Any, count: Callable[[Any], int], previous: dict[str, int],
                      now: int, elapsed_s: float) -> dict[str, float]:
        """Per-client records/s since the last sample from a cumulative counter; records each and the total."""
        rates: dict[str, float] = {}
        for cid, client in clients:
            total = count(client)
            rates[cid] = max(0, total - previous.get(cid, 0)) / elapsed_s
            previous[cid] = total
            self._record(name, cid, now, rates[cid])
        self._record(name, None, now, sum(rates.values()))
        return rates

    def sample(self) -> None:
        """Take one sample now (the sampler calls this every ``interval_ms``)."""
        now = self.cluster.now_ms()
        elapsed_s = max(now - self._last_time_ms, 1) / 1000
        self._last_time_ms = now
        latest: dict[str, Any] = {"time_ms": now}

        # produce and consume rates
        produce = self._client_rates("produce_records_per_s", self._producers(), lambda p: p.stats["acked"],
                                     self._acked, now, elapsed_s)
        latest["produce_records_per_s"] = sum(produce.values())
        consume = self._client_rates("consume_records_per_s", self._consumers(), lambda c: c.records_consumed,
                                     self._consumed, now, elapsed_s)
        latest["consume_records_per_s"] = sum(consume.values())
        latest["produce_records_per_s_by_client"] = dict(sorted(produce.items()))
        latest["consume_records_per_s_by_client"] = dict(sorted(consume.items()))

        # partitions: rates, replication state, skew
        partition_rate: dict[str, float] = {}
        under, offline = 0, 0
        records_by_topic: dict[str, list[int]] = {}
        for tp in self.cluster.partitions():
            update = self.cluster.controller.partitions[tp]
            if update.leader < 0:
                offline += 1
            if len(update.isr) < len(update.replicas):
                under += 1
            view = self._leader_view(tp)
            if view is not None:
                hw, log_start = view
                rate = max(0, hw - self._hws.get(tp, hw)) / elapsed_s
                self._hws[tp], self._log_starts[tp] = hw, log_start
            else:
                rate = 0.0  # nothing becomes readable on a partition without a leader
            partition_rate[str(tp)] = rate
            self._record("partition_produce_records_per_s", str(tp), now, rate)
            if tp in self._hws:
                records_by_topic.setdefault(tp.topic, []).append(self._hws[tp] - self._log_starts[tp])
        skew: dict[str, float | None] = {}
        for topic in sorted(self.cluster.topics):
            counts = records_by_topic.get(topic, [])
            total = sum(counts)
            mean = total / self.cluster.topics[topic].partitions
            skew[topic] = None if total == 0 else max(counts) / mean
            self._record("partition_skew", topic, now, skew[topic])
        self._record("under_replicated_partitions", None, now, under)
        self._record("offline_partitions", None, now, offline)
        self._record("isr_shrinks", None, now, self.isr_shrinks)
        self._record("isr_expands", None, now, self.isr_expands)
        latest.update(partition_produce_records_per_s=partition_rate, partition_skew=skew,
                      under_replicated_partitions=under, offline_partitions=offline,
                      isr_shrinks=self.isr_shrinks, isr_expands=self.isr_expands)

        # disks
        disk: dict[str, int | None] = {}
        for broker_id in sorted(self.cluster.brokers):
            broker = self.cluster.brokers[broker_id]
            disk[str(broker_id)] = (sum(r.log.size_bytes for _, r in sorted(broker.replicas.items()))
                                    if broker.alive else None)
            self._record("disk_bytes", str(broker_id), now, disk[str(broker_id)])
        latest["disk_bytes"] = disk

        # lag
        lag_view: dict[str, dict[str, Any]] = {}
        for cid, c in self._consumers():
            per_partition: dict[str, dict[str, Any]] = {}
            total_lag = 0
            for tp in sorted(c.positions):
                position = c.positions[tp]
                hw = self._hws.get(tp, c.high_watermarks.get(tp))
                if position is None and c.config.auto_offset_reset == "earliest":
                    position = self._log_starts.get(tp, 0)
                key = f"{cid}/{tp}"
                consumed_rate = None
                if position is not None:
                    before = self._positions.get((cid, tp), position)
                    consumed_rate = max(0, position - before) / elapsed_s
                    self._positions[(cid, tp)] = position
                lag = None if position is None or hw is None else max(0, hw - position)
                self._record("lag_records", key, now, lag)
                if consumed_rate is not None:
                    self._record("consume_records_per_s", key, now, consumed_rate)
                recent_consume = self._recent_rate("consume_records_per_s", key)
                recent_produce = self._recent_rate("partition_produce_records_per_s", str(tp)) or 0.0
                lag_s = drain_s = None
                if lag == 0:
                    lag_s = drain_s = 0.0
                elif lag is not None and recent_consume:
                    lag_s = lag / recent_consume
                    if recent_consume - recent_produce > 0:
                        drain_s = lag / (recent_consume - recent_produce)
                trend = slope_per_s([(t, v) for t, v in list(self._series[("lag_records", key)])[-TREND_SAMPLES:]
                                     if v is not None]) if ("lag_records", key) in self._series else None
                self._record("lag_s", key, now, lag_s)
                self._record("time_to_drain_s", key, now, drain_s)
                self._record("lag_trend_records_per_s", key, now, trend)
                per_partition[str(tp)] = {"lag_records": lag, "lag_s": lag_s, "lag_trend_records_per_s": trend,
                                          "time_to_drain_s": drain_s}
                total_lag += lag or 0
            self._record("lag_records", cid, now, total_lag)
            total_trend = slope_per_s(list(self._series[("lag_records", cid)])[-TREND_SAMPLES:]) \
                if ("lag_records", cid) in self._series else None
            self._record("lag_trend_records_per_s", cid, now, total_trend)
            lag_view[cid] = {"lag_records": total_lag, "lag_trend_records_per_s": total_trend,
                             "partitions": per_partition}
        latest["lag"] = lag_view
        latest["group_lag"] = self._group_lag(now)

        self._health.append((sum(self._acked.values()), {cid: p.stats["failed"] for cid, p in self._producers()}))
        self._evaluate_alerts(now, lag_view, partition_rate)
        latest["alerts"] = self.alerts()
        self._latest = latest

    def _group_lag(self, now: int) -> dict[str, Any]:
        """Per consumer group: leader HW − committed offset, per partition and summed (committed progress)."""
        out: dict[str, Any] = {}
        for group in self.cluster.describe_groups():
            gid = group["group_id"]
            total, partitions = 0, {}
            for name, committed in sorted(group["committed"].items()):
                topic, _, number = name.rpartition("-")
                hw = self._hws.get(TopicPartition(topic, int(number)))
                lag = None if hw is None else max(0, hw - committed)
                partitions[name] = lag
                self._record("group_lag_records", f"{gid}/{name}", now, lag)
                total += lag or 0
            self._record("group_lag_records", gid, now, total)
            out[gid] = {"state": group["state"], "lag_records": total, "partitions": partitions}
        return out

    # ── the alert ────────────────────────────────────────────────────────────
    def producers_healthy(self) -> bool:
        """Rule part 4: records were acked in every interval of the alert window and no producer's failures grew."""
        if len(self._health) < self._health.maxlen or not self._producers():  # type: ignore[operator]
            return False
        samples = list(self._health)
        if any(later[0] <= earlier[0] for earlier, later in zip(samples, samples[1:])):
            return False
        failed_then, failed_now = samples[0][1], samples[-1][1]
        return all(failed <= failed_then.get(cid, 0) for cid, failed in failed_now.items())

    def _evaluate_alerts(self, now: int, lag_view: dict[str, dict[str, Any]],
                         partition_rate: dict[str, float]) -> None:
        healthy = self.producers_healthy()
        for cid in sorted(set(lag_view) | set(self._alerts)):
            view = lag_view.get(cid)
            points = list(self._series.get(("lag_records", cid), ()))[-ALERT_WINDOW_SAMPLES:]
            firing = False
            trend = None
            if view is not None and len(points) >= ALERT_WINDOW_SAMPLES:
                trend = slope_per_s(points)
                firing = (healthy and view["lag_records"] >= ALERT_MIN_LAG_RECORDS
                          and trend is not None and trend > ALERT_MIN_TREND_RECORDS_PER_S
                          and points[-1][1] > points[0][1])
            if firing and cid not in self._alerts:
                self._start_alert(now, cid, view, points, trend or 0.0)  # type: ignore[arg-type]
            elif not firing and cid in self._alerts:
                alert = self._alerts.pop(cid)
                why = ("producers are no longer healthy" if not healthy else
                       "its lag is no longer growing" if view is not None else "it is gone")
                lag = view["lag_records"] if view is not None else 0
                self.cluster.events.emit(
                    now, "LagAlertCleared",
                    f"Lag alert on consumer {cid} cleared after {(now - alert['since_ms']) / 1000:g} s: "
                    f"{why} (lag now {lag} records).",
                    consumer=cid, lag_records=lag)

    def _diagnose(self, view: dict[str, Any]) -> tuple[str, list[tuple[str, int]], float]:
        """(diagnosis, [(partition, lag)] largest first, share of the largest)."""
        lags = sorted(((tp, info["lag_records"]) for tp, info in view["partitions"].items()
                       if info["lag_records"]), key=lambda item: (-item[1], item[0]))
        total = sum(lag for _, lag in lags) or 1
        top_tp, top_lag = lags[0] if lags else ("", 0)
        share = top_lag / total
        diagnosis = "slow_consumer"
        if lags and share >= HOT_LAG_SHARE and self._rate_ratio(top_tp) >= HOT_RATE_RATIO:
            diagnosis = "hot_partition"
        return diagnosis, lags, share

    def _rate_ratio(self, partition: str) -> float:
        """How many times the topic's mean partition rate ``partition`` received over the alert window."""
        topic = partition.rsplit("-", 1)[0]
        rates = {key: self._window_mean(("partition_produce_records_per_s", key))
                 for name, key in sorted(self._series, key=lambda k: (k[0], str(k[1])))
                 if name == "partition_produce_records_per_s" and key is not None and key.rsplit("-", 1)[0] == topic}
        mean = sum(rates.values()) / len(rates) if rates else 0.0
        return 0.0 if len(rates) < 2 or mean <= 0 else rates.get(partition, 0.0) / mean

    def _window_mean(self, key: tuple[str, str | None]) -> float:
        values = [v for _, v in list(self._series.get(key, ()))[-ALERT_WINDOW_SAMPLES:] if v is not None]
        return sum(values) / len(values) if values else 0.0

    def _start_alert(self, now: int, cid: str, view: dict[str, Any], points: list[tuple[int, Any]],
                     trend: float) -> None:
        diagnosis, lags, share = self._diagnose(view)
        named = ", ".join(f"{tp} ({lag})" for tp, lag in lags[:MAX_NAMED_PARTITIONS])
        if len(lags) > MAX_NAMED_PARTITIONS:
            named += f" and {len(lags) - MAX_NAMED_PARTITIONS} more"
        window_s = (points[-1][0] - points[0][0]) / 1000
        acked_rate = (self._health[-1][0] - self._health[0][0]) / max(
            (len(self._health) - 1) * self.interval_ms / 1000, 1e-9)
        if diagnosis == "hot_partition":
            where = (f"{share:.0%} of it is on {lags[0][0]} ({lags[0][1]} records), which receives "
                     f"{self._rate_ratio(lags[0][0]):.1f}× the mean partition rate of its topic, so this looks like "
                     f"a hot partition (uneven keys) rather than a slow consumer")
        else:
            where = (f"it is spread over {len(lags)} of its {len(view['partitions'])} partition(s) — {named} — "
                     f"so this looks like a slow consumer rather than a hot partition")
        text = (f"Lag growing while producers are healthy: consumer {cid}'s lag rose from {points[0][1]} to "
                f"{points[-1][1]} records in {window_s:g} s ({trend:+.1f} records/s) while producers had "
                f"{acked_rate:.0f} records/s acknowledged and no failures; {where}.")
        alert = {"consumer": cid, "since_ms": now, "diagnosis": diagnosis, "lag_records": view["lag_records"],
                 "lag_trend_records_per_s": trend, "partitions": [tp for tp, _ in lags], "text": text}
        self._alerts[cid] = alert
        self.cluster.events.emit(now, "LagAlert", text, consumer=cid, diagnosis=diagnosis,
                                 lag_records=view["lag_records"], lag_trend_records_per_s=trend,
                                 partitions=[tp for tp, _ in lags])
