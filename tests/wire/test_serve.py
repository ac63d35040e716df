"""``python -m core_log serve``: a standalone cluster real clients use, validated flags, a clean Ctrl-C."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.wire_bench import free_base_port  # the same search the wire benchmark uses

BASE_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
pytestmark = pytest.mark.slow


def test_serve_runs_brokers_a_real_client_uses_and_stops_cleanly_on_ctrl_c(tmp_path):
    """Ensure serve prints its bootstrap address, kafka-python produces and reads back through it, and SIGINT
    closes the listeners, flushes the logs (clean-shutdown markers written) and exits 0."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    base = free_base_port(2)
    data = tmp_path / "data"
    process = subprocess.Popen([sys.executable, "-m", "core_log", "serve", "--brokers", "2", "--port", str(base),
                                "--data-dir", str(data), "--topic", "readings"], cwd=BASE_DIR,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with selectors.DefaultSelector() as waiting:  # epoll: this process may hold fds beyond select()'s 1024
            waiting.register(process.stdout, selectors.EVENT_READ)
            assert waiting.select(START_TIMEOUT_S), f"serve printed nothing in {START_TIMEOUT_S} s"
        line = process.stdout.readline()
        assert line.startswith("serving 2 broker(s) on ") and f"127.0.0.1:{base + 1}" in line, line
        producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{base}", acks="all", request_timeout_ms=10_000)
        sent = [producer.send("readings", key=b"m1", value=b"r%d" % i) for i in range(20)]
        producer.flush(START_TIMEOUT_S)
        assert all(f.get(timeout=START_TIMEOUT_S).offset >= 0 for f in sent)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{base + 1}", group_id=None)
        consumer.assign([TopicPartition("readings", p) for p in range(3)])
        consumer.seek_to_beginning()
        got, deadline = [], time.monotonic() + START_TIMEOUT_S
        while len(got) < 20 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
        consumer.close()
        assert sorted(got) == sorted(b"r%d" % i for i in range(20))
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=START_TIMEOUT_S)
        assert process.returncode == 0, out
        assert "stopped; logs flushed" in out
        assert list(data.rglob("*.log")), "the brokers kept real segment files"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("flags, message", [
    (["--brokers", "10"], "1 to 9 brokers"),
    (["--brokers", "0"], "at least 1"),
    (["--port", "80"], "1024–65526"),
    (["--port", "x"], "expected a port number"),
    (["--topic", "__consumer_offsets"], "reserved for internal topics"),
])
def test_serve_refuses_bad_flags_with_a_clear_message(tmp_path, flags, message):
    """Ensure each bad flag exits 2 and says what is wrong, before anything listens."""
    done = subprocess.run([sys.executable, "-m", "core_log", "serve", "--data-dir", str(tmp_path / "d"),
                           "--port", str(free_base_port(3)), *flags], cwd=BASE_DIR, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and message in done.stderr, (done.returncode, done.stderr)
