"""``python -m core_log dump-log``: a real log directory dumped by a subprocess, sound and corrupt."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core_log.clock import SimClock
from core_log.dump import dump_segment
from core_log.log import Log, LogConfig
from core_log.records import (
    Compression,
    ControlType,
    RecordBatch,
    decode_batches,
    encode_batch,
    encode_control_batch,
    make_records,
)
from core_log.storage import FileStorage

ROOT = Path(__file__).resolve().parents[2]
START_MS = 1_700_000_000_000

pytestmark = pytest.mark.slow  # starts subprocesses


def dump(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core_log", "dump-log", *args],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=60,
    )


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed log: headers, null key, a transaction with a tombstone and its commit marker, a gzip batch, ≥ 2 segments."""
    directory = tmp_path_factory.mktemp("dump") / "topic-0"
    clock = SimClock(START_MS)
    log = Log(str(directory), storage=FileStorage(), clock=clock, config=LogConfig(segment_bytes=300))
    log.append(encode_batch(make_records(
        [(b"k1", b"hello", (("trace", b"abc"), ("nul", None))), (None, b"v2")], timestamp_ms=clock.now_ms())))
    clock.advance(10)
    log.append(encode_batch(make_records([(b"k1", None)], timestamp_ms=clock.now_ms()),
                            is_transactional=True, producer_id=5, producer_epoch=1, base_sequence=0), leader_epoch=2)
    log.append(encode_control_batch(ControlType.COMMIT, producer_id=5, producer_epoch=1, coordinator_epoch=3,
                                    timestamp_ms=clock.now_ms()), leader_epoch=2)
    clock.advance(10)
    log.append(encode_batch(make_records([(b"k%d" % i, b"x" * 50) for i in range(3)], timestamp_ms=clock.now_ms()),
                            producer_id=9, producer_epoch=0, base_sequence=7), leader_epoch=2)
    log.append(encode_batch(make_records([(b"z", b"zip " * 30)], timestamp_ms=clock.now_ms()),
                            compression=Compression.GZIP), leader_epoch=3)
    log.close()
    return directory


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def batches_of(path: Path) -> list[RecordBatch]:
    return decode_batches(path.read_bytes())


def batch_lines(stdout: str) -> list[dict[str, str]]:
    return [dict(re.findall(r"(\w+): (\S+)", line)) for line in stdout.splitlines() if line.startswith("baseOffset:")]


def record_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("| offset:")]


def assert_batch_line(fields: dict[str, str], batch: RecordBatch, valid: bool = True) -> None:
    expected = {
        "baseOffset": batch.base_offset,
        "lastOffset": batch.last_offset,
        "count": batch.record_count,
        "producerId": batch.producer_id,
        "producerEpoch": batch.producer_epoch,
        "baseSequence": batch.base_sequence,
        "partitionLeaderEpoch": batch.partition_leader_epoch,
        "isTransactional": str(batch.is_transactional).lower(),
        "isControl": str(batch.is_control).lower(),
        "position": batch.position,
        "size": batch.size_bytes,
        "isvalid": str(valid).lower(),
    }
    assert {k: fields.get(k) for k in expected} == {k: str(v) for k, v in expected.items()}


def test_log_fixture_has_several_segments(log_dir: Path) -> None:
    """Ensure the fixture log really spans at least two segments."""
    assert len(segment_files(log_dir)) >= 2


def test_dump_directory_prints_every_batch_and_record(log_dir: Path) -> None:
    """Ensure dumping a partition directory prints one valid batch line per batch and every record, exit 0."""
    result = dump(str(log_dir))
    assert result.returncode == 0, result.stderr
    batches = [b for seg in segment_files(log_dir) for b in batches_of(seg)]
    lines = batch_lines(result.stdout)
    assert len(lines) == len(batches) == 5
    for fields, batch in zip(lines, batches):
        assert_batch_line(fields, batch)
    assert [f["compresscodec"] for f in lines] == ["none", "none", "none", "none", "gzip"]
    assert [f["partitionLeaderEpoch"] for f in lines] == ["-1", "2", "2", "2", "3"]

    records = record_lines(result.stdout)
    assert [int(re.match(r"\| offset: (\d+)", r).group(1)) for r in records] == list(range(8))
    assert "key: k1" in records[0] and "payload: hello" in records[0]
    assert "headers: [trace=abc, nul=null]" in records[0]
    assert "key: null" in records[1] and "keySize: -1" in records[1] and "headers: []" in records[1]
    assert "payload: null" in records[2] and "valueSize: -1" in records[2] and "sequence: 0" in records[2]
    assert "endTxnMarker: COMMIT" in records[3] and "coordinatorEpoch: 3" in records[3]
    assert "sequence: 7" in records[4] and "sequence: 9" in records[6]
    assert "payload: " + "x" * 40 + "…" in records[4]  # long values are previewed
    assert "payload: zip zip" in records[7]
    assert result.stdout.count("Dumping ") == len(segment_files(log_dir))


def test_dump_single_file(log_dir: Path) -> None:
    """Ensure dumping one segment file prints its batches and its starting offset, exit 0."""
    seg = segment_files(log_dir)[1]
    result = dump(str(seg))
    assert result.returncode == 0, result.stderr
    lines = batch_lines(result.stdout)
    batches = batches_of(seg)
    assert len(lines) == len(batches) >= 1
    for fields, batch in zip(lines, batches):
        assert_batch_line(fields, batch)
    assert f"Log starting offset: {batches[0].base_offset}" in result.stdout


def test_batches_only_flag(log_dir: Path) -> None:
    """Ensure --batches-only prints batch lines and no record lines."""
    result = dump("--batches-only", str(log_dir))
    assert result.returncode == 0, result.stderr
    assert len(batch_lines(result.stdout)) == 5 and record_lines(result.stdout) == []


def test_dump_survives_ascii_stdout(log_dir: Path) -> None:
    """Ensure a non-UTF-8 stdout gets escapes instead of a UnicodeEncodeError."""
    result = subprocess.run(
        [sys.executable, "-m", "core_log", "dump-log", str(log_dir)], cwd=ROOT, capture_output=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "ascii"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert b"\\u2026" in result.stdout


def test_flipped_byte_in_later_batch_is_reported_invalid(log_dir: Path, tmp_path: Path) -> None:
    """Ensure a byte flipped inside a later batch's records marks that batch isvalid: false and exits 1."""
    copy = tmp_path / "copy"
    shutil.copytree(log_dir, copy)
    seg = segment_files(copy)[0]
    batches = batches_of(seg)
    target = batches[1]  # the transactional batch: its key sits in the middle of its records
    data = bytearray(seg.read_bytes())
    flip_at = target.position + 61 + 6  # inside the record: the key's first byte
    data[flip_at] ^= 0x01
    seg.write_bytes(bytes(data))

    result = dump(str(seg))
    assert result.returncode == 1
    lines = batch_lines(result.stdout)
    assert len(lines) == len(batches)
    for i, (fields, batch) in enumerate(zip(lines, batches)):
        assert_batch_line(fields, batch, valid=(i != 1))
    assert "with errors above" in result.stdout

    whole = dump(str(copy))  # the directory dump continues into the next segment
    assert whole.returncode == 1
    assert [f["isvalid"] for f in batch_lines(whole.stdout)] == ["true", "false", "true", "true", "true"]


def test_truncated_file_prints_earlier_batches_and_where_it_stopped(log_dir: Path, tmp_path: Path) -> None:
    """Ensure a segment torn mid-batch prints the sound batches, then 'Stopped at byte N', exit 1."""
    seg = segment_files(log_dir)[0]
    batches = batches_of(seg)
    last = batches[-1]
    torn = tmp_path / seg.name
    torn.write_bytes(seg.read_bytes()[: last.position + last.size_bytes // 2])

    result = dump(str(torn))
    assert result.returncode == 1
    lines = batch_lines(result.stdout)
    assert len(lines) == len(batches) - 1
    for fields, batch in zip(lines, batches):
        assert_batch_line(fields, batch)
    stopped = [line for line in result.stdout.splitlines() if line.startswith("Stopped at byte")]
    assert len(stopped) == 1
    assert stopped[0].startswith(f"Stopped at byte {last.position} of {last.position + last.size_bytes // 2}:")


def test_garbage_file_stops_at_byte_zero(tmp_path: Path) -> None:
    """Ensure a file with no valid batch says it stopped at byte 0 and exits 1."""
    bad = tmp_path / "00000000000000000000.log"
    bad.write_bytes(b"\x00" * 100)
    result = dump(str(bad))
    assert result.returncode == 1
    assert "Stopped at byte 0 of 100" in result.stdout and batch_lines(result.stdout) == []


def test_missing_path_exits_2_with_message(tmp_path: Path) -> None:
    """Ensure a path that does not exist exits 2 with a message on stderr and creates nothing."""
    missing = tmp_path / "nope" / "00000000000000000000.log"
    result = dump(str(missing))
    assert result.returncode == 2
    assert "dump-log:" in result.stderr and str(missing) in result.stderr
    assert not missing.exists()


def test_directory_without_segments_exits_2(tmp_path: Path) -> None:
    """Ensure a directory with no segment files exits 2 with a message."""
    result = dump(str(tmp_path))
    assert result.returncode == 2
    assert "no .log segment files" in result.stderr


@pytest.mark.parametrize("args", [["--no-such-flag", "x"], [], ["a", "b"]], ids=["bad flag", "no path", "two paths"])
def test_bad_arguments_exit_2(args: list[str]) -> None:
    """Ensure bad flags or arguments exit 2 with argparse's usage message."""
    result = dump(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_header_key_with_newline_stays_on_one_line(tmp_path: Path) -> None:
    """Ensure a header key holding a line break is escaped so each record stays on one line."""
    seg = tmp_path / "00000000000000000000.log"
    seg.write_bytes(encode_batch(make_records([(b"k", b"v", (("evil\nbaseOffset: 99", b"x"),))],
                                              timestamp_ms=START_MS)))
    out = io.StringIO()
    assert dump_segment(str(seg), out) is True
    assert len(batch_lines(out.getvalue())) == 1
    (line,) = record_lines(out.getvalue())
    assert "headers: [evil\\nbaseOffset: 99=x]" in line


def test_internal_topics_are_decoded(tmp_path: Path) -> None:
    """Ensure dump-log decodes __consumer_offsets commits and __transaction_state entries, as Kafka's decoders do."""
    from core_log.cluster import Cluster
    from core_log.consumer import Consumer, ConsumerConfig
    from core_log.messages import TopicPartition
    from core_log.txn import TransactionalProducer

    c = Cluster(brokers=1, seed=3, storage="file", data_dir=str(tmp_path))
    c.create_topic("t", 1, 1)
    c.run_for(200)
    p = TransactionalProducer(c, "p", "tx-1")
    f = p.init_transactions()
    assert c.run_until(lambda: f.done, 10_000)
    p.begin_transaction()
    p.send("t", b"k", b"v")
    done = p.commit_transaction()
    assert c.run_until(lambda: done.done, 10_000) and done.ok
    consumer = Consumer(c, "reader", ConsumerConfig(group_id="readers"))
    consumer.assign([TopicPartition("t", 0)], from_beginning=True)
    commit = consumer.commit_sync({TopicPartition("t", 0): 1})
    assert c.run_until(lambda: commit.done, 20_000) and commit.ok
    c.brokers[1].shutdown()
    offsets_dirs = [d for d in (tmp_path / "broker-1").glob("__consumer_offsets-*") if any(d.glob("*.log"))
                    and (d / "00000000000000000000.log").stat().st_size]
    out = "".join(dump(str(d)).stdout for d in offsets_dirs)
    assert "decoded: group readers committed offset 1 for t-0" in out, out[-2000:]
    txn_dirs = [d for d in (tmp_path / "broker-1").glob("__transaction_state-*")
                if (d / "00000000000000000000.log").stat().st_size]
    out = "".join(dump(str(d)).stdout for d in txn_dirs)
    assert "transactional id tx-1" in out and "state CompleteCommit" in out and "state PrepareCommit" in out
