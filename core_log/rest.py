"""Synchronous request/response to a capacity-limited service: the "without a log" half of the guide.

The guide opens with why messaging exists — "direct synchronous communication
breaks at scale: producers overwhelm consumers … data loss during spikes" — and
later compares messaging with REST ("backpressure: built-in vs hard"). This
module is the REST side of that comparison, running on the same simulated
network and clock as the Kafka cluster, so the two can be put side by side in
one lab:

* :class:`Downstream` — an HTTP service node (think: the dashboard's ingest
  API). It has ``workers`` that each take ``service_ms = workers × 1000 /
  capacity_per_s`` per request, so together they handle ``capacity_per_s``
  requests/s, and a bounded accept queue of ``queue`` requests waiting for a
  worker. A request that finds every worker busy and the queue full is answered
  **503** at once. It can crash: ``"refuse"`` (the process died, the host
  answers: connections are reset and new ones refused) or ``"hang"`` (the
  machine stopped answering: callers find out only by timing out). Work in
  progress or queued at a crash is lost.
* :class:`RestCaller` — a fleet of machines posting telemetry readings directly,
  synchronously, at ``rate_per_s`` (plus :meth:`RestCaller.burst` spikes). A
  synchronous client blocks: it has ``max_in_flight`` connections, each holding
  one reading until it gets an answer, including its ``retries`` after a 503, a
  timeout (``timeout_ms``) or a refused connection, with exponential backoff
  (``backoff_ms`` × 2^(attempt−1), capped at :data:`MAX_BACKOFF_MS`). Readings
  that arrive while every connection is busy wait in a bounded local buffer of
  ``buffer`` readings; when it overflows they are **dropped** — there is nowhere
  else to put them ("never block producers" is exactly what a synchronous call
  cannot promise). A reading whose retries run out is dropped too.
* :class:`RestPipeline` — the two wired together, with counters and bounded
  per-second series on simulated time, and aggregate narration.

Counters (cumulative, in :meth:`RestPipeline.view` ``"counters"``): ``readings``
(taken by the fleet), ``sent`` (HTTP requests, retries included), ``ok``,
``rejected_503``, ``timed_out``, ``refused`` (connection refused or reset),
``retries``, ``dropped`` = ``dropped_buffer_full`` + ``dropped_gave_up``,
``late_responses`` (answers that came after the caller had given up on that
attempt — work the downstream did for nobody), ``processed`` (requests the
downstream completed) and ``duplicates`` (a reading the downstream processed
again because a retry followed a timed-out attempt it had in fact finished),
``latency_p50_ms``/``latency_p99_ms`` (from a reading being taken to its 200 OK).

Per-second series (:data:`SERIES_NAMES`, the last :data:`SERIES_POINTS` seconds):
rates of the counters, latency percentiles of that second's OKs,
``utilisation`` (busy worker time ÷ worker time, 0–1), ``queue_depth``
(downstream), ``buffer_depth`` and ``in_flight`` (caller).

Events are aggregate, never one per request: ``RestRejecting`` when 503s start,
``RestDropping`` in the first second of a dropping episode and then at most
every :data:`DROP_REPORT_INTERVAL_MS` while it lasts (each with the counts since
the previous one and their causes), ``RestRecovered`` after the first second
without drops, with the episode's totals; plus ``DownstreamCrashed`` and
``DownstreamRestarted``.

REST readings are *not* recorded in the checker's history: its model is a
Kafka send to a partition that is acknowledged with an offset, and its
``lost-write`` means "acknowledged, then gone" — a dropped REST reading was
never acknowledged, the caller knows it failed. The counts above are kept here
instead, and ``dropped`` is the REST side's "lost readings".

Deterministic and sans-IO: only the cluster's scheduler and simulated clock are
used, no randomness at all (no jitter), messages go through ``network.py`` so
link latency, loss and isolation apply.

Differences from real systems:

* HTTP is one message each way: no TCP handshake, keep-alive pool, TLS or
  request body size; a "connection" is a slot the caller holds per request.
* The accept queue is the service's (like a listen backlog plus a server's
  request queue); a real stack has several queues (kernel backlog, proxy, thread pool).
* Service time is exact and the same for every request; a real service slows
  down under load (GC, contention) and has a long tail.
* Backoff has no jitter, so retries of a spike arrive in waves.
* A 503 costs the service no worker time; a timed-out request is still
  processed when its turn comes (servers rarely notice a caller has gone).
* Duplicates are detected over the last :data:`REMEMBERED_READINGS` readings
  the downstream processed; an older repeat would be counted as new.
* Latency percentiles come from buckets (exact below 100 ms, two significant
  digits above), so they are within a few per cent.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core_log.errors import require_int

if TYPE_CHECKING:
    from core_log.cluster import Cluster
    from core_log.messages import Envelope

MAX_RATE_PER_S = 10_000  # readings/s the fleet takes
MAX_CAPACITY_PER_S = 10_000  # requests/s the downstream handles
MAX_WORKERS = 64
MAX_QUEUE = 10_000  # the downstream's accept queue, requests
MIN_TIMEOUT_MS = 10
MAX_TIMEOUT_MS = 60_000
MAX_RETRIES = 10
MAX_BACKOFF_MS = 10_000  # also the cap of the exponential backoff
MAX_IN_FLIGHT = 1000  # concurrent connections of the caller
MAX_BUFFER = 100_000  # readings waiting in the caller for a free connection
MAX_BURST_READINGS = 1_000_000
TICK_MS = 10  # the fleet takes rate/100 readings every 10 ms (fractions carried over)
SAMPLE_INTERVAL_MS = 1000
SERIES_POINTS = 600  # the last 10 simulated minutes of per-second points
SPARK_POINTS = 60  # points per series in the view
REMEMBERED_READINGS = 100_000  # readings the downstream remembers to count duplicates
DROP_REPORT_INTERVAL_MS = 5000  # at most one RestDropping per this while an episode lasts
STATUS_OK = 200
STATUS_UNAVAILABLE = 503
CRASH_MODES = ("refuse", "hang")

#: Every setting of a pipeline → (lowest, highest) allowed value; units are in the names.
LIMITS: dict[str, tuple[int, int]] = {
    "rate_per_s": (0, MAX_RATE_PER_S), "timeout_ms": (MIN_TIMEOUT_MS, MAX_TIMEOUT_MS), "retries": (0, MAX_RETRIES),
    "backoff_ms": (0, MAX_BACKOFF_MS), "max_in_flight": (1, MAX_IN_FLIGHT), "buffer": (0, MAX_BUFFER),
    "capacity_per_s": (1, MAX_CAPACITY_PER_S), "workers": (1, MAX_WORKERS), "queue": (0, MAX_QUEUE),
}
CALLER_SETTINGS = ("rate_per_s", "timeout_ms", "retries", "backoff_ms", "max_in_flight", "buffer")
DOWNSTREAM_SETTINGS = ("capacity_per_s", "workers", "queue")

SERIES_NAMES = (
    "readings_per_s", "sent_per_s", "ok_per_s", "rejected_503_per_s", "timed_out_per_s", "refused_per_s",
    "retries_per_s", "dropped_per_s", "latency_p50_ms", "latency_p99_ms", "utilisation", "queue_depth",
    "buffer_depth", "in_flight",
)
_RATE_COUNTERS = ("readings", "sent", "ok", "rejected_503", "timed_out", "refused", "retries", "dropped")
_TRACKED_COUNTERS = _RATE_COUNTERS + ("dropped_buffer_full", "dropped_gave_up")


class RestError(ValueError):
    """A REST pipeline setting or action that is refused; nothing changed. The message says why."""


@dataclass(frozen=True)
class HttpRequest:
    """``POST /readings``: one reading, one attempt."""

    request_id: int
    reading_seq: int
    attempt: int


@dataclass(frozen=True)
class HttpResponse:
    request_id: int
    reading_seq: int
    status: int  # 200 or 503


def _check(name: str, value: Any, low: int, high: int) -> int:
    try:
        require_int(name, value, low, high)
    except ValueError as exc:
        raise RestError(str(exc)) from None
    return int(value)


def check_settings(settings: dict[str, Any]) -> None:
    """Raise RestError naming the first unknown setting or value outside :data:`LIMITS`; changes nothing."""
    for name in sorted(settings):
        if name not in LIMITS:
            raise RestError(f"unknown setting {name!r}; known: {', '.join(sorted(LIMITS))}")
        _check(name, settings[name], *LIMITS[name])


def _n(count: int, noun: str) -> str:
    """``3 readings``, ``1 reading``: a count with its noun."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _bucket(ms: int) -> int:
    """Latency bucket: exact below 100 ms, two significant digits above (bounded memory for percentiles)."""
    if ms < 100:
        return ms
    scale = 10 ** (len(str(ms)) - 2)
    return (ms + scale // 2) // scale * scale


def percentile(buckets: Counter[int], q: float) -> int | None:
    """The ``q`` quantile (0–1) of the latencies counted in ``buckets``; None when there are none."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value in sorted(buckets):
        seen += buckets[value]
        if seen >= rank:
            return value
    return max(buckets)  # pragma: no cover - the loop always reaches rank


class _Worker:
    __slots__ = ("job", "started_ms", "free_at_ms", "token")

    def __init__(self, now_ms: float) -> None:
        self.job: tuple[str, HttpRequest] | None = None
        self.started_ms = now_ms
        self.free_at_ms = now_ms  # fractional: service times need not be whole milliseconds
        self.token = 0


class Downstream:
    """A synchronous HTTP service with ``workers``, a capacity of ``capacity_per_s`` and an accept queue."""

    def __init__(self, cluster: "Cluster", node_id: str = "rest-downstream", *, capacity_per_s: int = 100,
                 workers: int = 4, queue: int = 50) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.alive = True
        self.hung = False
        self.incarnation = 1
        self.capacity_per_s = self.workers = self.queue_limit = 0
        self._pool: list[_Worker] = []
        self._queue: deque[tuple[str, HttpRequest]] = deque()
        self._busy_ms_done = 0.0
        self._remembered: set[tuple[str, int]] = set()
        self._remembered_order: deque[tuple[str, int]] = deque()
        self.counters = {"received": 0, "processed": 0, "rejected_503": 0, "duplicates": 0, "lost_in_crash": 0}
        self.configure(capacity_per_s=capacity_per_s, workers=workers, queue=queue)
        cluster.register_client(self)

    # ── settings ─────────────────────────────────────────────────────────────
    @property
    def service_ms(self) -> float:
        """Time one worker takes per request: workers × 1000 / capacity_per_s."""
        return self.workers * 1000 / self.capacity_per_s

    @property
    def state(self) -> str:
        return "down" if not self.alive else "hung" if self.hung else "up"

    def configure(self, *, capacity_per_s: int | None = None, workers: int | None = None,
                  queue: int | None = None) -> None:
        """Change capacity, workers or queue now; a worker mid-request finishes it at the old speed.

        Extra workers start on queued requests at once; removed ones leave when idle.
        A smaller queue admits nothing new until it is below the limit (nothing queued is thrown away).
        """
        capacity = self.capacity_per_s if capacity_per_s is None else capacity_per_s
        count = self.workers if workers is None else workers
        limit = self.queue_limit if queue is None else queue
        check_settings({"capacity_per_s": capacity, "workers": count, "queue": limit})
        self.capacity_per_s, self.workers, self.queue_limit = capacity, count, limit
        if not self.alive or self.hung:
            return
        now = self.cluster.now_ms()
        while len(self._pool) < self.workers:
            self._pool.append(_Worker(now))
        for worker in [w for w in self._pool if w.job is None][: max(0, len(self._pool) - self.workers)]:
            self._pool.remove(worker)
        self._dispatch()

    # ── requests ─────────────────────────────────────────────────────────────
    def receive(self, envelope: "Envelope") -> None:
        msg = envelope.message
        if not isinstance(msg, HttpRequest) or self.hung:
            return  # a hung service reads nothing and answers nothing
        self.counters["received"] += 1
        worker = self._idle_worker()
        if worker is not None:
            self._start(worker, envelope.src, msg, float(self.cluster.now_ms()))
        elif len(self._queue) < self.queue_limit:
            self._queue.append((envelope.src, msg))
        else:
            self.counters["rejected_503"] += 1
            self.cluster.send(self, envelope.src, HttpResponse(msg.request_id, msg.reading_seq, STATUS_UNAVAILABLE))

    def _idle_worker(self) -> _Worker | None:
        if len(self._pool) > self.workers:
            return None  # shrinking: busy extras leave when they finish
        for worker in self._pool:
            if worker.job is None:
                return worker
        return None

    def _dispatch(self) -> None:
        now = float(self.cluster.now_ms())
        while self._queue:
            worker = self._idle_worker()
            if worker is None:
                return
            src, request = self._queue.popleft()
            self._start(worker, src, request, now)

    def _start(self, worker: _Worker, src: str, request: HttpRequest, start_ms: float) -> None:
        worker.job = (src, request)
        worker.started_ms = start_ms
        worker.free_at_ms = start_ms + self.service_ms
        worker.token += 1
        token, incarnation = worker.token, self.incarnation
        delay = math.ceil(worker.free_at_ms) - self.cluster.now_ms()
        self.cluster.schedule(max(0, delay), lambda: self._finish(worker, token, incarnation))

    def _finish(self, worker: _Worker, token: int, incarnation: int) -> None:
        if incarnation != self.incarnation or token != worker.token or worker.job is None:
            return  # the process crashed (or hung) meanwhile: that work is gone
        src, request = worker.job
        worker.job = None
        self._busy_ms_done += worker.free_at_ms - worker.started_ms
        self.counters["processed"] += 1
        identity = (src, request.reading_seq)
        if identity in self._remembered:
            self.counters["duplicates"] += 1
        else:
            self._remembered.add(identity)
            self._remembered_order.append(identity)
            if len(self._remembered_order) > REMEMBERED_READINGS:
                self._remembered.discard(self._remembered_order.popleft())
        self.cluster.send(self, src, HttpResponse(request.request_id, request.reading_seq, STATUS_OK))
        if len(self._pool) > self.workers:
            self._pool.remove(worker)  # a removed worker leaves once its request is done
            return
        if self._queue:
            next_src, next_request = self._queue.popleft()
            self._start(worker, next_src, next_request, worker.free_at_ms)  # back to back, fractions kept

    # ── faults ───────────────────────────────────────────────────────────────
    def crash(self, mode: str = "refuse") -> None:
        """``refuse``: the process dies, callers' connections are reset and new ones refused. ``hang``: it
        stops answering, and callers learn only by timing out. Queued and in-progress requests are lost."""
        if mode not in CRASH_MODES:
            raise RestError(f"mode must be one of {', '.join(CRASH_MODES)}, got {mode!r}")
        if not self.alive or self.hung:
            raise RestError(f"the downstream is already {self.state}")
        lost = self._abandon_work()
        self.incarnation += 1
        if mode == "refuse":
            self.alive = False
            self.cluster.network.reset_connections(self.node_id)
            how = ("its process died: callers' open connections are reset and new ones refused, so every "
                   "reading fails fast and is retried or dropped")
        else:
            self.hung = True
            how = ("it stopped answering: callers hear nothing and each request waits for its full timeout, "
                   "holding a connection all that time")
        self.cluster.events.emit(self.cluster.now_ms(), "DownstreamCrashed",
                                 f"The REST downstream {self.node_id} crashed ({mode}): {how}. {lost} request(s) "
                                 f"it was working on or had queued are lost.", node=self.node_id, mode=mode, lost=lost)

    def restart(self) -> None:
        if self.alive and not self.hung:
            raise RestError("the downstream is running")
        self.alive, self.hung = True, False
        self.incarnation += 1
        now = self.cluster.now_ms()
        self._pool = [_Worker(now) for _ in range(self.workers)]
        self.cluster.events.emit(now, "DownstreamRestarted",
                                 f"The REST downstream {self.node_id} is back with {self.workers} workers "
                                 f"({self.capacity_per_s} requests/s); what the fleet dropped meanwhile stays lost.",
                                 node=self.node_id)

    def _abandon_work(self) -> int:
        now = self.cluster.now_ms()
        lost = len(self._queue)
        self._queue.clear()
        for worker in self._pool:
            if worker.job is not None:
                self._busy_ms_done += max(0.0, min(now, worker.free_at_ms) - worker.started_ms)
                worker.job = None
                lost += 1
        self._pool = []
        self.counters["lost_in_crash"] += lost
        return lost

    # ── reading ──────────────────────────────────────────────────────────────
    def busy_ms_until(self, time_ms: int) -> float:
        """Worker time spent serving requests from the start up to ``time_ms`` (all workers together)."""
        busy = self._busy_ms_done
        for worker in self._pool:
            if worker.job is not None:
                busy += max(0.0, min(time_ms, worker.free_at_ms) - worker.started_ms)
        return busy

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def busy_workers(self) -> int:
        return sum(1 for w in self._pool if w.job is not None)

    def describe(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "state": self.state, "capacity_per_s": self.capacity_per_s,
                "workers": self.workers, "busy_workers": self.busy_workers, "queue": self.queue_limit,
                "queue_depth": self.queue_depth, "service_ms": round(self.service_ms, 3), **self.counters}


class _Call:
    """One reading held by one connection until it is answered 200 or given up."""

    __slots__ = ("seq", "taken_ms", "attempt", "request_id")

    def __init__(self, seq: int, taken_ms: int) -> None:
        self.seq, self.taken_ms, self.attempt, self.request_id = seq, taken_ms, 0, 0


class RestCaller:
    """A fleet posting readings synchronously to ``downstream_id``; see the module docstring."""

    def __init__(self, cluster: "Cluster", node_id: str = "rest-fleet", downstream_id: str = "rest-downstream", *,
                 rate_per_s: int = 50, timeout_ms: int = 1000, retries: int = 2, backoff_ms: int = 100,
                 max_in_flight: int = 8, buffer: int = 100) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.downstream_id = downstream_id
        self.alive = True
        self.incarnation = 1
        self.counters = {"readings": 0, "sent": 0, "ok": 0, "rejected_503": 0, "timed_out": 0, "refused": 0,
                         "retries": 0, "dropped": 0, "dropped_buffer_full": 0, "dropped_gave_up": 0,
                         "late_responses": 0}
        self.latency_buckets: Counter[int] = Counter()  # all OKs so far
        self.recent_latency_buckets: Counter[int] = Counter()  # OKs since the last sample (the pipeline clears it)
        self._buffer: deque[tuple[int, int]] = deque()  # (reading seq, taken at ms)
        self._calls: dict[int, _Call] = {}  # request id → the call waiting for its answer
        self.connections_in_use = 0  # calls waiting for an answer or sleeping before a retry
        self._request_id = 0
        self._carry = 0.0
        self.running = False
        self._generation = 0
        self.rate_per_s = self.timeout_ms = self.retries = self.backoff_ms = self.max_in_flight = 0
        self.buffer_limit = 0
        self.configure(rate_per_s=rate_per_s, timeout_ms=timeout_ms, retries=retries, backoff_ms=backoff_ms,
                       max_in_flight=max_in_flight, buffer=buffer)
        cluster.register_client(self)

    def configure(self, *, rate_per_s: int | None = None, timeout_ms: int | None = None, retries: int | None = None,
                  backoff_ms: int | None = None, max_in_flight: int | None = None, buffer: int | None = None) -> None:
        """Change settings now; calls already in flight keep their timeout, and a smaller buffer drops nothing
        already in it (new readings overflow until it is below the limit)."""
        values = {
            "rate_per_s": self.rate_per_s if rate_per_s is None else rate_per_s,
            "timeout_ms": self.timeout_ms if timeout_ms is None else timeout_ms,
            "retries": self.retries if retries is None else retries,
            "backoff_ms": self.backoff_ms if backoff_ms is None else backoff_ms,
            "max_in_flight": self.max_in_flight if max_in_flight is None else max_in_flight,
            "buffer": self.buffer_limit if buffer is None else buffer,
        }
        check_settings(values)
        self.rate_per_s, self.timeout_ms, self.retries = values["rate_per_s"], values["timeout_ms"], values["retries"]
        self.backoff_ms, self.max_in_flight, self.buffer_limit = (values["backoff_ms"], values["max_in_flight"],
                                                                  values["buffer"])
        self._pump()  # more connections: buffered readings go out now

    # ── pacing ───────────────────────────────────────────────────────────────
    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._generation += 1
        generation = self._generation

        def tick() -> None:
            if self.running and generation == self._generation:
                self._carry += self.rate_per_s * TICK_MS / 1000
                count = int(self._carry)
                self._carry -= count
                self.take(count)
                self.cluster.schedule(TICK_MS, tick)

        self.cluster.schedule(TICK_MS, tick)

    def stop(self) -> None:
        self.running = False

    def burst(self, readings: int) -> None:
        """``readings`` arrive at once (a spike), on top of the steady rate."""
        self.take(_check("readings", readings, 1, MAX_BURST_READINGS))

    def take(self, count: int) -> None:
        """``count`` new readings: each gets a free connection, or waits in the buffer, or is dropped."""
        now = self.cluster.now_ms()
        for _ in range(count):
            self.counters["readings"] += 1
            seq = self.counters["readings"]
            if not self._buffer and self.connections_in_use < self.max_in_flight:
                self.connections_in_use += 1
                self._attempt(_Call(seq, now))
            elif len(self._buffer) < self.buffer_limit:
                self._buffer.append((seq, now))
            else:
                self._drop("dropped_buffer_full")

    # ── calls ────────────────────────────────────────────────────────────────
    def _attempt(self, call: _Call) -> None:
        self._request_id += 1
        request_id = self._request_id
        call.attempt += 1
        call.request_id = request_id
        self._calls[request_id] = call
        self.counters["sent"] += 1
        self.cluster.send(self, self.downstream_id, HttpRequest(request_id, call.seq, call.attempt))

        def timeout() -> None:
            if self._calls.pop(request_id, None) is not None:
                self.counters["timed_out"] += 1
                self._failed(call)

        self.cluster.schedule(self.timeout_ms, timeout)

    def receive(self, envelope: "Envelope") -> None:
        msg = envelope.message
        if not isinstance(msg, HttpResponse):
            return
        call = self._calls.pop(msg.request_id, None)
        if call is None:
            self.counters["late_responses"] += 1  # that attempt had timed out: the work was done for nobody
            return
        if msg.status == STATUS_OK:
            self.counters["ok"] += 1
            bucket = _bucket(self.cluster.now_ms() - call.taken_ms)
            self.latency_buckets[bucket] += 1
            self.recent_latency_buckets[bucket] += 1
            self._release()
        else:
            self.counters["rejected_503"] += 1
            self._failed(call)

    def connection_refused(self, envelope: "Envelope") -> None:
        """The downstream's host answered with a reset: its process is not running."""
        msg = envelope.message
        if isinstance(msg, HttpRequest):
            call = self._calls.pop(msg.request_id, None)
            if call is not None:
                self.counters["refused"] += 1
                self._failed(call)

    def connection_reset(self, node_id: str) -> None:
        """The downstream's process died with our requests open: each fails now, as a reset tells a client."""
        if node_id != self.downstream_id:
            return
        for request_id in sorted(self._calls):
            call = self._calls.pop(request_id)
            self.counters["refused"] += 1
            self._failed(call)

    def _failed(self, call: _Call) -> None:
        if call.attempt <= self.retries:
            self.counters["retries"] += 1
            delay = min(self.backoff_ms * 2 ** (call.attempt - 1), MAX_BACKOFF_MS)
            self.cluster.schedule(delay, lambda: self._attempt(call))  # the connection stays held: it blocks
            return
        self._drop("dropped_gave_up")
        self._release()

    def _drop(self, why: str) -> None:
        self.counters[why] += 1
        self.counters["dropped"] += 1

    def _release(self) -> None:
        self.connections_in_use -= 1
        self._pump()

    def _pump(self) -> None:
        while self._buffer and self.connections_in_use < self.max_in_flight:
            seq, taken_ms = self._buffer.popleft()
            self.connections_in_use += 1
            self._attempt(_Call(seq, taken_ms))

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def describe(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "running": self.running, "rate_per_s": self.rate_per_s,
                "timeout_ms": self.timeout_ms, "retries": self.retries, "backoff_ms": self.backoff_ms,
                "max_in_flight": self.max_in_flight, "buffer": self.buffer_limit, "in_flight": self.connections_in_use,
                "buffered": self.buffered, **self.counters}


class RestPipeline:
    """A :class:`RestCaller` posting to a :class:`Downstream`, sampled every second of simulated time."""

    def __init__(self, cluster: "Cluster", name: str = "rest", *, rate_per_s: int = 50, capacity_per_s: int = 100,
                 workers: int = 4, queue: int = 50, timeout_ms: int = 1000, retries: int = 2, backoff_ms: int = 100,
                 max_in_flight: int = 8, buffer: int = 100) -> None:
        self.cluster = cluster
        self.name = name
        check_settings({"rate_per_s": rate_per_s, "capacity_per_s": capacity_per_s, "workers": workers,
                        "queue": queue, "timeout_ms": timeout_ms, "retries": retries, "backoff_ms": backoff_ms,
                        "max_in_flight": max_in_flight, "buffer": buffer})
        for node in (f"{name}-downstream", f"{name}-fleet"):
            if node in cluster.network.nodes:
                raise RestError(f"a node named {node!r} exists already")
        self.downstream = Downstream(cluster, f"{name}-downstream", capacity_per_s=capacity_per_s, workers=workers,
                                     queue=queue)
        self.caller = RestCaller(cluster, f"{name}-fleet", self.downstream.node_id, rate_per_s=rate_per_s,
                                 timeout_ms=timeout_ms, retries=retries, backoff_ms=backoff_ms,
                                 max_in_flight=max_in_flight, buffer=buffer)
        self._series: dict[str, deque[Any]] = {n: deque(maxlen=SERIES_POINTS) for n in SERIES_NAMES}
        self._latest: dict[str, Any] = {n: None for n in SERIES_NAMES}
        self._previous = self._counts()
        self._previous_busy_ms = 0.0
        self._previous_ms = cluster.now_ms()
        self._last_503_ms = -2 * DROP_REPORT_INTERVAL_MS
        self._episode: dict[str, int] | None = None  # the dropping episode under way: totals and report window
        self._unreported: Counter[str] = Counter()
        self._last_report_ms = -DROP_REPORT_INTERVAL_MS
        cluster.events.emit(cluster.now_ms(), "RestPipelineAdded", self._added_text(), pipeline=name)
        self.caller.start()
        cluster.schedule(SAMPLE_INTERVAL_MS, self._sample)

    def _added_text(self) -> str:
        c, d = self.caller, self.downstream
        return (f"A fleet posts {c.rate_per_s} readings/s straight to a REST service that handles "
                f"{d.capacity_per_s} requests/s ({d.workers} workers, a queue of {d.queue_limit}); the fleet waits "
                f"for each answer on one of {c.max_in_flight} connections, up to {c.timeout_ms} ms, retries "
                f"{c.retries} times, and can hold {c.buffer_limit} readings meanwhile.")

    def configure(self, **settings: int) -> None:
        """Change caller settings (rate_per_s, timeout_ms, retries, backoff_ms, max_in_flight, buffer) and
        downstream settings (capacity_per_s, workers, queue); unknown names are refused before anything changes."""
        check_settings(settings)  # all of them before changing any
        caller = {k: v for k, v in settings.items() if k in CALLER_SETTINGS}
        downstream = {k: v for k, v in settings.items() if k in DOWNSTREAM_SETTINGS}
        if downstream:
            self.downstream.configure(**downstream)
        if caller:
            self.caller.configure(**caller)

    # ── sampling ─────────────────────────────────────────────────────────────
    def _counts(self) -> dict[str, int]:
        return {name: self.caller.counters[name] for name in _TRACKED_COUNTERS}

    def _sample(self) -> None:
        now = self.cluster.now_ms()
        counts = self._counts()
        elapsed_s = max(1, now - self._previous_ms) / 1000
        delta = {name: counts[name] - self._previous[name] for name in _TRACKED_COUNTERS}
        busy = self.downstream.busy_ms_until(now)
        worker_ms = self.downstream.workers * max(1, now - self._previous_ms)
        recent = self.caller.recent_latency_buckets
        point: dict[str, Any] = {f"{name}_per_s": round(delta[name] / elapsed_s, 1) for name in _RATE_COUNTERS}
        point.update({
            "latency_p50_ms": percentile(recent, 0.5), "latency_p99_ms": percentile(recent, 0.99),
            "utilisation": round(min(1.0, (busy - self._previous_busy_ms) / worker_ms), 3),
            "queue_depth": self.downstream.queue_depth, "buffer_depth": self.caller.buffered,
            "in_flight": self.caller.connections_in_use,
        })
        for name in SERIES_NAMES:
            self._series[name].append(point[name])
        self._latest = point
        recent.clear()
        self._narrate(now, delta)
        self._previous, self._previous_busy_ms, self._previous_ms = counts, busy, now
        self.cluster.schedule(SAMPLE_INTERVAL_MS, self._sample)

    def _narrate(self, now: int, delta: dict[str, int]) -> None:
        c, d = self.caller, self.downstream
        if delta["rejected_503"] and now - self._last_503_ms > DROP_REPORT_INTERVAL_MS:
            self.cluster.events.emit(
                now, "RestRejecting",
                f"The downstream answered 503 to {_n(delta['rejected_503'], 'request')} in the last second: its "
                f"{d.workers} workers handle {d.capacity_per_s} requests/s and its queue of {d.queue_limit} is full. "
                f"The fleet retries each after {c.backoff_ms} ms and gives up after {c.retries} retries.",
                pipeline=self.name, rejected=delta["rejected_503"])
        if delta["rejected_503"]:
            self._last_503_ms = now  # a new RestRejecting only after 5 s without any 503
        for name in ("rejected_503", "timed_out", "refused", "dropped", "dropped_buffer_full", "dropped_gave_up"):
            self._unreported[name] += delta[name]
        if delta["dropped"]:
            if self._episode is None:
                self._episode = {"since_ms": now - SAMPLE_INTERVAL_MS, "dropped": 0, "full": 0, "gave_up": 0}
            if now - self._last_report_ms >= DROP_REPORT_INTERVAL_MS:
                self._report_drops(now)
        elif self._episode is not None:
            self._account_episode()
            e = self._episode
            parts = [text for count, text in ((e["gave_up"], f"{e['gave_up']} after their retries"),
                                              (e["full"], f"{e['full']} because its buffer was full")) if count]
            self.cluster.events.emit(
                now, "RestRecovered",
                f"The fleet dropped nothing in the last second: it keeps up again. Over the "
                f"{(now - SAMPLE_INTERVAL_MS - e['since_ms']) // 1000} s before, it dropped {_n(e['dropped'], 'reading')} "
                f"({', '.join(parts)}) — they are gone: a REST call leaves no log to replay.",
                pipeline=self.name, dropped=e["dropped"])
            self._episode = None
            self._unreported.clear()
        else:
            self._unreported.clear()  # nothing dropped: 503s and timeouts that were retried in time are not news

    def _account_episode(self) -> None:
        assert self._episode is not None
        self._episode["dropped"] += self._unreported["dropped"]
        self._episode["full"] += self._unreported["dropped_buffer_full"]
        self._episode["gave_up"] += self._unreported["dropped_gave_up"]

    def _report_drops(self, now: int) -> None:
        c, d = self.caller, self.downstream
        u = self._unreported
        seconds = max(1, min(now - self._last_report_ms, now - self._episode["since_ms"]) // 1000)  # type: ignore[index]
        causes = []
        if u["rejected_503"]:
            causes.append(f"the downstream answered 503 to {_n(u['rejected_503'], 'request')} (its queue of "
                          f"{d.queue_limit} was full)")
        if u["timed_out"]:
            causes.append(f"{_n(u['timed_out'], 'request')} timed out after {c.timeout_ms} ms")
        if u["refused"]:
            causes.append(f"{_n(u['refused'], 'connection')} refused or reset (the downstream is {d.state})")
        drops = []
        if u["dropped_gave_up"]:
            drops.append(f"{u['dropped_gave_up']} after {c.retries} retries")
        if u["dropped_buffer_full"]:
            drops.append(f"{u['dropped_buffer_full']} because its buffer of {c.buffer_limit} was full while all "
                         f"{c.max_in_flight} connections waited")
        when = "In the last second" if seconds == 1 else f"In the last {seconds} s"
        lead = f"{when} {' and '.join(causes)}, so the fleet" if causes else f"{when} the fleet"
        self.cluster.events.emit(
            now, "RestDropping",
            f"{lead} dropped {_n(u['dropped'], 'reading')} ({', '.join(drops)}) — a synchronous caller has nowhere "
            f"to put what the service cannot take.",
            pipeline=self.name, dropped=u["dropped"], rejected=u["rejected_503"], timed_out=u["timed_out"],
            refused=u["refused"])
        self._account_episode()
        self._unreported.clear()
        self._last_report_ms = now

    # ── reading ──────────────────────────────────────────────────────────────
    def series(self, name: str) -> list[Any]:
        """The kept per-second points of one series (oldest first)."""
        if name not in SERIES_NAMES:
            raise RestError(f"unknown series {name!r}; known: {', '.join(SERIES_NAMES)}")
        return list(self._series[name])

    def view(self) -> dict[str, Any]:
        """Counters, the latest per-second values and sparkline series, as JSON-ready data."""
        caller, downstream = self.caller.describe(), self.downstream.describe()
        counters = {name: caller[name] for name in self.caller.counters}
        counters.update({"processed": downstream["processed"], "duplicates": downstream["duplicates"],
                         "lost_in_crash": downstream["lost_in_crash"],
                         "latency_p50_ms": percentile(self.caller.latency_buckets, 0.5),
                         "latency_p99_ms": percentile(self.caller.latency_buckets, 0.99)})
        return {"name": self.name, "caller": caller, "downstream": downstream, "counters": counters,
                "latest": dict(self._latest), "dropping": self._episode is not None,
                "sparks": {name: list(self._series[name])[-SPARK_POINTS:] for name in SERIES_NAMES}}


__all__ = ["Downstream", "HttpRequest", "HttpResponse", "RestCaller", "RestError", "RestPipeline", "percentile"]
