"""Guided labs in a real browser: Playwright driving Debian's chromium against a real Daphne.

Each lab is walked as a learner would: open it from /learn/, lock in each
prediction, press "Show me" (the step's action through the page), fast-forward
until the checks turn green, read the reveal and the interview answer, go on.
Screenshots of each finished lab are saved under ``test-artifacts/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from messaging_lab.exercises.fixtures import load_all
from tests.labs.test_browser import _shot, page, pytestmark as browser_marks  # noqa: F401 (page: the shared tab)
from tests.labs.server import LiveServer
from tests.exercises.walk import right_answer

pytestmark = browser_marks
WALKED = ("consumer-groups", "producer-side", "topics-and-partitions")  # three short labs: the suite stays quick


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("guided")) as live:
        yield live


def _answer(page, question) -> None:  # type: ignore[no-untyped-def]
    box = f"#question-{question.id}"
    if question.kind == "choice":
        page.check(f"{box} input[value='{question.answer}']")
    else:
        page.fill(f"{box} input[name='answer']", right_answer(question))
    page.click(f"{box} .answer-button")
    page.wait_for_selector(f"{box} .answer", timeout=10_000)


def _walk_in_browser(page, server, exercise_id: str) -> None:  # type: ignore[no-untyped-def]
    ex = load_all()[exercise_id]
    page.goto(server.url + "/learn/")
    page.click(f"#index-{exercise_id} a")
    page.click("#start-lab")
    page.wait_for_selector("#guide[data-status='active']", timeout=20_000)
    page.select_option("select[name='speed']", "10.0")  # the learner's speed control: simulated time runs 10×
    page.click("text=Set speed")
    for number, step in enumerate(ex.steps):
        page.wait_for_function(f"document.getElementById('guide').dataset.step === '{number}'", timeout=20_000)
        assert step.title in page.inner_text("#guide-title")
        for q in step.questions:
            _answer(page, q)
        if step.solution:
            page.click("#show-me")
            page.wait_for_selector("#guide-message", timeout=20_000)
        for tick in range(120):  # up to 60 s of wall time at 10×, plus a fast-forward every 2 s
            if page.query_selector("#guide[data-status='done']"):
                break
            if tick % 4 == 3:
                try:
                    page.click("#fast-forward", timeout=2000)
                except PlaywrightTimeout:
                    pass  # the panel was swapped as we clicked (the step turned done): look again
            page.wait_for_timeout(500)
        page.wait_for_selector("#guide[data-status='done'] #next-step", timeout=20_000)
        assert " ".join(page.inner_text("#interview-answer").split()) == " ".join(re.sub(r"[`*]", "", step.interview).split())
        for q in step.questions:
            assert "✓ Right." in page.inner_text(f"#question-{q.id} .reveal")
        assert not page.query_selector("#guide-checks .check.pending")
        page.click("#next-step")
    page.wait_for_selector("#guide[data-status='finished'] #guide-summary", timeout=20_000)
    summary = page.inner_text("#guide-summary")
    questions = sum(len(s.questions) for s in ex.steps)
    assert f"{questions} of {questions} answers right" in summary
    _shot(page, f"guided-{exercise_id}")
    page.goto(server.url + "/learn/")
    assert "✓ done" in page.inner_text(f"#status-{exercise_id}")


@pytest.mark.parametrize("exercise_id", WALKED)
def test_walk_a_guided_lab_in_the_browser(page, server, exercise_id):
    """Ensure a learner can do every step of the lab from the page: predict, act, see green checks, reveal, finish."""
    if exercise_id not in load_all():
        pytest.skip(f"no fixture {exercise_id} yet")
    _walk_in_browser(page, server, exercise_id)
