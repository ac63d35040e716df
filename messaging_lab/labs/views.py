"""Lab pages and controls. Thin: parse the request, call a service, render a page or a partial."""

from __future__ import annotations

import json

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core_log.lab import COMMAND_KINDS, TEMPLATES, LabCommandError
from messaging_lab.labs import services
from messaging_lab.labs.runtime import CONTROL_KINDS, SPEEDS

MAX_FIELD_CHARS = 200


def _list_context(request: HttpRequest, **extra: object) -> dict[str, object]:
    return {"labs": services.my_labs(request), "templates": TEMPLATES, "max_import_bytes": services.MAX_IMPORT_BYTES,
            **extra}


@require_GET
def lab_list(request: HttpRequest) -> HttpResponse:
    return render(request, "labs/list.html", _list_context(request))


@require_POST
def lab_create(request: HttpRequest) -> HttpResponse:
    try:
        lab = services.create_lab(request, request.POST.get("template", "sandbox"), request.POST.get("name", ""),
                                  request.POST.get("brokers", "3"))
    except services.LabError as exc:
        return render(request, "labs/list.html", _list_context(request, error=str(exc)), status=400)
    return redirect("labs:detail", lab_id=lab.pk)


def _lab_or_404(request: HttpRequest, lab_id: str):  # type: ignore[no-untyped-def]
    try:
        return services.owned_lab(request, lab_id)
    except services.LabError as exc:
        raise Http404(str(exc)) from None


def lab_page_context(request: HttpRequest, lab) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What templates/labs/lab.html needs for the owner's live page (guided labs extend that page)."""
    share_url = request.build_absolute_uri(f"/labs/watch/{lab.share_token}/")
    source, forked_at = services.fork_source(lab)
    return {"lab": lab, "read_only": False, "ws_path": f"/ws/labs/{lab.pk}/", "share_url": share_url,
            "speeds": SPEEDS, "brokers": range(1, lab.brokers + 1), "default_rf": min(3, lab.brokers),
            "fork_source": source, "forked_at_s": None if forked_at is None else forked_at / 1000,
            "wire": services.listener_info(lab), "wire_topic": services.first_topic(lab)}


@require_GET
def lab_detail(request: HttpRequest, lab_id: str) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    if lab.exercise:
        return redirect("exercises:lab", exercise_id=lab.exercise)
    return render(request, "labs/lab.html", lab_page_context(request, lab))


@require_GET
def lab_watch(request: HttpRequest, share_token: str) -> HttpResponse:
    try:
        lab = services.shared_lab(share_token)
    except services.LabError as exc:
        raise Http404(str(exc)) from None
    return render(request, "labs/lab.html", {"lab": lab, "read_only": True, "ws_path": f"/ws/watch/{share_token}/",
                                             "speeds": SPEEDS, "brokers": range(1, lab.brokers + 1)})


@require_POST
def lab_delete(request: HttpRequest, lab_id: str) -> HttpResponse:
    try:
        services.delete_lab(request, lab_id)
    except services.LabError as exc:
        raise Http404(str(exc)) from None
    return redirect("labs:list")


@require_POST
def lab_command(request: HttpRequest, lab_id: str) -> HttpResponse:
    """Apply one command from a control form; answer with a result or error partial (htmx swaps it in)."""
    lab = _lab_or_404(request, lab_id)
    command: dict[str, str] = {}
    for key, value in request.POST.items():
        if key == "csrfmiddlewaretoken":
            continue
        if len(key) > 40 or len(value) > MAX_FIELD_CHARS:
            return render(request, "labs/_result.html", {"error": f"field {key[:40]!r} is too long"}, status=400)
        command[key] = value
    kind = command.get("kind", "")
    if kind not in COMMAND_KINDS and kind not in CONTROL_KINDS:
        return render(request, "labs/_result.html", {"error": f"unknown command {kind[:40]!r}"}, status=400)
    try:
        result = services.run_command(lab, command)
    except LabCommandError as exc:
        return render(request, "labs/_result.html", {"error": str(exc)}, status=400)
    if "plan" in result:
        plan = result["plan"]
        highlight = [{"partition": r["partition"], "from": min(r["new"], r["current"] if r["current"] is not None
                                                                else r["new"]),
                      "to": max(r["new"], r["current"] if r["current"] is not None else r["new"]),
                      "kind": "redelivered" if r["redelivered"] else "skipped"}
                     for r in plan["rows"] if r["redelivered"] or r["skipped"]]
        return render(request, "labs/_reset_plan.html", {"plan": plan, "highlight": highlight})
    return render(request, "labs/_result.html", {"result": result, "kind": kind})


@require_GET
def lab_probe(request: HttpRequest, lab_id: str) -> HttpResponse:
    lab = _lab_or_404(request, lab_id)
    try:
        probe = services.probe_key(lab, request.GET.get("key", ""))
    except LabCommandError as exc:
        return render(request, "labs/_probe.html", {"error": str(exc)}, status=400)
    return render(request, "labs/_probe.html", {"probe": probe, "others": sorted(probe["with"].items())})


@require_GET
def lab_explore(request: HttpRequest, lab_id: str) -> HttpResponse:
    """The log explorer: one replica's batches and records, read back from its segment files."""
    lab = _lab_or_404(request, lab_id)
    query: dict[str, object] = {"topic": request.GET.get("topic", "machine.telemetry")[:249]}
    try:
        query["broker"] = int(request.GET.get("broker", "1"))
        query["partition"] = int(request.GET.get("partition", "0"))
        for name in ("offset", "timestamp_ms"):
            if request.GET.get(name, "").strip():
                query[name] = int(request.GET[name])
    except ValueError:
        return render(request, "labs/_explorer.html", {"error": "broker, partition, offset and timestamp are "
                                                                 "whole numbers"}, status=400)
    if request.GET.get("key", "").strip():
        query["key"] = request.GET["key"][:200]
    try:
        view = services.explore(lab, query)
    except LabCommandError as exc:
        return render(request, "labs/_explorer.html", {"error": str(exc)}, status=400)
    return render(request, "labs/_explorer.html", {"x": view})


@require_GET
def lab_state(request: HttpRequest, lab_id: str) -> JsonResponse:
    """The lab's whole view as JSON (what the live page draws), for scripts and tests."""
    lab = _lab_or_404(request, lab_id)
    return JsonResponse(services.lab_state(lab))


# ── timeline: rewind, fork, compare, export and import ───────────────────────


def _error(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    return render(request, "labs/_result.html", {"error": message}, status=status)


@require_GET
def lab_timeline(request: HttpRequest, lab_id: str) -> JsonResponse:
    """The timeline bar's data: simulated time now, every logged command (time, kind) and the checkpoints held."""
    lab = _lab_or_404(request, lab_id)
    return JsonResponse(services.timeline(lab))


@require_GET
def lab_rewind(request: HttpRequest, lab_id: str) -> HttpResponse:
    """The lab's view as it was at ?at_ms= (rebuilt from a checkpoint and the command log); the live lab runs on."""
    lab = _lab_or_404(request, lab_id)
    try:
        at_ms = services.parse_at_ms(request.GET.get("at_ms"), services.lab_now_ms(lab))
        view = services.rewind(lab, at_ms)
    except services.LabError as exc:
        return _error(request, str(exc))
    return JsonResponse(view)


@require_POST
def lab_fork(request: HttpRequest, lab_id: str) -> HttpResponse:
    """Fork the lab at the posted at_ms (or now) into a new lab of this browser's, and open it."""
    lab = _lab_or_404(request, lab_id)
    try:
        raw = request.POST.get("at_ms", "").strip()
        at_ms = services.parse_at_ms(raw, services.lab_now_ms(lab)) if raw else None
        fork = services.fork_lab(request, lab, at_ms, request.POST.get("name", "")[:services.MAX_NAME_CHARS])
    except services.LabError as exc:
        return _error(request, str(exc))
    url = reverse("labs:detail", args=[fork.pk])
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_GET
def lab_compare(request: HttpRequest, lab_id: str) -> HttpResponse:
    """A fork and the lab it was forked from, side by side now (?partial=1: just the comparison, for refreshes)."""
    fork = _lab_or_404(request, lab_id)
    source, forked_at = services.fork_source(fork)
    if source is None:
        raise Http404("this lab is not a fork (or the lab it was forked from was deleted)")
    comparison = services.compare_labs(fork, source)
    context = {"lab": fork, "source": source, "forked_at_s": (forked_at or 0) / 1000, "c": comparison}
    if request.GET.get("partial"):
        return render(request, "labs/_compare.html", context)
    return render(request, "labs/compare.html", context)


@require_GET
def lab_export(request: HttpRequest, lab_id: str) -> HttpResponse:
    """The lab's run (seed + commands) as a versioned JSON file to import elsewhere."""
    lab = _lab_or_404(request, lab_id)
    run = services.export_run(lab)
    response = HttpResponse(json.dumps(run, indent=1, sort_keys=True), content_type="application/json")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in lab.name)[:40] or "lab"
    response["Content-Disposition"] = f'attachment; filename="{safe}-seed{lab.seed}.json"'
    return response


@require_POST
def lab_import(request: HttpRequest) -> HttpResponse:
    """Create a lab from an uploaded run file; it replays the run exactly (errors say what is wrong with the file)."""
    upload = request.FILES.get("run")
    htmx = bool(request.headers.get("HX-Request"))

    def refuse(message: str) -> HttpResponse:
        if htmx:
            return _error(request, message)
        return render(request, "labs/list.html", _list_context(request, import_error=message), status=400)

    if upload is None:
        return refuse("choose a run file (exported with 'Export run' on a lab page)")
    if upload.size is None or upload.size > services.MAX_IMPORT_BYTES:
        return refuse(f"the file is {upload.size} bytes; a run file may be at most {services.MAX_IMPORT_BYTES} bytes")
    try:
        lab = services.import_run(request, upload.read(services.MAX_IMPORT_BYTES + 1),
                                  request.POST.get("name", "")[:services.MAX_NAME_CHARS])
    except services.LabError as exc:
        return refuse(str(exc))
    url = reverse("labs:detail", args=[lab.pk])
    if htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


# ── your own Kafka client: the lab's wire listeners ──────────────────────────
@require_http_methods(["GET", "POST"])
def lab_wire(request: HttpRequest, lab_id: str) -> HttpResponse:
    """The lab's Kafka listeners: GET shows them; POST action=open|close switches them (htmx partial)."""
    lab = _lab_or_404(request, lab_id)
    error = ""
    try:
        if request.method == "POST":
            action = request.POST.get("action", "")
            if action not in ("open", "close"):
                return render(request, "labs/_wire.html", {"lab": lab, "info": services.listener_info(lab),
                                                          "error": f"action must be open or close, got {action[:20]!r}"},
                              status=400)
            info = services.open_listeners(lab) if action == "open" else services.close_listeners(lab)
        else:
            info = services.listener_info(lab)
    except (services.LabError, LabCommandError, OSError) as exc:
        info, error = services.listener_info(lab), str(exc)
    return render(request, "labs/_wire.html", {"lab": lab, "info": info, "error": error,
                                              "topic": services.first_topic(lab)}, status=400 if error else 200)
