"""The live lab in a real browser: Playwright driving Debian's chromium against a real Daphne.

Each test saves a screenshot of its final state under ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.labs.server import BASE_DIR, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = BASE_DIR / "test-artifacts"
pytestmark = [pytest.mark.slow, pytest.mark.browser,  # run after the rest, alone (scripts/test.sh)
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                 "(.ci/run installs it: apt-get install chromium)")]
# Without the background-networking flags chromium keeps dialling out, which this machine refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("live")) as live:
        yield live


@pytest.fixture()
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        # A server error is a bug whatever the test checks; the report then shows the server's log (conftest.py).
        tab.on("response", lambda r: errors.append(f"HTTP {r.status} from {r.request.method} {r.url}")
               if r.status >= 500 else None)
        yield tab
        browser.close()
        assert not errors, errors


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _open_sandbox(page, server) -> None:
    page.goto(server.url + "/")
    page.click("#open-sandbox")
    page.wait_for_selector("#guarantees-ok", timeout=20_000)
    page.wait_for_function("document.querySelectorAll('#partitions .cell').length > 30", timeout=20_000)


def _leader_of_partition_0(page) -> int:
    head = page.inner_text("[id='partition-machine.telemetry-0'] .partition-head")
    return int(head.split("leader ")[1].split(" ")[0])


def test_crash_the_leader_from_the_page(page, server):
    """Ensure crashing partition 0's leader from the page moves leadership, narrates it, and acks=all stays green."""
    _open_sandbox(page, server)
    leader = _leader_of_partition_0(page)
    page.select_option("#broker-select", str(leader))
    page.click("#crash-broker")
    page.wait_for_selector("#command-result .ok", timeout=10_000)
    page.wait_for_function(
        "(old) => { const h = document.querySelector(\"[id='partition-machine.telemetry-0'] .partition-head\");"
        " return h && !h.textContent.includes('leader ' + old + ' '); }", arg=leader, timeout=30_000)
    assert _leader_of_partition_0(page) != leader
    page.wait_for_function(
        "document.getElementById('events').textContent.includes('leader moved from')", timeout=10_000)
    assert f"Broker {leader} was killed" in page.inner_text("#events")
    page.wait_for_timeout(3000)  # producers retry and consumers move on; the checker keeps judging
    assert page.is_visible("#guarantees-ok"), page.inner_text("#guarantees")
    assert page.inner_text(f"#broker-{leader}").count("down") == 1
    _shot(page, "crash-leader")


def test_more_consumers_than_partitions_shows_an_idle_member(page, server):
    """Ensure adding consumers until there are more than the 6 partitions marks the extra member idle."""
    _open_sandbox(page, server)
    for _ in range(5):  # 2 + 5 = 7 members for 6 partitions
        page.click("#add-consumer")
        page.wait_for_selector("#command-result .ok", timeout=10_000)
        page.evaluate("document.getElementById('command-result').textContent = ''")
    page.wait_for_function(
        "document.querySelectorAll('#group-dashboard .member').length === 7 &&"
        " document.querySelectorAll('#group-dashboard .member.idle').length === 1", timeout=40_000)
    assert "Stable" in page.inner_text("#group-dashboard")
    assert "idle: no partition left" in page.inner_text("#group-dashboard .member.idle")
    _shot(page, "idle-consumer")


def _group_lag(page) -> int:
    text = page.inner_text("#group-dashboard")
    return int(text.split("lag ")[1].split(" ")[0]) if "lag " in text else 0


def test_offset_reset_preview_then_apply_makes_lag_jump(page, server):
    """Ensure a dry-run reset to earliest previews re-deliveries (outlined records), and applying it makes the group lag jump."""
    _open_sandbox(page, server)
    page.wait_for_function("document.getElementById('group-dashboard') &&"
                           " document.getElementById('group-dashboard').textContent.includes('lag ')", timeout=30_000)
    page.wait_for_timeout(3000)  # let the group commit some progress
    page.select_option("#reset-to", "earliest")
    page.click("#reset-preview")
    page.wait_for_selector("#reset-plan", timeout=10_000)
    redelivered = int(page.inner_text("#reset-redelivered"))
    assert redelivered > 0 and "would re-deliver" in page.inner_text("#reset-plan")
    page.wait_for_selector("#partitions .cell.redelivered", timeout=10_000)
    page.click("#stop-group")
    page.wait_for_selector("#command-result .ok", timeout=10_000)
    lag_before = _group_lag(page)
    for _ in range(40):  # the group turns Empty once the members' LeaveGroup rebalance finishes
        page.click("#reset-apply")
        page.wait_for_selector("#reset-plan", timeout=10_000)
        if "re-delivers" in page.inner_text("#reset-plan"):
            break
        page.wait_for_timeout(500)
    assert "re-delivers" in page.inner_text("#reset-plan")
    page.wait_for_function(f"(() => {{ const t = document.getElementById('group-dashboard').textContent;"
                           f" const m = t.match(/lag (\\d+)/); return m && Number(m[1]) > {lag_before + redelivered // 2}; }})()",
                           timeout=15_000)
    assert _group_lag(page) > lag_before
    _shot(page, "offset-reset")


def test_acks1_leader_crash_shows_lost_write_and_highlights_it(page, server):
    """Ensure with acks=1, slowing a leader's links then crashing it makes lost-write appear with the records outlined."""
    _open_sandbox(page, server)
    page.select_option("#producer-form select[name=acks]", "1")
    page.select_option("#producer-form select[name=enable_idempotence]", "false")
    page.fill("#producer-form input[name=rate_per_s]", "200")
    page.click("#configure-producer")
    page.wait_for_selector("#command-result .ok", timeout=10_000)
    page.select_option("select[name=speed]", "5.0")
    page.click("text=Set speed")
    leader = _leader_of_partition_0(page)
    page.select_option("#latency-broker", str(leader))
    page.click("#set-latency")  # followers now copy from it 2 s late: its acks=1 writes are alone for a while
    page.wait_for_timeout(1500)
    page.select_option("#broker-select", str(leader))
    page.click("#crash-broker")
    page.wait_for_selector("#anomaly-lost-write", timeout=60_000)
    assert "lost-write" in page.inner_text("#guarantees")
    page.click("#anomaly-lost-write button")
    # outlined in the strips if still among the newest offsets, and in the log explorer at that offset
    page.wait_for_selector("#explorer tr.highlight", timeout=10_000)
    _shot(page, "acks1-lost-write")


def test_a_real_kafka_client_shows_in_the_page_under_its_client_id(page, server):
    """Ensure in the page: Open Kafka listeners shows a bootstrap address and the three snippets; a real
    kafka-python producer and group consumer run against it appear in 'Your own Kafka client' and in the
    consumer groups panel under their client.id; Close the listeners turns them off."""
    from tests.wire.clients import Member, produce, wait_for

    _open_sandbox(page, server)
    page.click("#wire-open-button")
    page.wait_for_selector("#wire-bootstrap", timeout=20_000)
    bootstrap = page.inner_text("#wire-bootstrap")
    assert bootstrap.count("127.0.0.1:") == 3
    for snippet in ("kafka-python", "confluent-kafka", "aiokafka"):
        assert bootstrap in page.text_content(f"#snippet-{snippet}")
    mine = [b"from-my-code-%d" % i for i in range(20)]
    acked, errors = produce("kafka-python", bootstrap, "machine.telemetry", mine, client_id="my-producer")
    assert len(acked) == 20, errors
    member = Member("kafka-python", bootstrap, "machine.telemetry", "my-group", "my-consumer").start()
    try:  # the lab's own producer writes to the topic too: wait for the learner's own 20 among what it reads
        wait_for(lambda: set(mine) <= set(member.got), "the learner's consumer to read its records")
        page.wait_for_selector("#wire-client-my-consumer", timeout=15_000)
        page.wait_for_selector("#group-my-group", timeout=15_000)
        assert "my-consumer" in page.inner_text("#group-my-group")
        _shot(page, "wire-own-client")
    finally:
        member.stop()
    page.click("#wire-close")
    page.wait_for_selector("#wire-open-button", timeout=20_000)
