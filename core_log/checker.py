"""The guarantees checker: Jepsen's Kafka analysis, in Jepsen's words, live.

A learner who crashes a leader under ``acks=1`` should not be told "something
went wrong"; they should be told *which promise broke, where, and probably
why*: "Value p1-42 was acknowledged at offset 17 of machine.telemetry-3, a
consumer read past offset 17 (up to offset 20), and no consumer ever saw
p1-42." This module reads a :mod:`core_log.history` — only what clients were
told, never the brokers' own state — and names every anomaly the way
``jepsen.tests.kafka/analysis`` names it, so what the lab shows is what Jepsen
reports about real Kafka-compatible systems.

The anomalies (see :data:`DEFINITIONS` for the one-line version the UI shows):

* ``inconsistent-offsets`` — one offset of a partition maps to two or more values;
* ``duplicate`` — one value sits at two or more offsets of a partition;
* ``lost-write`` — an acknowledged value is missing although consumers read past it;
* ``poll-skip`` / ``nonmonotonic-poll`` — between two successive polls of one
  consumer (no assign or crash in between), its position jumped over known
  offsets / went back (or stayed put);
* ``int-poll-skip`` / ``int-nonmonotonic-poll`` — the same inside one poll;
* ``nonmonotonic-send`` — a producer's later-invoked send landed at or before
  the offset of its previous one;
* ``unseen`` — (final verdicts only) acknowledged values no consumer ever read;
* ``G1a`` — a poll read a value whose send failed or whose transaction aborted;
* ``precommitted-read`` — a poll read a transactional value before its
  transaction committed.

Offsets may be sparse (compaction, transaction markers), so "one past" is
measured in *known* offsets: the index distance from offset ``a`` to offset
``b`` is the number of offsets known (from any ok send or ok poll) strictly
between them, plus one. A gap that no client ever saw filled is not a skip;
if an offset inside it turns up later, the skip is reported from then on.

Two implementations with one meaning:

* :class:`Checker` is incremental. Subscribe ``checker.observe`` to a
  ``History`` and ask :meth:`Checker.verdict` after every op: it keeps
  per-partition state (known offsets in a sorted list, offset → value,
  value → offset, what was read, how far consumers have read, each consumer's
  last read, each producer's sends) and only re-evaluates what a new op can
  change — an open gap between two polls is filed under the two known offsets
  it lies between, and becomes a skip when an offset is discovered inside it.
* :func:`check` is a plain fold over a whole history, written separately and
  without shortcuts. It is the oracle: a property test feeds random histories
  to both and requires identical verdicts after every op.

Validity: the lab's workload is non-transactional and assign-mode, so, as in
Jepsen for that workload, every anomaly above makes a verdict invalid.

Differences from Kafka/Jepsen:

* Only the passes that apply to one micro-op per op are ported. There is no
  Elle cycle search (``G0``, ``G1c``), and no ``int-send-skip`` or
  ``int-nonmonotonic-send`` (they need multi-send ops). A transaction's sends
  are separate ops whose ``ok``/``fail`` arrives at commit/abort; ``G1a`` and
  ``precommitted-read`` are judged per read value against that outcome.
* Jepsen turns offsets into a dense *index* by picking one value per offset
  (nondeterministically when offsets conflict). We keep raw offsets and count
  known offsets between them instead, so conflicts never change a verdict.
* ``lost-write`` needs an ok poll that read an offset strictly above the
  acknowledged one; Jepsen bounds by the earliest index of the highest value
  read and also counts other values at that very index. The two differ only
  where offsets conflict or a value sits twice in the log, and then
  ``inconsistent-offsets`` or ``duplicate`` is reported anyway. Only ok sends
  can be lost here: an ``info`` send counts as written only once a poll
  observed it, and then it was not lost.
* ``nonmonotonic-send`` compares a producer's consecutive *ok* sends to a
  partition in invoke order, using their acknowledged offsets; Jepsen also
  places ``info`` sends via the version order. A producer ``crash`` starts a
  new sequence (Jepsen gives a crashed process a new id).
* ``assign`` forgets the consumer's last reads of the partitions it names
  (our consumers re-position on assign, e.g. seek to the beginning), and
  ``crash`` forgets all of them; Jepsen's ``:assign`` keeps the state of keys
  it still covers. There is no ``:rebalance-log`` (no consumer groups yet).
* Successive polls of a consumer are taken in completion order. Polls that
  end ``fail`` or ``info`` carry no reads and are ignored.
* ``unseen`` is reported per acknowledged message (Jepsen: counts per key over
  time) and, as in Jepsen, includes values also reported as lost writes.
* ``op_indexes`` name completion ops (their ``invoke_index`` leads to the
  invoke). For ``inconsistent-offsets`` and ``duplicate`` they name, for each
  value (offset), the first op that reported it, so an anomaly stays put
  while more consumers re-read the same records.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from core_log.errors import ConfigError
from core_log.history import Op

ANOMALY_NAMES = (
    "G1a",
    "duplicate",
    "inconsistent-offsets",
    "int-nonmonotonic-poll",
    "int-poll-skip",
    "lost-write",
    "nonmonotonic-poll",
    "nonmonotonic-send",
    "poll-skip",
    "precommitted-read",
    "unseen",
)
SKIPPED_OFFSETS_SHOWN = 5  # how many skipped offsets an explanation lists before "…"

DEFINITIONS: dict[str, str] = {
    "G1a": (
        "Aborted read: a consumer read a record whose write failed or whose transaction aborted, "
        "so it saw data that officially never existed."),
    "precommitted-read": (
        "A consumer read a transactional record before its transaction committed, "
        "so it acted on data that could still have been aborted."),
    "duplicate": (
        "One record appears at more than one offset of a partition: the leader appended it twice, "
        "usually because a producer retried a batch the broker did not recognise as a retry."),
    "inconsistent-offsets": (
        "Clients disagree about which record sits at one offset of a partition: a leader's log was truncated "
        "below what it had acknowledged or served up to its high watermark (HW), and the offset was reused."),
    "int-nonmonotonic-poll": (
        "Within one poll, a consumer's consecutive records from a partition went backwards or repeated "
        "an offset, although a fetch returns each partition's log in offset order."),
    "int-poll-skip": (
        "Within one poll, a consumer's consecutive records from a partition jumped over offsets that "
        "other clients saw in that partition's log."),
    "lost-write": (
        "A record the leader acknowledged (with acks=1 once it had it, with acks=all once every ISR member "
        "had it) is gone: consumers read past its offset, yet none ever received it."),
    "nonmonotonic-poll": (
        "A consumer's next poll started at or before an offset it had already read, without an assign or "
        "restart: its fetch position moved backwards."),
    "nonmonotonic-send": (
        "A producer's later send to a partition was appended at or before the offset of its earlier send: "
        "the leader's log does not keep that producer's send order."),
    "poll-skip": (
        "A consumer's next poll started beyond offsets that exist in the partition, without an assign or "
        "restart: records between its two polls were skipped."),
    "unseen": (
        "At the end of the run, a record the leader acknowledged was never read by any consumer; this cannot "
        "tell loss from delay, but the run cannot count as safe."),
}


# ── config facts and likely causes ──────────────────────────────────────────


@dataclass(frozen=True)
class CheckerContext:
    """The Kafka settings that decide which cause of an anomaly is most plausible.

    Defaults are Kafka's own (producer: ``acks=all``, idempotence on, retries
    MAX_INT, 5 in flight; broker: replication factor 1, ``min.insync.replicas=1``,
    clean elections, ``flush.messages`` never).
    """

    acks: str = "all"  # "0", "1" or "all"
    enable_idempotence: bool = True
    retries: int = 2147483647
    max_in_flight: int = 5  # max.in.flight.requests.per.connection
    min_insync_replicas: int = 1
    replication_factor: int = 1
    unclean_leader_election: bool = False  # unclean.leader.election.enable
    flush_messages_never: bool = True  # flush.messages left at Long.MAX_VALUE: no fsync per write

    def __post_init__(self) -> None:
        if self.acks not in ("0", "1", "all"):
            raise ConfigError(f"acks must be '0', '1' or 'all', got {self.acks!r}")
        for name in ("enable_idempotence", "unclean_leader_election", "flush_messages_never"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name, low in (("retries", 0), ("max_in_flight", 1), ("min_insync_replicas", 1),
                          ("replication_factor", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")

    @classmethod
    def from_kafka_config(cls, config: Mapping[str, Any]) -> "CheckerContext":
        """Build from Kafka's config names (producer and topic settings in one mapping)."""
        known = {
            "acks": "acks",
            "enable.idempotence": "enable_idempotence",
            "retries": "retries",
            "max.in.flight.requests.per.connection": "max_in_flight",
            "min.insync.replicas": "min_insync_replicas",
            "replication.factor": "replication_factor",
            "unclean.leader.election.enable": "unclean_leader_election",
        }
        kwargs: dict[str, Any] = {}
        for kafka_name in sorted(config):
            value = config[kafka_name]
            if kafka_name in known:
                kwargs[known[kafka_name]] = str(value) if kafka_name == "acks" else value
            elif kafka_name == "flush.messages":
                kwargs["flush_messages_never"] = value >= (1 << 63) - 1
            else:
                raise ConfigError(f"{kafka_name!r} is not a setting the checker uses")
        if kwargs.get("acks") == "-1":
            kwargs["acks"] = "all"
        return cls(**kwargs)

    @property
    def loses_acknowledged_data_on_failover(self) -> bool:
        """Whether a single leader failure can drop acknowledged records."""
        return (self.acks != "all" or self.min_insync_replicas < 2 or self.replication_factor < 2
                or self.unclean_leader_election)


_GENERIC_CAUSE = {
    "G1a": (
        "isolation.level=read_uncommitted returns records of open and aborted transactions; "
        "read_committed consumers skip aborted ones using the aborted-transaction index."),
    "precommitted-read": (
        "isolation.level=read_uncommitted reads up to the high watermark, past open transactions; "
        "read_committed stops at the last stable offset until the COMMIT marker is written."),
    "duplicate": (
        "the same record was appended twice: a retry the broker did not recognise as one, for example "
        "after the producer restarted with a new producer id."),
    "inconsistent-offsets": (
        "replicas disagree about this offset: after a leader change a replica kept a divergent tail instead "
        "of truncating to the new leader by leader epoch (KIP-101/279)."),
    "int-nonmonotonic-poll": (
        "one fetch response returned records out of offset order or twice: the broker served the same batch "
        "twice or stitched together the logs of two leaders."),
    "int-poll-skip": (
        "one fetch response left out records that other clients saw at those offsets: the replica that "
        "served it had a log that differed from the others'."),
    "lost-write": (
        "an acknowledged record disappeared after a leader change: the new leader's log did not contain it "
        "(compare the leader epochs and the ISR at the time of the ack)."),
    "nonmonotonic-poll": (
        "the consumer's fetch position moved backwards without an assign or restart, for example "
        "auto.offset.reset=earliest after OFFSET_OUT_OF_RANGE, or a fetch response applied twice."),
    "nonmonotonic-send": (
        "a later send landed before an earlier one: batches were reordered by a retry, or a leader change "
        "reused the earlier send's offset."),
    "poll-skip": (
        "the consumer's fetch position jumped forward without an assign or restart, for example "
        "auto.offset.reset=latest after OFFSET_OUT_OF_RANGE when truncation or retention removed its position."),
    "unseen": (
        "an acknowledged record was never read: the consumers stopped before reaching it (lag), or it was "
        "lost where no later read could prove it."),
}

_UNCLEAN = (
    "unclean.leader.election.enable let an out-of-sync replica become leader after every ISR member was down; "
    "it never had the acknowledged record, and the other replicas truncated their logs to match it.")


def likely_cause(name: str, context: CheckerContext | None) -> str:
    """One sentence naming the most plausible cause of anomaly ``name`` under ``context``.

    Follows the fault → verdict table of the reference (§5); without a
    context (or when no rule fits) the sentence is the generic cause.
    """
    if name not in _GENERIC_CAUSE:
        raise ValueError(f"unknown anomaly {name!r}; expected one of {ANOMALY_NAMES}")
    c = context
    if c is None:
        return _GENERIC_CAUSE[name]
    if name == "lost-write":
        if c.unclean_leader_election:
            return _UNCLEAN
        if c.acks == "1":
            return ("acks=1 acknowledged the write once the leader alone had it; that leader failed before "
                    "a follower copied it, and the new leader never had it.")
        if c.acks == "0":
            return ("acks=0 counted the write as sent without waiting for any broker, so nothing guaranteed "
                    "that a replica kept it.")
        if c.replication_factor < 2:
            if c.flush_messages_never:
                return ("the partition's only replica lost power before flushing the write to disk "
                        "(flush.messages never leaves it in the page cache), so it was gone after restart.")
            return "the partition has a single replica, and the write was lost with it."
        if c.min_insync_replicas < 2:
            return ("with min.insync.replicas=1, acks=all acknowledged the write once the ISR had shrunk to the "
                    "leader alone; that leader failed and the new leader never had it.")
        if c.flush_messages_never:
            return ("every replica lost power before flushing: with flush.messages never, Kafka relies on "
                    "replication rather than fsync, so a write all in-sync replicas held only in their page "
                    "caches was lost with all of them.")
        return _GENERIC_CAUSE[name]
    if name == "inconsistent-offsets":
        if c.unclean_leader_election:
            return ("an out-of-sync replica became leader through unclean leader election, truncated "
                    "acknowledged offsets and reused them for new records.")
        if c.acks != "all":
            return (f"acks={c.acks} acknowledged records no follower had copied; the leader failed, the new "
                    "leader truncated those offsets and reused them for different records.")
        if c.min_insync_replicas < 2:
            return ("with min.insync.replicas=1 the leader acknowledged records alone; after it failed, the new "
                    "leader truncated those offsets and reused them for different records.")
        return _GENERIC_CAUSE[name]
    if name == "duplicate":
        if not c.enable_idempotence and c.retries > 0:
            return ("a produce response was lost and the producer retried; without enable.idempotence the "
                    "broker cannot recognise the retry, so the batch was written twice.")
        if c.enable_idempotence and c.max_in_flight > 5:
            return (f"with max.in.flight.requests.per.connection={c.max_in_flight} (more than 5) the broker's "
                    "5-batch deduplication window could not recognise a retried batch, so it was written twice.")
        return _GENERIC_CAUSE[name]
    if name == "nonmonotonic-send":
        if not c.enable_idempotence and c.max_in_flight > 1 and c.retries > 0:
            return (f"with max.in.flight.requests.per.connection={c.max_in_flight} and enable.idempotence off, "
                    "a failed batch was retried after a later batch had already been appended, so the records "
                    "landed out of send order.")
        if c.enable_idempotence and c.max_in_flight > 5:
            return (f"with max.in.flight.requests.per.connection={c.max_in_flight} (more than 5) idempotence "
                    "cannot keep batches in order, so a retried batch landed after a later one.")
        if c.loses_acknowledged_data_on_failover:
            return ("a leader change truncated the earlier send's acknowledged offset, and the new leader "
                    "appended the later send below it.")
        return _GENERIC_CAUSE[name]
    if name in ("poll-skip", "nonmonotonic-poll", "int-poll-skip", "int-nonmonotonic-poll"):
        if c.loses_acknowledged_data_on_failover:
            return ("a leader change truncated records the consumer had read or was about to read and reused "
                    "their offsets, so its fetch position no longer matched the new leader's log.")
        return _GENERIC_CAUSE[name]
    # unseen
    if c.loses_acknowledged_data_on_failover:
        return ("an acknowledged record was never read: with these settings a failed leader can take it "
                "along, or the consumers stopped before reaching it.")
    return _GENERIC_CAUSE[name]


# ── results ──────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Anomaly:
    """One instance of an anomaly, with everything the UI needs to point at it."""

    name: str  # one of ANOMALY_NAMES
    partition: str  # "topic-N"
    offsets: tuple[int, ...]  # the offsets involved, in the order the explanation names them
    values: tuple[str, ...]  # the values involved, likewise
    op_indexes: tuple[int, ...]  # history indexes of the completions involved, ascending
    explanation: str  # one sentence: what happened, with the concrete offsets and values
    likely_cause: str  # one sentence: the most plausible cause under the checker's context

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "partition": self.partition,
            "offsets": list(self.offsets),
            "values": list(self.values),
            "op_indexes": list(self.op_indexes),
            "explanation": self.explanation,
            "likely_cause": self.likely_cause,
        }


def _sort_key(a: Anomaly) -> tuple:
    return (a.partition, a.offsets, a.values, a.op_indexes, a.explanation)


@dataclass(frozen=True)
class Verdict:
    """What the checker concluded about a history (or a prefix of one)."""

    valid: bool  # no anomaly at all
    anomalies: dict[str, tuple[Anomaly, ...]]  # name -> instances; sorted names, only names that occurred
    counts: dict[str, int]  # name -> number of instances, same keys
    acked: int  # sends that completed ok
    consumed: int  # distinct values read by ok polls
    final: bool = False  # whether this verdict judged the history as finished (reports unseen)
    stats: dict[str, Any] = field(default_factory=dict)  # delivery counts (DeliveryStats.summary)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: ``valid``, ``anomalies`` (name → count), ``acked``, ``consumed`` and details."""
        return {
            "valid": self.valid,
            "final": self.final,
            "anomalies": dict(self.counts),
            "acked": self.acked,
            "consumed": self.consumed,
            "stats": self.stats,
            "details": {name: [a.to_json() for a in found] for name, found in self.anomalies.items()},
        }


class DeliveryStats:
    """How often each value was delivered: to consumers (polls) and to downstream sinks.

    These are counts, not anomalies. At-least-once delivery *is allowed* to
    deliver twice, so "the sink applied 12 records twice" is the lesson of an
    at-least-once lab, not a bug; "every acknowledged value read exactly once"
    is what exactly-once promises. :meth:`summary` gives:

    * ``consume_counts`` — times read → how many values were read that many
      times, over every consuming process (or those named);
    * ``sink`` (when any consumer wrote to a sink) — ``applied``, ``ignored_repeats``
      (an idempotent sink recognised a repeat), ``duplicates`` (extra
      applications of a value a non-idempotent sink applied more than once) and,
      in final summaries, ``lost`` (acknowledged values the sink never applied).
    """

    def __init__(self) -> None:
        self.reads: dict[str, Counter[str]] = {}  # process -> value -> times read
        self.acked: set[str] = set()
        self.sink_applied: Counter[str] = Counter()
        self.sink_ignored = 0
        self.sink_writes = 0

    def observe(self, op: Op) -> None:
        if op.type == "invoke":
            return
        if op.f == "poll" and op.type == "ok":
            counts = self.reads.setdefault(op.process, Counter())
            for pairs in op.value.values():
                counts.update(v for _, v in pairs)
        elif op.f == "send" and op.type == "ok":
            self.acked.add(op.value[2])
        elif op.f == "sink":
            self.sink_writes += 1
            if op.type == "ok":
                self.sink_applied[op.value[1]] += 1
            else:
                self.sink_ignored += 1

    def consume_counts(self, processes: Iterable[str] | None = None) -> dict[int, int]:
        total: Counter[str] = Counter()
        for process in sorted(self.reads if processes is None else set(processes) & set(self.reads)):
            total.update(self.reads[process])
        return dict(sorted(Counter(total.values()).items()))

    def summary(self, final: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.reads:
            out["consume_counts"] = {str(k): v for k, v in self.consume_counts().items()}
        if self.sink_writes:
            sink: dict[str, Any] = {
                "writes": self.sink_writes, "applied": sum(self.sink_applied.values()),
                "ignored_repeats": self.sink_ignored,
                "duplicates": sum(n - 1 for n in self.sink_applied.values() if n > 1),
                "values_applied_twice_or_more": sum(1 for n in self.sink_applied.values() if n > 1),
            }
            if final:
                sink["lost"] = sum(1 for v in self.acked if v not in self.sink_applied)
            out["sink"] = sink
        return out


class TxnReads:
    """``G1a`` and ``precommitted-read``: what reads reveal about writes that failed or had not committed.

    * a poll that reads a value whose send completed ``fail`` (definitely not
      written — or its transaction aborted) is an aborted read, ``G1a``; also
      when the send fails only *after* the read;
    * a poll that reads the value of a transactional send (invoke tagged
      ``"txn"``) before that send completed ``ok`` at commit is a
      ``precommitted-read``.

    Reads of sends that end ``info`` (outcome unknown) prove nothing. Shared by
    :class:`Checker` and :func:`check`, so both report the same instances.
    """

    def __init__(self, context: "CheckerContext | None") -> None:
        self.context = context
        self.invoked_txn: dict[int, tuple[str, str]] = {}  # pending transactional send invoke → (p, v)
        self.pending: set[tuple[str, str]] = set()
        self.failed: dict[tuple[str, str], int] = {}  # (p, v) → the fail op
        self.early: dict[tuple[str, str], list[tuple[int, int, str]]] = {}  # (p, v) → [(poll op, offset, process)]
        self.reported: set[tuple] = set()

    def observe(self, op: Op) -> list[tuple[str, tuple, Anomaly]]:
        return [(name, key, a) for name, key, a in self._observe(op)
                if (name, key) not in self.reported and not self.reported.add((name, key))]  # type: ignore[func-returns-value]

    def _observe(self, op: Op) -> list[tuple[str, tuple, Anomaly]]:
        found: list[tuple[str, tuple, Anomaly]] = []
        if op.f == "send":
            if op.type == "invoke":
                if len(op.value) == 3:
                    self.invoked_txn[op.index] = (op.value[0], op.value[1])
                    self.pending.add((op.value[0], op.value[1]))
                return found
            partition, _, value = op.value
            key = (partition, value)
            if self.invoked_txn.pop(op.invoke_index, None) is not None:
                self.pending.discard(key)
            early = self.early.pop(key, [])
            if op.type == "fail":
                self.failed[key] = op.index
                found.extend(self._g1a(partition, value, poll, offset, process, op.index)
                             for poll, offset, process in early)
            elif op.type == "ok":
                found.extend(("precommitted-read", (partition, value, poll), Anomaly(
                    "precommitted-read", partition, (offset,), (value,), (poll, op.index),
                    f"{process} read {value} at offset {offset} of {partition} (op {poll}) before its transaction "
                    f"committed (op {op.index}).", likely_cause("precommitted-read", self.context)))
                    for poll, offset, process in early)
        elif op.f == "poll" and op.type == "ok":
            for partition in sorted(op.value):
                for offset, value in op.value[partition]:
                    key = (partition, value)
                    if key in self.failed:
                        found.append(self._g1a(partition, value, op.index, offset, op.process, self.failed[key]))
                    elif key in self.pending:
                        self.early.setdefault(key, []).append((op.index, offset, op.process))
        return found

    def _g1a(self, partition: str, value: str, poll: int, offset: int, process: str,
             fail_op: int) -> tuple[str, tuple, Anomaly]:
        return ("G1a", (partition, value, poll), Anomaly(
            "G1a", partition, (offset,), (value,), tuple(sorted({poll, fail_op})),
            f"{process} read {value} at offset {offset} of {partition} (op {poll}), but that write failed "
            f"or its transaction aborted (op {fail_op}).", likely_cause("G1a", self.context)))


def _verdict(found: Mapping[str, Iterable[Anomaly]], final: bool, acked: int, consumed: int,
             presorted: bool = False, stats: dict[str, Any] | None = None) -> Verdict:
    anomalies: dict[str, tuple[Anomaly, ...]] = {}
    for name in ANOMALY_NAMES:
        if name == "unseen" and not final:
            continue
        instances = tuple(found.get(name, ()))
        if not presorted:
            instances = tuple(sorted(instances, key=_sort_key))
        if instances:
            anomalies[name] = instances
    return Verdict(valid=not anomalies, anomalies=anomalies,
                   counts={name: len(found) for name, found in anomalies.items()},
                   acked=acked, consumed=consumed, final=final, stats=stats or {})


# ── rendering: facts → Anomaly (shared by Checker and check) ────────────────


def _offsets_text(offsets: Sequence[int], count: int) -> str:
    shown = ", ".join(str(o) for o in offsets[:SKIPPED_OFFSETS_SHOWN])
    more = ", …" if count > SKIPPED_OFFSETS_SHOWN else ""
    noun = "offset" if count == 1 else "offsets"
    return f"{count} known {noun} ({shown}{more})"


def _render_inconsistent(partition: str, offset: int, first_op_by_value: Mapping[str, int],
                         context: CheckerContext | None) -> Anomaly:
    values = tuple(sorted(first_op_by_value))
    return Anomaly(
        "inconsistent-offsets", partition, (offset,), values,
        tuple(sorted(set(first_op_by_value.values()))),
        f"Offset {offset} of {partition} was reported holding {len(values)} different values "
        f"({', '.join(values)}) by different sends and polls.",
        likely_cause("inconsistent-offsets", context))


def _render_duplicate(partition: str, value: str, first_op_by_offset: Mapping[int, int],
                      context: CheckerContext | None) -> Anomaly:
    offsets = tuple(sorted(first_op_by_offset))
    return Anomaly(
        "duplicate", partition, offsets, (value,), tuple(sorted(set(first_op_by_offset.values()))),
        f"Value {value} appears at {len(offsets)} offsets of {partition} "
        f"({', '.join(str(o) for o in offsets)}), so it was written more than once.",
        likely_cause("duplicate", context))


def _render_lost_write(partition: str, offset: int, value: str, send_op: int, witness_op: int,
                       witness_offset: int, context: CheckerContext | None) -> Anomaly:
    return Anomaly(
        "lost-write", partition, (offset,), (value,), tuple(sorted({send_op, witness_op})),
        f"Value {value} was acknowledged at offset {offset} of {partition}, a consumer read past offset "
        f"{offset} (up to offset {witness_offset}), and no consumer ever saw {value}.",
        likely_cause("lost-write", context))


def _render_unseen(partition: str, offset: int | None, value: str, send_op: int,
                   context: CheckerContext | None) -> Anomaly:
    where = f"at offset {offset} of {partition}" if offset is not None else f"to {partition} (offset unknown)"
    return Anomaly(
        "unseen", partition, () if offset is None else (offset,), (value,), (send_op,),
        f"Value {value} was acknowledged {where}, but no consumer ever read it.",
        likely_cause("unseen", context))


def _render_poll_pair(name: str, partition: str, process: str, a: int, va: str, b: int, vb: str,
                      ops: tuple[int, int], skipped: Sequence[int], skipped_count: int,
                      context: CheckerContext | None) -> Anomaly:
    if name == "poll-skip":
        text = (f"{process} read offset {a} ({va}) of {partition} at the end of one poll and started its next "
                f"poll at offset {b} ({vb}), skipping {_offsets_text(skipped, skipped_count)}.")
    elif name == "nonmonotonic-poll":
        text = (f"{process} read offset {a} ({va}) of {partition} at the end of one poll and started its next "
                f"poll back at offset {b} ({vb}), with no assign or restart in between.")
    elif name == "int-poll-skip":
        text = (f"One poll by {process} read offset {a} ({va}) of {partition} and then offset {b} ({vb}), "
                f"skipping {_offsets_text(skipped, skipped_count)}.")
    else:  # int-nonmonotonic-poll
        text = (f"One poll by {process} read offset {a} ({va}) of {partition} and then offset {b} ({vb}), "
                f"going backwards instead of forwards.")
    return Anomaly(name, partition, (a, b), (va, vb), tuple(sorted(set(ops))), text, likely_cause(name, context))


def _render_nonmonotonic_send(partition: str, process: str, first: tuple[int, str, int],
                              second: tuple[int, str, int], context: CheckerContext | None) -> Anomaly:
    (o1, v1, op1), (o2, v2, op2) = first, second
    landed = (f"both landed at offset {o1}" if o1 == o2
              else f"{v1} landed at offset {o1} and {v2} at offset {o2}")
    return Anomaly(
        "nonmonotonic-send", partition, (o1, o2), (v1, v2), tuple(sorted({op1, op2})),
        f"{process} sent {v1} and then {v2} to {partition}, but {landed}, out of send order.",
        likely_cause("nonmonotonic-send", context))


# ── the full pass (the oracle) ──────────────────────────────────────────────


def check(ops: Iterable[Op], context: CheckerContext | None = None, final: bool = True) -> Verdict:
    """Judge a whole history in one plain pass; with ``final`` also report ``unseen``."""
    ops = list(ops)
    found: dict[str, list[Anomaly]] = {name: [] for name in ANOMALY_NAMES}
    stats = DeliveryStats()
    txn_reads = TxnReads(context)
    for op in ops:
        stats.observe(op)
        for name, _, anomaly in txn_reads.observe(op):
            found[name].append(anomaly)

    # 1. Gather facts: ok sends (with the producer's crash count when invoked), ok polls,
    #    every (partition, offset, value) anyone reported, and what was read.
    crashes: dict[str, int] = {}
    epoch_at_invoke: dict[int, int] = {}
    ok_sends: list[tuple[str, int | None, str, int, int, str, int]] = []  # p, o, v, op, invoke, process, epoch
    ok_polls: list[Op] = []
    reports: list[tuple[str, int, str, int]] = []  # partition, offset, value, op index
    # A transactional value read by a poll counts as part of the log only once its transaction
    # committed: an aborted record's offset is not a record a read_committed consumer skipped.
    txn_sent = {(op.value[0], op.value[1]) for op in ops if op.f == "send" and op.type == "invoke"
                and len(op.value) == 3}
    txn_ok = {(op.value[0], op.value[2]) for op in ops if op.f == "send" and op.type == "ok"}
    for op in ops:
        if op.type == "invoke":
            if op.f == "send":
                epoch_at_invoke[op.index] = crashes.get(op.process, 0)
        elif op.f == "send" and op.type == "ok":
            partition, offset, value = op.value
            epoch = epoch_at_invoke.get(op.invoke_index, crashes.get(op.process, 0))
            ok_sends.append((partition, offset, value, op.index, op.invoke_index, op.process, epoch))
            if offset is not None:
                reports.append((partition, offset, value, op.index))
        elif op.f == "send":
            pass  # failed sends feed G1a through TxnReads
        elif op.f == "poll" and op.type == "ok":
            ok_polls.append(op)
            for partition in sorted(op.value):
                for offset, value in op.value[partition]:
                    if (partition, value) not in txn_sent or (partition, value) in txn_ok:
                        reports.append((partition, offset, value, op.index))
        elif op.f == "crash":
            crashes[op.process] = crashes.get(op.process, 0) + 1

    known_sets: dict[str, set[int]] = {}
    for partition, offset, _, _ in reports:
        known_sets.setdefault(partition, set()).add(offset)
    known = {partition: sorted(offsets) for partition, offsets in known_sets.items()}

    def between(partition: str, a: int, b: int) -> list[int]:
        offsets = known.get(partition, [])
        return offsets[bisect.bisect_right(offsets, a):bisect.bisect_left(offsets, b)]

    observed: set[tuple[str, str]] = set()
    for op in ok_polls:
        for partition, pairs in op.value.items():
            for _, value in pairs:
                observed.add((partition, value))

    # 2. inconsistent-offsets and duplicate: first reporter of each value at each offset.
    by_offset: dict[tuple[str, int], dict[str, int]] = {}
    by_value: dict[tuple[str, str], dict[int, int]] = {}
    for partition, offset, value, index in reports:
        values = by_offset.setdefault((partition, offset), {})
        values[value] = min(values.get(value, index), index)
        offsets = by_value.setdefault((partition, value), {})
        offsets[offset] = min(offsets.get(offset, index), index)
    for (partition, offset), values in by_offset.items():
        if len(values) >= 2:
            found["inconsistent-offsets"].append(_render_inconsistent(partition, offset, values, context))
    for (partition, value), offsets in by_value.items():
        if len(offsets) >= 2:
            found["duplicate"].append(_render_duplicate(partition, value, offsets, context))

    # 3. lost-write: acknowledged, never read, and some poll read a higher offset (the first such poll
    #    is the witness); unseen: acknowledged and never read.
    highest_reads: dict[str, list[tuple[int, int]]] = {}  # partition -> (highest offset read, poll), in order
    for op in ok_polls:
        for partition, pairs in sorted(op.value.items()):
            if pairs:
                highest_reads.setdefault(partition, []).append((max(o for o, _ in pairs), op.index))
    for partition, offset, value, index, _, _, _ in ok_sends:
        if (partition, value) in observed:
            continue
        if final:
            found["unseen"].append(_render_unseen(partition, offset, value, index, context))
        if offset is None:
            continue
        for highest, poll_index in highest_reads.get(partition, ()):
            if highest > offset:
                found["lost-write"].append(
                    _render_lost_write(partition, offset, value, index, poll_index, highest, context))
                break

    # 4. Poll order, inside each poll and between a consumer's successive polls.
    def judge_pair(kind: str, partition: str, process: str, a: tuple[int, str], b: tuple[int, str],
                   pair_ops: tuple[int, int]) -> None:
        prefix = "int-" if kind == "int" else ""
        if b[0] <= a[0]:
            name = prefix + "nonmonotonic-poll"
            found[name].append(_render_poll_pair(name, partition, process, a[0], a[1], b[0], b[1],
                                                 pair_ops, (), 0, context))
            return
        skipped = between(partition, a[0], b[0])
        if skipped:
            name = prefix + "poll-skip"
            found[name].append(_render_poll_pair(name, partition, process, a[0], a[1], b[0], b[1],
                                                 pair_ops, skipped, len(skipped), context))

    last_read: dict[str, dict[str, tuple[int, str, int]]] = {}  # process -> partition -> (offset, value, op)
    for op in ops:
        if op.type == "invoke":
            continue
        if op.f == "assign" and op.type in ("ok", "info"):
            for partition in op.value:
                last_read.get(op.process, {}).pop(partition, None)
        elif op.f == "crash":
            last_read.pop(op.process, None)
        elif op.f == "poll" and op.type == "ok":
            for partition in sorted(op.value):
                pairs = op.value[partition]
                if not pairs:
                    continue
                for j in range(len(pairs) - 1):
                    judge_pair("int", partition, op.process, pairs[j], pairs[j + 1], (op.index, op.index))
                previous = last_read.get(op.process, {}).get(partition)
                if previous is not None:
                    judge_pair("ext", partition, op.process, previous[:2], pairs[0], (previous[2], op.index))
                last_read.setdefault(op.process, {})[partition] = (pairs[-1][0], pairs[-1][1], op.index)

    # 5. nonmonotonic-send: a producer's ok sends to a partition, in invoke order, per crash epoch.
    sequences: dict[tuple[str, int, str], list[tuple[int, int, str, int]]] = {}
    for partition, offset, value, index, invoke_index, process, epoch in ok_sends:
        if offset is not None:
            sequences.setdefault((process, epoch, partition), []).append((invoke_index, offset, value, index))
    for (process, _, partition), sends in sequences.items():
        sends.sort()
        for earlier, later in zip(sends, sends[1:]):
            if later[1] <= earlier[1]:
                found["nonmonotonic-send"].append(_render_nonmonotonic_send(
                    partition, process, earlier[1:], later[1:], context))

    # 6. G1a and precommitted-read came from TxnReads above.

    consumed = len({value for _, value in observed})
    return _verdict(found, final, acked=len(ok_sends), consumed=consumed, stats=stats.summary(final))


# ── the incremental checker ─────────────────────────────────────────────────


class _Found:
    """One anomaly kind's instances, kept sorted so a verdict only copies them."""

    __slots__ = ("order", "anomalies", "by_key", "cached")

    def __init__(self) -> None:
        self.order: list[tuple[tuple, Any]] = []  # (sort key, instance key), sorted
        self.anomalies: list[Anomaly] = []  # in the same order
        self.by_key: dict[Any, tuple[tuple, Any]] = {}
        self.cached: tuple[Anomaly, ...] | None = ()

    def put(self, key: Any, anomaly: Anomaly) -> None:
        self.remove(key)
        entry = (_sort_key(anomaly), key)
        i = bisect.bisect_left(self.order, entry)
        self.order.insert(i, entry)
        self.anomalies.insert(i, anomaly)
        self.by_key[key] = entry
        self.cached = None

    def remove(self, key: Any) -> bool:
        entry = self.by_key.pop(key, None)
        if entry is None:
            return False
        i = bisect.bisect_left(self.order, entry)
        del self.order[i]
        del self.anomalies[i]
        self.cached = None
        return True

    def instances(self) -> tuple[Anomaly, ...]:
        if self.cached is None:
            self.cached = tuple(self.anomalies)
        return self.cached


class _PairCheck:
    """Two consecutive reads of a partition, kept because a later offset may turn them into a skip."""

    __slots__ = ("key", "name", "partition", "process", "a", "va", "b", "vb", "ops", "skipped_count")

    def __init__(self, key: tuple, name: str, partition: str, process: str, a: int, va: str, b: int, vb: str,
                 ops: tuple[int, int]) -> None:
        self.key = key
        self.name = name  # "poll-skip" or "int-poll-skip"
        self.partition = partition
        self.process = process
        self.a, self.va, self.b, self.vb = a, va, b, vb
        self.ops = ops
        self.skipped_count = 0  # known offsets strictly between a and b when last rendered


def _gap_key(known: list[int], i: int) -> tuple[int | None, int | None]:
    """The gap of sorted ``known`` at insertion point ``i``: its two neighbours (None past either end)."""
    return (known[i - 1] if i > 0 else None, known[i] if i < len(known) else None)


class Checker:
    """Consumes a history op by op and can give a verdict at any moment.

    ``observe`` must see every op once, in index order (subscribe it to a
    ``History``, with ``replay=True`` if the history already has ops). An op
    costs O(log n) per record it carries, plus the work of any anomaly it
    creates. ``verdict`` re-renders only skips that a newly learned offset may
    lie inside, and copies the (already sorted) instances of the kinds that
    changed since the last call; with no anomalies it is O(1).
    """

    def __init__(self, context: CheckerContext | None = None) -> None:
        self.context = context
        self._next_index = 0
        self._acked = 0
        self._consumed: set[str] = set()
        # producers
        self._crashes: dict[str, int] = {}  # process -> crash count (a new send sequence after each)
        self._epoch_at_invoke: dict[int, int] = {}  # pending send invoke index -> crash count then
        self._sequences: dict[tuple[str, int, str], list[tuple[int, int, str, int]]] = {}
        # per partition
        self._known: dict[str, list[int]] = {}  # sorted offsets reported by any ok send or ok poll
        self._at: dict[str, dict[int, tuple[str, int]]] = {}  # offset -> (first value, its first op)
        self._conflicts: dict[tuple[str, int], dict[str, int]] = {}  # (p, offset) -> value -> first op
        self._where: dict[str, dict[str, tuple[int, int]]] = {}  # value -> (first offset, its first op)
        self._copies: dict[tuple[str, str], dict[int, int]] = {}  # (p, value) -> offset -> first op
        self._observed: dict[str, set[str]] = {}  # values read by ok polls
        self._high_offsets: dict[str, list[int]] = {}  # each new highest offset read, ascending
        self._high_polls: dict[str, list[int]] = {}  # the poll that read it
        self._unread: dict[tuple[str, str], list[tuple[int | None, int]]] = {}  # (p, v) -> ok sends not yet read
        self._not_passed: dict[str, list[tuple[int, int, str]]] = {}  # unread ok sends no poll has read past yet
        self._unseen: dict[tuple[str, int], tuple[int | None, str]] = {}  # (p, send op) -> (offset, value)
        # consumers
        self._last_read: dict[str, dict[str, tuple[int, str, int]]] = {}  # process -> p -> (offset, value, op)
        self._open_gaps: dict[str, dict[tuple[int, int], list[_PairCheck]]] = {}  # p -> adjacent known pair
        self._skips: dict[str, list[_PairCheck]] = {}  # partition -> pair checks that are skips
        self._skips_max_b: dict[str, int] = {}  # partition -> highest right end among its skips
        self._learned_low: dict[str, int] = {}  # partition with skips -> lowest offset learned since last verdict
        # results
        self._found: dict[str, _Found] = {name: _Found() for name in ANOMALY_NAMES}  # unseen: rendered lazily
        self.stats = DeliveryStats()
        self._txn_reads = TxnReads(context)
        self._txn_unsettled: dict[tuple[str, str], list[tuple[int, int]]] = {}  # txn value → reads waiting
        self._txn_dropped: set[tuple[str, str]] = set()  # txn values that failed or ended unknown

    # ── feeding ──────────────────────────────────────────────────────────────

    def observe(self, op: Op) -> None:
        """Take the next op of the history into account."""
        if op.index != self._next_index:
            raise ValueError(f"the checker expected op {self._next_index} next, got op {op.index}: "
                             "ops must be observed once each, in index order")
        self._next_index += 1
        self.stats.observe(op)
        if op.f == "send":
            self._settle_txn_reads(op)
        for name, key, anomaly in self._txn_reads.observe(op):
            self._found[name].put(key, anomaly)
        if op.type == "invoke":
            if op.f == "send":
                self._epoch_at_invoke[op.index] = self._crashes.get(op.process, 0)
        elif op.f == "send":
            self._on_send(op)
        elif op.f == "poll":
            if op.type == "ok":
                self._on_poll(op)
        elif op.f == "assign":
            if op.type in ("ok", "info"):
                last = self._last_read.get(op.process)
                if last:
                    for partition in op.value:
                        last.pop(partition, None)
        elif op.f == "crash":
            self._crashes[op.process] = self._crashes.get(op.process, 0) + 1
            self._last_read.pop(op.process, None)

    def __call__(self, op: Op) -> None:
        self.observe(op)

    def _settle_txn_reads(self, op: Op) -> None:
        """Reads of a transactional value wait for its outcome: learned on commit, dropped otherwise."""
        if op.type == "invoke":
            if len(op.value) == 3:
                self._txn_unsettled[(op.value[0], op.value[1])] = []
            return
        key = (op.value[0], op.value[2])
        waiting = self._txn_unsettled.pop(key, None)
        if waiting is None:
            return
        if op.type == "ok":
            for offset, index in waiting:
                self._learn(key[0], offset, key[1], index)
        else:
            self._txn_dropped.add(key)

    def _on_send(self, op: Op) -> None:
        epoch = self._epoch_at_invoke.pop(op.invoke_index, self._crashes.get(op.process, 0))
        if op.type != "ok":
            return  # a failed send's value, if ever read, is an aborted read (TxnReads)
        self._acked += 1
        partition, offset, value = op.value
        if offset is not None:
            self._learn(partition, offset, value, op.index)
        if value not in self._observed.get(partition, ()):
            self._unread.setdefault((partition, value), []).append((offset, op.index))
            self._unseen[(partition, op.index)] = (offset, value)
            if offset is not None:
                highs = self._high_offsets.get(partition, [])
                first_higher = bisect.bisect_right(highs, offset)
                if first_higher < len(highs):
                    self._add_lost(partition, offset, value, op.index,
                                   self._high_polls[partition][first_higher], highs[first_higher])
                else:
                    bisect.insort(self._not_passed.setdefault(partition, []), (offset, op.index, value))
        if offset is not None:
            self._sequence(op.process, epoch, partition, op.invoke_index, offset, value, op.index)

    def _on_poll(self, op: Op) -> None:
        reads = op.value
        partitions = sorted(reads)
        for partition in partitions:
            for offset, value in reads[partition]:
                key = (partition, value)
                if key in self._txn_unsettled:  # learned only if its transaction commits
                    self._txn_unsettled[key].append((offset, op.index))
                elif key not in self._txn_dropped:
                    self._learn(partition, offset, value, op.index)
        for partition in partitions:
            pairs = reads[partition]
            if not pairs:
                continue
            observed = self._observed.setdefault(partition, set())
            for _, value in pairs:
                self._consumed.add(value)
                if value not in observed:
                    observed.add(value)
                    self._first_read(partition, value)
            highest = max(offset for offset, _ in pairs)
            highs = self._high_offsets.setdefault(partition, [])
            if not highs or highest > highs[-1]:
                highs.append(highest)
                self._high_polls.setdefault(partition, []).append(op.index)
                waiting = self._not_passed.get(partition)
                if waiting:
                    cut = bisect.bisect_left(waiting, (highest,))
                    for offset, send_op, value in waiting[:cut]:
                        self._add_lost(partition, offset, value, send_op, op.index, highest)
                    del waiting[:cut]
            for j in range(len(pairs) - 1):
                self._pair("int-", (op.index, partition, j), partition, op.process, pairs[j], pairs[j + 1],
                           (op.index, op.index))
            last = self._last_read.setdefault(op.process, {})
            previous = last.get(partition)
            if previous is not None:
                self._pair("", (previous[2], op.index, partition), partition, op.process, previous[:2],
                           pairs[0], (previous[2], op.index))
            last[partition] = (pairs[-1][0], pairs[-1][1], op.index)

    # ── state updates ────────────────────────────────────────────────────────

    def _learn(self, partition: str, offset: int, value: str, index: int) -> None:
        """Record that op ``index`` reported ``value`` at ``offset`` of ``partition``."""
        known = self._known.setdefault(partition, [])
        i = bisect.bisect_left(known, offset)
        if i == len(known) or known[i] != offset:
            gaps = self._open_gaps.get(partition)
            opened = gaps.pop(_gap_key(known, i), None) if gaps else None
            known.insert(i, offset)
            if partition in self._skips and offset < self._learned_low.get(partition, offset + 1):
                self._learned_low[partition] = offset
            for check in opened or ():
                if check.a < offset < check.b:
                    self._add_skip(check)
                else:  # the new offset lies outside this pair: it waits in the (now smaller) gap around it
                    self._open_gaps[partition].setdefault(
                        _gap_key(known, bisect.bisect_right(known, check.a)), []).append(check)
        at = self._at.setdefault(partition, {})
        first = at.get(offset)
        if first is None:
            at[offset] = (value, index)
        elif first[0] != value:
            values = self._conflicts.setdefault((partition, offset), {first[0]: first[1]})
            if value not in values:
                values[value] = index
                self._found["inconsistent-offsets"].put((partition, offset), _render_inconsistent(
                    partition, offset, values, self.context))
        where = self._where.setdefault(partition, {})
        placed = where.get(value)
        if placed is None:
            where[value] = (offset, index)
        elif placed[0] != offset:
            offsets = self._copies.setdefault((partition, value), {placed[0]: placed[1]})
            if offset not in offsets:
                offsets[offset] = index
                self._found["duplicate"].put((partition, value), _render_duplicate(
                    partition, value, offsets, self.context))

    def _first_read(self, partition: str, value: str) -> None:
        """``value`` was read from ``partition`` for the first time: it is neither lost nor unseen."""
        for offset, send_op in self._unread.pop((partition, value), ()):
            del self._unseen[(partition, send_op)]
            self._found["unseen"].remove((partition, send_op))
            if offset is None:
                continue
            if not self._found["lost-write"].remove((partition, send_op)):
                waiting = self._not_passed[partition]
                del waiting[bisect.bisect_left(waiting, (offset, send_op, value))]

    def _add_lost(self, partition: str, offset: int, value: str, send_op: int, witness_op: int,
                  witness_offset: int) -> None:
        self._found["lost-write"].put((partition, send_op), _render_lost_write(
            partition, offset, value, send_op, witness_op, witness_offset, self.context))

    def _pair(self, prefix: str, key: tuple, partition: str, process: str, a: tuple[int, str],
              b: tuple[int, str], ops: tuple[int, int]) -> None:
        """Judge two consecutive reads; a forward jump over no known offset is filed as an open gap."""
        if b[0] <= a[0]:
            name = prefix + "nonmonotonic-poll"
            self._found[name].put(key, _render_poll_pair(name, partition, process, a[0], a[1], b[0], b[1], ops,
                                                         (), 0, self.context))
            return
        if b[0] == a[0] + 1:
            return  # nothing can ever lie between
        check = _PairCheck(key, prefix + "poll-skip", partition, process, a[0], a[1], b[0], b[1], ops)
        known = self._known.setdefault(partition, [])
        lo = bisect.bisect_right(known, a[0])
        if lo < len(known) and known[lo] < b[0]:
            self._add_skip(check)
        else:  # no known offset between a and b: file the pair under the known offsets around it
            self._open_gaps.setdefault(partition, {}).setdefault(_gap_key(known, lo), []).append(check)

    def _sequence(self, process: str, epoch: int, partition: str, invoke_index: int, offset: int, value: str,
                  index: int) -> None:
        """Place an ok send among its producer's sends (invoke order) and re-judge its neighbours."""
        group = (process, epoch, partition)
        sends = self._sequences.setdefault(group, [])
        i = bisect.bisect_left(sends, (invoke_index,))
        before = sends[i - 1] if i > 0 else None
        after = sends[i] if i < len(sends) else None
        found = self._found["nonmonotonic-send"]
        if before is not None and after is not None:
            found.remove((group, before[0], after[0]))
        entry = (invoke_index, offset, value, index)
        sends.insert(i, entry)
        for earlier, later in ((before, entry), (entry, after)):
            if earlier is not None and later is not None and later[1] <= earlier[1]:
                found.put((group, earlier[0], later[0]), _render_nonmonotonic_send(
                    partition, process, earlier[1:], later[1:], self.context))

    # ── verdicts ─────────────────────────────────────────────────────────────

    def _add_skip(self, check: _PairCheck) -> None:
        self._skips.setdefault(check.partition, []).append(check)
        self._skips_max_b[check.partition] = max(check.b, self._skips_max_b.get(check.partition, check.b))
        self._render_skip(check, self._known[check.partition])

    def _render_skip(self, check: _PairCheck, known: list[int]) -> None:
        lo = bisect.bisect_right(known, check.a)
        count = bisect.bisect_left(known, check.b) - lo
        if count != check.skipped_count:
            check.skipped_count = count
            self._found[check.name].put(check.key, _render_poll_pair(
                check.name, check.partition, check.process, check.a, check.va, check.b, check.vb, check.ops,
                known[lo:lo + min(count, SKIPPED_OFFSETS_SHOWN)], count, self.context))

    def _refresh_skips(self) -> None:
        """Re-render skips that offsets learned since the last verdict may lie inside."""
        for partition in sorted(self._learned_low):
            lowest = self._learned_low[partition]
            if lowest < self._skips_max_b[partition]:
                known = self._known[partition]
                for check in self._skips[partition]:
                    if check.b > lowest:
                        self._render_skip(check, known)
        self._learned_low.clear()

    def _instances(self, name: str) -> tuple[Anomaly, ...]:
        found = self._found[name]
        if name == "unseen" and len(found.by_key) != len(self._unseen):
            for key in sorted(self._unseen):
                if key not in found.by_key:
                    offset, value = self._unseen[key]
                    found.put(key, _render_unseen(key[0], offset, value, key[1], self.context))
        return found.instances()

    def verdict(self, final: bool = False) -> Verdict:
        """The verdict on everything observed so far; ``final`` judges it as a finished run (adds unseen)."""
        self._refresh_skips()
        found = {name: self._instances(name) for name in ANOMALY_NAMES if final or name != "unseen"}
        return _verdict(found, final, acked=self._acked, consumed=len(self._consumed), presorted=True,
                        stats=self.stats.summary(final))
