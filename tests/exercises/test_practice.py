"""Interview practice: a round drawn across guide sections; answer, demonstration on a live lab, model answer, summary."""

from __future__ import annotations

import random

import pytest
from django.test import Client
from django.utils.html import escape

from messaging_lab.exercises import practice
from messaging_lab.exercises.models import PracticeSession
from messaging_lab.labs.models import Lab
from messaging_lab.labs.runtime import runtime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data")]


def test_a_round_covers_every_section_before_repeating_one():
    """Ensure the draw takes one question per guide section in turn, never the same question twice."""
    sections = {ex.section for ex, _, _ in practice.pool()}
    picked = practice.draw(len(sections), random.Random(3))
    section_of = {(ex.id, step.id, q.id): ex.section for ex, step, q in practice.pool()}
    assert sorted(section_of[tuple(p)] for p in picked) == sorted(sections)
    everything = practice.draw(10_000, random.Random(4))
    assert len(everything) == len(practice.pool()) == len({tuple(p) for p in everything})


def _round(client: Client) -> PracticeSession:
    response = client.post("/practice/start")
    assert response.status_code == 302
    return PracticeSession.objects.get(pk=int(response["Location"].strip("/").split("/")[-1]))


def test_practice_round_answer_demonstrate_model_answer_summary(client):
    """Ensure a learner answers, sees a demonstration set up at that step on a live lab, reads the model answer,
    and gets a summary that counts right answers."""
    session = _round(client)
    total = len(session.questions)
    right = 0
    for n in range(total):
        current = practice.item(PracticeSession.objects.get(pk=session.pk))
        page = client.get(f"/practice/{session.pk}/").content.decode()
        assert escape(current["q"].prompt) in page
        q = current["q"]
        wrong = str((q.answer + 1) % len(q.choices)) if q.kind == "choice" else "999999"
        given = q.right_given() if n % 2 == 0 else wrong
        client.post(f"/practice/{session.pk}/answer", {"answer": given})
        right += current["q"].is_right(given)
        again = client.post(f"/practice/{session.pk}/answer", {"answer": given})
        assert again.status_code == 400 and "answered this question already" in again.content.decode(), again.content.decode()[-1500:]
        after = client.get(f"/practice/{session.pk}/").content.decode()
        assert escape(current["step"].interview) in after and 'id="practice-verdict"' in after
        if n == 0:
            demo = client.post(f"/practice/{session.pk}/demo")
            assert demo.status_code == 302, demo.content[:300]
            lab = PracticeSession.objects.get(pk=session.pk).demo_lab
            ex, step = current["ex"], current["step"]
            commands = set(lab.commands.values_list("kind", flat=True))
            index = ex.steps.index(step)
            for earlier in ex.steps[:index]:  # the earlier steps were performed, through logged commands
                assert {c["kind"] for c in earlier.solution} <= commands
            page = client.get(f"/practice/{session.pk}/demo/")
            assert page.status_code == 200 and escape(step.title) in page.content.decode()
            run = client.post(f"/practice/{session.pk}/demo/run")
            assert run.status_code == 200
            if step.solution:
                assert b'id="demo-ran"' in run.content
            assert Lab.objects.filter(exercise=practice.DEMO_EXERCISE_MARK).count() == 1
            assert client.get("/labs/").content.count(b"Demo:") == 0  # demos are not listed as my labs
        client.post(f"/practice/{session.pk}/next")
    summary = client.get(f"/practice/{session.pk}/").content.decode()
    assert f"{right} of {total} right" in summary
    assert f"{right} of {total} right" in client.get("/practice/").content.decode()


def test_practice_refuses_out_of_order_actions_and_other_browsers(client):
    """Ensure next before an answer, a demo before an answer, bad answers and another browser get clear refusals."""
    session = _round(client)
    early = client.post(f"/practice/{session.pk}/next")
    assert early.status_code == 400 and b"answer the question first" in early.content
    demo = client.post(f"/practice/{session.pk}/demo")
    assert demo.status_code == 400 and b"answer first" in demo.content
    empty = client.post(f"/practice/{session.pk}/answer", {"answer": "  "})
    assert empty.status_code == 400 and b"give an answer" in empty.content
    long = client.post(f"/practice/{session.pk}/answer", {"answer": "x" * 5000})
    assert long.status_code == 400
    assert Client().get(f"/practice/{session.pk}/").status_code == 404
    assert Client().post(f"/practice/{session.pk}/answer", {"answer": "1"}).status_code == 404
    runtime.call(runtime.forget_all)
