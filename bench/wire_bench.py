"""Through the wire: a real confluent-kafka client against ``python -m core_log serve``, and its in-process twin.

* ``wire_produce_records_per_s`` — confluent-kafka (librdkafka) ``Producer.produce``
  of 100-byte values, acks=all, idempotent, into a 3-broker ``serve`` (RF 3,
  min ISR 2, 6 partitions, real segment files), until ``flush()`` returns;
* ``wire_consume_records_per_s`` — a confluent-kafka consumer reading them all back
  (assign mode, from the beginning);
* ``inprocess_produce_records_per_s`` — the engine's own ``Producer.send`` on the
  same workload (same record count, 100-byte values, acks=all, idempotent, RF 3,
  6 partitions, FileStorage, zero-latency links) in the same run;
  ``wire_vs_inprocess`` is the ratio.

``serve`` runs as a separate process (as a user would start it), so the client
and the engine each have their own interpreter; the figures need 2 cores.
None when confluent-kafka is not installed (it is a test dependency).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cluster_bench import produce_throughput

BASE_DIR = Path(__file__).resolve().parents[1]
VALUE = b"v" * 100
PARTITIONS = 6
TOPIC = "wire-bench"
TIMEOUT_S = 300.0


def free_base_port(count: int) -> int:
    """A port p with p … p+count-1 free right now (``serve`` puts its brokers on consecutive ports)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65526:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no run of free ports found")


def wire_throughput(records: int) -> tuple[float, float] | None:
    try:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError:
        return None
    root = tempfile.mkdtemp(prefix="core_log_wire_bench_")
    base = free_base_port(3)
    server = subprocess.Popen([sys.executable, "-m", "core_log", "serve", "--brokers", "3", "--port", str(base),
                               "--data-dir", root], cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line.startswith("serving"):
            raise RuntimeError(f"serve did not start: {line!r}")
        bootstrap = f"127.0.0.1:{base}"
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: its futures die with it
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                             "linger.ms": 5})
        errors: list[str] = []
        start = time.perf_counter()
        for i in range(records):
            while True:
                try:
                    producer.produce(TOPIC, key=b"machine-%d" % (i % 500), value=VALUE,
                                     on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
                    break
                except BufferError:  # the client's queue is full: let it send
                    producer.poll(0.01)
            if i % 10_000 == 0:
                producer.poll(0)
        if producer.flush(TIMEOUT_S):
            raise RuntimeError("the wire producer did not finish")
        produce_s = time.perf_counter() - start
        if errors:
            raise RuntimeError(f"{len(errors)} records failed, e.g. {errors[0]}")
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wire-bench", "enable.auto.commit": False})
        consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        got, start = 0, time.perf_counter()
        while got < records and time.perf_counter() - start < TIMEOUT_S:
            got += sum(1 for m in consumer.consume(10_000, 0.5) if not m.error())
        consume_s = time.perf_counter() - start
        consumer.close()
        if got < records:
            raise RuntimeError(f"the wire consumer read {got} of {records} records")
        return records / produce_s, records / consume_s
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)


def run_wire_bench(records: int = 200_000) -> dict[str, float | int | None]:
    wire = wire_throughput(records)
    ours = produce_throughput(records, value=VALUE)
    return {
        "wire_records": records,
        "wire_produce_records_per_s": None if wire is None else round(wire[0]),
        "wire_consume_records_per_s": None if wire is None else round(wire[1]),
        "inprocess_produce_records_per_s": round(ours),
        "wire_vs_inprocess": None if wire is None else round(wire[0] / ours, 3),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_wire_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000), sort_keys=True))
