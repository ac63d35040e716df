"""Checkpoints of a running lab: freeze a :class:`~core_log.lab.LabWorld` into bytes and thaw it again.

The engine is deterministic, so a lab at simulated time T can always be rebuilt
by replaying its seed and commands (:meth:`LabWorld.replay`) — but that costs
about a tenth of T. A :class:`Snapshot` taken at T lets the web runtime rebuild
any later moment from the nearest checkpoint instead:

    restore(snapshot(world at T)) + the same commands  ==  the original run, event for event.

**How.** The world graph is pickled with a pickler that also knows how to copy
what plain pickling (and ``copy.deepcopy``) cannot copy faithfully:

* **closures** — the event queue is full of lambdas and nested functions whose
  cells point at brokers, clients and futures. A function is rebuilt from its
  code, its module's globals, its defaults and *fresh cells* (created empty, then
  filled, so a cell may refer back to the function); a restored closure refers to
  the restored objects, never to the original ones. Module-level functions,
  classes and bound methods are pickled by reference as usual (a bound method as
  ``getattr(restored object, name)``);
* **real files** (:class:`~core_log.storage.FileStorage`) — each open file is
  frozen as its path relative to the lab's data directory, its size and whether
  it was open; every file under that directory is read into the snapshot's
  ``files`` (bytes), together with the storage's record of what was fsynced.
  :func:`restore` writes the files into a *new* directory, rebases every path
  that pointed into the old one (``Log.directory``, segment and index paths,
  the fsync map) and reopens the handles there;
* the simulated disk (:class:`~core_log.storage.SimStorage`) is plain data.

**Shared file chunks.** A lab's files are almost all append-only segments, so two
checkpoints ten seconds apart hold mostly the same bytes. Each file is kept as
compressed chunks of :data:`CHUNK_BYTES`, named by a digest of their raw bytes;
:func:`snapshot` given the previous snapshot (``like=``) reuses its compressed
chunk for every digest it already has, so the bytes are compressed once and held
once however many checkpoints contain them. :class:`CheckpointStore` counts each
distinct chunk once against its memory bound.

Everything else (random generators, deques, dataclasses, slots) pickles as data.
Anything that cannot be copied faithfully — a generator, an open Python file, a
lock, a module — makes :func:`snapshot` raise :class:`SnapshotError` naming the
type, so a future change that puts such a thing in the world graph fails the
snapshot tests instead of silently sharing state.

Known limits: a set is rebuilt by inserting its elements in their iteration
order, so its internal layout (and the order of a set of objects hashed by
identity) may differ from the original — the engine sorts wherever order
matters, and ``tests/core_log/test_snapshot.py`` compares whole runs to catch a
place that does not. Paths are rebased when an object of ``core_log`` holds
them directly as a ``str`` attribute (or in the storage's fsync map); a path
kept deeper (inside a list or a dict of another object) would not be, and a
class whose first instance held no path is not scanned again (it is the
snapshot's main cost otherwise) — the engine sets its path attributes in
``__init__``. ``test_snapshot.py`` checks that a restored world never touches
the old directory.

Pure: no wall clock, no threads, no environment; the only I/O is reading the
lab's files in :func:`snapshot` and writing them in :func:`restore`.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import io
import marshal
import os
import pickle
import sys
import zlib
from dataclasses import dataclass, field
from types import CellType, CodeType, FunctionType
from typing import Any

from core_log.history import OpBlock
from core_log.storage import FileStorage, _RealFile

SNAPSHOT_FORMAT = 1
#: zlib level of the graph and the files: 1 is fast and shrinks a lab's snapshot about four times.
COMPRESS_LEVEL = 1
#: Files larger than this under a lab's data directory make the snapshot refuse (a lab's disk budget is 512 MiB).
MAX_SNAPSHOT_FILE_BYTES = 1024 * 1024 * 1024
#: A file is kept as compressed chunks of this many raw bytes, shared between snapshots that have the same chunk.
CHUNK_BYTES = 128 * 1024


class SnapshotError(RuntimeError):
    """The world cannot be snapshotted or restored; the message says what was in the way."""


@dataclass(frozen=True)
class Snapshot:
    """A frozen world: the pickled graph, plus the bytes of its files when it ran on real files."""

    at_ms: int
    graph: bytes  # the pickled world, zlib-compressed
    root: str | None = None  # the data directory the world ran in (FileStorage), else None
    # path relative to root → its contents as (digest of the raw chunk, the chunk zlib-compressed) pairs, in order;
    # a path ending in the separator is an (empty) directory
    files: dict[str, tuple[tuple[bytes, bytes], ...]] = field(default_factory=dict)
    # the graph's out-of-band buffers, in pickle order, as (digest, bytes): the sealed blocks of the history
    # (core_log.history.OpBlock), the same bytes objects in every snapshot of the lab
    blobs: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def size_bytes(self) -> int:
        """What this snapshot holds in memory on its own (graph, every file chunk and blob), in bytes."""
        return len(self.graph) + sum(len(p) + sum(len(c) for _, c in chunks) for p, chunks in self.files.items()) \
            + sum(len(b) for _, b in self.blobs)

    def chunks(self) -> dict[bytes, int]:
        """Digest → size of every distinct file chunk and blob (what a store shares between snapshots)."""
        out = {digest: len(data) for chunks in self.files.values() for digest, data in chunks}
        out.update((digest, len(data)) for digest, data in self.blobs)
        return out

    def file_bytes(self, rel: str) -> bytes:
        """The raw contents of one file (``rel`` as in :attr:`files`)."""
        return b"".join(zlib.decompress(data) for _, data in self.files[rel])


# ── rebuilding (module level, so the pickle names them) ─────────────────────


def _make_code(data: bytes) -> CodeType:
    return marshal.loads(data)


def _make_function(code: CodeType, module: str, name: str, qualname: str, defaults: Any, kwdefaults: Any,
                   closure: Any, attrs: Any) -> FunctionType:
    mod = sys.modules.get(module)
    if mod is None:
        raise SnapshotError(f"restoring function {qualname}: module {module} is not loaded")
    fn = FunctionType(code, mod.__dict__, name, defaults, closure)
    fn.__qualname__ = qualname
    if kwdefaults:
        fn.__kwdefaults__ = kwdefaults
    if attrs:
        fn.__dict__.update(attrs)
    return fn


def _make_tuple(cls: type, items: tuple) -> tuple:
    return tuple.__new__(cls, items)


def _make_cell() -> CellType:
    return CellType()


def _set_cell(cell: CellType, contents: Any) -> None:
    cell.cell_contents = contents


def _new_object(cls: type) -> Any:
    return cls.__new__(cls)


def _set_rebased_state(root: str, obj: Any, state: tuple[dict[str, Any], tuple[str, ...]]) -> None:
    """state: (the object's __dict__ with some paths made relative, the names of those attributes)."""
    values, rebased = state
    for name in rebased:
        values[name] = _join(root, values[name])
    obj.__dict__.update(values)


def _make_durable(root: str, items: tuple[tuple[str, int], ...]) -> dict[str, int]:
    return {_join(root, path): size for path, size in items}


def _make_real_file(root: str, rel: str, size: int, is_open: bool, durable: dict[str, int] | None) -> _RealFile:
    f = _RealFile.__new__(_RealFile)
    f.path = _join(root, rel)
    f._size = size
    f._durable = durable
    f._fd = None
    if is_open:
        try:
            f._fd = os.open(f.path, os.O_RDWR)
        except OSError as exc:
            raise SnapshotError(f"restoring {f.path}: {exc.strerror}") from None
    return f


def _make_file_storage(root: str, rng: Any, durable: dict[str, int]) -> FileStorage:
    storage = FileStorage.__new__(FileStorage)
    storage.__dict__.update(_rng=rng, _durable=durable)
    return storage


_ROOTED = {"_set_rebased_state", "_make_durable", "_make_real_file", "_make_file_storage"}
_REL_MARK = "\x00lab-root\x00"  # a relative path that was under the root


def _join(root: str, rel: str) -> str:
    if rel == _REL_MARK:
        return root
    return os.path.join(root, rel[len(_REL_MARK):])


# ── freezing ─────────────────────────────────────────────────────────────────


#: Classes of core_log whose first instance seen under a data directory held no path (not scanned again),
#: and classes seen holding one (always scanned). Learned as snapshots are taken; pure bookkeeping.
_PATH_FREE: set[type] = set()
_PATH_HOLDERS: set[type] = set()


class _DurableRef:
    """Stands for FileStorage's fsync map (a dict shared by the storage and its open files) in the pickle."""

    def __init__(self, items: tuple[tuple[str, int], ...]) -> None:
        self.items = items


class _Pickler(pickle.Pickler):
    def __init__(self, buffer: io.BytesIO, root: str | None) -> None:
        self.blobs: list[bytes] = []  # out-of-band buffers (protocol 5), kept as the very bytes objects
        super().__init__(buffer, protocol=5, buffer_callback=lambda b: self.blobs.append(b.raw().obj))
        self.root = root
        self.prefix = None if root is None else root.rstrip(os.sep) + os.sep
        self._durable: dict[int, tuple[dict[str, int], _DurableRef]] = {}

    def _rel(self, path: str) -> str | None:
        if self.root is None:
            return None
        if path == self.root or path == self.root.rstrip(os.sep):
            return _REL_MARK
        if self.prefix is not None and path.startswith(self.prefix):
            return _REL_MARK + path[len(self.prefix):]
        return None

    def _durable_ref(self, durable: dict[str, int] | None) -> _DurableRef | None:
        if durable is None:
            return None
        known = self._durable.get(id(durable))
        if known is None:
            items = []
            for path, size in durable.items():
                rel = self._rel(path)
                if rel is None:
                    raise SnapshotError(f"FileStorage knows {path}, outside the lab's directory {self.root}")
                items.append((rel, size))
            known = (durable, _DurableRef(tuple(items)))  # keep the dict alive: its id stays unique
            self._durable[id(durable)] = known
        return known[1]

    def reducer_override(self, obj: Any) -> Any:  # noqa: C901 — one dispatch on type
        t = type(obj)
        if t is FunctionType:
            if "<locals>" not in obj.__qualname__ and "<lambda>" not in obj.__qualname__:
                return NotImplemented  # a module-level function: by reference
            return (_make_function, (obj.__code__, obj.__module__, obj.__name__, obj.__qualname__, obj.__defaults__,
                                     obj.__kwdefaults__, obj.__closure__, obj.__dict__ or None))
        if t is CellType:
            try:
                contents = obj.cell_contents
            except ValueError:  # an empty cell (a local not yet bound)
                return (_make_cell, ())
            return (_make_cell, (), contents, None, None, _set_cell)
        if t is CodeType:
            return (_make_code, (marshal.dumps(obj),))
        if issubclass(t, tuple) and not hasattr(t, "_fields") and t.__new__ is not tuple.__new__ \
                and not hasattr(obj, "__dict__"):
            return (_make_tuple, (t, tuple(obj)))  # a tuple subclass whose __new__ takes its fields (AbortedTxn)
        if t is OpBlock:  # its bytes go out of band: shared by every snapshot, not copied into each graph
            return (OpBlock, (obj.first_index, obj.count, pickle.PickleBuffer(obj.data)))
        if t is _DurableRef:
            return (_make_durable, (obj.items,))
        if t is _RealFile:
            rel = self._rel(obj.path)
            if rel is None:
                raise SnapshotError(f"an open file {obj.path} is outside the lab's directory {self.root}")
            return (_make_real_file, (rel, obj._size, obj._fd is not None, self._durable_ref(obj._durable)))
        if t is FileStorage:
            if self.root is None:
                raise SnapshotError("the world has real files but no data directory was found for them")
            state = obj.__dict__
            if set(state) != {"_rng", "_durable"}:
                raise SnapshotError(f"FileStorage has attributes the snapshot does not know: {sorted(state)}")
            return (_make_file_storage, (state["_rng"], self._durable_ref(state["_durable"])))
        if self.root is not None and t not in _PATH_FREE and t.__module__.startswith("core_log."):
            values = getattr(obj, "__dict__", None)
            if values:
                rebased = []
                prefix, bare = self.prefix, self.root.rstrip(os.sep)
                for name, value in values.items():
                    if type(value) is str and (value.startswith(prefix) or value == bare):
                        rebased.append((name, self._rel(value)))
                if not rebased and t not in _PATH_HOLDERS:
                    _PATH_FREE.add(t)  # its instances hold no paths: not scanned again (see the module docstring)
                if rebased:
                    _PATH_HOLDERS.add(t)
                    state = dict(values)
                    state.update(rebased)
                    return (_new_object, (t,), (state, tuple(n for n, _ in rebased)), None, None,
                            _set_rebased_state)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, buffer: io.BytesIO, root: str | None, blobs: tuple[bytes, ...] = ()) -> None:
        super().__init__(buffer, buffers=blobs)
        self.root = root

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name in _ROOTED:
            if self.root is None:
                raise SnapshotError("this snapshot has real files: restore it with a data directory")
            return functools.partial(globals()[name], self.root)
        return super().find_class(module, name)


def _file_root(world: Any) -> str | None:
    """The data directory of a world on real files (the parent of its brokers' directories), else None."""
    brokers = getattr(getattr(world, "cluster", None), "brokers", {})
    roots = {os.path.dirname(b.data_dir.rstrip(os.sep)) for b in brokers.values() if isinstance(b.storage, FileStorage)}
    if not roots:
        return None
    if len(roots) > 1:
        raise SnapshotError(f"the brokers' files are in several directories: {sorted(roots)}")
    return roots.pop()


def _read_files(root: str, known: dict[bytes, bytes]) -> dict[str, tuple[tuple[bytes, bytes], ...]]:
    """Every file under ``root`` as chunks; a chunk whose digest is in ``known`` reuses that compressed chunk."""
    files: dict[str, tuple[tuple[bytes, bytes], ...]] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            rel_dir = ""
        if not filenames and rel_dir:
            files[os.path.join(rel_dir, "")] = ()  # an empty directory: kept (a log may be empty)
        for name in sorted(filenames):
            with open(os.path.join(dirpath, name), "rb") as f:
                data = f.read()
            total += len(data)
            if total > MAX_SNAPSHOT_FILE_BYTES:
                raise SnapshotError(f"the lab's files are over {MAX_SNAPSHOT_FILE_BYTES} bytes; not snapshotted")
            chunks = []
            view = memoryview(data)
            for start in range(0, len(data), CHUNK_BYTES):
                raw = view[start:start + CHUNK_BYTES]
                digest = hashlib.blake2b(raw, digest_size=16).digest()
                packed = known.get(digest)
                if packed is None:
                    packed = known[digest] = zlib.compress(raw, COMPRESS_LEVEL)
                chunks.append((digest, packed))
            files[os.path.join(rel_dir, name)] = tuple(chunks)
    return files


def snapshot(world: Any, like: Snapshot | None = None) -> Snapshot:
    """Freeze ``world`` (a LabWorld, or any engine object graph with a ``cluster``) as it is now.

    The snapshot shares nothing with the world: running the world on does not change it. ``like``, an
    earlier snapshot of the same lab, lends its compressed file chunks where the bytes are unchanged
    (immutable ``bytes`` shared, never modified; the result is the same as without it).
    """
    root = _file_root(world)
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, root)
    paused = gc.isenabled()
    gc.disable()  # the reductions allocate many short-lived tuples; no need for full-heap passes meanwhile
    try:
        pickler.dump(world)
    except SnapshotError:
        raise
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"the world holds something a snapshot cannot copy: {exc}") from exc
    finally:
        if paused:
            gc.enable()
    known = {digest: data for chunks in like.files.values() for digest, data in chunks} if like is not None else {}
    files = _read_files(root, known) if root is not None else {}
    now = world.now_ms() if hasattr(world, "now_ms") else world.cluster.now_ms()
    digests = {id(b): d for d, b in like.blobs} if like is not None else {}
    blobs = tuple((digests.get(id(b)) or hashlib.blake2b(b, digest_size=16).digest(), b) for b in pickler.blobs)
    return Snapshot(at_ms=now, graph=zlib.compress(buffer.getbuffer(), COMPRESS_LEVEL), root=root, files=files,
                    blobs=blobs)


def restore(snap: Snapshot, data_dir: str | None = None) -> Any:
    """A new, independent world as it was at ``snap.at_ms``.

    A world on real files needs ``data_dir``: an empty or missing directory the
    files are written to (the new lab's own, e.g. ``LAB_DATA_DIR/<lab id>``);
    every path is rebased there and the open files are reopened. One snapshot can
    be restored any number of times.
    """
    root: str | None = None
    if snap.root is not None:
        if not data_dir:
            raise SnapshotError("this snapshot ran on real files: restore it into a data directory")
        root = str(data_dir).rstrip(os.sep) or os.sep
        if os.path.exists(root) and os.listdir(root):
            raise SnapshotError(f"restore into an empty directory; {root} has files")
        os.makedirs(root, exist_ok=True)
        for rel, chunks in snap.files.items():
            path = os.path.join(root, rel)
            if rel.endswith(os.sep):
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                for _, data in chunks:
                    f.write(zlib.decompress(data))
    # A restore allocates the whole graph (millions of objects for a long lab): with the cyclic garbage
    # collector running, its generation-2 passes over the growing heap cost more than the load itself
    # (seconds for a 10-minute lab). Nothing here is garbage yet, so it is paused while loading.
    # Loaded with the collector paused, the whole graph then sits in the youngest generation, and the
    # next few collections would each walk all of it (half a second for a 10-minute lab, inside the
    # replay that follows). freeze() + unfreeze() moves every tracked object to the oldest generation
    # in one step, where it waits for a full collection like any other long-lived data.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _Unpickler(io.BytesIO(zlib.decompress(snap.graph)), root, tuple(b for _, b in snap.blobs)).load()
    finally:
        if paused:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def copy_world(world: Any, data_dir: str | None = None) -> Any:
    """``restore(snapshot(world), data_dir)``: an independent copy of a world as it is now."""
    return restore(snapshot(world), data_dir)


# ── checkpoints: bounded, and rebuilding a moment from the nearest one ──────

#: What one lab's checkpoints may hold in memory in total (graphs, distinct file chunks and blobs); see CheckpointStore.
MAX_CHECKPOINT_BYTES = 128 * 1024 * 1024
#: How many checkpoints one lab keeps at most.
MAX_CHECKPOINTS = 240
#: The newest checkpoints a store never thins out (a simulated minute at one per 5 s): recent rewinds are the common ones.
RECENT_CHECKPOINTS = 12


@dataclass(frozen=True)
class Checkpoint:
    """A snapshot and how many of the lab's logged commands (by ``seq``) its world had applied."""

    snapshot: Snapshot
    commands_applied: int

    @property
    def at_ms(self) -> int:
        return self.snapshot.at_ms

    @property
    def size_bytes(self) -> int:
        return self.snapshot.size_bytes


class CheckpointStore:
    """One lab's checkpoints, oldest first, bounded by :data:`MAX_CHECKPOINT_BYTES` and :data:`MAX_CHECKPOINTS`.

    The byte bound counts each checkpoint's graph plus each *distinct* file chunk and blob once
    (checkpoints taken with ``snapshot(world, like=store.newest().snapshot)`` share what did not change).

    **Thinning, not forgetting.** Over a bound, the store keeps its newest :data:`RECENT_CHECKPOINTS`
    and removes, among the older ones, the checkpoint whose removal leaves the smallest gap between
    its neighbours (the seed, at 0 ms, counts as the first neighbour; on a tie the older goes). The
    kept ones stay spread over the whole run, so any moment is at most one (widening) gap of replay
    away from a checkpoint, instead of the oldest minutes needing a replay from the seed.

    Not thread-safe by itself: one thread adds; others may read :meth:`nearest`
    (it copies the list reference, and a Checkpoint is immutable).
    """

    def __init__(self, max_bytes: int = MAX_CHECKPOINT_BYTES, max_count: int = MAX_CHECKPOINTS,
                 keep_recent: int = RECENT_CHECKPOINTS) -> None:
        self.max_bytes = max_bytes
        self.max_count = max_count
        self.keep_recent = max(1, keep_recent)
        self._items: list[Checkpoint] = []
        self._chunk_refs: dict[bytes, list[int]] = {}  # digest → [size, checkpoints holding it]
        self.bytes = 0
        self.dropped = 0  # checkpoints dropped to stay inside the limits
        self.refused = 0  # snapshots larger than max_bytes on their own: not kept

    def _victim(self, items: list[Checkpoint]) -> int:
        """Which checkpoint to drop: the one leaving the smallest gap, among all but the newest keep_recent."""
        older = len(items) - self.keep_recent
        if older <= 0:
            return 0  # only recent ones: the oldest goes
        best, best_gap = 0, None
        for i in range(older):
            before = items[i - 1].at_ms if i > 0 else 0
            gap = items[i + 1].at_ms - before
            if best_gap is None or gap < best_gap:
                best, best_gap = i, gap
        return best

    def _hold(self, checkpoint: Checkpoint) -> None:
        self.bytes += len(checkpoint.snapshot.graph)
        for digest, size in checkpoint.snapshot.chunks().items():
            ref = self._chunk_refs.get(digest)
            if ref is None:
                self._chunk_refs[digest] = [size, 1]
                self.bytes += size
            else:
                ref[1] += 1

    def _release(self, checkpoint: Checkpoint) -> None:
        self.bytes -= len(checkpoint.snapshot.graph)
        for digest in checkpoint.snapshot.chunks():
            ref = self._chunk_refs[digest]
            ref[1] -= 1
            if ref[1] == 0:
                del self._chunk_refs[digest]
                self.bytes -= ref[0]

    def add(self, checkpoint: Checkpoint) -> bool:
        """Keep ``checkpoint`` (thinning older ones to make room); False if it alone is over the byte limit."""
        if checkpoint.size_bytes > self.max_bytes:
            self.refused += 1
            return False
        items = []
        for c in self._items:
            if c.at_ms < checkpoint.at_ms or (c.at_ms == checkpoint.at_ms and
                                              c.commands_applied < checkpoint.commands_applied):
                items.append(c)
            else:
                self._release(c)  # of another (later or replaced) history
        items.append(checkpoint)
        self._hold(checkpoint)
        while len(items) > self.max_count or self.bytes > self.max_bytes:
            self._release(items.pop(self._victim(items)))
            self.dropped += 1
        self._items = items
        return True

    def newest(self) -> Checkpoint | None:
        """The latest checkpoint (its snapshot is the ``like`` for the next one), or None."""
        return self._items[-1] if self._items else None

    def nearest(self, at_ms: int, max_commands: int | None = None) -> Checkpoint | None:
        """The newest checkpoint at or before ``at_ms`` (and, if given, with at most ``max_commands`` applied)."""
        best = None
        for c in self._items:
            if c.at_ms <= at_ms and (max_commands is None or c.commands_applied <= max_commands):
                best = c
        return best

    def discard_after(self, commands_applied: int) -> None:
        """Forget checkpoints that applied more commands than that (they belong to another history)."""
        kept = []
        for c in self._items:
            if c.commands_applied <= commands_applied:
                kept.append(c)
            else:
                self._release(c)
        self._items = kept

    def __len__(self) -> int:
        return len(self._items)

    def describe(self) -> dict[str, Any]:
        return {"count": len(self._items), "bytes": self.bytes, "max_bytes": self.max_bytes,
                "max_count": self.max_count, "dropped": self.dropped, "refused": self.refused,
                "times_ms": [c.at_ms for c in self._items]}


def replay_commands(world: Any, commands: Any, until_ms: int, *, skip_kinds: tuple[str, ...] = (),
                    checkpoint_every_ms: int | None = None, on_checkpoint: Any = None, applied: int = 0) -> Any:
    """Apply logged commands to ``world`` at their simulated times, then run to ``until_ms``; returns ``world``.

    ``commands`` are ``(seq, at_ms, command)`` in ``seq`` order, the ones the world
    has not applied yet. Exactly :meth:`LabWorld.replay`'s rules: advance to a
    command's time, skip ``skip_kinds`` (they only paced wall time), apply it and
    ignore a refusal (it was refused the first time too). With
    ``checkpoint_every_ms``, ``on_checkpoint(world, seq of the last command applied)``
    is called each time simulated time crosses a multiple of it (``applied``: the
    seq the world had applied before, for checkpoints taken before the first command).
    """
    from core_log.lab import LabCommandError  # lab imports nothing of this module; keep the engine layers apart

    last_seq = applied

    def run_to(target: int) -> None:
        if checkpoint_every_ms:
            while True:
                boundary = (world.now_ms() // checkpoint_every_ms + 1) * checkpoint_every_ms
                if boundary > target:
                    break
                world.advance(boundary)
                on_checkpoint(world, last_seq)
        if target > world.now_ms():
            world.advance(target)

    for seq, at_ms, command in commands:
        if command.get("kind") in skip_kinds:  # as the runtime always did: they are left out before replaying
            last_seq = seq
            continue
        if at_ms > world.now_ms():
            run_to(at_ms)
        last_seq = seq
        try:
            world.apply(command)
        except LabCommandError:
            pass
    if until_ms > world.now_ms():
        run_to(until_ms)
    return world


__all__ = ["MAX_CHECKPOINTS", "MAX_CHECKPOINT_BYTES", "RECENT_CHECKPOINTS", "MAX_SNAPSHOT_FILE_BYTES", "Checkpoint", "CheckpointStore",
           "replay_commands", "SNAPSHOT_FORMAT", "Snapshot", "SnapshotError", "copy_world", "restore",
           "snapshot"]
