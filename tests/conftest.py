"""Suite-wide: run the longest tests first, so the parallel run (pytest-xdist) ends with short ones.

Together with ``--maxschedchunk 2`` (scripts/test.sh: tests go to whichever worker is free, two at
a time) this is longest-processing-time-first scheduling: the seed sweeps (tens of seconds each)
start at once on both workers and the short tests fill in around them, so both cores stay busy to
the end (5.3 minutes on 2 cores, was 7.5 with one worker holding every sweep). The order does not
change what any test sees: each builds its own cluster, database rows and lab files.
"""

from __future__ import annotations

LONG_FIRST = (  # node-id prefixes, longest first (seconds measured on 2 cores)
    "tests/core_log/test_scenarios.py::test_scenario_verdicts",  # 10–50 s each
    "tests/labs/test_recovery.py",  # a real server killed and restarted, ~13 s
    "tests/exercises/test_guided_labs.py::test_walkthrough",  # 1–6 s each
    "tests/core_log/test_log_model.py",
    "tests/core_log/test_checker.py::test_incremental",
    "tests/core_log/test_workloads.py",
    "tests/core_log/test_lab.py",
    "tests/core_log/test_metrics.py",
    "tests/core_log/test_assignors.py",
)


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    def rank(item) -> int:  # type: ignore[no-untyped-def]
        for i, prefix in enumerate(LONG_FIRST):
            if item.nodeid.startswith(prefix):
                return i
        return len(LONG_FIRST)

    items.sort(key=rank)  # stable: within a rank, file order stays


import pytest  # noqa: E402  (after the ordering notes above, which are the module's point)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):  # type: ignore[no-untyped-def]
    """The tests' database is SQLite's shared-cache in-memory one: run its transactions DEFERRED.

    Production's BEGIN IMMEDIATE (settings.py) makes a file database's writers queue on the busy
    timeout. A shared-cache database has no busy timeout: a transaction that takes the write lock at
    BEGIN would only make the engine thread's writes meet "table is locked" more often. The file
    database's behaviour is tested in tests/test_database_locking.py and by every live-server test.
    """
    from django.conf import settings

    settings.DATABASES["default"].setdefault("OPTIONS", {}).pop("transaction_mode", None)
