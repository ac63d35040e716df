"""A class in the database: its instructor, the lab they present, the join code, students, questions, answers.

Instructors are Django users in the :data:`INSTRUCTORS_GROUP` group (``manage.py
create_instructor`` makes one). Students have no account: a student is a
display name bound to one browser session (``Student.session_key``), as labs
are. Every limit is named here with its unit.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models

INSTRUCTORS_GROUP = "instructors"
CLASSROOM_CODE_TTL = timedelta(hours=12)  # a join code stops admitting students this long after it was made
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud or off a projector without doubt
CODE_LENGTH = 6
MAX_CLASS_NAME_CHARS = 80
MAX_DISPLAY_NAME_CHARS = 40
MAX_STUDENTS_PER_CLASS = 100
MAX_CLASSROOMS_PER_INSTRUCTOR = 20  # open or not; delete old ones to make room
MAX_PROMPT_CHARS = 300
MIN_OPTIONS, MAX_OPTIONS = 2, 6
MAX_OPTION_CHARS = 120
MAX_TEXT_ANSWER_CHARS = 200


class Classroom(models.Model):
    name = models.CharField(max_length=MAX_CLASS_NAME_CHARS)
    instructor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classrooms")
    lab = models.ForeignKey("labs.Lab", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    exercise = models.CharField(max_length=64, blank=True, default="")  # an optional guided lab for the students
    code = models.CharField(max_length=CODE_LENGTH, unique=True)
    code_expires = models.DateTimeField()
    code_closed = models.BooleanField(default=False)
    paused = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Student(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="students")
    display_name = models.CharField(max_length=MAX_DISPLAY_NAME_CHARS)
    name_key = models.CharField(max_length=MAX_DISPLAY_NAME_CHARS)  # casefolded: "Ana" and "ana" are one name
    session_key = models.CharField(max_length=64, db_index=True)
    lab = models.ForeignKey("labs.Lab", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    joined = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["classroom", "name_key"], name="one_display_name_per_class"),
            models.UniqueConstraint(fields=["classroom", "session_key"], name="one_student_per_session_per_class"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} in {self.classroom_id}"


class Question(models.Model):
    CHOICE, TEXT = "choice", "text"
    KINDS = ((CHOICE, "choice"), (TEXT, "short text"))

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="questions")
    kind = models.CharField(max_length=8, choices=KINDS)
    prompt = models.CharField(max_length=MAX_PROMPT_CHARS)
    options = models.JSONField(default=list)  # choice: 2–6 strings; text: []
    right = models.CharField(max_length=MAX_TEXT_ANSWER_CHARS, blank=True, default="")  # choice: index; text: optional
    pushed = models.DateTimeField(auto_now_add=True)
    revealed = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pushed", "-pk"]

    def __str__(self) -> str:
        return self.prompt[:40]


class Answer(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="answers")
    given = models.CharField(max_length=MAX_TEXT_ANSWER_CHARS)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["question", "student"], name="one_answer_per_student")]
