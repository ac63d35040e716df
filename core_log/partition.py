"""The leader's side of a partition: ISR bookkeeping, the high watermark, waiting acks.

Only the replica that leads a partition has this state. It tracks, for every
follower, how far its log reaches (its LEO, learned from the offset it fetches
from) and when it was last caught up. From that:

* **HW** = the smallest LEO in the ISR — but it does not move while the ISR is
  smaller than ``min.insync.replicas`` (Kafka 3.7+, KAFKA-15583);
* a follower not caught up for ``replica.lag.time.max.ms`` is proposed for
  removal from the ISR; a follower that reaches the HW (and the start of the
  leader's epoch) is proposed for re-entry. The controller decides;
* an ``acks=all`` produce is answered when the HW passes its last offset.

Caught-up rule (Kafka's ``Replica.updateFetchState``): a fetch at the leader's
LEO makes the follower caught up *now*; a fetch at or past the LEO the leader had
at the follower's previous fetch makes it caught up as of that previous fetch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FollowerState:
    leo: int = -1  # unknown until it fetches
    last_caught_up_ms: int = 0
    last_fetch_leader_leo: int = -1
    last_fetch_ms: int = 0

    def on_fetch(self, fetch_offset: int, leader_leo: int, now_ms: int) -> None:
        if fetch_offset >= leader_leo:
            self.last_caught_up_ms = max(self.last_caught_up_ms, now_ms)
        elif fetch_offset >= self.last_fetch_leader_leo:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.leo = fetch_offset
        self.last_fetch_leader_leo = leader_leo
        self.last_fetch_ms = now_ms


@dataclass
class PendingProduce:
    """An acks=all produce waiting for the HW to pass ``last_offset``."""

    last_offset: int
    base_offset: int
    reply: object  # callable(error, base_offset)
    deadline_ms: int


@dataclass
class LeaderState:
    """What the leader of one partition knows beyond its own log."""

    leader_epoch: int
    isr: tuple[int, ...]
    partition_epoch: int
    epoch_start_offset: int
    followers: dict[int, FollowerState] = field(default_factory=dict)
    pending: list[PendingProduce] = field(default_factory=list)
    alter_in_flight: bool = False

    def compute_high_watermark(self, leader_id: int, leader_leo: int, min_insync_replicas: int) -> int | None:
        """The HW the ISR supports now, or None while the ISR is below min.insync.replicas."""
        if len(self.isr) < min_insync_replicas:
            return None
        low = leader_leo
        followers = self.followers
        for broker in self.isr:
            if broker != leader_id:
                follower = followers.get(broker)
                if follower is None:
                    return None  # it has not fetched yet: its LEO is unknown
                if follower.leo < low:
                    low = follower.leo
        return None if low < 0 else low

    def lagging_followers(self, leader_id: int, now_ms: int, lag_max_ms: int, leader_leo: int) -> list[int]:
        """ISR followers not caught up within ``lag_max_ms``."""
        out = []
        for broker in self.isr:
            if broker == leader_id:
                continue
            f = self.followers.get(broker) or FollowerState()
            if f.leo < leader_leo and now_ms - f.last_caught_up_ms > lag_max_ms:
                out.append(broker)
        return out
