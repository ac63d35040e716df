"""Time for the engine: a ``Clock`` is injected, never read from the wall.

``core_log`` never calls ``time.time()``. Every component that needs "now" is
handed a :class:`Clock`; tests and the simulator use :class:`SimClock` and move
it forward explicitly, so a run with the same seed and commands is the same run.
The web runtime maps wall time (times a speed factor) onto a ``SimClock``.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Anything that can say what time it is, in milliseconds since the epoch."""

    def now_ms(self) -> int: ...


class SimClock:
    """A clock that moves only when told to. Time never goes backwards."""

    def __init__(self, start_ms: int = 0) -> None:
        if start_ms < 0:
            raise ValueError(f"start_ms must be >= 0, got {start_ms}")
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, delta_ms: int) -> int:
        """Move forward by ``delta_ms`` (>= 0) and return the new time."""
        if delta_ms < 0:
            raise ValueError(f"time cannot go backwards (delta_ms={delta_ms})")
        self._now_ms += delta_ms
        return self._now_ms

    def advance_to(self, to_ms: int) -> int:
        """Move forward to ``to_ms`` (a no-op if already there)."""
        if to_ms < self._now_ms:
            raise ValueError(f"time cannot go backwards ({to_ms} < {self._now_ms})")
        self._now_ms = to_ms
        return self._now_ms
