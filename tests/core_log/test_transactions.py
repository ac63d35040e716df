"""Transactions on the real engine: LSO, markers, aborted index, fencing, timeouts, failover, offsets."""

from __future__ import annotations

import os

import pytest

from core_log.checker import Checker
from core_log.cluster import Cluster, ClusterConfig
from core_log.consumer import Consumer, ConsumerConfig
from core_log.index import TXN_ENTRY
from core_log.messages import INVALID_PRODUCER_EPOCH, TopicPartition
from core_log.offsets import OFFSETS_TOPIC
from core_log.txn import TRANSACTION_STATE_TOPIC, TransactionalProducer, TransactionError, decode_txn_record

TOPIC = "payments"


def _cluster(**kw) -> Cluster:
    config = ClusterConfig(transaction_abort_timed_out_transaction_cleanup_interval_ms=1000)
    c = Cluster(brokers=3, seed=kw.pop("seed", 11), strict=True, config=config, **kw)
    c.create_topic(TOPIC, 2, 3, {"min.insync.replicas": 2})
    c.run_for(500)
    return c


def _ready(c: Cluster, client: str = "p1", txn_id: str = "payments-app", **kw) -> TransactionalProducer:
    p = TransactionalProducer(c, client, txn_id, **kw)
    f = p.init_transactions()
    assert c.run_until(lambda: f.done, 20_000) and f.ok, f.error
    return p


def _readers(c: Cluster) -> tuple[Consumer, Consumer]:
    committed = Consumer(c, "committed", ConsumerConfig(auto_offset_reset="earliest",
                                                        isolation_level="read_committed"))
    uncommitted = Consumer(c, "uncommitted", ConsumerConfig(auto_offset_reset="earliest"))
    tps = [TopicPartition(TOPIC, p) for p in range(2)]
    committed.assign(tps, from_beginning=True)
    uncommitted.assign(tps, from_beginning=True)
    return committed, uncommitted


def _finish(c: Cluster, future) -> None:
    assert c.run_until(lambda: future.done, 20_000), "the transaction step did not finish"
    assert future.ok, future.error


def test_read_committed_waits_for_the_commit_marker():
    """Ensure an open transaction holds the LSO at its first record: read_committed sees nothing until commit."""
    c = _cluster()
    checker = Checker()
    c.attach_checker(checker)
    p = _ready(c)
    committed, uncommitted = _readers(c)
    p.begin_transaction()
    for i in range(8):
        p.send(TOPIC, b"k%d" % i, b"pay-%d" % i)
    c.run_for(2000)
    assert uncommitted.records_consumed == 8 and committed.records_consumed == 0
    for b in c.brokers.values():
        for tp, r in b.replicas.items():
            if tp.topic == TOPIC and r.log_end_offset:
                assert r.last_stable_offset == 0 < r.high_watermark
    _finish(c, p.commit_transaction())
    c.run_for(2000)
    assert committed.records_consumed == 8
    verdict = checker.verdict()
    assert verdict.counts == {"precommitted-read": 8}  # the read_uncommitted consumer read ahead of the commit
    assert c.events.of_kind("TransactionCompleted")


def test_aborted_records_are_skipped_by_read_committed_and_indexed_per_segment(tmp_path):
    """Ensure an abort writes ABORT markers and a 34-byte .txnindex entry; read_committed skips, read_uncommitted reads (G1a)."""
    c = _cluster(storage="file", data_dir=str(tmp_path))
    checker = Checker()
    c.attach_checker(checker)
    p = _ready(c)
    committed, uncommitted = _readers(c)
    p.begin_transaction()
    for i in range(5):
        p.send(TOPIC, b"k", b"bad-%d" % i)
    c.run_for(500)
    _finish(c, p.abort_transaction())
    p.begin_transaction()
    for i in range(3):
        p.send(TOPIC, b"k", b"good-%d" % i)
    _finish(c, p.commit_transaction())
    c.run_for(3000)
    assert committed.records_consumed == 3 and uncommitted.records_consumed == 8
    assert checker.verdict().counts["G1a"] == 5
    tp = next(TopicPartition(TOPIC, n) for n in range(2)
              if c.replica(1, TopicPartition(TOPIC, n)).log_end_offset)
    for broker in (1, 2, 3):
        entries = c.replica(broker, tp).log.txn_index_entries()
        assert [(e.first_offset, e.last_offset) for e in entries] == [(0, 5)]
        path = os.path.join(str(tmp_path), f"broker-{broker}", f"{tp.topic}-{tp.partition}",
                            f"{0:020d}.txnindex")
        assert os.path.getsize(path) == TXN_ENTRY.size == 34


def test_txnindex_is_rebuilt_from_markers_when_missing(tmp_path):
    """Ensure a broker that restarts without its .txnindex rebuilds it from the ABORT markers in its log."""
    c = _cluster(storage="file", data_dir=str(tmp_path))
    p = _ready(c)
    p.begin_transaction()
    p.send(TOPIC, b"k", b"oops")
    c.run_for(500)
    _finish(c, p.abort_transaction())
    c.run_for(1000)
    tp = next(TopicPartition(TOPIC, n) for n in range(2) if c.replica(2, TopicPartition(TOPIC, n)).log_end_offset)
    before = c.replica(2, tp).log.txn_index_entries()
    c.crash_broker(2, "kill")
    os.remove(os.path.join(str(tmp_path), "broker-2", f"{tp.topic}-{tp.partition}", f"{0:020d}.txnindex"))
    c.restart_broker(2)
    c.run_for(2000)
    assert [tuple(e)[:3] for e in c.replica(2, tp).log.txn_index_entries()] == [tuple(e)[:3] for e in before]


def test_new_instance_fences_the_zombie_and_aborts_its_open_transaction():
    """Ensure initTransactions() of a new instance bumps the epoch, aborts the old open transaction and fences the old producer."""
    c = _cluster()
    committed, _ = _readers(c)
    old = _ready(c, "old")
    old.begin_transaction()
    old.send(TOPIC, b"k", b"from-zombie")
    c.run_for(1000)
    new = _ready(c, "new")
    assert new.producer_epoch == old.producer_epoch + 2  # one bump to fence and abort, one for the new instance
    assert c.events.of_kind("TransactionAborted")
    old.send(TOPIC, b"k", b"zombie-again")
    end = old.commit_transaction()
    assert c.run_until(lambda: end.done, 20_000)
    assert end.error in (INVALID_PRODUCER_EPOCH, "PRODUCER_FENCED") and old.fatal_error
    new.begin_transaction()
    new.send(TOPIC, b"k", b"from-new")
    _finish(c, new.commit_transaction())
    c.run_for(2000)
    values = [op.value for op in c.history.ops if op.process == "committed" and op.f == "poll" and op.type == "ok"]
    read = [v for value in values for pairs in value.values() for _, v in pairs]
    assert read == ["from-new"]
    with pytest.raises(TransactionError, match="fenced"):
        old.begin_transaction()


def test_transaction_timeout_aborts_and_fences():
    """Ensure a transaction open longer than transaction.timeout.ms is aborted by the coordinator with a bumped epoch."""
    c = _cluster()
    p = _ready(c, transaction_timeout_ms=3000)
    p.begin_transaction()
    p.send(TOPIC, b"k", b"slow")
    c.run_for(6000)
    aborted = c.events.of_kind("TransactionAborted")
    assert aborted and "transaction.timeout.ms=3000" in aborted[0].text
    end = p.commit_transaction()
    assert c.run_until(lambda: end.done, 20_000) and end.error is not None and p.fatal_error


def test_coordinator_failover_finishes_a_prepared_commit():
    """Ensure killing the transaction coordinator right after PrepareCommit lets the new coordinator write the markers."""
    c = _cluster()
    committed, _ = _readers(c)
    p = _ready(c)
    p.begin_transaction()
    for i in range(4):
        p.send(TOPIC, b"k%d" % i, b"v%d" % i)
    c.run_for(1000)
    coordinator = c.describe_transactions()[0]["coordinator"]
    end = p.commit_transaction()
    assert c.run_until(lambda: c.describe_transactions() and c.describe_transactions()[0]["state"] in
                       ("PrepareCommit", "CompleteCommit"), 5000, step_ms=1)
    c.crash_broker(coordinator, "kill")
    assert c.run_until(lambda: end.done, 30_000) and end.ok
    assert c.run_until(lambda: committed.records_consumed == 4, 40_000)
    state = c.describe_transactions()[0]
    assert state["coordinator"] != coordinator and state["state"] == "CompleteCommit"


def test_offsets_sent_in_a_transaction_appear_only_when_it_commits():
    """Ensure send_offsets_to_transaction offsets are invisible (UNSTABLE for read_committed) until commit, dropped on abort."""
    c = _cluster()
    group = "copier"
    p = _ready(c)
    tp = TopicPartition(TOPIC, 0)
    for commit, offset in ((False, 5), (True, 9)):
        p.begin_transaction()
        p.send(TOPIC, b"k", b"out-%d" % offset)
        sent = p.send_offsets_to_transaction({tp: offset}, group)
        _finish(c, sent)
        groups = c.describe_groups()
        assert not groups or str(tp) not in groups[0]["committed"]  # pending: not visible yet
        _finish(c, p.commit_transaction() if commit else p.abort_transaction())
        c.run_for(1000)
    committed = next(g for g in c.describe_groups() if g["group_id"] == group)["committed"]
    assert committed == {str(tp): 9}
    records = [r for b in c.brokers.values() for tp2, rep in b.replicas.items() if tp2.topic == OFFSETS_TOPIC
               for r in rep.log.read_records(0)]
    assert records  # the transactional commits are records of __consumer_offsets


def test_transaction_state_is_a_readable_compacted_topic():
    """Ensure __transaction_state holds Kafka-format records that decode to the transaction's states."""
    c = _cluster()
    p = _ready(c)
    p.begin_transaction()
    p.send(TOPIC, b"k", b"v")
    _finish(c, p.commit_transaction())
    c.run_for(1000)
    topic = c.topics[TRANSACTION_STATE_TOPIC]
    assert topic.log_config.compact and topic.min_insync_replicas == 2
    states = []
    for tp in c.partitions():
        if tp.topic == TRANSACTION_STATE_TOPIC:
            for rec in c.replica(c.leader_of(tp), tp).log.read_records(0):
                states.append(decode_txn_record(rec.key, rec.value)[1].state_name)
    assert states[-3:] == ["Ongoing", "PrepareCommit", "CompleteCommit"] and states[0] == "Empty"


def test_transactional_api_misuse_is_refused():
    """Ensure sends outside a transaction, double begins and bad configs raise TransactionError."""
    c = _cluster()
    p = _ready(c)
    with pytest.raises(TransactionError, match="in_transaction"):
        p.send(TOPIC, b"k", b"v")
    p.begin_transaction()
    with pytest.raises(TransactionError, match="ready"):
        p.begin_transaction()
    with pytest.raises(TransactionError, match="transactional_id"):
        TransactionalProducer(c, "x", "")
    with pytest.raises(TransactionError, match="transaction_timeout_ms"):
        TransactionalProducer(c, "y", "id", transaction_timeout_ms=10**9)
