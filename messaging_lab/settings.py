"""Django settings for Messaging Lab.

Every setting that differs between a laptop and a server comes from an environment variable.
The defaults are the safe ones: debug off, local hosts only, no plain-text secret in the source.

| variable                      | default                                   | meaning                                             |
|-------------------------------|-------------------------------------------|-----------------------------------------------------|
| `DJANGO_SECRET_KEY`           | generated once into `var/secret_key`      | Django's signing key. When unset, a random key is   |
|                               | (mode 0600) and reused on later starts    | created on first start and kept, so sessions        |
|                               |                                           | survive restarts. Set it explicitly in production.  |
| `DJANGO_DEBUG`                | `false`                                   | 1/0, true/false, yes/no (any case); anything else   |
|                               |                                           | is refused with ImproperlyConfigured.               |
| `DJANGO_ALLOWED_HOSTS`        | `127.0.0.1,localhost`                     | comma-separated host names the site answers to.     |
| `DJANGO_CSRF_TRUSTED_ORIGINS` | empty                                     | comma-separated origins with scheme, e.g.           |
|                               |                                           | `https://lab.example.org`.                          |
| `DJANGO_SECURE_HTTPS`         | `false`                                   | the site is served over HTTPS: redirect to HTTPS,   |
|                               |                                           | secure cookies, HSTS (same boolean syntax as DEBUG).|
| `DJANGO_SECURE_HSTS_SECONDS`  | `31536000` (only read when HTTPS is on)   | Strict-Transport-Security max-age, in seconds.      |
| `DJANGO_DB_PATH`              | `var/db.sqlite3`                          | SQLite database file (relative paths are taken from |
|                               |                                           | the project root). Its folder is created if missing.|
| `DJANGO_STATIC_ROOT`          | `var/static`                              | where `collectstatic` puts files for WhiteNoise.    |
| `LAB_DATA_DIR`                | `var/labs/`                               | engine data, one folder per lab; created on demand  |
|                               |                                           | by whoever writes there, not here.                  |
| `REDIS_URL`                   | unset                                     | when set, Channels uses channels-redis at this URL  |
|                               |                                           | instead of the in-process channel layer (install    |
|                               |                                           | `channels-redis` yourself; it is not pinned yet).   |

An empty variable counts as unset. `BASE_DIR` is the project root (the folder holding manage.py).
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------------
# Reading the environment
# ---------------------------------------------------------------------------------------------------

_TRUE_WORDS = frozenset({"1", "true", "yes"})
_FALSE_WORDS = frozenset({"0", "false", "no"})


def _env(name: str) -> str | None:
    """Return the variable's value with surrounding spaces removed, or None when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean variable; a value that is not 1/0/true/false/yes/no is a configuration error."""
    value = _env(name)
    if value is None:
        return default
    word = value.lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no."
    )


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Read a whole-number variable no smaller than `minimum`."""
    value = _env(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated list, dropping blanks around and between the items."""
    value = _env(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    """Read a filesystem path; a relative one is taken from the project root."""
    value = _env(name)
    if value is None:
        return default
    return BASE_DIR / Path(value).expanduser()  # joining an absolute path keeps it as is


def load_or_create_secret_key(path: Path) -> str:
    """Return the key stored at `path`, creating it (random, mode 0600) on first use.

    The file is created with O_EXCL, so two processes starting at once (migrate and collectstatic
    in the serve script, say) cannot write two different keys: the loser reads the winner's key.
    """
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    else:
        if key:
            return key
        raise ImproperlyConfigured(f"{path} is empty; delete it to have a new key generated.")

    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)  # 67 characters, well past check --deploy's minimum of 50
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_secret_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as key_file:
        key_file.write(key + "\n")
    return key


# ---------------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------------

SECRET_KEY = _env("DJANGO_SECRET_KEY") or load_or_create_secret_key(BASE_DIR / "var" / "secret_key")

DEBUG = env_bool("DJANGO_DEBUG", default=False)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Engine data (segment files and the like), one folder per lab. Not created here: importing
# settings must stay free of side effects beyond what Django itself needs.
LAB_DATA_DIR = env_path("LAB_DATA_DIR", default=BASE_DIR / "var" / "labs")

INSTALLED_APPS = [
    # Daphne first: its runserver replaces Django's, and Channels' docs require it at the top.
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "messaging_lab.labs",
    "messaging_lab.exercises",
    "messaging_lab.classroom",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise serves STATIC_ROOT from inside Django, so Daphne alone is a complete server.
    # It is ordinary (sync) Django middleware; Django adapts it under ASGI.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "messaging_lab.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Daphne serves HTTP and WebSockets from this one ASGI application; there is no WSGI entry point.
ASGI_APPLICATION = "messaging_lab.asgi.application"


# ---------------------------------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------------------------------

# The in-memory layer only reaches consumers in this process. That matches the design (the engine
# runs in-process too, so the app is one server process); Redis is for when that changes.
# channels_redis is imported by Channels only when this backend is used.
REDIS_URL = _env("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


# ---------------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------------

DB_PATH = env_path("DJANGO_DB_PATH", default=BASE_DIR / "var" / "db.sqlite3")
# SQLite creates the file but not its folder; without this a fresh clone could not migrate.
DB_PATH.parent.mkdir(parents=True, exist_ok=True)

# How long a connection waits for another writer before "database is locked" (SQLite's busy timeout).
SQLITE_BUSY_TIMEOUT_S = 5
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DB_PATH,
        "OPTIONS": {
            # The engine thread and the requests write at the same time. A transaction that reads and then
            # writes (Django's default, BEGIN DEFERRED) cannot wait for the lock when another connection wrote
            # meanwhile: SQLite answers "database is locked" at once, without using the busy timeout.
            # BEGIN IMMEDIATE takes the write lock first, so it waits its turn instead of failing.
            "transaction_mode": "IMMEDIATE",
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            # WAL: readers and the one writer do not block each other. NORMAL sync is durable across a
            # crashed process (only a power loss can drop the last commits).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# ---------------------------------------------------------------------------------------------------
# Static files
# ---------------------------------------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_path("DJANGO_STATIC_ROOT", default=BASE_DIR / "var" / "static")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed (gzip) copies at collectstatic time, but no hashed names: templates render without
    # a manifest (tests need no collectstatic), and the vendored files carry their version in the
    # name already.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


# ---------------------------------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Turn on only when browsers reach the site over HTTPS. Behind a TLS-terminating proxy, run Daphne
# with --proxy-headers so X-Forwarded-Proto tells Django the request was secure (else: redirect loop).
SECURE_HTTPS = env_bool("DJANGO_SECURE_HTTPS", default=False)
SECURE_SSL_REDIRECT = SECURE_HTTPS
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000) if SECURE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS


# ---------------------------------------------------------------------------------------------------
# Internationalisation
# ---------------------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True


# ---------------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------------

# To stderr, whatever DEBUG says. Django's default sends a failed request's traceback to the console only
# with DEBUG on (else to ADMINS by mail, which we do not set up), so a server error left no trace at all.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "messaging_lab": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
