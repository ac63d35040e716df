"""Shared fixtures of the in-process lab tests."""

from __future__ import annotations

import pytest

from messaging_lab.labs.runtime import runtime


@pytest.fixture()
def lab_data(tmp_path, settings):
    """Lab files under the test's tmp_path; afterwards the engine thread stops hosting the test's labs."""
    settings.LAB_DATA_DIR = tmp_path / "labs"
    yield
    runtime.call(runtime.forget_all)


LOG_TAIL_CHARS = 6_000  # how much of a live server's log a failed test's report shows


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """A failed test that used a live server (tests/labs/server.py) reports the end of the server's log.

    A browser test that times out only says what it waited for; the server's log says why (a traceback,
    a refused request). CI shows nothing else of the server, which is gone by then.
    """
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    from tests.labs.server import LiveServer

    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, LiveServer):
            log = value.root / "daphne.log"
            text = log.read_text(errors="replace") if log.exists() else "(no log written)"
            report.sections.append(("live server log (end)", text[-LOG_TAIL_CHARS:]))
