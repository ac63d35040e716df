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
