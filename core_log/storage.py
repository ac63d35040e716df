"""Where the log's bytes live: real files, or a simulated disk that can lose them.

The log does all of its I/O through this small interface so that the same code
runs against :class:`FileStorage` (real files, real ``fsync``) and
:class:`SimStorage` (bytes in memory that model what a crash does to writes that
were not yet synced). The log decides *when* to sync (Kafka's
``flush.messages`` / ``flush.ms``); storage only does what it is told.

The crash model of :class:`SimStorage` follows SQLite's ``test6.c``: data
written since a file's last ``sync`` sits in the page cache, and a crash decides
its fate —

* ``"keep"``  — a process kill: the OS still has the page cache, every write survives;
* ``"drop"``  — a power loss: every unsynced write is gone;
* ``"tear"``  — a power loss mid-flush: unsynced writes reach the disk in order up
  to a random point, the write at that point lands partly and possibly with
  garbage bytes, and the rest are gone.

File-system metadata (create, rename, remove, truncate) and
:meth:`Storage.write_file_atomic` are durable at once in both
implementations, as on a journaling file system. Only appended data can be lost.
"""

from __future__ import annotations

import os
import random
from typing import Literal, Protocol

from core_log.errors import LogClosedError, StorageError

CrashMode = Literal["keep", "drop", "tear"]
CRASH_MODES: tuple[CrashMode, ...] = ("keep", "drop", "tear")


class StorageFile(Protocol):
    """An open, append-only file."""

    path: str

    def size(self) -> int: ...

    def append(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` at the end; return the position of its first byte."""
        ...

    def read(self, position: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``position`` (fewer at the end of the file)."""
        ...

    def truncate(self, size: int) -> None: ...

    def sync(self) -> None:
        """Make everything appended so far durable."""
        ...

    def close(self) -> None: ...


class Storage(Protocol):
    """A directory tree of append-only files."""

    def open(self, path: str) -> StorageFile:
        """Open ``path`` for append and read, creating it if missing."""
        ...

    def exists(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]:
        """Names in directory ``path``, sorted."""
        ...

    def makedirs(self, path: str) -> None: ...

    def remove(self, path: str) -> None: ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically replace ``dst`` by ``src``."""
        ...

    def remove_dir(self, path: str) -> None:
        """Remove an empty directory."""
        ...

    def read_file(self, path: str) -> bytes: ...

    def write_file_atomic(self, path: str, data: bytes) -> None:
        """Replace ``path`` with ``data``; after a crash it holds the old or the new bytes."""
        ...

    def file_size(self, path: str) -> int: ...


# ── real files ───────────────────────────────────────────────────────────────


class _RealFile:
    __slots__ = ("path", "_fd", "_size", "_durable")

    def __init__(self, path: str, read_only: bool = False, durable: dict[str, int] | None = None) -> None:
        self.path = path
        flags = os.O_RDONLY if read_only else os.O_RDWR | os.O_CREAT
        existed = os.path.exists(path)
        try:
            self._fd: int | None = os.open(path, flags, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open {path}: {exc.strerror}") from None
        self._size = os.fstat(self._fd).st_size
        # What a power loss would keep (FileStorage.crash): bytes on disk when opened, or after the last fsync.
        self._durable = durable
        if durable is not None and (path not in durable or not existed):
            durable[path] = self._size if existed else 0

    def _checked_fd(self) -> int:
        if self._fd is None:
            raise LogClosedError(f"{self.path} is closed")
        return self._fd

    def size(self) -> int:
        return self._size

    def append(self, data: bytes | bytearray | memoryview) -> int:
        fd = self._checked_fd()
        position = self._size
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(fd, view[written:], position + written)
        self._size += written
        return position

    def read(self, position: int, length: int) -> bytes:
        return os.pread(self._checked_fd(), length, position)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._checked_fd(), size)
        self._size = min(self._size, size)
        if self._durable is not None and self.path in self._durable:
            self._durable[self.path] = min(self._durable[self.path], size)

    def sync(self) -> None:
        os.fsync(self._checked_fd())
        if self._durable is not None:
            self._durable[self.path] = self._size

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class FileStorage:
    """Real files under the operating system's file system.

    Paths are used as given. ``sync`` is a real ``fsync``; whether a crash of
    *this* process loses data is up to the OS (a killed process loses nothing
    that reached ``write``).

    A power loss cannot be staged on a real disk, so :meth:`crash` emulates one
    on the files: it remembers, per file, how many bytes were on disk when it
    was opened or last fsynced, and cuts every file back to that (``"drop"``),
    or to that plus a random part of what was written since (``"tear"``) —
    exactly what the page cache would have lost. Files replaced atomically
    (``write_file_atomic``) are fsynced and keep everything.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random(0)
        self._durable: dict[str, int] = {}

    def open(self, path: str) -> StorageFile:
        return _RealFile(path, durable=self._durable)

    def crash(self, mode: CrashMode) -> None:
        """Emulate a power loss on every file this storage opened (see the class docstring)."""
        if mode not in CRASH_MODES:
            raise ValueError(f"crash mode must be one of {CRASH_MODES}, got {mode!r}")
        for path in sorted(self._durable):  # sorted: the rng draws replay in the same order
            keep = self._durable[path]
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if mode == "tear" and size > keep:
                keep += self._rng.randrange(size - keep + 1)
            if mode != "keep" and size > keep:
                os.truncate(path, keep)
        self._durable.clear()

    def open_read_only(self, path: str) -> StorageFile:
        """Open an existing file for reading only (for tools such as dump-log)."""
        return _RealFile(path, read_only=True)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            raise StorageError(f"no such directory: {path}") from None

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            raise StorageError(f"no such file: {path}") from None

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)
        self._sync_dir(os.path.dirname(dst))

    def remove_dir(self, path: str) -> None:
        try:
            os.rmdir(path)
        except OSError as exc:
            raise StorageError(f"cannot remove directory {path}: {exc.strerror}") from None

    def read_file(self, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise StorageError(f"no such file: {path}") from None

    def write_file_atomic(self, path: str, data: bytes) -> None:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.rename(tmp, path)

    def file_size(self, path: str) -> int:
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            raise StorageError(f"no such file: {path}") from None

    @staticmethod
    def _sync_dir(path: str) -> None:
        fd = os.open(path or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ── simulated disk ───────────────────────────────────────────────────────────


class _SimInode:
    """One simulated file: its bytes, and which of them are durable.

    Appends go past ``synced_bytes``; ``writes`` remembers the boundaries of the
    unsynced appends so that a torn crash can keep a prefix of them.
    """

    __slots__ = ("data", "synced_bytes", "writes")

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.synced_bytes = len(data)
        self.writes: list[int] = []  # sizes of unsynced appends, in order


class _SimFile:
    __slots__ = ("path", "_disk", "_generation")

    def __init__(self, disk: "SimStorage", path: str) -> None:
        self.path = path
        self._disk = disk
        self._generation = disk.generation

    def _inode(self) -> _SimInode:
        if self._generation != self._disk.generation:
            raise LogClosedError(f"{self.path} was open when the disk crashed; reopen it")
        inode = self._disk._files.get(self.path)
        if inode is None:
            raise LogClosedError(f"{self.path} was removed while open")
        return inode

    def size(self) -> int:
        return len(self._inode().data)

    def append(self, data: bytes | bytearray | memoryview) -> int:
        inode = self._inode()
        position = len(inode.data)
        inode.data += data
        inode.writes.append(len(data))
        return position

    def read(self, position: int, length: int) -> bytes:
        return bytes(self._inode().data[position : position + length])

    def truncate(self, size: int) -> None:
        inode = self._inode()
        if size < len(inode.data):
            del inode.data[size:]
        inode.synced_bytes = min(inode.synced_bytes, size)
        # Unsynced appends now cover data[synced_bytes:]; keep their boundaries that still fit.
        remaining = len(inode.data) - inode.synced_bytes
        kept: list[int] = []
        for w in inode.writes:
            if remaining <= 0:
                break
            kept.append(min(w, remaining))
            remaining -= w
        inode.writes = kept

    def sync(self) -> None:
        inode = self._inode()
        inode.synced_bytes = len(inode.data)
        inode.writes = []
        self._disk.sync_count += 1

    def close(self) -> None:
        self._generation = -1


class SimStorage:
    """An in-memory disk whose :meth:`crash` keeps, drops or tears unsynced writes.

    ``rng`` decides how a ``"tear"`` crash tears; pass a seeded
    ``random.Random`` so that the crash replays. After :meth:`crash`, every file
    opened before it raises :class:`LogClosedError`; reopen the log to recover.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random(0)
        self._files: dict[str, _SimInode] = {}
        self._dirs: set[str] = {"", "/"}
        self.generation = 0
        self.sync_count = 0

    @staticmethod
    def _norm(path: str) -> str:
        return os.path.normpath(path)

    def _require_dir(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent not in self._dirs:
            raise StorageError(f"no such directory: {parent}")

    def open(self, path: str) -> StorageFile:
        path = self._norm(path)
        if path not in self._files:
            self._require_dir(path)
            self._files[path] = _SimInode()
        return _SimFile(self, path)

    def exists(self, path: str) -> bool:
        path = self._norm(path)
        return path in self._files or path in self._dirs

    def listdir(self, path: str) -> list[str]:
        path = self._norm(path)
        if path not in self._dirs:
            raise StorageError(f"no such directory: {path}")
        names = {os.path.basename(p) for p in self._files if os.path.dirname(p) == path}
        names |= {os.path.basename(d) for d in self._dirs if d and os.path.dirname(d) == path and d != path}
        return sorted(names)

    def makedirs(self, path: str) -> None:
        path = self._norm(path)
        while path not in self._dirs:
            self._dirs.add(path)
            path = os.path.dirname(path)

    def remove(self, path: str) -> None:
        path = self._norm(path)
        if self._files.pop(path, None) is None:
            raise StorageError(f"no such file: {path}")

    def rename(self, src: str, dst: str) -> None:
        src, dst = self._norm(src), self._norm(dst)
        inode = self._files.pop(src, None)
        if inode is None:
            raise StorageError(f"no such file: {src}")
        self._require_dir(dst)
        self._files[dst] = inode

    def remove_dir(self, path: str) -> None:
        path = self._norm(path)
        if path not in self._dirs:
            raise StorageError(f"no such directory: {path}")
        if self.listdir(path):
            raise StorageError(f"directory not empty: {path}")
        self._dirs.discard(path)

    def read_file(self, path: str) -> bytes:
        inode = self._files.get(self._norm(path))
        if inode is None:
            raise StorageError(f"no such file: {path}")
        return bytes(inode.data)

    def write_file_atomic(self, path: str, data: bytes) -> None:
        path = self._norm(path)
        self._require_dir(path)
        self._files[path] = _SimInode(data)
        self.sync_count += 1

    def file_size(self, path: str) -> int:
        inode = self._files.get(self._norm(path))
        if inode is None:
            raise StorageError(f"no such file: {path}")
        return len(inode.data)

    def unsynced_bytes(self) -> int:
        """Bytes that a power loss would lose right now."""
        return sum(len(i.data) - i.synced_bytes for i in self._files.values())

    def crash(self, mode: CrashMode) -> None:
        """Crash the machine; see the module docstring for what each mode does."""
        if mode not in CRASH_MODES:
            raise ValueError(f"crash mode must be one of {CRASH_MODES}, got {mode!r}")
        for path in sorted(self._files):  # sorted: the rng draws replay in the same order
            inode = self._files[path]
            if mode == "drop":
                del inode.data[inode.synced_bytes :]
            elif mode == "tear":
                self._tear(inode)
            inode.synced_bytes = len(inode.data)
            inode.writes = []
        self.generation += 1

    def _tear(self, inode: _SimInode) -> None:
        if not inode.writes:
            return
        rng = self._rng
        landed = rng.randrange(len(inode.writes) + 1)  # writes [0, landed) reach the disk whole
        keep = inode.synced_bytes + sum(inode.writes[:landed])
        if landed < len(inode.writes):
            torn = inode.writes[landed]
            partial = rng.randrange(torn + 1)
            start = keep
            keep += partial
            if partial and rng.random() < 0.5:
                # The half-written sector holds junk rather than the intended bytes.
                junk_from = start + rng.randrange(partial)
                junk = bytes(rng.randrange(256) for _ in range(min(keep - junk_from, 64)))
                inode.data[junk_from : junk_from + len(junk)] = junk
        del inode.data[keep:]
