"""core_log.snapshot: restore(snapshot at T) + the same commands == the original run, event for event."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core_log.lab import LabWorld
from core_log.snapshot import (Checkpoint, CheckpointStore, Snapshot, SnapshotError, replay_commands, restore,
                               snapshot)


def events(world: LabWorld) -> list[dict]:
    return [e.to_json() for e in world.cluster.events]


def run(world: LabWorld, commands: list[tuple[int, dict]], until_ms: int) -> LabWorld:
    for at_ms, command in commands:
        world.advance(at_ms)
        world.apply(dict(command))
    world.advance(until_ms)
    return world


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


AFTER = [(7000, {"kind": "crash_broker", "broker": "2", "mode": "power_loss"}),
         (9000, {"kind": "add_consumer", "group": "dashboard"}),
         (11_000, {"kind": "restart_broker", "broker": "2"}),
         (12_000, {"kind": "burst", "producer": "telemetry", "records": "200"})]


@pytest.mark.parametrize("template", ["sandbox", "read-uncommitted-abort"])
@pytest.mark.parametrize("storage", ["sim", "file"])
def test_restore_then_the_same_commands_is_the_original_run(template, storage, tmp_path):
    """Ensure a world restored from a snapshot at T and given the same commands runs exactly as the original."""
    data = (lambda name: str(tmp_path / name)) if storage == "file" else (lambda name: None)
    original = LabWorld(template, seed=11, data_dir=data("orig"))
    original.advance(3000)
    original.apply({"kind": "crash_broker", "broker": "3", "mode": "kill"})
    original.advance(5000)
    original.apply({"kind": "restart_broker", "broker": "3"})
    original.advance(6000)
    snap = snapshot(original)
    assert snap.at_ms == 6000 and snap.size_bytes > 0
    assert (snap.root is not None) == (storage == "file")
    copy = restore(snap, data("copy"))
    run(original, AFTER, 16_000)
    run(copy, AFTER, 16_000)
    assert events(copy) == events(original)
    assert copy.view() == original.view()
    if storage == "file":
        for b in (1, 2, 3):  # the segment files themselves, byte for byte
            assert files_under(tmp_path / "copy" / f"broker-{b}") == files_under(tmp_path / "orig" / f"broker-{b}")


def test_a_snapshot_shares_nothing_with_its_world_and_restores_many_times(tmp_path):
    """Ensure running the original on does not change a snapshot, and two restores are independent equals."""
    w = LabWorld("sandbox", seed=3, data_dir=str(tmp_path / "a"))
    w.advance(4000)
    snap = snapshot(w)
    before = snap.graph
    w.advance(8000)
    w.apply({"kind": "crash_broker", "broker": "1"})
    assert snap.graph == before and snap.at_ms == 4000
    one, two = restore(snap, str(tmp_path / "one")), restore(snap, str(tmp_path / "two"))
    assert one.now_ms() == two.now_ms() == 4000 and w.now_ms() == 8000
    assert one.cluster is not w.cluster and one.cluster.brokers[1] is not w.cluster.brokers[1]
    one.apply({"kind": "crash_broker", "broker": "2"})
    one.advance(9000)
    two.advance(9000)
    assert any(e["kind"] == "BrokerCrashed" for e in events(one)) and \
        not any(e["kind"] == "BrokerCrashed" for e in events(two))
    assert w.now_ms() == 8000 and w.cluster.brokers[2].alive


def test_restored_closures_point_at_the_restored_objects():
    """Ensure the lambdas in the event queue are copies bound to the copy's objects, not the original's."""
    w = LabWorld("sandbox", seed=4)
    w.advance(2500)
    copy = restore(snapshot(w))
    originals = {id(o) for o in (w.cluster, *w.cluster.brokers.values(), *w.producers.values(),
                                 *(lc.consumer for lc in w.consumers.values()), w.cluster.network)}
    closures = 0
    for _, _, action in copy.cluster._queue:
        fn = getattr(action, "__func__", action)
        owner = getattr(action, "__self__", None)
        if owner is not None:
            assert id(owner) not in originals
        for cell in getattr(fn, "__closure__", None) or ():
            closures += 1
            try:
                contents = cell.cell_contents
            except ValueError:
                continue
            assert id(contents) not in originals, f"{fn.__qualname__} still points at the original world"
        assert fn not in [getattr(a, "__func__", a) for _, _, a in w.cluster._queue] or fn.__closure__ is None
    assert closures > 0  # the queue does hold closures (this test would prove nothing otherwise)


def test_restored_files_are_in_the_new_directory_and_the_old_one_is_untouched(tmp_path):
    """Ensure every path is rebased into the restore directory and running the copy leaves the source's files alone."""
    w = LabWorld("sandbox", seed=5, data_dir=str(tmp_path / "src"))
    w.advance(5000)
    snap = snapshot(w)
    w.cluster.brokers[1].shutdown()  # close the source's files; its directory must not change from here on
    before = files_under(tmp_path / "src")
    copy = restore(snap, str(tmp_path / "dst"))
    copy.apply({"kind": "crash_broker", "broker": "2", "mode": "power_loss_torn"})
    copy.advance(9000)
    copy.apply({"kind": "restart_broker", "broker": "2"})
    copy.advance(12_000)
    assert files_under(tmp_path / "src") == before
    for broker in copy.cluster.brokers.values():
        assert broker.data_dir.startswith(str(tmp_path / "dst"))
        for replica in broker.replicas.values():
            assert replica.log.directory.startswith(str(tmp_path / "dst"))
        for path in broker.storage._durable:
            assert path.startswith(str(tmp_path / "dst"))
    with pytest.raises(SnapshotError, match="empty directory"):
        restore(snap, str(tmp_path / "dst"))
    with pytest.raises(SnapshotError, match="data directory"):
        restore(snap)


def every_command_world(data_dir: str | None) -> tuple[LabWorld, list[tuple[int, dict]]]:
    """A world that has been given every kind of command (so every actor type is in its graph)."""
    w = LabWorld("sandbox", seed=8, data_dir=data_dir)
    steps = [
        {"kind": "add_txn_producer", "name": "orders", "rate_per_s": "10", "records_per_txn": "3", "abort_every": "2"},
        {"kind": "add_consumer", "group": "ledger", "isolation_level": "read_committed"},
        {"kind": "create_topic", "name": "audit", "partitions": "2", "replication_factor": "2"},
        {"kind": "add_partitions", "topic": "audit", "partitions": "3"},
        {"kind": "alter_topic", "topic": "machine.telemetry", "min_insync_replicas": "1"},
        {"kind": "set_latency", "broker": "3", "latency_ms": "40"},
        {"kind": "isolate_broker", "broker": "3"},
        {"kind": "heal"},
        {"kind": "configure_producer", "producer": "telemetry", "serializer": "avro"},
        {"kind": "crash_producer", "producer": "telemetry"},
        {"kind": "restart_producer", "producer": "telemetry"},
        {"kind": "add_rest_pipeline"},
        {"kind": "rest_burst", "records": "300"},
        {"kind": "crash_downstream", "mode": "hang"},
        {"kind": "crash_consumer", "consumer": "dashboard-1"},
        {"kind": "reset_offsets", "group": "ledger", "to": "earliest"},
        {"kind": "stop_group", "group": "ledger"},
    ]
    log = []
    at = 1000
    for command in steps:
        at += 400
        w.advance(at)
        try:
            w.apply(dict(command))
        except Exception as exc:  # a refusal is fine: the command's code path still ran
            assert type(exc).__name__ == "LabCommandError", exc
        log.append((at, command))
    return w, log


@pytest.mark.parametrize("storage", ["sim", "file"])
def test_a_world_that_has_seen_every_command_kind_snapshots_and_replays(storage, tmp_path):
    """Ensure nothing any command puts into the world graph defeats the snapshot (the guard for future changes)."""
    from core_log.lab import COMMAND_KINDS

    data = (lambda name: str(tmp_path / name)) if storage == "file" else (lambda name: None)
    w, log = every_command_world(data("orig"))
    seen = {c["kind"] for _, c in log}
    assert len(seen) >= len(COMMAND_KINDS) - 10  # most kinds (the rest are covered by the other tests)
    copy = restore(snapshot(w), data("copy"))
    after = [(w.now_ms() + 500, {"kind": "restart_downstream"}), (w.now_ms() + 900, {"kind": "restart_consumer",
                                                                                     "consumer": "dashboard-1"}),
             (w.now_ms() + 1500, {"kind": "stop_producer", "producer": "orders"})]
    run(w, after, w.now_ms() + 6000)
    run(copy, after, copy.now_ms() + 6000)
    assert events(copy) == events(w) and copy.view() == w.view()


def test_something_that_cannot_be_copied_makes_the_snapshot_fail_loudly():
    """Ensure a generator (or another uncopiable thing) put into the world graph is refused with its type named."""
    w = LabWorld("sandbox", seed=1)
    w.advance(1000)
    w.cluster.schedule(10, (lambda g: lambda: next(g))(i for i in range(3)))
    with pytest.raises(SnapshotError, match="generator"):
        snapshot(w)


def test_checkpoint_store_keeps_the_newest_inside_its_limits():
    """Ensure the store drops oldest first past its byte or count limit, refuses an oversized one, finds the nearest."""
    def cp(at_ms: int, size: int, applied: int = 0) -> Checkpoint:
        return Checkpoint(Snapshot(at_ms=at_ms, graph=b"x" * size), applied)

    store = CheckpointStore(max_bytes=1000, max_count=3)
    for i in range(4):
        assert store.add(cp(i * 100, 300, i))
    assert [c.at_ms for c in store._items] == [100, 200, 300] and store.bytes == 900 and store.dropped == 1
    assert store.add(cp(400, 600, 4)) and [c.at_ms for c in store._items] == [300, 400]
    assert not store.add(cp(500, 1001)) and store.refused == 1
    assert store.nearest(399).at_ms == 300 and store.nearest(10_000).at_ms == 400 and store.nearest(299) is None
    assert store.nearest(10_000, max_commands=3).at_ms == 300
    store.discard_after(3)
    assert [c.at_ms for c in store._items] == [300]
    assert store.describe()["count"] == 1


def test_replay_commands_is_labworld_replay_and_its_checkpoints_restore_to_the_same_moment():
    """Ensure the checkpointing replay gives LabWorld.replay's world, and each checkpoint + the rest == the whole."""
    log = [(2000, {"kind": "crash_broker", "broker": "1"}), (2000, {"kind": "pause"}),
           (4500, {"kind": "restart_broker", "broker": "1"}), (6000, {"kind": "add_consumer", "group": "dashboard"})]
    expected = LabWorld.replay("sandbox", 6, log, 9000)
    store = CheckpointStore()
    world = replay_commands(LabWorld("sandbox", 6), [(i, at, c) for i, (at, c) in enumerate(log, 1)], 9000,
                            skip_kinds=("pause",), checkpoint_every_ms=3000,
                            on_checkpoint=lambda w, applied: store.add(Checkpoint(snapshot(w), applied)))
    assert world.view() == expected.view()
    assert [(c.at_ms, c.commands_applied) for c in store._items] == [(3000, 2), (6000, 3), (9000, 4)]
    for c in store._items:
        rest = [(i, at, cmd) for i, (at, cmd) in enumerate(log, 1) if i > c.commands_applied]
        rebuilt = replay_commands(restore(c.snapshot), rest, 9000, skip_kinds=("pause",))
        assert rebuilt.view() == expected.view()
        assert events(rebuilt) == events(expected)


def test_snapshot_module_is_in_the_purity_check():
    """Ensure the purity test reads core_log/snapshot.py (it scans every engine file)."""
    from tests.core_log.test_engine_purity import engine_files

    assert any(p.name == "snapshot.py" for p in engine_files())
    assert os.path.basename(__file__) == "test_snapshot.py"


def test_checkpoints_share_unchanged_file_chunks_and_the_store_counts_them_once(tmp_path, monkeypatch):
    """Ensure a snapshot taken like= the previous one reuses its unchanged chunks, restores the same files and
    world, and the store's bytes count a shared chunk once (dropping a checkpoint frees only what it alone held)."""
    import core_log.snapshot as snap_module

    monkeypatch.setattr(snap_module, "CHUNK_BYTES", 4096)  # small chunks: a short run spans many
    w = LabWorld("sandbox", seed=3, data_dir=str(tmp_path / "orig"))
    w.advance(20_000)
    first = snapshot(w)
    w.advance(22_000)
    second = snapshot(w, like=first)
    alone = snapshot(w)
    shared = set(first.chunks()) & set(second.chunks())
    assert shared and len(shared) > len(set(second.chunks())) // 2  # most of the log did not change in 2 s
    same_objects = {d for rel, chunks in second.files.items() for d, data in chunks
                    if any(data is other for _, other in first.files.get(rel, ()))}
    assert same_objects  # the bytes objects themselves are shared, not copies
    assert {rel: second.file_bytes(rel) for rel in second.files} == {rel: alone.file_bytes(rel) for rel in alone.files}
    assert files_under(tmp_path / "orig") == {rel: second.file_bytes(rel) for rel in second.files
                                               if not rel.endswith(os.sep)}
    from_like, from_alone = restore(second, str(tmp_path / "a")), restore(alone, str(tmp_path / "b"))
    assert files_under(tmp_path / "a") == files_under(tmp_path / "b") == files_under(tmp_path / "orig")
    assert from_like.view() == from_alone.view() == w.view()

    store = CheckpointStore()
    store.add(Checkpoint(first, 0))
    one = store.bytes
    store.add(Checkpoint(second, 0))
    new_in_second = sum(size for d, size in second.chunks().items() if d not in first.chunks())
    assert store.bytes == one + len(second.graph) + new_in_second < one + second.size_bytes
    store.discard_after(-1)
    assert store.bytes == 0 and not store._chunk_refs


def test_sealed_history_blocks_go_out_of_band_and_are_shared_between_snapshots(tmp_path, monkeypatch):
    """Ensure a history's sealed op blocks travel as the snapshot's blobs (the same bytes in each snapshot), and a
    world restored from them has the same history and runs on exactly like the original."""
    import core_log.history as history_module

    monkeypatch.setattr(history_module, "OPS_PER_BLOCK", 64)
    w = LabWorld("sandbox", seed=5, data_dir=str(tmp_path / "orig"))
    w.advance(8000)
    first = snapshot(w)
    assert len(first.blobs) >= 3  # blocks sealed by the first snapshot
    w.advance(12_000)
    second = snapshot(w, like=first)
    assert len(second.blobs) > len(first.blobs)
    assert all(a[1] is b[1] and a[0] == b[0] for a, b in zip(first.blobs, second.blobs))  # shared, not re-packed
    copy = restore(second, str(tmp_path / "copy"))
    assert list(copy.cluster.history.ops) == list(w.cluster.history.ops)
    assert copy.cluster.history.pending() == w.cluster.history.pending()
    for world in (w, copy):
        world.apply({"kind": "crash_broker", "broker": "1", "mode": "kill"})
        world.advance(world.now_ms() + 6000)
    assert events(copy) == events(w) and copy.view() == w.view()
    assert list(copy.cluster.history.ops) == list(w.cluster.history.ops)


def test_checkpoint_store_thins_older_checkpoints_evenly_instead_of_forgetting_the_oldest():
    """Ensure past its count the store keeps the newest keep_recent and drops the older checkpoint leaving the
    smallest gap, so the kept ones still span the run (any moment stays one bounded replay from a checkpoint)."""
    store = CheckpointStore(max_count=6, keep_recent=2)
    for i in range(1, 31):
        store.add(Checkpoint(Snapshot(at_ms=i * 10_000, graph=b"g"), i))
    times = [c.at_ms for c in store._items]
    assert len(times) == 6 and times[-2:] == [290_000, 300_000]
    gaps = [b - a for a, b in zip([0] + times, times)]
    assert max(gaps) <= 2 * min(gaps[:-2]) + 10_000  # spread out, not all at the end
    assert times[0] <= 80_000  # the first minutes are still covered
    assert store.dropped == 24
