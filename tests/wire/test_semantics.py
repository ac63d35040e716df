"""Kafka's guarantees, kept for real clients: groups, commits, idempotent retries, transactions, failover, admin.

Every test runs against each of the three client libraries (tests/wire/clients.py)
unless it is about mixing them. The cluster is the engine with real segment
files; faults are the engine's own (a killed broker, a link that drops answers).
"""

from __future__ import annotations

import pytest

from core_log.messages import TopicPartition
from tests.wire.clients import CLIENT_NAMES, WAIT_S, Member, produce, produce_transactions, read_all, wait_for
from tests.wire.harness import WireLab

pytestmark = pytest.mark.slow
PARTITIONS = 3


@pytest.fixture()
def lab(tmp_path):
    with WireLab(str(tmp_path / "brokers"), topics={"orders": PARTITIONS, "single": 1}) as running:
        yield running


# ── groups ───────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_a_group_of_two_splits_the_partitions_and_reads_each_record_once(lab, client):
    """Ensure two members of one group (same library) get disjoint, covering assignments (2+1 of 3 partitions)
    and between them read every record exactly once."""
    a = Member(client, lab.bootstrap, "orders", f"pair-{client}", f"{client}-a").start()
    b = Member(client, lab.bootstrap, "orders", f"pair-{client}", f"{client}-b").start()
    try:
        wait_for(lambda: a.assignment and b.assignment and a.assignment | b.assignment == {0, 1, 2}
                 and not a.assignment & b.assignment, "both members to be assigned")
        values = [b"%s-%d" % (client.encode(), i) for i in range(90)]
        acked, errors = produce(client, lab.bootstrap, "orders", values, client_id=f"{client}-p")
        assert len(acked) == 90, errors
        wait_for(lambda: len(a.got) + len(b.got) >= 90, "the members to read everything")
    finally:
        a.stop()
        b.stop()
    assert sorted(a.got + b.got) == sorted(values)
    assert sorted(len(m.assignment) for m in (a, b)) == [1, 2]


def test_a_group_mixing_the_three_libraries_splits_one_partition_each(lab):
    """Ensure one kafka-python, one confluent-kafka and one aiokafka consumer in the same group agree on a
    protocol, get one partition each, and together read every record once; the engine's coordinator sees
    them under their client.id."""
    members = [Member(c, lab.bootstrap, "orders", "mixed", f"{c}-member").start() for c in CLIENT_NAMES]
    try:
        wait_for(lambda: all(len(m.assignment) == 1 for m in members) and
                 set().union(*(m.assignment for m in members)) == {0, 1, 2}, "one partition each")
        group = next(g for g in lab.call(lab.cluster.describe_groups) if g["group_id"] == "mixed")
        assert sorted(m["client_id"] for m in group["members"]) == sorted(f"{c}-member" for c in CLIENT_NAMES)
        values = [b"mixed-%d" % i for i in range(60)]
        assert len(produce("kafka-python", lab.bootstrap, "orders", values, client_id="mixed-p")[0]) == 60
        wait_for(lambda: sum(len(m.got) for m in members) >= 60, "the members to read everything")
    finally:
        for m in members:
            m.stop()
    assert sorted(v for m in members for v in m.got) == sorted(values)


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_a_restarted_consumer_resumes_from_its_committed_offsets(lab, client):
    """Ensure a member that read 40 records and committed, then stopped, is followed — after the group's
    coordinator broker was killed and restarted too — by a new process in the same group that reads only the
    25 produced since (none again, none skipped): the commits live in the replicated __consumer_offsets."""
    first = [b"before-%d" % i for i in range(40)]
    assert len(produce(client, lab.bootstrap, "orders", first, client_id="resume-p1")[0]) == 40
    one = Member(client, lab.bootstrap, "orders", f"resume-{client}", f"{client}-1").start()
    try:
        wait_for(lambda: len(one.got) >= 40, "the first process to read the first 40")
    finally:
        one.stop()  # commits, then leaves the group
    committed = next(g for g in lab.call(lab.cluster.describe_groups) if g["group_id"] == f"resume-{client}")
    assert sum(committed["committed"].values()) == 40
    coordinator = committed["coordinator"]
    lab.call(lambda: lab.cluster.crash_broker(coordinator))
    lab.call(lambda: lab.cluster.restart_broker(coordinator))
    later = [b"after-%d" % i for i in range(25)]
    assert len(produce(client, lab.bootstrap, "orders", later, client_id="resume-p2")[0]) == 25
    two = Member(client, lab.bootstrap, "orders", f"resume-{client}", f"{client}-2").start()
    try:
        wait_for(lambda: len(two.got) >= 25, "the second process to read what is new")
        wait_for(lambda: two.assignment == {0, 1, 2}, "the second process to hold every partition")
    finally:
        two.stop()
    assert sorted(one.got) == sorted(first) and sorted(two.got) == sorted(later)


# ── idempotence ──────────────────────────────────────────────────────────────
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_an_idempotent_producer_whose_answers_are_lost_does_not_duplicate(lab, client):
    """Ensure when the leader's produce answers to the client are dropped for a while (a one-way fault on the
    engine's network; the requests still arrive and are written), every record ends acked and in the log
    exactly once. kafka-python and aiokafka time out and resend: the leader recognises the sequence numbers
    (DuplicateBatchIgnored). librdkafka instead takes a later batch's success as proof the earlier one was
    written (its sequences are consecutive), so it need not resend at all."""
    name = f"idem-{client}"
    leader = lab.call(lambda: lab.cluster.leader_of(TopicPartition("single", 0)))
    dropped_before = lab.call(lambda: lab.cluster.network.dropped)

    healed = False

    def fault(i: int) -> None:
        """From the 4th send, lose the leader's answers to the client's connections to it; heal from the 9th
        send once an answer was lost. The cut is re-applied at each send, so a connection the client opens
        late (a slow start) or anew (after a request timed out) is cut too."""
        nonlocal healed
        if i < 3 or healed:
            return
        if i >= 8 and (lab.call(lambda: lab.cluster.network.dropped) > dropped_before or i == len(values) - 1):
            lab.call(lambda: lab.cluster.network.plan.links.clear())  # resent batches and later answers get through
            healed = True
            return

        def cut() -> None:
            for conn in lab.server.connections():
                if conn["client_id"] == name and conn["broker"] == leader:
                    lab.cluster.network.plan.set_link(f"broker-{leader}", conn["node_id"], loss_probability=1.0,
                                                      both_ways=False)
        lab.call(cut)

    values = [b"idem-%d" % i for i in range(16)]
    acked, errors = produce(client, lab.bootstrap, "single", values, client_id=name, between=fault, pause_s=0.3,
                            request_timeout_ms=1500)
    assert sorted(acked) == sorted(values), errors
    stored = [v for vs in lab.log_values("single", 1).values() for v in vs]
    assert sorted(stored) == sorted(values), "a batch was written twice (or lost)"
    assert lab.call(lambda: lab.cluster.network.dropped) > dropped_before, "no answer was lost: nothing tested"
    deduped = lab.call(lambda: lab.cluster.events.of_kind("DuplicateBatchIgnored"))
    if client != "confluent-kafka":
        assert deduped, "the client resent, and the leader must have recognised the batch"


# ── failover ─────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_acks_all_loses_no_acknowledged_record_when_a_leader_is_killed_mid_stream(lab, client):
    """Ensure while the library produces (acks=all, idempotent) a partition leader is killed: after the
    failover every record the client saw acknowledged is in the new leaders' logs, none twice."""
    victim = lab.call(lambda: lab.cluster.leader_of(TopicPartition("orders", 0)))

    def crash(i: int) -> None:
        if i == 100:
            lab.call(lambda: lab.cluster.crash_broker(victim))

    values = [b"%s-stream-%d" % (client.encode(), i) for i in range(400)]
    acked, errors = produce(client, lab.bootstrap, "orders", values, client_id=f"crash-{client}", between=crash,
                            pause_s=0.005)
    assert len(acked) >= 300, (len(acked), errors[:3])
    stored = [v for vs in lab.log_values("orders", PARTITIONS).values() for v in vs]
    assert set(acked) <= set(stored), f"lost-write: {sorted(set(acked) - set(stored))[:5]}"
    assert len(stored) == len(set(stored)), "duplicate"


# ── transactions ─────────────────────────────────────────────────────────────
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_a_transactional_producer_commits_and_aborts_and_read_committed_sees_only_the_commit(lab, client):
    """Ensure the library's transactional producer (through the engine's transaction coordinator) commits one
    transaction and aborts one: a read_committed consumer of the same library reads only the committed
    records, a read_uncommitted one reads both, and the log holds the aborted records with their marker."""
    committed = [b"com-%s-%d" % (client.encode(), i) for i in range(15)]
    aborted = [b"abo-%s-%d" % (client.encode(), i) for i in range(15)]
    produce_transactions(client, lab.bootstrap, "orders", committed, aborted)
    seen = read_all(client, lab.bootstrap, "orders", PARTITIONS, len(committed), isolation="read_committed",
                    settle_s=1.0)
    assert sorted(seen) == sorted(committed)
    everything = read_all(client, lab.bootstrap, "orders", PARTITIONS, 30)
    assert sorted(everything) == sorted(committed + aborted)

    def markers() -> int:  # COMMIT/ABORT control batches the coordinator had the leaders write
        return sum(b.is_control for p in range(PARTITIONS) for b in lab.cluster.replica(
            lab.cluster.leader_of(TopicPartition("orders", p)), TopicPartition("orders", p)).log.read(0, 1 << 30))
    assert lab.call(markers) >= 2


# ── admin ────────────────────────────────────────────────────────────────────
def test_admin_clients_create_describe_and_delete_topics(lab):
    """Ensure the AdminClients of all three libraries create topics (with configs) and describe them;
    confluent-kafka's describes a broker's settings (a changed one as STATIC_BROKER_CONFIG) and gets Kafka's
    error codes for a duplicate and an impossible replication factor, and kafka-python's describes (partitions, replicas, leaders), lists and deletes a topic."""
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewTopic as KafkaNewTopic

    admin = AdminClient({"bootstrap.servers": lab.bootstrap})
    futures = admin.create_topics([NewTopic("invoices", 4, 2, config={"retention.ms": "60000",
                                                                      "cleanup.policy": "compact"}),
                                   NewTopic("orders", 1, 1), NewTopic("too-many-copies", 1, 9)])
    futures["invoices"].result(WAIT_S)
    for name, code in (("orders", "TOPIC_ALREADY_EXISTS"), ("too-many-copies", "INVALID_REPLICATION_FACTOR")):
        with pytest.raises(Exception) as refused:
            futures[name].result(WAIT_S)
        assert code in str(refused.value)
    assert len(admin.list_topics(timeout=WAIT_S).topics["invoices"].partitions) == 4
    assert lab.call(lambda: lab.cluster.topics["invoices"].replication_factor) == 2
    configs = admin.describe_configs([ConfigResource("topic", "invoices")])
    described = next(iter(configs.values())).result(WAIT_S)
    assert described["retention.ms"].value == "60000" and described["cleanup.policy"].value == "compact"
    assert described["min.insync.replicas"].is_default
    broker = next(iter(admin.describe_configs([ConfigResource("broker", "2")]).values())).result(WAIT_S)
    assert broker["broker.id"].value == "2" and broker["offsets.topic.num.partitions"].is_default
    changed = broker["broker.session.timeout.ms"]  # the test cluster shortens it (tests/wire/harness.py)
    assert changed.value == "3000" and not changed.is_default and changed.source == 4  # STATIC_BROKER_CONFIG

    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin import NewTopic as AioNewTopic
    from aiokafka.admin.config_resource import ConfigResource as AioConfigResource
    from aiokafka.admin.config_resource import ConfigResourceType

    async def with_aiokafka() -> dict[str, str]:
        aio_admin = AIOKafkaAdminClient(bootstrap_servers=lab.bootstrap)
        await aio_admin.start()
        try:
            await aio_admin.create_topics([AioNewTopic("aio-topic", 2, 2, topic_configs={"retention.ms": "120000"})])
            described = await aio_admin.describe_configs([AioConfigResource(ConfigResourceType.TOPIC, "aio-topic")])
            return {name: value for name, value, *_ in described[0].resources[0][4]}
        finally:
            await aio_admin.close()

    assert asyncio.run(with_aiokafka())["retention.ms"] == "120000"
    assert lab.call(lambda: lab.cluster.topics["aio-topic"].partitions) == 2

    kafka_admin = KafkaAdminClient(bootstrap_servers=lab.bootstrap, request_timeout_ms=10_000)
    kafka_admin.create_topics([KafkaNewTopic("kp-topic", 2, 3)])
    assert "kp-topic" in kafka_admin.list_topics()
    described = kafka_admin.describe_topics(["kp-topic"])[0]
    assert described["name"] == "kp-topic" and described["error_code"] == 0
    assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1]
    assert all(sorted(p["replica_nodes"]) == [1, 2, 3] and p["leader_id"] in p["isr_nodes"]
               for p in described["partitions"])
    kafka_admin.delete_topics(["kp-topic"])
    wait_for(lambda: "kp-topic" not in lab.call(lambda: set(lab.cluster.topics)), "the topic to be deleted")
    kafka_admin.close()


def test_with_the_lowest_broker_down_admin_requests_reach_a_live_one(lab):
    """Ensure while broker 1 is crashed, Metadata names a live broker as the controller, so kafka-python's
    KafkaAdminClient (which sends CreateTopics to the controller it read there) still creates a topic."""
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewTopic as KafkaNewTopic

    lab.call(lambda: lab.cluster.crash_broker(1))
    # Until the controller fences broker 1 (broker.session.timeout.ms) Metadata still lists it, as Kafka's does,
    # and kafka-python may pick it for its own Metadata request and give up on the refused connection.
    wait_for(lambda: 1 not in lab.call(lab.cluster.controller.live_brokers), "broker 1 to be fenced")
    # Bootstrap from a live broker (kafka-python does not try the next address when the first is refused);
    # which broker the admin then sends CreateTopics to is the controller that Metadata named.
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{lab.port(2)}", request_timeout_ms=10_000)
    try:
        admin.create_topics([KafkaNewTopic("while-one-is-down", 2, 2)])
    finally:
        admin.close()
    assert lab.call(lambda: lab.cluster.topics["while-one-is-down"].partitions) == 2


def test_admin_client_lists_and_describes_groups_and_deletes_records(lab):
    """Ensure confluent-kafka's AdminClient lists a live group, describes it (state, member, its partitions),
    and DeleteRecords moves a partition's log start: a consumer from the beginning then skips those records."""
    from confluent_kafka import TopicPartition as CKTopicPartition
    from confluent_kafka.admin import AdminClient

    member = Member("kafka-python", lab.bootstrap, "orders", "described", "the-member").start()
    try:
        wait_for(lambda: member.assignment == {0, 1, 2}, "the member to hold every partition")
        admin = AdminClient({"bootstrap.servers": lab.bootstrap})
        assert "described" in [g.group_id for g in admin.list_consumer_groups().result(WAIT_S).valid]
        described = admin.describe_consumer_groups(["described"])["described"].result(WAIT_S)
        assert described.state.name == "STABLE" and [m.client_id for m in described.members] == ["the-member"]
        assert sorted(tp.partition for tp in described.members[0].assignment.topic_partitions) == [0, 1, 2]
    finally:
        member.stop()
    values = [b"del-%d" % i for i in range(60)]
    assert len(produce("kafka-python", lab.bootstrap, "orders", values, client_id="del-p")[0]) == 60
    before = {p: lab.call(lambda p=p: lab.cluster.replica(lab.cluster.leader_of(TopicPartition("orders", p)),
                                                           TopicPartition("orders", p)).high_watermark)
              for p in range(PARTITIONS)}
    deleted = admin.delete_records([CKTopicPartition("orders", 0, 3), CKTopicPartition("orders", 1, -1)])
    low = {tp.partition: future.result(WAIT_S).low_watermark for tp, future in deleted.items()}
    assert low == {0: 3, 1: before[1]}
    remaining = sum(before.values()) - 3 - before[1]
    assert len(read_all("kafka-python", lab.bootstrap, "orders", PARTITIONS, remaining, settle_s=1.0)) == remaining
    assert lab.call(lambda: lab.cluster.events.of_kind("RecordsDeleted"))


def test_consume_transform_produce_commits_the_input_offsets_inside_the_transaction(lab):
    """Ensure confluent-kafka's exactly-once loop works through the wire: read 20 records, write them
    transformed in a transaction together with the input offsets (AddOffsetsToTxn + TxnOffsetCommit); after
    the commit the group's offsets are the positions read and the output holds the 20, visible to
    read_committed."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as CKTopicPartition

    assert len(produce("kafka-python", lab.bootstrap, "orders", [b"in-%d" % i for i in range(20)],
                       client_id="ctp-source")[0]) == 20
    consumer = Consumer({"bootstrap.servers": lab.bootstrap, "group.id": "ctp", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe(["orders"])
    producer = Producer({"bootstrap.servers": lab.bootstrap, "transactional.id": "ctp-1"})
    producer.init_transactions(WAIT_S)
    read = []
    wait_for(lambda: read.extend(m for m in consumer.consume(20, 0.3) if not m.error()) or len(read) >= 20,
             "the 20 input records")
    producer.begin_transaction()
    for message in read:
        producer.produce("single", key=message.key(), value=message.value().replace(b"in-", b"out-"))
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata(),
                                         WAIT_S)
    producer.commit_transaction(WAIT_S)
    # The coordinator writes the COMMIT markers (to the output and to __consumer_offsets) just after EndTxn
    # answers, as Kafka's does, so the group's offsets appear a moment later.
    wait_for(lambda: sum(max(0, tp.offset) for tp in consumer.committed(
        [CKTopicPartition("orders", p) for p in range(PARTITIONS)], WAIT_S)) == 20, "the offsets to commit")
    consumer.close()
    output = read_all("confluent-kafka", lab.bootstrap, "single", 1, 20, isolation="read_committed")
    assert sorted(output) == sorted(b"out-%d" % i for i in range(20))
