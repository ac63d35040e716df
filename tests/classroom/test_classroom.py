"""Classrooms through Django and Channels: instructor accounts, join codes (expiry, rate limits), join validation,
permissions, follow mode and fork, pushed questions (services and WebSocket), reveal, pause all, the dashboard."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from io import StringIO

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from messaging_lab.classroom import models as m
from messaging_lab.classroom import services
from messaging_lab.classroom.models import Answer, Classroom, Question, Student
from messaging_lab.labs.models import Lab
from messaging_lab.labs.runtime import runtime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data")]

PASSWORD = "correct-horse-battery"
GUIDED = "consumer-groups"


# ── helpers ──────────────────────────────────────────────────────────────────
def _instructor(username: str = "ines") -> Client:
    if not User.objects.filter(username=username).exists():
        call_command("create_instructor", username, password=PASSWORD, stdout=StringIO())
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def _classroom(client: Client, name: str = "Durability", exercise: str = "") -> Classroom:
    response = client.post("/classroom/new", {"name": name, "template": "sandbox", "exercise": exercise})
    assert response.status_code == 302, response.content[:800]
    classroom = Classroom.objects.get(pk=int(response["Location"].strip("/").split("/")[-1]))
    runtime.call(lambda: runtime.apply(classroom.lab_id, {"kind": "pause"}))  # keep the engine quiet in tests
    return classroom


def _join(classroom: Classroom, name: str, client: Client | None = None) -> tuple[Client, Student]:
    client = client or Client()
    response = client.post("/join", {"code": classroom.code, "display_name": name})
    assert response.status_code == 302, response.content[:800]
    return client, Student.objects.get(classroom=classroom, session_key=client.session.session_key)


def _paused(lab_id: str) -> bool:
    return runtime.call(lambda: runtime.get(lab_id).paused)


# ── instructor accounts ──────────────────────────────────────────────────────
def test_create_instructor_command_makes_an_instructor_and_refuses_bad_input(monkeypatch):
    """Ensure the command creates a user in the instructors group, and names what is wrong with bad input."""
    out = StringIO()
    call_command("create_instructor", "ana", password=PASSWORD, email="ana@example.org", stdout=out)
    ana = User.objects.get(username="ana")
    assert services.is_instructor(ana) and ana.check_password(PASSWORD) and "created" in out.getvalue()
    assert not ana.is_staff and not ana.is_superuser
    for args, kwargs, expected in ((["ana"], {"password": PASSWORD}, "exists already"),
                                   (["ANA"], {"password": PASSWORD}, "exists already"),
                                   (["bo b!"], {"password": PASSWORD}, "username"),
                                   (["bob"], {"password": "short"}, "too short"),
                                   (["bob"], {"password": "12345678901234"}, "entirely numeric"),
                                   (["bob"], {"password": "password123"}, "too common")):
        with pytest.raises(CommandError, match=expected):
            call_command("create_instructor", *args, stdout=StringIO(), **kwargs)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(CommandError, match="give --password"):
        call_command("create_instructor", "bob", stdout=StringIO())
    assert not User.objects.filter(username="bob").exists()


def test_instructor_pages_need_an_instructor_login():
    """Ensure anonymous visitors are sent to the login page and logged-in non-instructors are refused."""
    anonymous = Client()
    response = anonymous.get("/classroom/")
    assert response.status_code == 302 and response["Location"].startswith("/classroom/login?next=")
    assert anonymous.get("/classroom/login").status_code == 200
    bad = anonymous.post("/classroom/login", {"username": "nobody", "password": "x"})
    assert bad.status_code == 200 and b"do not match" in bad.content
    User.objects.create_user("plain", password=PASSWORD)
    plain = Client()
    plain.login(username="plain", password=PASSWORD)
    assert plain.get("/classroom/").status_code == 403
    call_command("create_instructor", "ines", password=PASSWORD, stdout=StringIO())
    ines = Client()
    response = ines.post("/classroom/login", {"username": "ines", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/classroom/"
    assert b"New class" in ines.get("/classroom/").content
    assert ines.post("/classroom/logout").status_code == 302
    assert ines.get("/classroom/").status_code == 302


def test_creating_a_class_validates_its_fields():
    """Ensure a class needs a name of 1–80 characters, a known template and a known guided lab."""
    ines = _instructor()
    for fields, expected in (({"name": " ", "template": "sandbox"}, b"1 to 80"),
                             ({"name": "x" * 81, "template": "sandbox"}, b"1 to 80"),
                             ({"name": "ok", "template": "nope"}, b"choose a lab template"),
                             ({"name": "ok", "template": "sandbox", "exercise": "nope"}, b"no guided lab")):
        response = ines.post("/classroom/new", fields)
        assert response.status_code == 400 and expected in response.content, fields
    assert not Classroom.objects.exists()


# ── join codes ───────────────────────────────────────────────────────────────
def test_join_codes_are_six_unambiguous_characters_that_expire_and_close():
    """Ensure codes avoid 0/O/1/I, expire after CLASSROOM_CODE_TTL, can be closed, and a new code opens the class again."""
    codes = {services.new_code() for _ in range(300)}
    assert all(len(c) == 6 and not set(c) & set("0O1I") for c in codes) and len(codes) == 300
    ines = _instructor()
    classroom = _classroom(ines)
    assert timedelta(hours=11, minutes=59) < classroom.code_expires - timezone.now() <= m.CLASSROOM_CODE_TTL
    page = ines.get(f"/classroom/{classroom.pk}/").content.decode()
    assert classroom.code in page and f"/join?code={classroom.code}" in page
    _join(classroom, "Early")
    lower = Client().post("/join", {"code": classroom.code.lower()[:3] + " " + classroom.code.lower()[3:],
                                    "display_name": "Spaced"})
    assert lower.status_code == 302  # case and a space in the middle do not matter

    Classroom.objects.filter(pk=classroom.pk).update(code_expires=timezone.now() - timedelta(seconds=1))
    late = Client().post("/join", {"code": classroom.code, "display_name": "Late"})
    assert late.status_code == 400 and b"expired or was closed" in late.content

    assert ines.post(f"/classroom/{classroom.pk}/code", {"action": "new"}).status_code == 302
    classroom.refresh_from_db()
    _join(classroom, "Late")
    old_code = classroom.code
    ines.post(f"/classroom/{classroom.pk}/code", {"action": "close"})
    classroom.refresh_from_db()
    assert classroom.code_closed and classroom.code == old_code
    closed = Client().post("/join", {"code": classroom.code, "display_name": "Later"})
    assert closed.status_code == 400 and b"expired or was closed" in closed.content
    assert b"is closed" in ines.get(f"/classroom/{classroom.pk}/").content
    assert Student.objects.filter(classroom=classroom).count() == 3  # those who joined stay


def test_join_attempts_are_rate_limited_per_session_and_per_ip(monkeypatch):
    """Ensure the 11th attempt a minute from one browser, and past the IP limit from many, get 429 with Retry-After."""
    ines = _instructor()
    classroom = _classroom(ines)
    browser = Client()
    for _ in range(services.JOIN_ATTEMPTS_PER_SESSION):
        assert browser.post("/join", {"code": "ZZZZZZ", "display_name": "Guess"}).status_code == 400
    limited = browser.post("/join", {"code": classroom.code, "display_name": "Guess"})
    assert limited.status_code == 429 and b"too many join attempts from this browser" in limited.content
    assert 1 <= int(limited["Retry-After"]) <= services.JOIN_WINDOW_S + 1
    assert not Student.objects.exists()  # even the right code is refused while limited

    cache.clear()  # a new minute
    monkeypatch.setattr(services, "JOIN_ATTEMPTS_PER_IP", 3)
    for i in range(3):
        assert Client().post("/join", {"code": "ZZZZZZ", "display_name": f"n{i}"}).status_code == 400
    crowd = Client().post("/join", {"code": classroom.code, "display_name": "Crowd"})
    assert crowd.status_code == 429 and b"your network address" in crowd.content
    other_ip = Client(REMOTE_ADDR="10.0.0.9").post("/join", {"code": classroom.code, "display_name": "Elsewhere"})
    assert other_ip.status_code == 302


def test_join_validates_the_code_and_the_display_name():
    """Ensure names are trimmed, 1–40 characters, without control characters, and unique (any case) in the class."""
    ines = _instructor()
    classroom = _classroom(ines)
    for code, name, expected in (("ABC", "Ana", b"6 letters and digits"), ("ABCDE0", "Ana", b"6 letters and digits"),
                                 ("ZZZZZZ", "Ana", b"no class has that code"),
                                 (classroom.code, "   ", b"1 to 40"), (classroom.code, "x" * 41, b"1 to 40"),
                                 (classroom.code, "Ana\x07", b"control characters")):
        response = Client().post("/join", {"code": code, "display_name": name})
        assert response.status_code == 400 and expected in response.content, (code, name)
    client, student = _join(classroom, "   Ana   Lima  ")
    assert student.display_name == "Ana Lima"
    clash = Client().post("/join", {"code": classroom.code, "display_name": "ana lima"})
    assert clash.status_code == 400 and b"called" in clash.content
    again = client.post("/join", {"code": classroom.code, "display_name": "Ana Lima"})  # the same browser: back in
    assert again.status_code == 302 and Student.objects.count() == 1
    other = client.post("/join", {"code": classroom.code, "display_name": "Someone"})
    assert other.status_code == 400 and b"joined this class as" in other.content
    assert Client().get(f"/join?code={classroom.code}").content.decode().count(classroom.code) >= 1


# ── permissions ──────────────────────────────────────────────────────────────
def test_only_the_instructor_can_push_reveal_pause_or_see_counts():
    """Ensure students, strangers and other instructors cannot use a class's instructor actions; CSRF is enforced."""
    ines = _instructor()
    classroom = _classroom(ines)
    student, _ = _join(classroom, "Sam")
    question = services.push_question(classroom, "choice", "Which?", ["a", "b"], "1")
    other = _instructor("otto")
    for path in (f"/classroom/{classroom.pk}/question", f"/classroom/{classroom.pk}/question/{question.pk}/reveal",
                 f"/classroom/{classroom.pk}/pause", f"/classroom/{classroom.pk}/code",
                 f"/classroom/{classroom.pk}/delete"):
        assert student.post(path, {"prompt": "x", "kind": "text"}).status_code == 302  # to the login page
        assert Client().post(path).status_code == 302
        assert other.post(path, {"prompt": "x", "kind": "text"}).status_code == 404
    for path in (f"/classroom/{classroom.pk}/questions", f"/classroom/{classroom.pk}/roster",
                 f"/classroom/{classroom.pk}/present"):
        assert student.get(path).status_code == 302 and other.get(path).status_code == 404
    assert Client().get(f"/classroom/{classroom.pk}/")["Location"] == "/join"
    assert other.get(f"/classroom/{classroom.pk}/")["Location"] == "/join"
    question.refresh_from_db()
    assert question.revealed is None and Classroom.objects.filter(pk=classroom.pk, paused=False).exists()
    assert Question.objects.count() == 1

    strict = Client(enforce_csrf_checks=True)
    strict.login(username="ines", password=PASSWORD)
    assert strict.post(f"/classroom/{classroom.pk}/pause").status_code == 403
    assert Client(enforce_csrf_checks=True).post("/join", {"code": classroom.code, "display_name": "X"}).status_code == 403


# ── questions through the services ───────────────────────────────────────────
def test_push_answer_reveal_through_the_services():
    """Ensure questions are validated, students answer once, see no answer before the reveal, and reveal tells all."""
    ines = _instructor()
    classroom = _classroom(ines)
    students = [_join(classroom, name)[1] for name in ("A", "B", "C")]
    for args, expected in ((("choice", "", ["a", "b"], "1"), "1 to 300"),
                           (("choice", "Q", ["only"], "1"), "2 to 6"),
                           (("choice", "Q", [str(i) for i in range(7)], "1"), "2 to 6"),
                           (("choice", "Q", ["a", "A"], "1"), "the same"),
                           (("choice", "Q", ["a", "b"], "3"), "from 1 to 2"),
                           (("choice", "Q", ["a", "x" * 121], "1"), "at most 120"),
                           (("poll", "Q", [], ""), "'choice' or 'text'")):
        with pytest.raises(services.ClassroomError, match=expected):
            services.push_question(classroom, *args)
    question = services.push_question(classroom, "choice", "acks=1 and the leader dies: lost?", "yes\nno\n\n", "1")
    assert question.options == ["yes", "no"] and question.right == "0"
    seen = services.question_payload(question, students[0])
    assert "right" not in seen and "result" not in seen and seen["answered"] is None
    assert services.answer(students[0], question.pk, "0") == {"type": "answered", "question": question.pk, "given": "0"}
    services.answer(students[1], question.pk, 1)
    with pytest.raises(services.ClassroomError, match="already"):
        services.answer(students[0], question.pk, "1")
    for given, expected in (("2", "one of the 2"), ("x", "one of the 2"), ("²", "one of the 2"), ("-1", "one of the 2"),
                            (10**30, "one of the 2"), (None, "a text"), (True, "a text"), ([0], "a text")):
        with pytest.raises(services.ClassroomError, match=expected):
            services.answer(students[2], question.pk, given)
    with pytest.raises(services.ClassroomError, match="not the question"):
        services.answer(students[2], question.pk + 99, "0")
    assert services.distribution(question) == {"answers": 2, "counts": [1, 1]}
    services.reveal(classroom, question.pk)
    question.refresh_from_db()
    revealed = services.question_payload(question, students[0])
    assert revealed["result"]["right_text"] == "yes" and revealed["result"]["counts"] == [1, 1]
    with pytest.raises(services.ClassroomError, match="revealed already"):
        services.answer(students[2], question.pk, "0")

    text = services.push_question(classroom, "text", "Which setting keeps acked writes?", [], "acks=all")
    for student, given in zip(students, (" ACKS=all ", "acks=all", "min.insync")):
        services.answer(student, text.pk, given)
    d = services.distribution(text)
    assert d["answers"] == 3 and d["right_count"] == 2 and d["top"][0][1] == 2
    with pytest.raises(services.ClassroomError, match="1 to 200"):
        services.answer(_join(classroom, "D")[1], text.pk, "x" * 201)
    with pytest.raises(services.ClassroomError, match="no such question"):
        services.reveal(classroom, 10_000)


def test_push_and_reveal_through_the_dashboard_forms():
    """Ensure the dashboard's forms push (with the field errors shown) and reveal; counts appear in the partial."""
    ines = _instructor()
    classroom = _classroom(ines)
    _, sam = _join(classroom, "Sam")
    bad = ines.post(f"/classroom/{classroom.pk}/question", {"kind": "choice", "prompt": "Q", "options": "a", "right": "1"})
    assert bad.status_code == 400 and b"2 to 6" in bad.content
    too_long = ines.post(f"/classroom/{classroom.pk}/question", {"kind": "text", "prompt": "x" * 3000})
    assert too_long.status_code == 400 and b"too long" in too_long.content
    ok = ines.post(f"/classroom/{classroom.pk}/question",
                   {"kind": "choice", "prompt": "Idle member?", "options": "yes\nno", "right": "1"})
    assert ok.status_code == 200 and b"Pushed to the class" in ok.content
    question = Question.objects.get()
    services.answer(sam, question.pk, "0")
    listed = ines.get(f"/classroom/{classroom.pk}/questions").content.decode()
    assert f'id="q-{question.pk}-opt-0">1<' in listed and f'id="q-{question.pk}-answers">1<' in listed
    revealed = ines.post(f"/classroom/{classroom.pk}/question/{question.pk}/reveal")
    assert revealed.status_code == 200 and b"Revealed" in revealed.content and b'class="right"' in revealed.content


# ── follow mode, fork, pause all, dashboard ─────────────────────────────────
def test_follow_page_streams_the_instructors_lab_read_only_and_fork_opens_the_students_own():
    """Ensure the student's page watches the instructor's lab read-only, and fork makes and opens a lab of theirs."""
    ines = _instructor()
    classroom = _classroom(ines)
    student, sam = _join(classroom, "Sam")
    page = student.get(f"/classroom/{classroom.pk}/").content.decode()
    assert f'data-ws="/ws/watch/{classroom.lab.share_token}/"' in page and 'data-read-only="true"' in page
    assert "Fork into my own lab" in page and f'data-ws="/ws/classroom/{classroom.pk}/"' in page
    assert 'id="crash-broker"' not in page  # no controls while following
    response = student.post(f"/classroom/{classroom.pk}/fork")
    assert response.status_code == 302 and response["Location"] == f"/classroom/{classroom.pk}/mine"
    sam.refresh_from_db()
    fork = sam.lab
    assert fork is not None and fork.pk != classroom.lab_id and fork.owner_session == student.session.session_key
    assert fork.template == classroom.lab.template and fork.seed == classroom.lab.seed
    mine = student.get(f"/classroom/{classroom.pk}/mine").content.decode()
    assert f'data-ws="/ws/labs/{fork.pk}/"' in mine and 'id="crash-broker"' in mine and "your own lab" in mine
    assert "back to my lab" in student.get(f"/classroom/{classroom.pk}/").content.decode()
    # the instructor's present page works from any of their sessions (the lab follows the login)
    again = _instructor()
    present = again.get(f"/classroom/{classroom.pk}/present").content.decode()
    assert f'data-ws="/ws/labs/{classroom.lab_id}/"' in present and 'id="crash-broker"' in present
    assert Lab.objects.get(pk=classroom.lab_id).owner_session == again.session.session_key
    crash = again.post(f"/labs/{classroom.lab_id}/command", {"kind": "crash_broker", "broker": "2"})
    assert crash.status_code == 200, crash.content[:300]


def test_pause_all_pauses_the_instructors_and_every_students_lab():
    """Ensure pause all pauses every lab in the class (and new forks stay paused); resume all resumes them."""
    ines = _instructor()
    classroom = _classroom(ines, exercise=GUIDED)
    runtime.call(lambda: runtime.apply(classroom.lab_id, {"kind": "resume"}))
    a, sam = _join(classroom, "Sam")
    b, ana = _join(classroom, "Ana")
    a.post(f"/classroom/{classroom.pk}/fork")
    assert b.post(f"/classroom/{classroom.pk}/guided").status_code == 302
    sam.refresh_from_db(), ana.refresh_from_db()
    runtime.call(lambda: runtime.apply(sam.lab_id, {"kind": "resume"}))
    labs = [classroom.lab_id, sam.lab_id, ana.lab_id]
    assert not any(_paused(lab_id) for lab_id in labs)
    response = ines.post(f"/classroom/{classroom.pk}/pause", {"paused": "1"})
    assert response.status_code == 200 and b"Paused 3 labs" in response.content
    assert all(_paused(lab_id) for lab_id in labs)
    assert "Paused by the instructor" in a.get(f"/classroom/{classroom.pk}/mine").content.decode()
    page = a.get(f"/classroom/{classroom.pk}/").content.decode()
    assert 'id="class-paused" class="paused-notice" role="status">' in page  # shown (not hidden)
    c, carl = _join(classroom, "Carl")
    c.post(f"/classroom/{classroom.pk}/fork")
    carl.refresh_from_db()
    assert _paused(carl.lab_id)
    assert b"Resumed 4 labs" in ines.post(f"/classroom/{classroom.pk}/pause", {"paused": "0"}).content
    assert not any(_paused(lab_id) for lab_id in labs + [carl.lab_id])
    for lab_id in labs + [carl.lab_id]:
        runtime.call(lambda lab_id=lab_id: runtime.apply(lab_id, {"kind": "pause"}))


def test_dashboard_shows_each_students_lab_step_checks_and_verdict():
    """Ensure the roster lists students with their lab, guided step and checks passed, and their checker verdict."""
    from messaging_lab.exercises import services as exercise_services
    from messaging_lab.exercises.models import Progress

    ines = _instructor()
    classroom = _classroom(ines, exercise=GUIDED)
    follower, _ = _join(classroom, "Fay")
    forker, _ = _join(classroom, "Fred")
    guided, gus = _join(classroom, "Gus")
    forker.post(f"/classroom/{classroom.pk}/fork")
    response = guided.post(f"/classroom/{classroom.pk}/guided")
    assert response.status_code == 302 and response["Location"] == f"/learn/{GUIDED}/"
    page = guided.get(f"/learn/{GUIDED}/").content.decode()  # the guided page carries the class bar too
    assert 'id="classroom"' in page and 'id="guided-mode"' in page and "Gus" in page and 'id="guide"' in page
    assert f'data-ws="/ws/classroom/{classroom.pk}/"' in page and 'id="start-guided"' not in page
    assert 'id="classroom"' not in forker.get(f"/learn/{GUIDED}/").content.decode()  # not Fred's class lab
    gus.refresh_from_db()
    runtime.call(lambda: runtime.apply(gus.lab_id, {"kind": "pause"}))  # a still world: the checks stop changing
    runtime.call(lambda: runtime.apply(gus.lab_id, {"kind": "fast_forward", "seconds": 5}))
    exercise_services.check_now(gus.lab)  # evaluates the guide now and saves the progress (as the runtime does)
    state = Progress.objects.get(lab_id=gus.lab_id).state
    passed, total = sum(1 for ok, _ in state["results"] if ok), len(state["results"])
    assert total >= 1
    rows = {r["student"].display_name: r for r in services.dashboard(classroom)}
    assert rows["Fay"]["lab"] is None and rows["Fay"]["verdict"] is None
    assert rows["Fred"]["verdict"]["valid"] is True and rows["Fred"]["guided"] is None
    g = rows["Gus"]["guided"]
    assert g["exercise"] == GUIDED and g["step"] == state["step"] + 1 and g["steps"] >= 2
    assert (g["checks_passed"], g["checks"]) == (passed, total)
    html = ines.get(f"/classroom/{classroom.pk}/roster").content.decode()
    fay = html[html.index("Fay"):html.index("</tr>", html.index("Fay"))]
    assert "following" in fay
    fred = html[html.index("Fred"):html.index("</tr>", html.index("Fred"))]
    assert "valid" in fred and "acked" in fred
    gus_row = html[html.index("Gus"):html.index("</tr>", html.index("Gus"))]
    assert f"step {g['step']} of {g['steps']}" in gus_row and f"{passed} of {total}" in gus_row
    dashboard = ines.get(f"/classroom/{classroom.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in dashboard and "Gus" in dashboard


def test_dashboard_names_a_students_anomalies():
    """Ensure an anomaly in a student's lab (acks=1, leader crash) shows on the dashboard by name and count."""
    ines = _instructor()
    classroom = _classroom(ines)
    student, sam = _join(classroom, "Sam")
    student.post(f"/classroom/{classroom.pk}/fork")
    sam.refresh_from_db()
    lab_id = sam.lab_id

    def break_it() -> None:  # the README's recipe: acks=1, slow the leader's links, crash it
        runtime.apply(lab_id, {"kind": "configure_producer", "producer": "telemetry", "acks": "1",
                               "enable_idempotence": "false", "rate_per_s": "400"})
        world = runtime.get(lab_id).world
        world.advance(world.now_ms() + 3000)
        leader = world.view()["partitions"][0]["leader"]
        runtime.apply(lab_id, {"kind": "set_latency", "broker": str(leader), "latency_ms": "2000"})
        world.advance(world.now_ms() + 1500)
        runtime.apply(lab_id, {"kind": "crash_broker", "broker": str(leader)})
        world.advance(world.now_ms() + 20_000)

    runtime.call(break_it)
    row = services.dashboard(classroom)[0]
    assert row["verdict"]["valid"] is False and dict(row["verdict"]["anomalies"]).get("lost-write", 0) > 0
    assert "lost-write × " in ines.get(f"/classroom/{classroom.pk}/roster").content.decode()


# ── the class WebSocket ──────────────────────────────────────────────────────
def _communicator(classroom_id: int, client: Client | None) -> WebsocketCommunicator:
    from messaging_lab.asgi import application

    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if client is not None and "sessionid" in client.cookies:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, f"/ws/classroom/{classroom_id}/", headers=headers)


async def _until(ws: WebsocketCommunicator, kind: str, timeout: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        frame = await ws.receive_json_from(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if frame.get("type") == kind:
            return frame


def test_questions_answers_and_reveal_over_the_class_websocket():
    """Ensure a pushed question reaches students at once without its answer, answers update only the instructor's
    counts, reveal reaches everyone, and pause all is announced."""
    ines = _instructor()
    classroom = _classroom(ines)
    sam_client, _ = _join(classroom, "Sam")
    ana_client, _ = _join(classroom, "Ana")

    async def scenario() -> None:
        teacher, sam, ana = (_communicator(classroom.pk, c) for c in (ines, sam_client, ana_client))
        for ws in (teacher, sam, ana):
            assert (await ws.connect())[0]
        hello = await _until(teacher, "hello")
        assert hello["role"] == "instructor" and hello["question"] is None and hello["paused"] is False
        assert (await _until(sam, "hello"))["role"] == "student"
        await _until(ana, "hello")

        await teacher.send_json_to({"type": "push", "kind": "choice", "prompt": "How many idle?",
                                    "options": ["0", "1", "2"], "right": "2"})
        for ws in (sam, ana):
            pushed = await _until(ws, "question")
            assert pushed["question"]["prompt"] == "How many idle?" and "right" not in pushed["question"]
            assert "result" not in pushed["question"]
        counts = await _until(teacher, "counts")
        assert counts["answers"] == 0 and counts["students"] == 2
        qid = pushed["question"]["id"]

        await sam.send_json_to({"type": "answer", "question": qid, "answer": "1"})
        assert (await _until(sam, "answered"))["given"] == "1"
        counts = await _until(teacher, "counts")
        assert counts["answers"] == 1 and counts["counts"] == [0, 1, 0]
        await sam.send_json_to({"type": "answer", "question": qid, "answer": "0"})
        assert "already" in (await _until(sam, "error"))["message"]

        await ana.send_json_to({"type": "push", "kind": "text", "prompt": "mine"})
        assert "only the instructor" in (await _until(ana, "error"))["message"]
        await ana.send_json_to({"type": "reveal", "question": qid})
        assert "only the instructor" in (await _until(ana, "error"))["message"]
        await teacher.send_json_to({"type": "answer", "question": qid, "answer": "1"})
        assert "does not answer" in (await _until(teacher, "error"))["message"]
        await teacher.send_json_to({"type": "push", "kind": "choice", "prompt": "bad", "options": "a"})
        assert "list of texts" in (await _until(teacher, "error"))["message"]

        # a reconnecting student gets the current question back, with their own answer
        late = _communicator(classroom.pk, sam_client)
        assert (await late.connect())[0]
        back = await _until(late, "hello")
        assert back["question"]["id"] == qid and back["question"]["answered"] == "1" and "counts" not in back
        await late.disconnect()

        await teacher.send_json_to({"type": "reveal", "question": qid})
        for ws in (sam, ana, teacher):
            reveal = await _until(ws, "reveal")
            assert reveal["right"] == "1" and reveal["right_text"] == "1" and reveal["counts"] == [0, 1, 0]
        await ana.send_json_to({"type": "answer", "question": qid, "answer": "1"})
        assert "revealed already" in (await _until(ana, "error"))["message"]

        await teacher.send_json_to({"type": "pause"})
        for ws in (sam, ana, teacher):
            assert (await _until(ws, "pause"))["paused"] is True
        await teacher.send_json_to({"type": "resume"})
        assert (await _until(sam, "pause"))["paused"] is False
        # students never received anyone's counts
        while not await sam.receive_nothing(timeout=0.2):
            assert (await sam.receive_json_from())["type"] != "counts"
        for ws in (teacher, sam, ana):
            await ws.disconnect()

    asyncio.run(scenario())
    runtime.call(lambda: runtime.apply(classroom.lab_id, {"kind": "pause"}))
    assert Answer.objects.count() == 1


def test_bad_class_messages_get_error_frames_and_the_socket_stays_open():
    """Ensure bad JSON, oversized, unknown and malformed messages are answered with error frames."""
    ines = _instructor()
    classroom = _classroom(ines)
    sam_client, _ = _join(classroom, "Sam")
    question = services.push_question(classroom, "choice", "Which?", ["a", "b"], "1")

    async def scenario() -> None:
        ws = _communicator(classroom.pk, sam_client)
        assert (await ws.connect())[0]
        await _until(ws, "hello")
        for raw, expected in (("{nope", "not JSON"), ("[1, 2]", "messages are"), ('{"type": "dance"}', "messages are"),
                              ("x" * 5000, "at most 4096"), ('{"type": "answer", "question": 0, "answer": "0"}',
                                                             "not the question"),
                              ('{"type": "answer", "question": "%d", "answer": "\u00b2"}' % question.pk, "choose one"),
                              ('{"type": "answer", "question": %d, "answer": {"a": 1}}' % question.pk, "a text"),
                              ('{"type": "push", "kind": "choice", "prompt": "p", "options": ["a", "b"]}', "only the")):
            await ws.send_to(text_data=raw)
            assert expected in (await _until(ws, "error"))["message"], raw[:20]
        await ws.send_json_to({"type": "ping"})
        await _until(ws, "pong")
        await ws.disconnect()

    asyncio.run(scenario())


def test_only_the_classes_students_and_instructor_may_connect():
    """Ensure strangers, other classes' students, other instructors and unknown classes are refused."""
    ines = _instructor()
    classroom = _classroom(ines)
    other_class = _classroom(ines, name="Other")
    outsider, _ = _join(other_class, "Olga")
    otto = _instructor("otto")

    async def scenario() -> None:
        for client, class_id, code in ((None, classroom.pk, 4403), (outsider, classroom.pk, 4403),
                                       (otto, classroom.pk, 4403), (ines, 99_999, 4404)):
            ws = _communicator(class_id, client)
            connected, close_code = await ws.connect()
            assert not connected and close_code == code, (client, class_id, close_code)
            await ws.disconnect()

    asyncio.run(scenario())


def test_answers_pushed_from_a_view_reach_the_socket():
    """Ensure a question pushed from the dashboard's form (a sync view) reaches a connected student's socket."""
    ines = _instructor()
    classroom = _classroom(ines)
    sam_client, _ = _join(classroom, "Sam")

    async def scenario() -> None:
        ws = _communicator(classroom.pk, sam_client)
        assert (await ws.connect())[0]
        await _until(ws, "hello")
        post = database_sync_to_async(ines.post)
        await post(f"/classroom/{classroom.pk}/question", {"kind": "text", "prompt": "Why a log?", "right": ""})
        assert (await _until(ws, "question"))["question"]["kind"] == "text"
        await post(f"/classroom/{classroom.pk}/pause", {"paused": "1"})
        assert (await _until(ws, "pause"))["paused"] is True
        await ws.disconnect()

    asyncio.run(scenario())


def test_deleting_a_class_deletes_its_lab_but_not_the_students_forks():
    """Ensure delete removes the class, its students and the instructor's lab; a student's fork stays theirs."""
    ines = _instructor()
    classroom = _classroom(ines)
    student, sam = _join(classroom, "Sam")
    student.post(f"/classroom/{classroom.pk}/fork")
    sam.refresh_from_db()
    fork_id, lab_id = sam.lab_id, classroom.lab_id
    assert ines.post(f"/classroom/{classroom.pk}/delete")["Location"] == "/classroom/"
    assert not Classroom.objects.exists() and not Student.objects.exists()
    assert not Lab.objects.filter(pk=lab_id).exists() and Lab.objects.filter(pk=fork_id).exists()
    assert student.get(f"/classroom/{classroom.pk}/")["Location"] == "/join"
