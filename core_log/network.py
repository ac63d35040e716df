"""Simulated links between brokers, the controller and clients, driven by a ``FaultPlan``.

Every message between two nodes goes through :meth:`Network.send`. A link
delivers in order (like the TCP connection Kafka uses) after its latency; a
message is lost if the link's loss probability says so, if either end is cut off
from the other when it is sent or when it would arrive, or if the receiver has
crashed or restarted since it was sent (a restart resets connections, so
nothing addressed to the old process reaches the new one).

All randomness comes from the ``rng`` handed in, so a seed replays a run. The
network never reads a clock; the cluster's scheduler calls back at delivery time.

:class:`Deadlines` holds a node's request timeouts: many timeouts of one
duration cost one scheduled event at a time, as Kafka's clients check their
requests' deadlines in their poll loop instead of arming a timer per request.

Differences from Kafka: a lost message is silently gone; clients notice through
their request timeouts rather than through a connection reset.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Protocol

from core_log.messages import Envelope

#: Latency of a link with no fault, in simulated milliseconds.
DEFAULT_LATENCY_MS = 1
MAX_LATENCY_MS = 60_000


class Node(Protocol):
    node_id: str
    alive: bool
    incarnation: int

    def receive(self, envelope: Envelope) -> None: ...


@dataclass
class LinkFault:
    """Faults on the directed link src → dst."""

    latency_ms: int = DEFAULT_LATENCY_MS
    loss_probability: float = 0.0


@dataclass
class FaultPlan:
    """The network's faults right now; the cluster edits it as a learner breaks things.

    ``isolated`` maps a node to the peers it cannot reach (``None``: every other node).
    Isolation is symmetric: a cut-off node neither sends to nor hears from those peers.
    """

    default_latency_ms: int = DEFAULT_LATENCY_MS
    links: dict[tuple[str, str], LinkFault] = field(default_factory=dict)
    isolated: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def link(self, src: str, dst: str) -> LinkFault:
        return self.links.get((src, dst)) or LinkFault(self.default_latency_ms, 0.0)

    def set_link(self, src: str, dst: str, *, latency_ms: int | None = None, loss_probability: float | None = None,
                 both_ways: bool = True) -> None:
        """Change latency and/or loss on a link (both directions by default)."""
        if latency_ms is not None and not 0 <= latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be in [0, {MAX_LATENCY_MS}], got {latency_ms}")
        if loss_probability is not None and not 0.0 <= loss_probability <= 1.0:
            raise ValueError(f"loss_probability must be in [0, 1], got {loss_probability}")
        for a, b in ((src, dst), (dst, src)) if both_ways else ((src, dst),):
            current = self.link(a, b)
            self.links[(a, b)] = LinkFault(
                current.latency_ms if latency_ms is None else latency_ms,
                current.loss_probability if loss_probability is None else loss_probability,
            )

    def isolate(self, node: str, peers: frozenset[str] | None = None) -> None:
        """Cut ``node`` off from ``peers`` (all nodes when None)."""
        self.isolated[node] = None if peers is None else frozenset(peers)

    def heal(self, node: str | None = None) -> None:
        """End isolation (of one node, or of all) and clear link faults touching it."""
        if node is None:
            self.isolated.clear()
            self.links.clear()
            return
        self.isolated.pop(node, None)
        for key in [k for k in self.links if node in k]:
            del self.links[key]

    def cut(self, src: str, dst: str) -> bool:
        """Is the link between src and dst severed by an isolation?"""
        for a, b in ((src, dst), (dst, src)):
            if a in self.isolated:
                peers = self.isolated[a]
                if peers is None or b in peers:
                    return True
        return False


class Deadlines:
    """Timeouts of requests, each ``timeout_ms`` after it was added; one scheduled event at a time.

    Entries of one duration expire in the order they were added, so only the
    oldest needs a timer: when it fires, every entry whose deadline has come runs
    its ``action`` (in the order added), and the timer is set for the next one.
    An action runs exactly at its deadline, as a timer of its own would. A key
    must be new (correlation ids are); :meth:`cancel` forgets an answered request.
    """

    __slots__ = ("_schedule", "_now_ms", "_fifos", "_armed")

    def __init__(self, schedule: Callable[[int, Callable[[], None]], None], now_ms: Callable[[], int]) -> None:
        self._schedule = schedule
        self._now_ms = now_ms
        self._fifos: dict[int, dict[object, tuple[int, Callable[[], None]]]] = {}  # timeout_ms → key → entry
        self._armed: set[int] = set()  # durations with a timer pending

    def add(self, timeout_ms: int, key: object, action: Callable[[], None]) -> None:
        fifo = self._fifos.get(timeout_ms)
        if fifo is None:
            fifo = self._fifos[timeout_ms] = {}
        fifo[key] = (self._now_ms() + timeout_ms, action)
        if timeout_ms not in self._armed:
            self._arm(timeout_ms, timeout_ms)

    def cancel(self, timeout_ms: int, key: object) -> None:
        fifo = self._fifos.get(timeout_ms)
        if fifo is not None:
            fifo.pop(key, None)

    def clear(self) -> None:
        """Forget every entry (the node's process died); pending timers then find nothing to do."""
        for fifo in self._fifos.values():
            fifo.clear()

    def __len__(self) -> int:
        return sum(len(f) for f in self._fifos.values())

    def _arm(self, timeout_ms: int, delay_ms: int) -> None:
        self._armed.add(timeout_ms)
        self._schedule(delay_ms, lambda: self._fire(timeout_ms))

    def _fire(self, timeout_ms: int) -> None:
        # Still marked armed while actions run: one they trigger may add entries (they go last).
        fifo = self._fifos[timeout_ms]
        now = self._now_ms()
        while fifo:
            key = next(iter(fifo))
            deadline, action = fifo[key]
            if deadline > now:
                self._arm(timeout_ms, deadline - now)
                return
            del fifo[key]
            action()
        self._armed.discard(timeout_ms)


class Network:
    """Delivers envelopes between registered nodes through the scheduler."""

    def __init__(self, rng: random.Random, schedule: Callable[[int, Callable[[], None]], None],
                 now_ms: Callable[[], int], plan: FaultPlan | None = None,
                 schedule_at: Callable[[int, Callable[[], None]], None] | None = None) -> None:
        self._rng = rng
        self._schedule = schedule
        self._schedule_at = schedule_at or (lambda when, action: schedule(when - now_ms(), action))
        self._now_ms = now_ms
        self.plan = plan or FaultPlan()
        self.nodes: dict[str, Node] = {}
        self._last_delivery_ms: dict[tuple[str, str], int] = {}
        self.sent = 0
        self.dropped = 0
        self.delivered = 0

    def register(self, node: Node) -> None:
        self.nodes[node.node_id] = node

    def send(self, src: Node, dst_id: str, message: object) -> None:
        """Send ``message`` from ``src`` to the node ``dst_id``; it may be lost, never duplicated."""
        self.sent += 1
        plan = self.plan
        dst = self.nodes.get(dst_id)
        if dst is None or not src.alive or (plan.isolated and plan.cut(src.node_id, dst_id)):
            self.dropped += 1
            return
        key = (src.node_id, dst_id)
        if plan.links:
            fault = plan.link(src.node_id, dst_id)
            if fault.loss_probability and self._rng.random() < fault.loss_probability:
                self.dropped += 1
                return
            latency_ms = fault.latency_ms
        else:
            latency_ms = plan.default_latency_ms
        now = self._now_ms()
        deliver_ms = now + latency_ms
        last = self._last_delivery_ms.get(key, 0)
        if last > deliver_ms:
            deliver_ms = last  # in order, like TCP
        self._last_delivery_ms[key] = deliver_ms
        envelope = Envelope(src.node_id, dst_id, message, src.incarnation, dst.incarnation, now, deliver_ms)
        self._schedule_at(deliver_ms, lambda: self._deliver(envelope))

    def reset_connections(self, node_id: str) -> None:
        """``node_id``'s process died while its host stayed up: every peer's connection to it is reset.

        Clients that track requests (``connection_reset``) learn it one link latency
        later, as a TCP RST would tell them, instead of waiting for a request timeout.
        """
        for peer_id in sorted(self.nodes):
            peer = self.nodes[peer_id]
            reset = getattr(peer, "connection_reset", None)
            if reset is not None and peer.alive and peer_id != node_id:
                incarnation = peer.incarnation

                def tell(peer=peer, reset=reset, incarnation=incarnation) -> None:
                    if peer.alive and peer.incarnation == incarnation:
                        reset(node_id)

                self._schedule(self.plan.default_latency_ms, tell)

    def _deliver(self, envelope: Envelope) -> None:
        dst = self.nodes.get(envelope.dst)
        src = self.nodes.get(envelope.src)
        stale = (dst is None or not dst.alive or dst.incarnation != envelope.dst_incarnation
                 or src is None or src.incarnation != envelope.src_incarnation)
        if stale or (self.plan.isolated and self.plan.cut(envelope.src, envelope.dst)):
            self.dropped += 1
            refused = getattr(src, "connection_refused", None)
            if (refused is not None and dst is not None and src is not None and src.alive
                    and src.incarnation == envelope.src_incarnation and not self.plan.cut(envelope.src, envelope.dst)
                    and (not dst.alive or dst.incarnation != envelope.dst_incarnation)):
                # the process is gone but its host answers: a connection reset the client hears about
                self._schedule(self.plan.default_latency_ms, lambda: refused(envelope))
            return
        self.delivered += 1
        dst.receive(envelope)
