"""Interview practice: questions drawn from the guided labs, each answered, demonstrated on a lab, then modelled.

A round draws :data:`PRACTICE_QUESTIONS` questions from every lab's predict
questions, one per guide section in turn, so a round covers the guide rather
than one topic. For each question the learner

1. answers (once — like an interview, no second try);
2. may press **Show me**: a demonstration lab is set up at that question's step —
   the fixture's setup, then the earlier steps performed for them through the
   ordinary logged commands until each step's checks pass — and the step's own
   action runs when they press *Run the demonstration*, live on the page;
3. reads the model answer (the step's interview answer and explanation).

The summary lists what was right and links each question to its lab. One
demonstration lab per round exists at a time (the previous one is deleted).
"""

from __future__ import annotations

import random
import secrets
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from core_log.lab import LabCommandError
from messaging_lab.exercises.fixtures import Exercise, Question, Step
from messaging_lab.exercises.guide import GuideError, GuideRun, resolve_command
from messaging_lab.exercises.models import PracticeSession
from messaging_lab.exercises.services import ExerciseError, exercises
from messaging_lab.labs.models import Lab
from messaging_lab.labs.runtime import runtime
from messaging_lab.labs.services import visitor_key

PRACTICE_QUESTIONS = 8
MAX_ANSWER_CHARS = 500
DEMO_EXERCISE_MARK = "demo"  # Lab.exercise of a demonstration lab: neither a sandbox nor a guided lab
MAX_PRACTICE_ROUNDS_KEPT = 20  # older rounds of a learner are deleted when a new one starts


def pool() -> list[tuple[Exercise, Step, Question]]:
    """Every predict question of every lab, in guide order."""
    out = []
    for ex in sorted(exercises().values(), key=lambda e: (e.section, e.order)):
        for step in ex.steps:
            out.extend((ex, step, q) for q in step.questions)
    return out


def draw(count: int, rng: random.Random) -> list[list[str]]:
    """``count`` questions, one per guide section in a shuffled order of sections, round after round."""
    by_section: dict[int, list[tuple[Exercise, Step, Question]]] = {}
    for item in pool():
        by_section.setdefault(item[0].section, []).append(item)
    for items in by_section.values():
        rng.shuffle(items)
    sections = sorted(by_section)
    rng.shuffle(sections)
    picked: list[list[str]] = []
    while len(picked) < count and any(by_section.values()):
        for section in sections:
            if by_section[section] and len(picked) < count:
                ex, step, q = by_section[section].pop()
                picked.append([ex.id, step.id, q.id])
    return picked


def start(request: HttpRequest, count: int = PRACTICE_QUESTIONS) -> PracticeSession:
    learner = visitor_key(request)
    questions = draw(count, random.Random(secrets.randbits(64)))
    if not questions:
        raise ExerciseError("there are no questions to practise yet")
    with transaction.atomic():
        old = list(PracticeSession.objects.filter(learner=learner).values_list("pk", flat=True)[MAX_PRACTICE_ROUNDS_KEPT - 1:])
        PracticeSession.objects.filter(pk__in=old).delete()
        return PracticeSession.objects.create(learner=learner, questions=questions)


def owned(request: HttpRequest, session_id: int) -> PracticeSession:
    found = PracticeSession.objects.filter(pk=session_id, learner=visitor_key(request)).first()
    if found is None:
        raise ExerciseError("no such practice round in this browser")
    return found


def item(session: PracticeSession, position: int | None = None) -> dict[str, Any]:
    """The question at ``position`` (default: the current one) with its lab, step and the learner's answer."""
    position = session.position if position is None else position
    ex_id, step_id, q_id = session.questions[position]
    ex = exercises()[ex_id]
    step = next(s for s in ex.steps if s.id == step_id)
    question = next(q for q in step.questions if q.id == q_id)
    return {"position": position, "number": position + 1, "total": len(session.questions), "ex": ex, "step": step,
            "q": question, "answer": session.answers.get(str(position))}


def answer(session: PracticeSession, given: str) -> dict[str, Any]:
    if session.finished:
        raise ExerciseError("this round is over; start a new one")
    current = item(session)
    if current["answer"] is not None:
        raise ExerciseError("you answered this question already")
    given = (given or "").strip()
    if not given or len(given) > MAX_ANSWER_CHARS:
        raise ExerciseError(f"give an answer of 1 to {MAX_ANSWER_CHARS} characters")
    q = current["q"]
    if q.kind == "choice" and not (given.isdigit() and int(given) < len(q.choices)):
        raise ExerciseError("choose one of the answers")
    session.answers[str(session.position)] = {"given": given, "right": q.is_right(given), "demo_shown": False}
    session.save(update_fields=["answers"])
    return session.answers[str(session.position)]


def next_question(session: PracticeSession) -> None:
    if item(session)["answer"] is None:
        raise ExerciseError("answer the question first")
    if session.position + 1 >= len(session.questions):
        session.finished = timezone.now()
        session.save(update_fields=["finished"])
        return
    session.position += 1
    session.save(update_fields=["position"])


def summary(session: PracticeSession) -> dict[str, Any]:
    rows = [item(session, i) for i in range(len(session.questions))]
    right = sum(1 for r in rows if r["answer"] and r["answer"]["right"])
    return {"rows": rows, "right": right, "total": len(rows),
            "demos": sum(1 for r in rows if r["answer"] and r["answer"].get("demo_shown"))}


# ── demonstrations ───────────────────────────────────────────────────────────
def _walk_to(lab_id: str, ex: Exercise, upto: int) -> None:
    """Perform steps ``0 … upto-1`` of ``ex`` on the lab through logged commands.

    Each piece (a step's solution, one simulated second) is its own call on the
    engine thread, so other labs keep running between them instead of waiting
    for the whole demonstration to be set up.
    """
    run = GuideRun(ex)
    world = lambda: runtime.get(lab_id).world  # noqa: E731 — only ever called on the engine thread
    runtime.call(lambda: run.evaluate(world()))
    for step in ex.steps[:upto]:
        for q in step.questions:
            run.answer(q.id, q.right_given())

        def perform() -> None:
            for command in run.solution(world()):
                runtime.apply(lab_id, command)
            run.evaluate(world())
        runtime.call(perform)
        waited = 0
        while run.status == "active" and waited < step.wait_ms:
            def second() -> None:
                runtime.apply(lab_id, {"kind": "fast_forward", "seconds": 1})
                run.evaluate(world())
            runtime.call(second)
            waited += 1000
        if run.status != "done":
            raise ExerciseError(f"the demonstration could not set up “{step.title}”; open the lab itself instead")
        runtime.call(lambda: run.next(world()))


def demo(request: HttpRequest, session: PracticeSession) -> Lab:
    """Set up a demonstration lab at the current question's step (the step's own action is not run yet)."""
    current = item(session)
    if current["answer"] is None:
        raise ExerciseError("answer first, then see it happen")
    ex, step = current["ex"], current["step"]
    if session.demo_lab is not None:
        old = session.demo_lab
        runtime.call(lambda: runtime.forget(old.pk))
        old.delete()
    lab = Lab.objects.create(owner_session=visitor_key(request), name=f"Demo: {step.title}"[:80], template=ex.template,
                             brokers=ex.brokers, seed=secrets.randbits(48), exercise=DEMO_EXERCISE_MARK)
    session.demo_lab = lab
    session.answers[str(session.position)]["demo_shown"] = True
    session.save(update_fields=["demo_lab", "answers"])
    index = ex.steps.index(step)
    try:
        runtime.call(lambda: runtime.create(lab, setup=list(ex.setup_commands)))
        _walk_to(lab.pk, ex, index)
    except (GuideError, LabCommandError) as exc:
        raise ExerciseError(str(exc)) from None
    return lab


def run_demo(session: PracticeSession) -> list[str]:
    """Run the current step's action on the demonstration lab; returns the kinds of the commands applied."""
    lab = session.demo_lab
    if lab is None:
        raise ExerciseError("press Show me first")
    step = item(session)["step"]

    def call() -> list[str]:
        running = runtime.get(lab.pk)
        kinds = []
        for command in step.solution:
            runtime.apply(lab.pk, resolve_command(running.world, command))
            kinds.append(command["kind"])
        running.last_frame = 0.0
        return kinds
    try:
        return runtime.call(call)
    except LabCommandError as exc:
        raise ExerciseError(str(exc)) from None
