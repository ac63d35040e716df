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
        "anomalies": dict(verdict.counts),
        "redelivered": sum(v for k, v in counts.items() if int(k) > 1),
        "sink_applied": {g: _sink_applied(world, g) for g in world.sinks},
        "sink_twice": {g: s.applied_twice() for g, s in world.sinks.items()},
        "sink_ignored": {g: s.ignored_repeats for g, s in world.sinks.items()},
        "rebalances": {g: d.get("rebalances", 0) for g, d in _groups(world).items()},
        "producers": {n: {k: d.get(k, 0) for k in ("client_id", "sent", "requests", "retries", "acked", "failed",
                                                    "crashes", "instance", "resent")}
                      for n, d in ((n, p.describe()) for n, p in world.producers.items())},
        "producer_duplicates": {n: _duplicates_of(verdict, str(p.describe().get("client_id", n)))
                                for n, p in world.producers.items()},
        "rest": dict(world.rest.view()["counters"]) if getattr(world, "rest", None) is not None else {},
        "admin_requests": _admin_requests(world),
    }


def _duplicates_of(verdict: Any, client: str) -> int:
    """How many values of this producer client (``<client>-<n>``) the verdict found written twice."""
    prefix = f"{client}-"
    return sum(1 for a in verdict.anomalies.get("duplicate", ())
               if any(str(v).startswith(prefix) for v in a.values))


def _admin_requests(world: LabWorld) -> int:
    """How many requests the lab's admin client has sent (its correlation counter): resets tried, previews."""
    return int(getattr(world.admin, "_correlation", 0))


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
def _first_event(ctx: CheckContext, kind: str, field: str, value: str) -> Event | None:
    """The first event of ``kind`` since the step began (with ``fields[field] == value`` when a field is named)."""
    return next((e for e in ctx.events if e.kind == kind and (not field or str(e.fields.get(field)) == value)), None)


@check
def event_seen(ctx: CheckContext, kind: str, field: str = "", value: str = "") -> CheckResult:
    """An engine event of this kind happened since the step began (optionally with field == value)."""
    event = _first_event(ctx, kind, field, value)
    return (True, event.text) if event is not None else (False, f"no {kind} event yet")


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
    failed = sum(_producer_delta(ctx, name, "failed") for name in ctx.world.producers)
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


# ── producer-side and REST checks (the labs of guide sections 1, 4 and 13) ───
def _producer_delta(ctx: CheckContext, producer: str, counter: str) -> int:
    """How much a producer's counter grew since the step began (a reconfigured producer is a new client: from 0)."""
    now = ctx.world.producers[producer].describe()
    before = ctx.baseline["producers"].get(producer, {})
    start = before.get(counter, 0) if before.get("client_id") == now["client_id"] else 0
    return int(now[counter]) - int(start)


def _rest(ctx: CheckContext) -> dict[str, Any]:
    if getattr(ctx.world, "rest", None) is None:
        raise LookupError("a REST pipeline")
    return ctx.world.rest.view()


def _rest_delta(ctx: CheckContext, counter: str) -> int:
    return int(_rest(ctx)["counters"][counter]) - int(ctx.baseline.get("rest", {}).get(counter, 0))


@check
def rest_dropped_since(ctx: CheckContext, readings: int) -> CheckResult:
    """The REST fleet dropped at least this many readings since the step began (they are gone for good)."""
    dropped = _rest_delta(ctx, "dropped")
    rejected, timed_out = _rest_delta(ctx, "rejected_503"), _rest_delta(ctx, "timed_out")
    return dropped >= readings, (f"{dropped} readings dropped ({rejected} answers were 503, {timed_out} calls "
                                 f"timed out) — the step wants {readings}")


@check
def rest_no_drops_since(ctx: CheckContext) -> CheckResult:
    """The REST fleet has dropped nothing since the step began."""
    dropped = _rest_delta(ctx, "dropped")
    return dropped == 0, f"{dropped} readings dropped since the step began"


@check
def rest_processed_since(ctx: CheckContext, readings: int) -> CheckResult:
    """The REST downstream processed at least this many more readings since the step began."""
    done = _rest_delta(ctx, "processed")
    return done >= readings, f"the downstream processed {done} more readings (the step wants {readings})"


@check
def downstream_state(ctx: CheckContext, state: str) -> CheckResult:
    """The REST downstream is in this state (up, or down)."""
    now = str(_rest(ctx)["downstream"]["state"])
    return now == state, f"the downstream is {now}"


@check
def value_bytes_at_most(ctx: CheckContext, producer: str, bytes: float) -> CheckResult:
    """The producer's values average at most this many bytes (the serialiser's size)."""
    described = ctx.world.producers[producer].describe()
    avg = float(described.get("avg_value_bytes") or 0)
    ok = 0 < avg <= bytes
    return ok, f"{producer} sends {described.get('serializer')} values of {avg:.1f} bytes on average"


@check
def records_per_request_at_least(ctx: CheckContext, producer: str, ratio: float) -> CheckResult:
    """Since the step began the producer packed at least ``ratio`` records into each produce request (batching)."""
    sent, requests = _producer_delta(ctx, producer, "sent"), _producer_delta(ctx, producer, "requests")
    if requests < 5:
        return False, f"{requests} produce requests so far; waiting for more"
    per = sent / requests
    return per >= ratio, f"{sent} records in {requests} requests: {per:.1f} per request (the step wants {ratio:g})"


@check
def producer_retried_since(ctx: CheckContext, producer: str, retries: int = 1) -> CheckResult:
    """The producer retried at least this many requests since the step began (and kept going)."""
    more = _producer_delta(ctx, producer, "retries")
    return more >= retries, f"{producer} retried {more} request(s) since the step began"


@check
def sent_since(ctx: CheckContext, producer: str, records: int) -> CheckResult:
    """The producer's application kept calling send(): at least this many more records since the step began."""
    more = _producer_delta(ctx, producer, "sent")
    return more >= records, f"{producer} sent {more} more record(s) (the step wants {records})"


@check
def ignored_repeats_since(ctx: CheckContext, group: str, values: int = 1) -> CheckResult:
    """The group's idempotent sink recognised and ignored at least this many re-delivered records."""
    sink = ctx.world.sinks[group]
    before = ctx.baseline.get("sink_ignored", {}).get(group, 0)
    more = sink.ignored_repeats - before
    return more >= values, f"{group}'s sink ignored {more} repeated record(s) since the step began"


@check
def nothing_applied_twice_since(ctx: CheckContext, group: str) -> CheckResult:
    """The group's sink applied no record a second time since the step began."""
    more = ctx.world.sinks[group].applied_twice() - ctx.baseline["sink_twice"].get(group, 0)
    return more == 0, f"{more} record(s) applied twice since the step began"


# ── checks for the labs of guide sections 2, 3, 5, 8, 9 and 12 ───────────────
def _group_list(groups: str) -> list[str]:
    return [g.strip() for g in groups.split(",") if g.strip()]


def _committed(world: LabWorld, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (partitions it never committed are absent)."""
    out = {}
    for name, offset in _groups(world)[group]["committed"].items():
        t, _, p = name.rpartition("-")
        if t == topic and offset is not None:
            out[int(p)] = int(offset)
    return out


def _producer_seq(value: str) -> tuple[str, int] | None:
    """("telemetry", 123) for a telemetry value "telemetry-123"; None for any other value."""
    client, _, seq = value.rpartition("-")
    return (client, int(seq)) if client and seq.isdigit() else None


@check
def sim_time_at_least(ctx: CheckContext, seconds: int) -> CheckResult:
    """The lab's simulated clock has passed this many seconds."""
    now = ctx.world.now_ms()
    return now >= seconds * 1000, f"simulated time is {now / 1000:.1f} s (the step wants ≥ {seconds} s)"


@check
def group_state(ctx: CheckContext, group: str, state: str) -> CheckResult:
    """The group is in this state now (Empty, Stable, PreparingRebalance…)."""
    g = _groups(ctx.world)[group]
    return g["state"] == state, f"group {group} is {g['state']} with {len(g['members'])} member(s)"


@check
def groups_processed_since(ctx: CheckContext, groups: str, records: int) -> CheckResult:
    """Every one of these groups (comma-separated) processed at least this many more records since the step began."""
    counts = {g: _sink_applied(ctx.world, g) - ctx.baseline["sink_applied"].get(g, 0) for g in _group_list(groups)}
    short = [g for g, n in counts.items() if n < records]
    told = ", ".join(f"{g} {n}" for g, n in counts.items())
    return not short and bool(counts), f"processed since the step began: {told} (the step wants {records} each)"


@check
def each_group_received(ctx: CheckContext, topic: str, groups: str, fraction: float = 0.9,
                        records: int = 200) -> CheckResult:
    """Fan-out: each of these groups processed (nearly) every record written to the topic since the step began."""
    written = sum(_new_records(ctx, topic))
    if written < records:
        return False, f"{written} records written to {topic} since the step began (waiting for {records})"
    counts = {g: _sink_applied(ctx.world, g) - ctx.baseline["sink_applied"].get(g, 0) for g in _group_list(groups)}
    short = [g for g, n in counts.items() if n < fraction * written]
    told = ", ".join(f"{g} {n}" for g, n in counts.items())
    return not short and bool(counts), (f"{written} records written once; processed: {told}"
                                         + (f" — {', '.join(short)} behind" if short else ""))


@check
def not_reprocessed_since(ctx: CheckContext, group: str, values: int = 0) -> CheckResult:
    """The group's sink applied at most this many values a second time since the step began (no replay)."""
    sink = ctx.world.sinks[group]
    more = sink.applied_twice() - ctx.baseline["sink_twice"].get(group, 0)
    return more <= values, f"{more} value(s) applied twice by {group} since the step began (at most {values})"


@check
def no_gap_below_commit(ctx: CheckContext, group: str, topic: str) -> CheckResult:
    """Every retained record below the group's committed offsets was processed by the group: nothing skipped."""
    seen = getattr(ctx.world.sinks[group], "_seen", {})
    committed = _committed(ctx.world, group, topic)
    if not committed:
        return False, f"{group} has committed no offsets on {topic} yet"
    missing, checked = 0, 0
    for p, offset in sorted(committed.items()):
        for rec in _records(ctx.world, _tp(topic, p)):
            if rec.offset >= offset:
                break
            checked += 1
            value = rec.value.decode("utf-8", "backslashreplace") if rec.value is not None else "null"
            if (rec.key, value) not in seen:
                missing += 1
    return missing == 0, (f"all {checked} records below {group}'s committed offsets were processed" if not missing
                          else f"{missing} of {checked} records below {group}'s committed offsets were never processed")


@check
def no_event(ctx: CheckContext, kind: str, field: str = "", value: str = "") -> CheckResult:
    """No engine event of this kind happened since the step began (optionally with field == value)."""
    event = _first_event(ctx, kind, field, value)
    return (False, event.text) if event is not None else (True, f"no {kind} event since the step began")


@check
def reset_attempted_since(ctx: CheckContext) -> CheckResult:
    """The lab's admin client asked the cluster for an offset reset (a preview or an apply) since the step began."""
    before = int(ctx.baseline.get("admin_requests", 0))  # capture_baseline may record it; otherwise since the start
    now = _admin_requests(ctx.world)
    return now > before, ("an offset reset was previewed or tried" if now > before
                          else "no offset reset previewed or tried yet")


_RESET_WORDS = {"earliest": "to the earliest offset", "latest": "to the latest offset", "offset": "to offset ",
                "timestamp": "to the first record at/after", "shift": " by "}


@check
def reset_applied(ctx: CheckContext, group: str, to: str = "", redelivered_at_least: int = 0,
                  redelivered_at_most: int = -1) -> CheckResult:
    """An offset reset of the group was applied since the step began (of this kind, re-delivering so many records)."""
    found = None
    for event in ctx.events:
        if event.kind == "OffsetsReset" and event.fields.get("group") == group and \
                (not to or _RESET_WORDS.get(to, to) in event.text):
            found = event
    if found is None:
        return False, f"no reset of {group}" + (f" ({to})" if to else "") + " applied yet"
    n = int(found.fields.get("redelivered", 0))
    if n < redelivered_at_least or 0 <= redelivered_at_most < n:
        bound = f"≥ {redelivered_at_least}" + (f" and ≤ {redelivered_at_most}" if redelivered_at_most >= 0 else "")
        return False, f"the reset re-delivers {n} record(s); the step wants {bound}"
    return True, found.text


@check
def committed_at_log_start(ctx: CheckContext, group: str, topic: str) -> CheckResult:
    """The group's committed offset of every partition is that partition's log start offset (reset to earliest)."""
    committed = _committed(ctx.world, group, topic)
    off = [f"{topic}-{p}: {committed.get(p)} vs {_leader_log_start(ctx.world, _tp(topic, p))}"
           for p in range(ctx.world.cluster.topics[topic].partitions)
           if committed.get(p) != _leader_log_start(ctx.world, _tp(topic, p))]
    return not off, ("every committed offset is at its log start" if not off
                     else "committed vs log start: " + "; ".join(off[:3]))


@check
def unread_records_deleted(ctx: CheckContext, group: str, topic: str) -> CheckResult:
    """Retention deleted records the group never read: a committed offset is below its partition's log start."""
    committed = _committed(ctx.world, group, topic)
    behind = [f"{topic}-{p}: committed {c} < log start {_leader_log_start(ctx.world, _tp(topic, p))}"
              for p, c in sorted(committed.items()) if c < _leader_log_start(ctx.world, _tp(topic, p))]
    if not committed:
        return False, f"{group} has committed no offsets on {topic}"
    return bool(behind), ("; ".join(behind[:3]) if behind else f"retention has not passed {group}'s offsets yet")


@check
def committed_at_timestamp(ctx: CheckContext, group: str, topic: str, timestamp_ms: int) -> CheckResult:
    """The group's committed offsets are, per partition, the first record at or after this timestamp."""
    committed = _committed(ctx.world, group, topic)
    off = []
    for p in range(ctx.world.cluster.topics[topic].partitions):
        replica = _leader_replica(ctx.world, _tp(topic, p))
        if replica is None:
            return False, f"{topic}-{p} has no leader right now"
        found = replica.log.offset_for_timestamp(timestamp_ms)
        want = min(found[0], replica.high_watermark) if found else replica.high_watermark
        if committed.get(p) != want:
            off.append(f"{topic}-{p}: {committed.get(p)}, not {want}")
    return not off, (f"every committed offset is the first record at/after t={timestamp_ms} ms" if not off
                     else "; ".join(off[:3]))


@check
def leaders_spread(ctx: CheckContext, topic: str, brokers: int) -> CheckResult:
    """The topic's partition leaders sit on at least this many different brokers."""
    leaders = {u.leader for tp, u in ctx.world.cluster.controller.partitions.items()
               if tp.topic == topic and u.leader >= 0}
    if topic not in ctx.world.cluster.topics:
        return False, f"there is no topic {topic}"
    return len(leaders) >= brokers, f"{topic}'s leaders are on broker(s) {', '.join(map(str, sorted(leaders)))}"


@check
def topic_replication(ctx: CheckContext, topic: str, low: int, high: int = 0) -> CheckResult:
    """The topic's replication factor is within [low, high], every partition with replicas on that many brokers."""
    t = ctx.world.cluster.topics.get(topic)
    if t is None:
        return False, f"no topic {topic} yet"
    rf = t.replication_factor
    spread = all(len(set(u.replicas)) == rf for tp, u in ctx.world.cluster.controller.partitions.items()
                 if tp.topic == topic)
    ok = low <= rf <= (high or low) and spread
    return ok, f"{topic} has replication factor {rf}" + ("" if spread else " (some partition lacks replicas)")


@check
def topic_config_range(ctx: CheckContext, topic: str, config: str, low: int, high: int) -> CheckResult:
    """The topic's numeric config (Kafka's name) is within [low, high]."""
    t = ctx.world.cluster.topics.get(topic)
    if t is None:
        return False, f"no topic {topic} yet"
    value = t.configs.get(config)
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False, f"{topic} has {config}={value}"
    return low <= number <= high, f"{topic} has {config}={number} (the step wants {low}–{high})"


@check
def order_per_partition_only(ctx: CheckContext, group: str, inversions: int = 5) -> CheckResult:
    """Each partition reached the group in offset order, yet across partitions later records came before earlier ones."""
    members = {n for n, lc in ctx.world.consumers.items() if lc.consumer.config.group_id == group}
    ops = ctx.world.cluster.history.ops
    since = ctx.baseline["time_ms"]
    last: dict[tuple[str, str], int] = {}  # (consumer, partition) → producer sequence last applied
    newest: dict[str, tuple[int, str]] = {}  # consumer → (highest sequence applied, its partition)
    out_of_order = crossed = 0
    i = len(ops) - 1
    while i >= 0 and len(ops) - i <= MAX_RECORDS_SCANNED and ops[i].time_ms >= since:
        i -= 1
    for op in ops[i + 1:]:
        if op.f != "sink" or op.type != "ok" or op.process not in members:
            continue
        partition, value = op.value
        seq = _producer_seq(value)
        if seq is None or seq[0] != "telemetry":
            continue
        key = (op.process, partition)
        if key in last and seq[1] < last[key]:
            out_of_order += 1
        last[key] = seq[1]
        top = newest.get(op.process)
        if top is not None and seq[1] < top[0] and top[1] != partition:
            crossed += 1
        if top is None or seq[1] > top[0]:
            newest[op.process] = (seq[1], partition)
    if out_of_order:
        return False, f"{out_of_order} record(s) came out of order inside a partition"
    return crossed >= inversions, (f"inside each partition in order; across partitions {crossed} record(s) arrived "
                                   f"after a newer reading of another partition (the step wants {inversions})")


@check
def retention_time_respected(ctx: CheckContext, topic: str, seconds: int) -> CheckResult:
    """Retention by time: no partition keeps a closed segment whose newest record is older than this many seconds."""
    stalest, closed = 0, 0
    for p in range(ctx.world.cluster.topics[topic].partitions):
        replica = _leader_replica(ctx.world, _tp(topic, p))
        if replica is None:
            return False, f"{topic}-{p} has no leader right now"
        for seg in replica.log.segments[:-1]:  # the last one is active: retention never deletes it, it rolls first
            if seg.max_timestamp_ms is not None and seg.max_timestamp_ms >= 0:
                closed += 1
                stalest = max(stalest, ctx.world.now_ms() - seg.max_timestamp_ms)
    if not closed:
        return True, f"no closed segment left in {topic}: each partition keeps only its active segment"
    return stalest <= seconds * 1000, (f"the stalest of {closed} closed segment(s) ends with a record "
                                       f"{stalest / 1000:.0f} s old (at most {seconds} s)")


@check
def log_size_at_most(ctx: CheckContext, topic: str, bytes: int) -> CheckResult:
    """Retention by size: every partition's log (on its leader) holds at most this many bytes."""
    sizes = []
    for p in range(ctx.world.cluster.topics[topic].partitions):
        replica = _leader_replica(ctx.world, _tp(topic, p))
        if replica is None:
            return False, f"{topic}-{p} has no leader right now"
        sizes.append(replica.log.size_bytes)
    return max(sizes) <= bytes, f"the largest partition of {topic} holds {max(sizes)} bytes (at most {bytes})"


@check
def appended_since(ctx: CheckContext, topic: str, records: int) -> CheckResult:
    """The topic grew by at least this many records at new offsets, and no partition's offsets went back."""
    grown, back = 0, []
    for p in range(ctx.world.cluster.topics[topic].partitions):
        name = f"{topic}-{p}"
        tp = _tp(topic, p)
        if _leader_replica(ctx.world, tp) is None:
            return False, f"{name} has no leader right now"
        hw, start = _leader_hw(ctx.world, tp), _leader_log_start(ctx.world, tp)
        if hw < ctx.baseline["hw"].get(name, 0) or start < ctx.baseline["log_start"].get(name, 0):
            back.append(name)
        grown += max(0, hw - ctx.baseline["hw"].get(name, 0))
    if back:
        return False, f"offsets went back on {', '.join(back)}"
    return grown >= records, f"{grown} records appended at new offsets; nothing rewritten (the step wants {records})"



# ── checks for the labs of guide sections 10, 11, 14, 15 and 16 ──────────────
@check
def acks_stalled(ctx: CheckContext, seconds: int) -> CheckResult:
    """No record was acknowledged for at least this many seconds: the cluster refuses writes rather than lose them."""
    acked, now = ctx.world.checker.verdict().acked, ctx.world.now_ms()
    last = ctx.memory.get("last")
    if last is None or acked != last[0]:
        ctx.memory["last"] = last = [acked, now]
    still = (now - last[1]) / 1000
    return still >= seconds, f"no new acknowledgement for {still:g} s (the step wants {seconds} s)"


def _group_of(world: LabWorld, client: str) -> str | None:
    lab_consumer = world.consumers.get(client)
    if lab_consumer is not None:
        return lab_consumer.consumer.config.group_id
    c = world.cluster.clients.get(client)
    config = getattr(c, "config", None)
    return getattr(config, "group_id", None)


def _group_anomalies(ctx: CheckContext, group: str, name: str) -> dict[str, int]:
    """Anomalies since the step began whose poll was made by a member of ``group``, counted by name."""
    verdict = ctx.world.checker.verdict()
    ops = ctx.world.cluster.history.ops
    since = ctx.baseline["time_ms"]
    found: dict[str, int] = {}
    for anomaly_name, instances in verdict.anomalies.items():
        if name and anomaly_name != name:
            continue
        for anomaly in instances:
            polls = [ops[i] for i in anomaly.op_indexes if i < len(ops) and ops[i].f == "poll"]
            if any(op.time_ms >= since and _group_of(ctx.world, op.process) == group for op in polls):
                found[anomaly_name] = found.get(anomaly_name, 0) + 1
    return found


@check
def anomaly_in_group(ctx: CheckContext, name: str, group: str, count: int = 1) -> CheckResult:
    """Members of this group read records showing this anomaly (e.g. G1a) since the step began."""
    n = _group_anomalies(ctx, group, name).get(name, 0)
    return n >= count, f"{n} new {name} in reads by group {group} (the step wants {count})"


@check
def no_anomaly_in_group(ctx: CheckContext, group: str, name: str = "", reads: int = 1) -> CheckResult:
    """The group processed at least ``reads`` records since the step began, and none of its reads shows an anomaly."""
    found = _group_anomalies(ctx, group, name)
    if found:
        return False, f"group {group} read: " + ", ".join(f"{n} ×{c}" for n, c in sorted(found.items()))
    more = _sink_applied(ctx.world, group) - ctx.baseline["sink_applied"].get(group, 0)
    if more < reads:
        return False, f"group {group} processed {more} record(s) so far (the step wants {reads} to judge)"
    return True, f"group {group} processed {more} records and none of its reads shows an anomaly"


@check
def member_removed_after(ctx: CheckContext, group: str, consumer: str, ms: int) -> CheckResult:
    """The crashed consumer was removed from the group no sooner than ``ms`` after it crashed (session.timeout.ms)."""
    crashed = next((e.time_ms for e in ctx.events if e.kind == "ConsumerCrashed"
                    and e.fields.get("client") == consumer), None)
    if crashed is None:
        return False, f"{consumer} has not crashed in this step"
    removed = next((e.time_ms for e in ctx.events if e.kind == "GroupMemberRemoved" and e.time_ms >= crashed
                    and e.fields.get("group") == group and e.fields.get("client") == consumer), None)
    if removed is None:
        waited = (ctx.world.now_ms() - crashed) / 1000
        return False, f"{consumer} crashed {waited:g} s ago; the coordinator still counts it as a member"
    took = removed - crashed
    return took >= ms, f"the coordinator removed {consumer} {took / 1000:g} s after it crashed"


@check
def lag_on_one_partition(ctx: CheckContext, group: str, share: float, records: int) -> CheckResult:
    """The group lags at least ``records`` and one partition holds at least ``share`` of that lag (a hot partition)."""
    view = ctx.world.metrics.latest().get("group_lag", {})[group]
    lags = {p: (lag or 0) for p, lag in view["partitions"].items()}
    total = sum(lags.values())
    if total < records or not lags:
        return False, f"{group} lags {total} records (the step wants ≥ {records})"
    top = max(sorted(lags), key=lambda p: lags[p])
    part = lags[top] / total
    return part >= share, f"{group} lags {total} records; {top} holds {part:.0%} of it"


@check
def no_anomaly_for_producer(ctx: CheckContext, producer: str, name: str, records: int = 1) -> CheckResult:
    """None of the records the producer's current client sent shows this anomaly (duplicate, lost-write…)."""
    client = str(ctx.world.producers[producer].describe().get("client_id", producer))
    prefix = f"{client}-"
    found = sum(1 for a in ctx.world.checker.verdict().anomalies.get(name, ())
                if any(str(v).startswith(prefix) for v in a.values))
    acked = int(ctx.world.producers[producer].describe().get("acked", 0) or 0)
    if found:
        return False, f"{found} {name} among the records of {client}"
    if acked < records:
        return False, f"{client} has {acked} acknowledged record(s) so far (the step wants {records} to judge)"
    return True, f"no {name} among {client}'s {acked} acknowledged records"


@check
def lag_gap_at_least(ctx: CheckContext, behind: str, ahead: str, records: int) -> CheckResult:
    """Group ``behind`` lags at least ``records`` more than group ``ahead`` on the same log (it sees records later)."""
    lag_behind, lag_ahead = _lag(ctx.world, behind), _lag(ctx.world, ahead)
    gap = lag_behind - lag_ahead
    return gap >= records, f"{behind} lags {lag_behind} records, {ahead} lags {lag_ahead} (the step wants a gap ≥ {records})"


# ── producer crash and restart (guide §10, "producer crash") ─────────────────
def _last_event_of(ctx: CheckContext, kind: str, client: str) -> Event | None:
    """The newest event of ``kind`` about ``client`` since the step began."""
    return next((e for e in reversed(ctx.events) if e.kind == kind and e.fields.get("client") == client), None)


@check
def producer_in_flight_at_least(ctx: CheckContext, producer: str, records: int) -> CheckResult:
    """The producer has at least this many sends waiting for an answer right now (in requests or in its memory)."""
    described = ctx.world.producers[producer].describe()
    pending = int(described.get("pending", 0) or 0)
    return pending >= records, (f"{producer} has {pending} send(s) waiting for an answer "
                                f"(the step wants ≥ {records})")


@check
def producer_crashed(ctx: CheckContext, producer: str, in_flight: int = 0) -> CheckResult:
    """The producer's process crashed since the step began and is still down (with ≥ ``in_flight`` sends in requests)."""
    described = ctx.world.producers[producer].describe()
    client = str(described.get("client_id", producer))
    event = _last_event_of(ctx, "ProducerCrashed", client)
    if _producer_delta(ctx, producer, "crashes") < 1 or event is None:
        return False, f"{producer} has not crashed since the step began"
    if described.get("alive", True):
        return False, f"{producer} crashed but runs again"
    sent, memory = int(event.fields.get("in_requests", 0)), int(event.fields.get("in_memory", 0))
    detail = (f"{producer} crashed with {sent + memory} unanswered send(s): {sent} in requests already sent "
              f"(maybe written), {memory} still in its memory (never sent)")
    if sent < in_flight:
        return False, detail + f"; the step wants ≥ {in_flight} in requests — crash it while records are in flight"
    return True, detail


@check
def producer_restarted_with_new_pid(ctx: CheckContext, producer: str, resent: int = 0) -> CheckResult:
    """The crashed producer runs again as a new instance with a new producer id (and resent ≥ ``resent`` readings)."""
    described = ctx.world.producers[producer].describe()
    if _producer_delta(ctx, producer, "instance") < 1:
        return False, f"{producer} has not restarted since the step began"
    if not described.get("alive", False):
        return False, f"{producer} restarted and crashed again; restart it"
    pid = int(described.get("producer_id", -1))
    previous = list(described.get("previous_producer_ids") or [])
    old = int(previous[-1]) if previous else -1
    if pid < 0:
        return False, f"{producer}'s new instance has no producer id yet (InitProducerId is on its way)"
    if pid == old:
        return False, f"{producer} still has producer id {pid}"
    more = _producer_delta(ctx, producer, "resent")
    had = f"the crashed one had {old}" if old >= 0 else "the crashed one had none"
    detail = (f"{producer} runs as instance {described.get('instance')} with producer id {pid} ({had}) and resent "
              f"{more} reading(s)")
    return more >= resent, detail + ("" if more >= resent else f"; the step wants ≥ {resent}")


@check
def duplicates_at_least(ctx: CheckContext, count: int, producer: str = "") -> CheckResult:
    """The checker found at least ``count`` more values written twice (duplicate) since the step began (this producer's)."""
    if not producer:
        new = ctx.world.checker.verdict().counts.get("duplicate", 0) - ctx.baseline["anomalies"].get("duplicate", 0)
        return new >= count, f"{new} new duplicate value(s) since the step began (the step wants ≥ {count})"
    client = str(ctx.world.producers[producer].describe().get("client_id", producer))
    same_client = ctx.baseline["producers"].get(producer, {}).get("client_id") == client
    start = int(ctx.baseline.get("producer_duplicates", {}).get(producer, 0)) if same_client else 0
    new = _duplicates_of(ctx.world.checker.verdict(), client) - start
    return new >= count, (f"{new} new duplicate value(s) among {client}'s records since the step began "
                          f"(the step wants ≥ {count})")
