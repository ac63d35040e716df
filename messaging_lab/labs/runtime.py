"""The engine runtime: one thread per process hosts every open lab (DESIGN.md §3).

A lab's :class:`~core_log.lab.LabWorld` never runs on Daphne's event loop. The
runtime thread owns every world; views and WebSocket consumers hand it work
through a thread-safe queue (:meth:`LabRuntime.call` from sync code,
:meth:`LabRuntime.acall` from async code) and get the result back. Nothing
else touches a world, so no locks are needed around the engine.

Each tick the thread:

1. runs the queued calls (commands, snapshots, viewers joining or leaving);
2. advances every awake, unpaused lab towards ``wall time × speed`` in slices of
   :data:`SLICE_SIM_MS` simulated ms, spending at most :data:`SLICE_BUDGET_S` of
   wall time per lab per tick — a lab that cannot keep up runs slower than asked
   (and says so in its frames) instead of starving the others;
3. at most every :data:`FRAME_INTERVAL_S` per lab, and only if something
   changed, saves the lab's simulated time (the recovery checkpoint) and pushes
   a frame — the sections of the view that changed plus the new events — to the
   lab's channel-layer group, on Daphne's own event loop.

A lab is awake while someone watches it or for :data:`IDLE_AFTER_S` after its
last command; asleep, its simulated time stands still. After a restart a lab is
rebuilt on first use by replaying its command log (:meth:`LabWorld.replay`) up
to the saved simulated time, so everything a viewer had been shown comes back.

**Timeline.** Every :data:`CHECKPOINT_SIM_MS` of simulated time the engine
thread snapshots each awake lab (:mod:`core_log.snapshot`) into the lab's
:class:`~core_log.snapshot.CheckpointStore` (bounded by
:data:`MAX_CHECKPOINT_BYTES` and :data:`MAX_CHECKPOINTS`; past a bound older
checkpoints are thinned out, so the kept ones stay spread over the whole run; each
snapshot shares unchanged file chunks and sealed history blocks with the previous one;
in memory only; a lab running on its own spends at most :data:`MAX_CHECKPOINT_SHARE`
of the thread's wall time on them). :func:`rebuild_at` rebuilds the lab as it was at any moment T —
the nearest checkpoint ≤ T plus the logged commands after it (control kinds
skipped) — in the *calling* thread, never touching the live world: that is the
rewind view and the fast path of a fork. Checkpoints do not survive a restart;
the first rebuild after one replays the whole log (as before) and takes new
checkpoints in its last :data:`REBUILD_CHECKPOINT_WINDOW_MS`, so recent rewinds are
fast again once it is done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import queue
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction

from core_log.lab import HIDDEN_EVENT_KINDS, PACING_KINDS, LabCommandError, LabWorld
from core_log.snapshot import (MAX_CHECKPOINT_BYTES, MAX_CHECKPOINTS, Checkpoint, CheckpointStore, SnapshotError,
                               replay_commands, restore, snapshot)
from messaging_lab.labs.models import Lab, LabCommand

log = logging.getLogger(__name__)

SPEEDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
TICK_S = 0.02
FRAME_INTERVAL_S = 0.1  # at most 10 frames per second per lab
SLICE_SIM_MS = 50
SLICE_BUDGET_S = 0.02
IDLE_AFTER_S = 120.0
MAX_CATCH_UP_MS = 2000  # a lab that fell behind does not try to run more than this at once
CALL_TIMEOUT_S = 30.0
WRITE_RETRY_S = 5.0  # how long an engine-thread write that records a done command retries a busy database
CONTROL_KINDS = PACING_KINDS + ("fast_forward",)  # pace simulated time; logged, skipped by replay
MAX_FAST_FORWARD_S = 300  # simulated seconds one fast-forward may run (it holds the engine thread meanwhile)
GUIDE_EVAL_INTERVAL_S = 0.25  # a guided lab re-checks its step this often (wall time)
EVENTS_PER_FRAME = 200  # a burst of more events in one frame sends the newest 200
ADMIN_TIMEOUT_MS = 20_000  # simulated time an offset reset may take before it is reported as failed
CHECKPOINT_INTERVAL_S = 1.0  # an awake lab nobody watches still saves its simulated time this often
CHECKPOINT_SIM_MS = 5_000  # simulated ms between two timeline checkpoints of a lab (a recent rewind replays at most this)
#: Taking checkpoints may cost at most this share of the engine thread's wall time: a snapshot that took s
#: seconds defers the next one by s × (1/share − 1) (a long lab's snapshots are bigger, so it is checkpointed
#: less often; a fast-forward skips the boundaries that come too soon).
MAX_CHECKPOINT_SHARE = 0.1
#: A rebuild from the whole log (after a restart, an import) takes checkpoints only in its last this many
#: simulated ms: the memory bound keeps only the newest anyway, and each one costs a snapshot.
REBUILD_CHECKPOINT_WINDOW_MS = 120_000
__all__ = ["CHECKPOINT_SIM_MS", "MAX_CHECKPOINTS", "MAX_CHECKPOINT_BYTES", "LabRuntime", "RunningLab", "rebuild_at",
           "rewind_view", "runtime"]


def group_name(lab_id: str) -> str:
    return f"lab.{lab_id}"


@dataclass
class RunningLab:
    lab_id: str
    world: LabWorld
    speed: float
    paused: bool
    viewers: int = 0
    last_touch: float = field(default_factory=time.monotonic)
    last_wall: float = field(default_factory=time.monotonic)
    last_frame: float = 0.0
    last_checkpoint: float = 0.0
    sent: dict[str, str] = field(default_factory=dict)  # section → JSON last pushed
    events_sent: int = 0  # how many events (ever emitted) were pushed
    behind: bool = False
    first_unsent_event_wall: float | None = None  # wall time (time.time) of the oldest event not yet pushed
    notices: list[dict[str, Any]] = field(default_factory=list)
    next_seq: int = 1
    guide: Any = None  # a guided lab's guide (evaluate(world) -> changed, view(), save()), else None
    last_guide_eval: float = 0.0
    checkpoints: CheckpointStore = field(default_factory=CheckpointStore)  # the timeline's snapshots (memory only)
    next_checkpoint_ms: int = CHECKPOINT_SIM_MS
    checkpoint_error: str | None = None  # why this lab stopped taking checkpoints, if it did
    checkpoint_not_before: float = 0.0  # wall time (monotonic) before which a paced checkpoint is skipped
    last_snapshot_s: float = 0.0  # how long the last snapshot held the engine thread
    wire_open: bool = False  # Kafka listeners are open for real clients (labs/wire.py): it runs in real time

    @property
    def awake(self) -> bool:
        return self.wire_open or self.viewers > 0 or time.monotonic() - self.last_touch < IDLE_AFTER_S


def _write_retrying(write: Callable[[], Any]) -> None:
    """Run a database write from the engine thread, retrying while SQLite reports a table locked.

    A file database waits out another writer itself (its busy timeout); SQLite's shared-cache
    in-memory database, which the tests use, answers "table is locked" at once instead. A write that
    records what the world already did is retried for up to WRITE_RETRY_S rather than dropped.
    """
    deadline = time.monotonic() + WRITE_RETRY_S
    while True:
        try:
            write()
            return
        except DatabaseError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


class LabRuntime:
    """The process's engine thread and the labs it hosts."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future]] = queue.Queue()
        self._labs: dict[str, RunningLab] = {}
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        #: Set by the exercises app: ``guide_loader(lab) -> guide or None`` for a lab's guided steps.
        self.guide_loader: Callable[[Lab], Any] | None = None
        #: Called on the engine thread with a lab id when its world goes away (deleted, replaced, unloaded);
        #: the wire listeners (labs/wire.py) close theirs. A hook must not wait for the engine thread.
        self.forget_hooks: list[Callable[[str], None]] = []

    # ── talking to the engine thread ─────────────────────────────────────────
    def start(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="lab-engine", daemon=True)
                self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        self.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((fn, future))
        return future

    def call(self, fn: Callable[[], Any], timeout: float = CALL_TIMEOUT_S) -> Any:
        """Run ``fn`` on the engine thread and return its result (from sync code: views, tests)."""
        return self.submit(fn).result(timeout)

    async def acall(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the engine thread (from async code: WebSocket consumers)."""
        self._loop = asyncio.get_running_loop()  # frames are pushed on the server's (Daphne's) loop
        return await asyncio.wrap_future(self.submit(fn))

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._labs.clear()

    # ── engine thread ────────────────────────────────────────────────────────
    def _run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            self._drain_calls()
            for running in list(self._labs.values()):
                try:
                    self._step(running)
                except Exception:  # a broken lab must not stop the others
                    log.exception("lab %s failed to advance; it is paused", running.lab_id)
                    running.paused = True
            if self._labs:
                try:
                    close_old_connections()  # this thread's own connection, as after a request
                except Exception:
                    log.exception("closing the engine thread's database connection failed")
            spent = time.monotonic() - started
            if spent < TICK_S:
                try:
                    fn, future = self._queue.get(timeout=TICK_S - spent)
                    self._execute(fn, future)
                except queue.Empty:
                    pass

    def _drain_calls(self) -> None:
        while True:
            try:
                fn, future = self._queue.get_nowait()
            except queue.Empty:
                return
            self._execute(fn, future)

    @staticmethod
    def _execute(fn: Callable[[], Any], future: concurrent.futures.Future) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the caller, who turns it into an error message
            future.set_exception(exc)

    def _step(self, running: RunningLab) -> None:
        now = time.monotonic()
        wall_ms = (now - running.last_wall) * 1000
        running.last_wall = now
        world = running.world
        events_before = world.cluster.events.dropped + len(world.cluster.events)
        if running.awake and not running.paused:
            target = world.now_ms() + min(int(wall_ms * running.speed), MAX_CATCH_UP_MS)
            deadline = now + SLICE_BUDGET_S
            while world.now_ms() < target and time.monotonic() < deadline:
                world.advance(min(target, world.now_ms() + SLICE_SIM_MS))
            running.behind = world.now_ms() < target
        self._maybe_snapshot(running, paced=True)
        if running.guide is not None and now - running.last_guide_eval >= GUIDE_EVAL_INTERVAL_S:
            running.last_guide_eval = now
            running.guide.evaluate(world)  # saves the learner's progress when a check or the step changes
        if running.first_unsent_event_wall is None and \
                world.cluster.events.dropped + len(world.cluster.events) > events_before:
            running.first_unsent_event_wall = time.time()
        if now - running.last_frame >= FRAME_INTERVAL_S and (running.viewers or running.notices):
            self._publish(running, now)
        elif running.awake and now - running.last_checkpoint >= CHECKPOINT_INTERVAL_S:
            self._checkpoint(running, now)

    def _maybe_snapshot(self, running: RunningLab, paced: bool = False) -> None:
        """Take a timeline checkpoint if simulated time reached the next multiple of CHECKPOINT_SIM_MS.

        Whoever moves the lab (its own pace, a command, a fast-forward), checkpoints take at most
        MAX_CHECKPOINT_SHARE of the engine thread: a checkpoint due too soon after an expensive one is
        skipped (the next boundary after the deferral is taken). ``paced`` is kept for callers' clarity.
        """
        now_ms = running.world.now_ms()
        if now_ms < running.next_checkpoint_ms:
            return
        if time.monotonic() < running.checkpoint_not_before:
            return  # too soon after the last (expensive) snapshot; the next tick past the deferral takes it
        running.next_checkpoint_ms = (now_ms // CHECKPOINT_SIM_MS + 1) * CHECKPOINT_SIM_MS
        if running.checkpoint_error is not None:
            return
        started = time.monotonic()
        try:
            newest = running.checkpoints.newest()
            running.checkpoints.add(Checkpoint(snapshot(running.world, like=newest.snapshot if newest else None),
                                               running.next_seq - 1))
        except SnapshotError as exc:  # the lab runs on; rewinds and forks fall back to a full replay
            running.checkpoint_error = str(exc)
            log.exception("lab %s cannot be checkpointed; rewind will replay from the start", running.lab_id)
        running.last_snapshot_s = time.monotonic() - started
        running.checkpoint_not_before = time.monotonic() + running.last_snapshot_s * (1 / MAX_CHECKPOINT_SHARE - 1)

    def checkpoint_info(self, lab_id: str) -> dict[str, Any]:
        running = self.get(lab_id)
        return {**running.checkpoints.describe(), "every_sim_ms": CHECKPOINT_SIM_MS, "error": running.checkpoint_error,
                "last_snapshot_s": round(running.last_snapshot_s, 3), "now_ms": running.world.now_ms()}

    def nearest_checkpoint(self, lab_id: str, at_ms: int) -> tuple[int, Checkpoint | None]:
        """(the lab's simulated time now, its newest checkpoint at or before ``at_ms`` or None)."""
        running = self.get(lab_id)
        return running.world.now_ms(), running.checkpoints.nearest(at_ms)

    def _checkpoint(self, running: RunningLab, now: float) -> None:
        """Record the lab's simulated time in its row (what My labs shows); a busy database only delays it."""
        running.last_checkpoint = now
        try:
            Lab.objects.filter(pk=running.lab_id).update(sim_time_ms=running.world.now_ms())
        except DatabaseError:  # SQLite busy or locked: the next interval writes a newer time anyway
            log.warning("lab %s: simulated time not recorded (database busy)", running.lab_id)

    def _frame(self, running: RunningLab, full: bool) -> dict[str, Any] | None:
        view = running.world.view()
        if running.guide is not None:
            view["guide"] = running.guide.view()
        events = view.pop("events")
        total = running.world.cluster.events.dropped + len(running.world.cluster.events)
        sections: dict[str, Any] = {}
        for name, value in view.items():
            text = json.dumps(value, sort_keys=True, default=str)
            if full or running.sent.get(name) != text:
                sections[name] = value
                running.sent[name] = text
        new = max(0, total - running.events_sent)
        running.events_sent = total
        if full:
            fresh = events
        else:  # exactly the events emitted since the last frame (the view's list is trimmed and filtered)
            log = running.world.cluster.events
            fresh = [e.to_json() for e in list(log)[len(log) - min(new, len(log), EVENTS_PER_FRAME):]
                     if e.kind not in HIDDEN_EVENT_KINDS] if new else []
        if not full and not sections and not fresh and not running.notices:
            return None
        frame = {"type": "snapshot" if full else "delta", "lab": running.lab_id, "sections": sections,
                 "events": fresh, "speed": running.speed, "paused": running.paused, "behind": running.behind,
                 "notices": running.notices, "wall_ms": round(time.time() * 1000),
                 "oldest_event_wall_ms": None if running.first_unsent_event_wall is None or full
                 else round(running.first_unsent_event_wall * 1000)}
        running.notices = []
        if not full:
            running.first_unsent_event_wall = None
        return frame

    def _publish(self, running: RunningLab, now: float) -> None:
        frame = self._frame(running, full=False)
        running.last_frame = now
        if frame is None or self._loop is None or self._loop.is_closed():
            return
        # Save how far the lab ran before anyone sees it: a restart replays to here.
        self._checkpoint(running, now)
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is not None:  # encoded once here, not once per viewer
            text = json.dumps(frame, default=str)
            asyncio.run_coroutine_threadsafe(
                layer.group_send(group_name(running.lab_id), {"type": "lab.frame", "text": text}), self._loop)

    # ── lab lifecycle (engine thread) ────────────────────────────────────────
    def _data_dir(self, lab_id: str) -> Path:
        return Path(settings.LAB_DATA_DIR) / lab_id

    def get(self, lab_id: str) -> RunningLab:
        """The running lab, rebuilt from its command log if this process has not loaded it yet."""
        running = self._labs.get(lab_id)
        if running is not None:
            return running
        lab = Lab.objects.get(pk=lab_id)
        data_dir = self._data_dir(lab_id)
        if data_dir.exists():
            shutil.rmtree(data_dir)
        # The whole log, as LabWorld.replay does it, taking the timeline's checkpoints again on the way.
        world, store = rebuild(lab, lab.sim_time_ms, str(data_dir), keep_checkpoints=True)
        return self._host(lab, world, store)

    def _host(self, lab: Lab, world: LabWorld, store: CheckpointStore | None = None) -> RunningLab:
        last = lab.commands.order_by("-seq").first()
        running = RunningLab(lab.pk, world, lab.speed, lab.paused, next_seq=last.seq + 1 if last else 1)
        if store is not None:
            running.checkpoints = store
        running.next_checkpoint_ms = (world.now_ms() // CHECKPOINT_SIM_MS + 1) * CHECKPOINT_SIM_MS
        running.events_sent = world.cluster.events.dropped + len(world.cluster.events)
        self._labs[lab.pk] = running
        running.guide = self.guide_loader(lab) if self.guide_loader is not None else None
        return running

    def adopt(self, lab: Lab, world: LabWorld, store: CheckpointStore | None = None) -> RunningLab:
        """Host a world rebuilt elsewhere (a fork or an import, built by :func:`rebuild_at` in a request thread).

        ``world`` must run in this lab's own data directory and be used by nobody else from now on.
        """
        old = self._labs.pop(lab.pk, None)
        if old is not None:
            self._forgotten(lab.pk)
            for broker in old.world.cluster.brokers.values():
                if broker.alive:
                    broker.shutdown()
        _write_retrying(lambda: Lab.objects.filter(pk=lab.pk).update(sim_time_ms=world.now_ms()))
        return self._host(lab, world, store)

    def create(self, lab: Lab, setup: list[dict[str, Any]] | tuple = ()) -> RunningLab:
        """Start a new lab; ``setup`` commands (a guided lab's fixture) are applied and logged like a learner's."""
        data_dir = self._data_dir(lab.pk)
        if data_dir.exists():
            shutil.rmtree(data_dir)
        world = LabWorld(lab.template, lab.seed, data_dir=str(data_dir), brokers=lab.brokers)
        running = RunningLab(lab.pk, world, lab.speed, lab.paused)
        self._labs[lab.pk] = running
        _write_retrying(lambda: Lab.objects.filter(pk=lab.pk).update(sim_time_ms=world.now_ms()))
        for command in setup:
            self.apply(lab.pk, dict(command))
        running.guide = self.guide_loader(lab) if self.guide_loader is not None else None
        return running

    def forget(self, lab_id: str) -> None:
        """Stop hosting a lab and remove its data (the lab is being deleted)."""
        with _rewind_lock:
            for key in [k for k in _rewind_cache if k[0] == lab_id]:
                del _rewind_cache[key]
        running = self._labs.pop(lab_id, None)
        if running is not None:
            self._forgotten(lab_id)
            for broker in running.world.cluster.brokers.values():
                if broker.alive:
                    broker.shutdown()
        shutil.rmtree(self._data_dir(lab_id), ignore_errors=True)

    def _forgotten(self, lab_id: str) -> None:
        for hook in self.forget_hooks:
            try:
                hook(lab_id)
            except Exception:  # a hook's failure must not keep a lab's files around
                log.exception("a forget hook failed for lab %s", lab_id)

    def forget_all(self) -> None:
        """Stop hosting every lab (tests; the data stays on disk)."""
        for lab_id in list(self._labs):
            self._forgotten(lab_id)
        for running in self._labs.values():
            for broker in running.world.cluster.brokers.values():
                if broker.alive:
                    broker.shutdown()
        self._labs.clear()

    def apply(self, lab_id: str, command: dict[str, Any]) -> dict[str, Any]:
        """Apply a learner's command now, log it, and wake the lab. Raises LabCommandError."""
        running = self.get(lab_id)
        running.last_touch = time.monotonic()
        kind = command.get("kind")
        at_ms = running.world.now_ms()
        if kind in CONTROL_KINDS:
            result = self._control(running, command)
            self._log(running, at_ms, command)  # logged too; replay skips them (they only pace time)
            self._maybe_snapshot(running)
            return result
        result = running.world.apply(command)
        pending = result.pop("pending", None)
        if pending is not None:  # an admin call: it takes a few simulated ms of requests; finish it now
            running.world.cluster.run_until(lambda: pending.done, ADMIN_TIMEOUT_MS, step_ms=5)
            if not pending.done:
                raise LabCommandError("the cluster did not answer the offset reset (is the group's coordinator "
                                      "down?); try again once brokers are back")
            if pending.error:
                raise LabCommandError(pending.error)
            result["plan"] = pending.result.to_json()
        self._log(running, at_ms, command)
        self._maybe_snapshot(running)
        return {"kind": kind, "at_ms": at_ms, **result}

    def _log(self, running: RunningLab, at_ms: int, command: dict[str, Any]) -> None:
        def write() -> None:
            with transaction.atomic():
                LabCommand.objects.create(lab_id=running.lab_id, seq=running.next_seq, sim_time_ms=at_ms,
                                          kind=str(command.get("kind")),
                                          args={k: v for k, v in command.items() if k != "kind"})
                Lab.objects.filter(pk=running.lab_id).update(sim_time_ms=running.world.now_ms())
        _write_retrying(write)  # the command is already in the world: its log row must not be lost
        running.next_seq += 1

    def _control(self, running: RunningLab, command: dict[str, Any]) -> dict[str, Any]:
        kind = command["kind"]
        if running.wire_open and kind in ("pause", "step", "fast_forward"):
            raise LabCommandError("the Kafka listeners are open: real clients count real time, so the lab cannot "
                                  "pause or jump ahead until you close them")
        if kind == "set_speed":
            try:
                speed = float(command.get("speed", 1))
            except (TypeError, ValueError):
                raise LabCommandError("speed must be a number") from None
            if speed not in SPEEDS:
                raise LabCommandError(f"speed must be one of {', '.join(f'{s:g}×' for s in SPEEDS)}")
            if running.wire_open and speed != 1.0:
                raise LabCommandError("the Kafka listeners are open: real clients count real time, so the lab runs "
                                      "at 1× until you close them")
            running.speed = speed
        elif kind == "pause":
            running.paused = True
        elif kind == "resume":
            running.paused = False
            running.last_wall = time.monotonic()
        elif kind == "fast_forward":  # run N simulated seconds now, whatever the speed or pause
            try:
                seconds = int(command.get("seconds", 10))
            except (TypeError, ValueError):
                raise LabCommandError("seconds must be a whole number") from None
            if not 1 <= seconds <= MAX_FAST_FORWARD_S:
                raise LabCommandError(f"fast-forward 1 to {MAX_FAST_FORWARD_S} simulated seconds")
            target = running.world.now_ms() + seconds * 1000
            while running.world.now_ms() < target:  # checkpoint boundaries on the way are checkpointed
                running.world.advance(min(target, max(running.next_checkpoint_ms, running.world.now_ms() + 1)))
                self._maybe_snapshot(running)
            if running.guide is not None:
                running.guide.evaluate(running.world)
        else:  # step: run what happens at the next moment anything is due
            due = running.world.cluster.next_event_ms()
            if due is not None:
                running.world.advance(max(due, running.world.now_ms()))
        _write_retrying(lambda: Lab.objects.filter(pk=running.lab_id).update(
            speed=running.speed, paused=running.paused, sim_time_ms=running.world.now_ms()))
        running.last_frame = 0.0  # show the change at once
        return {"kind": kind, "speed": running.speed, "paused": running.paused, "at_ms": running.world.now_ms()}

    def join(self, lab_id: str) -> dict[str, Any]:
        """A viewer connected: count it and return a full snapshot frame."""
        running = self.get(lab_id)
        running.viewers += 1
        running.last_wall = time.monotonic()
        frame = self._frame(running, full=True)
        assert frame is not None
        return frame

    def leave(self, lab_id: str) -> None:
        running = self._labs.get(lab_id)
        if running is not None:
            running.viewers = max(0, running.viewers - 1)
            running.last_touch = time.monotonic()

    def state(self, lab_id: str) -> dict[str, Any]:
        running = self.get(lab_id)
        running.last_touch = time.monotonic()
        self._checkpoint(running, time.monotonic())  # what is shown now must survive a restart
        return {"speed": running.speed, "paused": running.paused, "behind": running.behind,
                **running.world.view()}

    def probe_key(self, lab_id: str, key: str) -> dict[str, Any]:
        return self.get(lab_id).world.probe_key(key)

    def explore(self, lab_id: str, **query: Any) -> dict[str, Any]:
        return self.get(lab_id).world.explore(**query)


runtime = LabRuntime()


# ── rebuilding a moment (any thread: the world built here is private until adopted) ──


def logged_commands(lab: Lab, after_seq: int = 0, until_ms: int | None = None) -> list[tuple[int, int, dict[str, Any]]]:
    """The lab's logged commands as (seq, sim_time_ms, command), after ``after_seq`` and up to ``until_ms``."""
    rows = LabCommand.objects.filter(lab_id=lab.pk, seq__gt=after_seq)
    if until_ms is not None:
        rows = rows.filter(sim_time_ms__lte=until_ms)
    return [(c.seq, c.sim_time_ms, {"kind": c.kind, **c.args}) for c in rows.order_by("seq")]


def rebuild(lab: Lab, at_ms: int, data_dir: str | None, *, checkpoint: Checkpoint | None = None,
            keep_checkpoints: bool = False) -> tuple[LabWorld, CheckpointStore | None]:
    """``lab`` as it was at simulated ``at_ms``: from ``checkpoint`` (or the seed) plus the logged commands after it.

    ``data_dir`` must be empty or missing (None: a simulated disk, for a view only).
    With ``keep_checkpoints`` the replay takes checkpoints every CHECKPOINT_SIM_MS
    (they describe this lab's command numbering) and returns them.
    """
    store = CheckpointStore() if keep_checkpoints else None
    if data_dir is not None and Path(data_dir).exists():
        shutil.rmtree(data_dir)
    if checkpoint is not None:
        world = restore(checkpoint.snapshot, data_dir)
        applied = checkpoint.commands_applied
        if store is not None:
            store.add(checkpoint)
    else:
        world = LabWorld(lab.template, lab.seed, data_dir=data_dir, brokers=lab.brokers)
        applied = 0
    on_checkpoint = None
    if store is not None:
        def on_checkpoint(w: LabWorld, seq: int) -> None:
            if w.now_ms() < at_ms - REBUILD_CHECKPOINT_WINDOW_MS:
                return
            try:
                newest = store.newest()
                store.add(Checkpoint(snapshot(w, like=newest.snapshot if newest else None), seq))
            except SnapshotError:
                log.exception("lab %s: a checkpoint during its rebuild failed", lab.pk)
    replay_commands(world, logged_commands(lab, applied, at_ms), at_ms, skip_kinds=CONTROL_KINDS,
                    checkpoint_every_ms=CHECKPOINT_SIM_MS if store is not None else None,
                    on_checkpoint=on_checkpoint, applied=applied)
    return world, store


def rebuild_at(lab: Lab, at_ms: int, data_dir: str | None) -> tuple[LabWorld, dict[str, Any]]:
    """The lab at ``at_ms`` from its nearest checkpoint (else from the seed), built in the calling thread.

    Returns the world and how it was built: ``from_checkpoint_ms`` (None: full
    replay from the seed), ``replayed_commands``, ``seconds``. Raises ValueError
    if ``at_ms`` is not between 0 and the lab's simulated time now.
    """
    started = time.perf_counter()
    now_ms, checkpoint = runtime.call(lambda: runtime.nearest_checkpoint(lab.pk, at_ms))
    if not 0 <= at_ms <= now_ms:
        raise ValueError(f"choose a moment between 0 and {now_ms} ms (the lab's simulated time now)")
    applied = checkpoint.commands_applied if checkpoint is not None else 0
    replayed = LabCommand.objects.filter(lab_id=lab.pk, seq__gt=applied, sim_time_ms__lte=at_ms).exclude(
        kind__in=CONTROL_KINDS).count()
    world, _ = rebuild(lab, at_ms, data_dir, checkpoint=checkpoint)
    return world, {"at_ms": at_ms, "now_ms": now_ms, "from_checkpoint_ms": None if checkpoint is None
                   else checkpoint.at_ms, "replayed_commands": replayed,
                   "seconds": round(time.perf_counter() - started, 3)}


REWIND_VIEWS_CACHED = 16  # rebuilt past moments kept (the past does not change), over all labs
_rewind_cache: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
_rewind_lock = threading.Lock()


def close_world(world: LabWorld) -> None:
    """Close a rebuilt world's files (it is thrown away)."""
    for broker in world.cluster.brokers.values():
        if broker.alive:
            broker.shutdown()


def rewind_view(lab: Lab, at_ms: int) -> dict[str, Any]:
    """What the live page would have drawn at simulated ``at_ms``: the rebuilt world's view(), read-only.

    Built in the calling thread in a scratch directory (removed afterwards); the
    live lab is not touched. ``view["rewind"]`` says how it was rebuilt.
    """
    key = (lab.pk, at_ms)
    with _rewind_lock:
        cached = _rewind_cache.get(key)
        if cached is not None:
            _rewind_cache.move_to_end(key)
            return {**cached, "rewind": {**cached["rewind"], "cached": True}}
    scratch = Path(settings.LAB_DATA_DIR) / ".rewind" / secrets.token_hex(8)
    try:
        world, info = rebuild_at(lab, at_ms, str(scratch))
        try:
            view = world.view()
        finally:
            close_world(world)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    view["rewind"] = {**info, "cached": False}
    if at_ms < info["now_ms"]:  # a command may still be logged at "now"; earlier moments are final
        with _rewind_lock:
            _rewind_cache[key] = view
            while len(_rewind_cache) > REWIND_VIEWS_CACHED:
                _rewind_cache.popitem(last=False)
    return view
