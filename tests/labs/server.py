"""A real Daphne process for browser and restart tests: its own database, lab data and static files."""

from __future__ import annotations

import atexit
import contextlib
import http.cookiejar
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_PREPARED: list[Path] = []  # this process's migrated database and collected static files (made once)


def _prepared(env: dict[str, str]) -> Path:
    """A folder with a freshly migrated ``db.sqlite3`` and collected ``static/``, made once per test process.

    Every server copies the database (so each starts empty and isolated) and serves the same static
    files (read-only); migrate + collectstatic took ~5 s per server otherwise.
    """
    if not _PREPARED:
        folder = Path(tempfile.mkdtemp(prefix="messaging-lab-live-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        prepared_env = {**env, "DJANGO_DB_PATH": str(folder / "db.sqlite3"),
                        "DJANGO_STATIC_ROOT": str(folder / "static"), "LAB_DATA_DIR": str(folder / "labs")}
        for command in (["migrate", "--verbosity", "0"], ["collectstatic", "--noinput", "--verbosity", "0"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=BASE_DIR, env=prepared_env, check=True,
                           capture_output=True, timeout=120)
        # The database is in WAL mode (settings.py): fold the log into the file, so one file is the whole copy.
        with contextlib.closing(sqlite3.connect(folder / "db.sqlite3")) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _PREPARED.append(folder)
    return _PREPARED[0]


class LiveServer:
    """``with LiveServer(tmp_path) as server:`` — Daphne on 127.0.0.1, stopped (or killed) afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        ours = ("DJANGO_", "LAB_", "REDIS_URL")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
        self.env.update({
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DB_PATH": str(root / "db.sqlite3"),
            "LAB_DATA_DIR": str(root / "labs"),
        })
        prepared = _prepared(self.env)
        root.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(prepared / "db.sqlite3", root / "db.sqlite3")
        self.env["DJANGO_STATIC_ROOT"] = str(prepared / "static")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.root / "daphne.log", "ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(self.port), "messaging_lab.asgi:application"],
            cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {(self.root / 'daphne.log').read_text()}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # waiting on a real process to start listening
        raise RuntimeError(f"daphne did not answer within {START_TIMEOUT_S} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a server is killed for real."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "LiveServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Browser:
    """Just enough of a browser: cookies, CSRF token, form posts."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[str, bytes]:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.geturl(), response.read()

    def post(self, path: str, fields: dict[str, str]) -> tuple[str, bytes]:
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        with self.opener.open(self.base + path, data=data, timeout=30) as response:
            return response.geturl(), response.read()

    def state(self, lab_id: str) -> dict:
        return json.loads(self.get(f"/labs/{lab_id}/state.json")[1])
