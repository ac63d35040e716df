"""The timeline: rewind to a moment, fork from there, compare, export and import a run."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from core_log.lab import LabWorld
from messaging_lab.labs import services
from messaging_lab.labs.models import Lab, LabCommand
from messaging_lab.labs.runtime import CHECKPOINT_SIM_MS, CONTROL_KINDS, MAX_CHECKPOINT_BYTES, runtime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("lab_data")]

LIVE_ONLY = ("speed", "paused", "behind", "rewind")


def _create(client: Client, name: str = "Sandbox") -> Lab:
    response = client.post("/labs/new", {"template": "sandbox", "name": name})
    assert response.status_code == 302, response.content[:500]
    return Lab.objects.get(pk=response["Location"].strip("/").split("/")[-1])


def _cmd(client: Client, lab: Lab, **command: str) -> None:
    response = client.post(f"/labs/{lab.pk}/command", command)
    assert response.status_code == 200, response.content[:500]


def _state(client: Client, lab: Lab) -> dict:
    return {k: v for k, v in client.get(f"/labs/{lab.pk}/state.json").json().items() if k not in LIVE_ONLY}


def _commands(lab: Lab) -> list[tuple]:
    return list(LabCommand.objects.filter(lab=lab).values_list("seq", "sim_time_ms", "kind", "args"))


def _replayed_view(lab: Lab, at_ms: int, tmp_path) -> dict:
    """The lab at at_ms the slow, obvious way: LabWorld.replay of its commands from the seed."""
    commands = [(c.sim_time_ms, {"kind": c.kind, **c.args}) for c in lab.commands.filter(sim_time_ms__lte=at_ms)
                if c.kind not in CONTROL_KINDS]
    world = LabWorld.replay(lab.template, lab.seed, commands, at_ms, data_dir=str(tmp_path / f"replay-{lab.pk}-{at_ms}"),
                            brokers=lab.brokers)
    return json.loads(json.dumps(world.view()))


def _paused_lab_with_a_crash(client: Client) -> Lab:
    """A paused sandbox: 12.5 s, then 10 s more, broker 1 crashed at ~22.5 s, then 8 s more (time is simulated only)."""
    lab = _create(client)
    _cmd(client, lab, kind="pause")
    _cmd(client, lab, kind="fast_forward", seconds="12")
    _cmd(client, lab, kind="fast_forward", seconds="10")
    _cmd(client, lab, kind="crash_broker", broker="1", mode="kill")
    _cmd(client, lab, kind="fast_forward", seconds="8")
    return lab


def test_rewind_and_fork_the_fork_diverges_and_the_original_is_unchanged(client, tmp_path):
    """Ensure: rewind to before the crash shows it undone; a fork there crashing another broker goes its own way,
    while the original's commands and state stay exactly what they were."""
    lab = _paused_lab_with_a_crash(client)
    crash_at = LabCommand.objects.get(lab=lab, kind="crash_broker").sim_time_ms
    assert crash_at > 20_000
    original_commands = _commands(lab)
    original_state = _state(client, lab)
    assert [b["alive"] for b in original_state["brokers"]] == [False, True, True]

    # Rewind: the moment before the crash, rebuilt from the newest checkpoint before it (not from the seed).
    at_ms = 17_500
    checkpoints = client.get(f"/labs/{lab.pk}/timeline.json").json()["checkpoints"]["times_ms"]
    assert checkpoints[0] == CHECKPOINT_SIM_MS
    past = client.get(f"/labs/{lab.pk}/rewind", {"at_ms": at_ms})
    assert past.status_code == 200, past.content[:300]
    view = past.json()
    assert view["time_ms"] == at_ms and [b["alive"] for b in view["brokers"]] == [True, True, True]
    assert view["rewind"]["from_checkpoint_ms"] == max(t for t in checkpoints if t <= at_ms)
    assert {k: v for k, v in view.items() if k != "rewind"} == _replayed_view(lab, at_ms, tmp_path)

    # Fork there; crash broker 2 in the fork.
    response = client.post(f"/labs/{lab.pk}/fork", {"at_ms": str(at_ms)})
    assert response.status_code == 302
    fork = Lab.objects.get(pk=response["Location"].strip("/").split("/")[-1])
    assert fork.pk != lab.pk and fork.seed == lab.seed
    forked = _state(client, fork)
    assert forked["time_ms"] == at_ms and forked == {k: v for k, v in view.items() if k != "rewind"}
    _cmd(client, fork, kind="crash_broker", broker="2", mode="kill")
    _cmd(client, fork, kind="fast_forward", seconds="16")

    fork_state = _state(client, fork)
    assert [b["alive"] for b in fork_state["brokers"]] == [True, False, True]
    assert fork_state["time_ms"] > at_ms
    leaders_fork = {p["partition"]: p["leader"] for p in fork_state["partitions"]}
    leaders_orig = {p["partition"]: p["leader"] for p in original_state["partitions"]}
    assert 2 not in leaders_fork.values() and 2 in leaders_orig.values() and leaders_fork != leaders_orig

    # The original: the same commands, the same state, and still what a replay of its own log gives.
    assert _commands(lab) == original_commands
    assert _state(client, lab) == original_state
    assert original_state == _replayed_view(lab, original_state["time_ms"], tmp_path)

    # The compare page shows both, and where they differ.
    compare = client.get(f"/labs/{fork.pk}/compare")
    assert compare.status_code == 200
    text = compare.content.decode()
    assert fork.name in text and lab.name in text and 'class="differs"' in text and "broker 2" in text
    assert client.get(f"/labs/{fork.pk}/compare?partial=1").status_code == 200
    assert client.get(f"/labs/{lab.pk}/compare").status_code == 404  # the original is not a fork
    assert f"/labs/{fork.pk}/compare" in client.get(f"/labs/{fork.pk}/").content.decode()

    # The fork remembers its source in the database: when the fork moves to another browser session (as an
    # instructor's labs do when they log in), that session can still compare it.
    assert (fork.forked_from_id, fork.forked_at_ms) == (lab.pk, at_ms)
    elsewhere = Client()
    elsewhere.get("/labs/")
    Lab.objects.filter(pk=fork.pk).update(owner_session=elsewhere.session.session_key)
    moved = elsewhere.get(f"/labs/{fork.pk}/compare")
    assert moved.status_code == 200 and lab.name in moved.content.decode()


def test_timeline_lists_commands_and_checkpoints_and_rewind_validates_the_moment(client):
    """Ensure timeline.json has every command's time and kind and the checkpoints; bad moments get a reason."""
    lab = _paused_lab_with_a_crash(client)
    t = client.get(f"/labs/{lab.pk}/timeline.json").json()
    assert [c["kind"] for c in t["commands"]] == ["pause", "fast_forward", "fast_forward", "crash_broker",
                                                   "fast_forward"]
    assert t["now_ms"] >= 30_000 and t["checkpoints"]["times_ms"][0] == CHECKPOINT_SIM_MS  # later ones may be deferred
    times = t["checkpoints"]["times_ms"]
    assert times == sorted(times) and all(CHECKPOINT_SIM_MS <= x <= t["now_ms"] for x in times)
    assert t["checkpoints"]["max_bytes"] == MAX_CHECKPOINT_BYTES and t["checkpoints"]["bytes"] > 0
    for bad, reason in (("abc", "whole number"), ("-5", "whole number"), ("", "whole number"),
                        (str(t["now_ms"] + 60_000), "has only run"), ("9" * 20, "whole number")):
        response = client.get(f"/labs/{lab.pk}/rewind", {"at_ms": bad})
        assert response.status_code == 400 and reason in response.content.decode(), (bad, response.content)
    early = client.get(f"/labs/{lab.pk}/rewind", {"at_ms": "3000"}).json()
    assert early["rewind"]["from_checkpoint_ms"] is None and early["time_ms"] == 3000  # before the first checkpoint


def test_after_a_restart_the_first_rebuild_takes_checkpoints_again(client):
    """Ensure checkpoints are memory only: after a restart the lab is replayed once and has checkpoints again."""
    lab = _paused_lab_with_a_crash(client)
    before = client.get(f"/labs/{lab.pk}/rewind", {"at_ms": "25000"}).json()
    runtime.call(runtime.forget_all)  # what a restart does to the engine's memory
    after = client.get(f"/labs/{lab.pk}/rewind", {"at_ms": "25001"}).json()
    assert after["rewind"]["from_checkpoint_ms"] == 25_001 // CHECKPOINT_SIM_MS * CHECKPOINT_SIM_MS
    assert [b["alive"] for b in after["brokers"]] == [b["alive"] for b in before["brokers"]] == [False, True, True]


def test_only_the_owner_can_rewind_fork_export_or_compare(client):
    """Ensure another browser (or a read-only watcher) gets 404 from every timeline URL, and POSTs need CSRF."""
    lab = _create(client)
    other = Client()
    for url in ("timeline.json", "rewind?at_ms=0", "export.json", "compare"):
        assert other.get(f"/labs/{lab.pk}/{url}").status_code == 404, url
    assert other.post(f"/labs/{lab.pk}/fork", {"at_ms": "0"}).status_code == 404
    watch = other.get(f"/labs/watch/{lab.share_token}/").content.decode()
    assert 'id="timeline-range"' not in watch and "fork-here" not in watch
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    assert strict.post(f"/labs/{lab.pk}/fork", {"at_ms": "0"}).status_code == 403
    assert strict.post("/labs/import", {}).status_code == 403


def test_export_then_import_replays_the_run_exactly(client):
    """Ensure an exported run imported (here, or on another server) gives the identical view at the same time."""
    lab = _create(client, "To export")
    _cmd(client, lab, kind="pause")
    _cmd(client, lab, kind="fast_forward", seconds="5")
    _cmd(client, lab, kind="crash_broker", broker="3", mode="power_loss")
    _cmd(client, lab, kind="add_consumer", group="dashboard", rate_per_s="50")
    _cmd(client, lab, kind="fast_forward", seconds="4")
    response = client.get(f"/labs/{lab.pk}/export.json")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    run = json.loads(response.content)
    assert run["format"] == services.RUN_FORMAT and run["version"] == 1 and run["seed"] == lab.seed
    assert run["template"] == "sandbox" and run["brokers"] == 3 and run["exercise"] == ""
    assert [c[1] for c in run["commands"]] == ["pause", "fast_forward", "crash_broker", "add_consumer", "fast_forward"]
    assert run["until_ms"] == _state(client, lab)["time_ms"]

    elsewhere = Client()  # another browser (as good as another server: the file is all it gets)
    upload = SimpleUploadedFile("run.json", response.content, content_type="application/json")
    imported = elsewhere.post("/labs/import", {"run": upload})
    assert imported.status_code == 302, imported.content[:500]
    copy = Lab.objects.get(pk=imported["Location"].strip("/").split("/")[-1])
    assert copy.pk != lab.pk and copy.seed == lab.seed and copy.paused
    assert _state(elsewhere, copy) == _state(client, lab)
    assert "Imported" in copy.name


def _run(**changes) -> dict:
    run = {"format": "messaging-lab-run", "version": 1, "name": "x", "template": "sandbox", "brokers": 3, "seed": 5,
           "exercise": "", "commands": [[1000, "crash_broker", {"broker": "2"}]], "until_ms": 3000}
    run.update(changes)
    return run


@pytest.mark.parametrize("content, reason", [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "one JSON object"),
    (json.dumps(_run(format="kafka")).encode(), "format must be"),
    (json.dumps(_run(version=2)).encode(), "version 1"),
    (json.dumps(_run(template="nope")).encode(), "template must be"),
    (json.dumps(_run(brokers=0)).encode(), "brokers must be"),
    (json.dumps(_run(seed=-1)).encode(), "seed must be"),
    (json.dumps(_run(seed="5")).encode(), "seed must be"),
    (json.dumps(_run(until_ms=10 ** 9)).encode(), "until_ms must be"),
    (json.dumps(_run(extra=1)).encode(), "unknown field"),
    (json.dumps({k: v for k, v in _run().items() if k != "seed"}).encode(), "missing field"),
    (json.dumps(_run(commands={})).encode(), "commands must be a list"),
    (json.dumps(_run(commands=[[1000, "format_disk", {}]])).encode(), "unknown command kind"),
    (json.dumps(_run(commands=[[2000, "heal", {}], [1000, "heal", {}]])).encode(), "times must not decrease"),
    (json.dumps(_run(commands=[[5000, "heal", {}]])).encode(), "time_ms must be"),
    (json.dumps(_run(commands=[[1000, "heal"]])).encode(), "[time_ms, kind, args]"),
    (json.dumps(_run(commands=[[1000, "heal", {"x": {"y": 1}}]])).encode(), "must be text, a number"),
    (json.dumps(_run(commands=[[1000, "heal", {"x": "y" * 500}]])).encode(), "more than 200 characters"),
    (json.dumps(_run(commands=[[0, "heal", {}]] * (services.MAX_IMPORT_COMMANDS + 1))).encode(), "at most 5000"),
    (b" " * (services.MAX_IMPORT_BYTES + 1), "at most 1048576 bytes"),
])
def test_bad_run_files_are_refused_with_the_reason(client, content, reason):
    """Ensure an import that is too big, not JSON, of another shape, or with unknown commands creates nothing."""
    before = Lab.objects.count()
    response = client.post("/labs/import", {"run": SimpleUploadedFile("run.json", content)})
    assert response.status_code == 400 and reason in response.content.decode(), response.content.decode()[-600:]
    assert Lab.objects.count() == before
    htmx = client.post("/labs/import", {"run": SimpleUploadedFile("run.json", content)}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400 and b'role="alert"' in htmx.content and b"<html" not in htmx.content
    assert client.post("/labs/import", {}).status_code == 400


def test_fork_without_a_checkpoint_falls_back_to_a_full_replay(client):
    """Ensure fork_lab (also used by classrooms) still forks at 'now' of a young lab with no checkpoint yet."""
    lab = _create(client)
    _cmd(client, lab, kind="pause")
    _cmd(client, lab, kind="fast_forward", seconds="3")
    response = client.post(f"/labs/{lab.pk}/fork", {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"].startswith("/labs/")
    fork = Lab.objects.get(pk=response["HX-Redirect"].strip("/").split("/")[-1])
    assert _state(client, fork) == _state(client, lab)
    assert client.post(f"/labs/{lab.pk}/fork", {"at_ms": "x"}).status_code == 400


# ── in a real browser ────────────────────────────────────────────────────────
try:  # the browser tests' own server, page fixture and skip rule (Debian's chromium, else skipped, saying so)
    from tests.labs.test_browser import CHROMIUM, _shot, page, server  # noqa: F401  (fixtures)
except ImportError:  # pragma: no cover
    CHROMIUM = ""


@pytest.mark.slow
@pytest.mark.browser  # run after the rest, alone (scripts/test.sh)
@pytest.mark.skipif(not CHROMIUM or not __import__("pathlib").Path(CHROMIUM).exists(),
                    reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
def test_browser_scrub_back_see_the_earlier_state_fork_and_compare(page, server):
    """Ensure in the page: scrub the timeline to before a crash, see the broker up again (live frames not drawn),
    go back to live, scrub again, fork from there, land on the fork's page and open the comparison."""
    page.goto(server.url + "/")
    page.click("#open-sandbox")
    page.wait_for_selector("#guarantees-ok", timeout=20_000)
    page.select_option("select[name=speed]", "5.0")
    page.click("form:has(select[name=speed]) button")
    page.wait_for_function("parseFloat(document.getElementById('sim-time').textContent) > 13", timeout=30_000)
    page.select_option("#broker-select", "1")
    page.click("#crash-broker")
    page.wait_for_function("document.getElementById('broker-1').textContent.includes('down')", timeout=15_000)
    page.wait_for_selector("#timeline-ticks .tick.crash_broker", state="attached", timeout=15_000)
    crash_ms = int(page.get_attribute("#timeline-ticks .tick.crash_broker", "data-at-ms"))
    before = max(0, crash_ms - 3000)

    def scrub(at_ms: int) -> None:
        page.evaluate("(at) => { const r = document.getElementById('timeline-range'); r.value = String(at);"
                      " r.dispatchEvent(new Event('input')); r.dispatchEvent(new Event('change')); }", at_ms)
        page.wait_for_selector("#viewing-banner:not([hidden])", timeout=30_000)

    scrub(before)
    banner = page.inner_text("#viewing-banner")
    assert "Viewing" in banner and "live lab keeps running" in banner
    page.wait_for_function("document.getElementById('broker-1').textContent.includes('up')", timeout=10_000)
    page.wait_for_timeout(1500)  # live frames (broker 1 down) keep arriving; they must not be drawn meanwhile
    assert "up" in page.inner_text("#broker-1") and "down" not in page.inner_text("#broker-1")
    assert page.inner_text("#sim-time").startswith(f"{before / 1000:.1f}")
    _shot(page, "timeline-viewing-past")

    page.click("#back-to-live")
    page.wait_for_function("document.getElementById('broker-1').textContent.includes('down')", timeout=10_000)
    assert page.is_hidden("#viewing-banner")

    scrub(before)
    original = page.url
    page.click("#fork-here")
    page.wait_for_url(lambda url: url != original and "/labs/" in url, timeout=60_000)
    page.wait_for_selector("#compare-link", timeout=20_000)
    page.wait_for_function("document.getElementById('broker-1') && "
                           "document.getElementById('broker-1').textContent.includes('up')", timeout=20_000)
    assert "Fork of" in page.inner_text("h1")
    _shot(page, "timeline-fork")
    page.click("#compare-link")
    page.wait_for_selector("#compare-totals", timeout=20_000)
    text = page.inner_text("#compare-brokers")
    assert "broker 1" in text and "down" in text and "up" in text
    _shot(page, "timeline-compare")
