"""Shared fixtures for engine tests: a simulated clock, disks, and a log factory."""

from __future__ import annotations

import random
from typing import Callable

import pytest

from core_log.clock import SimClock
from core_log.log import Log, LogConfig
from core_log.records import Record, encode_batch, make_records
from core_log.storage import FileStorage, SimStorage

START_MS = 1_700_000_000_000


@pytest.fixture
def clock() -> SimClock:
    return SimClock(START_MS)


@pytest.fixture
def sim_storage() -> SimStorage:
    return SimStorage(random.Random(7))


@pytest.fixture
def file_storage() -> FileStorage:
    return FileStorage()


@pytest.fixture
def open_log(tmp_path, clock, file_storage) -> Callable[..., Log]:
    """Open (or reopen) the log in tmp_path/log with FileStorage and the given config."""

    def _open(storage=None, **config) -> Log:
        return Log(str(tmp_path / "log"), storage=storage or file_storage, clock=clock, config=LogConfig(**config))

    return _open


def batch(*kvs: tuple[bytes | None, bytes | None], ts: int = START_MS, headers=()) -> bytes:
    """A producer batch of the given (key, value) pairs, offsets from 0."""
    return encode_batch(make_records([(k, v, tuple(headers)) for k, v in kvs], timestamp_ms=ts))


def values(records: list[Record]) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for r in records]
