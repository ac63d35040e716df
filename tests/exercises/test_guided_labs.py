"""Guided labs through Django: the index, starting and resuming, the panel's actions, and the walkthrough of every lab.

The walkthrough performs every step's expected action through the service layer
(``services.show_me`` applies the fixture's solution as logged lab commands, the
way the "Show me" button does), answers the predictions, fast-forwards simulated
time in one-second commands, and asserts that every check of every step passes.
"""

from __future__ import annotations

import time

import pytest
from django.test import Client

from messaging_lab.exercises import services
from messaging_lab.exercises.models import Progress
from messaging_lab.labs.models import Lab, LabCommand
from messaging_lab.labs.runtime import runtime
from tests.exercises.walk import right_answer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data")]


def _start(client: Client, exercise_id: str) -> Lab:
    response = client.post(f"/learn/{exercise_id}/start")
    assert response.status_code == 302, response.content[:500]
    return Lab.objects.get(exercise=exercise_id, owner_session=client.session.session_key)


def _pause(lab: Lab) -> None:
    runtime.call(lambda: runtime.apply(lab.pk, {"kind": "pause"}))


def walk_through_services(lab: Lab) -> list[dict]:
    ex = services.exercise(lab.exercise)
    run = services.check_now(lab)  # begins step 1 (captures its baseline)
    report = []
    for step in ex.steps:
        assert run.step is not None and run.step.id == step.id
        wall = time.perf_counter()
        for q in step.questions:
            assert services.answer(lab, q.id, right_answer(q))["right"]
        services.show_me(lab)
        waited = 0
        run = services.check_now(lab)
        while run.status == "active" and waited < step.wait_ms:
            runtime.call(lambda: runtime.apply(lab.pk, {"kind": "fast_forward", "seconds": 1}))
            waited += 1000
            run = services.check_now(lab)
        assert run.status == "done", (ex.id, step.id, run.state["results"])
        report.append({"step": step.id, "waited_ms": waited, "wall_s": time.perf_counter() - wall})
        services.next_step(lab)
        run = services.check_now(lab)
    assert run.finished
    return report


@pytest.mark.parametrize("exercise_id", sorted(services.exercises()))
def test_walkthrough_every_step_of_every_lab_through_the_service_layer(client, exercise_id):
    """Ensure each lab's steps can all be done with their solutions, and every check passes on the real engine."""
    lab = _start(client, exercise_id)
    _pause(lab)
    report = walk_through_services(lab)
    progress = Progress.objects.get(lab=lab)
    assert progress.completed is not None and progress.steps_done == len(report)
    index = client.get("/learn/").content.decode()
    assert f'id="status-{exercise_id}">✓ done' in index
    assert "<strong>1 of " in index  # the index counts the finished lab
    kinds = set(LabCommand.objects.filter(lab=lab).values_list("kind", flat=True))
    assert "fast_forward" in kinds  # the solutions ran as ordinary, logged lab commands


def test_index_lists_every_guide_section_with_its_labs(client):
    """Ensure /learn/ lists labs by guide section with a status for this learner."""
    page = client.get("/learn/").content.decode()
    for ex in services.exercises().values():
        assert f'id="index-{ex.id}"' in page and f"§{ex.section} " in page
        assert f'id="status-{ex.id}">not started' in page


def test_start_sets_up_the_fixture_and_resumes_where_the_learner_left(client):
    """Ensure a start applies the setup as logged commands, and after a server restart the lab resumes at its step."""
    lab = _start(client, "keys-and-ordering")
    assert LabCommand.objects.filter(lab=lab, kind="configure_producer").exists()
    _pause(lab)
    services.check_now(lab)
    services.answer(lab, "partition", "3")
    services.show_me(lab)  # step 1 has no solution commands: "watch the lab"
    for _ in range(10):
        runtime.call(lambda: runtime.apply(lab.pk, {"kind": "fast_forward", "seconds": 1}))
        if services.check_now(lab).status == "done":
            break
    services.next_step(lab)
    assert services.check_now(lab).step_index == 1
    runtime.call(runtime.forget_all)  # as after a restart: the next use replays the command log
    run = services.check_now(lab)
    assert run.step_index == 1 and run.status == "active"
    assert run.state["answers"]["machine-42"]["partition"]["right"] is True
    again = client.post("/learn/keys-and-ordering/start")  # start again = resume, not a new lab
    assert again.status_code == 302 and Lab.objects.filter(exercise="keys-and-ordering").count() == 1
    assert 'id="status-keys-and-ordering">step 2 of' in client.get("/learn/").content.decode()


def test_panel_actions_and_their_errors(client):
    """Ensure answers, hints and next answer with the panel, and a premature next or a bad answer says why."""
    lab = _start(client, "consumer-groups")
    _pause(lab)
    page = client.get("/learn/consumer-groups/")
    assert page.status_code == 200 and b'id="guide"' in page.content and b"/ws/labs/" in page.content
    early = client.post("/learn/consumer-groups/next")
    assert early.status_code == 400 and b"not all green" in early.content
    bad = client.post("/learn/consumer-groups/answer", {"question": "nope", "answer": "3"})
    assert bad.status_code == 400 and b"no question" in bad.content
    ok = client.post("/learn/consumer-groups/answer", {"question": "how-many", "answer": "3"})
    assert ok.status_code == 200 and b"Prediction saved" in ok.content
    twice = client.post("/learn/consumer-groups/answer", {"question": "how-many", "answer": "2"})
    assert twice.status_code == 400 and b"answered this one already" in twice.content
    hint = client.post("/learn/consumer-groups/hint")
    assert hint.status_code == 200 and b"Hint:" in hint.content
    assert client.get("/labs/" + lab.pk + "/").status_code == 302  # a guided lab's page is its guided page
    other = Client()
    assert other.get("/learn/consumer-groups/panel").status_code == 404
    assert other.post("/learn/consumer-groups/next").status_code == 404
    assert client.get("/learn/no-such-lab/").status_code == 404


def test_guided_labs_do_not_count_against_the_sandbox_limit(client):
    """Ensure a learner can open guided labs and still create sandboxes up to their own limit."""
    _start(client, "consumer-groups")
    assert client.get("/labs/").status_code == 200
    response = client.post("/labs/new", {"template": "sandbox", "name": "Mine"})
    assert response.status_code == 302
    assert Lab.objects.filter(exercise="").count() == 1
