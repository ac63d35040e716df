"""The history and the guarantees checker: one case per Jepsen anomaly, valid runs, and incremental == full pass."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_log.checker import (
    ANOMALY_NAMES,
    DEFINITIONS,
    Anomaly,
    Checker,
    CheckerContext,
    Verdict,
    check,
    likely_cause,
)
from core_log.errors import ConfigError
from core_log.history import History, HistoryError, HistoryFullError, Op

X = "machine.telemetry-3"
Y = "machine.telemetry-4"


class Run:
    """A hand-built history: every helper records an invoke and its completion."""

    def __init__(self, max_ops: int = 10_000) -> None:
        self.history = History(max_ops=max_ops)
        self.time_ms = 0

    def _tick(self) -> int:
        self.time_ms += 1
        return self.time_ms

    def send(self, value: str, offset: int | None, partition: str = X, process: str = "producer-1",
             type: str = "ok") -> Op:
        invoke = self.history.invoke(process, "send", (partition, value), self._tick())
        return self.history.complete(invoke, type, (partition, offset, value), self._tick())

    def poll(self, reads: dict, process: str = "consumer-1") -> Op:
        invoke = self.history.invoke(process, "poll", None, self._tick())
        return self.history.complete(invoke, "ok", reads, self._tick())

    def assign(self, *partitions: str, process: str = "consumer-1") -> Op:
        invoke = self.history.invoke(process, "assign", partitions, self._tick())
        return self.history.complete(invoke, "ok", partitions, self._tick())

    def crash(self, process: str) -> Op:
        invoke = self.history.invoke(process, "crash", None, self._tick())
        return self.history.complete(invoke, "info", None, self._tick())

    def verdict(self, final: bool = True, context: CheckerContext | None = None) -> Verdict:
        """The full pass's verdict, after asserting the incremental checker agrees."""
        full = check(self.history.ops, context, final=final)
        checker = Checker(context)
        for op in self.history.ops:
            checker.observe(op)
        assert checker.verdict(final) == full
        return full


def only(verdict: Verdict, name: str) -> tuple[Anomaly, ...]:
    """The instances of ``name``, asserting that no other anomaly fired."""
    assert set(verdict.anomalies) == {name}, verdict.counts
    assert not verdict.valid
    return verdict.anomalies[name]


def facts(anomaly: Anomaly) -> tuple:
    return (anomaly.name, anomaly.partition, anomaly.offsets, anomaly.values, anomaly.op_indexes)


# ── one case per anomaly (shapes from jepsen/test/jepsen/tests/kafka_test.clj) ─


def test_inconsistent_offsets_only_once_an_info_send_is_proven_written():
    """Ensure an offset reported with two values is inconsistent-offsets, and an unproven info send is not."""
    run = Run()
    run.send("x1", None, type="info")  # timed out: may or may not be at offset 0
    send_2 = run.send("x2", 0)
    assert run.verdict(final=False).valid
    poll = run.poll({X: [(0, "x1")]})  # so x1 was written, at offset 0, where x2 was acknowledged
    (anomaly,) = only(run.verdict(final=False), "inconsistent-offsets")
    assert facts(anomaly) == ("inconsistent-offsets", X, (0,), ("x1", "x2"), (send_2.index, poll.index))
    assert "Offset 0 of machine.telemetry-3" in anomaly.explanation and "x1, x2" in anomaly.explanation


def test_duplicate_when_one_value_sits_at_two_offsets():
    """Ensure a value acknowledged at one offset and read at another is a duplicate."""
    run = Run()
    send_a = run.send("a", 1)
    run.send("b", None, type="info")
    poll = run.poll({X: [(2, "b"), (3, "a")]})
    (anomaly,) = only(run.verdict(), "duplicate")
    assert facts(anomaly) == ("duplicate", X, (1, 3), ("a",), (send_a.index, poll.index))
    assert anomaly.explanation == (
        "Value a appears at 2 offsets of machine.telemetry-3 (1, 3), so it was written more than once.")


def test_lost_write_when_a_consumer_reads_past_an_acknowledged_value():
    """Ensure acknowledged values below an offset some consumer read, never read themselves, are lost writes."""
    run = Run()
    send_a = run.send("a", 0)
    send_b = run.send("b", 1)
    run.send("d", 3)
    run.send("c", None, type="info")
    poll = run.poll({X: [(2, "c")]})
    lost = only(run.verdict(final=False), "lost-write")
    assert [facts(a) for a in lost] == [
        ("lost-write", X, (0,), ("a",), (send_a.index, poll.index)),
        ("lost-write", X, (1,), ("b",), (send_b.index, poll.index)),
    ]
    assert lost[0].explanation == (
        "Value a was acknowledged at offset 0 of machine.telemetry-3, a consumer read past offset 0 "
        "(up to offset 2), and no consumer ever saw a.")
    # A read of a and b after all means they were not lost after all.
    run.poll({X: [(0, "a"), (1, "b")]}, process="consumer-2")
    assert run.verdict(final=False).valid


def test_lost_write_with_inconsistent_offsets_and_an_ack_after_the_read():
    """Ensure a value overwritten at its offset is still a lost write, also when its ack follows the read."""
    run = Run()
    send_a = run.send("a", 0)
    send_b = run.send("b", 0, process="producer-2")
    run.send("c", 2, process="producer-3")
    poll = run.poll({X: [(0, "b"), (2, "c")], Y: [(5, "y5")]})  # offset 1 of X is unknown: 0 -> 2 is no skip
    late = run.send("e", 1, partition=Y)  # acknowledged after a consumer already read offset 5 of Y
    verdict = run.verdict(final=False)
    assert set(verdict.anomalies) == {"inconsistent-offsets", "lost-write"}
    assert [facts(a) for a in verdict.anomalies["lost-write"]] == [
        ("lost-write", X, (0,), ("a",), (send_a.index, poll.index)),
        ("lost-write", Y, (1,), ("e",), (poll.index, late.index)),
    ]
    (conflict,) = verdict.anomalies["inconsistent-offsets"]
    assert facts(conflict) == ("inconsistent-offsets", X, (0,), ("a", "b"), (send_a.index, send_b.index))


def test_poll_skip_between_successive_polls_of_one_consumer():
    """Ensure a consumer's next poll starting past known offsets is a poll-skip; unknown gaps are not."""
    run = Run()
    poll_12 = run.poll({X: [(1, "a"), (2, "b")]})
    run.poll({X: [(3, "c")]}, process="consumer-2")
    poll_4 = run.poll({X: [(4, "d")]})
    run.send("f", 6)
    run.poll({X: [(6, "f")]}, process="consumer-3")
    poll_7 = run.poll({X: [(7, "g")]})  # offset 5 may be a gap in the log; 6 is known
    skips = only(run.verdict(), "poll-skip")
    assert [facts(a) for a in skips] == [
        ("poll-skip", X, (2, 4), ("b", "d"), (poll_12.index, poll_4.index)),
        ("poll-skip", X, (4, 7), ("d", "g"), (poll_4.index, poll_7.index)),
    ]
    assert skips[0].explanation == (
        "consumer-1 read offset 2 (b) of machine.telemetry-3 at the end of one poll and started its next "
        "poll at offset 4 (d), skipping 1 known offset (3).")


def test_poll_skip_appears_when_an_offset_inside_a_gap_is_discovered_later():
    """Ensure a gap between two polls becomes a skip once some client reports an offset inside it."""
    run = Run()
    first = run.poll({X: [(2, "b")]})
    second = run.poll({X: [(5, "e")]})
    assert run.verdict().valid  # offsets 3 and 4 may be compacted away or transaction markers
    run.send("c", 3, process="producer-2")
    run.poll({X: [(3, "c"), (4, "d")]}, process="consumer-2")
    (skip,) = only(run.verdict(), "poll-skip")
    assert facts(skip) == ("poll-skip", X, (2, 5), ("b", "e"), (first.index, second.index))
    assert "skipping 2 known offsets (3, 4)" in skip.explanation


def test_assign_and_crash_reset_the_consumer_position_checks():
    """Ensure an assign of the partition or a crash between two polls forgets the consumer's last read."""
    run = Run()
    run.poll({X: [(1, "a"), (2, "b")]})
    run.poll({X: [(3, "c")]}, process="consumer-2")
    run.assign(X)
    run.poll({X: [(4, "d")]})
    run.poll({X: [(6, "f")]}, process="consumer-3")
    run.crash("consumer-1")
    run.poll({X: [(7, "g")]})
    assert run.verdict().valid


def test_nonmonotonic_poll_when_a_consumer_goes_back_without_an_assign():
    """Ensure a consumer's next poll starting at or before its last read is a nonmonotonic-poll."""
    run = Run()
    poll_123 = run.poll({X: [(1, "a"), (2, "b"), (3, "c")]})
    poll_234 = run.poll({X: [(2, "b"), (3, "c"), (4, "d")]})
    (anomaly,) = only(run.verdict(), "nonmonotonic-poll")
    assert facts(anomaly) == ("nonmonotonic-poll", X, (3, 2), ("c", "b"), (poll_123.index, poll_234.index))
    # Re-reading the very offset it ended at counts too.
    poll_again = run.poll({X: [(4, "d")]})
    assert [facts(a) for a in run.verdict().anomalies["nonmonotonic-poll"]] == [
        ("nonmonotonic-poll", X, (3, 2), ("c", "b"), (poll_123.index, poll_234.index)),
        ("nonmonotonic-poll", X, (4, 4), ("d", "d"), (poll_234.index, poll_again.index)),
    ]


def test_assign_of_other_partitions_keeps_the_position_check():
    """Ensure an assign that names only other partitions does not excuse going back on this one."""
    run = Run()
    first = run.poll({X: [(3, "c")], Y: [(0, "y0")]})
    run.assign(Y)
    second = run.poll({X: [(1, "a")], Y: [(0, "y0")]})
    (anomaly,) = only(run.verdict(), "nonmonotonic-poll")
    assert facts(anomaly) == ("nonmonotonic-poll", X, (3, 1), ("c", "a"), (first.index, second.index))


def test_int_poll_skip_inside_one_poll():
    """Ensure one poll jumping over an offset another client saw is an int-poll-skip."""
    run = Run()
    run.send("a", None, type="info")
    run.send("b", None, type="info")
    run.send("d", None, type="info")
    poll_14 = run.poll({X: [(1, "a"), (4, "d")]})
    run.poll({X: [(2, "b")]}, process="consumer-2")
    (anomaly,) = only(run.verdict(), "int-poll-skip")
    assert facts(anomaly) == ("int-poll-skip", X, (1, 4), ("a", "d"), (poll_14.index,))
    assert anomaly.explanation == (
        "One poll by consumer-1 read offset 1 (a) of machine.telemetry-3 and then offset 4 (d), "
        "skipping 1 known offset (2).")


def test_int_nonmonotonic_poll_inside_one_poll():
    """Ensure one poll going backwards, or repeating an offset, is an int-nonmonotonic-poll."""
    run = Run()
    poll_31 = run.poll({X: [(3, "c"), (1, "a")]})
    poll_233 = run.poll({X: [(2, "b"), (3, "c"), (3, "c")]}, process="consumer-2")
    found = only(run.verdict(), "int-nonmonotonic-poll")
    assert [facts(a) for a in found] == [
        ("int-nonmonotonic-poll", X, (3, 1), ("c", "a"), (poll_31.index,)),
        ("int-nonmonotonic-poll", X, (3, 3), ("c", "c"), (poll_233.index,)),
    ]


def test_nonmonotonic_send_when_a_later_send_lands_lower():
    """Ensure a producer's later-invoked send acknowledged below its previous one is a nonmonotonic-send."""
    run = Run()
    run.send("c", 3)
    send_d = run.send("d", 4)
    send_a = run.send("a", 1)
    run.send("b", 2)
    (anomaly,) = only(run.verdict(final=False), "nonmonotonic-send")
    assert facts(anomaly) == ("nonmonotonic-send", X, (4, 1), ("d", "a"), (send_d.index, send_a.index))
    assert anomaly.explanation == (
        "producer-1 sent d and then a to machine.telemetry-3, but d landed at offset 4 and a at offset 1, "
        "out of send order.")


def test_nonmonotonic_send_follows_invoke_order_not_completion_order():
    """Ensure pipelined sends are judged in the order they were invoked, whatever order their acks came in."""
    history = History()
    first = history.invoke("producer-1", "send", (X, "a"), 1)
    second = history.invoke("producer-1", "send", (X, "b"), 2)
    third = history.invoke("producer-1", "send", (X, "c"), 3)
    b_ok = history.complete(second, "ok", (X, 5, "b"), 4)
    a_ok = history.complete(first, "ok", (X, 6, "a"), 5)  # a was sent first but landed after b
    history.complete(third, "ok", (X, 7, "c"), 6)
    verdict = check(history.ops, final=False)
    (anomaly,) = only(verdict, "nonmonotonic-send")
    assert facts(anomaly) == ("nonmonotonic-send", X, (6, 5), ("a", "b"), (b_ok.index, a_ok.index))
    checker = Checker()
    history.subscribe(checker.observe, replay=True)
    assert checker.verdict() == verdict


def test_nonmonotonic_send_pairs_are_rejudged_when_a_middle_send_completes_late():
    """Ensure a send completing between two earlier-judged neighbours replaces their pair with its own two."""
    history = History()
    checker = Checker()
    history.subscribe(checker.observe)
    invokes = [history.invoke("producer-1", "send", (X, v), 1) for v in "abc"]
    a_ok = history.complete(invokes[0], "ok", (X, 5, "a"), 2)
    c_ok = history.complete(invokes[2], "ok", (X, 3, "c"), 3)
    (anomaly,) = only(checker.verdict(), "nonmonotonic-send")
    assert facts(anomaly)[2:] == ((5, 3), ("a", "c"), (a_ok.index, c_ok.index))
    b_ok = history.complete(invokes[1], "ok", (X, 4, "b"), 4)
    verdict = checker.verdict()
    assert verdict == check(history.ops, final=False)
    assert [facts(a)[2:] for a in verdict.anomalies["nonmonotonic-send"]] == [
        ((4, 3), ("b", "c"), (c_ok.index, b_ok.index)),  # op indexes ascend
        ((5, 4), ("a", "b"), (a_ok.index, b_ok.index)),
    ]


def test_producer_crash_starts_a_new_send_sequence():
    """Ensure sends after a producer restart are not compared with sends from before it."""
    run = Run()
    run.send("c", 3)
    run.crash("producer-1")
    run.send("a", 1)
    run.send("b", 2, partition=Y)
    assert run.verdict(final=False).valid


def test_unseen_only_in_final_verdicts():
    """Ensure acknowledged values never read are unseen in a final verdict only, and vanish once read."""
    run = Run()
    run.poll({})
    run.send("a", 0)
    send_b = run.send("b", 1)
    run.poll({X: [(0, "a")]})
    assert run.verdict(final=False).valid
    (anomaly,) = only(run.verdict(final=True), "unseen")
    assert facts(anomaly) == ("unseen", X, (1,), ("b",), (send_b.index,))
    assert anomaly.explanation == (
        "Value b was acknowledged at offset 1 of machine.telemetry-3, but no consumer ever read it.")
    run.poll({X: [(1, "b")]})
    final = run.verdict(final=True)
    assert final.valid and (final.acked, final.consumed) == (2, 2)


# ── valid histories ──────────────────────────────────────────────────────────


def test_sparse_offsets_are_not_skips():
    """Ensure a consumer following a log with holes (compaction, markers) is valid."""
    run = Run()
    for value, offset in (("a", 0), ("b", 2), ("c", 5), ("d", 9)):
        run.send(value, offset)
    run.poll({X: [(0, "a"), (2, "b")]})
    run.poll({X: [(5, "c")]})
    run.poll({X: [(9, "d")]})
    verdict = run.verdict(final=True)
    assert verdict.valid and verdict.anomalies == {} and verdict.counts == {}


def test_consumer_rereading_after_assign_or_crash_is_valid():
    """Ensure a consumer that seeks back after an assign, or starts over after a crash, is fine."""
    run = Run()
    for offset, value in enumerate("abcd"):
        run.send(value, offset)
    run.poll({X: [(0, "a"), (1, "b"), (2, "c"), (3, "d")]})
    run.assign(X, Y)  # seek to the beginning
    run.poll({X: [(0, "a"), (1, "b")]})
    run.crash("consumer-1")
    run.poll({X: [(0, "a")]})
    assert run.verdict(final=True).valid


def test_info_sends_observed_count_as_written_and_unobserved_ones_prove_nothing():
    """Ensure an observed info send is consumed like any write, and an unobserved one is never lost nor unseen."""
    run = Run()
    run.send("a", 0)
    run.send("b", None, type="info")  # indeterminate, but a consumer will see it at offset 1
    run.send("c", None, type="info")  # indeterminate and never seen: it may never have been written
    run.send("d", None, type="fail")
    run.send("e", 3)
    run.poll({X: [(0, "a"), (1, "b"), (3, "e")]})
    verdict = run.verdict(final=True)
    assert verdict.valid
    assert (verdict.acked, verdict.consumed) == (2, 3)


def test_empty_history_is_valid():
    """Ensure nothing happened is a valid verdict with zero counts (unlike Jepsen, no minimum workload)."""
    assert check([]) == Checker().verdict(final=True) == Verdict(True, {}, {}, 0, 0, final=True)


# ── results, causes, definitions ─────────────────────────────────────────────


def test_verdict_json_has_the_simulate_contract():
    """Ensure Verdict.to_json carries valid, anomaly counts, acked, consumed and per-anomaly details."""
    run = Run()
    run.send("a", 0)
    run.send("b", 1)
    run.poll({X: [(1, "b")]})
    document = json.loads(json.dumps(run.verdict(final=True, context=CheckerContext(acks="1")).to_json()))
    assert document["valid"] is False
    assert document["anomalies"] == {"lost-write": 1, "unseen": 1}
    assert (document["acked"], document["consumed"]) == (2, 1)
    assert document["details"]["lost-write"][0]["offsets"] == [0]
    assert document["details"]["lost-write"][0]["likely_cause"].startswith("acks=1 acknowledged the write")


@pytest.mark.parametrize("name, context, expected", [
    ("lost-write", CheckerContext(acks="1", replication_factor=3),
     "acks=1 acknowledged the write once the leader alone had it; that leader failed before a follower copied "
     "it, and the new leader never had it."),
    ("lost-write", CheckerContext(unclean_leader_election=True, replication_factor=3, min_insync_replicas=2),
     "unclean.leader.election.enable let"),
    ("lost-write", CheckerContext(replication_factor=3, min_insync_replicas=2, flush_messages_never=True),
     "every replica lost power before flushing"),
    ("duplicate", CheckerContext(enable_idempotence=False, retries=3),
     "a produce response was lost and the producer retried; without enable.idempotence the broker cannot "
     "recognise the retry, so the batch was written twice."),
    ("nonmonotonic-send", CheckerContext(enable_idempotence=False, max_in_flight=5),
     "with max.in.flight.requests.per.connection=5 and enable.idempotence off"),
    ("inconsistent-offsets", CheckerContext(acks="1", replication_factor=3), "acks=1 acknowledged records"),
    ("inconsistent-offsets", CheckerContext(unclean_leader_election=True), "unclean leader election"),
    ("duplicate", None, "the same record was appended twice"),
])
def test_likely_cause_follows_the_config(name, context, expected):
    """Ensure the likely cause names the mechanism the config makes most plausible, or a generic one."""
    assert expected in likely_cause(name, context)


def test_every_anomaly_has_a_definition_and_a_cause():
    """Ensure each anomaly name has a one-sentence definition and a likely cause under any context."""
    assert sorted(DEFINITIONS) == list(ANOMALY_NAMES)
    for name in ANOMALY_NAMES:
        assert DEFINITIONS[name].endswith(".") and DEFINITIONS[name].count(". ") == 0
        for context in (None, CheckerContext(), CheckerContext(acks="0", enable_idempotence=False)):
            assert likely_cause(name, context).endswith(".")
    with pytest.raises(ValueError, match="unknown anomaly"):
        likely_cause("G2-item", None)


def test_checker_context_validates_and_reads_kafka_names():
    """Ensure the context rejects bad settings and maps Kafka's config names."""
    with pytest.raises(ConfigError, match="acks"):
        CheckerContext(acks="2")
    with pytest.raises(ConfigError, match="max_in_flight"):
        CheckerContext(max_in_flight=0)
    context = CheckerContext.from_kafka_config({
        "acks": -1, "enable.idempotence": False, "max.in.flight.requests.per.connection": 2,
        "min.insync.replicas": 2, "replication.factor": 3, "flush.messages": 1})
    assert context == CheckerContext(acks="all", enable_idempotence=False, max_in_flight=2,
                                     min_insync_replicas=2, replication_factor=3, flush_messages_never=False)
    with pytest.raises(ConfigError, match="linger.ms"):
        CheckerContext.from_kafka_config({"linger.ms": 5})


def test_checker_rejects_ops_out_of_order():
    """Ensure the incremental checker refuses a skipped or repeated op instead of judging a partial history."""
    run = Run()
    run.send("a", 0)
    checker = Checker()
    with pytest.raises(ValueError, match="expected op 0 next, got op 1"):
        checker.observe(run.history.ops[1])


# ── the history ──────────────────────────────────────────────────────────────


def test_history_records_invokes_completions_and_pending():
    """Ensure ops get consecutive indexes, completions name their invoke, and pending lists open invokes."""
    history = History()
    seen: list[Op] = []
    unsubscribe = history.subscribe(seen.append)
    send = history.invoke("producer-1", "send", [X, "a"], 5)
    poll = history.invoke("consumer-1", "poll", None, 5)
    assert history.pending() == [send, poll]
    ok = history.complete(send, "ok", (X, 0, "a"), 7)
    assert (ok.index, ok.type, ok.f, ok.process, ok.invoke_index, ok.value) == (2, "ok", "send", "producer-1", 0,
                                                                                (X, 0, "a"))
    assert history.pending() == [poll]
    unsubscribe()
    history.complete(poll, "ok", {X: [[0, "a"]]}, 8)
    assert seen == [send, poll, ok]
    assert history.ops[3].value == {X: ((0, "a"),)}
    assert len(history.ops) == 4 and list(history.ops) == history.ops[:]
    assert not hasattr(history.ops, "append")


@pytest.mark.parametrize("action, message", [
    (lambda h, s: h.complete(s, "done", (X, 0, "a"), 2), "type must be one of"),
    (lambda h, s: h.complete(Op(9, "producer-1", "invoke", "send", 1, (X, "a")), "ok", (X, 0, "a"), 2),
     "not an invoke recorded"),
    (lambda h, s: h.complete(Op(0, "producer-2", "invoke", "send", 1, (X, "a")), "ok", (X, 0, "a"), 2),
     "belongs to 'producer-1', not 'producer-2'"),
    (lambda h, s: h.complete_by("producer-2", 0, "ok", (X, 0, "a"), 2), "belongs to 'producer-1'"),
    (lambda h, s: h.complete(s, "ok", (X, 0, "b"), 2), "does not match its invoke"),
    (lambda h, s: h.complete(s, "ok", (X, -1, "a"), 2), "offset must be an integer >= 0"),
    (lambda h, s: h.complete(s, "info", (X, 3, "a"), 2), "has no offset"),
    (lambda h, s: h.complete(s, "ok", (X, 0, "a"), 0), "never goes backwards"),
    (lambda h, s: h.invoke("consumer-1", "commit", None, 2), "f must be one of"),
    (lambda h, s: h.invoke("consumer-1", "poll", {X: []}, 2), "must be None"),
    (lambda h, s: h.complete(h.invoke("consumer-1", "poll", None, 2), "ok", {X: [(1,)]}, 3), r"must be \(offset"),
    (lambda h, s: h.complete(h.invoke("consumer-1", "crash", None, 2), "ok", None, 3), "completes as 'info'"),
])
def test_history_rejects_malformed_ops(action, message):
    """Ensure a malformed op raises a ValueError naming the problem, and nothing is appended."""
    history = History()
    send = history.invoke("producer-1", "send", (X, "a"), 1)
    before = len(history.ops)
    with pytest.raises(ValueError, match=message):
        action(history, send)
    assert len(history.ops) <= before + 1  # at most the helper invoke some cases record first
    assert isinstance(HistoryError("x"), ValueError)


def test_history_rejects_a_second_completion():
    """Ensure an invoke can be completed only once."""
    history = History()
    send = history.invoke("producer-1", "send", (X, "a"), 1)
    history.complete(send, "fail", (X, None, "a"), 2)
    with pytest.raises(HistoryError, match="already completed"):
        history.complete(send, "ok", (X, 0, "a"), 3)
    assert len(history.ops) == 2


def test_history_json_round_trip():
    """Ensure a history saved as plain JSON loads back op for op, and judges the same."""
    run = Run()
    run.send("a", 0)
    run.send("b", None, type="info", partition=Y)
    run.assign(X, Y)
    run.poll({X: [(0, "a")], Y: []})
    run.crash("consumer-1")
    pending = run.history.invoke("producer-2", "send", (Y, "c"), 99)
    text = json.dumps(run.history.to_json())
    loaded = History.from_json(json.loads(text))
    assert list(loaded.ops) == list(run.history.ops)
    assert loaded.pending() == [pending]
    assert check(loaded.ops) == check(run.history.ops)
    with pytest.raises(HistoryError, match="not a saved history"):
        History.from_json({"ops": []})


def test_history_max_ops_is_a_named_limit():
    """Ensure appending past max_ops raises HistoryFullError and drops nothing already recorded."""
    history = History(max_ops=3)
    send = history.invoke("producer-1", "send", (X, "a"), 1)
    history.invoke("producer-1", "send", (X, "b"), 1)
    history.complete(send, "ok", (X, 0, "a"), 2)
    with pytest.raises(HistoryFullError, match="max_ops=3"):
        history.invoke("consumer-1", "poll", None, 3)
    assert len(history.ops) == 3 and [op.index for op in history.pending()] == [1]
    with pytest.raises(ConfigError):
        History(max_ops=0)


# ── incremental == full pass, on random histories ────────────────────────────

PRODUCERS = ("producer-1", "producer-2")
CONSUMERS = ("consumer-1", "consumer-2")
PARTITIONS = ("t-0", "t-1")
CONTEXTS = (None, CheckerContext(acks="1", replication_factor=3),
            CheckerContext(enable_idempotence=False, max_in_flight=5, unclean_leader_election=True))

steps = st.lists(
    st.tuples(st.integers(0, 9), st.integers(0, 7), st.integers(0, 7), st.integers(0, 9),
              st.lists(st.tuples(st.integers(0, 1), st.integers(0, 9), st.integers(0, 9)), max_size=4)),
    min_size=8, max_size=50)


class Builder:
    """Turns integers into a well-formed, adversarial history: conflicting offsets, gaps, re-reads, crashes."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.sent: list[tuple[str, str]] = []  # (partition, value) of every send invoked
        self.next_offset = {p: 0 for p in PARTITIONS}
        self.position: dict[tuple[str, str], int] = {}  # (consumer, partition) -> next offset it expects

    def step(self, time_ms: int, kind: int, i: int, j: int, k: int, reads: list) -> None:
        history, pending = self.history, self.history.pending()
        if kind in (0, 1) or (kind in (2, 3, 4) and not pending):
            self.sent.append((PARTITIONS[j % 2], f"v{len(self.sent)}"))
            tag = ("txn",) if kind == 1 and k % 2 else ()  # some sends belong to transactions
            history.invoke(PRODUCERS[i % 2], "send", self.sent[-1] + tag, time_ms)
        elif kind in (2, 3, 4):
            self.complete(pending[i % len(pending)], time_ms, j, k, reads)
        elif kind in (5, 6, 7):  # a poll that completes at once, as a consumer's poll() does
            self.complete(history.invoke(CONSUMERS[i % 2], "poll", None, time_ms), time_ms, j, k, reads)
        elif kind == 8 and j % 2:  # a poll left in flight, completed by a later step
            history.invoke(CONSUMERS[i % 2], "poll", None, time_ms)
        elif kind == 8:
            partitions = (PARTITIONS[:1], PARTITIONS[1:], PARTITIONS, ())[k % 4]
            history.invoke(CONSUMERS[i % 2], "assign", partitions, time_ms)
        else:
            history.invoke((PRODUCERS + CONSUMERS)[i % 4], "crash", None, time_ms)

    def complete(self, op: Op, time_ms: int, j: int, k: int, reads: list) -> None:
        if op.f == "send":
            partition, value = op.value[:2]
            type = ("ok", "ok", "ok", "info", "fail")[j % 5]
            if type != "ok":
                offset = None
            elif k < 6:  # mostly the log's next offset, sometimes leaving a gap
                offset = self.next_offset[partition] + (k == 5)
                self.next_offset[partition] = offset + 1
            else:  # a reused or stale offset
                offset = k - 6
            self.history.complete(op, type, (partition, offset, value), time_ms)
        elif op.f == "poll" and j % 6 == 5:
            self.history.complete(op, ("fail", "info")[k % 2], None, time_ms)
        elif op.f == "poll":
            polled: dict[str, list[tuple[int, str]]] = {}
            for p, step, choice in reads:
                partition = PARTITIONS[p]
                delta = (0, 0, 0, 0, 1, 2, 3, -1, -3, None)[step]  # mostly the next offset
                here = self.position.get((op.process, partition), 0)
                offset = choice if delta is None else max(0, here + delta)
                self.position[(op.process, partition)] = offset + 1
                candidates = [v for q, v in self.sent if q == partition]
                value = candidates[choice % len(candidates)] if candidates and choice < 8 else f"u{choice}"
                polled.setdefault(partition, []).append((offset, value))
            self.history.complete(op, "ok", polled, time_ms)
        elif op.f == "assign":
            type = ("ok", "info", "fail")[j % 3]
            if type != "fail":
                for partition in op.value:
                    self.position[(op.process, partition)] = k % 3  # seek near the beginning
            self.history.complete(op, type, op.value, time_ms)
        else:
            for partition in PARTITIONS:
                self.position.pop((op.process, partition), None)
            self.history.complete(op, "info", None, time_ms)


def build(history: History, plan: list[tuple]) -> None:
    builder = Builder(history)
    for time_ms, (kind, i, j, k, reads) in enumerate(plan):
        builder.step(time_ms, kind, i, j, k, reads)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plan=steps, which=st.integers(0, len(CONTEXTS) - 1))
def test_incremental_verdict_equals_full_pass_after_every_op(plan, which):
    """Ensure the incremental checker's verdict after every op equals a full pass over that prefix."""
    context = CONTEXTS[which]
    history = History()
    checker = Checker(context)
    history.subscribe(checker.observe)
    build(history, plan)
    ops = history.ops
    # Re-feed op by op so each prefix is judged exactly when it was complete.
    replay = Checker(context)
    for i, op in enumerate(ops):
        replay.observe(op)
        assert replay.verdict(final=False) == check(ops[:i + 1], context, final=False)
        if i % 4 == 3:
            assert replay.verdict(final=True) == check(ops[:i + 1], context, final=True)
    for final in (False, True):
        assert checker.verdict(final) == replay.verdict(final) == check(ops, context, final=final)


def test_delivery_stats_count_reads_and_sink_applications():
    """Ensure consume counts and sink duplicates/losses are counted the same by Checker and check()."""
    h = History()
    s = h.invoke("p", "send", ("t-0", "a"), 0)
    h.complete(s, "ok", ("t-0", 0, "a"), 1)
    s = h.invoke("p", "send", ("t-0", "b"), 2)
    h.complete(s, "ok", ("t-0", 1, "b"), 3)
    for process in ("c1", "c2"):
        poll = h.invoke(process, "poll", None, 5)
        h.complete(poll, "ok", {"t-0": ((0, "a"),)}, 5)
    for typ in ("ok", "ok", "fail"):
        w = h.invoke("c1", "sink", ("t-0", "a"), 7)
        h.complete(w, typ, ("t-0", "a"), 7)
    checker = Checker()
    h.subscribe(checker.observe, replay=True)
    verdict = checker.verdict(final=True)
    assert verdict == check(h.ops)
    assert verdict.stats["consume_counts"] == {"2": 1}
    assert verdict.stats["sink"] == {"writes": 3, "applied": 2, "ignored_repeats": 1, "duplicates": 1,
                                     "values_applied_twice_or_more": 1, "lost": 1}
    assert checker.stats.consume_counts(["c1"]) == {1: 1}


def test_history_pickles_with_sealed_blocks_and_goes_on_recording(monkeypatch):
    """Ensure a pickled history (old ops sealed into OpBlocks) comes back equal, with its pending invokes being the
    list's own ops, and can complete them and record more; pickling again reuses the sealed blocks."""
    import pickle

    import core_log.history as history_module

    monkeypatch.setattr(history_module, "OPS_PER_BLOCK", 4)
    h = History()
    invokes = [h.invoke("p", "send", ("t-0", f"v{i}"), i) for i in range(7)]
    for op in invokes[:5]:
        h.complete(op, "ok", ("t-0", op.index, op.value[1]), 10)
    copy = pickle.loads(pickle.dumps(h))
    assert list(copy.ops) == list(h.ops) and len(h._sealed) == 3  # 12 ops: three full blocks of four
    assert all(op is copy.ops[op.index] for op in copy.pending())
    sealed_before = list(h._sealed)
    pickle.dumps(h)
    assert all(a is b for a, b in zip(sealed_before, h._sealed))
    for history in (h, copy):
        for op in history.pending():
            history.complete(op, "info", ("t-0", None, op.value[1]), 20)
        history.invoke("p", "send", ("t-0", "later"), 30)
    assert list(copy.ops) == list(h.ops)
