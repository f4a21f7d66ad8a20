"""Settings of the djwamp demo site.

Everything that differs between machines comes from the environment (the same variables
`make run` and the Crossbar node read): DJWAMP_PORT, DJWAMP_HOST, DJWAMP_REALM, REDIS_URL,
DJANGO_SECRET_KEY, DJANGO_DEBUG.
"""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent



def _misconfigured(message: str):
    """One line on stderr and exit status 1: a traceback would say nothing more to the reader."""
    raise SystemExit(f"django_site.settings: {message}")


def _env_number(name: str, default: str, kind: type):
    raw = os.environ.get(name, default)
    try:
        return kind(raw)
    except ValueError:
        _misconfigured(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}; "
                       f"unset it for the default{f' ({default})' if default else ''}")


#: published in this file: signs development sessions only
_DEVELOPMENT_KEY = "django-insecure-djwamp-development-only"
_MAKE_A_KEY = "export DJANGO_SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')\""

DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not DEBUG and not SECRET_KEY:
    _misconfigured(f"DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0, for example: {_MAKE_A_KEY}")
if not DEBUG and (SECRET_KEY == _DEVELOPMENT_KEY or SECRET_KEY.startswith("django-insecure")):
    _misconfigured(f"DJANGO_SECRET_KEY is a published development key; with DJANGO_DEBUG=0 use your own: {_MAKE_A_KEY}")
SECRET_KEY = SECRET_KEY or _DEVELOPMENT_KEY

# The site is reached through the Crossbar node's web transport (one origin for pages and
# the WebSocket); Django itself listens on an internal port behind it.
PUBLIC_HOST = os.environ.get("DJWAMP_HOST", "127.0.0.1")
PUBLIC_PORT = _env_number("DJWAMP_PORT", "8080", int)
ALLOWED_HOSTS = [PUBLIC_HOST, "127.0.0.1", "localhost", "[::1]"]
CSRF_TRUSTED_ORIGINS = [f"http://{host}:{PUBLIC_PORT}" for host in {PUBLIC_HOST, "127.0.0.1", "localhost"}]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "realtime",
    "demo",
]
# Test/dev hook: more apps, comma-separated (the tests give their nodes `tests.rpc_app`,
# whose procedures exist only for them).
INSTALLED_APPS += [app.strip() for app in os.environ.get("DJWAMP_EXTRA_APPS", "").split(",") if app.strip()]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "django_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "django_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", BASE_DIR / "db.sqlite3"),
        # a file, not memory: the tests' Crossbar node reads the sessions the tests create
        # (one per test run, so two runs side by side do not share it)
        "TEST": {"NAME": os.environ.get("DJANGO_TEST_DB_PATH")
                 or Path(tempfile.gettempdir()) / f"djwamp-test-{os.getpid()}.sqlite3"},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REDIS_URL unset: the private Redis that `make run` keeps on a socket in its run directory
# (never the machine's own Redis), so `manage.py publish` in another shell reaches it.
DEV_RUN_DIR = Path(os.environ.get("DJWAMP_RUN_DIR") or BASE_DIR.parent / ".run").resolve()

REALTIME = {
    "REALM": os.environ.get("DJWAMP_REALM", "djwamp"),
    "REDIS_URL": os.environ.get("REDIS_URL") or f"unix://{DEV_RUN_DIR / 'redis.sock'}",
    "TOPIC_PREFIXES": ["public.", "user.", "staff."],
    "ALLOW_ANONYMOUS": os.environ.get("DJWAMP_ALLOW_ANONYMOUS", "1") == "1",
    "REVALIDATE_INTERVAL": _env_number("DJWAMP_REVALIDATE_INTERVAL", "60", float),
    # what a page can ask for (on load, after a reconnect): the feed's and each chat room's
    # last 50 events, each user's last 20
    "HISTORY": {"public.feed": 50, "public.chat.": 50, "user.": 20},
}
# Test/dev hooks for the procedure pool and the limits per client (unset: the REALTIME defaults).
for _key, _parse in (("RPC_WORKERS", int), ("RPC_QUEUE", int), ("RPC_TIMEOUT", float),
                     ("MAX_CONNECTIONS_PER_IP", int), ("AUTH_FAILURES_PER_MINUTE", int)):
    if os.environ.get(f"DJWAMP_{_key}"):
        REALTIME[_key] = _env_number(f"DJWAMP_{_key}", "", _parse)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
