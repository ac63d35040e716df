"""Lab actors that generate traffic: the telemetry producer the guide keeps coming back to.

A factory sends machine telemetry to Kafka keyed by ``machine_id``, so every
reading of one machine lands in one partition, in order. :class:`TelemetryProducer`
drives a :class:`~core_log.producer.Producer` at a steady rate on simulated
time, with the key choices a lab needs:

* ``"machines"`` — keys ``machine-1`` … ``machine-N``, in turn (even spread by hash);
* ``"null"`` — no key: the sticky partitioner spreads batches;
* ``"hot"`` — one machine sends most of the traffic (``hot_share``), the classic
  hot-partition lesson ("lag growing while producers are healthy").

Rates change on the fly (``set_rate``) and :meth:`TelemetryProducer.burst` sends
a spike. Values are unique (``<client>-<n>``) so the checker can follow each one.

Differences from a real workload: sends happen at exact multiples of the send
interval in simulated time (no jitter), and values are small text, not encoded
telemetry.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from core_log.errors import require_int
from core_log.producer import Producer, ProducerConfig, SendFuture

if TYPE_CHECKING:
    from core_log.cluster import Cluster

KEY_MODES = ("machines", "null", "hot")
MAX_RATE_PER_S = 50_000
MAX_MACHINES = 100_000
MAX_BURST_RECORDS = 1_000_000
TICK_MS = 10  # sends are grouped per 10 ms tick: rate/100 records each tick (fractions carried over)


class TelemetryProducer:
    """Sends ``rate_per_s`` telemetry records to ``topic`` while running."""

    def __init__(self, cluster: "Cluster", client_id: str, topic: str, *, rate_per_s: int = 100,
                 keys: str = "machines", machines: int = 12, hot_share: float = 0.8,
                 config: ProducerConfig | None = None, seed: int | None = None) -> None:
        if topic not in cluster.topics:
            raise ValueError(f"unknown topic {topic!r}")
        if keys not in KEY_MODES:
            raise ValueError(f"keys must be one of {KEY_MODES}, got {keys!r}")
        require_int("machines", machines, 1, MAX_MACHINES)
        if not isinstance(hot_share, (int, float)) or isinstance(hot_share, bool) or not 0.0 <= hot_share <= 1.0:
            raise ValueError(f"hot_share must be in [0, 1], got {hot_share!r}")
        self.cluster = cluster
        self.topic = topic
        self.keys = keys
        self.machines = machines
        self.hot_share = float(hot_share)
        self.producer = Producer(cluster, client_id, config)
        self._rng = random.Random(cluster.rng.getrandbits(64) if seed is None else seed)
        self.rate_per_s = 0
        self.set_rate(rate_per_s)
        self.sent = 0
        self.running = False
        self._carry = 0.0
        self._next_machine = 0
        self._generation = 0

    @property
    def client_id(self) -> str:
        return self.producer.node_id

    def set_rate(self, rate_per_s: int) -> None:
        require_int("rate_per_s", rate_per_s, 0, MAX_RATE_PER_S)
        self.rate_per_s = rate_per_s

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._generation += 1
        generation = self._generation

        def tick() -> None:
            if not self.running or generation != self._generation:
                return
            self._carry += self.rate_per_s * TICK_MS / 1000
            count = int(self._carry)
            self._carry -= count
            for _ in range(count):
                self._send_one()
            self.cluster.schedule(TICK_MS, tick)

        self.cluster.schedule(TICK_MS, tick)  # each tick sends what the past TICK_MS accrued

    def stop(self) -> None:
        self.running = False

    def burst(self, records: int) -> list[SendFuture]:
        """Send ``records`` at once (a traffic spike), on top of the steady rate."""
        require_int("records", records, 1, MAX_BURST_RECORDS)
        return [self._send_one() for _ in range(records)]

    def next_key(self) -> bytes | None:
        if self.keys == "null":
            return None
        if self.keys == "hot" and self._rng.random() < self.hot_share:
            return b"machine-1"
        self._next_machine = self._next_machine % self.machines + 1
        return f"machine-{self._next_machine}".encode()

    def _send_one(self) -> SendFuture:
        self.sent += 1
        value = f"{self.client_id}-{self.sent}".encode()
        return self.producer.send(self.topic, self.next_key(), value)

    def describe(self) -> dict[str, object]:
        return {**self.producer.describe(), "topic": self.topic, "rate_per_s": self.rate_per_s,
                "keys": self.keys, "machines": self.machines, "running": self.running}
