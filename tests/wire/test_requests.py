"""Well-formed but hostile requests: every field a client controls, at values no library would send.

tests/wire/test_clients.py throws bytes at the listener (mutated and random
frames). This module goes one layer in: requests that decode cleanly, built by
Hypothesis from kio's own request classes for every (API, version) we serve,
with field values biased towards the lab's real names and towards the edges
(0, -1, huge). A listener that decodes a request must answer it or refuse it
with a Kafka error; it must never let it reach the engine in a form the engine
cannot take (an exception there would stop the lab's clock for every client).
The named cases below are the ones this search found, kept as plain tests (and
one more in tests/core_log/test_cluster.py: a topic deleted while its followers
fetch).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import socket
import struct
import time

import kio.serial
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.types import BrokerId, GroupId, ProducerId, TopicName, TransactionalId
from kio.static.constants import EntityType
from kio.static.primitive import Records, i16, i32, i64

from core_log.messages import TopicPartition
from core_log.records import ControlType, Compression, encode_batch, encode_control_batch, make_records
from core_log.wire import server as wire_server
from core_log.wire.codec import build, message_class
from tests.wire.clients import produce, read_all, wait_for
from tests.wire.harness import WireLab, read_frame

pytestmark = pytest.mark.slow
PARTITIONS = 3
PROTECTED = ("orders", "single")  # the fuzz may delete any topic but these, so later requests find data
NAMES = [*PROTECTED, "__consumer_offsets", "__transaction_state", "fuzz-group", "fuzz-txn", ""]
EXAMPLES = 400
ANSWER_TIMEOUT_S = 15.0

# Hypothesis resolves kio's field types through these (process-wide; only the wire tests use kio types):
# names the lab knows, and integers that are mostly small (valid partitions, offsets, epochs) or extreme.
_small = st.sampled_from([-1, 0, 1, 2])
for _type, _bits in ((i16, 16), (i32, 32), (i64, 64), (BrokerId, 32), (ProducerId, 64)):
    st.register_type_strategy(_type, st.one_of(_small, _small, st.integers(-3, 100),
                                               st.integers(-2 ** (_bits - 1), 2 ** (_bits - 1) - 1)))
for _type in (TopicName, GroupId, TransactionalId):
    st.register_type_strategy(_type, st.one_of(st.sampled_from(PROTECTED), st.sampled_from(NAMES),
                                               st.text(max_size=12)))


@st.composite
def _records(draw: st.DrawFn) -> Records:
    """Produce payloads: valid batches of every kind a client could forge, and garbage."""
    kind = draw(st.sampled_from(["plain", "idempotent", "transactional", "control", "two", "gzip", "garbage"]))
    records = make_records([(draw(st.sampled_from([None, b"k"])), b"v" * draw(st.integers(0, 40)))
                            for _ in range(draw(st.integers(1, 4)))], timestamp_ms=draw(st.integers(-5, 2**40)))
    pid, epoch, sequence = draw(st.integers(-2, 5)), draw(st.integers(-2, 3)), draw(st.integers(-2, 10))
    if kind == "plain":
        return Records(encode_batch(records))
    if kind in ("idempotent", "transactional"):
        return Records(encode_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=sequence,
                                    is_transactional=kind == "transactional"))
    if kind == "control":
        return Records(encode_control_batch(draw(st.sampled_from(list(ControlType))), producer_id=pid,
                                            producer_epoch=epoch, coordinator_epoch=0, timestamp_ms=1))
    if kind == "two":
        return Records(encode_batch(records) + encode_batch(records, producer_id=pid, producer_epoch=epoch,
                                                            base_sequence=sequence))
    if kind == "gzip":
        return Records(encode_batch(records, compression=Compression.GZIP))
    return Records(draw(st.binary(max_size=80)))


st.register_type_strategy(Records, _records())

REQUESTS = [message_class(key, version, EntityType.request)
            for key, (low, high) in sorted(wire_server.SUPPORTED.items()) for version in range(low, high + 1)]


@st.composite
def requests(draw: st.DrawFn) -> object:
    """A request of any served (API, version), its waits mostly short so the run stays quick."""
    request = draw(st.from_type(draw(st.sampled_from(REQUESTS))))
    for name in ("max_wait", "timeout", "rebalance_timeout", "session_timeout"):
        if hasattr(request, name) and draw(st.integers(0, 9)):
            request = dataclasses.replace(request, **{name: datetime.timedelta(milliseconds=draw(st.integers(0, 200)))})
    if hasattr(request, "topic_names") and set(PROTECTED) & set(request.topic_names or ()):
        request = dataclasses.replace(request, topic_names=tuple(n for n in request.topic_names if n not in PROTECTED))
    if type(request).__name__ == "DeleteTopicsRequest" and getattr(request, "topics", None):
        request = dataclasses.replace(request, topics=tuple(t for t in request.topics if t.name not in PROTECTED))
    return request


def _frame(request: object, correlation_id: int) -> bytes:
    cls = type(request)
    header_cls = cls.__header_schema__
    buf = io.BytesIO()
    kio.serial.entity_writer(header_cls)(buf, build(header_cls, {
        "request_api_key": cls.__api_key__, "request_api_version": cls.__version__,
        "correlation_id": correlation_id, "client_id": "hostile"}))
    kio.serial.entity_writer(cls)(buf, request)
    return struct.pack(">i", buf.tell()) + buf.getvalue()


def _exchange(lab: WireLab, request: object, correlation_id: int) -> object | None:
    """Send ``request`` on a new connection; its decoded response, or None when none is due (acks=0)."""
    cls = type(request)
    silent = cls.__api_key__ == 0 and request.acks == 0  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", lab.port(1)), timeout=1.0 if silent else ANSWER_TIMEOUT_S) \
            as sock:
        sock.sendall(_frame(request, correlation_id))
        try:
            body = read_frame(sock)
        except socket.timeout:
            assert silent, f"no answer in {ANSWER_TIMEOUT_S} s to {request!r:.300}"
            return None
    assert not silent, "an acks=0 produce was answered"
    response_cls = message_class(cls.__api_key__, cls.__version__, EntityType.response)
    header, used = kio.serial.entity_reader(response_cls.__header_schema__)(body, 0)
    assert header.correlation_id == correlation_id
    return kio.serial.entity_reader(response_cls)(body, used)[0]


@pytest.fixture()
def lab(tmp_path):
    # One broker: it leads every partition and coordinates every group and transaction, so each generated
    # request reaches the engine's handlers instead of stopping at NOT_LEADER_OR_FOLLOWER / NOT_COORDINATOR.
    with WireLab(str(tmp_path / "hostile"), brokers=1, topics={"orders": PARTITIONS, "single": 1}) as running:
        assert len(produce("kafka-python", running.bootstrap, "orders", [b"seed-%d" % i for i in range(30)],
                           client_id="seed")[0]) == 30
        yield running


def _engine_healthy(lab: WireLab, failures_before: int = 0, notes_before: int = 0) -> None:
    """The driver still moves the clock, and since the counts given the engine raised nothing and no
    handler failed on a request."""
    assert lab.server.engine_failures == failures_before, lab.server.errors[-3:]
    assert not [e for e in lab.server.errors[notes_before:] if "internal error" in e], lab.server.errors[-3:]
    before = lab.call(lab.cluster.now_ms)
    deadline = time.monotonic() + 5
    while lab.call(lab.cluster.now_ms) == before:
        assert time.monotonic() < deadline, "the lab's clock stopped"
        time.sleep(0.01)


_counter = iter(range(1, 1 << 30))


def test_any_decodable_request_is_answered_and_the_engine_keeps_running(lab):
    """Ensure each of 400 generated requests (a fixed sequence: derandomized), sent on its own connection, gets
    a response with its correlation id (or, for acks=0, none) within 15 s, and the engine took it without
    raising; afterwards a real client still produces and reads."""

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(request=requests())
    def each(request: object) -> None:
        failures, notes = lab.server.engine_failures, len(lab.server.errors)  # a failure names its own request
        _exchange(lab, request, next(_counter))
        _engine_healthy(lab, failures, notes)

    each()
    values = [b"after-%d" % i for i in range(20)]
    assert sorted(produce("confluent-kafka", lab.bootstrap, "single", values, client_id="after")[0]) == sorted(values)
    assert set(values) <= set(read_all("kafka-python", lab.bootstrap, "single", 1, 20, settle_s=0.5))


# ── what the search found ────────────────────────────────────────────────────
def _produce(lab: WireLab, topic: str, records: bytes) -> str:
    cls = message_class(0, 8, EntityType.request)
    response = _exchange(lab, build(cls, {
        "transactional_id": None, "acks": -1, "timeout": datetime.timedelta(seconds=5),
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}]}),
        next(_counter))
    return response.responses[0].partition_responses[0].error_code.name.upper()


def _leader(lab: WireLab, topic: str) -> int:
    return lab.call(lambda: lab.cluster.leader_of(TopicPartition(topic, 0)))


def _log_end(lab: WireLab, topic: str) -> int:
    tp = TopicPartition(topic, 0)
    return lab.call(lambda: lab.cluster.replica(lab.cluster.leader_of(tp), tp).log_end_offset)


def test_a_client_cannot_write_a_control_batch_two_batches_or_to_an_internal_topic(lab):
    """Ensure the leader refuses, with Kafka's codes, what only a coordinator may write or what would slip past
    the sequence check: a forged COMMIT marker (INVALID_RECORD), two batches for one partition (INVALID_RECORD),
    a batch for __consumer_offsets (INVALID_TOPIC_EXCEPTION); each is narrated, nothing is written, and a
    plain batch right after is accepted."""
    lab.call(lab.cluster.ensure_offsets_topic)
    wait_for(lambda: _leader(lab, "__consumer_offsets") >= 0, "__consumer_offsets to have a leader")
    end = _log_end(lab, "single")
    one = encode_batch(make_records([(b"k", b"v")], timestamp_ms=1))
    forged = encode_control_batch(ControlType.COMMIT, producer_id=7, producer_epoch=0, coordinator_epoch=0,
                                  timestamp_ms=1)
    assert _produce(lab, "single", forged) == "INVALID_RECORD"
    assert _produce(lab, "single", one + one) == "INVALID_RECORD"
    assert _log_end(lab, "single") == end
    refused = lab.call(lambda: [e.text for e in lab.cluster.events.of_kind("ProduceRefused")])
    assert any("control batch" in t for t in refused) and any("exactly one record batch" in t for t in refused)
    assert _produce(lab, "__consumer_offsets", one) == "INVALID_TOPIC_EXCEPTION"
    assert _produce(lab, "single", one) == "NONE"


def test_a_fetch_with_a_zero_partition_limit_returns_one_whole_batch(lab):
    """Ensure partition_max_bytes = 0 (the search's first find: it made the log raise inside the engine, which
    stopped the lab's clock) reads one whole batch, as Kafka's first partition is always read (minOneMessage)."""
    cls = message_class(1, 11, EntityType.request)
    response = _exchange(lab, build(cls, {
        "replica_id": -1, "max_wait": datetime.timedelta(0), "min_bytes": 1, "max_bytes": 0, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": "orders", "partitions": [{"partition": 0, "current_leader_epoch": -1,
                                                       "fetch_offset": 0, "log_start_offset": -1,
                                                       "partition_max_bytes": 0}]}]}), next(_counter))
    partition = response.responses[0].partitions[0]
    assert partition.error_code.name == "none" and partition.records
    _engine_healthy(lab)


def test_a_connection_that_sends_half_a_frame_is_closed_when_idle(lab, monkeypatch):
    """Ensure a client that sends part of a frame and stops is closed after CONNECTIONS_MAX_IDLE_S (Kafka's
    connections.max.idle.ms; shortened here), so it cannot hold one of MAX_CONNECTIONS for ever."""
    monkeypatch.setattr(wire_server, "CONNECTIONS_MAX_IDLE_S", 0.5)
    with socket.create_connection(("127.0.0.1", lab.port(1)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", 100) + b"only part of it")
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the listener
        assert time.monotonic() - started < 5
    # The listener notes why once its read of that connection has ended, a moment after the close.
    wait_for(lambda: any("connections.max.idle.ms" in e for e in lab.server.errors), "the idle close to be noted")
