"""The guided labs' actions: what views (and the walkthrough test) call. The guide logic is in guide.py.

A guided lab is an ordinary lab (``Lab.exercise`` names its fixture) whose
engine thread also hosts a :class:`LabGuide`: the learner's
:class:`~messaging_lab.exercises.guide.GuideRun` plus where to save it. Every
guide action runs on the engine thread (``runtime.call``), the only thread
that touches a lab's world, and saves the progress row when it changes.
"""

from __future__ import annotations

import logging
import secrets
from functools import lru_cache
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone

from core_log.lab import LabCommandError
from messaging_lab.exercises.fixtures import GUIDE_SECTION_TITLES, Exercise, load_all
from messaging_lab.exercises.guide import GuideError, GuideRun
from messaging_lab.exercises.models import Progress
from messaging_lab.labs.models import Lab
from messaging_lab.labs.runtime import runtime
from messaging_lab.labs.services import visitor_key

log = logging.getLogger(__name__)

MAX_GUIDED_LABS_PER_LEARNER = 20  # one per fixture at most; each is a sleeping LabWorld when not watched


class ExerciseError(ValueError):
    """A request about guided labs that cannot be done; the message says why."""


@lru_cache(maxsize=1)
def exercises() -> dict[str, Exercise]:
    """Every fixture, validated once per process (a malformed fixture stops start-up with file and line)."""
    return load_all()


def exercise(exercise_id: str) -> Exercise:
    found = exercises().get(exercise_id)
    if found is None:
        raise ExerciseError(f"there is no guided lab {exercise_id[:64]!r}")
    return found


class LabGuide:
    """A GuideRun living on the engine thread, with the progress row it saves to."""

    def __init__(self, progress_id: int, run: GuideRun) -> None:
        self.progress_id = progress_id
        self.run = run
        self.unsaved = False  # a save the database refused (busy); retried at the next evaluation

    def evaluate(self, world) -> bool:  # type: ignore[no-untyped-def]
        changed = self.run.evaluate(world)
        if changed or self.unsaved:
            self.save_when_possible()
        return changed

    def save_when_possible(self) -> None:
        """Save, or remember to: the engine thread must not stop a lab because SQLite was busy.

        The run's state stays in memory either way, so nothing the learner did is lost; the row
        catches up at the next evaluation (every GUIDE_EVAL_INTERVAL_S).
        """
        try:
            self.save()
        except DatabaseError:
            if not self.unsaved:
                log.warning("progress %s not saved (database busy); retrying", self.progress_id)
            self.unsaved = True
        else:
            self.unsaved = False

    def view(self) -> dict[str, Any]:
        return self.run.view()

    def save(self) -> None:
        done = self.run.steps_done()
        Progress.objects.filter(pk=self.progress_id).update(
            state=self.run.state, steps_done=done, updated=timezone.now(),
            completed=timezone.now() if self.run.finished else None)


def guide_for_lab(lab: Lab) -> LabGuide | None:
    """The runtime's hook: a guided lab's guide, resumed from its saved progress (None for other labs)."""
    if not lab.exercise:
        return None
    progress = Progress.objects.filter(lab=lab).first()
    if progress is None or lab.exercise not in exercises():
        return None
    return LabGuide(progress.pk, GuideRun(exercises()[lab.exercise], progress.state or None))


# ── the index ────────────────────────────────────────────────────────────────
def index(learner: str) -> list[dict[str, Any]]:
    """Guide sections in order, each with its labs and this learner's progress in them."""
    progress = {p.exercise_id: p for p in Progress.objects.filter(learner=learner)}
    sections: dict[int, dict[str, Any]] = {}
    for ex in sorted(exercises().values(), key=lambda e: (e.section, e.order)):
        p = progress.get(ex.id)
        status = "not started" if p is None else ("done" if p.completed else f"step {min(p.steps_done + 1, len(ex.steps))} of {len(ex.steps)}")
        entry = sections.setdefault(ex.section, {"section": ex.section, "title": GUIDE_SECTION_TITLES[ex.section],
                                                 "labs": []})
        entry["labs"].append({"exercise": ex, "status": status, "done": bool(p and p.completed),
                              "started": p is not None, "steps_done": p.steps_done if p else 0})
    return list(sections.values())


# ── a learner's guided lab ───────────────────────────────────────────────────
def progress_for(learner: str, exercise_id: str) -> Progress | None:
    return Progress.objects.filter(learner=learner, exercise_id=exercise_id).select_related("lab").first()


def start(request: HttpRequest, exercise_id: str, *, restart: bool = False) -> Lab:
    """Open the learner's lab for this exercise: the one they left (resume), or a fresh one set up by the fixture."""
    ex = exercise(exercise_id)
    learner = visitor_key(request)
    progress = progress_for(learner, ex.id)
    if progress is not None and progress.lab is not None and not restart:
        return progress.lab
    if progress is not None and progress.lab is not None:
        old = progress.lab
        runtime.call(lambda: runtime.forget(old.pk))
        old.delete()
    with transaction.atomic():
        if Lab.objects.filter(owner_session=learner).exclude(exercise="").count() >= MAX_GUIDED_LABS_PER_LEARNER:
            raise ExerciseError(f"you have {MAX_GUIDED_LABS_PER_LEARNER} guided labs open (the limit)")
        lab = Lab.objects.create(owner_session=learner, name=ex.title[:80], template=ex.template, brokers=ex.brokers,
                                 seed=secrets.randbits(48), exercise=ex.id)
        Progress.objects.update_or_create(learner=learner, exercise_id=ex.id,
                                          defaults={"lab": lab, "state": {}, "steps_done": 0, "completed": None})
    runtime.call(lambda: runtime.create(lab, setup=list(ex.setup_commands)))
    return lab


def _on_guide(lab: Lab, action):  # type: ignore[no-untyped-def]
    """Run ``action(running_lab, guide)`` on the engine thread and save the guide afterwards."""
    def call():  # type: ignore[no-untyped-def]
        running = runtime.get(lab.pk)
        guide = running.guide
        if guide is None:
            raise ExerciseError("this lab has no guide")
        try:
            return action(running, guide)
        finally:
            guide.save_when_possible()
            running.last_frame = 0.0  # show the change at once
    try:
        return runtime.call(call)
    except (GuideError, LabCommandError) as exc:
        raise ExerciseError(str(exc)) from None


def guide_state(lab: Lab) -> tuple[GuideRun, dict[str, Any]]:
    """A copy-free look at the guide for rendering its panel (evaluated now, so the marks are fresh)."""
    def call(running, guide):  # type: ignore[no-untyped-def]
        guide.run.evaluate(running.world)
        return guide.run, {"time_ms": running.world.now_ms()}
    return _on_guide(lab, call)


def answer(lab: Lab, question_id: str, given: str) -> dict[str, Any]:
    return _on_guide(lab, lambda running, guide: guide.run.answer(question_id, given))


def next_step(lab: Lab) -> None:
    _on_guide(lab, lambda running, guide: guide.run.next(running.world))


def hint(lab: Lab) -> str:
    return _on_guide(lab, lambda running, guide: guide.run.hint())


def show_me(lab: Lab) -> list[dict[str, Any]]:
    """Perform the step's solution through the ordinary (logged) command path; returns what was applied."""
    commands = _on_guide(lab, lambda running, guide: guide.run.solution(running.world))
    applied = []
    for command in commands:
        try:
            applied.append(runtime.call(lambda c=command: runtime.apply(lab.pk, c)))
        except LabCommandError as exc:
            raise ExerciseError(f"{command['kind']}: {exc}") from None
    return applied


def check_now(lab: Lab) -> GuideRun:
    """Evaluate the guide at once (tests and the walkthrough; the runtime also does it every few ticks)."""
    return _on_guide(lab, lambda running, guide: (guide.evaluate(running.world), guide.run)[1])
