"""Kafka's murmur2 partitioner for keys and the KIP-794 sticky partitioner for null keys."""

from __future__ import annotations

import random
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from core_log.partitioner import (
    StickyPartitioner,
    default_partition,
    murmur2,
    partition_for_key,
    to_positive,
)


class Murmur2Case(NamedTuple):
    data: bytes
    expected: int


# reference/kafka-semantics.md §2.10, from Kafka's UtilsTest.testMurmur2
MURMUR2_VECTORS = [
    Murmur2Case(b"21", -973932308),
    Murmur2Case(b"foobar", -790332482),
    Murmur2Case(b"a-little-bit-long-string", -985981536),
    Murmur2Case(b"a-little-bit-longer-string", -1486304829),
    Murmur2Case(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    Murmur2Case(b"abc", 479470107),
]


@pytest.mark.parametrize("case", MURMUR2_VECTORS, ids=lambda c: c.data.decode())
def test_murmur2_matches_kafka_vectors(case: Murmur2Case) -> None:
    """Ensure murmur2 returns Kafka's Java signed 32-bit value for each reference vector."""
    assert murmur2(case.data) == case.expected


def _keys() -> list[bytes]:
    rng = random.Random(2024)
    keys = [b"", b"\x00", b"\xff" * 7, b"machine-42", "\u00fcber".encode()]
    keys += [f"user-{i}".encode() for i in range(200)]
    keys += [rng.randbytes(rng.randrange(0, 64)) for _ in range(200)]
    return keys


KEYS = _keys()


def test_murmur2_equals_kafka_python_hash() -> None:
    """Ensure our murmur2 equals kafka-python's (which returns the unsigned form) on every length mod 4."""
    for key in KEYS:
        ours = murmur2(key)
        assert -(1 << 31) <= ours < (1 << 31)
        assert ours & 0xFFFFFFFF == kafka_python_murmur2(key), key


@pytest.mark.parametrize("num_partitions", [1, 2, 3, 6, 7, 12, 50, 1000])
def test_partition_for_key_matches_kafka_formula_and_kafka_python(num_partitions: int) -> None:
    """Ensure partition_for_key is (murmur2 & 0x7fffffff) % n and agrees with kafka-python's DefaultPartitioner."""
    for key in KEYS:
        p = partition_for_key(key, num_partitions)
        assert p == (murmur2(key) & 0x7FFFFFFF) % num_partitions
        # kafka.partitioner.DefaultPartitioner.partition: murmur2(key) & 0x7fffffff % len(all_partitions)
        assert p == (kafka_python_murmur2(key) & 0x7FFFFFFF) % num_partitions
        assert 0 <= p < num_partitions


def test_partition_for_key_accepts_bytes_like() -> None:
    """Ensure a bytearray or memoryview key hashes like the same bytes."""
    assert partition_for_key(bytearray(b"foobar"), 7) == partition_for_key(memoryview(b"foobar"), 7) \
        == partition_for_key(b"foobar", 7)


@given(st.binary(max_size=40), st.integers(min_value=1, max_value=10_000))
@settings(derandomize=True, database=None, deadline=None, max_examples=200)
def test_partition_for_key_property(key: bytes, num_partitions: int) -> None:
    """Ensure partition_for_key agrees with kafka-python's murmur2 for arbitrary keys and partition counts."""
    assert partition_for_key(key, num_partitions) == (kafka_python_murmur2(key) & 0x7FFFFFFF) % num_partitions


def test_to_positive_clears_sign_bit_not_abs() -> None:
    """Ensure to_positive is Kafka's toPositive (n & 0x7fffffff), not abs()."""
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(1 << 31)) == 0
    assert to_positive(5) == 5


@pytest.mark.parametrize("num_partitions", [0, -1])
def test_partition_for_key_rejects_no_partitions(num_partitions: int) -> None:
    """Ensure partition_for_key raises ValueError for fewer than one partition."""
    with pytest.raises(ValueError):
        partition_for_key(b"k", num_partitions)


def test_partition_for_key_rejects_null_key() -> None:
    """Ensure a null key has no hash partition."""
    with pytest.raises(ValueError):
        partition_for_key(None, 3)  # type: ignore[arg-type]


# ── sticky partitioner ───────────────────────────────────────────────────────


def _run_sticky(seed: int, sizes: list[int], num_partitions: int = 6, batch_size: int = 100) -> list[int]:
    sticky = StickyPartitioner(random.Random(seed), batch_size_bytes=batch_size)
    out = []
    for size in sizes:
        p = sticky.partition("t", num_partitions)
        sticky.record_appended("t", p, size)
        out.append(p)
    return out


class CountingRandom(random.Random):
    """A seeded Random that counts the partition draws made from it."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.draws = 0

    def randrange(self, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.draws += 1
        return super().randrange(*args, **kwargs)


def test_sticky_stays_until_batch_size_then_switches() -> None:
    """Ensure the sticky partition holds until ≥ batch_size_bytes were recorded, then a new one is drawn."""
    rng = CountingRandom(1)
    sticky = StickyPartitioner(rng, batch_size_bytes=100)
    first = sticky.partition("t", 1000)
    for _ in range(3):  # 3 × 33 = 99 bytes: still below the batch size
        assert sticky.partition("t", 1000) == first
        sticky.record_appended("t", first, 33)
    assert sticky.partition("t", 1000) == first
    assert rng.draws == 1
    sticky.record_appended("t", first, 1)  # exactly 100 bytes: the batch is full
    second = sticky.partition("t", 1000)
    assert rng.draws == 2
    assert second != first  # seed 1 draws a different one of 1000 partitions
    sticky.record_appended("t", second, 99)
    assert sticky.partition("t", 1000) == second
    sticky.record_appended("t", second, 500)  # one oversized record fills the batch at once
    sticky.partition("t", 1000)
    assert rng.draws == 3


def test_sticky_switch_count_follows_bytes() -> None:
    """Ensure the number of draws equals the number of filled batches (one per 100 bytes at 25 bytes a record)."""
    rng = CountingRandom(3)
    sticky = StickyPartitioner(rng, batch_size_bytes=100)
    for _ in range(40):  # 40 × 25 bytes = 10 full batches
        p = sticky.partition("t", 5)
        sticky.record_appended("t", p, 25)
    assert rng.draws == 10


def test_sticky_default_batch_size_is_kafkas() -> None:
    """Ensure the default batch size is Kafka's batch.size, 16384 bytes."""
    assert StickyPartitioner(random.Random(0)).batch_size_bytes == 16384


def test_sticky_ignores_bytes_for_other_partitions_and_topics() -> None:
    """Ensure bytes recorded for a different partition or topic do not fill the sticky batch."""
    sticky = StickyPartitioner(random.Random(5), batch_size_bytes=10)
    p = sticky.partition("a", 4)
    sticky.record_appended("a", (p + 1) % 4, 1_000)
    sticky.record_appended("b", p, 1_000)
    assert sticky.partition("a", 4) == p


def test_sticky_topics_are_independent() -> None:
    """Ensure filling one topic's batch does not move another topic's sticky partition."""
    sticky = StickyPartitioner(random.Random(11), batch_size_bytes=10)
    pb = sticky.partition("b", 1000)
    for _ in range(20):
        pa = sticky.partition("a", 1000)
        sticky.record_appended("a", pa, 10)
    assert sticky.partition("b", 1000) == pb


def test_sticky_same_seed_same_sequence() -> None:
    """Ensure the same seed and the same appends give the same partition sequence."""
    sizes = [random.Random(9).randrange(1, 60) for _ in range(300)]
    a = _run_sticky(42, sizes)
    assert a == _run_sticky(42, sizes)
    assert len(set(a)) > 1  # it does move around
    assert a != _run_sticky(43, sizes)


@pytest.mark.parametrize("seed", range(5))
def test_sticky_respects_available(seed: int) -> None:
    """Ensure the sticky partitioner draws only from the available partitions and leaves one that became unavailable."""
    sticky = StickyPartitioner(random.Random(seed), batch_size_bytes=10)
    seen = set()
    for _ in range(100):
        p = sticky.partition("t", 8, available=[6, 1, 3])
        assert p in (1, 3, 6)
        seen.add(p)
        sticky.record_appended("t", p, 10)
    assert seen == {1, 3, 6}
    current = sticky.partition("t", 8, available=[1, 3, 6])
    others = [x for x in (1, 3, 6) if x != current]
    assert sticky.partition("t", 8, available=others) in others


def test_sticky_empty_available_means_all_partitions() -> None:
    """Ensure an empty or missing availability list falls back to every partition."""
    sticky = StickyPartitioner(random.Random(0), batch_size_bytes=1)
    seen = set()
    for i in range(200):
        p = sticky.partition("t", 4, available=[] if i % 2 else None)
        seen.add(p)
        sticky.record_appended("t", p, 1)
    assert seen == {0, 1, 2, 3}


def test_sticky_redraws_when_partition_count_shrinks() -> None:
    """Ensure a sticky partition beyond a smaller partition count is replaced."""
    sticky = StickyPartitioner(random.Random(0), batch_size_bytes=1)
    while (p := sticky.partition("t", 100)) < 3:
        sticky.record_appended("t", p, 1)
    assert sticky.partition("t", 100) == p  # still sticky: nothing recorded since the draw
    assert sticky.partition("t", 3) in (0, 1, 2)


class BadStickyCase(NamedTuple):
    name: str
    batch_size_bytes: int
    num_partitions: int


@pytest.mark.parametrize(
    "case",
    [BadStickyCase("zero batch size", 0, 3), BadStickyCase("zero partitions", 10, 0),
     BadStickyCase("negative partitions", 10, -2)],
    ids=lambda c: c.name,
)
def test_sticky_rejects_bad_arguments(case: BadStickyCase) -> None:
    """Ensure nonsensical batch sizes and partition counts raise ValueError."""
    with pytest.raises(ValueError):
        StickyPartitioner(random.Random(0), batch_size_bytes=case.batch_size_bytes).partition("t", case.num_partitions)


def test_default_partition_dispatches() -> None:
    """Ensure default_partition hashes keyed records and uses the sticky partition for null keys."""
    sticky = StickyPartitioner(random.Random(7), batch_size_bytes=1_000)
    for key in KEYS[:50]:
        assert default_partition(key, "t", 12, sticky) == partition_for_key(key, 12)
    expected = StickyPartitioner(random.Random(7), batch_size_bytes=1_000).partition("t", 12)
    assert default_partition(None, "t", 12, sticky) == expected  # keyed calls consumed no randomness
    assert default_partition(None, "t", 12, sticky) == expected
    assert default_partition(None, "t", 12, sticky, available=[expected]) == expected
    other = (expected + 1) % 12
    assert default_partition(None, "t", 12, sticky, available=[other]) == other
    assert default_partition(b"foobar", "t", 12, sticky, available=[other]) == partition_for_key(b"foobar", 12)
