"""The labs' actions: what views and consumers call. No engine logic here — it is in core_log.lab."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from core_log.cluster import MAX_BROKERS
from core_log.lab import COMMAND_KINDS, TEMPLATES, LabCommandError
from messaging_lab.labs.models import MAX_LABS_PER_VISITOR, Lab, LabCommand
from messaging_lab.labs.runtime import CONTROL_KINDS, rebuild, rebuild_at, rewind_view, runtime

MAX_NAME_CHARS = 80
RUN_FORMAT = "messaging-lab-run"
RUN_FORMAT_VERSION = 1
MAX_IMPORT_BYTES = 1024 * 1024  # an exported run file (JSON) may be at most this big
MAX_IMPORT_COMMANDS = 5000  # commands in one imported run
MAX_IMPORT_SIM_MS = 20 * 60 * 1000  # an imported run replays up to 20 simulated minutes (≈ 2 min of rebuilding)
MAX_IMPORT_ARGS = 30  # fields per command
MAX_IMPORT_ARG_CHARS = 200  # characters per field (the control forms' own limit)
MAX_SEED = 2 ** 63 - 1


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
                                  seed=source.seed, sim_time_ms=at_ms, speed=source.speed, paused=True,
                                  forked_from=source, forked_at_ms=at_ms)
        commands = [c for c in source.commands.filter(sim_time_ms__lte=at_ms) if c.kind not in CONTROL_KINDS]
        LabCommand.objects.bulk_create(LabCommand(lab=fork, seq=i, sim_time_ms=c.sim_time_ms, kind=c.kind,
                                                  args=c.args) for i, c in enumerate(commands, 1))
    # Rebuild it now, so the first page load is quick: from the source's nearest checkpoint when it has one
    # (restored into the fork's own directory, plus the source's commands after it), else from the seed.
    # Built here, not on the engine thread, so the other labs keep running meanwhile.
    data_dir = str(Path(settings.LAB_DATA_DIR) / fork.pk)
    try:
        world, how = rebuild_at(source, at_ms, data_dir)
    except ValueError as exc:  # the source moved on meanwhile cannot make at_ms invalid; this is belt and braces
        fork.delete()
        raise LabError(str(exc)) from None
    fork.rebuilt = how  # type: ignore[attr-defined]  # how it was built (from_checkpoint_ms, seconds), for the page
    runtime.call(lambda: runtime.adopt(fork, world))
    return fork


def fork_source(fork: Lab) -> tuple[Lab | None, int | None]:
    """The lab ``fork`` was forked from and at which moment ((None, None) if it is not a fork or its source is gone).

    Whoever owns the fork may compare it with its source: they could see the source when they forked it.
    """
    source = fork.forked_from  # None once the source is deleted (on_delete=SET_NULL)
    return (source, fork.forked_at_ms) if source is not None else (None, None)


def parse_at_ms(raw: Any, now_ms: int) -> int:
    """A moment from a form or query (simulated milliseconds, whole number in [0, now]); LabError says why not."""
    text = str(raw if raw is not None else "").strip()
    if not text or len(text) > 15 or not text.isdigit():
        raise LabError(f"the moment is a whole number of simulated milliseconds from 0 to {now_ms}, got {text[:20]!r}")
    at_ms = int(text)
    if at_ms > now_ms:
        raise LabError(f"the lab has only run {now_ms / 1000:.1f} simulated seconds; choose a moment from 0 to "
                       f"{now_ms} ms")
    return at_ms


def lab_now_ms(lab: Lab) -> int:
    return runtime.call(lambda: runtime.get(lab.pk).world.now_ms())


def timeline(lab: Lab) -> dict[str, Any]:
    """The timeline bar's data: now, the logged commands (time, kind), and the checkpoints this process holds."""
    info = runtime.call(lambda: runtime.checkpoint_info(lab.pk))
    commands = [{"seq": c.seq, "at_ms": c.sim_time_ms, "kind": c.kind} for c in lab.commands.all()]
    return {"now_ms": info["now_ms"], "commands": commands, "checkpoints": info}


def rewind(lab: Lab, at_ms: int) -> dict[str, Any]:
    """The lab's view as it was at ``at_ms`` (rebuilt; the live lab keeps running untouched)."""
    try:
        return rewind_view(lab, at_ms)
    except ValueError as exc:
        raise LabError(str(exc)) from None


# ── export and import of a run (seed + commands) ─────────────────────────────


def export_run(lab: Lab) -> dict[str, Any]:
    """The lab's run as a versioned, self-contained JSON object: replaying it rebuilds the lab exactly."""
    until_ms = lab_now_ms(lab)
    return {"format": RUN_FORMAT, "version": RUN_FORMAT_VERSION, "name": lab.name, "template": lab.template,
            "brokers": lab.brokers, "seed": lab.seed, "exercise": lab.exercise,
            "commands": [[c.sim_time_ms, c.kind, c.args] for c in lab.commands.filter(sim_time_ms__lte=until_ms)],
            "until_ms": until_ms}


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise LabError(f"{name} must be a whole number from {low} to {high}, got {str(value)[:40]!r}")
    return value


def parse_run(data: bytes) -> dict[str, Any]:
    """Validate an exported run file strictly; LabError says exactly what is wrong (nothing is created)."""
    if len(data) > MAX_IMPORT_BYTES:
        raise LabError(f"the file is {len(data)} bytes; a run file may be at most {MAX_IMPORT_BYTES} bytes")
    try:
        run = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise LabError("the file is not UTF-8 text (export a run with 'Export run' on a lab page)") from None
    except ValueError as exc:
        raise LabError(f"the file is not JSON: {exc}") from None
    if not isinstance(run, dict):
        raise LabError("the file must hold one JSON object")
    expected = {"format", "version", "name", "template", "brokers", "seed", "exercise", "commands", "until_ms"}
    unknown = set(run) - expected
    if unknown:
        raise LabError(f"unknown field(s) {', '.join(sorted(unknown))[:200]}; a run has {', '.join(sorted(expected))}")
    missing = {"format", "version", "template", "brokers", "seed", "commands", "until_ms"} - set(run)
    if missing:
        raise LabError(f"missing field(s): {', '.join(sorted(missing))}")
    if run["format"] != RUN_FORMAT:
        raise LabError(f"format must be {RUN_FORMAT!r}, got {str(run['format'])[:40]!r}")
    if run["version"] != RUN_FORMAT_VERSION:
        raise LabError(f"this server reads run format version {RUN_FORMAT_VERSION}, the file is version "
                       f"{str(run['version'])[:20]}")
    if run["template"] not in TEMPLATES:
        raise LabError(f"template must be one of {', '.join(TEMPLATES)}, got {str(run['template'])[:40]!r}")
    brokers = _whole(run["brokers"], "brokers", 1, MAX_BROKERS)
    seed = _whole(run["seed"], "seed", 0, MAX_SEED)
    until_ms = _whole(run["until_ms"], "until_ms", 0, MAX_IMPORT_SIM_MS)
    name = run.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise LabError(f"name must be text of at most {MAX_NAME_CHARS} characters")
    exercise = run.get("exercise", "")
    if not isinstance(exercise, str) or len(exercise) > 64:
        raise LabError("exercise must be text of at most 64 characters")
    commands = run["commands"]
    if not isinstance(commands, list):
        raise LabError("commands must be a list of [time_ms, kind, args]")
    if len(commands) > MAX_IMPORT_COMMANDS:
        raise LabError(f"the run has {len(commands)} commands; at most {MAX_IMPORT_COMMANDS} can be imported")
    known = set(COMMAND_KINDS) | set(CONTROL_KINDS)
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    previous = 0
    for i, entry in enumerate(commands, 1):
        where = f"command {i}"
        if not isinstance(entry, list) or len(entry) != 3:
            raise LabError(f"{where}: must be [time_ms, kind, args]")
        at_ms, kind, args = entry
        at_ms = _whole(at_ms, f"{where}: time_ms", 0, until_ms)
        if at_ms < previous:
            raise LabError(f"{where}: its time {at_ms} ms is before the previous command's ({previous} ms); "
                           f"times must not decrease")
        previous = at_ms
        if not isinstance(kind, str) or kind not in known:
            raise LabError(f"{where}: unknown command kind {str(kind)[:40]!r}")
        if not isinstance(args, dict) or len(args) > MAX_IMPORT_ARGS:
            raise LabError(f"{where}: args must be an object of at most {MAX_IMPORT_ARGS} fields")
        for key, value in args.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 40 or key == "kind":
                raise LabError(f"{where}: field name {str(key)[:40]!r} is not allowed")
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise LabError(f"{where}: field {key!r} must be text, a number, true/false or null")
            if isinstance(value, str) and len(value) > MAX_IMPORT_ARG_CHARS:
                raise LabError(f"{where}: field {key!r} has more than {MAX_IMPORT_ARG_CHARS} characters")
        parsed.append((at_ms, kind, args))
    return {"name": name, "template": run["template"], "brokers": brokers, "seed": seed, "exercise": exercise,
            "commands": parsed, "until_ms": until_ms}


def import_run(request: HttpRequest, data: bytes, name: str = "") -> Lab:
    """A new lab of the visitor's that replays an exported run exactly (same template, brokers, seed, commands).

    It is rebuilt here, up to the run's ``until_ms``, and starts paused. A guided
    lab's run is imported as a plain lab (its steps are not).
    """
    run = parse_run(data)
    owner = visitor_key(request)
    title = (name or "").strip() or f"Imported: {run['name'] or run['template']}"
    title = title[:MAX_NAME_CHARS]
    with transaction.atomic():
        if Lab.objects.filter(owner_session=owner, exercise="").count() >= MAX_LABS_PER_VISITOR:
            raise LabError(f"you have {MAX_LABS_PER_VISITOR} labs already (the limit); delete one first")
        lab = Lab.objects.create(owner_session=owner, name=title, template=run["template"], brokers=run["brokers"],
                                 seed=run["seed"], sim_time_ms=run["until_ms"], paused=True)
        LabCommand.objects.bulk_create(LabCommand(lab=lab, seq=i, sim_time_ms=at, kind=kind, args=args)
                                       for i, (at, kind, args) in enumerate(run["commands"], 1))
    try:
        world, store = rebuild(lab, run["until_ms"], str(Path(settings.LAB_DATA_DIR) / lab.pk), keep_checkpoints=True)
    except Exception:
        lab.delete()
        raise
    runtime.call(lambda: runtime.adopt(lab, world, store))
    return lab


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


# ── compare a fork with its source ───────────────────────────────────────────


def _broker_status(b: dict[str, Any]) -> str:
    return "down" if not b["alive"] else "isolated" if b["isolated"] else "fenced" if b["fenced"] else "up"


def _side(lab: Lab, view: dict[str, Any]) -> dict[str, Any]:
    g = view["guarantees"]
    lag = (view.get("metrics", {}).get("latest", {}) or {}).get("group_lag") or {}
    return {
        "lab": lab, "time_ms": view["time_ms"], "acked": g["acked"], "consumed": g["consumed"], "valid": g["valid"],
        "anomalies": {a["name"]: a["count"] for a in g["anomalies"]},
        "leaders": {f"{p['topic']}-{p['partition']}": p["leader"] for p in view["partitions"]},
        "isr": {f"{p['topic']}-{p['partition']}": p["isr"] for p in view["partitions"]},
        "brokers": {b["id"]: _broker_status(b) for b in view["brokers"]},
        "lag": {group: (info or {}).get("lag_records") for group, info in sorted(lag.items())},
        "events": [e for e in view["events"]][-10:][::-1],
    }


def _rows(fork: dict[str, Any], source: dict[str, Any]) -> list[dict[str, Any]]:
    keys = list(dict.fromkeys(list(source) + list(fork)))
    return [{"name": k, "fork": fork.get(k), "source": source.get(k), "differs": fork.get(k) != source.get(k)}
            for k in keys]


def compare_labs(fork: Lab, source: Lab) -> dict[str, Any]:
    """Both labs now, and where they differ: time, acked/consumed, anomalies, brokers, leaders and ISR, group lag."""
    f, s = _side(fork, lab_state(fork)), _side(source, lab_state(source))
    return {
        "fork": f, "source": s,
        "totals": _rows({"simulated time (s)": round(f["time_ms"] / 1000, 1), "acknowledged": f["acked"],
                         "consumed": f["consumed"], "guarantees hold": f["valid"]},
                        {"simulated time (s)": round(s["time_ms"] / 1000, 1), "acknowledged": s["acked"],
                         "consumed": s["consumed"], "guarantees hold": s["valid"]}),
        "anomalies": _rows(f["anomalies"], s["anomalies"]),
        "brokers": _rows({f"broker {k}": v for k, v in f["brokers"].items()},
                         {f"broker {k}": v for k, v in s["brokers"].items()}),
        "leaders": [{**r, "fork_isr": f["isr"].get(r["name"]), "source_isr": s["isr"].get(r["name"]),
                     "differs": r["differs"] or f["isr"].get(r["name"]) != s["isr"].get(r["name"])}
                    for r in _rows(f["leaders"], s["leaders"])],
        "lag": _rows(f["lag"], s["lag"]),
    }


# ── the lab's Kafka listeners (labs/wire.py) ─────────────────────────────────
def open_listeners(lab: Lab) -> dict[str, Any]:
    """Open a listener per broker so real Kafka clients can use the lab; the lab then runs at 1×."""
    from messaging_lab.labs import wire

    return wire.open_listeners(lab.pk)


def close_listeners(lab: Lab) -> dict[str, Any]:
    from messaging_lab.labs import wire

    return wire.close_listeners(lab.pk)


def listener_info(lab: Lab) -> dict[str, Any]:
    """``{"open": False}``, or the bootstrap address, each broker's port and the open connections."""
    from messaging_lab.labs import wire

    return wire.listener_info(lab.pk)


def first_topic(lab: Lab) -> str:
    """The lab's first topic by name (internal ones left out), for the client snippets; a placeholder if none."""
    topics = runtime.call(lambda: sorted(t for t in runtime.get(lab.pk).world.cluster.topics if not t.startswith("__")))
    return topics[0] if topics else "my-topic"
