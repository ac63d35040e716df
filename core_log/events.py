"""Engine events: every state change, told in one plain sentence.

The UI's timeline is made of these and nothing else (DESIGN.md §2, "Events
narrate"): the engine says what happened and why, in Kafka's words, at the
simulated time it happened, so a learner never sees a state change the engine
did not explain.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

#: Events kept in memory per cluster; older ones are dropped (and counted).
MAX_EVENTS = 100_000


@dataclass(frozen=True)
class Event:
    """One thing that happened: ``kind`` is a CamelCase name such as ``LeaderElected``."""

    time_ms: int
    kind: str
    text: str  # one sentence for a learner
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"time_ms": self.time_ms, "kind": self.kind, "text": self.text, "fields": self.fields}


class EventLog:
    """A bounded, append-only list of events with listeners (the live UI subscribes)."""

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self._events: deque[Event] = deque(maxlen=max_events)
        self.dropped = 0
        self._listeners: list[Callable[[Event], None]] = []

    def emit(self, time_ms: int, kind: str, text: str, **fields: Any) -> Event:
        event = Event(time_ms, kind, text, fields)
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        for listener in self._listeners:
            listener(event)
        return event

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def of_kind(self, *kinds: str) -> list[Event]:
        return [e for e in self._events if e.kind in kinds]

    def texts(self, kinds: Iterable[str] | None = None) -> list[str]:
        wanted = set(kinds) if kinds is not None else None
        return [e.text for e in self._events if wanted is None or e.kind in wanted]
