"""The kio glue: one dict builds a response for every version; bad frames get named errors."""

from __future__ import annotations

import struct

import pytest
from kio.schema.errors import ErrorCode
from kio.static.constants import EntityType

from core_log.wire.codec import FrameError, build, error_code, message_class, read_request, write_response


def test_build_drops_fields_a_version_lacks_and_refuses_to_guess_a_required_one():
    """Ensure the same Metadata partition dict builds v1 (no leader_epoch) and v8 (with it), and leaving out a
    field kio has no default for is a TypeError naming it, not a zero."""
    part = {"error_code": "NONE", "partition_index": 0, "leader_id": 1, "leader_epoch": -1,
            "replica_nodes": [1, 2], "isr_nodes": [1], "offline_replicas": []}
    for version in (1, 8):
        cls = message_class(3, version, EntityType.response)
        topic = build(cls, {"throttle_time": __import__("datetime").timedelta(0), "brokers": [],
                            "cluster_id": "c", "controller_id": 1,
                            "topics": [{"error_code": 0, "name": "t", "is_internal": False, "partitions": [part]}]})
        built = topic.topics[0].partitions[0]
        assert built.leader_id == 1 and built.isr_nodes == (1,)
        assert hasattr(built, "leader_epoch") == (version >= 7)
    from kio.schema.metadata.v8.response import MetadataResponsePartition

    with pytest.raises(TypeError, match="leader_id"):
        build(MetadataResponsePartition, {"error_code": "NONE", "partition_index": 0})


def test_error_names_map_to_kafka_codes():
    """Ensure the engine's error names become Kafka's numeric codes (unknown names: UNKNOWN_SERVER_ERROR)."""
    assert error_code("NOT_LEADER_OR_FOLLOWER") == ErrorCode.not_leader_or_follower == 6
    assert error_code("NONE") == error_code("") == 0
    assert error_code("NOT_ENOUGH_REPLICAS") == 19
    assert error_code("NO_SUCH_ERROR") == ErrorCode.unknown_server_error


def test_read_request_refuses_unsupported_versions_trailing_bytes_and_garbage():
    """Ensure each bad request is a FrameError that keeps the correlation id when the header was readable."""
    header = struct.pack(">hhih", 18, 0, 77, 1) + b"x"
    assert read_request(header, (0, 3))[0].correlation_id == 77
    for frame, versions in ((header, (1, 3)), (header + b"\x00", (0, 3)), (header, None)):
        with pytest.raises(FrameError) as err:
            read_request(frame, versions)
        assert err.value.correlation_id == 77
    with pytest.raises(FrameError):
        read_request(b"\x00\x03", (0, 8))
    with pytest.raises(FrameError):
        read_request(struct.pack(">hhih", 3, 8, 5, 200) + b"short", (0, 8))


def test_write_response_frames_the_header_and_body():
    """Ensure a response frame is size-prefixed and starts with the correlation id (v0 response header)."""
    frame = write_response(18, 0, 9, {"error_code": "NONE", "api_keys": [{"api_key": 0, "min_version": 3,
                                                                          "max_version": 8}]})
    size, correlation, error, count = struct.unpack_from(">iihi", frame)
    assert (size, correlation, error, count) == (len(frame) - 4, 9, 0, 1)
