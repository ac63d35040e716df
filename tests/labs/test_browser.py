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
pytestmark = [pytest.mark.slow,
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
