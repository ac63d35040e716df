"""``AdminClient``: offset reset and replay, as ``kafka-consumer-groups --reset-offsets`` does it.

Replay in Kafka is nothing more than moving a group's committed offsets back
(or forward) and letting its consumers start again: the log still holds the
records, so they are delivered again. :meth:`AdminClient.reset_offsets` plans
such a move for every partition of a topic and, unless it is a dry run, commits
it:

* ``ResetSpec("earliest")`` / ``ResetSpec("latest")`` — the log start offset / the
  high watermark (``--to-earliest`` / ``--to-latest``);
* ``ResetSpec("offset", n)`` — offset n, clamped into the log (``--to-offset``);
* ``ResetSpec("timestamp", ms)`` — the first record at or after that time
  (``--to-datetime``; past the newest record it means latest);
* ``ResetSpec("shift", n)`` — the committed offset plus n, n may be negative
  (``--shift-by``);
* ``ResetSpec("group", "other-group")`` — copy another group's committed
  offsets (how you clone a consumer's progress for a new service).

A plan gives, per partition, the current committed offset → the new one, and
how many records would be delivered again (new < current) or skipped
(new > current). Applying it needs the group to be **Empty** — no member
running — which is Kafka's rule: a live member would overwrite the reset with
its next commit. A non-empty group gets a plain error saying who is still in it.

Everything goes through the network like any client: FindCoordinator,
DescribeGroup, OffsetFetch, Metadata and ListOffsets to partition leaders, then
an OffsetCommit with generation -1 that the coordinator accepts only for an
Empty group. Each call returns an :class:`AdminFuture`; the caller advances the
cluster until it is done.

Differences from Kafka: one topic per reset (Kafka takes several, or
``--all-topics``); ``--to-current`` and ``--by-duration`` are not offered
(``timestamp`` covers the latter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from core_log.future import ClientFuture
from core_log.messages import (
    COORDINATOR_ERRORS,
    EARLIEST_TIMESTAMP,
    GROUP_ID_NOT_FOUND,
    LATEST_TIMESTAMP,
    NONE,
    REQUEST_TIMED_OUT,
    DescribeGroupRequest,
    DescribeGroupResponse,
    Envelope,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    MetadataRequest,
    MetadataResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    TopicPartition,
)

if TYPE_CHECKING:
    from core_log.cluster import Cluster

RESET_KINDS = ("earliest", "latest", "offset", "timestamp", "shift", "group")
MAX_ATTEMPTS = 50
RETRY_BACKOFF_MS = 200
REQUEST_TIMEOUT_MS = 5000


class AdminError(ValueError):
    """A reset the admin refuses before sending anything (bad spec, unknown topic)."""


@dataclass(frozen=True)
class ResetSpec:
    kind: str
    value: int | str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RESET_KINDS:
            raise AdminError(f"reset kind must be one of {', '.join(RESET_KINDS)}, got {self.kind!r}")
        if self.kind in ("earliest", "latest"):
            if self.value is not None:
                raise AdminError(f"'{self.kind}' takes no value")
        elif self.kind == "group":
            if not isinstance(self.value, str) or not self.value:
                raise AdminError("'group' needs the name of the group to copy offsets from")
        else:
            v = self.value
            if not isinstance(v, int) or isinstance(v, bool):
                raise AdminError(f"'{self.kind}' needs a whole number, got {v!r}")
            if self.kind in ("offset", "timestamp") and v < 0:
                raise AdminError(f"'{self.kind}' must be >= 0, got {v}")
            if abs(v) > 2 ** 62:
                raise AdminError(f"'{self.kind}' value {v} is out of range")

    def describe(self) -> str:
        return {"earliest": "to the earliest offset", "latest": "to the latest offset",
                "offset": f"to offset {self.value}", "timestamp": f"to the first record at/after t={self.value} ms",
                "shift": f"by {self.value:+d}" if isinstance(self.value, int) else "",
                "group": f"to group {self.value}'s committed offsets"}[self.kind]


@dataclass(frozen=True)
class PartitionReset:
    tp: TopicPartition
    current: int | None  # committed offset now (None: never committed)
    new: int
    log_start_offset: int
    log_end_offset: int  # the high watermark: what consumers can reach
    redelivered: int  # records between new and current that will be read again
    skipped: int  # records between current and new that will never be read by this group

    def to_json(self) -> dict[str, Any]:
        return {"partition": str(self.tp), "current": self.current, "new": self.new,
                "log_start_offset": self.log_start_offset, "log_end_offset": self.log_end_offset,
                "redelivered": self.redelivered, "skipped": self.skipped}


@dataclass(frozen=True)
class ResetPlan:
    group_id: str
    topic: str
    spec: ResetSpec
    group_state: str
    members: tuple[str, ...]
    rows: tuple[PartitionReset, ...]
    dry_run: bool
    applied: bool = False
    error: str | None = None

    @property
    def redelivered(self) -> int:
        return sum(r.redelivered for r in self.rows)

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.rows)

    def explain(self) -> str:
        what = (f"Resetting group {self.group_id} on {self.topic} {self.spec.describe()} "
                f"{'would re-deliver' if not self.applied else 're-delivers'} {self.redelivered} record(s) and "
                f"{'would skip' if not self.applied else 'skips'} {self.skipped}.")
        if self.error:
            return f"{what} Not applied: {self.error}"
        return what

    def to_json(self) -> dict[str, Any]:
        return {"group_id": self.group_id, "topic": self.topic, "spec": {"kind": self.spec.kind,
                                                                          "value": self.spec.value},
                "group_state": self.group_state, "members": list(self.members), "dry_run": self.dry_run,
                "applied": self.applied, "error": self.error, "redelivered": self.redelivered,
                "skipped": self.skipped, "rows": [r.to_json() for r in self.rows], "explanation": self.explain()}


class AdminFuture(ClientFuture):
    """An admin call's outcome: ``result`` (a dict or a :class:`ResetPlan`) or ``error``."""

    __slots__ = ()


@dataclass
class _Job:
    future: AdminFuture
    attempts: int = 0
    data: dict[str, Any] = field(default_factory=dict)


class AdminClient:
    """A network client for group and offset administration."""

    def __init__(self, cluster: "Cluster", client_id: str = "admin") -> None:
        self.cluster = cluster
        self.node_id = client_id
        self.alive = True
        self.incarnation = 1
        self._correlation = 0
        self._pending: dict[int, tuple[Callable[[Any], None], str]] = {}
        cluster.register_client(self)

    # ── plumbing ─────────────────────────────────────────────────────────────
    def receive(self, envelope: Envelope) -> None:
        pending = self._pending.pop(getattr(envelope.message, "correlation_id", -1), None)
        if pending is not None:
            pending[0](envelope.message)

    def connection_refused(self, envelope: Envelope) -> None:
        pending = self._pending.pop(getattr(envelope.message, "correlation_id", -1), None)
        if pending is not None:
            pending[0](None)

    def connection_reset(self, node_id: str) -> None:
        for correlation in sorted(c for c, (_, dst) in self._pending.items() if dst == node_id):
            self._pending.pop(correlation)[0](None)

    def _request(self, broker: int, make: Callable[[int], Any], handler: Callable[[Any], None]) -> None:
        """Send one request; ``handler`` gets the response, or None on timeout / refused connection."""
        self._correlation += 1
        correlation = self._correlation
        self._pending[correlation] = (handler, f"broker-{broker}")
        self.cluster.send(self, f"broker-{broker}", make(correlation))

        def timeout() -> None:
            pending = self._pending.pop(correlation, None)
            if pending is not None:
                pending[0](None)

        self.cluster.schedule(REQUEST_TIMEOUT_MS, timeout)

    def _any_broker(self) -> int:
        live = self.cluster.controller.live_brokers() or tuple(sorted(self.cluster.brokers))
        return live[self._correlation % len(live)]

    def _retry(self, job: _Job, again: Callable[[], None], error: str) -> None:
        job.attempts += 1
        if job.attempts >= MAX_ATTEMPTS:
            job.future._finish(error=f"gave up after {MAX_ATTEMPTS} attempts: {error}")
            return
        self.cluster.schedule(RETRY_BACKOFF_MS, again)

    def _with_coordinator(self, job: _Job, group_id: str, then: Callable[[int], None]) -> None:
        def ask() -> None:
            def on(resp: FindCoordinatorResponse | None) -> None:
                if resp is None or resp.error != NONE:
                    self._retry(job, ask, resp.error if resp else "no answer to FindCoordinator")
                else:
                    then(resp.coordinator)
            self._request(self._any_broker(), lambda c: FindCoordinatorRequest(group_id, c), on)
        ask()

    def _group_call(self, job: _Job, group_id: str, make: Callable[[int], Any],
                    then: Callable[[Any], None]) -> None:
        """A coordinator request, re-finding the coordinator when it moved."""
        def attempt() -> None:
            def with_coordinator(coordinator: int) -> None:
                def on(resp: Any) -> None:
                    error = getattr(resp, "error", None) if resp is not None else REQUEST_TIMED_OUT
                    if isinstance(resp, OffsetCommitResponse):
                        errs = sorted({e for _, e in resp.errors if e != NONE})
                        error = errs[0] if errs else NONE
                    if error in COORDINATOR_ERRORS:
                        self._retry(job, attempt, error)
                    else:
                        then(resp)
                self._request(coordinator, make, on)
            self._with_coordinator(job, group_id, with_coordinator)
        attempt()

    # ── operations ───────────────────────────────────────────────────────────
    def describe_group(self, group_id: str) -> AdminFuture:
        """The group as its coordinator sees it: state, generation, members, committed offsets."""
        job = _Job(AdminFuture())
        self._describe(job, group_id, lambda g: job.future._finish(g))
        return job.future

    def _describe(self, job: _Job, group_id: str, then: Callable[[dict[str, Any]], None]) -> None:
        def on(resp: DescribeGroupResponse) -> None:
            if resp.error == GROUP_ID_NOT_FOUND:
                then({"group_id": group_id, "state": "Dead", "members": [], "generation": 0, "committed": {}})
            elif resp.error != NONE:
                job.future._finish(error=resp.error)
            else:
                then(resp.group)
        self._group_call(job, group_id, lambda c: DescribeGroupRequest(group_id, c), on)

    def list_offsets(self, topic: str, timestamp_ms: int) -> AdminFuture:
        """Per partition of ``topic``: ListOffsets at ``timestamp_ms`` (-2 earliest, -1 latest)."""
        job = _Job(AdminFuture())
        self._list_offsets(job, topic, timestamp_ms, lambda r: job.future._finish(r))
        return job.future

    def _list_offsets(self, job: _Job, topic: str, timestamp_ms: int,
                      then: Callable[[dict[TopicPartition, ListOffsetsResponse]], None]) -> None:
        def attempt() -> None:
            def on_metadata(resp: MetadataResponse | None) -> None:
                if resp is None:
                    self._retry(job, attempt, "no answer to Metadata")
                    return
                tps = sorted(tp for tp in resp.partitions if tp.topic == topic)
                if not tps or any(resp.partitions[tp].leader < 0 for tp in tps):
                    self._retry(job, attempt, f"partitions of {topic} without a leader")
                    return
                answers: dict[TopicPartition, ListOffsetsResponse] = {}
                failed: list[str] = []

                def on_offsets(resp: ListOffsetsResponse | None, tp: TopicPartition) -> None:
                    if resp is None or resp.error != NONE:
                        failed.append(resp.error if resp else REQUEST_TIMED_OUT)
                    else:
                        answers[tp] = resp
                    if len(answers) + len(failed) == len(tps):
                        if failed:
                            self._retry(job, attempt, failed[0])
                        else:
                            then(answers)

                for tp in tps:
                    self._request(resp.partitions[tp].leader,
                                  lambda c, tp=tp: ListOffsetsRequest(tp, timestamp_ms, c),
                                  lambda r, tp=tp: on_offsets(r, tp))
            self._request(self._any_broker(), lambda c: MetadataRequest((topic,), c), on_metadata)
        attempt()

    def _committed(self, job: _Job, group_id: str, then: Callable[[dict[TopicPartition, int]], None]) -> None:
        def on(resp: OffsetFetchResponse) -> None:
            if resp.error != NONE:
                job.future._finish(error=resp.error)
            else:
                then({tp: off for tp, off, _ in resp.offsets if off >= 0})
        self._group_call(job, group_id, lambda c: OffsetFetchRequest(group_id, None, c), on)

    def reset_offsets(self, group_id: str, topic: str, spec: ResetSpec, *, dry_run: bool = True) -> AdminFuture:
        """Plan (and unless ``dry_run``, apply) moving ``group_id``'s offsets on ``topic``; result: ResetPlan."""
        if not isinstance(spec, ResetSpec):
            raise AdminError("spec must be a ResetSpec")
        if topic not in self.cluster.topics or topic.startswith("__"):
            raise AdminError(f"unknown topic {topic!r}")
        if not isinstance(group_id, str) or not group_id:
            raise AdminError("group id must be a non-empty string")
        job = _Job(AdminFuture())
        timestamp = {"earliest": EARLIEST_TIMESTAMP, "timestamp": spec.value}.get(spec.kind, LATEST_TIMESTAMP)

        def got_group(group: dict[str, Any]) -> None:
            job.data["group"] = group
            self._committed(job, group_id, got_committed)

        def got_committed(committed: dict[TopicPartition, int]) -> None:
            job.data["committed"] = committed
            if spec.kind == "group":
                self._committed(job, str(spec.value), got_source)
            else:
                got_source({})

        def got_source(source: dict[TopicPartition, int]) -> None:
            job.data["source"] = source
            self._list_offsets(job, topic, EARLIEST_TIMESTAMP, got_earliest)

        def got_earliest(earliest: dict[TopicPartition, ListOffsetsResponse]) -> None:
            job.data["earliest"] = earliest
            self._list_offsets(job, topic, timestamp, plan)  # type: ignore[arg-type]

        def plan(target: dict[TopicPartition, ListOffsetsResponse]) -> None:
            rows = []
            for tp in sorted(job.data["earliest"]):
                first = job.data["earliest"][tp]
                start, end = first.log_start_offset, first.high_watermark
                current = job.data["committed"].get(tp)
                if spec.kind in ("earliest", "latest", "timestamp"):
                    new = target[tp].offset if target[tp].offset >= 0 else end
                elif spec.kind == "offset":
                    new = int(spec.value)  # type: ignore[arg-type]
                elif spec.kind == "shift":
                    new = (current if current is not None else end) + int(spec.value)  # type: ignore[arg-type]
                else:
                    new = job.data["source"].get(tp, current if current is not None else end)
                new = min(max(new, start), end)
                base = current if current is not None else end
                rows.append(PartitionReset(tp, current, new, start, end,
                                           redelivered=max(0, min(base, end) - new) if new < base else 0,
                                           skipped=max(0, new - max(base, start)) if new > base else 0))
            group = job.data["group"]
            members = tuple(m["client_id"] for m in group.get("members", []))
            result = ResetPlan(group_id, topic, spec, group.get("state", "Dead"), members, tuple(rows), dry_run)
            if dry_run:
                job.future._finish(result)
                return
            if result.group_state not in ("Empty", "Dead"):
                job.future._finish(ResetPlan(**{**result.__dict__, "error": (
                    f"group {group_id} is {result.group_state} with {len(members)} member(s) "
                    f"({', '.join(members[:5])}); offsets can only be reset while no consumer of the group is "
                    f"running (Kafka's rule: a live member would commit over the reset). Stop them first.")}))
                return
            apply(result)

        def apply(result: ResetPlan) -> None:
            offsets = tuple((r.tp, r.new, -1, "reset") for r in result.rows)

            def done(resp: OffsetCommitResponse) -> None:
                errors = sorted({e for _, e in resp.errors if e != NONE})
                if errors:
                    job.future._finish(ResetPlan(**{**result.__dict__, "error": (
                        f"the coordinator refused the commit ({errors[0]}); the group probably has members again")}))
                    return
                applied = ResetPlan(**{**result.__dict__, "applied": True})
                self.cluster.events.emit(self.cluster.now_ms(), "OffsetsReset", applied.explain(),
                                         group=group_id, topic=topic, redelivered=applied.redelivered,
                                         skipped=applied.skipped)
                job.future._finish(applied)

            self._group_call(job, group_id, lambda c: OffsetCommitRequest(group_id, -1, "", None, offsets, c), done)

        self._describe(job, group_id, got_group)
        return job.future
