"""A Jepsen-shaped history: what every client asked for, and what it was told.

The checker (:mod:`core_log.checker`) never looks at brokers, replicas or
files. It judges the cluster only by what clients saw, exactly as Jepsen does,
so the verdict cannot be fooled by a bug in the engine's own bookkeeping. This
module records that evidence while a simulated cluster runs: each client action
is an *invoke* op, later matched by one *completion* op whose ``type`` says how
it ended:

* ``ok``   — it happened, and the value says what the client was told;
* ``fail`` — it definitely did not happen (e.g. NOT_ENOUGH_REPLICAS before append);
* ``info`` — nobody knows (e.g. a produce request timed out after it may have
  been appended). Indeterminate ops are what make Jepsen honest: a timed-out
  send may still show up in a later poll.

Op shapes (``f`` / ``type`` → ``value``); partitions are ``"topic-N"`` strings and
values are unique strings, never retried above the client::

    send   invoke  (partition, value)           or (partition, value, "txn") for a transactional send,
                                                whose ok/fail comes at the transaction's commit/abort
    send   ok      (partition, offset, value)   offset None only if unknown (acks=0)
    send   fail    (partition, None, value)     definitely not written
    send   info    (partition, None, value)     may or may not have been written
    poll   invoke  None
    poll   ok      {partition: ((offset, value), ...)}   each partition in read order
    poll   fail    None                         (our polls never carry reads when
    poll   info    None                          they do not succeed)
    assign invoke  (partition, ...)             a consumer (re)assigned itself these
    assign ok/info (partition, ...)             partitions and (re)positioned on them
    crash  invoke  None                         a client process restarts: it forgets
    crash  info    None                         its positions and in-flight sends
    sink   invoke  (partition, value)           a consumer hands a record to its downstream
    sink   ok      (partition, value)           the downstream applied it (again, if it is not idempotent)
    sink   fail    (partition, value)           an idempotent downstream recognised a repeat and ignored it

Every op has ``index`` (its position in the history), ``process`` (a client name
such as ``"producer-1"``), ``time_ms`` (simulated, never decreasing) and, for a
completion, ``invoke_index`` (the index of its invoke). A process may have
several ops in flight at once (a producer's pipelined sends); each completion
names its invoke explicitly, so nothing is matched by guesswork.

The history is append-only and bounded by ``max_ops``; going past the bound
raises :class:`HistoryFullError` rather than dropping evidence. Subscribers
(the incremental checker, the UI) see every op as it is appended.

Differences from Jepsen:

* Each op carries one micro-op: a send sends one value, a poll is one
  ``poll()``; there are no ``:txn`` ops (transactions arrive with ``txn.py``)
  and no ``:subscribe`` (consumer groups arrive later) — consumers use assign.
* Jepsen crashes a process by giving the thread a new process id; our clients
  keep their names, so a restart is recorded as an explicit ``crash`` op.
* Keys are ``"topic-N"`` strings rather than abstract integers, so the UI can
  show them as they are.
"""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence, overload

from core_log.errors import ConfigError, CoreLogError

OP_TYPES = ("invoke", "ok", "fail", "info")
COMPLETION_TYPES = ("ok", "fail", "info")
OP_FUNCTIONS = ("send", "poll", "assign", "crash", "sink")
DEFAULT_MAX_OPS = 1_000_000
JSON_FORMAT = "core_log.history/1"
#: Ops per sealed block (see :class:`OpBlock`): a lab records a few hundred ops a second.
OPS_PER_BLOCK = 4096


class HistoryError(CoreLogError, ValueError):
    """An op that cannot be part of a well-formed history; nothing was appended."""


class HistoryFullError(HistoryError):
    """The history already holds ``max_ops`` ops; nothing was appended.

    A history is evidence, so it is never trimmed silently: start a new run (or
    raise ``max_ops``) instead.
    """

    def __init__(self, max_ops: int) -> None:
        super().__init__(f"the history is full: it already holds max_ops={max_ops} ops")
        self.max_ops = max_ops


@dataclass(frozen=True)
class Op:
    """One entry of the history: an invoke, or the completion of one."""

    index: int  # position in the history, from 0
    process: str  # the client that did it, e.g. "producer-1"
    type: str  # "invoke", "ok", "fail" or "info"
    f: str  # "send", "poll", "assign" or "crash"
    time_ms: int  # simulated time at which it was recorded
    value: Any  # see the module docstring for the shape of each f / type
    invoke_index: int | None = None  # for completions: the index of their invoke

    @property
    def is_invoke(self) -> bool:
        return self.type == "invoke"

    def to_json(self) -> dict[str, Any]:
        """A plain dict (lists, strings, ints, None) for JSON."""
        return {
            "index": self.index,
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "time_ms": self.time_ms,
            "value": _value_to_json(self.f, self.value),
            "invoke_index": self.invoke_index,
        }


class OpsView(Sequence[Op]):
    """A read-only, live view of a history's ops (no copy is made)."""

    __slots__ = ("_ops",)

    def __init__(self, ops: list[Op]) -> None:
        self._ops = ops

    @overload
    def __getitem__(self, i: int) -> Op: ...

    @overload
    def __getitem__(self, i: slice) -> list[Op]: ...

    def __getitem__(self, i: int | slice) -> Op | list[Op]:
        return self._ops[i]

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __repr__(self) -> str:
        return f"OpsView({len(self._ops)} ops)"


class OpBlock:
    """OPS_PER_BLOCK consecutive ops of a history, packed into bytes once they can no longer change.

    Why: a history is append-only, so its old ops are the same in every timeline checkpoint of a
    lab. Pickled as objects they were most of a checkpoint's cost (a 10-minute lab records ~150,000
    ops); sealed, a snapshot copies one bytes object per block, and ``core_log.snapshot`` shares
    those bytes between checkpoints instead of holding a copy in each. The contract: ``data`` is
    immutable and :meth:`unpack` gives ops equal to the ones packed.
    """

    __slots__ = ("first_index", "count", "data")

    def __init__(self, first_index: int, count: int, data: bytes | memoryview) -> None:
        self.first_index = first_index
        self.count = count
        self.data = data.obj if isinstance(data, memoryview) else data  # (an unpickled out-of-band buffer)

    @classmethod
    def pack(cls, ops: Sequence[Op]) -> "OpBlock":
        rows = [(o.index, o.process, o.type, o.f, o.time_ms, o.value, o.invoke_index) for o in ops]
        return cls(ops[0].index, len(ops), zlib.compress(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL), 1))

    def unpack(self) -> list[Op]:
        new, out = object.__new__, []
        for index, process, type_, f, time_ms, value, invoke_index in pickle.loads(zlib.decompress(self.data)):
            op = new(Op)  # a frozen dataclass: its fields go straight into its __dict__, as unpickling does
            op.__dict__.update(index=index, process=process, type=type_, f=f, time_ms=time_ms, value=value,
                               invoke_index=invoke_index)
            out.append(op)
        return out


class History:
    """An append-only, bounded record of invokes and completions.

    ``invoke`` and ``complete`` validate everything they are given and raise
    :class:`HistoryError` (a ``ValueError``) with a message naming the problem;
    a rejected op is not appended and subscribers do not see it.
    """

    def __init__(self, max_ops: int = DEFAULT_MAX_OPS) -> None:
        if not isinstance(max_ops, int) or isinstance(max_ops, bool) or max_ops < 1:
            raise ConfigError(f"max_ops must be an integer >= 1, got {max_ops!r}")
        self.max_ops = max_ops
        self._ops: list[Op] = []
        self._pending: dict[int, Op] = {}  # invoke index -> invoke, in index order
        self._subscribers: list[Callable[[Op], None]] = []
        self._sealed: list[OpBlock] = []  # the oldest ops, packed in blocks once full (for pickling)

    # ── pickling (timeline checkpoints) ──────────────────────────────────────

    def __getstate__(self) -> dict[str, Any]:
        """The state with full blocks of old ops sealed into OpBlocks (sealed once, reused by every later pickle)."""
        sealed, ops = self._sealed, self._ops
        done = sealed[-1].first_index + sealed[-1].count if sealed else 0
        while len(ops) - done >= OPS_PER_BLOCK:
            sealed.append(OpBlock.pack(ops[done:done + OPS_PER_BLOCK]))
            done += OPS_PER_BLOCK
        state = self.__dict__.copy()
        state["_ops"] = ops[done:]
        state["_sealed"] = list(sealed)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        ops = [op for block in state["_sealed"] for op in block.unpack()]
        ops.extend(state["_ops"])
        self.__dict__.update(state)
        self._ops = ops
        self._pending = {index: ops[index] for index in state["_pending"]}  # the very ops of the list

    # ── reading ──────────────────────────────────────────────────────────────

    @property
    def ops(self) -> OpsView:
        """Every op so far, in index order (a read-only view)."""
        return OpsView(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def pending(self) -> list[Op]:
        """Invokes that have no completion yet, in index order."""
        return list(self._pending.values())

    # ── recording ────────────────────────────────────────────────────────────

    def invoke(self, process: str, f: str, value: Any, time_ms: int) -> Op:
        """Record that ``process`` started an ``f`` op; returns the invoke op."""
        if not isinstance(process, str) or not process:
            raise HistoryError(f"process must be a non-empty string, got {process!r}")
        if f not in OP_FUNCTIONS:
            raise HistoryError(f"f must be one of {OP_FUNCTIONS}, got {f!r}")
        value = _normalize_invoke_value(f, value)
        op = Op(len(self._ops), process, "invoke", f, self._check_time(time_ms), value, None)
        self._append(op)
        self._pending[op.index] = op
        self._notify(op)
        return op

    def complete(self, invoke_op: Op, type: str, value: Any, time_ms: int) -> Op:
        """Record how ``invoke_op`` ended (``type`` ok, fail or info); returns the completion."""
        if type not in COMPLETION_TYPES:
            raise HistoryError(f"a completion's type must be one of {COMPLETION_TYPES}, got {type!r}")
        if not isinstance(invoke_op, Op):
            raise HistoryError(f"complete() needs the invoke Op, got {invoke_op!r}")
        index = invoke_op.index
        recorded = self._ops[index] if isinstance(index, int) and 0 <= index < len(self._ops) else None
        if recorded is not None and recorded.is_invoke and recorded.process != invoke_op.process:
            raise HistoryError(
                f"invoke {index} belongs to {recorded.process!r}, not {invoke_op.process!r}: "
                "a process can only complete its own ops")
        if recorded is None or (recorded is not invoke_op and recorded != invoke_op) or not recorded.is_invoke:
            raise HistoryError(f"op {index!r} is not an invoke recorded in this history")
        if index not in self._pending:
            raise HistoryError(f"invoke {index} ({recorded.process} {recorded.f}) is already completed")
        value = _normalize_completion_value(recorded, type, value)
        op = Op(len(self._ops), recorded.process, type, recorded.f, self._check_time(time_ms), value, index)
        self._append(op)
        del self._pending[index]
        self._notify(op)
        return op

    def complete_by(self, process: str, invoke_index: int, type: str, value: Any, time_ms: int) -> Op:
        """Like :meth:`complete`, naming the invoke by index and checking its process."""
        if not isinstance(invoke_index, int) or not 0 <= invoke_index < len(self._ops):
            raise HistoryError(f"there is no op {invoke_index!r} in this history")
        invoke_op = self._ops[invoke_index]
        if invoke_op.process != process:
            raise HistoryError(
                f"invoke {invoke_index} belongs to {invoke_op.process!r}, not {process!r}: "
                f"a process can only complete its own ops")
        return self.complete(invoke_op, type, value, time_ms)

    def subscribe(self, callback: Callable[[Op], None], *, replay: bool = False) -> Callable[[], None]:
        """Call ``callback(op)`` for every op appended from now on; returns an unsubscribe function.

        With ``replay=True`` the callback first sees every op already recorded,
        so a late subscriber (a checker opened mid-run) misses nothing.
        """
        if replay:
            for op in self._ops:
                callback(op)
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # ── saving ───────────────────────────────────────────────────────────────

    def to_json(self) -> dict[str, Any]:
        """The history as plain dicts and lists (partitions and values as strings)."""
        return {"format": JSON_FORMAT, "max_ops": self.max_ops, "ops": [op.to_json() for op in self._ops]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "History":
        """Rebuild a history saved by :meth:`to_json`, validating every op again."""
        if not isinstance(data, Mapping) or data.get("format") != JSON_FORMAT:
            raise HistoryError(f"not a saved history (expected format {JSON_FORMAT!r})")
        ops = data.get("ops")
        if not isinstance(ops, list):
            raise HistoryError("a saved history needs an 'ops' list")
        history = cls(max_ops=data.get("max_ops", DEFAULT_MAX_OPS))
        for position, raw in enumerate(ops):
            if not isinstance(raw, Mapping):
                raise HistoryError(f"op {position} is not an object")
            if raw.get("index") != position:
                raise HistoryError(f"op {position} has index {raw.get('index')!r}; ops must be saved in order")
            f = raw.get("f")
            value = _value_from_json(f, raw.get("value"))
            if raw.get("type") == "invoke":
                history.invoke(raw.get("process"), f, value, raw.get("time_ms"))
            else:
                invoke_index = raw.get("invoke_index")
                op = history.complete_by(raw.get("process"), invoke_index, raw.get("type"), value,
                                         raw.get("time_ms"))
                if op.f != f:
                    raise HistoryError(f"op {position} completes a {op.f!r} invoke but says f={f!r}")
        return history

    # ── internals ────────────────────────────────────────────────────────────

    def _check_time(self, time_ms: Any) -> int:
        if not isinstance(time_ms, int) or isinstance(time_ms, bool) or time_ms < 0:
            raise HistoryError(f"time_ms must be an integer >= 0, got {time_ms!r}")
        if self._ops and time_ms < self._ops[-1].time_ms:
            raise HistoryError(
                f"time_ms {time_ms} is before the previous op's {self._ops[-1].time_ms}: "
                "simulated time never goes backwards")
        return time_ms

    def _append(self, op: Op) -> None:
        if len(self._ops) >= self.max_ops:
            raise HistoryFullError(self.max_ops)
        self._ops.append(op)

    def _notify(self, op: Op) -> None:
        for callback in list(self._subscribers):
            callback(op)


# ── value shapes ─────────────────────────────────────────────────────────────


def _is_offset(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_str(what: str, x: Any) -> str:
    if not isinstance(x, str) or not x:
        raise HistoryError(f"{what} must be a non-empty string, got {x!r}")
    return x


def _partitions(f: str, value: Any) -> tuple[str, ...]:
    if not _is_sequence(value):
        raise HistoryError(f"an {f} value must be a sequence of partitions, got {value!r}")
    return tuple(_check_str("a partition", p) for p in value)


def _sink_value(value: Any) -> tuple[str, str]:
    if not _is_sequence(value) or len(value) != 2:
        raise HistoryError(f"a sink value must be (partition, value), got {value!r}")
    return (_check_str("a partition", value[0]), _check_str("a sunk value", value[1]))


def _normalize_invoke_value(f: str, value: Any) -> Any:
    if f == "send":
        if not _is_sequence(value) or len(value) not in (2, 3) \
                or (len(value) == 3 and value[2] != "txn"):
            raise HistoryError(f"a send invoke's value must be (partition, value) or (partition, value, 'txn'), "
                               f"got {value!r}")
        head = (_check_str("a partition", value[0]), _check_str("a sent value", value[1]))
        return head + ("txn",) if len(value) == 3 else head
    if f == "assign":
        return _partitions("assign", value)
    if f == "sink":
        return _sink_value(value)
    if value is not None:
        raise HistoryError(f"a {f} invoke's value must be None, got {value!r}")
    return None


def _is_sequence(value: Any) -> bool:
    """A sequence that is not text (tuples and lists first: the ABC check is slow, and this is hot)."""
    cls = type(value)
    if cls is tuple or cls is list:
        return True
    return not isinstance(value, (str, bytes)) and isinstance(value, Sequence)


def _normalize_completion_value(invoke_op: Op, type: str, value: Any) -> Any:
    f = invoke_op.f
    if f == "send":
        if not _is_sequence(value) or len(value) != 3:
            raise HistoryError(f"a send {type}'s value must be (partition, offset, value), got {value!r}")
        partition, offset, sent = value
        if (partition, sent) != tuple(invoke_op.value[:2]):
            raise HistoryError(
                f"send {type} {(partition, sent)!r} does not match its invoke {invoke_op.value!r}")
        if type == "ok":
            if offset is not None and not _is_offset(offset):
                raise HistoryError(f"a send ok's offset must be an integer >= 0 (or None), got {offset!r}")
        elif offset is not None:
            raise HistoryError(f"a send {type} has no offset (use None), got {offset!r}")
        return (partition, offset, sent)
    if f == "poll":
        if type != "ok":
            if value is not None:
                raise HistoryError(f"a poll {type} carries no reads (use None), got {value!r}")
            return None
        if value.__class__ is not dict and not isinstance(value, Mapping):
            raise HistoryError(f"a poll ok's value must map partitions to (offset, value) pairs, got {value!r}")
        reads: dict[str, tuple[tuple[int, str], ...]] = {}
        for partition in sorted(value):
            _check_str("a partition", partition)
            pairs = value[partition]
            if not _is_sequence(pairs):
                raise HistoryError(f"reads of {partition} must be a sequence of (offset, value), got {pairs!r}")
            checked = []
            for pair in pairs:
                if not _is_sequence(pair) or len(pair) != 2 \
                        or not _is_offset(pair[0]):
                    raise HistoryError(f"a read of {partition} must be (offset >= 0, value), got {pair!r}")
                checked.append((pair[0], _check_str("a read value", pair[1])))
            reads[partition] = tuple(checked)
        return reads
    if f == "assign":
        return _partitions("assign", value)
    if f == "sink":
        if type == "info":
            raise HistoryError("a sink write completes ok (applied) or fail (ignored as a repeat)")
        if _sink_value(value) != invoke_op.value:
            raise HistoryError(f"sink {type} {value!r} does not match its invoke {invoke_op.value!r}")
        return invoke_op.value
    # crash
    if type != "info":
        raise HistoryError(f"a crash completes as 'info' (the client's fate is not a result), got {type!r}")
    if value is not None:
        raise HistoryError(f"a crash's value must be None, got {value!r}")
    return None


def _value_to_json(f: str, value: Any) -> Any:
    if f == "poll" and isinstance(value, Mapping):
        return {p: [[o, v] for o, v in pairs] for p, pairs in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _value_from_json(f: Any, value: Any) -> Any:
    if f == "poll" and isinstance(value, Mapping):
        return {p: tuple(tuple(pair) if isinstance(pair, list) else pair for pair in pairs)
                for p, pairs in value.items()}
    if isinstance(value, list):
        return tuple(value)
    return value


def value_text(value: bytes | None) -> str:
    """How a record value appears in a history: UTF-8 text, ``"null"`` for a tombstone."""
    if value is None:
        return "null"
    return value.decode("utf-8", errors="backslashreplace")
