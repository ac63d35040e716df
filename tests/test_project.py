"""Project wiring: pages, settings from the environment, the ASGI app, and a real Daphne server."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.routing import ProtocolTypeRouter
from channels.security.websocket import OriginValidator
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from messaging_lab.settings import load_or_create_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # .venv/bin when run through scripts/test.sh
HTMX_FILES = sorted((BASE_DIR / "static" / "vendor").glob("htmx-*.min.js"))
SERVER_START_TIMEOUT_S = 15.0


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def clean_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The current environment without any of our variables, plus a throwaway key and database.

    A test key and a database under tmp_path mean no subprocess ever writes to the project's var/.
    """
    ours = ("DJANGO_", "LAB_", "REDIS_URL")
    env = {name: value for name, value in os.environ.items() if not name.startswith(ours)}
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    env["DJANGO_DB_PATH"] = str(tmp_path / "db.sqlite3")
    env.update(overrides)
    return env


def read_settings(env: dict[str, str], *names: str) -> subprocess.CompletedProcess[str]:
    """Import messaging_lab.settings in a fresh interpreter with `env`; print the named settings as JSON."""
    code = (
        "import json, messaging_lab.settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}, default=str))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_values(env: dict[str, str], *names: str) -> dict[str, object]:
    result = read_settings(env, *names)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, dict(response.headers), response.read()


# ---------------------------------------------------------------------------------------------------
# Pages and in-process wiring
# ---------------------------------------------------------------------------------------------------


def test_vendored_htmx_is_exactly_one_pinned_file():
    """Ensure static/vendor holds one htmx build, named with its version."""
    assert len(HTMX_FILES) == 1, HTMX_FILES


def test_home_page_names_the_app_and_loads_htmx(client):
    """Ensure the home page answers 200, names Messaging Lab and loads the vendored htmx."""
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Messaging Lab" in html
    assert f'<script src="/static/vendor/{HTMX_FILES[0].name}"' in html


def test_home_page_refuses_post(client):
    """Ensure the home page only answers GET (405 for POST)."""
    assert client.post("/").status_code == 405


def test_daphne_is_the_first_installed_app():
    """Ensure daphne comes first in INSTALLED_APPS, as Channels requires."""
    assert django_settings.INSTALLED_APPS[0] == "daphne"
    assert "channels" in django_settings.INSTALLED_APPS


def test_asgi_websocket_route_checks_the_origin():
    """Ensure the ASGI app is a ProtocolTypeRouter whose websocket entry is an AllowedHosts origin check."""
    from messaging_lab.asgi import application

    assert isinstance(application, ProtocolTypeRouter)
    assert set(application.application_mapping) == {"http", "websocket"}
    websocket_app = application.application_mapping["websocket"]
    # AllowedHostsOriginValidator is a factory returning an OriginValidator over ALLOWED_HOSTS.
    assert isinstance(websocket_app, OriginValidator)
    assert websocket_app.allowed_origins == django_settings.ALLOWED_HOSTS


def test_websocket_from_a_foreign_origin_is_refused():
    """Ensure a WebSocket handshake whose Origin is not an allowed host is rejected."""
    from messaging_lab.asgi import application

    async def handshake() -> bool:
        communicator = WebsocketCommunicator(
            application, "/ws/anything/", headers=[(b"origin", b"http://evil.example")]
        )
        connected, _ = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected

    assert async_to_sync(handshake)() is False


def test_secret_key_file_is_created_once_private_and_reused(tmp_path):
    """Ensure a generated secret key is stored with mode 0600 and read back on the next start."""
    key_path = tmp_path / "var" / "secret_key"

    first = load_or_create_secret_key(key_path)
    second = load_or_create_secret_key(key_path)

    assert first == second
    assert len(first) >= 50
    assert key_path.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------------------------------------
# Settings from the environment (each read in a fresh interpreter)
# ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, False),
        ("", False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("False", False),
        ("YES", True),
        ("no", False),
    ],
)
def test_debug_parses_the_accepted_words(tmp_path, raw, expected):
    """Ensure DJANGO_DEBUG accepts 1/0/true/false/yes/no in any case and defaults to off."""
    overrides = {} if raw is None else {"DJANGO_DEBUG": raw}

    values = settings_values(clean_env(tmp_path, **overrides), "DEBUG")

    assert values["DEBUG"] is expected


@pytest.mark.slow
def test_debug_rejects_a_bogus_value(tmp_path):
    """Ensure an unrecognised DJANGO_DEBUG stops start-up with an ImproperlyConfigured that names it."""
    result = read_settings(clean_env(tmp_path, DJANGO_DEBUG="maybe"), "DEBUG")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_DEBUG='maybe'" in result.stderr


@pytest.mark.slow
def test_defaults_are_local_and_safe(tmp_path):
    """Ensure unset variables give local hosts, var/labs, var/static, in-memory channels and no HTTPS."""
    env = clean_env(tmp_path)
    del env["DJANGO_DB_PATH"]  # read the default path too (an import only makes sure var/ exists)

    values = settings_values(
        env,
        "ALLOWED_HOSTS",
        "LAB_DATA_DIR",
        "STATIC_ROOT",
        "DB_PATH",
        "CHANNEL_LAYERS",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "CSRF_TRUSTED_ORIGINS",
    )

    assert values["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    assert Path(values["LAB_DATA_DIR"]) == BASE_DIR / "var" / "labs"
    assert values["LAB_DATA_DIR"].endswith(os.path.join("var", "labs"))
    assert Path(values["STATIC_ROOT"]) == BASE_DIR / "var" / "static"
    assert Path(values["DB_PATH"]) == BASE_DIR / "var" / "db.sqlite3"
    assert values["CHANNEL_LAYERS"]["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["CSRF_TRUSTED_ORIGINS"] == []


@pytest.mark.slow
def test_lists_and_paths_come_from_the_environment(tmp_path):
    """Ensure comma lists are split and trimmed, and LAB_DATA_DIR and REDIS_URL are honoured."""
    env = clean_env(
        tmp_path,
        DJANGO_ALLOWED_HOSTS=" lab.example.org, ,other.example ",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://lab.example.org",
        LAB_DATA_DIR=str(tmp_path / "labs"),
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    values = settings_values(env, "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "LAB_DATA_DIR", "CHANNEL_LAYERS")

    assert values["ALLOWED_HOSTS"] == ["lab.example.org", "other.example"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://lab.example.org"]
    assert values["LAB_DATA_DIR"] == str(tmp_path / "labs")
    layer = values["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert layer["CONFIG"] == {"hosts": ["redis://127.0.0.1:6379/0"]}


@pytest.mark.slow
def test_https_switch_turns_on_redirect_secure_cookies_and_hsts(tmp_path):
    """Ensure DJANGO_SECURE_HTTPS=1 enables the redirect, secure cookies and a one-year HSTS."""
    names = (
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    )

    values = settings_values(clean_env(tmp_path, DJANGO_SECURE_HTTPS="1"), *names)

    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
    }


@pytest.mark.slow
def test_deploy_check_passes_with_production_variables(tmp_path):
    """Ensure `manage.py check --deploy --fail-level WARNING` is clean with production variables."""
    key_file = BASE_DIR / "var" / "secret_key"
    key_before = key_file.read_bytes() if key_file.exists() else None
    env = clean_env(
        tmp_path,
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="lab.example.org",
        DJANGO_SECURE_HTTPS="1",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    # A key given in the environment is used as is: nothing is generated or written.
    key_after = key_file.read_bytes() if key_file.exists() else None
    assert key_after == key_before


# ---------------------------------------------------------------------------------------------------
# A real Daphne server
# ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_daphne_serves_the_home_page_and_static_files(tmp_path):
    """Ensure a real Daphne process serves / and the collected htmx file with 200."""
    env = clean_env(tmp_path, DJANGO_STATIC_ROOT=str(tmp_path / "static"))
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collect.returncode == 0, collect.stderr

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "daphne.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "messaging_lab.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        status = None
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"daphne exited with {server.returncode}:\n{log_path.read_text()}")
            try:
                status, headers, body = fetch(f"{base_url}/")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # the server is still starting; this waits on a real process
        assert status == 200, f"no answer within {SERVER_START_TIMEOUT_S} s:\n{log_path.read_text()}"
        assert b"Messaging Lab" in body
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"

        htmx = HTMX_FILES[0]
        status, headers, body = fetch(f"{base_url}/static/vendor/{htmx.name}")
        assert status == 200
        assert body == htmx.read_bytes()
        assert "javascript" in headers["Content-Type"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
