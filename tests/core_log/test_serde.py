"""Serialisers for the telemetry reading (text, JSON, Avro, Protobuf) and the producer's serializer option."""

from __future__ import annotations

import json

import fastavro
import pytest

from core_log.checker import Checker
from core_log.cluster import Cluster
from core_log.consumer import ConsumerConfig
from core_log.history import value_text
from core_log.serde import (AVRO_SCHEMA, PROTO_FIELDS, SERIALIZERS, SerdeError, TelemetryReading,
                            proto_message_class, serializer_for, temperature_for)
from core_log.workloads import LabConsumer, Sink, TelemetryProducer

READINGS = [
    TelemetryReading("telemetry", 1, "machine-1", 41.5, 0),
    TelemetryReading("telemetry", 17, "machine-3", 61.9, 123_456),
    TelemetryReading("fleet.v2", 2 ** 40, "maschine-ü", -12.25, 1_700_000_000_000),
    TelemetryReading("p", 0, "m", 0.0, 2 ** 62),
]
FIELD_FORMATS = [name for name in SERIALIZERS if serializer_for(name).carries_fields]


@pytest.mark.parametrize("name", FIELD_FORMATS)
@pytest.mark.parametrize("reading", READINGS, ids=lambda r: f"seq{r.seq}")
def test_round_trip_keeps_every_field(name, reading):
    """Ensure decode(encode(r)) == r for JSON, Avro and Protobuf, and encoding is deterministic."""
    s = serializer_for(name)
    data = s.encode(reading)
    assert isinstance(data, bytes) and s.decode(data) == reading
    assert s.encode(reading) == data


def test_text_is_the_legacy_identity_only():
    """Ensure text encodes exactly <producer>-<seq> and decodes back to the identity with no fields."""
    s = serializer_for("text")
    data = s.encode(READINGS[1])
    assert data == b"telemetry-17"
    assert s.decode(data) == TelemetryReading("telemetry", 17)
    assert s.decode(b"a-b-c-9") == TelemetryReading("a-b-c", 9)


def test_formats_trade_self_description_for_size():
    """Ensure JSON carries its field names and is the largest; Avro carries no names or tags and is the smallest."""
    reading = READINGS[1]
    sizes = {name: len(serializer_for(name).encode(reading)) for name in SERIALIZERS}
    assert sizes["avro"] < sizes["protobuf"] < sizes["json"]
    assert b"machine_id" in serializer_for("json").encode(reading)
    assert b"machine_id" not in serializer_for("avro").encode(reading)
    assert b"machine_id" not in serializer_for("protobuf").encode(reading)
    for name in SERIALIZERS:
        info = serializer_for(name).describe()
        assert info["name"] == name and info["trade"].endswith(".")
    assert serializer_for("json").describe()["self_describing"] and not serializer_for("avro").describe()["self_describing"]


def test_avro_bytes_are_plain_avro_under_the_shared_schema():
    """Ensure our Avro bytes are what any Avro reader with the same schema decodes (and JSON is plain JSON)."""
    import io

    data = serializer_for("avro").encode(READINGS[2])
    assert fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(AVRO_SCHEMA), None) == READINGS[2].as_dict()
    assert json.loads(serializer_for("json").encode(READINGS[2])) == READINGS[2].as_dict()


def test_protobuf_message_is_built_from_the_descriptor():
    """Ensure the runtime-built message has PROTO_FIELDS' names and numbers, and the bytes start with field 1's tag."""
    cls = proto_message_class()
    assert [(f.name, f.number) for f in cls.DESCRIPTOR.fields] == [(n, num) for n, num, _ in PROTO_FIELDS]
    data = serializer_for("protobuf").encode(READINGS[1])
    assert data[0] == (1 << 3) | 2  # field 1, wire type 2 (length-delimited string)
    assert cls.FromString(data).machine_id == "machine-3"


@pytest.mark.parametrize("name", SERIALIZERS)
def test_malformed_bytes_raise_only_serde_error(name):
    """Ensure truncations, garbage and trailing bytes raise SerdeError naming the format, never anything else."""
    s = serializer_for(name)
    good = s.encode(READINGS[1])
    bad_inputs = [b"", b"\xff" * 12, good + b"\x00x", b"\x02\xff\xfe", b"{}", b"x" * 5000]
    bad_inputs += [good[:n] for n in range(1, len(good))]
    for bad in bad_inputs:
        try:
            decoded = s.decode(bad)
        except SerdeError as exc:
            assert name in str(exc)
            continue
        # a prefix can itself be a well-formed reading (e.g. protobuf without its last fields): then it is complete
        assert decoded.producer and decoded.seq >= 0


@pytest.mark.parametrize("name", FIELD_FORMATS)
def test_readings_that_cannot_be_encoded_are_refused(name):
    """Ensure a reading missing a field, with NaN or a negative seq, is refused with SerdeError."""
    s = serializer_for(name)
    for bad in (TelemetryReading("telemetry", 1), TelemetryReading("telemetry", -1, "m", 1.0, 0),
                TelemetryReading("telemetry", 1, "m", float("nan"), 0), TelemetryReading("", 1, "m", 1.0, 0),
                TelemetryReading("telemetry", 1, "m", 1.0, -5)):
        with pytest.raises(SerdeError):
            s.encode(bad)
    with pytest.raises(SerdeError, match="serializer must be one of"):
        serializer_for("xml")


def test_temperatures_are_deterministic_and_plausible():
    """Ensure the formula gives the same value for the same machine and seq, within 40–75 °C."""
    values = [temperature_for(m, s) for m in range(1, 50) for s in range(1, 50)]
    assert values == [temperature_for(m, s) for m in range(1, 50) for s in range(1, 50)]
    assert all(40.0 <= v <= 75.0 for v in values) and len(set(values)) > 50


# ── the producer's serializer option ─────────────────────────────────────────

def _cluster() -> Cluster:
    c = Cluster(brokers=3, seed=4, strict=True)
    c.create_topic("machine.telemetry", 6, 3)
    c.run_for(200)
    return c


def _values_in_log(c: Cluster) -> list[tuple[bytes | None, bytes]]:
    out = []
    for tp in c.partitions():
        if tp.topic != "machine.telemetry":
            continue
        log = c.replica(c.leader_of(tp), tp).log
        out.extend((r.key, r.value) for r in log.read_records(log.log_start_offset, log.log_end_offset))
    return out


def test_default_text_serializer_sends_the_same_bytes_as_before():
    """Ensure the default producer's values are exactly <client>-<n>, so existing scenarios are unchanged."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=0)
    futures = t.burst(50)
    c.run_for(3000)
    assert [f.value for f in futures] == [f"telemetry-{n}".encode() for n in range(1, 51)]
    assert sorted(v for _, v in _values_in_log(c)) == sorted(f.value for f in futures)
    info = t.describe()
    assert info["serializer"] == "text" and info["avg_value_bytes"] == round(sum(len(f.value) for f in futures) / 50, 1)


@pytest.mark.parametrize("name", FIELD_FORMATS)
def test_serialized_readings_land_in_the_log_and_decode(name):
    """Ensure a json/avro/protobuf producer's records decode to readings whose machine is the key, values are unique,
    and describe() reports the real average value size."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=0, machines=7, serializer=name)
    t.burst(70)
    c.run_for(3000)
    stored = _values_in_log(c)
    assert len(stored) == 70 and len({value_text(v) for _, v in stored}) == 70
    s = serializer_for(name)
    readings = [(key, s.decode(v)) for key, v in stored]
    assert all(key == r.machine_id.encode() and r.producer == "telemetry" for key, r in readings)
    assert sorted(r.seq for _, r in readings) == list(range(1, 71))
    assert all(r.temperature_c == temperature_for(int(r.machine_id[8:]), r.seq) for _, r in readings)
    info = t.describe()
    assert info["serializer"] == name
    assert info["avg_value_bytes"] == round(sum(len(v) for _, v in stored) / 70, 1)


def test_null_keys_still_carry_a_machine_and_switching_serializer_restarts_the_average():
    """Ensure keyless readings name a machine, and set_serializer changes the format of the next records only."""
    c = _cluster()
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=0, keys="null", machines=4,
                          serializer="avro")
    first = t.burst(8)
    assert all(serializer_for("avro").decode(f.value).machine_id.startswith("machine-") for f in first)
    t.set_serializer("json")
    second = t.burst(4)
    assert [json.loads(f.value)["seq"] for f in second] == [9, 10, 11, 12]
    assert t.describe()["avg_value_bytes"] == round(sum(len(f.value) for f in second) / 4, 1)
    with pytest.raises(ValueError, match="serializer must be one of"):
        t.set_serializer("yaml")


@pytest.mark.parametrize("name", ["avro", "protobuf"])
def test_checker_follows_binary_values_end_to_end(name):
    """Ensure binary values flow producer → log → consumer → sink and the checker finds no anomaly and no loss."""
    c = _cluster()
    checker = Checker()
    c.attach_checker(checker)
    t = TelemetryProducer(c, "telemetry", "machine.telemetry", rate_per_s=200, serializer=name)
    t.start()
    sink = Sink("db")
    worker = LabConsumer(c, "w1", "machine.telemetry", "g", rate_per_s=1000, sink=sink,
                         config=ConsumerConfig(auto_offset_reset="earliest", session_timeout_ms=10_000))
    c.run_for(8000)
    t.stop()
    assert c.run_until(lambda: worker.processed == t.sent, 30_000, step_ms=100)
    verdict = checker.verdict(final=True)
    assert verdict.valid, verdict.counts
    assert verdict.stats["sink"]["lost"] == 0 and sink.applied == t.sent
