"""How a listener's asyncio loop reaches the cluster, which is single-threaded and may live on another thread.

The engine is not thread-safe: every touch of a ``Cluster`` must happen on the
thread that advances it. :class:`SameThread` is for ``python -m core_log serve``
and the tests' harness, where the listener's loop also drives the cluster;
:class:`EngineThread` is for the web app, where the lab runtime's engine thread
owns every lab and the listeners run on a loop of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)


class SameThread:
    """The cluster lives on the listener's own loop thread: run things now."""

    async def call(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def post(self, fn: Callable[[], Any]) -> None:
        fn()


class EngineThread:
    """The cluster lives on another thread; ``submit(fn)`` queues ``fn`` there and returns a Future of its result."""

    def __init__(self, submit: Callable[[Callable[[], Any]], concurrent.futures.Future]) -> None:
        self._submit = submit

    async def call(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.wrap_future(self._submit(fn))

    def post(self, fn: Callable[[], Any]) -> None:
        self._submit(fn).add_done_callback(_log_failure)


def _log_failure(future: concurrent.futures.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a wire request failed on the engine thread", exc_info=future.exception())


Bridge = SameThread | EngineThread
