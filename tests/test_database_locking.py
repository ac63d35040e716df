"""The production database settings: two writers at once queue on SQLite's busy timeout instead of failing.

The engine thread writes (command log, simulated time) while requests write (a fork: count the visitor's
labs, then create one). With Django's default BEGIN DEFERRED, the request's transaction first reads, and
when the engine thread writes meanwhile SQLite refuses the request's write at once with "database is
locked" — no busy timeout applies. That failed a fork in a browser test. settings.py asks for BEGIN
IMMEDIATE (and WAL); this runs the same two writers against a real file database both ways.
"""

import subprocess
import sys
from pathlib import Path

from tests.test_project import BASE_DIR, clean_env

SCRIPT = r"""
import os, sqlite3, sys, threading
import django
from django.conf import settings
os.environ["DJANGO_SETTINGS_MODULE"] = "messaging_lab.settings"
django.setup()
if sys.argv[1] == "deferred":
    settings.DATABASES["default"]["OPTIONS"].pop("transaction_mode")
from django.db import connection, transaction

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE lab (name TEXT)")
    mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
engine = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=5, isolation_level=None,
                         check_same_thread=False)  # another connection, as the engine thread's
wrote = threading.Event()

def engine_write():
    engine.execute("INSERT INTO lab VALUES ('engine')")
    wrote.set()

try:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM lab").fetchone()  # the request reads first ...
        writer = threading.Thread(target=engine_write)
        writer.start()
        wrote.wait(1.0)  # deferred: the engine's write commits now; immediate: it waits for this transaction
        cursor.execute("INSERT INTO lab VALUES ('request')")  # ... then writes
    outcome = "committed"
except Exception as exc:
    outcome = f"failed: {exc}"
writer.join()
rows = sorted(r[0] for r in engine.execute("SELECT name FROM lab"))
print(mode, outcome, ",".join(rows))
"""


def _run(tmp_path: Path, mode: str) -> str:
    env = clean_env(tmp_path / mode)
    (tmp_path / mode).mkdir()
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=BASE_DIR, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_request_transaction_waits_for_the_engine_threads_write(tmp_path):
    """Ensure with the settings as shipped: the request's read-then-write transaction commits, and so does the
    engine thread's write that came in the middle of it (it waited its turn), in WAL mode."""
    assert _run(tmp_path, "immediate") == "wal committed engine,request"


def test_without_begin_immediate_the_same_transaction_fails_at_once(tmp_path):
    """Ensure the test above can fail: with Django's default (BEGIN DEFERRED) the same request is refused."""
    out = _run(tmp_path, "deferred")
    assert out.startswith("wal failed: database is locked") and out.endswith(" engine"), out
