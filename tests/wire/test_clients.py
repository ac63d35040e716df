"""Real Kafka clients (kafka-python, confluent-kafka/librdkafka, aiokafka) against the engine's wire listeners.

Each test starts a 3-broker cluster with real segment files and a listener per
broker on 127.0.0.1 (tests/wire/harness.py), then drives an unmodified client
library at it. Real time, bounded waits; nothing here sleeps to wait for the engine.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

from core_log.messages import TopicPartition as EngineTP
from tests.wire.clients import CLIENT_NAMES, produce, read_all, wait_for
from tests.wire.harness import WireLab, read_frame

pytestmark = pytest.mark.slow
RECORDS = 200
PARTITIONS = 3
WAIT_S = 30.0


@pytest.fixture()
def lab(tmp_path):
    with WireLab(str(tmp_path / "brokers"), topics={"orders": PARTITIONS}) as running:
        yield running


# ── produce and consume, each client ─────────────────────────────────────────
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_a_real_client_produces_into_the_engine_and_consumes_back(lab, client):
    """Ensure an unmodified client library's idempotent acks=all produce lands in the engine's logs (read back
    from the leaders' segment files), keyed records stay on one partition each (the clients' murmur2 is the
    engine's), the followers replicate it all, and the library's consumer reads every record back."""
    values = [f"{client}-{i}".encode() for i in range(RECORDS)]
    acked, errors = produce(client, lab.bootstrap, "orders", values, client_id=f"{client}-producer")
    assert sorted(acked) == sorted(values), errors
    assert sorted(read_all(client, lab.bootstrap, "orders", PARTITIONS, RECORDS)) == sorted(values)
    stored = lab.log_values("orders", PARTITIONS)
    assert sorted(v for vs in stored.values() for v in vs) == sorted(values)
    key_partitions: dict[bytes, set[int]] = {}
    for i, v in enumerate(values):  # produce() keys record i with b"key-<i % 11>"
        key_partitions.setdefault(b"key-%d" % (i % 11), set()).add(next(p for p, vs in stored.items() if v in vs))
    assert all(len(parts) == 1 for parts in key_partitions.values())
    for p in range(PARTITIONS):  # no record written twice
        assert len(stored[p]) == len(set(stored[p]))

    def replicated() -> bool:  # every replica of every partition has every record: real replication ran
        return all(lab.cluster.replica(b, EngineTP("orders", p)).log_end_offset ==
                   lab.cluster.replica(lab.cluster.leader_of(EngineTP("orders", p)), EngineTP("orders", p)).log_end_offset
                   for p in range(PARTITIONS) for b in lab.cluster.brokers)
    wait_for(lambda: lab.call(replicated), "the followers to catch up")


# ── the listeners follow the brokers ─────────────────────────────────────────
def test_a_crashed_brokers_port_refuses_connections_and_reopens_on_restart(lab):
    """Ensure a killed broker's port refuses TCP connections (as a dead Kafka broker's would) and the same
    port accepts again once the broker restarts."""
    port = lab.port(2)
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    lab.call(lambda: lab.cluster.crash_broker(2))
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            break
        except ConnectionResetError:
            pass  # accepted just as the listener closed: not yet refusing
        assert time.monotonic() < deadline, "the port still accepts connections"
        time.sleep(0.02)
    lab.call(lambda: lab.cluster.restart_broker(2))
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except (ConnectionRefusedError, ConnectionResetError):
            assert time.monotonic() < deadline, "the port never reopened"
            time.sleep(0.02)


# ── robustness: bad frames ───────────────────────────────────────────────────
def _frame(api_key: int, version: int, correlation_id: int, body: bytes, client_id: bytes = b"raw") -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(header) + len(body)) + header + body


def test_an_api_versions_request_of_an_unknown_version_gets_a_v0_reply_not_a_disconnect(lab):
    """Ensure ApiVersions v9 is answered (correlation id kept) with error 35 UNSUPPORTED_VERSION and the list of
    versions we serve, in v0 layout, and the connection stays open for the retry at a version we know."""
    with socket.create_connection(("127.0.0.1", lab.port(1)), timeout=10) as sock:
        sock.sendall(_frame(18, 9, 41, b""))
        reply = read_frame(sock)
        correlation, error, count = struct.unpack_from(">ihi", reply)
        assert (correlation, error) == (41, 35) and count >= 6
        keys = {struct.unpack_from(">hhh", reply, 10 + 6 * i)[0] for i in range(count)}
        assert {0, 1, 2, 3, 18, 22} <= keys
        sock.sendall(_frame(18, 0, 42, b""))
        assert struct.unpack_from(">ih", read_frame(sock)) == (42, 0)


def test_bad_frames_close_only_their_connection_and_a_fuzz_of_10000_frames_leaves_the_listener_serving(lab):
    """Ensure an oversized size prefix and garbage close that connection only; then 10,000 random and mutated
    frames, each sent and answered (or its connection closed) before the next, leave every broker serving."""
    with socket.create_connection(("127.0.0.1", lab.port(1)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", 512 * 1024 * 1024))  # a claimed 512 MiB frame: refused unread
        assert sock.recv(1) == b""
    valid = [_frame(18, 0, 1, b""), _frame(3, 1, 2, struct.pack(">i", 1) + struct.pack(">h", 6) + b"orders"),
             _frame(2, 1, 3, struct.pack(">ii", -1, 1) + struct.pack(">h", 6) + b"orders" +
                    struct.pack(">iiq", 1, 0, -1))]
    rng = random.Random(7)
    sock: socket.socket | None = None
    answered = closed = 0
    for i in range(10_000):
        frame = bytearray(rng.choice(valid))
        kind = rng.random()
        truncated = False
        if kind < 0.4:  # flip a few bytes after the size prefix
            for _ in range(rng.randint(1, 4)):
                frame[rng.randrange(4, len(frame))] = rng.randrange(256)
        elif kind < 0.7:  # a random body behind a plausible header, for any api key and version
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            frame = bytearray(_frame(rng.choice([0, 1, 2, 3, 18, 22, 99]), rng.randint(-1, 15), i, body))
        elif kind < 0.8:  # cut short: the size promises more than ever comes
            frame, truncated = frame[:rng.randint(4, len(frame) - 1)], True
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", lab.port(1 + i % 3)), timeout=10)
        sock.sendall(bytes(frame))
        if truncated:
            sock.close()  # the listener is left waiting for the rest, then sees the connection end
            sock = None
            continue
        try:
            sock.settimeout(2.0)
            read_frame(sock)
            answered += 1
        except (ConnectionError, socket.timeout, OSError):
            closed += 1  # refused: the listener closed this connection; the next frame gets a new one
            sock.close()
            sock = None
    if sock is not None:
        sock.close()
    assert answered > 1_000 and closed > 1_000, (answered, closed)  # both paths were exercised, many times
    assert lab.server.frames_read >= 8_500, lab.server.frames_read  # every whole frame reached the listener
    values = [b"after-fuzz-%d" % i for i in range(30)]
    assert sorted(produce("kafka-python", lab.bootstrap, "orders", values, client_id="after-fuzz")[0]) == sorted(values)
    assert sorted(read_all("kafka-python", lab.bootstrap, "orders", PARTITIONS, 30)) == sorted(values)


def test_acks_0_gets_no_response_and_its_records_still_land(lab):
    """Ensure a kafka-python acks=0 producer (which reads no answers: an answer would be taken for the next
    request's) writes every record, and the connection keeps working for a following Metadata request."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=lab.bootstrap, acks=0, enable_idempotence=False, client_id="kp-acks0")
    for i in range(50):
        producer.send("orders", key=b"a", value=b"zero-%d" % i)
    producer.flush(WAIT_S)
    assert producer.partitions_for("orders") == {0, 1, 2}  # the same connections answer the next request
    producer.close()
    deadline = time.monotonic() + WAIT_S
    while sum(len(v) for v in lab.log_values("orders", PARTITIONS).values()) < 50:
        assert time.monotonic() < deadline, "acks=0 records never arrived"
        time.sleep(0.05)


def test_a_batch_over_the_topics_max_message_bytes_gets_message_too_large(lab):
    """Ensure a 1.5 MB record (the topic's max.message.bytes is Kafka's 1,048,588) is refused with Kafka's
    MESSAGE_TOO_LARGE (code 10) — the client's own error — and the listener serves the next request."""
    from kafka import KafkaProducer
    from kafka.errors import MessageSizeTooLargeError

    producer = KafkaProducer(bootstrap_servers=lab.bootstrap, max_request_size=4_000_000, retries=0)
    with pytest.raises(MessageSizeTooLargeError):
        producer.send("orders", value=b"x" * 1_500_000).get(timeout=WAIT_S)
    assert producer.send("orders", value=b"small").get(timeout=WAIT_S).offset >= 0
    producer.close()


def test_a_client_that_never_reads_its_answers_does_not_hold_up_the_others(lab):
    """Ensure a connection that sends Metadata requests and reads none of the answers, until the listener
    stops reading it (its answers fill the socket buffers, so the listener's write to it waits and our
    sends block), leaves every other client served: a kafka-python producer and consumer run to completion
    meanwhile."""
    metadata = _frame(3, 1, 7, struct.pack(">i", 1) + struct.pack(">h", 6) + b"orders") * 1_000
    stuck = socket.create_connection(("127.0.0.1", lab.port(1)), timeout=10)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stuck.settimeout(1.0)
        blocked = False
        for _ in range(2_000):  # at most 2,000,000 requests (~50 MB) before calling the test failed
            try:
                stuck.sendall(metadata)
            except socket.timeout:
                blocked = True  # the listener stopped reading this connection: its answers are not being read
                break
        assert blocked, "the listener kept reading a client that never reads its answers"
        values = [b"meanwhile-%d" % i for i in range(40)]
        acked, errors = produce("kafka-python", lab.bootstrap, "orders", values, client_id="unaffected")
        assert sorted(acked) == sorted(values), errors
        assert sorted(read_all("kafka-python", lab.bootstrap, "orders", PARTITIONS, 40)) == sorted(values)
    finally:
        stuck.close()
