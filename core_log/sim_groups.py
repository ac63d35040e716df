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
  members had to give up;
* ``eos-transform-with-crashes`` — two transactional copiers (consume,
  transform, produce, offsets in the transaction) while brokers and copiers
  are bounced; a read_committed verifier must find every input exactly once
  in the output, in per-key order (Kafka's own ``transactions_test``);
* ``read-uncommitted-abort`` — a producer aborts every other transaction: a
  read_uncommitted consumer reads the aborted records (``G1a``), a
  read_committed one never does.

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
from core_log.workloads import LabConsumer, Sink, TelemetryProducer, TransactionalCopier

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


def _read_all(c: Cluster, name: str, topic: str, isolation: str, expect_at_least: int,
              timeout_ms: int = 120_000) -> Consumer:
    reader = Consumer(c, name, ConsumerConfig(auto_offset_reset="earliest", isolation_level=isolation))
    reader.assign([tp for tp in c.partitions() if tp.topic == topic], from_beginning=True)
    c.run_until(lambda: reader.records_consumed >= expect_at_least and reader.caught_up(), timeout_ms, step_ms=200)
    return reader


def _reads_of(c: Cluster, process: str) -> list[tuple[str, int, str]]:
    out = []
    for op in c.history.ops:
        if op.process == process and op.f == "poll" and op.type == "ok":
            for partition in sorted(op.value):
                out.extend((partition, offset, value) for offset, value in op.value[partition])
    return out


def eos_transform_with_crashes(seed: int, strict: bool = False, timeline: bool = False) -> dict[str, Any]:
    """Two transactional copiers in one group copy a topic while brokers and copiers are bounced."""
    rng = random.Random(seed ^ 0xE05)
    c = Cluster(brokers=3, seed=seed, strict=strict, config=ClusterConfig(
        replica_lag_time_max_ms=10_000, transaction_abort_timed_out_transaction_cleanup_interval_ms=1000))
    for topic in ("input", "output"):
        c.create_topic(topic, 4, 3, {"min.insync.replicas": 2})
    checker = Checker()
    c.attach_checker(checker)
    c.run_for(500)
    source = TelemetryProducer(c, "source", "input", rate_per_s=100, machines=24, config=ProducerConfig(acks="all"))
    source.start()
    config = ConsumerConfig(auto_offset_reset="earliest", session_timeout_ms=10_000)
    copiers = [TransactionalCopier(c, f"copier-{i}", "input", "output", "copy", config=config) for i in (1, 2)]

    def bounce_broker() -> None:
        live = [b for b in sorted(c.brokers) if c.brokers[b].alive]
        victim = live[rng.randrange(len(live))]
        c.crash_broker(victim, "kill")
        c.schedule(6000, lambda: c.restart_broker(victim))

    crashed_mid_transaction = [0]

    def bounce_copier() -> None:
        copier = copiers[rng.randrange(2)]

        def when_mid_transaction() -> None:  # crash with a transaction open: its output must never show
            if copier.mid_transaction:
                crashed_mid_transaction[0] += 1
                copier.crash()
                c.schedule(3000, copier.restart)
            else:
                c.schedule(1, when_mid_transaction)

        when_mid_transaction()

    for when, action in ((6000, bounce_broker), (13_000, bounce_copier), (20_000, bounce_broker),
                         (26_000, bounce_copier)):
        c.schedule(when + rng.randrange(2000), action)
    c.run_for(30_000)
    source.stop()
    c.run_for(40_000)  # let copiers finish; an abandoned transaction times out after 10 s
    acked_inputs = {op.value[2]: (op.value[0], op.value[1]) for op in c.history.ops
                    if op.process == "source" and op.f == "send" and op.type == "ok"}
    reader = _read_all(c, "verifier", "output", "read_committed", len(acked_inputs))
    outputs = _reads_of(c, reader.node_id)
    copied_from = [v.rsplit("→", 1)[0] for _, _, v in outputs]
    counts: dict[str, int] = {}
    for v in copied_from:
        counts[v] = counts.get(v, 0) + 1
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    missing = sorted(set(acked_inputs) - set(counts))
    unexpected = sorted(set(counts) - set(acked_inputs))
    # Per key (same partition number in both topics): output order must follow input offsets.
    out_of_order = 0
    last_input_offset: dict[str, int] = {}
    for partition, _, value in outputs:
        src = acked_inputs.get(value.rsplit("→", 1)[0])
        if src is None:
            continue
        if src[1] <= last_input_offset.get(partition, -1):
            out_of_order += 1
        last_input_offset[partition] = src[1]
    verdict = checker.verdict(final=True)
    ok = verdict.valid and duplicates == 0 and not missing and not unexpected and out_of_order == 0
    return _finish(c, checker, "eos-transform-with-crashes", seed,
                   "valid; output == input exactly once, per-key order kept", ok, timeline,
                   inputs=len(acked_inputs), outputs=len(outputs), output_duplicates=duplicates,
                   missing=len(missing), unexpected=len(unexpected), out_of_order=out_of_order,
                   aborted_rounds=sum(cp.aborted_rounds for cp in copiers),
                   transactions_committed=sum(cp.committed_rounds for cp in copiers),
                   crashed_mid_transaction=crashed_mid_transaction[0],
                   transactions_aborted_by_coordinator=len(c.events.of_kind("TransactionAborted")))


def read_uncommitted_abort(seed: int, strict: bool = False, timeline: bool = False) -> dict[str, Any]:
    """Every other transaction aborts: read_uncommitted reads its records (G1a), read_committed skips them."""
    from core_log.txn import TransactionalProducer

    rng = random.Random(seed ^ 0xAB)
    c = _cluster(seed, strict, partitions=3)
    checker = Checker()
    c.attach_checker(checker)
    uncommitted = Consumer(c, "dashboard", ConsumerConfig(auto_offset_reset="earliest"))
    committed = Consumer(c, "billing", ConsumerConfig(auto_offset_reset="earliest", isolation_level="read_committed"))
    for consumer in (uncommitted, committed):
        consumer.assign([tp for tp in c.partitions() if tp.topic == TOPIC], from_beginning=True)
    producer = TransactionalProducer(c, "orders", "orders-txn")
    init = producer.init_transactions()
    c.run_until(lambda: init.done, 30_000)
    rounds = {"committed": 0, "aborted": 0}
    for round_no in range(12):
        producer.begin_transaction()
        for i in range(5 + rng.randrange(5)):
            producer.send(TOPIC, f"machine-{rng.randrange(20)}".encode(), f"r{round_no}-{i}".encode())
        c.run_for(200 + rng.randrange(300))  # records are in the log (and below the HW) before the decision
        commit = round_no % 2 == 0
        end = producer.commit_transaction() if commit else producer.abort_transaction()
        c.run_until(lambda: end.done, 30_000)
        rounds["committed" if commit else "aborted"] += 1
    c.run_for(3000)
    aborted_values = {op.value[2] for op in c.history.ops
                      if op.process == "orders" and op.f == "send" and op.type == "fail"}
    seen_uncommitted = {v for _, _, v in _reads_of(c, "dashboard")}
    seen_committed = {v for _, _, v in _reads_of(c, "billing")}
    verdict = checker.verdict(final=True)
    ok = ("G1a" in verdict.counts and bool(aborted_values & seen_uncommitted)
          and not aborted_values & seen_committed)
    return _finish(c, checker, "read-uncommitted-abort", seed,
                   "G1a from the read_uncommitted consumer; none from read_committed", ok, timeline,
                   rounds=rounds, aborted_records=len(aborted_values),
                   aborted_read_by_read_uncommitted=len(aborted_values & seen_uncommitted),
                   aborted_read_by_read_committed=len(aborted_values & seen_committed))
