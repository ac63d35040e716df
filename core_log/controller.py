"""The controller: topic placement, broker liveness, leader election and ISR changes.

It plays KRaft's active controller. Brokers heartbeat to it every
``broker_heartbeat_interval_ms``; a broker silent for ``broker_session_timeout_ms``
is *fenced*: it leaves every ISR (but an ISR never becomes empty) and each
partition it led gets a new leader from the ISR, with a bumped leader epoch. If
no ISR member is alive the partition goes offline — unless
``unclean.leader.election.enable`` is set, in which case any live replica is
elected, and whatever the old ISR had beyond that replica's log is lost.

Leaders ask for ISR changes with AlterPartition; the controller accepts one only
if it comes from the current leader in the current epochs (so a deposed leader
cannot shrink the ISR behind the new one's back), then tells every broker.

Differences from Kafka: the controller quorum is assumed healthy (it never
crashes and is one node, ``"controller"``); producer ids are handed out by it
directly rather than in blocks through brokers; no preferred-leader rebalancing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from core_log.messages import (
    NONE,
    AlterPartitionRequest,
    AlterPartitionResponse,
    BrokerHeartbeat,
    Envelope,
    PartitionUpdate,
    StopReplicas,
    TopicPartition,
)

if TYPE_CHECKING:
    from core_log.cluster import Cluster

CONTROLLER_ID = "controller"
FENCED_LEADER_EPOCH_ERROR = "FENCED_LEADER_EPOCH"
INVALID_UPDATE_VERSION = "INVALID_UPDATE_VERSION"
INELIGIBLE_REPLICA = "INELIGIBLE_REPLICA"


@dataclass
class BrokerRegistration:
    broker_id: int
    last_heartbeat_ms: int
    fenced: bool
    incarnation: int = 0


class Controller:
    """The cluster's single source of truth for partition leadership."""

    node_id = CONTROLLER_ID

    def __init__(self, cluster: "Cluster") -> None:
        self.cluster = cluster
        self.alive = True
        self.incarnation = 1
        self.brokers: dict[int, BrokerRegistration] = {}
        self.partitions: dict[TopicPartition, PartitionUpdate] = {}
        self.unclean_election: dict[str, bool] = {}  # topic -> unclean.leader.election.enable
        self._next_producer_id = 1000
        self.leader_changes = 0

    # ── placement ──
    def create_partitions(self, topic: str, num_partitions: int, replication_factor: int,
                          unclean_leader_election: bool, start: int = 0) -> list[PartitionUpdate]:
        """Kafka-style round-robin placement: partition p's replicas start at broker (p + start) % n."""
        broker_ids = sorted(self.brokers)
        n = len(broker_ids)
        self.unclean_election[topic] = unclean_leader_election
        created = []
        for p in range(start, start + num_partitions):
            replicas = tuple(broker_ids[(p + i) % n] for i in range(replication_factor))
            live = [b for b in replicas if not self.brokers[b].fenced]
            leader = live[0] if live else -1
            isr = tuple(live) if live else replicas[:1]
            update = PartitionUpdate(TopicPartition(topic, p), leader, 0, isr, replicas, 0)
            self.partitions[update.tp] = update
            created.append(update)
            self._broadcast(update)
        return created

    def delete_topic(self, topic: str) -> None:
        for tp in [tp for tp in self.partitions if tp.topic == topic]:
            del self.partitions[tp]
        self.unclean_election.pop(topic, None)
        for broker_id in self.live_brokers():
            self.cluster.send(self, f"broker-{broker_id}", StopReplicas(topic))

    def allocate_producer_id(self) -> int:
        self._next_producer_id += 1
        return self._next_producer_id

    # ── liveness ──
    def register(self, broker_id: int) -> None:
        self.brokers[broker_id] = BrokerRegistration(broker_id, self.cluster.now_ms(), fenced=False)

    def receive(self, envelope: Envelope) -> None:
        msg = envelope.message
        if isinstance(msg, BrokerHeartbeat):
            self._on_heartbeat(msg.broker_id, msg.incarnation)
        elif isinstance(msg, AlterPartitionRequest):
            self._on_alter_partition(msg, envelope.src)

    def _on_heartbeat(self, broker_id: int, incarnation: int) -> None:
        reg = self.brokers.get(broker_id)
        now = self.cluster.now_ms()
        if reg is None:
            return
        if reg.incarnation and incarnation != reg.incarnation and not reg.fenced:
            # A new process registered under this id: the old one is gone, with whatever
            # leaderships it held (KRaft fences the old incarnation at once).
            reg.fenced = True
            self.cluster.events.emit(now, "BrokerFenced",
                                     f"Broker {broker_id} registered again after a restart; the controller fences "
                                     f"its previous incarnation and moves its leaderships.", broker=broker_id)
            self._on_broker_fenced(broker_id)
        reg.incarnation = incarnation
        reg.last_heartbeat_ms = now
        if reg.fenced:
            reg.fenced = False
            self.cluster.events.emit(now, "BrokerUnfenced",
                                     f"Broker {broker_id} is heartbeating again; the controller lets it back in "
                                     f"and it will catch up as a follower before rejoining any ISR.",
                                     broker=broker_id)
            self._elect_offline_partitions()
            for update in sorted(self.partitions.values(), key=lambda u: u.tp):
                self.cluster.send(self, f"broker-{broker_id}", update)  # its metadata cache: every partition

    def check_liveness(self) -> None:
        """Fence every broker whose last heartbeat is older than the session timeout."""
        now = self.cluster.now_ms()
        timeout = self.cluster.config.broker_session_timeout_ms
        for reg in sorted(self.brokers.values(), key=lambda r: r.broker_id):
            if not reg.fenced and now - reg.last_heartbeat_ms > timeout:
                reg.fenced = True
                self.cluster.events.emit(
                    now, "BrokerFenced",
                    f"Broker {reg.broker_id} missed heartbeats for {now - reg.last_heartbeat_ms} ms "
                    f"(broker.session.timeout.ms={timeout}); the controller fences it and moves its leaderships.",
                    broker=reg.broker_id)
                self._on_broker_fenced(reg.broker_id)

    def live_brokers(self) -> tuple[int, ...]:
        return tuple(sorted(b for b, r in self.brokers.items() if not r.fenced))

    # ── elections ──
    def _on_broker_fenced(self, broker_id: int) -> None:
        for tp in sorted(self.partitions):
            update = self.partitions[tp]
            if broker_id not in update.replicas:
                continue
            isr = tuple(b for b in update.isr if b != broker_id) or update.isr  # never empty
            if update.leader == broker_id:
                self._elect(update, isr, reason=f"broker {broker_id} was fenced")
            elif isr != update.isr:
                self._commit(replace(update, isr=isr, partition_epoch=update.partition_epoch + 1),
                             "IsrShrunk", f"Broker {broker_id} was fenced, so it leaves the ISR of {tp}; "
                                          f"ISR is now {_fmt(isr)}.")

    def _elect(self, update: PartitionUpdate, isr: tuple[int, ...], reason: str) -> None:
        live = set(self.live_brokers())
        tp = update.tp
        candidates = [b for b in update.replicas if b in isr and b in live]
        unclean = False
        if candidates:
            leader = candidates[0]
        elif self.unclean_election.get(tp.topic, False) and any(b in live for b in update.replicas):
            leader = next(b for b in update.replicas if b in live)
            isr = (leader,)
            unclean = True
        else:
            leader = -1
        new = replace(update, leader=leader, leader_epoch=update.leader_epoch + 1,
                      isr=isr if leader == -1 or unclean else tuple(b for b in isr),
                      partition_epoch=update.partition_epoch + 1)
        self.leader_changes += 1
        if leader == -1:
            text = (f"Partition {tp} has no live in-sync replica ({reason}); it is offline until an ISR member "
                    f"returns (unclean.leader.election.enable=false). Epoch {new.leader_epoch}.")
            kind = "PartitionOffline"
        elif unclean:
            text = (f"Unclean election: no ISR member of {tp} is alive, so out-of-sync broker {leader} becomes "
                    f"leader in epoch {new.leader_epoch}; records it never copied are lost.")
            kind = "UncleanLeaderElected"
        else:
            text = (f"Partition {tp}'s leader moved from {_fmt_leader(update.leader)} to {leader}, epoch "
                    f"{new.leader_epoch} ({reason}); ISR is now {_fmt(new.isr)}.")
            kind = "LeaderElected"
        self._commit(new, kind, text)

    def _elect_offline_partitions(self) -> None:
        live = set(self.live_brokers())
        for tp in sorted(self.partitions):
            update = self.partitions[tp]
            if update.leader == -1 and (any(b in live for b in update.isr)
                                        or (self.unclean_election.get(tp.topic) and live & set(update.replicas))):
                self._elect(update, update.isr, reason="an in-sync replica came back")

    def _on_alter_partition(self, req: AlterPartitionRequest, src: str) -> None:
        current = self.partitions.get(req.tp)
        if current is None:
            return
        live = set(self.live_brokers())
        if req.leader_id != current.leader or req.leader_epoch != current.leader_epoch:
            self.cluster.send(self, src, AlterPartitionResponse(req.tp, FENCED_LEADER_EPOCH_ERROR, current))
            return
        if req.partition_epoch != current.partition_epoch:
            self.cluster.send(self, src, AlterPartitionResponse(req.tp, INVALID_UPDATE_VERSION, current))
            return
        added = set(req.new_isr) - set(current.isr)
        if any(b not in live for b in added):
            self.cluster.send(self, src, AlterPartitionResponse(req.tp, INELIGIBLE_REPLICA, current))
            return
        new = replace(current, isr=tuple(sorted(req.new_isr, key=current.replicas.index)),
                      partition_epoch=current.partition_epoch + 1)
        removed = set(current.isr) - set(req.new_isr)
        if added:
            kind, text = "IsrExpanded", (f"Broker {', '.join(str(b) for b in sorted(added))} caught up with leader "
                                         f"{current.leader} on {req.tp} and rejoins the ISR; ISR is now {_fmt(new.isr)}.")
        else:
            lag = self.cluster.config.replica_lag_time_max_ms
            kind, text = "IsrShrunk", (f"Leader {current.leader} of {req.tp} dropped broker "
                                       f"{', '.join(str(b) for b in sorted(removed))} "
                                       f"from the ISR: not caught up for more than replica.lag.time.max.ms={lag}; "
                                       f"ISR is now {_fmt(new.isr)}.")
        self._commit(new, kind, text)
        self.cluster.send(self, src, AlterPartitionResponse(req.tp, NONE, new))

    def _commit(self, update: PartitionUpdate, kind: str, text: str) -> None:
        self.partitions[update.tp] = update
        self.cluster.events.emit(self.cluster.now_ms(), kind, text, partition=str(update.tp),
                                 leader=update.leader, leader_epoch=update.leader_epoch, isr=list(update.isr))
        self._broadcast(update)

    def _broadcast(self, update: PartitionUpdate) -> None:
        for broker_id in self.live_brokers():
            self.cluster.send(self, f"broker-{broker_id}", update)


def _fmt(ids: tuple[int, ...]) -> str:
    return "{" + ",".join(str(i) for i in ids) + "}"


def _fmt_leader(leader: int) -> str:
    return "nobody" if leader == -1 else str(leader)
