"""Storage benchmark: the Log against raw ``os.write`` of the same bytes, in one run.

Workload (issue 2): one log, batches of 100 records with 200-byte values,
FileStorage, no fsync (flush settings left at Kafka's "never"). Figures:

* ``append_records_per_s`` / ``raw_append_records_per_s`` / ``append_vs_raw`` —
  Log.append versus ``os.write`` of the identical batch bytes to one file (medians
  of three alternating rounds);
* ``read_records_per_s`` — Log.read plus decoding every record;
* ``recovery_s_unclean_1m`` — reopen after the process "died" (no clean-shutdown
  marker): every batch is CRC-checked and the indexes rebuilt;
* ``recovery_s_clean_1m`` — reopen after ``close()``;
* ``peak_rss_mb`` — the process's peak resident set size.

Numbers are measurements, never test assertions. Run ``python -m core_log bench --json``.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
import time

from core_log.clock import SimClock
from core_log.log import Log, LogConfig
from core_log.records import encode_batch, make_records
from core_log.storage import FileStorage

RECORDS_PER_BATCH = 100
VALUE_BYTES = 200
ROUNDS = 3  # append measurements: raw and Log alternate, medians compared


def _batch_bytes(timestamp_ms: int) -> bytes:
    items = [(f"machine-{i:03d}".encode(), bytes([65 + i % 26]) * VALUE_BYTES) for i in range(RECORDS_PER_BATCH)]
    return encode_batch(make_records(items, timestamp_ms=timestamp_ms))


def _raw_append(path: str, batch: bytes, batches: int) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        start = time.perf_counter()
        for _ in range(batches):
            os.write(fd, batch)
        elapsed = time.perf_counter() - start
        os.fsync(fd)  # untimed: start the next round with no dirty pages pending write-back
        return elapsed
    finally:
        os.close(fd)


def run_storage_bench(records: int = 1_000_000, scratch_dir: str | None = None) -> dict[str, float | int | str]:
    """Run the workload and return the figures (see the module docstring)."""
    batches = records // RECORDS_PER_BATCH
    root = tempfile.mkdtemp(prefix="core_log_bench_", dir=scratch_dir)
    try:
        clock = SimClock(1_700_000_000_000)
        batch = _batch_bytes(clock.now_ms())
        storage = FileStorage()
        log_dir = os.path.join(root, "telemetry-0")
        config = LogConfig()

        # Raw and Log appends alternate over ROUNDS rounds and the medians are compared, so
        # that disk write-back or a busy neighbour hits both sides alike.
        raw_times, append_times = [], []
        _raw_append(os.path.join(root, "warmup.bin"), batch, batches)  # untimed: the first big write
        os.remove(os.path.join(root, "warmup.bin"))  # in a process pays for page-cache growth
        for round_no in range(ROUNDS):
            raw_path = os.path.join(root, "raw.bin")
            raw_times.append(_raw_append(raw_path, batch, batches))
            os.remove(raw_path)
            if round_no:
                shutil.rmtree(log_dir)
            log = Log(log_dir, storage=storage, clock=clock, config=config)
            start = time.perf_counter()
            for _ in range(batches):
                log.append(batch)
            append_times.append(time.perf_counter() - start)
            assert log.log_end_offset == records
            log.flush()  # untimed, as for the raw file
            if round_no < ROUNDS - 1:
                log.close()
        raw_s, append_s = statistics.median(raw_times), statistics.median(append_times)

        start = time.perf_counter()
        offset = 0
        decoded = 0
        while offset < log.log_end_offset:
            got = log.read(offset, max_bytes=1024 * 1024)
            for b in got:
                decoded += len(b.records())
            offset = got[-1].next_offset
        read_s = time.perf_counter() - start
        assert decoded == records

        log.abandon()  # no clean-shutdown marker: the next open is a crash recovery
        start = time.perf_counter()
        log = Log(log_dir, storage=storage, clock=clock, config=config)
        unclean_s = time.perf_counter() - start
        assert log.log_end_offset == records and not log.recovery.clean_shutdown
        log.close()

        start = time.perf_counter()
        log = Log(log_dir, storage=storage, clock=clock, config=config)
        clean_s = time.perf_counter() - start
        assert log.log_end_offset == records and log.recovery.clean_shutdown
        log.close()

        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {
            "records": records,
            "batch_bytes": len(batch),
            "append_records_per_s": round(records / append_s),
            "raw_append_records_per_s": round(records / raw_s),
            "append_vs_raw": round(raw_s / append_s, 3),
            "read_records_per_s": round(records / read_s),
            "recovery_s_unclean_1m": round(unclean_s, 3),  # measured; "1m" at the default --records
            "recovery_s_clean_1m": round(clean_s, 4),
            "peak_rss_mb": round(peak_rss_mb, 1),
            "python": f"{os.sys.version_info.major}.{os.sys.version_info.minor}",
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
