"""Consumer groups and committed offsets over the wire: the classic protocol, relayed to the engine's coordinator.

FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit and
OffsetFetch each become the engine message of the same name, sent to the broker
the client connected to (a client talks to its group's coordinator directly, as
FindCoordinator told it). The engine's ``GroupCoordinator`` does the rest — the
initial rebalance delay, member ids (KIP-394), generations, session expiry,
offsets stored in ``__consumer_offsets`` — so a real client's group shows up in
the lab exactly like the lab's own consumers' groups. The subscription and
assignment bytes are the client's own (ConsumerProtocol), passed through.

Differences from Kafka: none in behaviour beyond the engine's own; the timeouts
we wait for a held JoinGroup/SyncGroup are the member's rebalance timeout plus
:data:`core_log.wire.gateway.ENGINE_REPLY_MARGIN_S`.
"""

from __future__ import annotations

from typing import Any

from core_log.messages import (
    NONE,
    REQUEST_TIMED_OUT,
    FindCoordinatorRequest,
    HeartbeatRequest,
    JoinGroupRequest,
    LeaveGroupRequest,
    OffsetCommitRequest,
    OffsetFetchRequest,
    SyncGroupRequest,
    TopicPartition,
)
from core_log.wire.gateway import DEFAULT_REPLY_TIMEOUT_S, ENGINE_REPLY_MARGIN_S, HOST, NO_TIMEOUT, WireConnection

#: A held JoinGroup or SyncGroup is waited for at most this long (Kafka's max rebalance timeout is 5 min).
MAX_GROUP_WAIT_S = 300.0


def _ms(delta: Any) -> int:
    return int(delta.total_seconds() * 1000) if hasattr(delta, "total_seconds") else int(delta)


async def find_coordinator(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    key_type = int(getattr(request, "key_type", 0))
    reply = await conn.answer(conn.ask(lambda c: FindCoordinatorRequest(request.key, c, key_type)),
                              DEFAULT_REPLY_TIMEOUT_S)
    ports = conn.ports()
    if reply is None or reply.error != NONE or reply.coordinator not in ports:
        error = REQUEST_TIMED_OUT if reply is None else reply.error if reply.error != NONE else \
            "COORDINATOR_NOT_AVAILABLE"
        return {"throttle_time": NO_TIMEOUT, "error_code": error, "error_message": None, "node_id": -1,
                "host": "", "port": -1}
    return {"throttle_time": NO_TIMEOUT, "error_code": NONE, "error_message": None, "node_id": reply.coordinator,
            "host": HOST, "port": ports[reply.coordinator]}


async def join_group(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    session_ms = _ms(request.session_timeout)
    rebalance_ms = _ms(getattr(request, "rebalance_timeout", request.session_timeout))
    conn.rebalance_timeout_ms = rebalance_ms
    protocols = tuple((p.name, bytes(p.metadata)) for p in request.protocols)
    instance = getattr(request, "group_instance_id", None)
    reply = await conn.answer(conn.ask(lambda c: JoinGroupRequest(
        request.group_id, request.member_id, instance, conn.client_id, session_ms, rebalance_ms,
        request.protocol_type, protocols, c)), min(MAX_GROUP_WAIT_S, rebalance_ms / 1000 + ENGINE_REPLY_MARGIN_S))
    if reply is None:
        return {"throttle_time": NO_TIMEOUT, "error_code": REQUEST_TIMED_OUT, "generation_id": -1,
                "protocol_name": "", "leader": "", "member_id": request.member_id, "members": []}
    return {"throttle_time": NO_TIMEOUT, "error_code": reply.error, "generation_id": reply.generation,
            "protocol_name": reply.protocol or "", "leader": reply.leader, "member_id": reply.member_id,
            "members": [{"member_id": m, "group_instance_id": i, "metadata": meta} for m, i, meta in reply.members]}


async def sync_group(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    assignments = tuple((a.member_id, bytes(a.assignment)) for a in request.assignments)
    instance = getattr(request, "group_instance_id", None)
    wait_s = min(MAX_GROUP_WAIT_S, conn.rebalance_timeout_ms / 1000 + ENGINE_REPLY_MARGIN_S)
    reply = await conn.answer(conn.ask(lambda c: SyncGroupRequest(
        request.group_id, int(request.generation_id), request.member_id, instance, assignments, c)), wait_s)
    if reply is None:
        return {"throttle_time": NO_TIMEOUT, "error_code": REQUEST_TIMED_OUT, "assignment": b""}
    return {"throttle_time": NO_TIMEOUT, "error_code": reply.error, "assignment": reply.assignment}


async def heartbeat(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    instance = getattr(request, "group_instance_id", None)
    reply = await conn.answer(conn.ask(lambda c: HeartbeatRequest(
        request.group_id, int(request.generation_id), request.member_id, instance, c)), DEFAULT_REPLY_TIMEOUT_S)
    return {"throttle_time": NO_TIMEOUT, "error_code": REQUEST_TIMED_OUT if reply is None else reply.error}


async def leave_group(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    if hasattr(request, "members"):  # v3+: several members (static members leaving by instance id)
        leaving = [(m.member_id, getattr(m, "group_instance_id", None)) for m in request.members]
    else:
        leaving = [(request.member_id, None)]
    errors = []
    for member_id, instance in leaving:
        reply = await conn.answer(conn.ask(lambda c, m=member_id, i=instance: LeaveGroupRequest(
            request.group_id, m, i, "the client left (LeaveGroup over the wire)", c)), DEFAULT_REPLY_TIMEOUT_S)
        errors.append(REQUEST_TIMED_OUT if reply is None else reply.error)
    top = next((e for e in errors if e != NONE), NONE) if not hasattr(request, "members") else NONE
    return {"throttle_time": NO_TIMEOUT, "error_code": top,
            "members": [{"member_id": m, "group_instance_id": i, "error_code": e}
                        for (m, i), e in zip(leaving, errors)]}


async def offset_commit(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    generation = int(getattr(request, "generation_id_or_member_epoch", getattr(request, "generation_id", -1)))
    instance = getattr(request, "group_instance_id", None)
    offsets = tuple((TopicPartition(t.name, int(p.partition_index)), int(p.committed_offset),
                     int(getattr(p, "committed_leader_epoch", -1)), p.committed_metadata or "")
                    for t in request.topics for p in t.partitions)
    reply = await conn.answer(conn.ask(lambda c: OffsetCommitRequest(
        request.group_id, generation, request.member_id, instance, offsets, c)), DEFAULT_REPLY_TIMEOUT_S)
    errors = {} if reply is None else dict(reply.errors)
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp, *_ in offsets:
        topics.setdefault(tp.topic, []).append({"partition_index": tp.partition,
                                                "error_code": errors.get(tp, REQUEST_TIMED_OUT)})
    return {"throttle_time": NO_TIMEOUT, "topics": [{"name": n, "partitions": ps} for n, ps in topics.items()]}


async def offset_fetch(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    partitions = None if request.topics is None else tuple(
        TopicPartition(t.name, int(p)) for t in request.topics for p in t.partition_indexes)
    reply = await conn.answer(conn.ask(lambda c: OffsetFetchRequest(request.group_id, partitions, c)),
                              DEFAULT_REPLY_TIMEOUT_S)
    if reply is None:
        return {"throttle_time": NO_TIMEOUT, "topics": [], "error_code": REQUEST_TIMED_OUT}
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp, offset, metadata in reply.offsets:
        topics.setdefault(tp.topic, []).append({"partition_index": tp.partition, "committed_offset": offset,
                                                "committed_leader_epoch": -1, "metadata": metadata or "",
                                                "error_code": NONE})
    return {"throttle_time": NO_TIMEOUT, "topics": [{"name": n, "partitions": ps} for n, ps in topics.items()],
            "error_code": reply.error}
