"""Named checks a guided lab step evaluates against the real engine state.

A fixture never carries code: it names a check and gives its arguments, e.g.
``{ check = "leader_changed", topic = "machine.telemetry", partition = 0 }``.
Each check here is a plain function ``(ctx, **args) -> (ok, detail)`` that reads
the lab's :class:`~core_log.lab.LabWorld` — the controller's leaders and ISRs,
the group coordinators, replica logs, the checker's verdict and delivery
counts, the metrics — and says in one sentence what it found, so a learner sees
*why* a check is not yet green ("lag is 340 records; the step wants at most 20").

The argument names, types and defaults come from each function's signature, so
the fixture schema (:mod:`messaging_lab.exercises.fixtures`) validates a
fixture's checks without running anything.

Checks compare against a **baseline** captured when the step started
(:func:`capture_baseline`): "the leader changed", "at least 200 more records
acknowledged", "a new lost-write appeared". Some need memory across
evaluations (the peak lag so far): ``ctx.memory`` is a dict private to one check
of one step, kept by the caller.

This module is pure Python over core_log (no Django), so tests call it directly.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from core_log.events import Event
from core_log.history import value_text
from core_log.lab import LabWorld
from core_log.messages import TopicPartition
from core_log.partitioner import partition_for_key

CheckResult = tuple[bool, str]
CHECK_ARG_TYPES = (str, int, float, bool)
MAX_RECORDS_SCANNED = 200_000  # a check reading logs stops here (labs are small; this bounds a slow frame)


@dataclass
class CheckContext:
    """What a check may read: the world, the step's baseline, events since the step began, its memory."""

    world: LabWorld
    baseline: dict[str, Any]
    events: list[Event]
    memory: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its function and its arguments (name → (type, default or REQUIRED))."""

    name: str
    fn: Callable[..., CheckResult]
    args: dict[str, tuple[type, Any]]
    doc: str


REQUIRED = object()
CHECKS: dict[str, CheckSpec] = {}


def check(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """Register ``fn`` under its name; its keyword parameters (after ``ctx``) are the fixture's arguments."""
    args: dict[str, tuple[type, Any]] = {}
    for name, param in list(inspect.signature(fn).parameters.items())[1:]:
        kind = {"str": str, "int": int, "float": float, "bool": bool}[param.annotation]
        args[name] = (kind, REQUIRED if param.default is inspect.Parameter.empty else param.default)
    CHECKS[fn.__name__] = CheckSpec(fn.__name__, fn, args, (fn.__doc__ or "").strip().splitlines()[0])
    return fn


def run_check(name: str, ctx: CheckContext, args: dict[str, Any]) -> CheckResult:
    """Evaluate one check; a check that cannot read what it needs (a topic was deleted…) is simply not met."""
    spec = CHECKS[name]
    values = {k: (args[k] if k in args else default) for k, (_, default) in spec.args.items()}
    try:
        return spec.fn(ctx, **values)
    except (KeyError, IndexError, LookupError) as exc:
        return False, f"not yet: {exc.args[0] if exc.args else exc} is not there"


# ── baseline ─────────────────────────────────────────────────────────────────
def _groups(world: LabWorld) -> dict[str, dict[str, Any]]:
    return {g["group_id"]: g for g in world.cluster.describe_groups()}


def _sink_applied(world: LabWorld, group: str) -> int:
    sink = world.sinks.get(group)
    return sink.applied if sink is not None else 0


def capture_baseline(world: LabWorld) -> dict[str, Any]:
    """What a step's checks compare against: JSON-ready, so it is stored with the learner's progress."""
    c = world.cluster
    verdict = world.checker.verdict()
    counts = verdict.stats.get("consume_counts", {})
    return {
        "time_ms": world.now_ms(),
        "event_index": c.events.dropped + len(c.events),
        "leaders": {str(tp): u.leader for tp, u in c.controller.partitions.items()},
        "log_start": {str(tp): _leader_log_start(world, tp) for tp in c.controller.partitions},
        "hw": {str(tp): _leader_hw(world, tp) for tp in c.controller.partitions},
        "acked": verdict.acked,
        "failed": sum(p.describe().get("failed", 0) for p in world.producers.values()),
        "anomalies": dict(verdict.counts),
        "redelivered": sum(v for k, v in counts.items() if int(k) > 1),
        "sink_applied": {g: _sink_applied(world, g) for g in world.sinks},
        "sink_twice": {g: s.applied_twice() for g, s in world.sinks.items()},
        "rebalances": {g: d.get("rebalances", 0) for g, d in _groups(world).items()},
    }


def _leader_log_start(world: LabWorld, tp: TopicPartition) -> int:
    replica = _leader_replica(world, tp)
    return replica.log.log_start_offset if replica is not None else 0


def _leader_hw(world: LabWorld, tp: TopicPartition) -> int:
    replica = _leader_replica(world, tp)
    return replica.high_watermark if replica is not None else 0


def _new_records(ctx: CheckContext, topic: str) -> list[int]:
    """Records committed per partition since the step began (partitions added since count from 0)."""
    return [max(0, _leader_hw(ctx.world, _tp(topic, p)) - ctx.baseline["hw"].get(f"{topic}-{p}", 0))
            for p in range(ctx.world.cluster.topics[topic].partitions)]


def _leader_replica(world: LabWorld, tp: TopicPartition):  # type: ignore[no-untyped-def]
    update = world.cluster.controller.partitions.get(tp)
    if update is None or update.leader < 0:
        return None
    broker = world.cluster.brokers[update.leader]
    return broker.replicas.get(tp) if broker.alive else None


def _tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


# ── events and brokers ───────────────────────────────────────────────────────
@check
def event_seen(ctx: CheckContext, kind: str, field: str = "", value: str = "") -> CheckResult:
    """An engine event of this kind happened since the step began (optionally with field == value)."""
    for event in ctx.events:
        if event.kind == kind and (not field or str(event.fields.get(field)) == value):
            return True, event.text
    return False, f"no {kind} event yet"


@check
def broker_down(ctx: CheckContext, broker: int = 0) -> CheckResult:
    """A broker (this one, or any when 0) is down now."""
    down = [b for b, br in ctx.world.cluster.brokers.items() if not br.alive]
    if broker:
        return (broker in down), f"broker {broker} is {'down' if broker in down else 'up'}"
    return bool(down), (f"broker(s) {', '.join(map(str, down))} down" if down else "every broker is up")


@check
def all_brokers_up(ctx: CheckContext) -> CheckResult:
    """Every broker is running again."""
    down = [b for b, br in ctx.world.cluster.brokers.items() if not br.alive]
    return not down, ("every broker is up" if not down else f"broker(s) {', '.join(map(str, down))} still down")


@check
def leader_changed(ctx: CheckContext, topic: str, partition: int) -> CheckResult:
    """The partition has a leader, and not the one it had when the step began."""
    tp = _tp(topic, partition)
    now = ctx.world.cluster.controller.partitions[tp].leader
    before = ctx.baseline["leaders"].get(str(tp))
    if now < 0:
        return False, f"{tp} has no leader right now (offline)"
    if now == before:
        return False, f"{tp} is still led by broker {now}"
    return True, f"{tp}'s leader moved from broker {before} to broker {now}"


@check
def partitions_online(ctx: CheckContext, topic: str) -> CheckResult:
    """Every partition of the topic has a leader."""
    offline = [str(tp) for tp, u in ctx.world.cluster.controller.partitions.items()
               if tp.topic == topic and u.leader < 0]
    if topic not in ctx.world.cluster.topics:
        return False, f"there is no topic {topic}"
    return not offline, ("every partition has a leader" if not offline else f"offline: {', '.join(offline)}")


@check
def partition_offline(ctx: CheckContext, topic: str, partition: int) -> CheckResult:
    """The partition has no leader at all (every replica that could lead is down)."""
    leader = ctx.world.cluster.controller.partitions[_tp(topic, partition)].leader
    return leader < 0, ("no leader: the partition is offline" if leader < 0 else f"broker {leader} leads it")


@check
def isr_size_at_most(ctx: CheckContext, topic: str, partition: int, size: int) -> CheckResult:
    """The partition's ISR has shrunk to at most this many replicas."""
    isr = ctx.world.cluster.controller.partitions[_tp(topic, partition)].isr
    return len(isr) <= size, f"ISR of {topic}-{partition} is {{{', '.join(map(str, isr))}}}"


@check
def isr_full(ctx: CheckContext, topic: str) -> CheckResult:
    """Every partition of the topic has all its replicas in sync again."""
    short = [str(tp) for tp, u in ctx.world.cluster.controller.partitions.items()
             if tp.topic == topic and len(u.isr) < len(u.replicas)]
    return not short, ("every replica is in sync" if not short else f"under-replicated: {', '.join(short)}")


# ── producers and the checker ────────────────────────────────────────────────
@check
def acked_since(ctx: CheckContext, records: int) -> CheckResult:
    """At least this many more records were acknowledged since the step began."""
    more = ctx.world.checker.verdict().acked - ctx.baseline["acked"]
    return more >= records, f"{more} more records acknowledged (the step wants {records})"


@check
def sends_failed_since(ctx: CheckContext, records: int = 1) -> CheckResult:
    """At least this many sends failed (the producer got an error) since the step began."""
    failed = sum(p.describe().get("failed", 0) for p in ctx.world.producers.values()) - ctx.baseline["failed"]
    return failed >= records, f"{failed} send(s) failed since the step began"


@check
def guarantees_hold(ctx: CheckContext) -> CheckResult:
    """The checker finds no anomaly at all in the lab's history."""
    verdict = ctx.world.checker.verdict()
    if verdict.valid:
        return True, f"no anomaly in {verdict.acked} acknowledged and {verdict.consumed} consumed records"
    return False, "anomalies: " + ", ".join(f"{n} ×{c}" for n, c in sorted(verdict.counts.items()))


@check
def anomaly_seen(ctx: CheckContext, name: str, count: int = 1) -> CheckResult:
    """The checker found at least ``count`` new instances of this anomaly since the step began."""
    new = ctx.world.checker.verdict().counts.get(name, 0) - ctx.baseline["anomalies"].get(name, 0)
    return new >= count, f"{max(new, 0)} new {name} (the step wants {count})"


@check
def no_new_anomaly(ctx: CheckContext, name: str = "") -> CheckResult:
    """No new anomaly (of this name, or of any name when empty) appeared since the step began."""
    counts = ctx.world.checker.verdict().counts
    new = {n: c - ctx.baseline["anomalies"].get(n, 0) for n, c in counts.items()
           if (not name or n == name) and c > ctx.baseline["anomalies"].get(n, 0)}
    return not new, ("no new anomaly" if not new else "new: " + ", ".join(f"{n} ×{c}" for n, c in sorted(new.items())))


@check
def producer_setting(ctx: CheckContext, producer: str, setting: str, value: str) -> CheckResult:
    """The producer currently runs with this setting (acks, enable_idempotence, keys, rate_per_s, linger_ms…)."""
    described = ctx.world.producers[producer].describe()
    if setting == "linger_ms":
        now = str(ctx.world.producers[producer].producer.config.linger_ms)
    else:
        now = str(described[setting]).lower()
    return now == value.lower(), f"{producer} has {setting}={now}"


@check
def producer_running(ctx: CheckContext, producer: str, running: bool = True) -> CheckResult:
    """The producer is sending (or, with running=false, stopped)."""
    now = bool(ctx.world.producers[producer].describe().get("running"))
    return now == running, f"{producer} is {'sending' if now else 'stopped'}"


# ── keys and partitions ──────────────────────────────────────────────────────
def _records(world: LabWorld, tp: TopicPartition):  # type: ignore[no-untyped-def]
    replica = _leader_replica(world, tp)
    if replica is None:
        return []
    log = replica.log
    start = max(log.log_start_offset, replica.high_watermark - MAX_RECORDS_SCANNED)
    return log.read_records(start, replica.high_watermark) if replica.high_watermark > start else []


@check
def key_in_one_partition(ctx: CheckContext, topic: str, key: str, records: int = 1) -> CheckResult:
    """Every committed record with this key sits in one partition — murmur2's — in increasing offsets."""
    data = key.encode()
    count = ctx.world.cluster.topics[topic].partitions
    found: dict[int, list[int]] = {}
    for p in range(count):
        offsets = [r.offset for r in _records(ctx.world, _tp(topic, p)) if r.key == data]
        if offsets:
            found[p] = offsets
    total = sum(len(v) for v in found.values())
    if total < records:
        return False, f"{total} record(s) with key {key} so far (the step wants {records})"
    expected = partition_for_key(data, count)
    if set(found) != {expected}:
        return False, f"key {key} is in partitions {sorted(found)}, murmur2 says {expected}"
    return True, (f"all {total} records of {key} are in partition {expected}, offsets "
                  f"{found[expected][0]}…{found[expected][-1]} in order")


@check
def records_spread(ctx: CheckContext, topic: str, partitions: int) -> CheckResult:
    """Records committed since the step began reached at least this many of the topic's partitions."""
    new = _new_records(ctx, topic)
    used = sum(1 for n in new if n > 0)
    return used >= partitions, f"new records reached {used} of {len(new)} partitions"


@check
def partition_skew_at_least(ctx: CheckContext, topic: str, ratio: float) -> CheckResult:
    """Of the records committed since the step began, the busiest partition got ``ratio``× the average (hot key)."""
    sizes = _new_records(ctx, topic)
    total = sum(sizes)
    if total < 10 * len(sizes):
        return False, f"{total} new records so far; waiting for enough to judge the spread"
    skew = max(sizes) / (total / len(sizes))
    return skew >= ratio, f"the busiest partition got {skew:.1f}× the average of the new records"


@check
def topic_exists(ctx: CheckContext, topic: str, partitions: int = 0) -> CheckResult:
    """The topic exists (with exactly this many partitions, when given)."""
    t = ctx.world.cluster.topics.get(topic)
    if t is None:
        return False, f"no topic {topic} yet"
    if partitions and t.partitions != partitions:
        return False, f"{topic} has {t.partitions} partitions (the step wants {partitions})"
    return True, f"{topic} has {t.partitions} partitions, replication factor {t.replication_factor}"


@check
def topic_config(ctx: CheckContext, topic: str, config: str, value: str) -> CheckResult:
    """The topic's config (Kafka's name, e.g. retention.ms) has this value."""
    now = str(ctx.world.cluster.topics[topic].configs.get(config)).lower()
    return now == value.lower(), f"{topic} has {config}={now}"


@check
def log_start_advanced(ctx: CheckContext, topic: str) -> CheckResult:
    """Retention deleted old segments: some partition's log start offset moved up since the step began."""
    moved = []
    for tp in ctx.world.cluster.controller.partitions:
        if tp.topic == topic:
            now = _leader_log_start(ctx.world, tp)
            if now > ctx.baseline["log_start"].get(str(tp), 0):
                moved.append(f"{tp} starts at {now}")
    return bool(moved), ("; ".join(moved[:3]) if moved else "every log still starts where it did")


# ── groups, offsets, lag ─────────────────────────────────────────────────────
def _lag(world: LabWorld, group: str) -> int:
    return int(world.metrics.latest().get("group_lag", {})[group]["lag_records"])


@check
def group_stable(ctx: CheckContext, group: str, members: int = 0) -> CheckResult:
    """The group is Stable (with exactly this many members, when given)."""
    g = _groups(ctx.world)[group]
    n = len(g["members"])
    ok = g["state"] == "Stable" and (not members or n == members)
    return ok, f"group {group} is {g['state']} with {n} member(s)"


@check
def partitions_per_member(ctx: CheckContext, group: str, count: int) -> CheckResult:
    """The group is Stable and every member that has partitions has exactly ``count`` of them."""
    g = _groups(ctx.world)[group]
    sizes = sorted(len(m["assignment"]) for m in g["members"] if m["assignment"])
    ok = g["state"] == "Stable" and bool(sizes) and all(s == count for s in sizes)
    return ok, f"{group} ({g['state']}): partitions per member {sizes}"


@check
def idle_members(ctx: CheckContext, group: str, count: int) -> CheckResult:
    """The group is Stable and exactly ``count`` members have no partition at all."""
    g = _groups(ctx.world)[group]
    idle = [m["client_id"] for m in g["members"] if not m["assignment"]]
    ok = g["state"] == "Stable" and len(idle) == count
    return ok, f"{group} ({g['state']}): idle member(s): {', '.join(idle) or 'none'}"


@check
def rebalanced_since(ctx: CheckContext, group: str) -> CheckResult:
    """The group went through at least one more rebalance since the step began."""
    now = _groups(ctx.world)[group].get("rebalances", 0)
    before = ctx.baseline["rebalances"].get(group, 0)
    return now > before, f"{now - before} rebalance(s) of {group} since the step began"


@check
def group_lag_at_least(ctx: CheckContext, group: str, records: int) -> CheckResult:
    """The group's lag (HW − committed, over its partitions) is at least this many records."""
    lag = _lag(ctx.world, group)
    return lag >= records, f"{group} lags {lag} records (the step wants ≥ {records})"


@check
def group_lag_at_most(ctx: CheckContext, group: str, records: int) -> CheckResult:
    """The group's lag is at most this many records (it caught up)."""
    lag = _lag(ctx.world, group)
    return lag <= records, f"{group} lags {lag} records (the step wants ≤ {records})"


@check
def lag_peaked_then_drained(ctx: CheckContext, group: str, peak: int, drained: int) -> CheckResult:
    """Since the step began the group's lag rose to at least ``peak`` and has now fallen to ≤ ``drained``."""
    lag = _lag(ctx.world, group)
    ctx.memory["peak"] = max(ctx.memory.get("peak", 0), lag)
    top = ctx.memory["peak"]
    if top < peak:
        return False, f"{group}'s lag peaked at {top} so far (the step wants a peak ≥ {peak})"
    return lag <= drained, f"{group}'s lag peaked at {top} and is now {lag} (the step wants ≤ {drained})"


@check
def groups_apart(ctx: CheckContext, fast: str, slow: str, records: int) -> CheckResult:
    """Two groups read the same log at their own speed: ``fast`` has processed ``records`` more than ``slow``."""
    a, b = _sink_applied(ctx.world, fast), _sink_applied(ctx.world, slow)
    return a - b >= records, f"{fast} processed {a}, {slow} processed {b}"


@check
def processed_since(ctx: CheckContext, group: str, records: int) -> CheckResult:
    """The group's consumers processed (applied to its sink) at least this many more records."""
    more = _sink_applied(ctx.world, group) - ctx.baseline["sink_applied"].get(group, 0)
    return more >= records, f"{group} processed {more} more record(s) (the step wants {records})"


@check
def applied_twice_since(ctx: CheckContext, group: str, values: int = 1) -> CheckResult:
    """The group's (non-idempotent) sink applied at least this many more values twice: at-least-once."""
    sink = ctx.world.sinks[group]
    more = sink.applied_twice() - ctx.baseline["sink_twice"].get(group, 0)
    return more >= values, f"{more} value(s) applied twice since the step began"


@check
def redelivered_since(ctx: CheckContext, values: int) -> CheckResult:
    """At least this many more values were delivered to consumers more than once (a replay or a crash)."""
    counts = ctx.world.checker.verdict().stats.get("consume_counts", {})
    now = sum(v for k, v in counts.items() if int(k) > 1)
    more = now - ctx.baseline["redelivered"]
    return more >= values, f"{more} more value(s) delivered again (the step wants {values})"


@check
def skipped_by_commit(ctx: CheckContext, group: str, values: int = 1) -> CheckResult:
    """Records below the group's committed offset that its sink never applied: at-most-once lost them."""
    committed = _groups(ctx.world)[group]["committed"]
    applied = ctx.world.checker.stats.sink_applied
    skipped = 0
    for name, offset in committed.items():
        topic, _, p = name.rpartition("-")
        for rec in _records(ctx.world, _tp(topic, int(p))):
            if rec.offset >= offset:
                break
            if value_text(rec.value) not in applied:
                skipped += 1
    return skipped >= values, f"{skipped} record(s) committed past but never processed"


@check
def lag_alert(ctx: CheckContext, diagnosis: str = "") -> CheckResult:
    """The "lag growing while producers are healthy" alert fired (with this diagnosis, when given)."""
    for event in ctx.events:
        if event.kind == "LagAlert" and (not diagnosis or event.fields.get("diagnosis") == diagnosis):
            return True, event.text
    return False, "no lag alert yet" + (f" saying {diagnosis}" if diagnosis else "")


@check
def key_partitions(ctx: CheckContext, topic: str, key: str, count: int) -> CheckResult:
    """The committed records with this key sit in exactly ``count`` partitions (after adding partitions: 2)."""
    data = key.encode()
    found = sorted(p for p in range(ctx.world.cluster.topics[topic].partitions)
                   if any(r.key == data for r in _records(ctx.world, _tp(topic, p))))
    return len(found) == count, f"records of {key} are in partition(s) {found or 'none yet'}"


# ── checks for the labs of guide sections 2, 3, 5, 8, 9 and 12 ───────────────


# ── checks for the labs of guide sections 10, 11, 14, 15 and 16 ──────────────
