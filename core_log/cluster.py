"""``Cluster``: brokers, a controller, a network and clients in one deterministic machine.

The cluster is a discrete-event simulation. Every timer, message delivery and
client action is an event in one queue ordered by simulated time (ties broken
by insertion order); :meth:`Cluster.advance` runs them in order. Nothing reads
the wall clock and all randomness comes from ``random.Random`` instances drawn
from the one seed, so ``Cluster(seed=N)`` plus the same commands is the same run
— which is what makes rewinds, forks and "reproduce with seed=N" possible.

Commands (create_topic, crash_broker, isolate, …) validate their input and
raise :class:`ClusterError` with a plain reason; the cluster keeps running.
Every state change is narrated in :attr:`Cluster.events`.

``strict=True`` checks the invariants after every event (tests use it):
HW ≤ LEO on every replica, ISR ⊆ replicas, one leader per (partition, epoch).
"""

from __future__ import annotations

import heapq
import os
import random
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from core_log.broker import Broker
from core_log.clock import SimClock
from core_log.controller import Controller
from core_log.errors import ConfigError, CoreLogError, require_int
from core_log.events import EventLog
from core_log.history import History, Op
from core_log.log import LogConfig
from core_log.messages import TopicPartition
from core_log.network import FaultPlan, Network
from core_log.offsets import OFFSETS_TOPIC
from core_log.storage import FileStorage, SimStorage, Storage

MAX_BROKERS = 9
MAX_PARTITIONS = 64
MAX_TOPICS = 100
MAX_TOPIC_NAME_CHARS = 249
MAX_QUEUED_EVENTS = 5_000_000
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")

#: Kafka topic config names → LogConfig fields.
_LOG_CONFIG_KEYS = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "segment.index.bytes": "segment_index_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "cleanup.policy": "cleanup_policy",
    "delete.retention.ms": "delete_retention_ms",
    "min.cleanable.dirty.ratio": "min_cleanable_dirty_ratio",
    "flush.messages": "flush_messages",
    "flush.ms": "flush_ms",
    "max.message.bytes": "max_batch_bytes",
}
_CLUSTER_TOPIC_KEYS = ("min.insync.replicas", "unclean.leader.election.enable")
TOPIC_CONFIG_KEYS = tuple(sorted(_LOG_CONFIG_KEYS)) + _CLUSTER_TOPIC_KEYS


class ClusterError(CoreLogError, ValueError):
    """A command the cluster refuses (bad name, out of range, unknown broker…); nothing changed."""

    kafka_name = "INVALID_REQUEST"


@dataclass(frozen=True)
class ClusterConfig:
    """Broker-wide settings, Kafka's names and defaults (units last)."""

    broker_heartbeat_interval_ms: int = 2000
    broker_session_timeout_ms: int = 9000
    replica_lag_time_max_ms: int = 30_000
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_max_bytes: int = 1024 * 1024
    replica_fetch_backoff_ms: int = 1000
    replica_socket_timeout_ms: int = 30_000
    controller_check_interval_ms: int = 500
    log_maintenance_interval_ms: int = 5000  # Kafka checks retention every 300 s; a lab wants it sooner
    # consumer groups (Kafka's broker settings; partition count small for a lab, Kafka's default is 50)
    offsets_topic_num_partitions: int = 3
    offsets_topic_replication_factor: int = 3  # capped at the number of brokers
    offsets_topic_segment_bytes: int = 1024 * 1024  # Kafka: 100 MiB; small so compaction shows in a lab
    offsets_commit_timeout_ms: int = 5000
    group_initial_rebalance_delay_ms: int = 3000
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1_800_000
    # transactions (Kafka's broker settings; partition count small for a lab, Kafka's default is 50)
    transaction_state_log_num_partitions: int = 3
    transaction_state_log_replication_factor: int = 3  # capped at the number of brokers
    transaction_state_log_min_isr: int = 2  # capped at the replication factor
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = 10_000

    def __post_init__(self) -> None:
        for f in fields(self):
            low = 0 if f.name == "group_initial_rebalance_delay_ms" else 1
            high = MAX_PARTITIONS if f.name.endswith("num_partitions") else 24 * 3600 * 1000
            require_int(f.name, getattr(self, f.name), low, high)
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms:
            raise ConfigError("group_min_session_timeout_ms must not exceed group_max_session_timeout_ms")


@dataclass
class Topic:
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int = 1
    unclean_leader_election: bool = False
    log_config: LogConfig = field(default_factory=LogConfig)
    configs: dict[str, Any] = field(default_factory=dict)


def _parse_topic_configs(configs: dict[str, Any], replication_factor: int) -> tuple[int, bool, LogConfig]:
    unknown = sorted(set(configs) - set(TOPIC_CONFIG_KEYS))
    if unknown:
        raise ClusterError(f"unknown topic config {unknown[0]!r}; known: {', '.join(TOPIC_CONFIG_KEYS)}")
    min_isr = configs.get("min.insync.replicas", 1)
    if not isinstance(min_isr, int) or isinstance(min_isr, bool) or not 1 <= min_isr <= replication_factor:
        raise ClusterError(f"min.insync.replicas must be a whole number in [1, replication factor "
                           f"{replication_factor}], got {min_isr!r}")
    unclean = configs.get("unclean.leader.election.enable", False)
    if not isinstance(unclean, bool):
        raise ClusterError(f"unclean.leader.election.enable must be true or false, got {unclean!r}")
    try:
        log_config = LogConfig(**{_LOG_CONFIG_KEYS[k]: v for k, v in configs.items() if k in _LOG_CONFIG_KEYS})
    except ConfigError as exc:
        raise ClusterError(str(exc)) from None
    return min_isr, unclean, log_config


class Cluster:
    """A whole Kafka-like cluster, advanced in simulated time. See the module docstring."""

    def __init__(
        self,
        *,
        brokers: int = 3,
        seed: int = 0,
        config: ClusterConfig | None = None,
        storage: str = "sim",
        data_dir: str | None = None,
        start_ms: int = 0,
        strict: bool = False,
    ) -> None:
        if not isinstance(brokers, int) or not 1 <= brokers <= MAX_BROKERS:
            raise ClusterError(f"a cluster has 1 to {MAX_BROKERS} brokers, got {brokers!r}")
        if storage not in ("sim", "file"):
            raise ClusterError(f"storage must be 'sim' or 'file', got {storage!r}")
        if storage == "file" and not data_dir:
            raise ClusterError("storage='file' needs a data_dir")
        self.seed = seed
        self.config = config or ClusterConfig()
        self.clock = SimClock(start_ms)
        self.rng = random.Random(seed)
        self.events = EventLog()
        self.history = History()
        self.strict = strict
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.network = Network(random.Random(self.rng.getrandbits(64)), self.schedule, self.clock.now_ms,
                               FaultPlan(), schedule_at=self.schedule_at)
        self.controller = Controller(self)
        self.network.register(self.controller)
        self.topics: dict[str, Topic] = {}
        self.brokers: dict[int, Broker] = {}
        self.clients: dict[str, Any] = {}
        self._epoch_leaders: dict[tuple[TopicPartition, int], int] = {}
        self._invariants_checked: dict[TopicPartition, Any] = {}  # PartitionUpdates check_invariants has seen
        for broker_id in range(1, brokers + 1):
            disk: Storage
            if storage == "sim":
                disk = SimStorage(random.Random(self.rng.getrandbits(64)))
                path = f"/broker-{broker_id}"
            else:
                disk = FileStorage(random.Random(self.rng.getrandbits(64)))
                path = os.path.join(str(data_dir), f"broker-{broker_id}")
            broker = Broker(self, broker_id, disk, path)
            self.brokers[broker_id] = broker
            self.network.register(broker)
            self.controller.register(broker_id)
            broker.start()
        self._every(self.config.controller_check_interval_ms, self.controller.check_liveness)
        self.events.emit(self.now_ms(), "ClusterStarted",
                         f"A cluster of {brokers} brokers started (seed {seed}); broker ids 1–{brokers}.",
                         brokers=brokers, seed=seed)

    # ── time ─────────────────────────────────────────────────────────────────
    def now_ms(self) -> int:
        return self.clock.now_ms()

    def schedule(self, delay_ms: int, action: Callable[[], None]) -> None:
        """Run ``action`` ``delay_ms`` from now (0: after everything already due now)."""
        if len(self._queue) >= MAX_QUEUED_EVENTS:
            raise ClusterError(f"more than {MAX_QUEUED_EVENTS} pending events; the simulation is runaway")
        self._seq += 1
        heapq.heappush(self._queue, (self.clock.now_ms() + max(0, delay_ms), self._seq, action))

    def schedule_at(self, when_ms: int, action: Callable[[], None]) -> None:
        """Run ``action`` at ``when_ms`` (not before now); the same queue and order as :meth:`schedule`."""
        if len(self._queue) >= MAX_QUEUED_EVENTS:
            raise ClusterError(f"more than {MAX_QUEUED_EVENTS} pending events; the simulation is runaway")
        self._seq += 1
        now = self.clock.now_ms()
        heapq.heappush(self._queue, (when_ms if when_ms > now else now, self._seq, action))

    def _every(self, interval_ms: int, action: Callable[[], None]) -> None:
        def tick() -> None:
            action()
            self.schedule(interval_ms, tick)

        self.schedule(interval_ms, tick)

    def advance(self, to_ms: int) -> int:
        """Run every event due up to ``to_ms``; return how many ran."""
        if to_ms < self.now_ms():
            raise ClusterError(f"cannot go back in time ({to_ms} < {self.now_ms()})")
        ran = 0
        queue, pop, clock = self._queue, heapq.heappop, self.clock
        while queue and queue[0][0] <= to_ms:
            when, _, action = pop(queue)
            if when != clock.now_ms():
                clock.advance_to(when)
            action()
            ran += 1
            if self.strict:
                self.check_invariants()
        clock.advance_to(to_ms)
        return ran

    def next_event_ms(self) -> int | None:
        """When the next queued event is due (None if nothing is queued): a "step" runs to it."""
        return self._queue[0][0] if self._queue else None

    def run_for(self, duration_ms: int) -> int:
        return self.advance(self.now_ms() + duration_ms)

    def run_until(self, predicate: Callable[[], bool], timeout_ms: int, step_ms: int = 10) -> bool:
        """Advance in steps until ``predicate()`` holds or ``timeout_ms`` passes."""
        deadline = self.now_ms() + timeout_ms
        while not predicate():
            if self.now_ms() >= deadline:
                return False
            self.advance(min(deadline, self.now_ms() + step_ms))
        return True

    def send(self, src: Any, dst_id: str, message: object) -> None:
        self.network.send(src, dst_id, message)

    # ── topics ───────────────────────────────────────────────────────────────
    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1,
                     configs: dict[str, Any] | None = None) -> Topic:
        """Create a topic; ``configs`` uses Kafka's topic config names (``min.insync.replicas`` …)."""
        if not isinstance(name, str) or not _TOPIC_NAME.match(name) or len(name) > MAX_TOPIC_NAME_CHARS \
                or name in (".", ".."):
            raise ClusterError(f"topic name {name!r} must be 1–{MAX_TOPIC_NAME_CHARS} of a-z A-Z 0-9 . _ -")
        if name.startswith("__"):
            raise ClusterError(f"topic names starting with '__' are reserved for internal topics, got {name!r}")
        return self._create_topic(name, partitions, replication_factor, configs)

    def _create_topic(self, name: str, partitions: int, replication_factor: int,
                      configs: dict[str, Any] | None, internal: bool = False) -> Topic:
        if name in self.topics:
            raise ClusterError(f"topic {name!r} already exists")
        if len(self.topics) >= MAX_TOPICS:
            raise ClusterError(f"a cluster holds at most {MAX_TOPICS} topics")
        if not isinstance(partitions, int) or isinstance(partitions, bool) or not 1 <= partitions <= MAX_PARTITIONS:
            raise ClusterError(f"partitions must be 1 to {MAX_PARTITIONS}, got {partitions!r}")
        if not isinstance(replication_factor, int) or isinstance(replication_factor, bool) \
                or not 1 <= replication_factor <= len(self.brokers):
            raise ClusterError(f"replication factor must be 1 to the number of brokers ({len(self.brokers)}), "
                               f"got {replication_factor!r}")
        configs = dict(configs or {})
        min_isr, unclean, log_config = _parse_topic_configs(configs, replication_factor)
        topic = Topic(name, partitions, replication_factor, min_isr, unclean, log_config, configs)
        self.topics[name] = topic
        self.controller.create_partitions(name, partitions, replication_factor, unclean)
        why = ""
        if internal:
            why = (" (internal: it stores consumer groups' committed offsets)" if name == OFFSETS_TOPIC
                   else " (internal: it stores the state of every transaction)")
        self.events.emit(self.now_ms(), "TopicCreated",
                         f"Topic {name} created{why}: {partitions} partition(s), replication factor "
                         f"{replication_factor}, min.insync.replicas={min_isr}.",
                         topic=name, partitions=partitions, replication_factor=replication_factor)
        return topic

    def add_partitions(self, name: str, total: int) -> Topic:
        """Grow a topic to ``total`` partitions (Kafka's CreatePartitions); partitions never shrink."""
        topic = self.topics.get(name)
        if topic is None or name.startswith("__"):
            raise ClusterError(f"no topic {name!r}")
        if not isinstance(total, int) or isinstance(total, bool) or not topic.partitions < total <= MAX_PARTITIONS:
            raise ClusterError(f"{name} has {topic.partitions} partitions; the new count must be more, up to "
                               f"{MAX_PARTITIONS} (partitions can be added, never removed)")
        added = total - topic.partitions
        self.controller.create_partitions(name, added, topic.replication_factor, topic.unclean_leader_election,
                                          start=topic.partitions)
        topic.partitions = total
        self.events.emit(self.now_ms(), "PartitionsAdded",
                         f"Topic {name} now has {total} partitions ({added} new). Keys hash over the new count, "
                         f"so some keys now go to a different partition: per-key order holds only from here on.",
                         topic=name, partitions=total)
        return topic

    def alter_topic_config(self, name: str, changes: dict[str, Any]) -> Topic:
        """Change topic configs in place (Kafka's IncrementalAlterConfigs); every replica uses them at once."""
        topic = self.topics.get(name)
        if topic is None or name.startswith("__"):
            raise ClusterError(f"no topic {name!r}")
        merged = {**topic.configs, **changes}
        min_isr, unclean, log_config = _parse_topic_configs(merged, topic.replication_factor)
        topic.configs, topic.min_insync_replicas, topic.unclean_leader_election = merged, min_isr, unclean
        topic.log_config = log_config
        self.controller.unclean_election[name] = unclean
        for broker in self.brokers.values():
            for tp, replica in broker.replicas.items():
                if tp.topic == name:
                    replica.log.config = log_config
        told = ", ".join(f"{k}={v}" for k, v in sorted(changes.items()))
        self.events.emit(self.now_ms(), "TopicConfigChanged",
                         f"Topic {name}: {told}. Brokers apply it at once (retention at their next check).",
                         topic=name, changes=dict(changes))
        return topic

    def ensure_offsets_topic(self) -> Topic:
        """Create ``__consumer_offsets`` if it does not exist yet (Kafka does so on first use)."""
        existing = self.topics.get(OFFSETS_TOPIC)
        if existing is not None:
            return existing
        rf = min(self.config.offsets_topic_replication_factor, len(self.brokers))
        return self._create_topic(OFFSETS_TOPIC, self.config.offsets_topic_num_partitions, rf, {
            "cleanup.policy": "compact", "segment.bytes": self.config.offsets_topic_segment_bytes,
            "min.insync.replicas": 1}, internal=True)

    def ensure_transaction_state_topic(self) -> Topic:
        """Create ``__transaction_state`` if it does not exist yet (Kafka does so on first use)."""
        from core_log.txn import TRANSACTION_STATE_TOPIC

        existing = self.topics.get(TRANSACTION_STATE_TOPIC)
        if existing is not None:
            return existing
        rf = min(self.config.transaction_state_log_replication_factor, len(self.brokers))
        return self._create_topic(TRANSACTION_STATE_TOPIC, self.config.transaction_state_log_num_partitions, rf, {
            "cleanup.policy": "compact", "segment.bytes": self.config.offsets_topic_segment_bytes,
            "min.insync.replicas": min(self.config.transaction_state_log_min_isr, rf)}, internal=True)

    def delete_topic(self, name: str) -> None:
        """Delete a topic: its partitions disappear and every broker removes the replicas' files."""
        if name not in self.topics:
            raise ClusterError(f"no topic {name!r}")
        if name.startswith("__"):
            raise ClusterError(f"{name} is internal: the cluster's groups or transactions live in it")
        del self.topics[name]
        self.controller.delete_topic(name)
        self.events.emit(self.now_ms(), "TopicDeleted",
                         f"Topic {name} deleted: brokers drop its replicas and their segment files.", topic=name)

    # ── faults ───────────────────────────────────────────────────────────────
    def broker(self, broker_id: int) -> Broker:
        if broker_id not in self.brokers:
            raise ClusterError(f"no broker {broker_id!r}; brokers are {sorted(self.brokers)}")
        return self.brokers[broker_id]

    def crash_broker(self, broker_id: int, mode: str = "kill") -> None:
        """Crash a broker: ``kill`` (process), ``power_loss`` or ``power_loss_torn`` (machine)."""
        broker = self.broker(broker_id)
        if not broker.alive:
            raise ClusterError(f"broker {broker_id} is already down")
        try:
            broker.crash(mode)
        except ValueError as exc:
            raise ClusterError(str(exc)) from None
        if mode == "kill":
            self.network.reset_connections(broker.node_id)  # the host is up: clients' connections get a reset
        what = {"kill": "was killed (its unsynced writes survive in the OS page cache)",
                "power_loss": "lost power (writes not yet fsynced are gone)",
                "power_loss_torn": "lost power mid-write (unsynced writes are gone or torn)"}[mode]
        self.events.emit(self.now_ms(), "BrokerCrashed",
                         f"Broker {broker_id} {what}; the controller will notice when heartbeats stop.",
                         broker=broker_id, mode=mode)

    def restart_broker(self, broker_id: int) -> None:
        broker = self.broker(broker_id)
        if broker.alive:
            raise ClusterError(f"broker {broker_id} is already running")
        self.events.emit(self.now_ms(), "BrokerRestarted",
                         f"Broker {broker_id} restarts: it recovers its logs from disk, then follows the leaders.",
                         broker=broker_id)
        broker.start()

    def _node_id(self, node: str | int) -> str:
        node_id = f"broker-{node}" if isinstance(node, int) else node
        if node_id not in self.network.nodes:
            raise ClusterError(f"no node {node!r}")
        return node_id

    def isolate(self, node: str | int, peers: list[str | int] | None = None) -> None:
        """Cut a node off from ``peers`` (default: everyone)."""
        node_id = self._node_id(node)
        peer_ids = None if peers is None else frozenset(self._node_id(p) for p in peers)
        self.network.plan.isolate(node_id, peer_ids)
        who = "every other node" if peer_ids is None else ", ".join(sorted(peer_ids))
        self.events.emit(self.now_ms(), "NodeIsolated", f"{node_id} is cut off from {who}.", node=node_id)

    def heal(self, node: str | int | None = None) -> None:
        node_id = None if node is None else self._node_id(node)
        self.network.plan.heal(node_id)
        self.events.emit(self.now_ms(), "NetworkHealed",
                         "The network is whole again." if node_id is None else f"{node_id} can talk to everyone again.")

    def set_link(self, a: str | int, b: str | int, *, latency_ms: int | None = None,
                 loss_probability: float | None = None, both_ways: bool = True) -> None:
        """Set latency and/or loss on the link a → b (and b → a unless ``both_ways`` is False)."""
        try:
            self.network.plan.set_link(self._node_id(a), self._node_id(b), latency_ms=latency_ms,
                                       loss_probability=loss_probability, both_ways=both_ways)
        except ValueError as exc:
            raise ClusterError(str(exc)) from None

    # ── clients ──────────────────────────────────────────────────────────────
    def register_client(self, client: Any) -> None:
        if client.node_id in self.network.nodes:
            raise ClusterError(f"a node named {client.node_id!r} already exists")
        self.clients[client.node_id] = client
        self.network.register(client)

    def unregister_client(self, node_id: str) -> None:
        """Forget a client node that is gone for good (a real client's closed connection); messages to it drop."""
        self.clients.pop(node_id, None)
        self.network.nodes.pop(node_id, None)

    def attach_checker(self, checker: Any, interval_ms: int = 250) -> None:
        """Feed every history op to ``checker`` and narrate new anomalies as ``AnomalyDetected`` events.

        The verdict is taken every ``interval_ms`` of simulated time (not after every op),
        so a burst of one anomaly is one event that says how many instances appeared.
        """
        self.checker = checker
        self.history.subscribe(checker.observe, replay=True)
        reported: dict[str, int] = {}

        def report() -> None:
            verdict = checker.verdict()
            for name in sorted(verdict.counts):
                count = verdict.counts[name]
                if count > reported.get(name, 0):
                    newest = verdict.anomalies[name][-1]
                    more = count - reported.get(name, 0)
                    self.events.emit(self.now_ms(), "AnomalyDetected",
                                     f"Checker: {name} ({more} new, {count} in all). {newest.explanation} "
                                     f"Likely cause: {newest.likely_cause}",
                                     anomaly=name, count=count, partition=newest.partition,
                                     offsets=list(newest.offsets), values=list(newest.values))
                    reported[name] = count

        self._every(interval_ms, report)

    def history_invoke(self, process: str, f: str, value: Any) -> Op:
        return self.history.invoke(process, f, value, self.now_ms())

    def history_complete(self, op: Op, type_: str, value: Any) -> Op:
        return self.history.complete(op, type_, value, self.now_ms())

    # ── inspection ───────────────────────────────────────────────────────────
    def leader_of(self, tp: TopicPartition) -> int:
        return self.controller.partitions[tp].leader

    def partitions(self) -> list[TopicPartition]:
        return sorted(self.controller.partitions)

    def replica(self, broker_id: int, tp: TopicPartition):  # type: ignore[no-untyped-def]
        return self.brokers[broker_id].replicas.get(tp)

    def snapshot(self) -> dict[str, Any]:
        """The whole cluster's visible state as plain JSON data (what the live view draws)."""
        fenced = {b for b, r in self.controller.brokers.items() if r.fenced}
        partitions = []
        for tp in self.partitions():
            update = self.controller.partitions[tp]
            replicas = {}
            for b in update.replicas:
                replica = self.replica(b, tp) if self.brokers[b].alive else None
                replicas[str(b)] = None if replica is None else {
                    "log_start_offset": replica.log.log_start_offset,
                    "high_watermark": replica.high_watermark,
                    "log_end_offset": replica.log_end_offset,
                    "size_bytes": replica.log.size_bytes,
                    "leader_epoch": replica.leader_epoch,
                }
            partitions.append({
                "topic": tp.topic, "partition": tp.partition, "leader": update.leader,
                "leader_epoch": update.leader_epoch, "isr": list(update.isr), "replicas": list(update.replicas),
                "replica_state": replicas,
            })
        return {
            "time_ms": self.now_ms(),
            "seed": self.seed,
            "brokers": [{"id": b.broker_id, "alive": b.alive, "fenced": b.broker_id in fenced,
                         "crashes": b.crash_count, "disk_bytes": b.describe()["disk_bytes"]}
                        for b in self.brokers.values()],
            "topics": [{"name": t.name, "partitions": t.partitions, "replication_factor": t.replication_factor,
                        "configs": dict(t.configs)} for t in sorted(self.topics.values(), key=lambda t: t.name)],
            "partitions": partitions,
            "clients": [c.describe() for _, c in sorted(self.clients.items()) if hasattr(c, "describe")],
            "groups": self.describe_groups(),
            "transactions": self.describe_transactions(),
            "network": {
                "isolated": {n: (None if peers is None else sorted(peers))
                             for n, peers in sorted(self.network.plan.isolated.items())},
                "links": [{"from": a, "to": b, "latency_ms": f.latency_ms, "loss_probability": f.loss_probability}
                          for (a, b), f in sorted(self.network.plan.links.items())],
                "sent": self.network.sent, "dropped": self.network.dropped,
            },
        }

    def describe_groups(self) -> list[dict[str, Any]]:
        """Every consumer group as its current coordinator sees it (for the live view)."""
        out = []
        for broker in self.brokers.values():
            if broker.alive:
                out.extend(broker.groups.describe_group(g) for g in broker.groups.groups.values())
        return sorted(out, key=lambda g: g["group_id"])

    def describe_transactions(self) -> list[dict[str, Any]]:
        """Every transactional id as its current coordinator sees it."""
        out = []
        for broker in self.brokers.values():
            if broker.alive:
                out.extend(broker.txn.describe())
        return sorted(out, key=lambda t: t["transactional_id"])

    def check_invariants(self) -> None:
        """Raise AssertionError naming the seed if any invariant is broken.

        Strict mode runs this after every event, so it is kept cheap: a controller entry is a frozen
        PartitionUpdate replaced on every change, so one already checked (the same object) is skipped.
        """
        checked = self._invariants_checked
        for tp, update in self.controller.partitions.items():
            if checked.get(tp) is update:
                continue
            assert set(update.isr) <= set(update.replicas), f"ISR {update.isr} ⊄ replicas {update.replicas} ({self._repro()})"
            if update.leader >= 0:
                key = (tp, update.leader_epoch)
                prior = self._epoch_leaders.setdefault(key, update.leader)
                assert prior == update.leader, f"two leaders for {tp} in epoch {update.leader_epoch} ({self._repro()})"
            checked[tp] = update
        for broker in self.brokers.values():
            if not broker.alive:
                continue
            for replica in broker.replicas.values():
                log = replica.log
                if not replica.high_watermark <= log.log_end_offset or not log.log_start_offset <= log.log_end_offset:
                    raise AssertionError(
                        f"broker {broker.broker_id} {replica.tp}: log start {log.log_start_offset}, HW "
                        f"{replica.high_watermark}, LEO {log.log_end_offset} out of order ({self._repro()})")

    def _repro(self) -> str:
        return f"reproduce with seed={self.seed}"
