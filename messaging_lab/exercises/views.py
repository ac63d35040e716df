"""Guided lab pages: the index, a lab with its guide panel, and the panel's actions. Thin: call a service, render."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from messaging_lab.classroom.services import student_in_lab
from messaging_lab.exercises import services
from messaging_lab.labs.services import visitor_key
from messaging_lab.labs.views import lab_page_context

MAX_FIELD_CHARS = 500


def _exercise_or_404(exercise_id: str):  # type: ignore[no-untyped-def]
    try:
        return services.exercise(exercise_id)
    except services.ExerciseError as exc:
        raise Http404(str(exc)) from None


def _guided_lab_or_404(request: HttpRequest, exercise_id: str):  # type: ignore[no-untyped-def]
    ex = _exercise_or_404(exercise_id)
    progress = services.progress_for(visitor_key(request), ex.id)
    if progress is None or progress.lab is None:
        raise Http404("start this lab first")
    return ex, progress.lab


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    sections = services.index(visitor_key(request))
    labs = [lab for section in sections for lab in section["labs"]]
    return render(request, "exercises/index.html", {
        "sections": sections, "total": len(labs), "done": sum(1 for lab in labs if lab["done"]),
        "steps_total": sum(len(lab["exercise"].steps) for lab in labs),
        "steps_done": sum(lab["steps_done"] for lab in labs)})


@require_GET
def lab(request: HttpRequest, exercise_id: str) -> HttpResponse:
    """The guided lab if the learner has started it, else its summary with a Start button."""
    ex = _exercise_or_404(exercise_id)
    progress = services.progress_for(visitor_key(request), ex.id)
    if progress is None or progress.lab is None:
        return render(request, "exercises/start.html", {"ex": ex})
    context = lab_page_context(request, progress.lab)
    context.update(_panel_context(ex, progress.lab))
    student = student_in_lab(request, progress.lab)
    if student is not None:  # a class's guided lab: the class bar too (questions, pause, back to following)
        context.update(classroom=student.classroom, student=student, role="student", following=False, guided=True,
                       class_ws=f"/ws/classroom/{student.classroom_id}/")
    return render(request, "exercises/guided_lab.html", context)


@require_POST
def start(request: HttpRequest, exercise_id: str) -> HttpResponse:
    _exercise_or_404(exercise_id)
    try:
        services.start(request, exercise_id, restart=request.POST.get("restart") == "1")
    except services.ExerciseError as exc:
        return render(request, "exercises/start.html", {"ex": services.exercise(exercise_id), "error": str(exc)},
                      status=400)
    return redirect("exercises:lab", exercise_id=exercise_id)


def _panel_context(ex, lab, **extra):  # type: ignore[no-untyped-def]
    run, _ = services.guide_state(lab)
    step = run.step
    answers = run.state["answers"].get(step.id, {}) if step else {}
    checks = run.view()["checks"]
    questions = [{"q": q, "given": answers.get(q.id)} for q in step.questions] if step else []
    return {"ex": ex, "lab": lab, "run": run, "step": step, "questions": questions, "checks": checks,
            "hints": step.hints[:run.state.get("hints", 0)] if step else (), "number": run.step_index + 1,
            "summary": run.summary() if run.finished else None,
            "next_exercise": _next_exercise(ex), **extra}


def _next_exercise(ex):  # type: ignore[no-untyped-def]
    ordered = sorted(services.exercises().values(), key=lambda e: (e.section, e.order))
    later = [e for e in ordered if (e.section, e.order) > (ex.section, ex.order)]
    return later[0] if later else None


def _panel(request: HttpRequest, ex, lab, status: int = 200, **extra) -> HttpResponse:  # type: ignore[no-untyped-def]
    return render(request, "exercises/_guide.html", _panel_context(ex, lab, **extra), status=status)


@require_GET
def panel(request: HttpRequest, exercise_id: str) -> HttpResponse:
    ex, lab = _guided_lab_or_404(request, exercise_id)
    return _panel(request, ex, lab)


def _act(request: HttpRequest, exercise_id: str, action) -> HttpResponse:  # type: ignore[no-untyped-def]
    ex, lab = _guided_lab_or_404(request, exercise_id)
    try:
        message = action(lab)
    except services.ExerciseError as exc:
        return _panel(request, ex, lab, status=400, error=str(exc))
    return _panel(request, ex, lab, message=message)


@require_POST
def answer(request: HttpRequest, exercise_id: str) -> HttpResponse:
    question = request.POST.get("question", "")[:64]
    given = request.POST.get("answer", "")
    if len(given) > MAX_FIELD_CHARS:
        given = ""  # refused by the guide with the limit named

    def act(lab):  # type: ignore[no-untyped-def]
        result = services.answer(lab, question, given)
        return "Prediction saved." if result["before_outcome"] else "Answer saved (after the outcome was visible)."
    return _act(request, exercise_id, act)


@require_POST
def next_step(request: HttpRequest, exercise_id: str) -> HttpResponse:
    return _act(request, exercise_id, lambda lab: services.next_step(lab))


@require_POST
def hint(request: HttpRequest, exercise_id: str) -> HttpResponse:
    return _act(request, exercise_id, lambda lab: None if services.hint(lab) else None)


@require_POST
def show_me(request: HttpRequest, exercise_id: str) -> HttpResponse:
    def act(lab):  # type: ignore[no-untyped-def]
        applied = services.show_me(lab)
        return "Done for you: " + ", ".join(a["kind"] for a in applied) + "." if applied else \
            "Nothing to do here: watch the lab."
    return _act(request, exercise_id, act)
