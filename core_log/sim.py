"""Named fault scenarios: a workload, a schedule of faults, and the checker's verdict.

Each scenario builds a :class:`~core_log.cluster.Cluster` from a seed, runs
producers sending unique values and an assign-mode consumer reading everything,
injects its faults, then heals the cluster and lets a fresh consumer read every
partition from the beginning (Jepsen's final read). The checker then names what
broke. Safe configurations must come out valid on every seed; each unsafe one
is tuned so its anomaly shows on (nearly) every seed, so a lab can rely on it.

``python -m core_log scenarios`` lists them; ``python -m core_log simulate
--scenario NAME --seed N --json`` runs one (DESIGN.md §4 contract).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from core_log import sim_groups
from core_log.checker import Checker, CheckerContext
from core_log.cluster import Cluster, ClusterConfig
from core_log.consumer import Consumer, ConsumerConfig
from core_log.messages import TopicPartition
from core_log.producer import Producer, ProducerConfig

TOPIC = "jepsen"
FAULT_JITTER_MS = 2000  # seeds move each fault by up to this much, so sweeps explore timings


@dataclass
class Workload:
    """Knobs shared by the scenarios."""

    brokers: int = 3
    partitions: int = 2
    replication_factor: int = 3
    topic_configs: dict[str, Any] = field(default_factory=dict)
    producer: ProducerConfig = field(default_factory=ProducerConfig)
    producers: int = 2
    rate_per_s: int = 20  # per producer
    duration_ms: int = 40_000
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(replica_lag_time_max_ms=10_000))
    final_read_timeout_ms: int = 60_000


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expect: tuple[str, ...]  # () = valid; else anomaly names of which at least one must appear
    workload: Callable[[], Workload] | None = None
    faults: Callable[["Run"], None] | None = None
    # consumer-side scenarios (sim_groups.py) run themselves and judge their own figures:
    runner: Callable[[int, bool, bool], dict[str, Any]] | None = None
    expect_text: str = ""

    @property
    def expectation(self) -> str:
        return self.expect_text or (" or ".join(self.expect) if self.expect else "valid")

    @property
    def always(self) -> bool:
        """Whether every seed must come out as expected (safe configurations, consumer semantics)."""
        return not self.expect or self.runner is not None


class Run:
    """One scenario execution: cluster, clients, checker, and fault helpers."""

    def __init__(self, scenario: Scenario, seed: int, strict: bool = False, keep_timeline: bool = False) -> None:
        self.keep_timeline = keep_timeline
        self.scenario = scenario
        self.seed = seed
        assert scenario.workload is not None and scenario.faults is not None
        self.w = scenario.workload()
        self.rng = random.Random(seed ^ 0x5EED)
        self.cluster = Cluster(brokers=self.w.brokers, seed=seed, config=self.w.cluster, strict=strict)
        c = self.cluster
        c.create_topic(TOPIC, self.w.partitions, self.w.replication_factor, self.w.topic_configs)
        topic = c.topics[TOPIC]
        pc = self.w.producer
        self.checker = Checker(CheckerContext(
            acks=pc.acks if pc.acks != "-1" else "all", enable_idempotence=pc.enable_idempotence,
            retries=pc.retries, max_in_flight=pc.max_in_flight_requests_per_connection,
            min_insync_replicas=topic.min_insync_replicas, replication_factor=topic.replication_factor,
            unclean_leader_election=topic.unclean_leader_election,
            flush_messages_never=topic.log_config.flush_messages >= (1 << 62)))
        c.attach_checker(self.checker)
        c.run_for(1000)
        self.producers = [Producer(c, f"producer-{i + 1}", pc) for i in range(self.w.producers)]
        self.tps = [TopicPartition(TOPIC, p) for p in range(self.w.partitions)]
        self.consumer = Consumer(c, "consumer-1", ConsumerConfig(auto_offset_reset="earliest"))
        self.consumer.assign(self.tps, from_beginning=True)
        self._sent = 0
        self.producing = True
        interval = max(1, 1000 // self.w.rate_per_s)
        for i, producer in enumerate(self.producers):
            c.schedule(i * 3, lambda p=producer, n=i + 1: self._produce_loop(p, n, interval))

    def _produce_loop(self, producer: Producer, n: int, interval_ms: int) -> None:
        if not self.producing:
            return
        self._sent += 1
        key = b"k%d" % self.rng.randrange(16)
        producer.send(TOPIC, key, b"p%d-%d" % (n, self._sent))
        self.cluster.schedule(interval_ms, lambda: self._produce_loop(producer, n, interval_ms))

    # ── fault helpers for scenarios ──
    def at(self, time_ms: int, action: Callable[[], None]) -> None:
        """Run a fault at ``time_ms``, shifted by up to ``FAULT_JITTER_MS`` drawn from the seed."""
        when = time_ms + self.rng.randrange(FAULT_JITTER_MS)
        self.cluster.schedule(max(0, when - self.cluster.now_ms()), action)

    def leader(self, partition: int = 0) -> int:
        return self.cluster.leader_of(self.tps[partition])

    def execute(self) -> dict[str, Any]:
        c = self.cluster
        assert self.scenario.faults is not None
        self.scenario.faults(self)
        c.run_for(self.w.duration_ms)
        self.producing = False
        # Heal: reconnect everything, restart every broker, let producers finish.
        c.heal()
        for broker in c.brokers.values():
            if not broker.alive:
                c.restart_broker(broker.broker_id)
        c.run_until(lambda: all(p.in_flight_count() == 0 for p in self.producers), timeout_ms=180_000, step_ms=500)
        c.run_for(5000)
        # Final read: a fresh consumer reads every partition from the start.
        self.consumer.stop()
        final = Consumer(c, "consumer-final", ConsumerConfig(auto_offset_reset="earliest"))
        final.assign(self.tps, from_beginning=True)
        c.run_until(lambda: final.caught_up() and self._hw_stable(), timeout_ms=self.w.final_read_timeout_ms,
                    step_ms=500)
        verdict = self.checker.verdict(final=True)
        result = verdict.to_json()
        result.update({
            "scenario": self.scenario.name,
            "seed": self.seed,
            "expected": list(self.scenario.expect) or "valid",
            "as_expected": (verdict.valid if not self.scenario.expect
                            else any(name in verdict.counts for name in self.scenario.expect)),
            "simulated_ms": c.now_ms(),
            "events": len(c.events),
            "timeline": [[e.time_ms, e.kind, e.text] for e in c.events
                         if e.kind not in ("ProducerIdAssigned", "ClusterStarted")] if self.keep_timeline else None,
            "messages": c.network.sent,
        })
        return result

    def _hw_stable(self) -> bool:
        for tp in self.tps:
            leader = self.cluster.leader_of(tp)
            if leader < 0:
                return False
            replica = self.cluster.replica(leader, tp)
            if replica is None or replica.high_watermark < replica.log_end_offset:
                return False
        return True


# ── the scenarios ────────────────────────────────────────────────────────────


def _safe() -> Workload:
    return Workload(topic_configs={"min.insync.replicas": 2})


def _kill_leaders_repeatedly(run: Run) -> None:
    c = run.cluster
    for k in range(3):
        t = 6000 + k * 11_000

        def kill(partition: int = k % run.w.partitions) -> None:
            leader = run.leader(partition)
            if leader >= 0 and c.brokers[leader].alive:
                c.crash_broker(leader, "kill")
                c.schedule(7000, lambda b=leader: c.restart_broker(b) if not c.brokers[b].alive else None)

        run.at(t, kill)


def _acks1() -> Workload:
    return Workload(producer=ProducerConfig(acks="1", enable_idempotence=False), rate_per_s=60,
                    duration_ms=30_000)


def _acks1_faults(run: Run) -> None:
    c = run.cluster

    def cut_followers_off() -> None:
        # The leader keeps acknowledging (acks=1) while its followers cannot fetch…
        leader = run.leader(0)
        run.doomed = leader  # type: ignore[attr-defined]
        if leader >= 0:
            c.isolate(leader, [f"broker-{b}" for b in c.brokers if b != leader])

    def kill_leader() -> None:
        # …then it dies before they copied those records.
        leader = run.doomed  # type: ignore[attr-defined]
        if leader >= 0 and c.brokers[leader].alive:
            c.crash_broker(leader, "kill")
            c.heal(leader)
            c.schedule(15_000, lambda b=leader: c.restart_broker(b) if not c.brokers[b].alive else None)

    run.at(8_000, cut_followers_off)
    run.at(10_500, kill_leader)


def _unclean() -> Workload:
    return Workload(partitions=1, topic_configs={"unclean.leader.election.enable": True},
                    producer=ProducerConfig(acks="1", enable_idempotence=False))


def _unclean_faults(run: Run) -> None:
    c = run.cluster

    def isolate_follower() -> None:
        leader = run.leader(0)
        follower = max(b for b in c.brokers if b != leader)
        run.stale = follower  # type: ignore[attr-defined]
        c.isolate(follower)

    def kill_isr() -> None:
        stale = run.stale  # type: ignore[attr-defined]
        for b in sorted(c.brokers):
            if b != stale and c.brokers[b].alive:
                c.crash_broker(b, "kill")
        c.heal(stale)

    def restart_rest() -> None:
        for b in sorted(c.brokers):
            if not c.brokers[b].alive:
                c.restart_broker(b)

    run.at(4000, isolate_follower)
    run.at(20_000, kill_isr)
    run.at(32_000, restart_rest)


def _lost_acks(idempotent: bool) -> Callable[[], Workload]:
    def make() -> Workload:
        return Workload(producer=ProducerConfig(
            acks="all", enable_idempotence=idempotent, request_timeout_ms=1500, delivery_timeout_ms=60_000,
            retry_backoff_ms=100, max_in_flight_requests_per_connection=5 if idempotent else 1),
            topic_configs={"min.insync.replicas": 2})
    return make


def _lost_acks_faults(run: Run) -> None:
    c = run.cluster

    def drop_responses() -> None:
        for p in run.producers:
            for b in c.brokers:
                c.network.plan.set_link(f"broker-{b}", p.node_id, loss_probability=0.3, both_ways=False)

    def restore() -> None:
        c.heal()

    run.at(3000, drop_responses)
    run.at(30_000, restore)


def _follower_isolated_faults(run: Run) -> None:
    c = run.cluster

    def isolate() -> None:
        leader = run.leader(0)
        follower = max(b for b in c.brokers if b != leader)
        c.isolate(follower)
        c.schedule(20_000, lambda: c.heal(follower))

    run.at(5000, isolate)


def _min_isr_faults(run: Run) -> None:
    c = run.cluster

    def kill_two() -> None:
        for b in (2, 3):
            c.crash_broker(b, "kill")
        c.schedule(15_000, lambda: [c.restart_broker(b) for b in (2, 3)])

    run.at(8000, kill_two)


def _power_loss() -> Workload:
    return Workload(partitions=1, producer=ProducerConfig(acks="all"), topic_configs={"min.insync.replicas": 2})


def _power_loss_faults(run: Run) -> None:
    c = run.cluster

    def outage() -> None:
        for b in sorted(c.brokers):
            c.crash_broker(b, "power_loss")
        c.schedule(3000, lambda: [c.restart_broker(b) for b in sorted(c.brokers)])

    run.at(15_000, outage)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("safe-leader-crash", "RF 3, min.insync.replicas=2, acks=all, idempotence on; partition leaders are "
             "killed and restarted repeatedly. Kafka's promise holds: nothing acknowledged is lost.",
             (), _safe, _kill_leaders_repeatedly),
    Scenario("acks1-leader-crash", "acks=1: the leader's followers cannot fetch for a moment, and the leader dies "
             "right after acknowledging writes they have not copied. Those acknowledged writes are lost.",
             ("lost-write",), _acks1, _acks1_faults),
    Scenario("unclean-election", "unclean.leader.election.enable=true: a follower falls out of the ISR, every ISR "
             "member dies, and the stale follower is elected. Acknowledged writes vanish and offsets are reused.",
             ("lost-write", "inconsistent-offsets"), _unclean, _unclean_faults),
    Scenario("no-idempotence-lost-acks", "Produce responses are dropped, the producer retries, idempotence is off: "
             "the broker writes retried batches again.", ("duplicate",), _lost_acks(False), _lost_acks_faults),
    Scenario("idempotent-lost-acks", "The same lost responses with enable.idempotence=true: the leader recognises "
             "retried batches by producer id and sequence, so each record is written once.",
             (), _lost_acks(True), _lost_acks_faults),
    Scenario("follower-isolated", "A follower is cut off: the ISR shrinks after replica.lag.time.max.ms, writes "
             "continue with the rest, and after healing the follower catches up and rejoins.",
             (), _safe, _follower_isolated_faults),
    Scenario("min-isr-unavailable", "Two of three brokers die with acks=all and min.insync.replicas=2: sends fail "
             "with NOT_ENOUGH_REPLICAS instead of being acknowledged unsafely; nothing acknowledged is lost.",
             (), _safe, _min_isr_faults),
    Scenario("power-loss-all-replicas", "Every replica loses power at once and nothing was fsynced "
             "(flush.messages is Kafka's default: never). Replication, not fsync, is what makes Kafka durable — "
             "and here every copy is gone.", ("lost-write", "inconsistent-offsets"), _power_loss, _power_loss_faults),
    Scenario("consumer-crash-at-least-once", "A group of three commits after processing; one consumer dies "
             "mid-batch. Its partitions move and resume at the last commit, so a non-idempotent sink applies "
             "some records twice — and nothing is lost (at-least-once).", (),
             runner=sim_groups.consumer_crash_at_least_once,
             expect_text="valid; sink duplicates > 0; none lost"),
    Scenario("commit-before-process-crash", "The same crash, but offsets are committed right after poll, before "
             "processing: the rest of the dead consumer's batch is never processed (at-most-once).", (),
             runner=sim_groups.commit_before_process_crash, expect_text="sink lost > 0"),
    Scenario("slow-consumer-retention", "A consumer slower than the producer on a topic with small retention: "
             "segments it has not read are deleted, its position falls below the log start and "
             "auto.offset.reset=latest jumps it forward — a documented skip, not a bug.", (),
             runner=sim_groups.slow_consumer_retention, expect_text="documented retention skip"),
    Scenario("rebalance-eager-vs-cooperative", "A member joins and another leaves a group of three on 12 "
             "partitions, once with range (eager: everyone gives up everything) and once with cooperative-sticky "
             "(only moving partitions are revoked). Reports both revocation counts.", (),
             runner=sim_groups.rebalance_eager_vs_cooperative, expect_text="cooperative revokes fewer"),
    Scenario("eos-transform-with-crashes", "Two transactional copiers (read_committed, offsets committed in the "
             "transaction) copy a topic while brokers and copiers are bounced: the output holds every input "
             "exactly once, in per-key order.", (), runner=sim_groups.eos_transform_with_crashes,
             expect_text="valid; output == input, no duplicates"),
    Scenario("read-uncommitted-abort", "A transactional producer aborts every other transaction: a "
             "read_uncommitted consumer reads the aborted records (G1a); a read_committed consumer never does.",
             (), runner=sim_groups.read_uncommitted_abort, expect_text="G1a (read_uncommitted only)"),
]}


def run_scenario(name: str, seed: int, strict: bool = False, timeline: bool = False) -> dict[str, Any]:
    """Run one named scenario headless and return its JSON-ready result.

    ``strict`` checks the cluster's invariants after every event (tests use it);
    ``timeline`` adds the narrated events as ``[time_ms, kind, text]`` rows.
    """
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    if SCENARIOS[name].runner is not None:
        return SCENARIOS[name].runner(seed, strict, timeline)  # type: ignore[misc]
    return Run(SCENARIOS[name], seed, strict=strict, keep_timeline=timeline).execute()
