"""``LabWorld``: one lab's cluster, its actors, checker and metrics, driven by named commands.

A lab is what a learner opens: a :class:`~core_log.cluster.Cluster` plus the
producers, consumer groups, checker and metrics of a template (the "sandbox"
of the guide: 3 brokers, ``machine.telemetry`` with 6 partitions and RF 3, a
telemetry producer keyed by machine id, a consumer group of two). Everything a
learner does is a **command** — a plain dict such as
``{"kind": "crash_broker", "broker": 2, "mode": "kill"}`` — validated here and
applied at the lab's current simulated time. Commands are data, so the web
runtime logs them; because the engine is deterministic, replaying the same
commands at the same simulated times on the same seed rebuilds the same lab,
record for record (:meth:`LabWorld.replay`). That is how a lab survives a server
restart.

:meth:`LabWorld.view` is the JSON the live page draws: brokers, every
replica's log tail as offset cells coloured by key, the markers (log start,
HW, LSO, LEO), producers, groups with cursors and lag, the checker's verdict,
metrics for sparklines and the newest events.

A lab may also have one REST pipeline (:mod:`core_log.rest`): a fleet posting
readings synchronously to a slow downstream service, for the "why messaging
exists" and "messaging vs REST" lessons. Its commands are ``add_rest_pipeline``,
``configure_rest_pipeline``, ``rest_burst``, ``crash_downstream`` and
``restart_downstream``; the view's ``rest`` section (present once it exists)
has its counters, latest per-second values and sparklines. Producers can send
their values as text (the default), JSON, Avro or Protobuf
(``configure_producer`` with ``serializer``).

A producer's process can crash and restart (``crash_producer``,
``restart_producer``): the crash loses its accumulator and in-flight requests
on the client's side (requests already on the network may still be written),
its unanswered sends become indeterminate (``info``) in the history, and it
stops sending. The restart is a new instance of the same client id with a new
``InitProducerId``; the application sends again every reading it never saw
acknowledged. Without a ``transactional.id`` the new instance has a new producer
id, so whatever the crashed instance's requests had already written is written
twice — the checker's ``duplicate``, which idempotence alone cannot prevent.

Limits (named, enforced with plain errors): :data:`MAX_PRODUCERS`,
:data:`MAX_CONSUMERS`, a total produce rate of :data:`MAX_TOTAL_RATE_PER_S`
records/s per lab; topic and broker limits are the cluster's own. The history
the checker reads is bounded; when it is nearly full the lab stops recording
new operations and says so (:attr:`LabWorld.checking`), rather than failing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from core_log.admin import AdminClient, AdminError, ResetSpec
from core_log.checker import DEFINITIONS, Checker, CheckerContext
from core_log.cluster import MAX_BROKERS, Cluster, ClusterError
from core_log.consumer import ConsumerConfig
from core_log.errors import ConfigError
from core_log.messages import TopicPartition
from core_log.metrics import Metrics
from core_log.partitioner import murmur2, partition_for_key
from core_log.producer import ProducerConfig
from core_log.rest import CALLER_SETTINGS, DOWNSTREAM_SETTINGS, LIMITS as REST_LIMITS
from core_log.rest import CRASH_MODES, RestError, RestPipeline
from core_log.serde import SERIALIZERS, serializer_for
from core_log.workloads import KEY_MODES, LabConsumer, Sink, TelemetryProducer, TransactionalTelemetry

#: Template name → what the learner gets (the lab list shows it).
TEMPLATES: dict[str, str] = {
    "sandbox": "Three brokers; machine.telemetry with 6 partitions, replication factor 3 and "
               "min.insync.replicas=2; a telemetry producer keyed by machine id (acks=all, idempotent); "
               "the consumer group dashboard with two members.",
    "acks1-leader-crash": "The sandbox with the producer on acks=1 and idempotence off. Slow a leader's links, "
                          "crash it, and watch acknowledged records vanish (lost-write).",
    "unclean-election": "The sandbox with unclean.leader.election.enable=true and min.insync.replicas=1. "
                        "Isolate a follower, crash the in-sync replicas, and an out-of-sync replica is elected.",
    "at-least-once": "The sandbox's group processes slowly (40 records/s each) and commits after processing "
                     "into a plain sink. Crash a consumer mid-batch and count what the sink applies twice.",
    "commit-before-process": "The sandbox's group commits right after poll, before processing (at-most-once). "
                             "Crash a consumer mid-batch: the rest of its batch is never processed.",
    "slow-consumer-retention": "machine.telemetry keeps only 64 KiB per partition; the group reads 20 records/s "
                               "and resets to latest. Retention deletes what it has not read; watch it skip.",
    "read-uncommitted-abort": "A transactional producer aborts every second transaction; the dashboard group "
                              "reads uncommitted, the ledger group read_committed. Compare what each sees.",
    "cooperative-rebalance": "The group uses cooperative-sticky. Add and remove consumers and count how few "
                             "partitions move compared with an eager assignor.",
}
SANDBOX_TOPIC = "machine.telemetry"
MAX_PRODUCERS = 10
MAX_CONSUMERS = 20
MAX_TOTAL_RATE_PER_S = 50_000
TAIL_CELLS = 40  # offsets drawn per replica strip
MAX_LAB_DISK_BYTES = 512 * 1024 * 1024  # all replicas of all topics of one lab
LAB_SEGMENT_BYTES = 4 * 1024 * 1024  # small segments so retention can act within the budget
LAB_METADATA_MAX_AGE_MS = 5000  # Kafka's default is 5 min; a lab wants new partitions seen within seconds
EVENTS_IN_VIEW = 60
PACING_KINDS = ("pause", "resume", "set_speed", "step")  # logged by the runtime, not engine commands
HIDDEN_EVENT_KINDS = ("ProducerIdAssigned",)  # bookkeeping a learner does not need in the timeline
HISTORY_HEADROOM_OPS = 50_000  # stop recording this many ops before the history's bound
REST_PIPELINE_NAME = "rest"  # one per lab: nodes rest-fleet and rest-downstream
MAX_REST_BURST_READINGS = 50_000
#: add_rest_pipeline's defaults: a fleet at 50 readings/s against a 100 requests/s service; a spike of
#: a few thousand readings overflows its queue, connections and buffer within a second.
REST_DEFAULTS = {"rate_per_s": 50, "capacity_per_s": 100, "workers": 4, "queue": 20, "timeout_ms": 500,
                 "retries": 2, "backoff_ms": 100, "max_in_flight": 64, "buffer": 200}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class LabCommandError(ValueError):
    """A command the lab refuses; the message says why in words a learner understands. Nothing changed."""


def _int(args: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = args.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise LabCommandError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _choice(args: dict[str, Any], name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = args.get(name, default)
    if value not in choices:
        raise LabCommandError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _bool(args: dict[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if isinstance(value, str):
        if value.lower() in ("true", "on", "1", "yes"):
            return True
        if value.lower() in ("false", "off", "0", "no", ""):
            return False
    if not isinstance(value, bool):
        raise LabCommandError(f"{name} must be true or false, got {value!r}")
    return value


def _name(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= 40 or not set(value) <= _NAME_CHARS:
        raise LabCommandError(f"{name} must be 1–40 of a-z A-Z 0-9 . _ -, got {value!r}")
    return value


def key_color(key: bytes | None) -> int:
    """A stable hue (0–359) for a key, so one machine's records share a colour in every strip."""
    return -1 if key is None else (murmur2(key) & 0x7FFFFFFF) % 360


class LabWorld:
    """A lab's engine state; apply commands, advance time, read the view."""

    def __init__(self, template: str = "sandbox", seed: int = 0, *, data_dir: str | None = None,
                 brokers: int = 3) -> None:
        if template not in TEMPLATES:
            raise LabCommandError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
        if not isinstance(brokers, int) or isinstance(brokers, bool) or not 1 <= brokers <= MAX_BROKERS:
            raise LabCommandError(f"a lab has 1 to {MAX_BROKERS} brokers, got {brokers!r}")
        self.template = template
        self.seed = seed
        storage = "file" if data_dir else "sim"
        self.cluster = Cluster(brokers=brokers, seed=seed, storage=storage, data_dir=data_dir)
        self.replication_factor = min(3, brokers)
        self.checker = Checker(CheckerContext(replication_factor=self.replication_factor,
                                              min_insync_replicas=min(2, self.replication_factor)))
        self.cluster.attach_checker(self.checker)
        self.metrics = Metrics(self.cluster)
        self.admin = AdminClient(self.cluster, "lab-admin")
        self.producers: dict[str, TelemetryProducer] = {}
        self.consumers: dict[str, LabConsumer] = {}
        self.sinks: dict[str, Sink] = {}
        self.checking = True
        self.rest: RestPipeline | None = None
        self._producer_versions: dict[str, int] = {}
        self._setup_sandbox()

    # ── templates ────────────────────────────────────────────────────────────
    def _topic_configs(self) -> dict[str, Any]:
        if self.template == "unclean-election":
            return {"min.insync.replicas": 1, "unclean.leader.election.enable": True}
        return {"min.insync.replicas": min(2, self.replication_factor)}

    def _budget(self, partitions: int, rf: int) -> dict[str, int]:
        if self.template == "slow-consumer-retention":
            return {"retention.bytes": 64 * 1024, "segment.bytes": 16 * 1024}
        return self._disk_budget_configs(partitions, rf)
    def _disk_budget_configs(self, partitions: int, replication_factor: int) -> dict[str, int]:
        """retention.bytes (per partition, as in Kafka) that keeps a new topic inside the lab's disk budget.

        Each new topic may take half of what is left, so later topics still fit;
        a partition holds at most retention.bytes plus its active segment.
        """
        used = sum(t.partitions * t.replication_factor * (t.log_config.retention_bytes + t.log_config.segment_bytes)
                   for t in self.cluster.topics.values() if t.log_config.retention_bytes > 0
                   and not t.name.startswith("__"))
        left = (MAX_LAB_DISK_BYTES - used) // 2
        per_partition = left // (partitions * replication_factor) - LAB_SEGMENT_BYTES
        if per_partition < LAB_SEGMENT_BYTES:
            raise LabCommandError(f"the lab's disk budget ({MAX_LAB_DISK_BYTES // 2**20} MiB over all replicas) "
                                  f"has no room for {partitions}×{replication_factor} more replicas; use fewer "
                                  f"partitions or a lower replication factor")
        return {"retention.bytes": per_partition, "segment.bytes": LAB_SEGMENT_BYTES}

    def _setup_sandbox(self) -> None:
        rf = self.replication_factor
        self.cluster.create_topic(SANDBOX_TOPIC, 6, rf, {**self._topic_configs(), **self._budget(6, rf)})
        self.cluster.run_for(500)
        acks1 = self.template == "acks1-leader-crash"
        producer_config = ProducerConfig(acks="1", enable_idempotence=False) if acks1 else ProducerConfig()
        self._add_producer("telemetry", SANDBOX_TOPIC, rate_per_s=50, keys="machines", machines=20,
                           config=producer_config)
        topic = self.cluster.topics[SANDBOX_TOPIC]
        self.checker.context = CheckerContext(
            acks=producer_config.acks if producer_config.acks != "-1" else "all",
            enable_idempotence=producer_config.enable_idempotence, replication_factor=rf,
            min_insync_replicas=topic.min_insync_replicas, unclean_leader_election=topic.unclean_leader_election)
        rate = {"at-least-once": 40, "slow-consumer-retention": 20}.get(self.template, 200)
        commit = "before" if self.template == "commit-before-process" else "after"
        assignor = "cooperative-sticky" if self.template == "cooperative-rebalance" else "range"
        reset = "latest" if self.template == "slow-consumer-retention" else "earliest"
        for name in ("dashboard-1", "dashboard-2"):
            self._add_consumer(name, "dashboard", SANDBOX_TOPIC, rate_per_s=rate, commit=commit,
                               assignor=assignor, auto_offset_reset=reset)
        if self.template == "slow-consumer-retention":
            self.producers["telemetry"].set_rate(400)
        if self.template == "read-uncommitted-abort":
            self._add_txn_producer({"name": "orders", "rate_per_s": "20", "records_per_txn": "5",
                                    "abort_every": "2"})
            self._add_consumer("ledger-1", "ledger", SANDBOX_TOPIC, rate_per_s=200, commit="after",
                               assignor="range", isolation_level="read_committed")

    # ── time ─────────────────────────────────────────────────────────────────
    def now_ms(self) -> int:
        return self.cluster.now_ms()

    def advance(self, to_ms: int) -> int:
        """Run events up to ``to_ms``; returns how many ran. Stops recording when the history is nearly full."""
        ran = self.cluster.advance(to_ms)
        if self.checking and len(self.cluster.history) > self.cluster.history.max_ops - HISTORY_HEADROOM_OPS:
            self.checking = False
            for client in list(self.producers.values()):
                client.producer.record_history = False
            for lab_consumer in self.consumers.values():
                lab_consumer.consumer.record_history = False
            self.cluster.events.emit(self.now_ms(), "CheckingStopped",
                                     f"The guarantees checker stopped recording: the history holds "
                                     f"{len(self.cluster.history)} operations, its limit for one lab. What it "
                                     f"found so far stays on the panel.")
        return ran

    @classmethod
    def replay(cls, template: str, seed: int, commands: list[tuple[int, dict[str, Any]]], until_ms: int,
               data_dir: str | None = None, brokers: int = 3) -> "LabWorld":
        """Rebuild a lab: same template and seed, each command at its simulated time, then run to ``until_ms``.

        ``data_dir`` must be empty or missing (the caller clears it): the replay writes
        every segment file again, byte for byte, because the run is deterministic.
        """
        world = cls(template, seed, data_dir=data_dir, brokers=brokers)
        for at_ms, command in commands:
            if at_ms > world.now_ms():
                world.advance(at_ms)
            if command.get("kind") in PACING_KINDS:
                continue  # pause, speed, step: they paced wall time; the simulated times already say it
            try:
                world.apply(command)
            except LabCommandError:
                pass  # it was refused the first time too; nothing changed then either
        if until_ms > world.now_ms():
            world.advance(until_ms)
        return world

    # ── commands ─────────────────────────────────────────────────────────────
    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply one command; returns what happened (JSON). Raises LabCommandError."""
        if not isinstance(command, dict):
            raise LabCommandError("a command must be an object with a 'kind'")
        kind = command.get("kind")
        handler = _COMMANDS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise LabCommandError(f"unknown command {kind!r}; known: {', '.join(sorted(_COMMANDS))}")
        try:
            return handler(self, command) or {}
        except (ClusterError, ConfigError, AdminError, RestError) as exc:
            raise LabCommandError(str(exc)) from None

    def _broker(self, args: dict[str, Any]) -> int:
        return _int(args, "broker", 1, len(self.cluster.brokers))

    def _crash_broker(self, args: dict[str, Any]) -> dict[str, Any]:
        broker = self._broker(args)
        mode = _choice(args, "mode", ("kill", "power_loss", "power_loss_torn"), "kill")
        self.cluster.crash_broker(broker, mode)  # on the lab's real files a power loss cuts back to the last fsync
        return {"broker": broker, "mode": mode}

    def _restart_broker(self, args: dict[str, Any]) -> dict[str, Any]:
        broker = self._broker(args)
        self.cluster.restart_broker(broker)
        return {"broker": broker}

    def _isolate_broker(self, args: dict[str, Any]) -> dict[str, Any]:
        broker = self._broker(args)
        self.cluster.isolate(broker)
        return {"broker": broker}

    def _heal(self, args: dict[str, Any]) -> dict[str, Any]:
        self.cluster.heal()
        for a in sorted(self.cluster.network.plan.links):
            self.cluster.network.plan.links.pop(a, None)
        return {}

    def _set_latency(self, args: dict[str, Any]) -> dict[str, Any]:
        broker = self._broker(args)
        latency = _int(args, "latency_ms", 0, 10_000)
        for other in sorted(self.cluster.brokers):
            if other != broker:
                self.cluster.set_link(broker, other, latency_ms=latency)
        self.cluster.events.emit(self.now_ms(), "LinkLatencySet",
                                 f"Links between broker {broker} and the other brokers now take {latency} ms each way; "
                                 f"its followers fall behind and its leaderships answer slowly.", broker=broker)
        return {"broker": broker, "latency_ms": latency}

    def _producer(self, args: dict[str, Any]) -> TelemetryProducer:
        name = _name(args, "producer")
        if name not in self.producers:
            raise LabCommandError(f"no producer {name!r}; producers are {', '.join(sorted(self.producers)) or 'none'}")
        return self.producers[name]

    def _total_rate(self, excluding: str | None = None) -> int:
        return sum(p.rate_per_s for n, p in self.producers.items() if n != excluding and p.running)

    def _add_producer(self, name: str, topic: str, *, rate_per_s: int, keys: str, machines: int,
                      config: ProducerConfig, serializer: str = "text") -> TelemetryProducer:
        version = self._producer_versions.get(name, 0) + 1
        self._producer_versions[name] = version
        client_id = name if version == 1 else f"{name}.v{version}"
        config = replace(config, metadata_max_age_ms=LAB_METADATA_MAX_AGE_MS)
        producer = TelemetryProducer(self.cluster, client_id, topic, rate_per_s=rate_per_s, keys=keys,
                                     machines=machines, config=config, serializer=serializer)
        producer.producer.record_history = self.checking
        self.producers[name] = producer
        producer.start()
        return producer

    def _add_txn_producer(self, args: dict[str, Any]) -> dict[str, Any]:
        """Add a producer that writes in transactions (and aborts every Nth, to see what read_committed skips)."""
        if len(self.producers) >= MAX_PRODUCERS:
            raise LabCommandError(f"a lab has at most {MAX_PRODUCERS} producers")
        name = _name(args, "name") if args.get("name") else f"orders-{len(self.producers) + 1}"
        if name in self.producers or name in self.cluster.network.nodes:
            raise LabCommandError(f"a producer named {name!r} exists already")
        topic = self._user_topic(args)
        rate = _int(args, "rate_per_s", 1, MAX_TOTAL_RATE_PER_S, 20)
        if rate + self._total_rate() > MAX_TOTAL_RATE_PER_S:
            raise LabCommandError(f"the lab's producers may send at most {MAX_TOTAL_RATE_PER_S} records/s in all")
        per_txn = _int(args, "records_per_txn", 1, 10_000, 10)
        abort_every = _int(args, "abort_every", 0, 1000, 0)
        producer = TransactionalTelemetry(self.cluster, name, topic, rate_per_s=rate, records_per_txn=per_txn,
                                          abort_every=abort_every)
        producer.producer.record_history = self.checking
        self.producers[name] = producer  # type: ignore[assignment]
        producer.start()
        self.cluster.events.emit(self.now_ms(), "ProducerAdded",
                                 f"Transactional producer {name} sends {rate} records/s to {topic} in transactions "
                                 f"of {per_txn}" + (f", aborting every {abort_every}th" if abort_every else "")
                                 + ": read_committed consumers see them only once committed.", producer=name)
        return {"producer": name}

    def _configure_producer(self, args: dict[str, Any]) -> dict[str, Any]:
        """Change a producer's rate, keys, serializer, acks, idempotence or linger (a new client if the configs change)."""
        old = self._running_producer(args)
        if isinstance(old, TransactionalTelemetry):
            raise LabCommandError("a transactional producer keeps its settings; stop it and add another one")
        name = _name(args, "producer")
        rate = _int(args, "rate_per_s", 1, MAX_TOTAL_RATE_PER_S, old.rate_per_s)
        if rate + self._total_rate(excluding=name) > MAX_TOTAL_RATE_PER_S:
            raise LabCommandError(f"the lab's producers may send at most {MAX_TOTAL_RATE_PER_S} records/s in all")
        keys = _choice(args, "keys", KEY_MODES, old.keys)
        machines = _int(args, "machines", 1, 100_000, old.machines)
        acks = _choice(args, "acks", ("0", "1", "all"), old.producer.config.acks)
        idempotence = _bool(args, "enable_idempotence", old.producer.config.enable_idempotence and acks == "all")
        linger = _int(args, "linger_ms", 0, 10_000, old.producer.config.linger_ms)
        serializer = _choice(args, "serializer", SERIALIZERS, old.serializer.name)
        if idempotence and acks != "all":
            raise LabCommandError("enable.idempotence needs acks=all (Kafka refuses the combination)")
        config = ProducerConfig(acks=acks, enable_idempotence=idempotence, linger_ms=linger,
                                metadata_max_age_ms=LAB_METADATA_MAX_AGE_MS)
        format_text = ""
        if serializer != old.serializer.name:
            format_text = f" Values are now {serializer}: {serializer_for(serializer).trade}"
        if config == old.producer.config:
            old.set_rate(rate)
            old.keys, old.machines = keys, machines
            if serializer != old.serializer.name:
                old.set_serializer(serializer)
            self.cluster.events.emit(self.now_ms(), "ProducerConfigured",
                                     f"Producer {name} now sends {rate} records/s with keys={keys}.{format_text}",
                                     producer=name)
            return {"producer": name, "replaced": False}
        old.stop()
        self._add_producer(name, old.topic, rate_per_s=rate, keys=keys, machines=machines, config=config,
                           serializer=serializer)
        topic = self.cluster.topics[old.topic]
        self.checker.context = CheckerContext(acks=acks, enable_idempotence=idempotence,
                                              replication_factor=topic.replication_factor,
                                              min_insync_replicas=topic.min_insync_replicas,
                                              unclean_leader_election=topic.unclean_leader_election)
        self.cluster.events.emit(self.now_ms(), "ProducerConfigured",
                                 f"Producer {name} restarts with acks={acks}, enable.idempotence="
                                 f"{str(idempotence).lower()}, linger.ms={linger}, {rate} records/s, keys={keys}."
                                 f"{format_text}", producer=name)
        return {"producer": name, "replaced": True}

    def _running_producer(self, args: dict[str, Any]) -> TelemetryProducer:
        """The named producer, refused if its process has crashed (it must be restarted first)."""
        producer = self._producer(args)
        if not producer.producer.alive:
            raise LabCommandError(f"producer {args['producer']} has crashed; restart it first (restart_producer)")
        return producer

    def _start_producer(self, args: dict[str, Any]) -> dict[str, Any]:
        producer = self._running_producer(args)
        if producer.rate_per_s + self._total_rate() > MAX_TOTAL_RATE_PER_S:
            raise LabCommandError(f"the lab's producers may send at most {MAX_TOTAL_RATE_PER_S} records/s in all")
        producer.start()
        return {"producer": args["producer"]}

    def _stop_producer(self, args: dict[str, Any]) -> dict[str, Any]:
        self._producer(args).stop()
        return {"producer": args["producer"]}

    def _crash_producer(self, args: dict[str, Any]) -> dict[str, Any]:
        """Kill the producer's process: what it had not sent, and the answers it was waiting for, are gone."""
        producer = self._producer(args)
        name = args["producer"]
        if isinstance(producer, TransactionalTelemetry):
            raise LabCommandError("crash_producer is for the telemetry producers; a transactional producer's "
                                  "crash is not in the lab yet")
        if not producer.producer.alive:
            raise LabCommandError(f"producer {name} has crashed already; restart it with restart_producer")
        return {"producer": name, **producer.crash()}

    def _restart_producer(self, args: dict[str, Any]) -> dict[str, Any]:
        """Start a new instance of a crashed producer (new InitProducerId) that resends what was never acknowledged."""
        producer = self._producer(args)
        name = args["producer"]
        if producer.producer.alive:
            raise LabCommandError(f"producer {name} is running; only a crashed producer restarts (crash_producer)")
        if producer.resume_on_restart and producer.rate_per_s + self._total_rate() > MAX_TOTAL_RATE_PER_S:
            raise LabCommandError(f"the lab's producers may send at most {MAX_TOTAL_RATE_PER_S} records/s in all")
        resent = producer.restart()
        return {"producer": name, "instance": producer.instance, "resent": resent}

    def _burst(self, args: dict[str, Any]) -> dict[str, Any]:
        producer = self._running_producer(args)
        if isinstance(producer, TransactionalTelemetry):
            raise LabCommandError("spikes are for the plain telemetry producer")
        records = _int(args, "records", 1, 50_000)
        producer.burst(records)
        self.cluster.events.emit(self.now_ms(), "Burst",
                                 f"Producer {args['producer']} sends a spike of {records} records at once.",
                                 producer=args["producer"])
        return {"records": records}

    def _add_consumer(self, name: str, group: str, topic: str, *, rate_per_s: int, commit: str,
                      assignor: str, isolation_level: str = "read_uncommitted",
                      auto_offset_reset: str = "earliest") -> LabConsumer:
        sink = self.sinks.setdefault(group, Sink(f"{group}-sink", idempotent=False))
        config = ConsumerConfig(auto_offset_reset=auto_offset_reset, session_timeout_ms=10_000,
                                partition_assignment_strategy=(assignor,), metadata_max_age_ms=LAB_METADATA_MAX_AGE_MS,
                                isolation_level=isolation_level)
        consumer = LabConsumer(self.cluster, name, topic, group, rate_per_s=rate_per_s, commit=commit,
                               sink=sink, config=config)
        consumer.consumer.record_history = self.checking
        self.consumers[name] = consumer
        return consumer

    def _add_consumer_command(self, args: dict[str, Any]) -> dict[str, Any]:
        if len(self.consumers) >= MAX_CONSUMERS:
            raise LabCommandError(f"a lab has at most {MAX_CONSUMERS} consumers")
        group = _name(args, "group")
        name = args.get("name") or f"{group}-{sum(1 for c in self.consumers.values() if c.consumer.config.group_id == group) + 1}"
        name = _name({"name": name}, "name")
        base, n = name, 1
        while name in self.cluster.network.nodes:  # a removed consumer's name stays taken on the network
            n += 1
            name = f"{base}.{n}"
        topic = args.get("topic", SANDBOX_TOPIC)
        if topic not in self.cluster.topics or str(topic).startswith("__"):
            raise LabCommandError(f"unknown topic {topic!r}")
        rate = _int(args, "rate_per_s", 1, 100_000, 200)
        commit = _choice(args, "commit", ("after", "before", "auto"), "after")
        assignor = _choice(args, "assignor", ("range", "roundrobin", "sticky", "cooperative-sticky"), "range")
        isolation = _choice(args, "isolation_level", ("read_uncommitted", "read_committed"), "read_uncommitted")
        self._add_consumer(name, group, topic, rate_per_s=rate, commit=commit, assignor=assignor,
                           isolation_level=isolation)
        self.cluster.events.emit(self.now_ms(), "ConsumerAdded",
                                 f"Consumer {name} joins group {group} ({assignor}, commit {commit} processing, "
                                 f"{rate} records/s).", client=name, group=group)
        return {"consumer": name}

    def _consumer(self, args: dict[str, Any]) -> LabConsumer:
        name = _name(args, "consumer")
        if name not in self.consumers:
            raise LabCommandError(f"no consumer {name!r}; consumers are {', '.join(sorted(self.consumers)) or 'none'}")
        return self.consumers[name]

    def _crash_consumer(self, args: dict[str, Any]) -> dict[str, Any]:
        consumer = self._consumer(args)
        if not consumer.consumer.alive:
            raise LabCommandError(f"{args['consumer']} is already down")
        consumer.crash()
        return {"consumer": args["consumer"]}

    def _restart_consumer(self, args: dict[str, Any]) -> dict[str, Any]:
        consumer = self._consumer(args)
        if consumer.consumer.alive:
            raise LabCommandError(f"{args['consumer']} is running")
        consumer.restart()
        return {"consumer": args["consumer"]}

    def _remove_consumer(self, args: dict[str, Any]) -> dict[str, Any]:
        consumer = self._consumer(args)
        if consumer.consumer.alive:
            consumer.close()
        del self.consumers[args["consumer"]]
        return {"consumer": args["consumer"]}

    def _reset_offsets(self, args: dict[str, Any]) -> dict[str, Any]:
        """Start an offset reset (dry run by default); the result arrives with a later view (``admin_results``)."""
        group = _name(args, "group")
        kind = _choice(args, "to", ("earliest", "latest", "offset", "timestamp", "shift"), "earliest")
        value = None if kind in ("earliest", "latest") else _int(args, "value", -(10 ** 12), 10 ** 12)
        dry_run = _bool(args, "dry_run", True)
        topic = args.get("topic", SANDBOX_TOPIC)
        future = self.admin.reset_offsets(group, str(topic), ResetSpec(kind, value), dry_run=dry_run)
        return {"pending": future}

    def _user_topic(self, args: dict[str, Any]) -> str:
        topic = args.get("topic", SANDBOX_TOPIC)
        if not isinstance(topic, str) or topic not in self.cluster.topics or topic.startswith("__"):
            raise LabCommandError(f"unknown topic {topic!r}")
        return topic

    def _budget_used(self) -> int:
        return sum(t.partitions * t.replication_factor * (t.log_config.retention_bytes + t.log_config.segment_bytes)
                   for t in self.cluster.topics.values() if not t.name.startswith("__"))

    def _add_partitions(self, args: dict[str, Any]) -> dict[str, Any]:
        name = self._user_topic(args)
        topic = self.cluster.topics[name]
        total = _int(args, "partitions", 1, 64)
        if total <= topic.partitions:
            raise LabCommandError(f"{name} has {topic.partitions} partitions; partitions can be added, never removed")
        extra = (total - topic.partitions) * topic.replication_factor * (
            topic.log_config.retention_bytes + topic.log_config.segment_bytes)
        if self._budget_used() + extra > MAX_LAB_DISK_BYTES:
            raise LabCommandError(f"{total} partitions of {name} would not fit the lab's "
                                  f"{MAX_LAB_DISK_BYTES // 2**20} MiB disk budget at its retention.bytes; "
                                  f"lower retention.bytes first")
        self.cluster.add_partitions(name, total)
        return {"topic": name, "partitions": total}

    def _alter_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        name = self._user_topic(args)
        topic = self.cluster.topics[name]
        changes: dict[str, Any] = {}
        if args.get("min_insync_replicas") not in (None, ""):
            changes["min.insync.replicas"] = _int(args, "min_insync_replicas", 1, topic.replication_factor)
        if args.get("retention_ms") not in (None, ""):
            changes["retention.ms"] = _int(args, "retention_ms", 1000, 7 * 24 * 3600 * 1000)
        if args.get("retention_bytes") not in (None, ""):
            changes["retention.bytes"] = _int(args, "retention_bytes", LAB_SEGMENT_BYTES, MAX_LAB_DISK_BYTES)
            grow = (changes["retention.bytes"] - topic.log_config.retention_bytes) * topic.partitions \
                * topic.replication_factor
            if self._budget_used() + grow > MAX_LAB_DISK_BYTES:
                raise LabCommandError(f"retention.bytes={changes['retention.bytes']} would not fit the lab's "
                                      f"{MAX_LAB_DISK_BYTES // 2**20} MiB disk budget")
        if args.get("unclean_leader_election") not in (None, ""):
            changes["unclean.leader.election.enable"] = _bool(args, "unclean_leader_election", False)
        if not changes:
            raise LabCommandError("say which config to change: min.insync.replicas, retention.ms, "
                                  "retention.bytes or unclean.leader.election.enable")
        self.cluster.alter_topic_config(name, changes)
        if name == SANDBOX_TOPIC:
            self.checker.context = CheckerContext(
                acks=self.checker.context.acks if self.checker.context else "all",
                enable_idempotence=self.checker.context.enable_idempotence if self.checker.context else True,
                replication_factor=topic.replication_factor, min_insync_replicas=topic.min_insync_replicas,
                unclean_leader_election=topic.unclean_leader_election)
        return {"topic": name, "changed": sorted(changes)}

    def _configure_sink(self, args: dict[str, Any]) -> dict[str, Any]:
        """Make a group's downstream sink idempotent (ignore a repeated key + sequence) or not."""
        group = _name(args, "group")
        sink = self.sinks.get(group)
        if sink is None:
            raise LabCommandError(f"group {group!r} has no sink in this lab; sinks are "
                                  f"{', '.join(sorted(self.sinks)) or 'none'}")
        sink.idempotent = _bool(args, "idempotent", True)
        if sink.idempotent:
            text = (f"Group {group}'s sink is now idempotent: it remembers each record's key and sequence and "
                    f"ignores a repeat, so a re-delivery after a crash changes nothing.")
        else:
            text = f"Group {group}'s sink applies every record it is given again, repeats included."
        self.cluster.events.emit(self.now_ms(), "SinkConfigured", text, group=group, idempotent=sink.idempotent)
        return {"group": group, "idempotent": sink.idempotent}

    def _stop_group(self, args: dict[str, Any]) -> dict[str, Any]:
        """Close every consumer of a group (clean leave): the group becomes Empty and can be reset."""
        group = _name(args, "group")
        names = sorted(n for n, c in self.consumers.items() if c.consumer.config.group_id == group)
        if not names:
            raise LabCommandError(f"group {group!r} has no consumers in this lab")
        for name in names:
            if self.consumers[name].consumer.alive:
                self.consumers[name].close()
            del self.consumers[name]
        self.cluster.events.emit(self.now_ms(), "GroupStopped",
                                 f"All {len(names)} consumer(s) of group {group} were stopped; once the group is "
                                 f"Empty its offsets can be reset, and new consumers resume from them.", group=group)
        return {"group": group, "stopped": names}

    def _create_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        partitions = _int(args, "partitions", 1, 64, 3)
        rf = _int(args, "replication_factor", 1, len(self.cluster.brokers), min(3, len(self.cluster.brokers)))
        configs: dict[str, Any] = {}
        if args.get("min_insync_replicas") not in (None, ""):
            configs["min.insync.replicas"] = _int(args, "min_insync_replicas", 1, rf)
        if args.get("retention_ms") not in (None, ""):
            configs["retention.ms"] = _int(args, "retention_ms", 1000, 7 * 24 * 3600 * 1000)
        if "unclean_leader_election" in args:
            configs["unclean.leader.election.enable"] = _bool(args, "unclean_leader_election", False)
        configs.update(self._disk_budget_configs(partitions, rf))
        self.cluster.create_topic(name, partitions, rf, configs)  # type: ignore[arg-type]
        self.cluster.events.emit(self.now_ms(), "TopicBudget",
                                 f"Topic {name} keeps at most {configs['retention.bytes'] // 2**20} MiB per "
                                 f"partition (retention.bytes), so the lab stays within its "
                                 f"{MAX_LAB_DISK_BYTES // 2**20} MiB disk budget; older segments are deleted.",
                                 topic=name)
        return {"topic": name}

    # ── the REST pipeline (messaging vs REST) ───────────────────────────────
    def _rest_settings(self, args: dict[str, Any], names: tuple[str, ...],
                       defaults: dict[str, int] | None) -> dict[str, int]:
        """The REST settings given in ``args`` (empty fields skipped), each checked against rest.LIMITS."""
        settings = {}
        for name in names:
            if args.get(name) in (None, ""):
                if defaults is not None:
                    settings[name] = defaults[name]
                continue
            low, high = REST_LIMITS[name]
            settings[name] = _int(args, name, low, high)
        return settings

    def _pipeline(self) -> RestPipeline:
        if self.rest is None:
            raise LabCommandError("this lab has no REST pipeline yet; add one first (add_rest_pipeline)")
        return self.rest

    def _add_rest_pipeline(self, args: dict[str, Any]) -> dict[str, Any]:
        """A fleet posting readings synchronously to a slow REST downstream (one per lab)."""
        if self.rest is not None:
            raise LabCommandError("this lab has a REST pipeline already; change it with configure_rest_pipeline")
        settings = self._rest_settings(args, CALLER_SETTINGS + DOWNSTREAM_SETTINGS, REST_DEFAULTS)
        self.rest = RestPipeline(self.cluster, REST_PIPELINE_NAME, **settings)
        return {"pipeline": REST_PIPELINE_NAME, **settings}

    def _configure_rest_pipeline(self, args: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline()
        settings = self._rest_settings(args, CALLER_SETTINGS + DOWNSTREAM_SETTINGS, None)
        if not settings:
            raise LabCommandError(f"say which setting to change: {', '.join(CALLER_SETTINGS + DOWNSTREAM_SETTINGS)}")
        pipeline.configure(**settings)
        told = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
        d = pipeline.downstream
        self.cluster.events.emit(self.now_ms(), "RestConfigured",
                                 f"REST pipeline: {told}. The downstream now handles {d.capacity_per_s} requests/s "
                                 f"({d.workers} workers, {d.service_ms:g} ms each, a queue of {d.queue_limit}).",
                                 pipeline=REST_PIPELINE_NAME, changes=dict(settings))
        return {"pipeline": REST_PIPELINE_NAME, "changed": sorted(settings)}

    def _rest_burst(self, args: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline()
        records = _int(args, "records", 1, MAX_REST_BURST_READINGS)
        c = pipeline.caller
        self.cluster.events.emit(self.now_ms(), "RestBurst",
                                 f"The fleet takes a spike of {records} readings at once: {c.max_in_flight} "
                                 f"connections can wait on the downstream and {c.buffer_limit} readings can wait "
                                 f"for a connection; the rest have nowhere to go.", pipeline=REST_PIPELINE_NAME)
        pipeline.caller.burst(records)
        return {"records": records}

    def _crash_downstream(self, args: dict[str, Any]) -> dict[str, Any]:
        pipeline = self._pipeline()
        mode = _choice(args, "mode", CRASH_MODES, "refuse")
        pipeline.downstream.crash(mode)
        return {"mode": mode}

    def _restart_downstream(self, args: dict[str, Any]) -> dict[str, Any]:
        self._pipeline().downstream.restart()
        return {}

    # ── reading ──────────────────────────────────────────────────────────────
    def probe_key(self, key: str) -> dict[str, Any]:
        """Where a key goes: its murmur2 value and partition now, and with other partition counts."""
        if not isinstance(key, str) or not 0 < len(key.encode()) <= 1024:
            raise LabCommandError("type a key of 1 to 1024 bytes")
        data = key.encode()
        topic = self.cluster.topics.get(SANDBOX_TOPIC)
        count = topic.partitions if topic else 6
        return {"key": key, "murmur2": murmur2(data), "positive": murmur2(data) & 0x7FFFFFFF,
                "partitions": count, "partition": partition_for_key(data, count),
                "with": {n: partition_for_key(data, n) for n in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)},
                "color": key_color(data)}

    def explore(self, broker: int, topic: str, partition: int, *, offset: int | None = None,
                timestamp_ms: int | None = None, key: str | None = None, limit: int = 50) -> dict[str, Any]:
        """One replica's log, read back from its segment files: batches with their headers, and records.

        Start at ``offset`` (default: the newest ``limit`` records), or at the first
        record at/after ``timestamp_ms``; with ``key``, only records with that key.
        Records of ``__consumer_offsets`` and ``__transaction_state`` are decoded.
        """
        from core_log.dump import decoded_text, decoder_for  # the dump tool's decoders, reused
        from core_log.errors import OffsetOutOfRangeError

        if not 1 <= broker <= len(self.cluster.brokers):
            raise LabCommandError(f"broker must be 1 to {len(self.cluster.brokers)}")
        if topic not in self.cluster.topics or not 0 <= partition < self.cluster.topics[topic].partitions:
            raise LabCommandError(f"no partition {topic}-{partition}")
        if not 1 <= limit <= 500:
            raise LabCommandError("limit must be 1 to 500")
        b = self.cluster.brokers[broker]
        tp = TopicPartition(topic, partition)
        replica = b.replicas.get(tp) if b.alive else None
        if replica is None:
            raise LabCommandError(f"broker {broker} has no live replica of {tp}" + ("" if b.alive else " (it is down)"))
        log = replica.log
        if timestamp_ms is not None:
            found = log.offset_for_timestamp(timestamp_ms)
            offset = found[0] if found else log.log_end_offset
        if offset is None:
            offset = max(log.log_start_offset, log.log_end_offset - limit)
        offset = min(max(offset, log.log_start_offset), log.log_end_offset)
        decoder = decoder_for(f"/{topic}-{partition}")
        batches, shown = [], 0
        position = offset
        key_bytes = key.encode() if key else None
        try:
            while shown < limit and position < log.log_end_offset:
                chunk = log.read(position, max_offset=log.log_end_offset)
                if not chunk:
                    break
                for batch in chunk:
                    records = []
                    for rec in batch.records():
                        if rec.offset < position or (key_bytes is not None and rec.key != key_bytes):
                            continue
                        if shown >= limit:
                            break
                        shown += 1
                        records.append({
                            "offset": rec.offset, "timestamp_ms": rec.timestamp_ms,
                            "key": None if rec.key is None else rec.key.decode("utf-8", "backslashreplace"),
                            "value": None if rec.value is None else rec.value[:200].decode("utf-8", "backslashreplace"),
                            "headers": [[k, None if v is None else v.decode("utf-8", "backslashreplace")]
                                        for k, v in rec.headers],
                            "decoded": decoded_text(decoder, rec).removeprefix(" decoded: ") if decoder else None,
                            "color": key_color(rec.key),
                            "committed": rec.offset < replica.high_watermark,
                        })
                    if records or batch.is_control:
                        batches.append({
                            "base_offset": batch.base_offset, "last_offset": batch.last_offset,
                            "leader_epoch": batch.partition_leader_epoch, "producer_id": batch.producer_id,
                            "producer_epoch": batch.producer_epoch, "base_sequence": batch.base_sequence,
                            "crc": batch.crc, "crc_valid": batch.crc_is_valid(), "size_bytes": batch.size_bytes,
                            "transactional": batch.is_transactional, "control": batch.is_control,
                            "records": records})
                position = chunk[-1].next_offset
        except OffsetOutOfRangeError:
            pass
        segments = [{"name": f"{seg.base_offset:020d}.log", "base_offset": seg.base_offset,
                     "size_bytes": seg.size_bytes, "txnindex_entries": len(seg.txn_index.entries)}
                    for seg in log.segments]
        return {"broker": broker, "topic": topic, "partition": partition, "from_offset": offset,
                "log_start_offset": log.log_start_offset, "high_watermark": replica.high_watermark,
                "last_stable_offset": replica.last_stable_offset, "log_end_offset": log.log_end_offset,
                "batches": batches, "segments": segments, "directory": log.directory}

    def _replica_view(self, broker_id: int, tp: TopicPartition) -> dict[str, Any] | None:
        broker = self.cluster.brokers[broker_id]
        replica = broker.replicas.get(tp) if broker.alive else None
        if replica is None:
            return None
        log = replica.log
        start = max(log.log_start_offset, log.log_end_offset - TAIL_CELLS)
        cells = []
        if log.log_end_offset > start:
            for rec in log.read_records(start, log.log_end_offset):
                cells.append([rec.offset, key_color(rec.key)])
        return {"log_start_offset": log.log_start_offset, "high_watermark": replica.high_watermark,
                "last_stable_offset": replica.last_stable_offset, "log_end_offset": log.log_end_offset,
                "size_bytes": log.size_bytes, "leader_epoch": replica.leader_epoch, "cells": cells}

    def view(self) -> dict[str, Any]:
        """Everything the live page draws, as JSON-ready data."""
        c = self.cluster
        isolated = c.network.plan.isolated
        fenced = {b for b, r in c.controller.brokers.items() if r.fenced}
        brokers = [{"id": b.broker_id, "alive": b.alive, "fenced": b.broker_id in fenced,
                    "isolated": b.node_id in isolated, "disk_bytes": b.describe()["disk_bytes"],
                    "leading": sum(1 for tp in b.leading if not tp.topic.startswith("__"))}
                   for b in c.brokers.values()]
        groups = c.describe_groups()
        positions: dict[str, list[dict[str, Any]]] = {}
        for name, lc in sorted(self.consumers.items()):
            for tp, pos in lc.consumer.positions.items():
                if pos is not None:
                    positions.setdefault(str(tp), []).append({"consumer": name, "position": pos})
        partitions = []
        for tp in c.partitions():
            if tp.topic.startswith("__"):
                continue
            update = c.controller.partitions[tp]
            partitions.append({
                "topic": tp.topic, "partition": tp.partition, "leader": update.leader,
                "leader_epoch": update.leader_epoch, "isr": list(update.isr), "replicas": list(update.replicas),
                "replica": {str(b): self._replica_view(b, tp) for b in update.replicas},
                "committed": {g["group_id"]: g["committed"][str(tp)] for g in groups if str(tp) in g["committed"]},
                "positions": positions.get(str(tp), []),
            })
        verdict = self.checker.verdict()
        guarantees = {
            "valid": verdict.valid, "checking": self.checking, "acked": verdict.acked, "consumed": verdict.consumed,
            "anomalies": [{"name": name, "count": count, "definition": DEFINITIONS[name],
                           "examples": [a.to_json() for a in verdict.anomalies[name][:5]]}
                          for name, count in sorted(verdict.counts.items())],
            "stats": verdict.stats,
        }
        latest = self.metrics.latest()
        sparks = {
            "produce_records_per_s": [v for _, v in self.metrics.series("produce_records_per_s")][-60:],
            "consume_records_per_s": [v for _, v in self.metrics.series("consume_records_per_s")][-60:],
        }
        for group in latest.get("group_lag", {}):
            sparks[f"group_lag:{group}"] = [v for _, v in self.metrics.series("group_lag_records", group)][-60:]
        for broker in sorted(c.brokers):
            sparks[f"disk_bytes:broker {broker}"] = [v for _, v in self.metrics.series("disk_bytes", str(broker))][-60:]
        sparks[f"partition_skew:{SANDBOX_TOPIC}"] = [
            v for _, v in self.metrics.series("partition_skew", SANDBOX_TOPIC)][-60:]
        events = [e.to_json() for e in list(c.events)[-EVENTS_IN_VIEW:] if e.kind not in HIDDEN_EVENT_KINDS]
        # Each producer's current producer id (from InitProducerId; None while it has none: not idempotent, or a
        # new instance still waiting for its id — a crashed one shows the dead instance's) and whether it is
        # sending, stopped or crashed (its process died: it sends nothing until restart_producer).
        producers = []
        for name, p in sorted(self.producers.items()):
            client = p.producer
            state = "crashed" if not client.alive else "sending" if p.running else "stopped"
            producers.append({"name": name, **p.describe(),
                              "pid": client.producer_id if client.producer_id >= 0 else None, "state": state})
        rest = {"rest": self.rest.view()} if self.rest is not None else {}
        # Real Kafka clients connected through the lab's listeners (core_log/wire), one entry per client.id:
        # they are nodes of this cluster's network like the lab's own clients, so the engine saw everything.
        wire: dict[str, dict[str, Any]] = {}
        for client in c.clients.values():
            if getattr(client, "kind", None) == "wire" and client.alive:
                d = client.describe()
                entry = wire.setdefault(d["client_id"], {"client_id": d["client_id"], "connections": 0, "brokers": [],
                                                         "roles": [], "records_produced": 0, "requests": {}})
                entry["connections"] += 1
                entry["brokers"] = sorted(set(entry["brokers"]) | {d["broker"]})
                roles = set(entry["roles"]) | {d["role"]}
                entry["roles"] = sorted(roles - {"client"}) or ["client"]  # "client": only metadata so far
                entry["records_produced"] += d["records_produced"]
                for api, n in d["requests"].items():
                    entry["requests"][api] = entry["requests"].get(api, 0) + n
        return {
            "time_ms": c.now_ms(), "seed": self.seed, "template": self.template,
            "brokers": brokers, "partitions": partitions,
            "topics": [{"name": t.name, "partitions": t.partitions, "replication_factor": t.replication_factor,
                        "configs": dict(t.configs)} for t in sorted(c.topics.values(), key=lambda t: t.name)
                       if not t.name.startswith("__")],
            "producers": producers,
            "consumers": [{"name": n, **lc.describe()} for n, lc in sorted(self.consumers.items())],
            "groups": groups,
            "guarantees": guarantees,
            "metrics": {"latest": {k: latest.get(k) for k in ("produce_records_per_s", "consume_records_per_s",
                                                               "group_lag", "alerts")},
                        "sparks": sparks},
            "events": events,
            "wire_clients": [wire[k] for k in sorted(wire)],
            **rest,
        }


_COMMANDS: dict[str, Callable[[LabWorld, dict[str, Any]], dict[str, Any]]] = {
    "crash_broker": LabWorld._crash_broker,
    "restart_broker": LabWorld._restart_broker,
    "isolate_broker": LabWorld._isolate_broker,
    "heal": LabWorld._heal,
    "set_latency": LabWorld._set_latency,
    "configure_producer": LabWorld._configure_producer,
    "start_producer": LabWorld._start_producer,
    "stop_producer": LabWorld._stop_producer,
    "crash_producer": LabWorld._crash_producer,
    "restart_producer": LabWorld._restart_producer,
    "burst": LabWorld._burst,
    "add_consumer": LabWorld._add_consumer_command,
    "crash_consumer": LabWorld._crash_consumer,
    "restart_consumer": LabWorld._restart_consumer,
    "remove_consumer": LabWorld._remove_consumer,
    "reset_offsets": LabWorld._reset_offsets,
    "create_topic": LabWorld._create_topic,
    "stop_group": LabWorld._stop_group,
    "configure_sink": LabWorld._configure_sink,
    "add_partitions": LabWorld._add_partitions,
    "add_txn_producer": LabWorld._add_txn_producer,
    "alter_topic": LabWorld._alter_topic,
    "add_rest_pipeline": LabWorld._add_rest_pipeline,
    "configure_rest_pipeline": LabWorld._configure_rest_pipeline,
    "rest_burst": LabWorld._rest_burst,
    "crash_downstream": LabWorld._crash_downstream,
    "restart_downstream": LabWorld._restart_downstream,
}
COMMAND_KINDS = tuple(sorted(_COMMANDS))
