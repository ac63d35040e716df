"""A learner's progress through a guided lab, kept in SQLite so they can resume where they left.

A learner is a browser session (as for labs: no account needed). The guide's
whole state — step, status, the step's baseline, answers — is one JSON value
(:attr:`Progress.state`, see :class:`~messaging_lab.exercises.guide.GuideRun`);
``steps_done`` and ``completed`` are copies of it for the lab index.
"""

from __future__ import annotations

from django.db import models


class Progress(models.Model):
    learner = models.CharField(max_length=64, db_index=True)
    exercise_id = models.CharField(max_length=64)
    lab = models.OneToOneField("labs.Lab", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="progress")
    state = models.JSONField(default=dict)
    steps_done = models.PositiveSmallIntegerField(default=0)
    completed = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "exercise_id"], name="one_progress_per_exercise")]

    def __str__(self) -> str:
        return f"{self.learner[:8]}… {self.exercise_id}: {self.steps_done} step(s)"


class PracticeSession(models.Model):
    """One round of interview practice: questions drawn from the labs, the learner's answers, and where they are.

    ``questions`` is a list of ``[exercise_id, step_id, question_id]``; ``answers``
    maps the position (as text) to ``{"given", "right", "demo_shown"}``.
    """

    learner = models.CharField(max_length=64, db_index=True)
    questions = models.JSONField(default=list)
    answers = models.JSONField(default=dict)
    position = models.PositiveSmallIntegerField(default=0)
    demo_lab = models.ForeignKey("labs.Lab", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
