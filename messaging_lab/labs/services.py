"""The labs' actions: what views and consumers call. No engine logic here — it is in core_log.lab."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from core_log.cluster import MAX_BROKERS
from core_log.lab import TEMPLATES, LabCommandError
from messaging_lab.labs.models import MAX_LABS_PER_VISITOR, Lab, LabCommand
from messaging_lab.labs.runtime import CONTROL_KINDS, runtime

MAX_NAME_CHARS = 80


class LabError(ValueError):
    """A request about labs that cannot be done (limit, unknown lab, not yours); the message says why."""


def visitor_key(request: HttpRequest) -> str:
    """The browser session's key (created if the visitor has none yet): labs belong to it."""
    if not request.session.session_key:
        request.session["visitor"] = True
        request.session.save()
    return str(request.session.session_key)


def my_labs(request: HttpRequest) -> list[Lab]:
    """The visitor's own labs (guided labs are listed with their exercises on /learn/)."""
    return list(Lab.objects.filter(owner_session=visitor_key(request), exercise=""))


def create_lab(request: HttpRequest, template: str, name: str, brokers: str | int = 3) -> Lab:
    if template not in TEMPLATES:
        raise LabError(f"choose a template: {', '.join(TEMPLATES)}")
    try:
        broker_count = int(brokers)
    except (TypeError, ValueError):
        broker_count = 0
    if not 1 <= broker_count <= MAX_BROKERS:
        raise LabError(f"a lab has 1 to {MAX_BROKERS} brokers")
    name = (name or "").strip() or "My sandbox"
    if len(name) > MAX_NAME_CHARS:
        raise LabError(f"a lab name has at most {MAX_NAME_CHARS} characters")
    owner = visitor_key(request)
    with transaction.atomic():
        if Lab.objects.filter(owner_session=owner, exercise="").count() >= MAX_LABS_PER_VISITOR:
            raise LabError(f"you have {MAX_LABS_PER_VISITOR} labs already (the limit); delete one first")
        lab = Lab.objects.create(owner_session=owner, name=name, template=template, brokers=broker_count,
                                 seed=secrets.randbits(48))
    runtime.call(lambda: runtime.create(lab))
    return lab


def fork_lab(request: HttpRequest, source: Lab, at_ms: int | None = None, name: str = "") -> Lab:
    """A new lab of the visitor's that is ``source`` as it was at ``at_ms`` (default: now), to go another way.

    The fork has the source's template, brokers and seed and a copy of its
    commands up to ``at_ms``; the engine is deterministic, so replaying them
    rebuilds exactly that moment (on first use, like a lab after a restart).
    The source is not touched. It counts against the visitor's lab limit.
    """
    now_ms = runtime.call(lambda: runtime.state(source.pk)["time_ms"])
    at_ms = now_ms if at_ms is None else at_ms
    if not isinstance(at_ms, int) or not 0 <= at_ms <= now_ms:
        raise LabError(f"fork at a moment between 0 and {now_ms} ms (the lab's simulated time now)")
    owner = visitor_key(request)
    name = (name or f"Fork of {source.name} at {at_ms / 1000:.1f} s").strip()[:MAX_NAME_CHARS]
    with transaction.atomic():
        if Lab.objects.filter(owner_session=owner, exercise="").count() >= MAX_LABS_PER_VISITOR:
            raise LabError(f"you have {MAX_LABS_PER_VISITOR} labs already (the limit); delete one first")
        fork = Lab.objects.create(owner_session=owner, name=name, template=source.template, brokers=source.brokers,
                                  seed=source.seed, sim_time_ms=at_ms, speed=source.speed, paused=True)
        commands = [c for c in source.commands.filter(sim_time_ms__lte=at_ms) if c.kind not in CONTROL_KINDS]
        LabCommand.objects.bulk_create(LabCommand(lab=fork, seq=i, sim_time_ms=c.sim_time_ms, kind=c.kind,
                                                  args=c.args) for i, c in enumerate(commands, 1))
    runtime.call(lambda: runtime.get(fork.pk))  # rebuild it now, so the first page load is quick
    return fork


def owned_lab(request: HttpRequest, lab_id: str) -> Lab:
    lab = Lab.objects.filter(pk=lab_id, owner_session=visitor_key(request)).first()
    if lab is None:
        raise LabError("no such lab in this browser (labs belong to the browser that created them)")
    return lab


def shared_lab(share_token: str) -> Lab:
    lab = Lab.objects.filter(share_token=share_token).first()
    if lab is None:
        raise LabError("this share link does not lead to a lab (it may have been deleted)")
    return lab


def delete_lab(request: HttpRequest, lab_id: str) -> None:
    lab = owned_lab(request, lab_id)
    runtime.call(lambda: runtime.forget(lab.pk))
    lab.delete()


def run_command(lab: Lab, command: dict[str, Any]) -> dict[str, Any]:
    """Apply a command on the engine thread; LabCommandError says what was wrong."""
    try:
        return runtime.call(lambda: runtime.apply(lab.pk, command))
    except LabCommandError:
        raise
    except (TypeError, ValueError) as exc:
        raise LabCommandError(str(exc)) from None


def lab_state(lab: Lab) -> dict[str, Any]:
    return runtime.call(lambda: runtime.state(lab.pk))


def probe_key(lab: Lab, key: str) -> dict[str, Any]:
    return runtime.call(lambda: runtime.probe_key(lab.pk, key))


def explore(lab: Lab, query: dict[str, Any]) -> dict[str, Any]:
    return runtime.call(lambda: runtime.explore(lab.pk, **query))
