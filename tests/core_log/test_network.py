"""The simulated network: in-order delivery after latency, seeded loss, isolation, restarts drop stale mail."""

from __future__ import annotations

import heapq
import random

import pytest

from core_log.network import Deadlines, FaultPlan, Network


class _Node:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.alive = True
        self.incarnation = 1
        self.got: list[tuple[int, object]] = []
        self.clock = None

    def receive(self, envelope) -> None:  # type: ignore[no-untyped-def]
        self.got.append((envelope.deliver_ms, envelope.message))


class _Loop:
    def __init__(self) -> None:
        self.now = 0
        self.queue: list[tuple[int, int, object]] = []
        self.seq = 0

    def schedule(self, delay_ms, action) -> None:  # type: ignore[no-untyped-def]
        self.seq += 1
        heapq.heappush(self.queue, (self.now + delay_ms, self.seq, action))

    def run(self) -> None:
        while self.queue:
            self.now, _, action = heapq.heappop(self.queue)
            action()  # type: ignore[operator]


def _net(seed: int = 0) -> tuple[Network, _Loop, _Node, _Node]:
    loop = _Loop()
    net = Network(random.Random(seed), loop.schedule, lambda: loop.now, FaultPlan(default_latency_ms=3))
    a, b = _Node("a"), _Node("b")
    net.register(a)
    net.register(b)
    return net, loop, a, b


def test_messages_arrive_in_order_after_the_link_latency():
    """Ensure a link delivers after its latency and never reorders, even when latency drops mid-stream."""
    net, loop, a, b = _net()
    net.plan.set_link("a", "b", latency_ms=50)
    net.send(a, "b", "first")
    net.plan.set_link("a", "b", latency_ms=1)
    net.send(a, "b", "second")
    loop.run()
    assert b.got == [(50, "first"), (50, "second")]


def test_loss_is_seeded_and_partial():
    """Ensure loss drops about the given share of messages, identically for the same seed."""
    outcomes = []
    for _ in range(2):
        net, loop, a, b = _net(seed=42)
        net.plan.set_link("a", "b", loss_probability=0.3)
        for i in range(1000):
            net.send(a, "b", i)
        loop.run()
        outcomes.append([m for _, m in b.got])
    assert outcomes[0] == outcomes[1]
    assert 600 < len(outcomes[0]) < 800


def test_isolation_drops_both_ways_including_messages_in_flight():
    """Ensure an isolated node neither sends nor receives, and a cut made mid-flight drops the message."""
    net, loop, a, b = _net()
    net.send(a, "b", "in flight")
    net.plan.isolate("b")
    net.send(b, "a", "from b")
    loop.run()
    assert a.got == [] and b.got == []
    net.plan.heal("b")
    net.send(a, "b", "after heal")
    loop.run()
    assert [m for _, m in b.got] == ["after heal"]


def test_a_restarted_node_gets_nothing_sent_to_its_previous_life():
    """Ensure mail addressed to an old incarnation is dropped (a restart resets connections)."""
    net, loop, a, b = _net()
    net.send(a, "b", "old")
    b.incarnation += 1
    net.send(a, "b", "new")
    loop.run()
    assert [m for _, m in b.got] == ["new"]
    assert net.dropped == 1


def test_fault_plan_rejects_out_of_range_values():
    """Ensure latency and loss outside their named ranges are refused."""
    plan = FaultPlan()
    with pytest.raises(ValueError):
        plan.set_link("a", "b", latency_ms=10**9)
    with pytest.raises(ValueError):
        plan.set_link("a", "b", loss_probability=1.5)


def test_deadlines_fire_each_timeout_at_its_own_deadline_with_one_timer():
    """Ensure Deadlines runs every entry exactly timeout_ms after it was added, in order, with one pending event."""
    loop = _Loop()
    deadlines = Deadlines(loop.schedule, lambda: loop.now)
    fired: list[tuple[int, str]] = []

    def add(name: str, timeout_ms: int = 100) -> None:
        deadlines.add(timeout_ms, name, lambda: fired.append((loop.now, name)))

    add("a")
    loop.schedule(10, lambda: add("b"))
    loop.schedule(20, lambda: add("c"))
    loop.schedule(30, lambda: deadlines.cancel(100, "b"))  # answered in time: never fires
    loop.schedule(40, lambda: add("short", 5))  # another duration has its own timer
    loop.schedule(50, lambda: add("d"))
    assert len(loop.queue) == 6  # one timer for the 100 ms entries, not one per entry
    loop.run()
    assert fired == [(45, "short"), (100, "a"), (120, "c"), (150, "d")]
    assert len(deadlines) == 0


def test_deadlines_entry_added_by_an_action_keeps_later_deadlines_on_time():
    """Ensure an action that adds an entry while others are due does not delay the next deadline."""
    loop = _Loop()
    deadlines = Deadlines(loop.schedule, lambda: loop.now)
    fired: list[tuple[int, str]] = []
    deadlines.add(100, "a", lambda: (fired.append((loop.now, "a")), deadlines.add(100, "a2", lambda: fired.append((loop.now, "a2")))))
    loop.schedule(5, lambda: deadlines.add(100, "b", lambda: fired.append((loop.now, "b"))))
    loop.run()
    assert fired == [(100, "a"), (105, "b"), (200, "a2")]
    deadlines.add(100, "gone", lambda: fired.append((loop.now, "gone")))
    deadlines.clear()
    loop.run()
    assert fired[-1] == (200, "a2")
