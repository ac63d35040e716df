"""Lab pages and controls. Thin: parse the request, call a service, render a page or a partial."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core_log.lab import COMMAND_KINDS, TEMPLATES, LabCommandError
from messaging_lab.labs import services
from messaging_lab.labs.runtime import CONTROL_KINDS, SPEEDS

MAX_FIELD_CHARS = 200


@require_GET
def lab_list(request: HttpRequest) -> HttpResponse:
    return render(request, "labs/list.html", {"labs": services.my_labs(request), "templates": TEMPLATES})


@require_POST
def lab_create(request: HttpRequest) -> HttpResponse:
    try:
        lab = services.create_lab(request, request.POST.get("template", "sandbox"), request.POST.get("name", ""),
                                  request.POST.get("brokers", "3"))
    except services.LabError as exc:
        return render(request, "labs/list.html", {"labs": services.my_labs(request), "templates": TEMPLATES,
                                                  "error": str(exc)}, status=400)
    return redirect("labs:detail", lab_id=lab.pk)


def _lab_or_404(request: HttpRequest, lab_id: str):  # type: ignore[no-untyped-def]
    try:
        return services.owned_lab(request, lab_id)
    except services.LabError as exc:
        raise Http404(str(exc)) from None


def lab_page_context(request: HttpRequest, lab) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What templates/labs/lab.html needs for the owner's live page (guided labs extend that page)."""
    share_url = request.build_absolute_uri(f"/labs/watch/{lab.share_token}/")
    return {"lab": lab, "read_only": False, "ws_path": f"/ws/labs/{lab.pk}/", "share_url": share_url,
            "speeds": SPEEDS, "brokers": range(1, lab.brokers + 1), "default_rf": min(3, lab.brokers)}


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
