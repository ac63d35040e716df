"""The classroom's actions: what views, the WebSocket consumer and the management command call.

Live messages go to two Channels groups per class: :func:`class_group`
(``class.<id>``: the instructor and every student) and :func:`instructor_group`
(``class.<id>.instructor``: the instructor alone — answer counts, which students
must not see before the reveal). Services are synchronous; :func:`broadcast`
hands a message to the channel layer from any thread (a view, a test, or a
consumer's ``database_sync_to_async`` worker).

Engine work goes through the labs runtime only: pause/resume are the runtime's
``{"kind": "pause"}`` / ``{"kind": "resume"}`` commands on each lab, and the
dashboard's verdicts are read on the engine thread in one call for the whole class.
"""

from __future__ import annotations

import secrets
import time
import unicodedata
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.contrib.auth.password_validation import get_password_validators, validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from core_log.lab import TEMPLATES, LabCommandError
from messaging_lab.classroom import models as m
from messaging_lab.classroom.models import Answer, Classroom, Question, Student
from messaging_lab.labs import services as lab_services
from messaging_lab.labs.models import Lab
from messaging_lab.labs.runtime import runtime

# Join attempts (right or wrong) allowed per window; a class behind one NAT shares an IP, hence the larger IP limit.
JOIN_WINDOW_S = 60
JOIN_ATTEMPTS_PER_SESSION = 10
JOIN_ATTEMPTS_PER_IP = 60
CODE_ATTEMPTS = 20  # random codes tried before giving up (the space is 32**6 ≈ 10**9)
PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
VERDICTS_TIMEOUT_S = 5.0  # the dashboard waits this long for the engine thread, then shows no verdicts this time
TOP_TEXT_ANSWERS = 10  # a short-text reveal lists the most given answers, at most this many


class ClassroomError(ValueError):
    """A classroom request that cannot be done; the message says why (shown to the user as is)."""


class JoinRateLimited(ClassroomError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def class_group(classroom_id: int) -> str:
    return f"class.{classroom_id}"


def instructor_group(classroom_id: int) -> str:
    return f"class.{classroom_id}.instructor"


def broadcast(group: str, payload: dict[str, Any]) -> None:
    """Send ``payload`` to every socket in ``group`` (the consumer's ``class_event`` forwards it as is)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, {"type": "class.event", "payload": payload})


# ── instructors ──────────────────────────────────────────────────────────────
def is_instructor(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active
                and user.groups.filter(name=m.INSTRUCTORS_GROUP).exists())


def create_instructor(username: str, password: str, email: str = "") -> User:
    """A new Django user in the instructors group; ClassroomError names what is wrong with the input."""
    username = (username or "").strip()
    if not username:
        raise ClassroomError("give a username")
    field = User._meta.get_field("username")
    try:
        field.run_validators(username)
    except ValidationError as exc:
        raise ClassroomError(f"username {username[:40]!r}: " + " ".join(exc.messages)) from None
    if len(username) > field.max_length:
        raise ClassroomError(f"a username has at most {field.max_length} characters")
    if User.objects.filter(username__iexact=username).exists():
        raise ClassroomError(f"a user named {username!r} exists already")
    user = User(username=username, email=email)
    try:
        validate_password(password or "", user, password_validators=get_password_validators(PASSWORD_VALIDATORS))
    except ValidationError as exc:
        raise ClassroomError("password: " + " ".join(exc.messages)) from None
    user.set_password(password)
    with transaction.atomic():
        user.save()
        group, _ = Group.objects.get_or_create(name=m.INSTRUCTORS_GROUP)
        user.groups.add(group)
    return user


# ── classrooms (instructor side) ─────────────────────────────────────────────
def new_code() -> str:
    for _ in range(CODE_ATTEMPTS):
        code = "".join(secrets.choice(m.CODE_ALPHABET) for _ in range(m.CODE_LENGTH))
        if not Classroom.objects.filter(code=code).exists():
            return code
    raise ClassroomError("could not draw a free join code; try again")


def code_is_open(classroom: Classroom) -> bool:
    return not classroom.code_closed and classroom.code_expires > timezone.now()


def my_classrooms(user: User) -> list[Classroom]:
    return list(Classroom.objects.filter(instructor=user).select_related("lab"))


def create_classroom(request: HttpRequest, name: str, template: str = "sandbox", exercise: str = "") -> Classroom:
    """A class and the instructor's lab to present (a template lab, made by the labs service)."""
    user = request.user
    if not is_instructor(user):
        raise ClassroomError("only instructors can create classes")
    name = (name or "").strip()
    if not 1 <= len(name) <= m.MAX_CLASS_NAME_CHARS:
        raise ClassroomError(f"a class name has 1 to {m.MAX_CLASS_NAME_CHARS} characters")
    if template not in TEMPLATES:
        raise ClassroomError(f"choose a lab template: {', '.join(TEMPLATES)}")
    exercise = (exercise or "").strip()
    if exercise:
        from messaging_lab.exercises.services import exercises

        if exercise not in exercises():
            raise ClassroomError(f"there is no guided lab {exercise[:64]!r}")
    if Classroom.objects.filter(instructor=user).count() >= m.MAX_CLASSROOMS_PER_INSTRUCTOR:
        raise ClassroomError(f"you have {m.MAX_CLASSROOMS_PER_INSTRUCTOR} classes (the limit); delete one first")
    try:
        lab = lab_services.create_lab(request, template, f"Class: {name}"[:lab_services.MAX_NAME_CHARS])
    except lab_services.LabError as exc:
        raise ClassroomError(f"the class's lab: {exc}") from None
    Lab.objects.filter(pk=lab.pk).update(owner=user)
    for _ in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                return Classroom.objects.create(name=name, instructor=user, lab=lab, exercise=exercise,
                                                code=new_code(), code_expires=timezone.now() + m.CLASSROOM_CODE_TTL)
        except IntegrityError:  # two classes drew the same code at once
            continue
    raise ClassroomError("could not draw a free join code; try again")


def instructor_classroom(user: User, classroom_id: int | str) -> Classroom:
    classroom = Classroom.objects.filter(pk=_int_id(classroom_id), instructor=user).select_related("lab").first()
    if classroom is None or not is_instructor(user):
        raise ClassroomError("no such class of yours")
    return classroom


def _int_id(value: int | str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def present_lab(request: HttpRequest, classroom: Classroom) -> Lab:
    """The class's lab, bound to the instructor's current browser session so its page and controls work.

    Labs belong to a browser session; logging in gives a new session key, so the
    lab moves to whichever session the (authenticated) instructor uses now.
    """
    lab = classroom.lab
    if lab is None:
        raise ClassroomError("this class's lab was deleted")
    session = lab_services.visitor_key(request)
    if lab.owner_session != session:
        Lab.objects.filter(pk=lab.pk).update(owner_session=session, owner=classroom.instructor)
        lab.owner_session = session
    return lab


def new_join_code(classroom: Classroom) -> Classroom:
    for _ in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                Classroom.objects.filter(pk=classroom.pk).update(
                    code=new_code(), code_expires=timezone.now() + m.CLASSROOM_CODE_TTL, code_closed=False)
            break
        except IntegrityError:
            continue
    classroom.refresh_from_db()
    return classroom


def close_join_code(classroom: Classroom) -> Classroom:
    Classroom.objects.filter(pk=classroom.pk).update(code_closed=True)
    classroom.refresh_from_db()
    return classroom


def delete_classroom(classroom: Classroom) -> None:
    lab = classroom.lab
    classroom.delete()
    if lab is not None:
        runtime.call(lambda: runtime.forget(lab.pk))
        lab.delete()


# ── students ─────────────────────────────────────────────────────────────────
def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR as the server saw it (Daphne's --proxy-headers fills it from X-Forwarded-For behind a proxy)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")[:64]


def _count_attempt(key: str, limit: int) -> int | None:
    """Count one attempt in the current window; the seconds to wait if the limit is passed, else None."""
    now = time.time()
    window = int(now // JOIN_WINDOW_S)
    full = f"classroom:join:{key}:{window}"
    cache.add(full, 0, timeout=JOIN_WINDOW_S + 5)
    try:
        count = cache.incr(full)
    except ValueError:  # evicted between add and incr
        cache.set(full, 1, timeout=JOIN_WINDOW_S + 5)
        count = 1
    if count > limit:
        return max(1, int((window + 1) * JOIN_WINDOW_S - now) + 1)
    return None


def check_join_rate(request: HttpRequest) -> None:
    """Count a join attempt for this session and this IP; JoinRateLimited when either is over its limit."""
    session = lab_services.visitor_key(request)
    for key, limit, who in ((f"s:{session}", JOIN_ATTEMPTS_PER_SESSION, "this browser"),
                            (f"ip:{client_ip(request)}", JOIN_ATTEMPTS_PER_IP, "your network address")):
        wait = _count_attempt(key, limit)
        if wait is not None:
            raise JoinRateLimited(f"too many join attempts from {who} ({limit} a minute); try again in {wait} s",
                                  wait)


def normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch not in " -\t")[:32]


def clean_display_name(name: str) -> str:
    name = " ".join((name or "").split())  # trimmed, inner runs of spaces collapsed
    if not 1 <= len(name) <= m.MAX_DISPLAY_NAME_CHARS:
        raise ClassroomError(f"a display name has 1 to {m.MAX_DISPLAY_NAME_CHARS} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ClassroomError("a display name cannot contain control characters")
    return name


def join(request: HttpRequest, code: str, display_name: str) -> Student:
    """Join a class by its code under a display name, bound to this browser session (no account)."""
    check_join_rate(request)
    code = normalise_code(code)
    if len(code) != m.CODE_LENGTH or any(ch not in m.CODE_ALPHABET for ch in code):
        raise ClassroomError(f"a join code is {m.CODE_LENGTH} letters and digits, like K7MW3Q")
    name = clean_display_name(display_name)
    classroom = Classroom.objects.filter(code=code).first()
    if classroom is None:
        raise ClassroomError("no class has that code; check it with your instructor")
    if not code_is_open(classroom):
        raise ClassroomError("this join code has expired or was closed; ask your instructor for a new one")
    session = lab_services.visitor_key(request)
    existing = Student.objects.filter(classroom=classroom, session_key=session).first()
    if existing is not None:
        if existing.name_key != name.casefold():
            raise ClassroomError(f"this browser joined this class as {existing.display_name!r} already")
        return existing
    if Student.objects.filter(classroom=classroom).count() >= m.MAX_STUDENTS_PER_CLASS:
        raise ClassroomError(f"this class is full ({m.MAX_STUDENTS_PER_CLASS} students)")
    try:
        with transaction.atomic():
            return Student.objects.create(classroom=classroom, display_name=name, name_key=name.casefold(),
                                          session_key=session)
    except IntegrityError:
        raise ClassroomError(f"someone in this class is called {name!r} already; choose another name") from None


def student_for(request: HttpRequest, classroom_id: int | str) -> Student | None:
    if not request.session.session_key:
        return None
    return Student.objects.filter(classroom_id=_int_id(classroom_id), session_key=request.session.session_key) \
        .select_related("classroom", "classroom__lab", "lab").first()


def student_in_lab(request: HttpRequest, lab: Lab) -> Student | None:
    """The class student this browser is whose current lab is ``lab`` (None if it is not a class lab of theirs).

    A student who opened the class's guided lab works on the guided-lab page; this is how that page
    knows to show the class bar (pushed questions, the pause notice, the way back to following).
    """
    if not request.session.session_key:
        return None
    return Student.objects.filter(session_key=request.session.session_key, lab=lab) \
        .select_related("classroom").order_by("-pk").first()


def fork_for_student(request: HttpRequest, student: Student) -> Lab:
    """The instructor's lab as it is now, forked into a lab of the student's own (the labs service does it)."""
    source = student.classroom.lab
    if source is None:
        raise ClassroomError("the instructor's lab was deleted; there is nothing to fork")
    try:
        fork = lab_services.fork_lab(request, source)
    except lab_services.LabError as exc:
        raise ClassroomError(str(exc)) from None
    Student.objects.filter(pk=student.pk).update(lab=fork)
    student.lab = fork
    if student.classroom.paused:  # a fork starts paused; while the class is paused it stays so
        _control(fork.pk, "pause")
    return fork


def start_guided_for_student(request: HttpRequest, student: Student) -> Lab:
    """The class's guided lab for this student (resumed if they started it before)."""
    from messaging_lab.exercises import services as exercise_services

    exercise_id = student.classroom.exercise
    if not exercise_id:
        raise ClassroomError("this class has no guided lab")
    try:
        lab = exercise_services.start(request, exercise_id)
    except exercise_services.ExerciseError as exc:
        raise ClassroomError(str(exc)) from None
    Student.objects.filter(pk=student.pk).update(lab=lab)
    student.lab = lab
    if student.classroom.paused:
        _control(lab.pk, "pause")
    return lab


# ── pause all ────────────────────────────────────────────────────────────────
def _control(lab_id: str, kind: str) -> bool:
    try:
        runtime.call(lambda: runtime.apply(lab_id, {"kind": kind}))
    except (LabCommandError, Lab.DoesNotExist):
        return False
    return True


def class_lab_ids(classroom: Classroom) -> list[str]:
    ids = [classroom.lab_id] if classroom.lab_id else []
    ids += [lab_id for lab_id in classroom.students.exclude(lab=None).values_list("lab_id", flat=True)]
    return list(dict.fromkeys(ids))


def pause_all(classroom: Classroom, paused: bool = True) -> int:
    """Pause (or resume) the instructor's lab and every student's lab; returns how many labs were changed."""
    kind = "pause" if paused else "resume"
    changed = sum(_control(lab_id, kind) for lab_id in class_lab_ids(classroom))
    Classroom.objects.filter(pk=classroom.pk).update(paused=paused)
    classroom.paused = paused
    broadcast(class_group(classroom.pk), {"type": "pause", "paused": paused})
    return changed


# ── questions ────────────────────────────────────────────────────────────────
def _is_number(text: str) -> bool:
    """ASCII digits only, and few of them ("²".isdigit() is true, yet int("²") fails)."""
    return 1 <= len(text) <= 3 and text.isascii() and text.isdigit()


def current_question(classroom: Classroom) -> Question | None:
    return classroom.questions.first()  # the newest pushed; pushing another replaces it


def push_question(classroom: Classroom, kind: str, prompt: str, options: list[str] | str = (),
                  right: str = "") -> Question:
    """Validate and push a question to the whole class (the answer stays on the server until reveal)."""
    prompt = (prompt or "").strip()
    if not 1 <= len(prompt) <= m.MAX_PROMPT_CHARS:
        raise ClassroomError(f"a question has 1 to {m.MAX_PROMPT_CHARS} characters")
    right = str(right or "").strip()
    if kind == Question.CHOICE:
        if isinstance(options, str):
            options = options.splitlines()
        if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
            raise ClassroomError("options are a list of texts")
        options = [o.strip() for o in options if o.strip()]
        if not m.MIN_OPTIONS <= len(options) <= m.MAX_OPTIONS:
            raise ClassroomError(f"a choice question has {m.MIN_OPTIONS} to {m.MAX_OPTIONS} options (one a line)")
        if any(len(o) > m.MAX_OPTION_CHARS for o in options):
            raise ClassroomError(f"an option has at most {m.MAX_OPTION_CHARS} characters")
        if len({o.casefold() for o in options}) != len(options):
            raise ClassroomError("two options are the same")
        if not (_is_number(right) and 1 <= int(right) <= len(options)):
            raise ClassroomError(f"say which option is right: a number from 1 to {len(options)}")
        right = str(int(right) - 1)
    elif kind == Question.TEXT:
        options = []
        if len(right) > m.MAX_TEXT_ANSWER_CHARS:
            raise ClassroomError(f"the expected answer has at most {m.MAX_TEXT_ANSWER_CHARS} characters")
    else:
        raise ClassroomError("a question is 'choice' or 'text'")
    question = Question.objects.create(classroom=classroom, kind=kind, prompt=prompt, options=list(options),
                                       right=right)
    broadcast(class_group(classroom.pk), {"type": "question", "question": question_payload(question)})
    broadcast(instructor_group(classroom.pk), counts_payload(question))
    return question


def question_payload(question: Question, student: Student | None = None) -> dict[str, Any]:
    """What a student may see of a question: never the answer before the reveal, nor anyone else's answer."""
    payload: dict[str, Any] = {"id": question.pk, "kind": question.kind, "prompt": question.prompt,
                               "options": question.options, "revealed": question.revealed is not None}
    if student is not None:
        mine = question.answers.filter(student=student).first()
        payload["answered"] = mine.given if mine else None
    if question.revealed is not None:
        payload["result"] = reveal_payload(question)
    return payload


def _is_right(question: Question, given: str) -> bool | None:
    if question.kind == Question.CHOICE:
        return given == question.right
    if not question.right:
        return None  # an open question: no single right answer
    return " ".join(given.split()).casefold() == " ".join(question.right.split()).casefold()


def distribution(question: Question) -> dict[str, Any]:
    answers = list(question.answers.values_list("given", flat=True))
    if question.kind == Question.CHOICE:
        counts = [0] * len(question.options)
        for given in answers:
            if _is_number(given) and int(given) < len(counts):
                counts[int(given)] += 1
        return {"answers": len(answers), "counts": counts}
    tally: dict[str, list[Any]] = {}
    for given in answers:
        key = " ".join(given.split()).casefold()
        tally.setdefault(key, [given, 0])[1] += 1
    top = sorted(tally.values(), key=lambda item: (-item[1], item[0]))[:TOP_TEXT_ANSWERS]
    right = sum(1 for given in answers if _is_right(question, given))
    return {"answers": len(answers), "top": top, "right_count": right if question.right else None}


def counts_payload(question: Question) -> dict[str, Any]:
    return {"type": "counts", "question": question.pk, "students": question.classroom.students.count(),
            **distribution(question)}


def reveal_payload(question: Question) -> dict[str, Any]:
    right_text = (question.options[int(question.right)] if question.kind == Question.CHOICE
                  else question.right)
    return {"question": question.pk, "kind": question.kind, "right": question.right, "right_text": right_text,
            **distribution(question)}


def answer(student: Student, question_id: int | str, given: Any) -> dict[str, Any]:
    """A student's one answer to the current, unrevealed question. The instructor's counts update at once."""
    question = current_question(student.classroom)
    if question is None or question.pk != _int_id(question_id):
        raise ClassroomError("that is not the question being asked now")
    if question.revealed is not None:
        raise ClassroomError("the answer was revealed already; answers are closed")
    if not isinstance(given, (str, int)) or isinstance(given, bool):
        raise ClassroomError("an answer is a text (or an option's number)")
    given = " ".join(str(given).split())
    if question.kind == Question.CHOICE:
        if not (_is_number(given) and int(given) < len(question.options)):
            raise ClassroomError(f"choose one of the {len(question.options)} options")
        given = str(int(given))
    elif not 1 <= len(given) <= m.MAX_TEXT_ANSWER_CHARS:
        raise ClassroomError(f"an answer has 1 to {m.MAX_TEXT_ANSWER_CHARS} characters")
    try:
        with transaction.atomic():
            Answer.objects.create(question=question, student=student, given=given)
    except IntegrityError:
        raise ClassroomError("you answered this question already; the first answer counts") from None
    broadcast(instructor_group(student.classroom_id), counts_payload(question))
    return {"type": "answered", "question": question.pk, "given": given}


def reveal(classroom: Classroom, question_id: int | str) -> Question:
    """Close answers to a question and push its right answer and distribution to everyone."""
    question = classroom.questions.filter(pk=_int_id(question_id)).first()
    if question is None:
        raise ClassroomError("no such question in this class")
    if question.revealed is None:
        question.revealed = timezone.now()
        question.save(update_fields=["revealed"])
    broadcast(class_group(classroom.pk), {"type": "reveal", **reveal_payload(question)})
    return question


# ── the dashboard ────────────────────────────────────────────────────────────
def _verdicts(lab_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each lab's checker verdict, read on the engine thread in one call (light: not the whole view).

    It does not touch the labs' wake timers: a dashboard watching a class does
    not keep sleeping student labs running. A lab not loaded since a restart is
    rebuilt by ``runtime.get`` (its replay) the first time.
    """
    def read() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for lab_id in lab_ids:
            try:
                running = runtime.get(lab_id)
            except Lab.DoesNotExist:
                continue
            verdict = running.world.checker.verdict()
            out[lab_id] = {"valid": verdict.valid, "acked": verdict.acked, "consumed": verdict.consumed,
                           "anomalies": sorted(verdict.counts.items()), "paused": running.paused,
                           "time_ms": running.world.now_ms()}
        return out
    if not lab_ids:
        return {}
    try:
        return runtime.call(read, timeout=VERDICTS_TIMEOUT_S)
    except TimeoutError:  # a lab being rebuilt after a restart holds the engine thread; show "–" this time
        return {}


def dashboard(classroom: Classroom) -> list[dict[str, Any]]:
    """One row per student: their lab, guided step and checks (if a guided lab), and their checker verdict."""
    from messaging_lab.exercises.models import Progress
    from messaging_lab.exercises.services import exercises

    students = list(classroom.students.select_related("lab"))
    lab_ids = [s.lab_id for s in students if s.lab_id]
    progress = {p.lab_id: p for p in Progress.objects.filter(lab_id__in=lab_ids)}
    verdicts = _verdicts(lab_ids)
    rows = []
    for s in students:
        row: dict[str, Any] = {"student": s, "lab": s.lab, "verdict": verdicts.get(s.lab_id) if s.lab_id else None,
                               "guided": None}
        p = progress.get(s.lab_id)
        if p is not None:
            ex = exercises().get(p.exercise_id)
            state = p.state or {}
            results = state.get("results") or []
            total = len(ex.steps) if ex else 0
            row["guided"] = {"exercise": p.exercise_id, "title": ex.title if ex else p.exercise_id,
                             "step": min(int(state.get("step", 0)) + 1, total) if total else 0, "steps": total,
                             "steps_done": p.steps_done, "finished": bool(p.completed),
                             "checks_passed": sum(1 for r in results if r and r[0]), "checks": len(results)}
        rows.append(row)
    return rows
