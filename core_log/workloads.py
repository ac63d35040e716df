"""Lab actors: the telemetry producer the guide keeps coming back to, and consumers that do work.

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

The producer's *process* can crash and restart (:meth:`TelemetryProducer.crash`,
:meth:`TelemetryProducer.restart`). The application is at-least-once: it
remembers every reading it sent until that reading's send completes ok (its
source still holds the reading), and a restarted instance first sends again, byte
for byte, every reading whose acknowledgement the crashed one never saw — the one
place a value is sent twice above the client, on purpose. The restarted client
asks for a new producer id, so the brokers cannot tell those resends from new
records: any that the crashed instance's requests had already written are written
twice (the checker's ``duplicate``), idempotence or not.
With ``serializer`` ("json", "avro" or "protobuf", see :mod:`core_log.serde`) each
value is instead a whole telemetry reading (producer, seq, machine id,
temperature, timestamp) in that format — still unique, since it carries the
producer and its sequence number; ``describe()`` reports the average value bytes
per record so formats can be compared. The default, "text", sends exactly the
``<client>-<n>`` bytes it always did.

:class:`LabConsumer` is the consumer side of the lessons: a group member that
*processes* records at ``rate_per_s`` and hands each to a downstream
:class:`Sink`, with one of three commit strategies —

* ``"after"`` — commit (synchronously) after processing each polled batch:
  **at-least-once**. A crash mid-batch means the next owner re-processes what
  was done since the last commit, so a non-idempotent sink applies it twice;
* ``"before"`` — commit right after ``poll()``, before processing:
  **at-most-once**. A crash mid-batch means the rest of the batch is never
  processed — the sink loses it;
* ``"auto"`` — ``enable.auto.commit``: every ``poll()`` commits what the
  previous poll returned (at-least-once, with up to ``auto.commit.interval.ms``
  of re-processing after a crash).

The sink is the downstream system (a database, a billing service). An
idempotent sink remembers (key, sequence) pairs and ignores a repeat — the
standard way to make at-least-once delivery effectively exactly-once. Each
write is a ``sink`` op in the history, so the checker counts what the sink
applied twice and what it never applied.

Differences from a real workload: sends happen at exact multiples of the send
interval in simulated time (no jitter), and by default values are small text, not
encoded telemetry (temperatures, when a serializer encodes them, follow a fixed
formula per machine, not a sensor). Processing takes exactly 1/rate seconds per record.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core_log.consumer import CommitFuture, Consumer, ConsumerConfig
from core_log.errors import require_int
from core_log.messages import TopicPartition
from core_log.producer import Producer, ProducerConfig, SendFuture
from core_log.records import Record
from core_log.serde import SERIALIZERS, TelemetryReading, TextSerializer, serializer_for, temperature_for
from core_log.txn import TransactionalProducer

if TYPE_CHECKING:
    from core_log.cluster import Cluster

KEY_MODES = ("machines", "null", "hot")
COMMIT_STRATEGIES = ("after", "before", "auto")
MAX_PROCESS_RATE_PER_S = 100_000
MAX_RATE_PER_S = 50_000
MAX_MACHINES = 100_000
MAX_BURST_RECORDS = 1_000_000
TICK_MS = 10  # sends are grouped per 10 ms tick: rate/100 records each tick (fractions carried over)
#: Readings the telemetry application remembers until their send completes ok (its resend-after-crash ledger).
#: Waiting sends never exceed it (the producer refuses more); only sends that failed for good can fill it, and
#: then the oldest of those are given up (counted in ``given_up``). Compaction is amortised, so the ledger may
#: briefly hold up to twice this many entries (completed ones not yet pruned).
MAX_UNACKED_READINGS = 1_000_000


class _PacedSender:
    """A producer workload driven every ``TICK_MS`` while running; ``rate_per_s`` may change on the fly."""

    cluster: "Cluster"
    producer: Producer
    min_rate_per_s = 0

    def _init_pacing(self, rate_per_s: int) -> None:
        self.rate_per_s = 0
        self.set_rate(rate_per_s)
        self.running = False
        self._carry = 0.0  # fractions of a record carried to the next tick
        self._generation = 0

    @property
    def client_id(self) -> str:
        return self.producer.node_id

    def set_rate(self, rate_per_s: int) -> None:
        require_int("rate_per_s", rate_per_s, self.min_rate_per_s, MAX_RATE_PER_S)
        self.rate_per_s = rate_per_s

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._generation += 1
        generation = self._generation

        def tick() -> None:
            if self.running and generation == self._generation and self.producer.alive:
                self._carry += self.rate_per_s * TICK_MS / 1000
                self._tick()
                self.cluster.schedule(TICK_MS, tick)

        self.cluster.schedule(TICK_MS, tick)  # each tick sends what the past TICK_MS accrued

    def stop(self) -> None:
        self.running = False

    def _tick(self) -> None:
        raise NotImplementedError


class TelemetryProducer(_PacedSender):
    """Sends ``rate_per_s`` telemetry records to ``topic`` while running."""

    def __init__(self, cluster: "Cluster", client_id: str, topic: str, *, rate_per_s: int = 100,
                 keys: str = "machines", machines: int = 12, hot_share: float = 0.8,
                 config: ProducerConfig | None = None, seed: int | None = None,
                 serializer: str = "text") -> None:
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
        self.sent = 0
        self._next_machine = 0
        self.set_serializer(serializer)
        self._init_pacing(rate_per_s)
        # The application's ledger: (key, value, future) of every reading sent and not yet known to be
        # acknowledged, oldest first; pruned from the front as sends complete ok.
        self._unacked: deque[tuple[bytes | None, bytes | None, SendFuture]] = deque()
        self._to_resend: list[tuple[bytes | None, bytes | None]] = []  # taken at a crash, sent at the restart
        self.instance = 1  # 1 + restarts of the process
        self.resume_on_restart = False  # it was sending when it crashed (a stop in between cancels this)
        self.unacked_at_crash = 0  # readings without an ok acknowledgement at the last crash
        self.resent = 0  # readings sent again by restarted instances
        self.given_up = 0  # failed readings dropped from a full ledger (MAX_UNACKED_READINGS), never resent
        self._compact_at = MAX_UNACKED_READINGS

    def stop(self) -> None:
        super().stop()
        self.resume_on_restart = False

    def crash(self) -> dict[str, int]:
        """The application's process dies: it stops sending, and the client loses all it had not sent or heard of.

        The readings whose send had not completed ok are remembered (they are still in
        the application's source) and sent again by :meth:`restart`.
        """
        if not self.producer.alive:
            raise ValueError(f"{self.client_id} has crashed already")
        resume = self.running
        self._to_resend = [(key, value) for key, value, future in self._unacked if not future.ok]
        self._unacked.clear()
        self.unacked_at_crash = len(self._to_resend)
        summary = self.producer.crash()
        self.running = False
        self.resume_on_restart = resume
        return {**summary, "unacknowledged": self.unacked_at_crash}

    def restart(self) -> int:
        """A new instance starts (new InitProducerId) and resends what the crashed one never saw acknowledged.

        Returns how many readings it sends again. Sending resumes if the producer was
        sending when it crashed.
        """
        self.producer.restart()  # raises ValueError if it is running; nothing changed then
        self.instance += 1
        resend, self._to_resend = self._to_resend, []
        old = self.producer.previous_producer_ids[-1] if self.producer.previous_producer_ids else -1
        had = f"the crashed instance had {old}" if old >= 0 else "the crashed instance had none yet"
        pid = (f"a new producer id (InitProducerId; {had})"
               if self.producer.config.enable_idempotence else "no producer id (idempotence is off)")
        self.cluster.events.emit(
            self.cluster.now_ms(), "ProducerRestarted",
            f"Producer {self.client_id} starts again as instance {self.instance} with {pid} and sends again the "
            f"{len(resend)} reading(s) whose acknowledgement the crashed instance never saw; the brokers cannot tell "
            f"these resends from new records, so every one the old instance's requests had already written is "
            f"written a second time.",
            client=self.client_id, instance=self.instance, resent=len(resend), previous_producer_id=old)
        for key, value in resend:
            self._track(key, value, self.producer.send(self.topic, key, value))
        self.resent += len(resend)
        if self.resume_on_restart:
            self.resume_on_restart = False
            self.start()
        return len(resend)

    def _track(self, key: bytes | None, value: bytes | None, future: SendFuture) -> SendFuture:
        unacked = self._unacked
        while unacked and unacked[0][2].ok:
            unacked.popleft()
        if len(unacked) >= self._compact_at:  # sends completed out of order behind a slow one: compact
            kept = [entry for entry in unacked if not entry[2].ok]
            excess = len(kept) - MAX_UNACKED_READINGS + 1
            if excess > 0:  # still full of sends that failed for good: the application gives the oldest up
                failed = [i for i, entry in enumerate(kept) if entry[2].done][:excess]
                self.given_up += len(failed)
                dropped = set(failed)
                kept = [entry for i, entry in enumerate(kept) if i not in dropped]
            unacked.clear()
            unacked.extend(kept)
            self._compact_at = max(MAX_UNACKED_READINGS, 2 * len(kept))  # amortised: never once per send
        unacked.append((key, value, future))
        return future

    def set_serializer(self, name: str) -> None:
        """Encode the next records with serializer ``name`` (one of serde.SERIALIZERS); byte counts restart."""
        if name not in SERIALIZERS:
            raise ValueError(f"serializer must be one of {', '.join(SERIALIZERS)}, got {name!r}")
        self.serializer = serializer_for(name)
        self.value_bytes = 0  # value bytes sent with this serializer …
        self.serialized = 0  # … over this many records

    def _tick(self) -> None:
        count = int(self._carry)
        self._carry -= count
        for _ in range(count):
            self._send_one()

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
        key = self.next_key()
        if self.serializer.carries_fields:
            machine = int(key[8:]) if key is not None else self.sent % self.machines + 1  # b"machine-N"
            reading = TelemetryReading(self.client_id, self.sent, f"machine-{machine}",
                                       temperature_for(machine, self.sent), self.cluster.now_ms())
            value = self.serializer.encode(reading)
        else:
            value = TextSerializer.identity(self.client_id, self.sent)
        self.value_bytes += len(value)
        self.serialized += 1
        return self._track(key, value, self.producer.send(self.topic, key, value))

    def describe(self) -> dict[str, object]:
        return {**self.producer.describe(), "topic": self.topic, "rate_per_s": self.rate_per_s,
                "keys": self.keys, "machines": self.machines, "running": self.running,
                "serializer": self.serializer.name,
                "avg_value_bytes": round(self.value_bytes / self.serialized, 1) if self.serialized else None,
                "alive": self.producer.alive, "instance": self.instance, "producer_id": self.producer.producer_id,
                "previous_producer_ids": list(self.producer.previous_producer_ids),
                "crashes": self.producer.crashes, "unacked_at_crash": self.unacked_at_crash, "resent": self.resent}


class Sink:
    """A downstream system that consumers write to; idempotent ones ignore repeats by (key, sequence)."""

    def __init__(self, name: str = "sink", idempotent: bool = False) -> None:
        self.name = name
        self.idempotent = bool(idempotent)
        self.applied = 0
        self.ignored_repeats = 0
        self._seen: dict[tuple[bytes | None, str], int] = {}  # identity → times delivered
        self._twice: set[tuple[bytes | None, str]] = set()  # identities applied (not ignored) more than once

    def write(self, cluster: "Cluster", writer: str, tp: TopicPartition, record: Record) -> bool:
        """Apply one record; returns False if an idempotent sink recognised it as a repeat."""
        value = record.value.decode("utf-8", "backslashreplace") if record.value is not None else "null"
        identity = (record.key, value)  # the value ends in the producer's sequence number
        op = cluster.history_invoke(writer, "sink", (str(tp), value))
        times = self._seen.get(identity, 0)
        self._seen[identity] = times + 1
        if times and self.idempotent:
            self.ignored_repeats += 1
            cluster.history_complete(op, "fail", (str(tp), value))
            return False
        self.applied += 1
        if times:
            self._twice.add(identity)
        cluster.history_complete(op, "ok", (str(tp), value))
        return True

    def applied_twice(self) -> int:
        """Values the sink applied more than once (while it was not idempotent: what an idempotent one catches)."""
        return len(self._twice)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "idempotent": self.idempotent, "applied": self.applied,
                "ignored_repeats": self.ignored_repeats, "applied_twice": self.applied_twice()}


class LabConsumer:
    """A group member that processes ``rate_per_s`` records/s into a sink, committing per ``commit``."""

    def __init__(self, cluster: "Cluster", client_id: str, topic: str, group_id: str, *,
                 rate_per_s: int = 1000, commit: str = "after", sink: Sink | None = None,
                 config: ConsumerConfig | None = None) -> None:
        if commit not in COMMIT_STRATEGIES:
            raise ValueError(f"commit must be one of {COMMIT_STRATEGIES}, got {commit!r}")
        if topic not in cluster.topics:
            raise ValueError(f"unknown topic {topic!r}")
        self.cluster = cluster
        self.topic = topic
        self.commit = commit
        self.sink = sink
        self.rate_per_s = 0
        self.set_rate(rate_per_s)
        base = config or ConsumerConfig(auto_offset_reset="earliest")
        self.consumer = Consumer(cluster, client_id, replace(base, group_id=group_id,
                                                             enable_auto_commit=(commit == "auto")),
                                 auto_poll=False)
        self.processed = 0
        self.uncommitted = 0  # records processed since the last commit this consumer sent
        self.batch: list[tuple[TopicPartition, Record]] = []
        self.done: dict[TopicPartition, int] = {}  # last processed offset + 1 per partition (this batch on)
        self._carry = 0.0
        self._commit_in_flight: CommitFuture | None = None
        self._loop_generation = 0
        self.consumer.subscribe([topic], on_revoked=self._on_revoked, on_lost=self._on_lost)
        self._start_loop()

    @property
    def client_id(self) -> str:
        return self.consumer.node_id

    def set_rate(self, rate_per_s: int) -> None:
        require_int("rate_per_s", rate_per_s, 1, MAX_PROCESS_RATE_PER_S)
        self.rate_per_s = rate_per_s

    @property
    def mid_batch(self) -> bool:
        """Processing a polled batch: some of it done, some not, and no commit waiting."""
        return bool(self.batch) and bool(self.done) and self._commit_in_flight is None

    def crash(self) -> None:
        """Kill the process mid-batch: what it processed but did not commit will be processed again."""
        self.consumer.crash()
        self.batch.clear()
        self.done.clear()
        self._commit_in_flight = None
        self._loop_generation += 1

    def restart(self) -> None:
        self.consumer.restart()
        self._start_loop()

    def close(self) -> None:
        """Stop cleanly: finish nothing more, commit what was processed, leave the group."""
        if self.commit == "after" and self.done:
            self.consumer.commit_async(dict(self.done))
        self.batch.clear()
        self._loop_generation += 1
        self.consumer.close()

    def _start_loop(self) -> None:
        self._loop_generation += 1
        generation = self._loop_generation

        def tick() -> None:
            if generation != self._loop_generation or not self.consumer.alive:
                return
            self._work()
            self.cluster.schedule(TICK_MS, tick)

        self.cluster.schedule(TICK_MS, tick)

    def _work(self) -> None:
        if self._commit_in_flight is not None and not self._commit_in_flight.done:
            return  # commitSync: the application waits here
        self._commit_in_flight = None
        if not self.batch:
            self._carry = 0.0
            if self.commit != "after":
                self.done = {}
            self.batch = self.consumer.poll()
            if self.batch and self.commit == "before":
                positions = {}
                for tp, rec in self.batch:
                    positions[tp] = rec.offset + 1
                self._commit_in_flight = self.consumer.commit_sync(positions)
                self.uncommitted = 0
            return
        self._carry += self.rate_per_s * TICK_MS / 1000
        budget = int(self._carry)
        self._carry -= budget
        while budget > 0 and self.batch:
            tp, rec = self.batch.pop(0)
            budget -= 1
            if tp not in self.consumer.positions:
                continue  # revoked meanwhile
            if self.sink is not None:
                self.sink.write(self.cluster, self.client_id, tp, rec)
            self.processed += 1
            self.uncommitted += 1
            self.done[tp] = rec.offset + 1
        if not self.batch and self.commit == "after" and self.done:
            self._commit_in_flight = self.consumer.commit_sync(dict(self.done))
            self.done = {}
            self.uncommitted = 0

    def _on_revoked(self, partitions: tuple[TopicPartition, ...]) -> None:
        gone = set(partitions)
        if self.commit == "after":
            processed = {tp: off for tp, off in self.done.items() if tp in gone}
            if processed:
                self.consumer.commit_async(processed)  # commit progress before handing the partition on
        self._drop(gone)

    def _on_lost(self, partitions: tuple[TopicPartition, ...]) -> None:
        self._drop(set(partitions))

    def _drop(self, gone: set[TopicPartition]) -> None:
        self.batch = [(tp, rec) for tp, rec in self.batch if tp not in gone]
        for tp in gone:
            self.done.pop(tp, None)

    def describe(self) -> dict[str, object]:
        return {**self.consumer.describe(), "rate_per_s": self.rate_per_s, "commit": self.commit,
                "processed": self.processed, "batch_remaining": len(self.batch),
                "sink": self.sink.describe() if self.sink else None}


class TransactionalCopier:
    """Consume-transform-produce, exactly once: read a topic, write a copy, commit both in one transaction.

    Each round: ``poll()`` (read_committed), begin a transaction, send one output
    record per input record (same key, value ``<input>→<name>.<round>``), add the input
    positions with ``send_offsets_to_transaction`` (with this member's group
    generation, so a fenced member cannot commit them), commit. If anything
    fails the transaction is aborted and the consumer goes back to the group's
    committed offsets, so the round is redone from scratch. A crash leaves its
    transaction open; the restarted instance (same ``transactional.id``, new
    epoch) fences the old one and the coordinator aborts what it left.
    """

    def __init__(self, cluster: "Cluster", name: str, input_topic: str, output_topic: str, group_id: str, *,
                 max_records_per_txn: int = 50, transaction_timeout_ms: int = 10_000,
                 config: ConsumerConfig | None = None) -> None:
        for topic in (input_topic, output_topic):
            if topic not in cluster.topics:
                raise ValueError(f"unknown topic {topic!r}")
        require_int("max_records_per_txn", max_records_per_txn, 1, 10_000)
        self.cluster = cluster
        self.name = name
        self.output_topic = output_topic
        self.group_id = group_id
        self.max_records_per_txn = max_records_per_txn
        self.transaction_timeout_ms = transaction_timeout_ms
        base = config or ConsumerConfig(auto_offset_reset="earliest")
        self.consumer = Consumer(cluster, f"{name}-consumer", replace(
            base, group_id=group_id, enable_auto_commit=False, isolation_level="read_committed"), auto_poll=False)
        self.consumer.subscribe([input_topic], on_revoked=self._on_partitions_gone,
                                on_lost=self._on_partitions_gone)
        self.instance = 0
        self.copied = 0
        self.aborted_rounds = 0
        self.committed_rounds = 0
        self.rounds = 0
        self._phase = "init"
        self._future: Any = None
        self._loop = 0
        self._new_producer()
        self._start()

    def _new_producer(self) -> None:
        self.instance += 1
        self.producer = TransactionalProducer(self.cluster, f"{self.name}-producer#{self.instance}", self.name,
                                             transaction_timeout_ms=self.transaction_timeout_ms)
        self._future = self.producer.init_transactions()
        self._phase = "init"

    def _start(self) -> None:
        self._loop += 1
        loop = self._loop

        def tick() -> None:
            if loop == self._loop and self.consumer.alive:
                self._step()
                self.cluster.schedule(TICK_MS, tick)

        self.cluster.schedule(TICK_MS, tick)

    @property
    def mid_transaction(self) -> bool:
        """A round is open: records sent (or being sent) and not yet committed."""
        return (self._phase in ("in_txn", "committing") and self.producer.registered
                and self.producer.txn_state in ("in_transaction", "committing"))

    def crash(self) -> None:
        """Both clients die mid-round: the open transaction is left to the coordinator."""
        self._loop += 1
        self.consumer.crash()
        self.producer.crash()

    def restart(self) -> None:
        self.consumer.restart()
        self._new_producer()
        self._start()

    def _on_partitions_gone(self, partitions: tuple[TopicPartition, ...]) -> None:
        if self._phase == "in_txn":
            self._phase = "abort"  # the round read partitions we no longer own: it must not commit

    def _step(self) -> None:
        f = self._future
        if f is not None and not f.done:
            return
        if self.producer.fatal_error:
            # Fenced (e.g. the coordinator aborted a transaction that outlived transaction.timeout.ms and
            # bumped the epoch). Like Kafka Streams, start a fresh producer under the same transactional
            # id and redo the round from the committed offsets; a true zombie would be fenced again.
            self.cluster.events.emit(self.cluster.now_ms(), "CopierRecovered",
                                     f"{self.name} was fenced ({self.producer.fatal_error}); it starts a new "
                                     f"producer instance and re-reads from the group's committed offsets.",
                                     client=self.name)
            self.aborted_rounds += 1
            self._new_producer()
            if self.consumer.assignment:
                self.consumer.seek_to_committed()
            return
        if self._phase == "init":
            self._phase = "idle" if f.ok else "init"
            if not f.ok:
                self._future = self.producer.init_transactions()
            return
        if self._phase == "committing":
            if f.ok:
                self._phase = "idle"
                self.committed_rounds += 1
            else:
                self._abort()
            return
        if self._phase == "aborting":
            self.aborted_rounds += 1
            self._phase = "rewind"
        if self._phase == "rewind":
            self._rewind()
            return
        if self._phase == "abort":
            self._abort()
            return
        if self._phase != "idle":
            return
        g = self.consumer.group
        if g is None or g.phase != "stable" or g.awaiting_position:
            return
        records = self.consumer.poll(self.max_records_per_txn)
        if not records:
            return
        self.producer.begin_transaction()
        self._phase = "in_txn"
        self.rounds += 1
        for tp, rec in records:
            # Unique per attempt (a redone round writes new values), as the history's checker requires.
            value = (rec.value or b"") + f"→{self.name}.{self.rounds}".encode()
            self.producer.send(self.output_topic, rec.key, value)
        offsets = {tp: pos for tp, pos in self.consumer.positions.items() if pos is not None
                   and any(t == tp for t, _ in records)}
        offers = self.producer.send_offsets_to_transaction(offsets, self.group_id, g.generation, g.member_id)
        self.copied += len(records)

        def then_commit(result: Any) -> None:
            if self._phase != "in_txn":
                return
            if not result.ok:
                self._phase = "abort"
                return
            self._phase = "committing"
            self._future = self.producer.commit_transaction()

        offers.add_callback(then_commit)

    def _abort(self) -> None:
        if self.producer.txn_state in ("in_transaction",):
            self._phase = "aborting"
            self._future = self.producer.abort_transaction()
        else:
            self._phase = "rewind"

    def _rewind(self) -> None:
        """After an abort, read again from the group's committed offsets (the aborted round is redone)."""
        self.consumer.seek_to_committed()
        self._phase = "idle"

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "instance": self.instance, "copied": self.copied,
                "committed_rounds": self.committed_rounds, "aborted_rounds": self.aborted_rounds,
                "phase": self._phase,
                "producer": self.producer.describe(), "consumer": self.consumer.describe()}


class TransactionalTelemetry(_PacedSender):
    """Telemetry sent in transactions: ``records_per_txn`` records, then commit — or abort every ``abort_every``-th.

    Its records become visible to read_committed consumers only at the commit
    marker, and never if the transaction aborts; a read_uncommitted consumer
    sees them at once (and the checker calls reading an aborted one ``G1a``).
    """

    def __init__(self, cluster: "Cluster", client_id: str, topic: str, *, rate_per_s: int = 50,
                 records_per_txn: int = 10, abort_every: int = 0, machines: int = 20,
                 transaction_timeout_ms: int = 60_000) -> None:
        if topic not in cluster.topics:
            raise ValueError(f"unknown topic {topic!r}")
        require_int("records_per_txn", records_per_txn, 1, 10_000)
        require_int("abort_every", abort_every, 0, 1000)
        require_int("machines", machines, 1, MAX_MACHINES)
        self.cluster = cluster
        self.topic = topic
        self.keys = "machines"
        self.machines = machines
        self.records_per_txn = records_per_txn
        self.abort_every = abort_every
        self.producer = TransactionalProducer(cluster, client_id, f"{client_id}-txn",
                                              transaction_timeout_ms=transaction_timeout_ms)
        self.sent = 0
        self.transactions = 0
        self._in_txn = 0  # records sent in the open transaction
        self._ending: Any = None
        self._init_pacing(rate_per_s)

    min_rate_per_s = 1

    def _tick(self) -> None:
        p = self.producer
        self._carry = min(self._carry, float(self.records_per_txn))  # no backlog while waiting on a commit
        if p.fatal_error or not p.init_transactions().ok:
            return
        if self._ending is not None:
            if not self._ending.done:
                return
            self._ending = None
        if p.txn_state == "ready":
            p.begin_transaction()
            self._in_txn = 0
        while self._carry >= 1 and self._in_txn < self.records_per_txn and p.txn_state == "in_transaction":
            self._carry -= 1
            self._in_txn += 1
            self.sent += 1
            machine = self.sent % self.machines + 1
            p.send(self.topic, f"machine-{machine}".encode(), f"{self.client_id}-{self.sent}".encode())
        if self._in_txn >= self.records_per_txn and p.txn_state == "in_transaction":
            self.transactions += 1
            abort = self.abort_every > 0 and self.transactions % self.abort_every == 0
            self._ending = p.abort_transaction() if abort else p.commit_transaction()

    def describe(self) -> dict[str, object]:
        return {**self.producer.describe(), "topic": self.topic, "rate_per_s": self.rate_per_s,
                "keys": self.keys, "machines": self.machines, "running": self.running,
                "records_per_txn": self.records_per_txn, "abort_every": self.abort_every}
