"""Classroom pages. Thin: check who is asking, call a service, render a page or a partial."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode

from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core_log.lab import TEMPLATES
from messaging_lab.classroom import models as m
from messaging_lab.classroom import services
from messaging_lab.labs.runtime import SPEEDS
from messaging_lab.labs.views import lab_page_context

MAX_FIELD_CHARS = 2000  # any one form field; the services apply the exact limits
QUESTIONS_SHOWN = 10  # the dashboard lists the newest questions


class LoginView(auth_views.LoginView):
    template_name = "classroom/login.html"
    next_page = "classroom:index"


class LogoutView(auth_views.LogoutView):
    next_page = "home"


def instructor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(reverse("classroom:login") + "?" + urlencode({"next": request.get_full_path()}))
        if not services.is_instructor(request.user):
            return render(request, "classroom/not_instructor.html", status=403)
        return view(request, *args, **kwargs)
    return wrapped


def _fields(request: HttpRequest, *names: str) -> dict[str, str] | None:
    values = {name: request.POST.get(name, "") for name in names}
    return None if any(len(v) > MAX_FIELD_CHARS for v in values.values()) else values


def _instructor_classroom(request: HttpRequest, classroom_id: int):  # type: ignore[no-untyped-def]
    try:
        return services.instructor_classroom(request.user, classroom_id)
    except services.ClassroomError as exc:
        raise Http404(str(exc)) from None


def _exercise_choices() -> list[tuple[str, str]]:
    from messaging_lab.exercises.services import exercises

    return sorted(((ex.id, ex.title) for ex in exercises().values()), key=lambda item: item[0])


# ── instructor ───────────────────────────────────────────────────────────────
@require_GET
@instructor_required
def index(request: HttpRequest) -> HttpResponse:
    return _index(request)


def _index(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    classes = [{"c": c, "open": services.code_is_open(c)} for c in services.my_classrooms(request.user)]
    return render(request, "classroom/index.html", {"classes": classes, "templates": TEMPLATES,
                                                    "exercises": _exercise_choices(), **extra}, status=status)


@require_POST
@instructor_required
def create(request: HttpRequest) -> HttpResponse:
    fields = _fields(request, "name", "template", "exercise")
    if fields is None:
        return _index(request, status=400, error="a field is too long")
    try:
        classroom = services.create_classroom(request, fields["name"], fields["template"] or "sandbox",
                                              fields["exercise"])
    except services.ClassroomError as exc:
        return _index(request, status=400, error=str(exc))
    return redirect("classroom:detail", classroom_id=classroom.pk)


@require_GET
def detail(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The instructor's dashboard for its instructor; the follow page for its students; else the join page."""
    if services.is_instructor(request.user) and \
            m.Classroom.objects.filter(pk=classroom_id, instructor=request.user).exists():
        return _dashboard(request, _instructor_classroom(request, classroom_id))
    student = services.student_for(request, classroom_id)
    if student is None:
        return redirect("classroom:join")
    return _follow(request, student)


def _dashboard(request: HttpRequest, classroom, status: int = 200, **extra: Any) -> HttpResponse:  # type: ignore[no-untyped-def]
    join_url = request.build_absolute_uri(reverse("classroom:join")) + "?" + urlencode({"code": classroom.code})
    return render(request, "classroom/dashboard.html", {
        "classroom": classroom, "code_open": services.code_is_open(classroom), "join_url": join_url,
        "rows": services.dashboard(classroom), **_question_items(classroom), "ws_path": f"/ws/classroom/{classroom.pk}/",
        "limits": {"options": (m.MIN_OPTIONS, m.MAX_OPTIONS), "prompt": m.MAX_PROMPT_CHARS}, **extra},
        status=status)


@require_GET
@instructor_required
def roster(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _instructor_classroom(request, classroom_id)
    return render(request, "classroom/_roster.html", {"classroom": classroom, "rows": services.dashboard(classroom)})


@require_GET
@instructor_required
def present(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The instructor's own lab page (full controls) with the class bar; what students follow."""
    classroom = _instructor_classroom(request, classroom_id)
    try:
        lab = services.present_lab(request, classroom)
    except services.ClassroomError as exc:
        raise Http404(str(exc)) from None
    context = lab_page_context(request, lab)
    context.update(classroom=classroom, role="instructor", class_ws=f"/ws/classroom/{classroom.pk}/")
    return render(request, "classroom/lab.html", context)


@require_POST
@instructor_required
def push(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _instructor_classroom(request, classroom_id)
    fields = _fields(request, "kind", "prompt", "options", "right")
    if fields is None:
        return _questions(request, classroom, status=400, error="a field is too long")
    try:
        services.push_question(classroom, fields["kind"], fields["prompt"], fields["options"], fields["right"])
    except services.ClassroomError as exc:
        return _questions(request, classroom, status=400, error=str(exc))
    return _questions(request, classroom, message="Pushed to the class.")


@require_POST
@instructor_required
def reveal(request: HttpRequest, classroom_id: int, question_id: int) -> HttpResponse:
    classroom = _instructor_classroom(request, classroom_id)
    try:
        services.reveal(classroom, question_id)
    except services.ClassroomError as exc:
        return _questions(request, classroom, status=400, error=str(exc))
    return _questions(request, classroom, message="Revealed to the class.")


def _questions(request: HttpRequest, classroom, status: int = 200, **extra: Any) -> HttpResponse:  # type: ignore[no-untyped-def]
    return render(request, "classroom/_questions.html", {"classroom": classroom, **_question_items(classroom),
                                                         **extra}, status=status)


def _question_items(classroom) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    questions = list(classroom.questions.all()[:QUESTIONS_SHOWN])
    items = []
    for q in questions:
        d = services.distribution(q)
        items.append({"q": q, "d": d, "rows": list(zip(q.options, d.get("counts", [])))})
    return {"questions": items, "current": questions[0] if questions else None}


@require_GET
@instructor_required
def questions(request: HttpRequest, classroom_id: int) -> HttpResponse:
    return _questions(request, _instructor_classroom(request, classroom_id))


@require_POST
@instructor_required
def pause(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _instructor_classroom(request, classroom_id)
    paused = request.POST.get("paused") != "0"
    changed = services.pause_all(classroom, paused=paused)
    word = "Paused" if paused else "Resumed"
    return render(request, "classroom/_pause.html", {"classroom": classroom,
                                                     "message": f"{word} {changed} lab{'s' if changed != 1 else ''}."})


@require_POST
@instructor_required
def code(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _instructor_classroom(request, classroom_id)
    action = request.POST.get("action", "")
    if action == "new":
        services.new_join_code(classroom)
    elif action == "close":
        services.close_join_code(classroom)
    else:
        return _dashboard(request, classroom, status=400, error="the code action is 'new' or 'close'")
    return redirect("classroom:detail", classroom_id=classroom.pk)


@require_POST
@instructor_required
def delete(request: HttpRequest, classroom_id: int) -> HttpResponse:
    services.delete_classroom(_instructor_classroom(request, classroom_id))
    return redirect("classroom:index")


# ── students ─────────────────────────────────────────────────────────────────
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "classroom/join.html", {"code": services.normalise_code(request.GET.get("code", ""))[:6],
                                                       "max_name": m.MAX_DISPLAY_NAME_CHARS})
    fields = _fields(request, "code", "display_name")
    context: dict[str, Any] = {"max_name": m.MAX_DISPLAY_NAME_CHARS}
    if fields is None:
        return render(request, "classroom/join.html", {**context, "error": "a field is too long"}, status=400)
    context.update(code=services.normalise_code(fields["code"])[:6], display_name=fields["display_name"][:60])
    try:
        student = services.join(request, fields["code"], fields["display_name"])
    except services.JoinRateLimited as exc:
        response = render(request, "classroom/join.html", {**context, "error": str(exc)}, status=429)
        response["Retry-After"] = str(exc.retry_after_s)
        return response
    except services.ClassroomError as exc:
        return render(request, "classroom/join.html", {**context, "error": str(exc)}, status=400)
    return redirect("classroom:detail", classroom_id=student.classroom_id)


def _follow(request: HttpRequest, student, status: int = 200, **extra: Any) -> HttpResponse:  # type: ignore[no-untyped-def]
    classroom = student.classroom
    lab = classroom.lab
    if lab is None:
        return render(request, "classroom/no_lab.html", {"classroom": classroom, "student": student}, status=404)
    return render(request, "classroom/lab.html", {
        "lab": lab, "read_only": True, "ws_path": f"/ws/watch/{lab.share_token}/", "speeds": SPEEDS,
        "brokers": range(1, lab.brokers + 1), "classroom": classroom, "student": student, "role": "student",
        "following": True, "class_ws": f"/ws/classroom/{classroom.pk}/", **extra}, status=status)


@require_POST
def fork(request: HttpRequest, classroom_id: int) -> HttpResponse:
    student = services.student_for(request, classroom_id)
    if student is None:
        return redirect("classroom:join")
    try:
        services.fork_for_student(request, student)
    except services.ClassroomError as exc:
        return _follow(request, student, status=400, error=str(exc))
    return redirect("classroom:mine", classroom_id=classroom_id)


@require_POST
def guided(request: HttpRequest, classroom_id: int) -> HttpResponse:
    student = services.student_for(request, classroom_id)
    if student is None:
        return redirect("classroom:join")
    try:
        lab = services.start_guided_for_student(request, student)
    except services.ClassroomError as exc:
        return _follow(request, student, status=400, error=str(exc))
    return redirect("exercises:lab", exercise_id=lab.exercise)


@require_GET
def mine(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """The student's own lab in the class (their fork, with full controls), with the class bar."""
    student = services.student_for(request, classroom_id)
    if student is None:
        return redirect("classroom:join")
    lab = student.lab
    if lab is None:
        return redirect("classroom:detail", classroom_id=classroom_id)
    if lab.exercise:
        return redirect("exercises:lab", exercise_id=lab.exercise)
    context = lab_page_context(request, lab)
    context.update(classroom=student.classroom, student=student, role="student", following=False,
                   class_ws=f"/ws/classroom/{classroom_id}/")
    return render(request, "classroom/lab.html", context)
