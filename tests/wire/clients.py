"""The three real client libraries behind one small interface, so each wire test runs against all of them.

Every function drives the library as its own documentation says to; nothing is
patched. Producers return what the client reported acknowledged; group members
run on a thread until told to stop and report what they read and were assigned.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

WAIT_S = 30.0
CLIENT_NAMES = ("aiokafka", "confluent-kafka", "kafka-python")


# ── producers ────────────────────────────────────────────────────────────────
def produce(client: str, bootstrap: str, topic: str, values: list[bytes], *, client_id: str,
            between: Callable[[int], None] | None = None, pause_s: float = 0.0,
            request_timeout_ms: int = 10_000) -> tuple[list[bytes], list[str]]:
    """Send ``values`` (key = value's first byte group) idempotently with acks=all; (acked values, errors).

    ``between(i)`` runs after the i-th send (a test crashes a broker there); ``pause_s`` spaces the sends
    out in real time so a fault lands mid-stream.
    """
    acked: list[bytes] = []
    errors: list[str] = []
    key = lambda i: b"key-%d" % (i % 11)  # noqa: E731
    if client == "kafka-python":
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, client_id=client_id,
                                 request_timeout_ms=request_timeout_ms, retry_backoff_ms=100,
                                 delivery_timeout_ms=max(30_000, request_timeout_ms + 5_000))
        futures = []
        for i, v in enumerate(values):
            futures.append(producer.send(topic, key=key(i), value=v))
            if between:
                between(i)
            time.sleep(pause_s)
        producer.flush(WAIT_S)
        for v, f in zip(values, futures):
            try:
                f.get(timeout=WAIT_S)
                acked.append(v)
            except Exception as exc:  # a send the client gave up on
                errors.append(repr(exc))
        producer.close()
    elif client == "confluent-kafka":
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "client.id": client_id, "linger.ms": 2, "request.timeout.ms": request_timeout_ms,
                             "message.timeout.ms": max(30_000, request_timeout_ms + 5_000)})

        def delivered(err, msg) -> None:  # noqa: ANN001 (librdkafka's callback)
            (errors.append(str(err)) if err else acked.append(msg.value()))

        for i, v in enumerate(values):
            producer.produce(topic, key=key(i), value=v, on_delivery=delivered)
            producer.poll(0)
            if between:
                between(i)
            time.sleep(pause_s)
        assert producer.flush(WAIT_S + 10) == 0
    else:
        from aiokafka import AIOKafkaProducer

        async def run() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                        client_id=client_id, request_timeout_ms=request_timeout_ms,
                                        retry_backoff_ms=100)
            await producer.start()
            try:
                pending = []
                for i, v in enumerate(values):
                    pending.append((v, await producer.send(topic, key=key(i), value=v)))
                    if between:
                        between(i)
                    await asyncio.sleep(pause_s)
                for v, fut in pending:
                    try:
                        await asyncio.wait_for(fut, WAIT_S)
                        acked.append(v)
                    except Exception as exc:
                        errors.append(repr(exc))
            finally:
                await producer.stop()

        asyncio.run(run())
    return acked, errors


def produce_transactions(client: str, bootstrap: str, topic: str, committed: list[bytes],
                         aborted: list[bytes]) -> None:
    """One transaction of ``committed`` that commits, then one of ``aborted`` that aborts."""
    tid = f"txn-{client}"
    if client == "kafka-python":
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid, client_id=tid)
        producer.init_transactions()
        for values, commit in ((committed, True), (aborted, False)):
            producer.begin_transaction()
            for v in values:
                producer.send(topic, key=v[:3], value=v)
            producer.flush(WAIT_S)
            (producer.commit_transaction() if commit else producer.abort_transaction())
        producer.close()
    elif client == "confluent-kafka":
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "client.id": tid})
        producer.init_transactions(WAIT_S)
        for values, commit in ((committed, True), (aborted, False)):
            producer.begin_transaction()
            for v in values:
                producer.produce(topic, key=v[:3], value=v)
            producer.flush(WAIT_S)
            (producer.commit_transaction(WAIT_S) if commit else producer.abort_transaction(WAIT_S))
    else:
        from aiokafka import AIOKafkaProducer

        async def run() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid, client_id=tid)
            await producer.start()
            try:
                for values, commit in ((committed, True), (aborted, False)):
                    await producer.begin_transaction()
                    for v in values:
                        await producer.send(topic, key=v[:3], value=v)
                    await (producer.commit_transaction() if commit else producer.abort_transaction())
            finally:
                await producer.stop()

        asyncio.run(run())


# ── consumers ────────────────────────────────────────────────────────────────
def read_all(client: str, bootstrap: str, topic: str, partitions: int, expect: int, *,
             isolation: str = "read_uncommitted", settle_s: float = 0.0) -> list[bytes]:
    """Assign-mode read of every partition from the beginning until ``expect`` values (then ``settle_s`` more)."""
    got: list[bytes] = []
    deadline = time.monotonic() + WAIT_S
    if client == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level=isolation)
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        until = None
        while time.monotonic() < deadline and (until is None or time.monotonic() < until):
            for records in consumer.poll(timeout_ms=300).values():
                got.extend(r.value for r in records)
            if until is None and len(got) >= expect:
                until = time.monotonic() + settle_s
        consumer.close()
    elif client == "confluent-kafka":
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "assign-only", "enable.auto.commit": False,
                             "isolation.level": isolation})
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        until = None
        while time.monotonic() < deadline and (until is None or time.monotonic() < until):
            message = consumer.poll(0.3)
            if message is not None and not message.error():
                got.append(message.value())
            if until is None and len(got) >= expect:
                until = time.monotonic() + settle_s
        consumer.close()
    else:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        async def run() -> None:
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                        isolation_level=isolation)
            await consumer.start()
            try:
                consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
                await consumer.seek_to_beginning()
                until = None
                while time.monotonic() < deadline and (until is None or time.monotonic() < until):
                    for records in (await consumer.getmany(timeout_ms=300)).values():
                        got.extend(r.value for r in records)
                    if until is None and len(got) >= expect:
                        until = time.monotonic() + settle_s
            finally:
                await consumer.stop()

        asyncio.run(run())
    return got


@dataclass
class Member:
    """A group member on its own thread: ``start()``, wait on ``assigned``, ``stop()``; then read ``got``."""

    client: str
    bootstrap: str
    topic: str
    group: str
    name: str
    got: list[bytes] = field(default_factory=list)
    assignment: set[int] = field(default_factory=set)
    error: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "Member":
        self._thread = threading.Thread(target=self._guarded, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), f"{self.name} did not stop"
        assert not self.error, self.error

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported by stop() on the test's thread
            self.error = f"{self.name}: {exc!r}"

    def _run(self) -> None:
        if self.client == "kafka-python":
            from kafka import KafkaConsumer

            consumer = KafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, group_id=self.group,
                                     client_id=self.name, auto_offset_reset="earliest", enable_auto_commit=False)
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    self.got.extend(r.value for r in records)
                self.assignment = {tp.partition for tp in consumer.assignment()}
            consumer.commit()
            consumer.close()
        elif self.client == "confluent-kafka":
            from confluent_kafka import Consumer

            consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "client.id": self.name,
                                 "auto.offset.reset": "earliest", "enable.auto.commit": False})
            consumer.subscribe([self.topic])
            while not self._stop.is_set():
                message = consumer.poll(0.2)
                if message is not None and not message.error():
                    self.got.append(message.value())
                self.assignment = {tp.partition for tp in consumer.assignment()}
            if self.got:
                consumer.commit(asynchronous=False)
            consumer.close()
        else:
            from aiokafka import AIOKafkaConsumer

            async def run() -> None:
                consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, group_id=self.group,
                                            client_id=self.name, auto_offset_reset="earliest",
                                            enable_auto_commit=False)
                await consumer.start()
                try:
                    while not self._stop.is_set():
                        for records in (await consumer.getmany(timeout_ms=200)).values():
                            self.got.extend(r.value for r in records)
                        self.assignment = {tp.partition for tp in consumer.assignment()}
                    await consumer.commit()
                finally:
                    await consumer.stop()

            asyncio.run(run())


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``predicate`` in real time (the listener's driver moves the cluster meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
