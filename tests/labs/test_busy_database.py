"""A busy database (SQLite "table is locked") delays the engine thread's writes; it never pauses a lab or drops a row.

CI once failed because the engine thread's write of a lab's simulated time met the test client's
write in SQLite's shared-cache in-memory database, which answers "locked" at once; the lab paused
itself. These tests make the database refuse a few writes on purpose and check what survives.
"""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError
from django.db.models.query import QuerySet

from messaging_lab.labs.models import Lab, LabCommand
from messaging_lab.labs.runtime import runtime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data")]


class _Refuse:
    """Make ``QuerySet.<method>`` on ``model`` raise "table is locked" for the next ``times`` calls."""

    def __init__(self, monkeypatch, method: str, model, times: int) -> None:
        self.left = times
        real = getattr(QuerySet, method)

        def flaky(qs, *args, **kwargs):  # type: ignore[no-untyped-def]
            if qs.model is model and self.left > 0:
                self.left -= 1
                raise OperationalError(f"database table is locked: {model._meta.db_table}")
            return real(qs, *args, **kwargs)

        monkeypatch.setattr(QuerySet, method, flaky)


def _create(client) -> Lab:  # type: ignore[no-untyped-def]
    response = client.post("/labs/new", {"template": "sandbox", "name": "busy"})
    assert response.status_code == 302, response.content[:500]
    return Lab.objects.get(pk=response["Location"].strip("/").split("/")[-1])


def test_a_command_whose_log_row_meets_a_locked_table_is_still_logged(client, monkeypatch):
    """Ensure the command applied to the world gets its log row after the lock clears (replay needs it)."""
    lab = _create(client)
    refusal = _Refuse(monkeypatch, "create", LabCommand, times=3)
    done = client.post(f"/labs/{lab.pk}/command", {"kind": "crash_broker", "broker": "2"})
    assert done.status_code == 200 and b"Done: crash_broker" in done.content
    assert refusal.left == 0  # the three refusals happened, and the fourth try wrote the row
    assert list(LabCommand.objects.filter(lab=lab).values_list("kind", flat=True)) == ["crash_broker"]


def test_the_engine_thread_keeps_the_lab_running_when_its_bookkeeping_writes_are_refused(client, monkeypatch):
    """Ensure refused writes of the simulated time neither pause the lab nor stop it advancing."""
    lab = _create(client)
    start_ms = client.get(f"/labs/{lab.pk}/state.json").json()["time_ms"]
    refusal = _Refuse(monkeypatch, "update", Lab, times=10_000)  # every write of the lab row, for now
    runtime.call(lambda: runtime._checkpoint(runtime.get(lab.pk), time.monotonic()))  # would raise before
    assert refusal.left < 10_000
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and runtime.call(lambda: runtime.get(lab.pk).world.now_ms()) < start_ms + 1500:
        time.sleep(0.1)
    running_paused, now_ms = runtime.call(lambda: (runtime.get(lab.pk).paused, runtime.get(lab.pk).world.now_ms()))
    assert not running_paused and now_ms >= start_ms + 1500
    refusal.left = 0  # the database is free again: the next interval records the time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Lab.objects.get(pk=lab.pk).sim_time_ms < now_ms:
        time.sleep(0.1)
    assert Lab.objects.get(pk=lab.pk).sim_time_ms >= now_ms


def test_a_guided_labs_progress_refused_by_a_locked_table_is_saved_later(client, monkeypatch):
    """Ensure an answer whose progress row meets a locked table is kept in memory and saved at the next evaluation."""
    from messaging_lab.exercises import services
    from messaging_lab.exercises.models import Progress
    from tests.exercises.walk import right_answer

    assert client.post("/learn/consumer-groups/start").status_code == 302
    lab = Lab.objects.get(exercise="consumer-groups", owner_session=client.session.session_key)
    services.check_now(lab)  # step 1 begins
    step = services.exercise(lab.exercise).steps[0]
    question = step.questions[0]

    def saved_answers() -> dict:
        return (Progress.objects.get(lab=lab).state or {}).get("answers", {}).get(step.id, {})

    refusal = _Refuse(monkeypatch, "update", Progress, times=2)
    assert services.answer(lab, question.id, right_answer(question))["right"]  # not an error for the learner
    assert runtime.call(lambda: runtime.get(lab.pk).paused) is False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and question.id not in saved_answers():
        time.sleep(0.1)
    assert refusal.left == 0
    assert saved_answers()[question.id]["right"] is True
