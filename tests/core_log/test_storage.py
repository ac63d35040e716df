"""FileStorage does real I/O; SimStorage loses exactly what a crash would lose."""

from __future__ import annotations

import os
import random

import pytest

from core_log.errors import LogClosedError, StorageError
from core_log.storage import FileStorage, SimStorage


def _disk_with_pending(seed: int = 1) -> tuple[SimStorage, str]:
    disk = SimStorage(random.Random(seed))
    disk.makedirs("/d")
    f = disk.open("/d/a.log")
    f.append(b"synced--")
    f.sync()
    f.append(b"one-")
    f.append(b"two-")
    f.append(b"three")
    return disk, "/d/a.log"


def test_sim_keep_crash_keeps_unsynced_writes():
    """Ensure a process kill ("keep") loses nothing that was written."""
    disk, path = _disk_with_pending()
    disk.crash("keep")
    assert disk.read_file(path) == b"synced--one-two-three"


def test_sim_drop_crash_loses_exactly_unsynced_writes():
    """Ensure a power loss ("drop") keeps the synced prefix and nothing after it."""
    disk, path = _disk_with_pending()
    assert disk.unsynced_bytes() == len(b"one-two-three")
    disk.crash("drop")
    assert disk.read_file(path) == b"synced--"
    assert disk.unsynced_bytes() == 0


@pytest.mark.parametrize("seed", range(40))
def test_sim_tear_crash_keeps_synced_prefix_and_a_torn_tail(seed):
    """Ensure a torn crash keeps all synced bytes, then at most the unsynced ones (maybe garbled)."""
    disk, path = _disk_with_pending(seed)
    disk.crash("tear")
    data = disk.read_file(path)
    assert data.startswith(b"synced--")
    assert len(data) <= len(b"synced--one-two-three")


def test_sim_tear_is_reproducible_from_the_seed():
    """Ensure the same seed tears the same way."""
    results = []
    for _ in range(2):
        disk, path = _disk_with_pending(seed=12)
        disk.crash("tear")
        results.append(disk.read_file(path))
    assert results[0] == results[1]


def test_sim_tear_produces_every_outcome_over_seeds():
    """Ensure tearing sometimes keeps all, sometimes none, sometimes garbage (the model is not vacuous)."""
    outcomes = set()
    for seed in range(200):
        disk, path = _disk_with_pending(seed)
        disk.crash("tear")
        data = disk.read_file(path)
        full = b"synced--one-two-three"
        if data == full:
            outcomes.add("all")
        elif data == b"synced--":
            outcomes.add("none")
        elif full.startswith(data):
            outcomes.add("prefix")
        else:
            outcomes.add("garbage")
    assert outcomes == {"all", "none", "prefix", "garbage"}


def test_sim_handles_open_before_crash_are_dead():
    """Ensure a file handle from before a crash refuses to be used."""
    disk, path = _disk_with_pending()
    handle = disk.open(path)
    disk.crash("keep")
    with pytest.raises(LogClosedError):
        handle.append(b"x")
    assert disk.open(path).size() == len(b"synced--one-two-three")


def test_sim_truncate_and_atomic_write_are_durable():
    """Ensure truncate and write_file_atomic survive a power loss."""
    disk, path = _disk_with_pending()
    disk.open(path).truncate(4)
    disk.write_file_atomic("/d/checkpoint", b"v1")
    disk.crash("drop")
    assert disk.read_file(path) == b"sync"
    assert disk.read_file("/d/checkpoint") == b"v1"


def test_sim_directory_operations():
    """Ensure listdir, rename, remove and missing paths behave like a file system."""
    disk = SimStorage()
    disk.makedirs("/a/b")
    disk.open("/a/b/x").append(b"1")
    disk.open("/a/y").append(b"2")
    assert disk.listdir("/a") == ["b", "y"]
    disk.rename("/a/y", "/a/b/z")
    assert disk.listdir("/a/b") == ["x", "z"]
    disk.remove("/a/b/x")
    assert not disk.exists("/a/b/x")
    with pytest.raises(StorageError):
        disk.open("/missing/dir/file")
    with pytest.raises(StorageError):
        disk.remove("/a/b/x")
    with pytest.raises(ValueError):
        disk.crash("melt")  # type: ignore[arg-type]


def test_file_storage_round_trip(tmp_path):
    """Ensure FileStorage appends, reads, truncates, syncs and replaces real files."""
    fs = FileStorage()
    path = str(tmp_path / "seg.log")
    f = fs.open(path)
    assert f.append(b"hello ") == 0
    assert f.append(b"world") == 6
    f.sync()
    assert f.read(0, 100) == b"hello world"
    f.truncate(5)
    assert f.size() == 5 and os.path.getsize(path) == 5
    f.close()
    with pytest.raises(LogClosedError):
        f.read(0, 1)
    fs.write_file_atomic(str(tmp_path / "cp"), b"data")
    assert fs.read_file(str(tmp_path / "cp")) == b"data"
    assert fs.listdir(str(tmp_path)) == ["cp", "seg.log"]
    with pytest.raises(StorageError):
        fs.read_file(str(tmp_path / "nope"))
