"""``ClientFuture``: the outcome of a client call that completes later, in simulated time.

Nothing in the engine blocks: a commit, an offset reset or a transaction step
returns a future at once, and the cluster's event loop completes it when the
answer arrives. The caller either advances the cluster until ``done`` or adds a
callback. ``error`` is a Kafka error name (or a sentence for a refusal), ``None``
when the call succeeded; ``result`` is what the call returns, if anything.
"""

from __future__ import annotations

from typing import Any, Callable


class ClientFuture:
    __slots__ = ("done", "error", "result", "_callbacks")

    def __init__(self) -> None:
        self.done = False
        self.error: str | None = None
        self.result: Any = None
        self._callbacks: list[Callable[[Any], None]] = []

    @property
    def ok(self) -> bool:
        return self.done and self.error is None

    def add_callback(self, callback: Callable[[Any], None]) -> None:
        """Run ``callback(self)`` when done (at once if it already is)."""
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def _finish(self, result: Any = None, error: str | None = None) -> None:
        if self.done:
            return
        self.done, self.result, self.error = True, result, error
        for callback in self._callbacks:
            callback(self)
        self._callbacks.clear()
