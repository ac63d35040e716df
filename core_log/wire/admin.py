"""AdminClient calls over the wire: create, delete and describe topics, list and describe groups, delete records.

Topic changes go to the cluster's controller the way the lab's own controls do
(``Cluster.create_topic`` / ``delete_topic``), with the same validation and the
same narrated events; group descriptions are the engine's group coordinator's
answers (DescribeGroup to the broker the client connected to).

Differences from Kafka: the controller is not a separate quorum reached over
the network (DESIGN.md: it is assumed healthy), so CreateTopics/DeleteTopics are
applied at once on any broker; manual replica assignments are refused
(INVALID_REQUEST); ``validate_only`` checks without creating. DescribeGroups
reports each member's assignment re-encoded from the coordinator's record (the leader's user data is
not kept) and no subscription bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from core_log.cluster import _LOG_CONFIG_KEYS  # Kafka config name → LogConfig field: the one mapping
from core_log.cluster import MAX_PARTITIONS, TOPIC_CONFIG_KEYS, ClusterError
from core_log.consumer_protocol import encode_assignment
from core_log.messages import NONE, REQUEST_TIMED_OUT, DeleteRecordsRequest, DescribeGroupRequest, TopicPartition
from core_log.wire.gateway import (
    AUTO_CREATE_PARTITIONS,
    AUTO_CREATE_REPLICATION,
    DEFAULT_REPLY_TIMEOUT_S,
    NO_TIMEOUT,
    WireConnection,
)

#: DescribeConfigs resource types (Kafka's ConfigResource.Type).
TOPIC_RESOURCE, BROKER_RESOURCE = 2, 4
#: DescribeConfigs config sources (Kafka's ConfigSource ids: topic, static broker setting, default).
TOPIC_CONFIG_SOURCE, STATIC_BROKER_CONFIG_SOURCE, DEFAULT_CONFIG_SOURCE = 1, 4, 5


def config_value(text: str | None) -> Any:
    """A config value as the engine takes it: ``"true"``/``"false"`` → bool, whole numbers → int, else text."""
    if text is None:
        return None
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(low)
    except ValueError:
        pass
    try:
        return float(low)
    except ValueError:
        return text.strip()


def _config_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


async def create_topics(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    return {"throttle_time": NO_TIMEOUT, "topics": await conn.engine(lambda: _create_topics(conn.cluster, request))}


def _create_topics(cluster: Any, request: Any) -> list[dict[str, Any]]:
    """Validate and create each requested topic (on the cluster's thread); one result per topic."""
    results = []
    for topic in request.topics:
        partitions = AUTO_CREATE_PARTITIONS if topic.num_partitions == -1 else int(topic.num_partitions)
        replication = min(AUTO_CREATE_REPLICATION, len(cluster.brokers)) if topic.replication_factor == -1 \
            else int(topic.replication_factor)
        configs = {c.name: config_value(c.value) for c in topic.configs}
        error, message = NONE, None
        if topic.name in cluster.topics:
            error, message = "TOPIC_ALREADY_EXISTS", f"topic {topic.name!r} already exists"
        elif topic.assignments:
            error, message = "INVALID_REQUEST", "manual replica assignments are not supported; give a count"
        elif not 1 <= partitions <= MAX_PARTITIONS:
            error, message = "INVALID_PARTITIONS", f"a topic has 1 to {MAX_PARTITIONS} partitions, got {partitions}"
        elif not 1 <= replication <= len(cluster.brokers):
            error, message = "INVALID_REPLICATION_FACTOR", \
                f"replication factor must be 1 to {len(cluster.brokers)} (the brokers), got {replication}"
        elif sorted(set(configs) - set(TOPIC_CONFIG_KEYS)):
            error, message = "INVALID_CONFIG", f"unknown topic config {sorted(set(configs) - set(TOPIC_CONFIG_KEYS))[0]!r}"
        elif not getattr(request, "validate_only", False):
            try:
                cluster.create_topic(topic.name, partitions, replication, configs)
            except ClusterError as exc:
                error = "INVALID_CONFIG" if "config" in str(exc) or "min.insync" in str(exc) \
                    else "INVALID_TOPIC_EXCEPTION"
                message = str(exc)
        results.append({"name": topic.name, "error_code": error, "error_message": message})
    return results


async def delete_topics(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    return {"throttle_time": NO_TIMEOUT, "responses": await conn.engine(lambda: _delete_topics(conn, request))}


def _delete_topics(conn: WireConnection, request: Any) -> list[dict[str, Any]]:
    responses = []
    for name in request.topic_names:
        error = NONE
        if name not in conn.cluster.topics:
            error = "UNKNOWN_TOPIC_OR_PARTITION"
        else:
            try:
                conn.cluster.delete_topic(name)
            except ClusterError:
                error = "TOPIC_DELETION_DISABLED"  # an internal topic: Kafka refuses to delete those too
        responses.append({"name": name, "error_code": error})
    return responses


def _topic_configs(conn: WireConnection, name: str) -> list[dict[str, Any]]:
    topic = conn.cluster.topics[name]
    log_fields = {f.name for f in dataclasses.fields(topic.log_config)}
    out = []
    for key in TOPIC_CONFIG_KEYS:
        if key == "min.insync.replicas":
            value: Any = topic.min_insync_replicas
        elif key == "unclean.leader.election.enable":
            value = topic.unclean_leader_election
        elif _LOG_CONFIG_KEYS.get(key) in log_fields:
            value = getattr(topic.log_config, _LOG_CONFIG_KEYS[key])
        else:
            continue
        out.append({"name": key, "value": _config_text(value), "read_only": False,
                    "config_source": TOPIC_CONFIG_SOURCE if key in topic.configs else DEFAULT_CONFIG_SOURCE,
                    "is_default": key not in topic.configs, "is_sensitive": False, "synonyms": []})
    return out


#: ClusterConfig fields whose Kafka name is not the field name with dots (the rest are), or None: not Kafka's.
_BROKER_CONFIG_NAMES = {"log_maintenance_interval_ms": "log.retention.check.interval.ms",
                        "controller_check_interval_ms": None}


def _broker_configs(conn: WireConnection, broker_id: int) -> list[dict[str, Any]]:
    """A broker's settings under Kafka's names: the cluster's ClusterConfig (each broker of a lab shares it)
    and how a topic is auto-created. A value the lab changed from its default says so (STATIC_BROKER_CONFIG)."""
    config = conn.cluster.config
    defaults = type(config)()
    out = [("broker.id", str(broker_id), False), ("auto.create.topics.enable", "true", True),
           ("num.partitions", str(AUTO_CREATE_PARTITIONS), True),
           ("default.replication.factor", str(min(AUTO_CREATE_REPLICATION, len(conn.cluster.brokers))), True)]
    for f in dataclasses.fields(config):
        name = _BROKER_CONFIG_NAMES.get(f.name, f.name.replace("_", "."))
        if name is not None:
            value = getattr(config, f.name)
            out.append((name, _config_text(value), value == getattr(defaults, f.name)))
    return [{"name": name, "value": value, "read_only": True, "is_sensitive": False, "synonyms": [],
             "config_source": DEFAULT_CONFIG_SOURCE if is_default else STATIC_BROKER_CONFIG_SOURCE,
             "is_default": is_default} for name, value, is_default in out]


async def describe_configs(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    return {"throttle_time": NO_TIMEOUT, "results": await conn.engine(lambda: _describe_configs(conn, request))}


def _describe_configs(conn: WireConnection, request: Any) -> list[dict[str, Any]]:
    results = []
    for resource in request.resources:
        rtype, name = int(resource.resource_type), resource.resource_name
        keys = resource.configuration_keys
        error, message, configs = NONE, None, []
        if rtype == TOPIC_RESOURCE:
            if name not in conn.cluster.topics:
                error, message = "UNKNOWN_TOPIC_OR_PARTITION", f"no topic {name!r}"
            else:
                configs = _topic_configs(conn, name)
        elif rtype == BROKER_RESOURCE:
            if name not in {str(b) for b in conn.cluster.brokers}:
                error, message = "INVALID_REQUEST", f"no broker {name!r} (brokers: {sorted(conn.cluster.brokers)})"
            else:
                configs = _broker_configs(conn, int(name))
        else:
            error, message = "INVALID_REQUEST", f"resource type {rtype} is not described here (topics: 2, brokers: 4)"
        if keys is not None:
            configs = [c for c in configs if c["name"] in keys]
        results.append({"error_code": error, "error_message": message, "resource_type": rtype,
                        "resource_name": name, "configs": configs})
    return results


async def list_groups(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    """The groups this broker coordinates (Kafka answers ListGroups per broker; the AdminClient asks them all)."""
    groups = [g for g in await conn.engine(conn.cluster.describe_groups) if g.get("coordinator") == conn.broker_id]
    return {"throttle_time": NO_TIMEOUT, "error_code": NONE,
            "groups": [{"group_id": g["group_id"], "protocol_type": "consumer", "group_state": g.get("state", "")}
                       for g in groups]}


async def describe_groups(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    out = []
    for group_id in request.groups:
        reply = await conn.answer(conn.ask(lambda c, g=group_id: DescribeGroupRequest(g, c)), DEFAULT_REPLY_TIMEOUT_S)
        if reply is None or reply.error != NONE:
            out.append({"error_code": REQUEST_TIMED_OUT if reply is None else reply.error, "group_id": group_id,
                        "group_state": "", "protocol_type": "", "protocol_data": "", "members": []})
            continue
        group = reply.group
        out.append({"error_code": NONE, "group_id": group_id, "group_state": group.get("state", ""),
                    "protocol_type": "consumer", "protocol_data": group.get("protocol") or "",
                    "members": [{"member_id": m.get("member_id", ""), "group_instance_id": m.get("group_instance_id"),
                                 "client_id": m.get("client_id", ""), "client_host": "/127.0.0.1",
                                 "member_metadata": b"",
                                 "member_assignment": encode_assignment(_partitions(m.get("assignment", [])))}
                                for m in group.get("members", [])],
                    "authorized_operations": -2147483648})
    return {"throttle_time": NO_TIMEOUT, "groups": out}


async def delete_records(conn: WireConnection, request: Any, version: int) -> dict[str, Any]:
    """Each partition's leader moves its log start up (the client sends each partition to its leader)."""
    wanted = [(t.name, p) for t in request.topics for p in t.partitions]
    replies = await asyncio.gather(*(conn.answer(conn.ask(
        lambda c, tp=TopicPartition(name, int(p.partition_index)), offset=int(p.offset):
        DeleteRecordsRequest(tp, offset, c)), DEFAULT_REPLY_TIMEOUT_S) for name, p in wanted))
    topics: dict[str, list[dict[str, Any]]] = {}
    for (name, p), reply in zip(wanted, replies):
        topics.setdefault(name, []).append({
            "partition_index": p.partition_index, "error_code": REQUEST_TIMED_OUT if reply is None else reply.error,
            "low_watermark": -1 if reply is None else reply.low_watermark})
    return {"throttle_time": NO_TIMEOUT, "topics": [{"name": n, "partitions": ps} for n, ps in topics.items()]}


def _partitions(names: list[str]) -> list[TopicPartition]:
    """``["orders-0", "my.topic-12"]`` → TopicPartitions (the partition is after the last dash)."""
    out = []
    for name in names:
        topic, _, partition = name.rpartition("-")
        out.append(TopicPartition(topic, int(partition)))
    return out
