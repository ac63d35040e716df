"""Consumer-side scenarios: delivery semantics, retention skips and rebalance protocols.

The producer-side scenarios in :mod:`core_log.sim` ask "did the log keep what
it acknowledged?". These ask the consumer's questions, on the same engine and
with the same checker:

* ``consumer-crash-at-least-once`` — commit after processing, a consumer dies
  mid-batch: its partitions move, the new owner resumes at the last commit and
  processes again what the dead one had done since — the non-idempotent sink
  applies some records twice, and nothing is lost;
* ``commit-before-process-crash`` — commit right after poll, then process: the
  same crash loses the rest of the batch — at-most-once;
* ``slow-consumer-retention`` — a consumer slower than the producer, on a topic
  with small retention: the log deletes segments it has not read, its position
  falls below the log start and ``auto.offset.reset=latest`` jumps it forward;
  the skip is reported as documented behaviour (retention), not as a bug;
* ``rebalance-eager-vs-cooperative`` — the same membership changes under
  ``range`` (eager) and ``cooperative-sticky``: counts how many partitions
  members had to give up.

Each returns the JSON of :func:`core_log.sim.run_scenario` (checker verdict,
``stats`` with consume and sink counts) plus the scenario's own figures and
``as_expected``.
"""

from __future__ import annotations

import random
from typing import Any

from core_log.checker import Checker
from core_log.cluster import Cluster, ClusterConfig
from core_log.consumer import Consumer, ConsumerConfig
from core_log.producer import ProducerConfig
from core_log.workloads import LabConsumer, Sink, TelemetryProducer

TOPIC = "machine.telemetry"
GROUP = "billing"


def _finish(c: Cluster, checker: Checker, name: str, seed: int, expected: str, as_expected: bool,
            timeline: bool, **figures: Any) -> dict[str, Any]:
    result = checker.verdict(final=True).to_json()
    result.update({
        "scenario": name, "seed": seed, "expected": expected, "as_expected": bool(as_expected),
        "simulated_ms": c.now_ms(), "events": len(c.events), "messages": c.network.sent,
        "timeline": [[e.time_ms, e.kind, e.text] for e in c.events
                     if e.kind not in ("ProducerIdAssigned", "ClusterStarted")] if timeline else None,
        **figures,
    })
    return result


def _cluster(seed: int, strict: bool, partitions: int = 6, configs: dict[str, Any] | None = None) -> Cluster:
    c = Cluster(brokers=3, seed=seed, strict=strict, config=ClusterConfig(replica_lag_time_max_ms=10_000))
    c.create_topic(TOPIC, partitions, 3, {"min.insync.replicas": 2, **(configs or {})})
    c.run_for(500)
    return c


def _drained(consumers: list[LabConsumer]) -> bool:
    live = [lc for lc in consumers if lc.consumer.alive]
    owned = {tp for lc in live for tp in lc.consumer.assignment}
    return (len(owned) == 6 and all(not lc.batch for lc in live)
            and all(lc.consumer.caught_up() for lc in live))


def _crash_scenario(name: str, commit: str, seed: int, strict: bool, timeline: bool) -> dict[str, Any]:
    rng = random.Random(seed ^ 0xC0FFEE)
    c = _cluster(seed, strict)
    checker = Checker()
    c.attach_checker(checker)
    producer = TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=240, machines=40,
                                 config=ProducerConfig(acks="all"))
    producer.start()
    sink = Sink("billing-db", idempotent=False)
    config = ConsumerConfig(auto_offset_reset="earliest", session_timeout_ms=10_000, max_poll_records=200)
    consumers = [LabConsumer(c, f"worker-{i}", TOPIC, GROUP, rate_per_s=150, commit=commit, sink=sink,
                             config=config) for i in (1, 2, 3)]
    c.run_for(8000 + rng.randrange(4000))
    victim = consumers[rng.randrange(3)]
    crashed_with = {"processed_since_last_commit": 0, "unprocessed": 0}

    def crash_mid_batch() -> None:
        if victim.mid_batch:
            crashed_with["processed_since_last_commit"] = victim.uncommitted
            crashed_with["unprocessed"] = len(victim.batch)
            victim.crash()
            c.schedule(4000, victim.restart)
        else:
            c.schedule(5, crash_mid_batch)

    crash_mid_batch()
    c.run_for(20_000)
    producer.stop()
    c.run_until(lambda: _drained(consumers), 120_000, step_ms=200)
    c.run_for(2000)
    stats = checker.verdict(final=True).stats
    sink_stats = stats.get("sink", {})
    if commit == "after":
        ok = checker.verdict(final=True).valid and sink_stats.get("duplicates", 0) > 0 and sink_stats.get("lost") == 0
        expected = "valid; sink duplicates > 0; nothing lost (at-least-once)"
    else:
        ok = sink_stats.get("lost", 0) > 0
        expected = "sink lost > 0 (at-most-once)"
    return _finish(c, checker, name, seed, expected, ok, timeline, victim=victim.client_id,
                   crashed_mid_batch=crashed_with, sink=sink.describe())


def consumer_crash_at_least_once(seed: int, strict: bool = False, timeline: bool = False) -> dict[str, Any]:
    return _crash_scenario("consumer-crash-at-least-once", "after", seed, strict, timeline)


def commit_before_process_crash(seed: int, strict: bool = False, timeline: bool = False) -> dict[str, Any]:
    return _crash_scenario("commit-before-process-crash", "before", seed, strict, timeline)


def slow_consumer_retention(seed: int, strict: bool = False, timeline: bool = False) -> dict[str, Any]:
    rng = random.Random(seed ^ 0x7E7E)
    c = _cluster(seed, strict, partitions=1, configs={"segment.bytes": 4096, "retention.bytes": 8192})
    checker = Checker()
    c.attach_checker(checker)
    producer = TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=400 + rng.randrange(100), machines=10,
                                 config=ProducerConfig(acks="all"))
    producer.start()
    slow = LabConsumer(c, "slow-reader", TOPIC, GROUP, rate_per_s=20, commit="after",
                       config=ConsumerConfig(auto_offset_reset="latest", session_timeout_ms=10_000,
                                             max_poll_records=20))
    c.run_for(30_000)
    producer.stop()
    c.run_for(3000)
    final = Consumer(c, "final-reader", ConsumerConfig(auto_offset_reset="earliest"))
    final.assign(sorted(b for b in c.partitions() if b.topic == TOPIC), from_beginning=True)
    c.run_until(final.caught_up, 60_000, step_ms=200)
    skips = [e for e in c.events.of_kind("OffsetOutOfRange") if e.fields.get("skipped", 0) > 0]
    deleted = c.events.of_kind("SegmentDeleted")
    # What the checker calls lost or unseen here is what retention deleted before anyone read it:
    # every such offset lies below the log start offset the brokers reported.
    log_start = min(b.replicas[tp].log.log_start_offset for b in c.brokers.values() if b.alive
                    for tp in b.replicas if tp.topic == TOPIC)
    verdict = checker.verdict(final=True)
    unexplained = [a for name in ("lost-write", "unseen") for a in verdict.anomalies.get(name, ())
                   if a.offsets and max(a.offsets) >= log_start]
    others = [n for n in verdict.counts if n not in ("lost-write", "unseen")]
    ok = bool(skips) and bool(deleted) and not unexplained and not others
    return _finish(c, checker, "slow-consumer-retention", seed,
                   "documented skip: retention deleted unread records and auto.offset.reset=latest jumped past them",
                   ok, timeline, documented_skips=sum(e.fields["skipped"] for e in skips),
                   segments_deleted=len(deleted), log_start_offset=log_start,
                   explained_by_retention=sum(verdict.counts.get(n, 0) for n in ("lost-write", "unseen")),
                   processed=slow.processed)


def rebalance_eager_vs_cooperative(seed: int, strict: bool = False, timeline: bool = False) -> dict[str, Any]:
    revoked: dict[str, int] = {}
    checkers = {}
    cluster = None
    for strategy in ("range", "cooperative-sticky"):
        rng = random.Random(seed ^ 0xBA1A)
        c = _cluster(seed, strict, partitions=12)
        checker = Checker()
        c.attach_checker(checker)
        checkers[strategy] = checker
        producer = TelemetryProducer(c, "telemetry", TOPIC, rate_per_s=100, machines=30)
        producer.start()
        cfg = ConsumerConfig(group_id=GROUP, auto_offset_reset="earliest", session_timeout_ms=10_000,
                             partition_assignment_strategy=(strategy,))
        members = [Consumer(c, f"member-{i}", cfg) for i in range(1, 4)]
        for m in members:
            m.subscribe([TOPIC])
        c.run_for(8000)
        joiner = Consumer(c, "member-4", cfg)
        joiner.subscribe([TOPIC])
        members.append(joiner)
        c.run_for(6000 + rng.randrange(2000))
        leaver = members.pop(rng.randrange(len(members)))
        leaver.close()
        c.run_for(8000)
        producer.stop()
        c.run_until(lambda: all(m.caught_up() for m in members) and len({tp for m in members
                                                                          for tp in m.assignment}) == 12,
                    60_000, step_ms=200)
        c.run_for(1000)
        revoked[strategy] = sum(m.group.revocations for m in members if m.group) + (
            leaver.group.revocations if leaver.group else 0)
        cluster = c
    assert cluster is not None
    valid = all(ch.verdict(final=True).valid for ch in checkers.values())
    ok = valid and revoked["cooperative-sticky"] < revoked["range"]
    return _finish(cluster, checkers["cooperative-sticky"], "rebalance-eager-vs-cooperative", seed,
                   "cooperative-sticky revokes fewer partitions than eager range", ok, timeline,
                   eager_revoked=revoked["range"], cooperative_revoked=revoked["cooperative-sticky"])
