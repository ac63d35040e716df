"""The Log: offsets, segments, indexes, reads, trimming, retention, compaction, flush, recovery."""

from __future__ import annotations

import os

import pytest

from core_log.errors import (
    ConfigError,
    CorruptRecordError,
    InvalidRecordError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
)
from core_log.log import CHECKPOINT_FILE, CLEAN_SHUTDOWN_FILE, Log, LogConfig
from core_log.records import decode_batches, encode_batch, make_records, read_batch_header
from core_log.segment import segment_file_name

from .conftest import START_MS, batch, values

VALUE = b"v" * 100


def _fill(log: Log, clock, n_batches: int, per_batch: int = 3, step_ms: int = 1000, key_mod: int = 1000) -> None:
    for i in range(n_batches):
        kvs = [(b"k%d" % ((i * per_batch + j) % key_mod), VALUE + b"%d" % (i * per_batch + j)) for j in range(per_batch)]
        log.append(batch(*kvs, ts=clock.now_ms()))
        clock.advance(step_ms)


def _log_files(log: Log, suffix: str) -> list[str]:
    return sorted(n for n in os.listdir(log.directory) if n.endswith(suffix))


# ── append and read ──────────────────────────────────────────────────────────


def test_append_assigns_offsets_from_the_log_end(open_log):
    """Ensure each append's records get the next offsets, whatever the batch said."""
    log = open_log()
    first = log.append(batch((b"a", b"1"), (b"b", b"2")))
    second = log.append(batch((b"c", b"3")))
    assert (first.first_offset, first.last_offset, first.record_count) == (0, 1, 2)
    assert (second.first_offset, second.last_offset) == (2, 2)
    assert log.log_end_offset == 3
    assert values(log.read_records(0)) == [(0, b"a", b"1"), (1, b"b", b"2"), (2, b"c", b"3")]


def test_append_stamps_leader_epoch_and_keeps_crc_valid(open_log):
    """Ensure the partition leader epoch is stamped without breaking the CRC."""
    log = open_log()
    log.append(batch((b"a", b"1")), leader_epoch=7)
    (b,) = log.read(0)
    assert b.partition_leader_epoch == 7
    assert b.crc_is_valid()


def test_read_returns_whole_batches_within_max_bytes(open_log, clock):
    """Ensure reads return whole batches, at least one, and stop at max_bytes."""
    log = open_log()
    _fill(log, clock, 10, per_batch=4)
    one = log.read(5, max_bytes=1)
    assert len(one) == 1 and one[0].base_offset == 4 and one[0].last_offset == 7
    sizes = [b.size_bytes for b in log.read(4, max_bytes=10**6)[:3]]
    three = log.read(5, max_bytes=sum(sizes))
    assert [b.base_offset for b in three] == [4, 8, 12]
    assert [b.base_offset for b in log.read(5, max_bytes=sum(sizes) - 1)] == [4, 8]
    assert log.read(log.log_end_offset) == []
    assert values(log.read_records(6, max_offset=12)) == [(o, b"k%d" % o, VALUE + b"%d" % o) for o in range(6, 12)]
    assert [r.offset for r in log.read_records(6, max_offset=9)] == [6, 7]  # batch 8-11 ends past 9


def test_read_outside_the_log_raises_offset_out_of_range(open_log, clock):
    """Ensure reads below the log start or past the log end raise OFFSET_OUT_OF_RANGE."""
    log = open_log()
    _fill(log, clock, 3)
    with pytest.raises(OffsetOutOfRangeError) as info:
        log.read(10)
    assert info.value.kafka_name == "OFFSET_OUT_OF_RANGE"
    log.delete_records_before(4)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(3)
    assert log.read_records(4)[0].offset == 4


def test_max_offset_caps_visible_batches(open_log, clock):
    """Ensure only batches ending below max_offset (e.g. the high watermark) are returned."""
    log = open_log()
    _fill(log, clock, 4, per_batch=2)
    assert [b.base_offset for b in log.read(0, max_offset=4)] == [0, 2]
    assert log.read(4, max_offset=4) == []


def test_follower_append_keeps_offsets_and_refuses_to_go_back(open_log):
    """Ensure a follower's append keeps the leader's offsets and rejects overlaps."""
    log = open_log()
    leader_batch = encode_batch(make_records([(b"a", b"1"), (b"b", b"2")], timestamp_ms=START_MS, first_offset=0))
    log.append(leader_batch, assign_offsets=False)
    later = encode_batch(make_records([(b"c", b"3")], timestamp_ms=START_MS, first_offset=2))
    log.append(later, assign_offsets=False)
    assert log.log_end_offset == 3
    with pytest.raises(InvalidRecordError):
        log.append(leader_batch, assign_offsets=False)
    assert log.log_end_offset == 3


def test_bad_appends_write_nothing(open_log):
    """Ensure a corrupt, oversized or key-less (compacted) append is refused whole."""
    log = open_log(max_batch_bytes=500)
    good = batch((b"a", b"1"))
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        log.append(bytes(good) + bytes(corrupt))
    with pytest.raises(RecordBatchTooLargeError):
        log.append(batch((b"a", b"x" * 600)))
    with pytest.raises(CorruptRecordError):
        log.append(b"")
    assert log.log_end_offset == 0 and log.size_bytes == 0
    log.close()
    compacted = open_log(cleanup_policy="compact")
    with pytest.raises(InvalidRecordError):
        compacted.append(batch((None, b"no key")))
    assert compacted.log_end_offset == 0


def test_append_several_batches_at_once(open_log):
    """Ensure a produce request holding several batches appends them all, in order."""
    log = open_log()
    info = log.append(batch((b"a", b"1"), (b"b", b"2")) + batch((b"c", b"3")))
    assert (info.first_offset, info.last_offset, info.batch_count) == (0, 2, 2)
    assert [b.base_offset for b in log.read(0)] == [0, 2]


# ── segments and indexes ─────────────────────────────────────────────────────


def test_roll_by_segment_bytes_names_files_by_base_offset(open_log, clock):
    """Ensure segments roll before exceeding segment_bytes and are named {base:020d}.log."""
    log = open_log(segment_bytes=1000)
    _fill(log, clock, 12)
    assert len(log.segments) > 1
    assert all(s.size_bytes <= 1000 for s in log.segments)
    names = _log_files(log, ".log")
    assert names == [segment_file_name(s.base_offset, ".log") for s in log.segments]
    assert names[0] == "00000000000000000000.log"
    assert _log_files(log, ".index") and _log_files(log, ".timeindex")
    assert [r.offset for r in log.all_records()] == list(range(36))


def test_roll_by_segment_ms_uses_record_timestamps(open_log, clock):
    """Ensure a segment rolls when its records span more than segment_ms."""
    log = open_log(segment_ms=5000)
    _fill(log, clock, 5, step_ms=1000)
    assert len(log.segments) == 1
    clock.advance(10_000)
    info = log.append(batch((b"k", b"late"), ts=clock.now_ms()))
    assert info.rolled and len(log.segments) == 2 and log.active_segment.base_offset == 15


def test_sparse_index_every_interval_and_lookups_land_right(open_log, clock):
    """Ensure index entries come every index_interval_bytes and every offset is found through them."""
    log = open_log(index_interval_bytes=500)
    _fill(log, clock, 40)
    seg = log.active_segment
    batch_size = log.read(0)[0].size_bytes
    entries = seg.index_entries()
    expected = 40 // (500 // batch_size + 1)
    assert abs(entries - expected) <= 1 and entries > 5
    for offset in range(log.log_end_offset):
        first = log.read(offset, max_bytes=1)[0]
        assert first.base_offset <= offset <= first.last_offset


def test_offset_for_timestamp_finds_first_record_at_or_after(open_log, clock):
    """Ensure ListOffsets-by-timestamp semantics across segments."""
    log = open_log(segment_bytes=800, index_interval_bytes=200)
    _fill(log, clock, 20, per_batch=2, step_ms=1000)
    assert len(log.segments) > 2
    assert log.offset_for_timestamp(START_MS) == (0, START_MS)
    assert log.offset_for_timestamp(START_MS + 1) == (2, START_MS + 1000)
    assert log.offset_for_timestamp(START_MS + 7000) == (14, START_MS + 7000)
    assert log.offset_for_timestamp(START_MS + 19_500) is None
    log.delete_records_before(9)
    assert log.offset_for_timestamp(START_MS) == (9, START_MS + 4000)


# ── truncation and deletion ──────────────────────────────────────────────────


def test_truncate_to_removes_the_tail_by_whole_batches(open_log, clock):
    """Ensure truncate_to drops offsets ≥ target, whole batches, across segments."""
    log = open_log(segment_bytes=800)
    _fill(log, clock, 12, per_batch=3)
    segments_before = len(log.segments)
    log.truncate_to(10)  # inside the batch [9, 11]
    assert log.log_end_offset == 9
    assert [r.offset for r in log.all_records()] == list(range(9))
    assert len(log.segments) < segments_before
    log.truncate_to(100)  # past the end: nothing to do
    assert log.log_end_offset == 9
    info = log.append(batch((b"n", b"new")))
    assert info.first_offset == 9


def test_truncate_below_log_start_restarts_the_log(open_log, clock):
    """Ensure truncating below the log start empties the log and restarts it there."""
    log = open_log()
    _fill(log, clock, 4)
    log.delete_records_before(6)
    log.truncate_to(3)
    assert (log.log_start_offset, log.log_end_offset) == (3, 3)
    assert log.append(batch((b"a", b"1"))).first_offset == 3


def test_delete_records_before_moves_log_start_and_drops_whole_segments(open_log, clock):
    """Ensure DeleteRecords hides records at once and deletes segments wholly below."""
    log = open_log(segment_bytes=800)
    _fill(log, clock, 12, per_batch=3)
    second_base = log.segments[1].base_offset
    deleted = log.delete_records_before(second_base + 1)
    assert [d.base_offset for d in deleted] == [0]
    assert log.log_start_offset == second_base + 1
    assert log.all_records()[0].offset == second_base + 1
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(log.log_end_offset + 1)
    assert log.delete_records_before(2) == []  # already below: nothing changes
    log.close()
    assert open_log(segment_bytes=800).log_start_offset == second_base + 1


# ── retention ────────────────────────────────────────────────────────────────


def test_time_retention_deletes_segments_by_their_newest_record(open_log, clock):
    """Ensure retention.ms deletes whole old segments by their largest timestamp, never the active one."""
    log = open_log(segment_bytes=800, retention_ms=20_000)
    _fill(log, clock, 12, per_batch=3, step_ms=1000)
    seg0 = log.segments[0]
    newest_in_seg0 = seg0.max_timestamp_ms
    assert newest_in_seg0 == max(r.timestamp_ms for r in log.all_records() if r.offset < log.segments[1].base_offset)
    assert log.apply_retention() == []
    clock.advance_to(newest_in_seg0 + 20_000)  # exactly at the limit: kept
    assert log.apply_retention() == []
    clock.advance(1)
    deleted = log.apply_retention()
    assert [d.base_offset for d in deleted] == [0] and deleted[0].reason == "retention.ms"
    assert log.log_start_offset == log.segments[0].base_offset
    clock.advance(10**9)
    log.apply_retention()
    assert len(log.segments) == 1 and log.log_start_offset == log.active_segment.base_offset
    assert log.log_end_offset == 36


def test_size_retention_keeps_the_log_under_retention_bytes(open_log, clock):
    """Ensure retention.bytes deletes oldest segments only while the rest still exceeds the limit."""
    log = open_log(segment_bytes=800, retention_bytes=1500, retention_ms=-1)
    _fill(log, clock, 20, per_batch=3)
    total_before = log.size_bytes
    deleted = log.apply_retention()
    assert deleted and all(d.reason == "retention.bytes" for d in deleted)
    assert log.size_bytes <= total_before - sum(d.size_bytes for d in deleted)
    # deleting one more segment would have been too many:
    assert log.size_bytes - log.segments[0].size_bytes < 1500 or len(log.segments) == 1
    assert log.size_bytes > 1500 - 800


def test_retention_respects_max_offset_and_policy(open_log, clock):
    """Ensure retention never deletes at/above the high watermark, and not at all when compacting."""
    log = open_log(segment_bytes=800, retention_ms=0)
    _fill(log, clock, 12)
    clock.advance(10**6)
    assert log.apply_retention(max_offset=0) == []
    log.close()
    compacted = open_log(segment_bytes=800, retention_ms=0, cleanup_policy="compact")
    assert compacted.apply_retention() == []


# ── compaction ───────────────────────────────────────────────────────────────


def test_compaction_keeps_last_value_per_key_with_offsets_unchanged(open_log, clock):
    """Ensure compaction keeps each key's latest record, at its original offset, and leaves the active segment."""
    log = open_log(segment_bytes=700, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
    _fill(log, clock, 15, per_batch=3, key_mod=4)
    before = log.all_records()
    active_before = [r for r in before if r.offset >= log.active_segment.base_offset]
    result = log.compact()
    assert result.ran and result.records_removed > 0
    after = log.all_records()
    active_base = log.active_segment.base_offset
    assert [r for r in after if r.offset >= active_base] == active_before
    last_by_key = {}
    for r in before:
        if r.offset < active_base:
            last_by_key[r.key] = r
    survivors = [r for r in after if r.offset < active_base]
    # nothing invented, nothing moved: every survivor is an original record
    assert set(survivors) <= set(before)
    latest_overall = {}
    for r in before:
        latest_overall[r.key] = r.offset
    for r in survivors:
        assert latest_overall[r.key] == r.offset or r.key not in {x.key for x in before if x.offset >= r.offset + 1 and x.offset < active_base}
    # the final value of every key is unchanged
    assert {r.key: r.value for r in before} == {r.key: r.value for r in after}
    # reading a removed offset starts at the next surviving one
    removed = result.removed_offsets[0]
    assert log.read_records(removed)[0].offset > removed


def test_compaction_waits_for_the_dirty_ratio(open_log, clock):
    """Ensure nothing is cleaned until dirty bytes reach min_cleanable_dirty_ratio."""
    log = open_log(segment_bytes=700, cleanup_policy="compact", min_cleanable_dirty_ratio=0.5)
    _fill(log, clock, 15, per_batch=3)  # unique keys: cleaning keeps every byte clean-but-present
    first = log.compact()
    assert first.ran and first.dirty_ratio == 1.0 and first.records_removed == 0
    _fill(log, clock, 1, per_batch=3)
    log.roll()
    second = log.compact()
    assert not second.ran and second.dirty_ratio < 0.5
    assert "below min_cleanable_dirty_ratio" in second.reason


def test_tombstones_survive_delete_retention_then_go(open_log, clock):
    """Ensure a tombstone deletes older values, stays delete_retention_ms, then is removed."""
    log = open_log(segment_bytes=400, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0,
                   delete_retention_ms=60_000)
    log.append(batch((b"user-1", b"alice"), (b"user-2", b"bob")))
    log.append(batch((b"user-1", None)))  # tombstone
    for i in range(6):
        log.append(batch((b"other", b"x" * 50 + b"%d" % i)))
    log.roll()
    log.compact()
    keys = [(r.key, r.value) for r in log.all_records()]
    assert (b"user-1", b"alice") not in keys and (b"user-1", None) in keys and (b"user-2", b"bob") in keys
    tomb_batch = next(b for b in log.all_batches() if any(r.value is None for r in b.records()))
    assert tomb_batch.delete_horizon_ms == clock.now_ms() + 60_000
    clock.advance(59_999)
    log.compact()
    assert (b"user-1", None) in [(r.key, r.value) for r in log.all_records()]
    clock.advance(1)
    result = log.compact()
    assert result.ran and result.tombstones_removed == 1
    assert b"user-1" not in [r.key for r in log.all_records()]


def test_compaction_survives_reopen_and_power_loss(open_log, clock, sim_storage):
    """Ensure a compacted log reopens intact after a clean close and after a power loss."""
    log = open_log(storage=sim_storage, segment_bytes=700, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
    _fill(log, clock, 15, per_batch=3, key_mod=4)
    log.compact()
    log.flush()
    expected = log.all_records()
    sim_storage.crash("drop")
    reopened = open_log(storage=sim_storage, segment_bytes=700, cleanup_policy="compact")
    assert reopened.all_records() == expected
    assert not [n for n in sim_storage.listdir(reopened.directory) if n.endswith(".cleaned")]


# ── flush policy ─────────────────────────────────────────────────────────────


def test_flush_messages_syncs_every_n_records_and_power_loss_keeps_them(open_log, clock, sim_storage):
    """Ensure flush.messages=N syncs after every N records, and a power loss keeps exactly the flushed ones."""
    log = open_log(storage=sim_storage, flush_messages=6)
    _fill(log, clock, 5, per_batch=3)  # 15 records: flushed at 6 and 12
    assert log.recovery_point == 12
    sim_storage.crash("drop")
    reopened = open_log(storage=sim_storage, flush_messages=6)
    assert reopened.log_end_offset == 12
    assert [r.offset for r in reopened.all_records()] == list(range(12))


def test_flush_ms_syncs_once_the_oldest_unflushed_append_is_old_enough(open_log, clock, sim_storage):
    """Ensure flush.ms flushes on the first append or maybe_flush after the age is reached."""
    log = open_log(storage=sim_storage, flush_ms=5000)
    log.append(batch((b"a", b"1")))
    clock.advance(4999)
    assert not log.maybe_flush() and log.recovery_point == 0
    clock.advance(1)
    assert log.maybe_flush() and log.recovery_point == 1


def test_default_flush_policy_never_syncs_so_power_loss_loses_everything(open_log, clock, sim_storage):
    """Ensure with Kafka's defaults (rely on replication) a power loss loses unflushed data."""
    log = open_log(storage=sim_storage)
    _fill(log, clock, 3)
    sim_storage.crash("drop")
    assert open_log(storage=sim_storage).log_end_offset == 0


# ── recovery ─────────────────────────────────────────────────────────────────


def _segment_path(log: Log, i: int) -> str:
    return log.segments[i].log_path


def test_torn_tail_is_truncated_and_reported(open_log, clock):
    """Ensure a half-written last batch is cut off on open, with the reason reported."""
    log = open_log()
    _fill(log, clock, 5)
    path = _segment_path(log, -1)
    log.abandon()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 30)
    reopened = open_log()
    report = reopened.recovery
    assert not report.clean_shutdown and report.bytes_truncated > 0
    assert "runs past the end" in report.reason
    assert reopened.log_end_offset == 12
    assert "cut" in report.explain()
    assert reopened.append(batch((b"a", b"1"))).first_offset == 12


def test_garbage_after_the_last_batch_is_truncated(open_log, clock):
    """Ensure junk bytes appended by a torn write are cut and every sound batch is kept."""
    log = open_log()
    _fill(log, clock, 4)
    path = _segment_path(log, -1)
    log.abandon()
    with open(path, "ab") as f:
        f.write(b"\x00" * 10 + b"\xff" * 90)
    reopened = open_log()
    assert reopened.log_end_offset == 12 and reopened.recovery.bytes_truncated == 100


def test_corrupt_batch_mid_log_cuts_it_and_every_later_segment(open_log, clock):
    """Ensure a CRC failure truncates at that batch and deletes all later segments."""
    log = open_log(segment_bytes=800)
    _fill(log, clock, 12)
    assert len(log.segments) >= 3
    victim = log.segments[1]
    victim_path, victim_base = victim.log_path, victim.base_offset
    log.abandon()
    with open(victim_path, "r+b") as f:
        f.seek(80)
        byte = f.read(1)
        f.seek(80)
        f.write(bytes([byte[0] ^ 0x01]))
    reopened = open_log(segment_bytes=800)
    assert "CRC" in reopened.recovery.reason
    assert reopened.recovery.segments_deleted >= 1
    assert reopened.log_end_offset == victim_base
    assert [r.offset for r in reopened.all_records()] == list(range(victim_base))


def test_missing_and_damaged_indexes_are_rebuilt(open_log, clock):
    """Ensure a deleted or garbled index is rebuilt from the log, even after a clean shutdown."""
    log = open_log(segment_bytes=1500, index_interval_bytes=200)
    _fill(log, clock, 20)
    expected_entries = [s.index_entries() for s in log.segments]
    first_index = log.segments[0].offset_index.path
    second_time = log.segments[1].time_index.path
    log.close()
    os.remove(first_index)
    with open(second_time, "ab") as f:
        f.write(b"\x01\x02\x03")  # not a whole entry
    reopened = open_log(segment_bytes=1500, index_interval_bytes=200)
    assert reopened.recovery.clean_shutdown
    assert [s.index_entries() for s in reopened.segments] == expected_entries
    for offset in range(reopened.log_end_offset):
        b = reopened.read(offset, max_bytes=1)[0]
        assert b.base_offset <= offset <= b.last_offset
    assert reopened.offset_for_timestamp(START_MS + 5000) == (15, START_MS + 5000)


def test_index_pointing_past_the_log_is_rebuilt(open_log, clock):
    """Ensure an index that outlived its log data (synced index, lost log) is not trusted."""
    log = open_log(index_interval_bytes=100)
    _fill(log, clock, 10)
    path = _segment_path(log, 0)
    log.close()
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)  # cut on a batch boundary? not necessarily
    reopened = open_log(index_interval_bytes=100)
    for offset in range(reopened.log_end_offset):
        b = reopened.read(offset, max_bytes=1)[0]
        assert b.base_offset <= offset <= b.last_offset


def test_clean_shutdown_marker_skips_the_scan(open_log, clock):
    """Ensure a clean shutdown opens without validating batches, and an unclean one validates them."""
    log = open_log()
    _fill(log, clock, 10)
    path = _segment_path(log, 0)
    log.close()
    assert os.path.exists(os.path.join(log.directory, CLEAN_SHUTDOWN_FILE))
    with open(path, "r+b") as f:  # damage a record's bytes inside the first batch
        f.seek(100)
        f.write(b"\xee")
    clean = open_log()
    assert clean.recovery.clean_shutdown and clean.recovery.segments_recovered == 0
    assert clean.log_end_offset == 30  # the damage went unseen: no scan happened
    assert not os.path.exists(os.path.join(log.directory, CLEAN_SHUTDOWN_FILE))
    clean.abandon()
    unclean = open_log()
    assert not unclean.recovery.clean_shutdown and unclean.recovery.segments_recovered == 1
    assert unclean.log_end_offset == 0 and "CRC" in unclean.recovery.reason


def test_recovery_starts_at_the_recovery_point(open_log, clock, sim_storage):
    """Ensure segments wholly below the recovery point are not rescanned after a crash."""
    log = open_log(storage=sim_storage, segment_bytes=800)
    _fill(log, clock, 12)
    log.flush()
    _fill(log, clock, 1)
    sim_storage.crash("keep")
    reopened = open_log(storage=sim_storage, segment_bytes=800)
    assert reopened.recovery.segments_recovered == 1
    assert reopened.log_end_offset == 39


def test_checkpoint_file_survives_garbage(open_log, clock):
    """Ensure an unreadable checkpoint falls back to a full recovery instead of failing."""
    log = open_log()
    _fill(log, clock, 3)
    log.abandon()
    with open(os.path.join(log.directory, CHECKPOINT_FILE), "wb") as f:
        f.write(b"\xff garbage")
    reopened = open_log()
    assert reopened.log_end_offset == 9 and reopened.recovery.segments_recovered == 1


# ── configuration ────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "name, value",
    [
        ("segment_bytes", 0),
        ("segment_bytes", 1 << 31),
        ("retention_ms", -2),
        ("flush_messages", 0),
        ("cleanup_policy", "shred"),
        ("min_cleanable_dirty_ratio", 1.5),
        ("index_interval_bytes", "4096"),
        ("segment_ms", True),
    ],
)
def test_config_rejects_values_outside_named_limits(name, value):
    """Ensure every bad config value raises ConfigError naming the setting."""
    with pytest.raises(ConfigError, match=name):
        LogConfig(**{name: value})


def test_describe_reports_offsets_and_segments(open_log, clock):
    """Ensure describe() summarises the log for tools and the UI."""
    log = open_log(segment_bytes=800)
    _fill(log, clock, 6)
    info = log.describe()
    assert info["log_end_offset"] == 18 and len(info["segments"]) == len(log.segments)


def test_segment_bytes_on_disk_are_kafka_batches(open_log, clock):
    """Ensure a segment file is nothing but record batches, decodable on their own."""
    log = open_log()
    _fill(log, clock, 4)
    log.close()
    with open(os.path.join(log.directory, segment_file_name(0, ".log")), "rb") as f:
        data = f.read()
    batches = decode_batches(data)
    assert [b.base_offset for b in batches] == [0, 3, 6, 9]
    assert read_batch_header(data, 0).record_count == 3


# ── pinned regressions (found by the Log-vs-model state machine) ─────────────


def test_regression_read_records_moves_past_a_batch_compacted_down_to_earlier_offsets(open_log, clock):
    """Ensure read_records(o) keeps reading when the batch holding o kept only records before o.

    postmortem: batch [4..7] kept only offset 6 after compaction; read_records(7) returned []
    though offset 8 existed, because one read returned that batch and nothing at/after 7.
    """
    log = open_log(segment_bytes=250, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
    log.append(batch((b"k0", b"a"), (b"k0", b"b"), (b"k0", b"c"), (b"k0", b"d")))
    log.append(batch((b"k0", b"e"), (b"k0", b"f"), (b"k1", b"g"), (b"k0", b"h")))
    log.append(batch((b"k0", b"i")))
    log.roll()
    log.compact()
    assert [r.offset for r in log.all_records()] == [6, 8]
    assert [r.offset for r in log.read_records(7)] == [8]


def test_regression_truncating_a_batch_that_straddles_the_log_start_keeps_log_end_at_log_start(open_log):
    """Ensure cutting a batch that holds the log start never leaves the log end below the log start.

    postmortem: batch [0..1], log start 1, truncate_to(1) removed the whole batch and set the
    log end to 0 < log start 1; a reopen then saw an impossible log.
    """
    log = open_log()
    log.append(batch((b"a", b"1"), (b"b", b"2")))
    log.delete_records_before(1)
    log.truncate_to(1)
    assert (log.log_start_offset, log.log_end_offset) == (1, 1)
    assert log.append(batch((b"c", b"3"))).first_offset == 1
    log.close()
    reopened = open_log()
    assert (reopened.log_start_offset, reopened.log_end_offset) == (1, 2)
