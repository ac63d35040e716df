"""Classroom tests reuse the labs' lab_data fixture; join-rate counters (Django's cache) start empty in each test."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.labs.conftest import lab_data  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()
