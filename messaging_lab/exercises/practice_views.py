"""Interview practice pages. Thin: call messaging_lab.exercises.practice, render."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging_lab.exercises import practice
from messaging_lab.exercises.models import PracticeSession
from messaging_lab.exercises.services import ExerciseError
from messaging_lab.labs.services import visitor_key
from messaging_lab.labs.views import lab_page_context


def _session_or_404(request: HttpRequest, session_id: int) -> PracticeSession:
    try:
        return practice.owned(request, session_id)
    except ExerciseError as exc:
        raise Http404(str(exc)) from None


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    rounds = PracticeSession.objects.filter(learner=visitor_key(request))[:10]
    return render(request, "exercises/practice_home.html",
                  {"rounds": [{"s": r, **practice.summary(r)} for r in rounds], "count": practice.PRACTICE_QUESTIONS,
                   "pool": len(practice.pool())})


@require_POST
def start(request: HttpRequest) -> HttpResponse:
    try:
        session = practice.start(request)
    except ExerciseError as exc:
        return render(request, "exercises/practice_home.html", {"error": str(exc), "rounds": []}, status=400)
    return redirect("practice:round", session_id=session.pk)


def _round(request: HttpRequest, session: PracticeSession, status: int = 200, **extra) -> HttpResponse:  # type: ignore[no-untyped-def]
    if session.finished:
        return render(request, "exercises/practice_summary.html", {"s": session, **practice.summary(session)},
                      status=status)
    return render(request, "exercises/practice_round.html", {"s": session, **practice.item(session), **extra},
                  status=status)


@require_GET
def round_page(request: HttpRequest, session_id: int) -> HttpResponse:
    return _round(request, _session_or_404(request, session_id))


@require_POST
def answer(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_or_404(request, session_id)
    try:
        practice.answer(session, request.POST.get("answer", "")[:practice.MAX_ANSWER_CHARS + 1])
    except ExerciseError as exc:
        return _round(request, session, status=400, error=str(exc))
    return redirect("practice:round", session_id=session.pk)


@require_POST
def next_question(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_or_404(request, session_id)
    try:
        practice.next_question(session)
    except ExerciseError as exc:
        return _round(request, session, status=400, error=str(exc))
    return redirect("practice:round", session_id=session.pk)


@require_POST
def demo(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_or_404(request, session_id)
    try:
        practice.demo(request, session)
    except ExerciseError as exc:
        return _round(request, session, status=400, error=str(exc))
    return redirect("practice:demo_page", session_id=session.pk)


@require_GET
def demo_page(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_or_404(request, session_id)
    if session.demo_lab is None or session.finished:
        return redirect("practice:round", session_id=session.pk)
    context = lab_page_context(request, session.demo_lab)
    context.update({"read_only": True, "s": session, **practice.item(session)})
    return render(request, "exercises/practice_demo.html", context)


@require_POST
def run_demo(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session_or_404(request, session_id)
    try:
        kinds = practice.run_demo(session)
    except ExerciseError as exc:
        return render(request, "exercises/_demo_result.html", {"error": str(exc)}, status=400)
    return render(request, "exercises/_demo_result.html", {"kinds": kinds, **practice.item(session), "s": session})
