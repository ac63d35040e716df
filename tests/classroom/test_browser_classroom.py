"""A classroom in two browser contexts: an instructor and a student, Playwright on Debian's chromium, a real Daphne.

The instructor crashes a broker on their lab page and the student's follow page
shows it down and narrates the crash, live; then a question goes out, the
student answers it, and the reveal reaches the student. Screenshots of both
pages are saved under ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.labs.server import BASE_DIR, LiveServer
from tests.labs.test_browser import CHROMIUM, CHROMIUM_ARGS, _shot, pytestmark  # noqa: F401 (the shared browser set-up)

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("classroom"))
    subprocess.run([sys.executable, "manage.py", "create_instructor", "ines", "--password", PASSWORD],
                   cwd=BASE_DIR, env=live.env, check=True, capture_output=True, timeout=60)
    with live:
        yield live


@pytest.fixture()
def two_contexts(server):
    """An instructor's and a student's page, in two browser contexts (two cookie jars: two people)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        errors: list[str] = []
        pages = []
        for _ in range(2):
            context = browser.new_context(viewport={"width": 1300, "height": 1300})
            tab = context.new_page()
            tab.on("pageerror", lambda e: errors.append(str(e)))
            pages.append(tab)
        yield pages
        browser.close()
        assert not errors, errors


def test_the_student_sees_the_instructors_broker_crash_live_then_answers_a_pushed_question(two_contexts, server):
    """Ensure a follow page shows the instructor's crashed broker and its event live, and push/answer/reveal work."""
    teacher, student = two_contexts

    # the instructor logs in and creates a class
    teacher.goto(server.url + "/classroom/")
    teacher.wait_for_url("**/classroom/login?next=*")
    teacher.fill("#id_username", "ines")
    teacher.fill("#id_password", PASSWORD)
    teacher.click("#login")
    teacher.wait_for_selector("#create-class")
    teacher.fill("#class-name", "Durability, group B")
    teacher.click("#create-class-button")
    teacher.wait_for_selector("#join-code")
    code = teacher.inner_text("#join-code").strip()
    dashboard_url = teacher.url
    assert len(code) == 6

    # the student joins with the code and a display name, and follows the instructor's lab
    student.goto(server.url + "/")
    student.click("#nav-join")
    student.fill("#join-code", code.lower())
    student.fill("#join-name", "Sam")
    student.click("#join-button")
    student.wait_for_selector("#follow-mode")
    student.wait_for_selector("#brokers .broker", timeout=40_000)
    student.wait_for_function("document.getElementById('class-status').textContent.includes('connected')",
                              timeout=30_000)
    assert student.locator("#crash-broker").count() == 0  # read-only: no controls
    assert "up" in student.inner_text("#broker-2")

    # the instructor crashes broker 2 on their lab page; the student's page shows it down and says so, live
    teacher.click("#present")
    teacher.wait_for_selector("#brokers .broker", timeout=40_000)
    teacher.select_option("#broker-select", "2")
    teacher.click("#crash-broker")
    teacher.wait_for_selector("#command-result .ok", timeout=30_000)
    student.wait_for_function("document.getElementById('broker-2') &&"
                              " document.getElementById('broker-2').textContent.includes('down')", timeout=30_000)
    student.wait_for_function("document.getElementById('events').textContent.includes('Broker 2 was killed')",
                              timeout=30_000)
    _shot(student, "classroom-student-follows-crash")

    # a question: pushed from the dashboard, shown to the student at once, answered, counted, revealed
    teacher.goto(dashboard_url)
    teacher.wait_for_function("document.getElementById('class-status').textContent.includes('connected')",
                              timeout=30_000)
    assert "Sam" in teacher.inner_text("#roster")
    teacher.fill("#push-prompt", "Broker 2 is down and acks=all: are acknowledged writes lost?")
    teacher.select_option("#push-kind", "choice")
    teacher.fill("#push-options", "yes, some\nno, none")
    teacher.fill("#push-right", "2")
    teacher.click("#push")
    teacher.wait_for_selector("#question-message", timeout=30_000)
    student.wait_for_selector("#class-option-1", timeout=30_000)
    assert "acks=all" in student.inner_text("#class-prompt")
    student.click("#class-option-1")
    student.wait_for_selector("#class-my-answer", timeout=30_000)
    assert "no, none" in student.inner_text("#class-my-answer")
    teacher.wait_for_function("Array.from(document.querySelectorAll('[id$=\"-opt-1\"]')).some(e => e.textContent === '1')",
                              timeout=30_000)  # the count arrived over the class socket, no reload
    teacher.click(".reveal-button")
    student.wait_for_selector("#class-right", timeout=30_000)
    assert "The answer: no, none" in student.inner_text("#class-right")
    assert "You were right" in student.inner_text("#class-right")
    assert "no, none: 1" in student.inner_text("#class-distribution")

    # pause all: the student is told
    teacher.click("#pause-all")
    student.wait_for_selector("#class-paused", state="visible", timeout=30_000)
    assert "Paused by the instructor" in student.inner_text("#class-paused")
    _shot(teacher, "classroom-dashboard")
    _shot(student, "classroom-student-reveal")

    # fork into the student's own lab: it opens with full controls, broker 2 still down in it
    student.click("#fork")
    student.wait_for_selector("#own-mode", timeout=40_000)
    student.wait_for_selector("#crash-broker")
    student.wait_for_function("document.getElementById('broker-2') &&"
                              " document.getElementById('broker-2').textContent.includes('down')", timeout=40_000)
    teacher.click("#resume-all")
