"""Transactions over the wire: a real transactional producer, relayed to the engine's transaction coordinator.

InitProducerId (with a ``transactional.id``), AddPartitionsToTxn,
AddOffsetsToTxn, TxnOffsetCommit and EndTxn become the engine's messages of the
same names, sent to the broker the client connected to (the coordinator that
FindCoordinator with key type 1 named). The engine writes the transaction log,
fences older epochs, writes COMMIT/ABORT markers and keeps the LSO, so a
``read_committed`` consumer over the wire sees exactly what a lab consumer sees.

Differences from Kafka: TxnOffsetCommit v0–2 carries no generation or member
id, so the engine gets -1 and "" (Kafka skips the KIP-447 fencing check then too).
"""

from __future__ import annotations

from typing import Any

from core_log.messages import (
    REQUEST_TIMED_OUT,
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    TopicPartition,
    TxnOffsetCommitRequest,
)
from core_log.wire.gateway import DEFAULT_REPLY_TIMEOUT_S, NO_TIMEOUT, WireConnection


async def add_partitions_to_txn(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    tid = request.v3_and_below_transactional_id
    pid, epoch = int(request.v3_and_below_producer_id), int(request.v3_and_below_producer_epoch)
    partitions = tuple(TopicPartition(t.name, int(p)) for t in request.v3_and_below_topics for p in t.partitions)
    reply = await conn.answer(conn.ask(lambda c: AddPartitionsToTxnRequest(tid, pid, epoch, partitions, c)),
                              DEFAULT_REPLY_TIMEOUT_S)
    errors = {} if reply is None else dict(reply.errors)
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp in partitions:
        topics.setdefault(tp.topic, []).append({"partition_index": tp.partition,
                                                "partition_error_code": errors.get(tp, REQUEST_TIMED_OUT)})
    return {"throttle_time": NO_TIMEOUT, "results_by_topic_v3_and_below": [
        {"name": name, "results_by_partition": parts} for name, parts in topics.items()]}


async def add_offsets_to_txn(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    reply = await conn.answer(conn.ask(lambda c: AddOffsetsToTxnRequest(
        request.transactional_id, int(request.producer_id), int(request.producer_epoch), request.group_id, c)),
        DEFAULT_REPLY_TIMEOUT_S)
    return {"throttle_time": NO_TIMEOUT, "error_code": REQUEST_TIMED_OUT if reply is None else reply.error}


async def end_txn(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    reply = await conn.answer(conn.ask(lambda c: EndTxnRequest(
        request.transactional_id, int(request.producer_id), int(request.producer_epoch), bool(request.committed), c)),
        DEFAULT_REPLY_TIMEOUT_S)
    return {"throttle_time": NO_TIMEOUT, "error_code": REQUEST_TIMED_OUT if reply is None else reply.error}


async def txn_offset_commit(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    offsets = tuple((TopicPartition(t.name, int(p.partition_index)), int(p.committed_offset))
                    for t in request.topics for p in t.partitions)
    reply = await conn.answer(conn.ask(lambda c: TxnOffsetCommitRequest(
        request.transactional_id, request.group_id, int(request.producer_id), int(request.producer_epoch),
        int(getattr(request, "generation_id", -1)), getattr(request, "member_id", ""), offsets, c)),
        DEFAULT_REPLY_TIMEOUT_S)
    errors = {} if reply is None else dict(reply.errors)
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp, _ in offsets:
        topics.setdefault(tp.topic, []).append({"partition_index": tp.partition,
                                                "error_code": errors.get(tp, REQUEST_TIMED_OUT)})
    return {"throttle_time": NO_TIMEOUT, "topics": [{"name": n, "partitions": ps} for n, ps in topics.items()]}
