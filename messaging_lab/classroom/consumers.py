"""The class channel: ``/ws/classroom/<id>/`` for the class's students and its instructor.

Who may connect is decided by the session (Channels' AuthMiddlewareStack): the
authenticated instructor of that class, or a browser session that joined it as
a student. Anyone else is refused (close code 4403); an unknown class, 4404.

Server → client frames (JSON objects, ``type`` first):

* ``hello`` — on connect: ``role`` (``student``/``instructor``), ``paused``, and
  ``question`` (the current question as a student may see it, with
  ``answered`` — their own answer — and ``result`` once revealed), or null;
  the instructor's hello also carries ``counts`` for it.
* ``question`` — a new question was pushed (no right answer in it).
* ``answered`` — to the student who answered: their answer was recorded.
* ``counts`` — to the instructor only: answers so far and their distribution.
* ``reveal`` — to everyone: the right answer (``right``, ``right_text``) and the distribution.
* ``pause`` — ``paused`` true/false: the instructor paused or resumed every lab in the class.
* ``pong``, and ``error`` with a ``message`` (the socket stays open).

Client → server: ``{"type": "ping"}``; students: ``{"type": "answer",
"question": ID, "answer": "…"}`` (a choice's option index, or text);
instructor: ``{"type": "push", "kind": "choice"|"text", "prompt": …,
"options": […], "right": …}``, ``{"type": "reveal", "question": ID}``,
``{"type": "pause"}``, ``{"type": "resume"}``. Anything else — not JSON, more
than :data:`messaging_lab.ws.MAX_MESSAGE_CHARS`, an unknown type, an instructor action from a
student — gets an ``error`` frame.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from messaging_lab.ws import BoundedJsonConsumer

from messaging_lab.classroom import services
from messaging_lab.classroom.models import Classroom, Student

STUDENT_TYPES = ("ping", "answer")
INSTRUCTOR_TYPES = ("ping", "push", "reveal", "pause", "resume")


@database_sync_to_async
def _who(classroom_id: int, user: Any, session_key: str | None) -> tuple[str | None, Classroom | None, Student | None]:
    classroom = Classroom.objects.filter(pk=classroom_id).select_related("instructor").first()
    if classroom is None:
        return None, None, None
    if user is not None and getattr(user, "is_authenticated", False) and classroom.instructor_id == user.pk \
            and services.is_instructor(user):
        return "instructor", classroom, None
    if session_key:
        student = Student.objects.filter(classroom=classroom, session_key=session_key).first()
        if student is not None:
            return "student", classroom, student
    return "", classroom, None


@database_sync_to_async
def _hello(classroom_id: int, role: str, student_id: int | None) -> dict[str, Any]:
    classroom = Classroom.objects.get(pk=classroom_id)
    student = Student.objects.filter(pk=student_id).first() if student_id else None
    question = services.current_question(classroom)
    hello: dict[str, Any] = {"type": "hello", "role": role, "classroom": classroom.pk, "paused": classroom.paused,
                             "question": services.question_payload(question, student) if question else None}
    if role == "instructor" and question is not None:
        hello["counts"] = services.counts_payload(question)
    return hello


class ClassroomConsumer(BoundedJsonConsumer):
    classroom_id: int | None = None
    role = ""
    student_id: int | None = None

    async def connect(self) -> None:
        classroom_id = int(self.scope["url_route"]["kwargs"]["classroom_id"])
        session = self.scope.get("session")
        role, classroom, student = await _who(classroom_id, self.scope.get("user"),
                                              getattr(session, "session_key", None))
        if classroom is None or not role:
            await self.close(code=4404 if classroom is None else 4403)
            return
        self.classroom_id, self.role = classroom.pk, role
        self.student_id = student.pk if student else None
        await self.accept()
        await self.channel_layer.group_add(services.class_group(classroom.pk), self.channel_name)
        if role == "instructor":
            await self.channel_layer.group_add(services.instructor_group(classroom.pk), self.channel_name)
        await self.send_json(await _hello(classroom.pk, role, self.student_id))

    async def disconnect(self, code: int) -> None:
        if self.classroom_id is not None:
            await self.channel_layer.group_discard(services.class_group(self.classroom_id), self.channel_name)
            if self.role == "instructor":
                await self.channel_layer.group_discard(services.instructor_group(self.classroom_id),
                                                       self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        allowed = INSTRUCTOR_TYPES if self.role == "instructor" else STUDENT_TYPES
        kind = content.get("type") if isinstance(content, dict) else None
        if kind not in STUDENT_TYPES + INSTRUCTOR_TYPES:
            await self._error("messages are objects with a 'type': " + ", ".join(allowed))
            return
        if kind not in allowed:
            await self._error(f"only the instructor can {kind}" if self.role == "student"
                              else "the instructor does not answer questions")
            return
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return
        try:
            reply = await self._act(kind, content)
        except (services.ClassroomError, TypeError, ValueError) as exc:  # a bad field: say so, keep the socket
            await self._error(str(exc))
            return
        if reply is not None:
            await self.send_json(reply)

    @database_sync_to_async
    def _act(self, kind: str, content: dict[str, Any]) -> dict[str, Any] | None:
        """Run the action in a worker thread; its broadcasts reach this socket too, through the groups."""
        classroom = Classroom.objects.get(pk=self.classroom_id)
        if kind == "answer":
            student = Student.objects.select_related("classroom").get(pk=self.student_id)
            return services.answer(student, content.get("question"), content.get("answer"))
        if kind == "push":
            options = content.get("options", [])
            if not isinstance(options, list):
                raise services.ClassroomError("options are a list of texts")
            fields = [content.get("kind"), content.get("prompt"), content.get("right", "")]
            if not all(isinstance(f, (str, int)) and not isinstance(f, bool) for f in fields):
                raise services.ClassroomError("kind, prompt and right are texts")
            services.push_question(classroom, str(fields[0]), str(fields[1]), options, str(fields[2]))
            return None
        if kind == "reveal":
            services.reveal(classroom, content.get("question"))
            return None
        services.pause_all(classroom, paused=kind == "pause")
        return None

    async def class_event(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if payload.get("type") == "counts" and self.role != "instructor":
            return  # belt and braces: counts are sent to the instructor's group only
        await self.send_json(payload)
