"""Configuration read from the environment; defaults suit a developer's machine.

``TONGXIN_ENV=production`` (or ``FLASK_ENV=production``) selects ProductionConfig on top of
Config: secure cookies, and create_app refuses to start with a default or short SECRET_KEY or
with debug on."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SECRET = "dev-only-secret-change-me"
# Where a developer's `flask run` answers; production must say where the portal is public.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"


def default_database_url(instance_path: str) -> str:
    return "sqlite:///" + str(Path(instance_path) / "tongxin.db")


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET)
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")  # filled in create_app when unset
    # No pool_pre_ping: a connection is checked only after it sat idle (database.ping_after_idle).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh_Hans_CN", "en")
    # Tokens live as long as the session: a page left open on a phone must still submit.
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_DURATION = timedelta(days=30)
    # The address people reach the portal at (scheme, host, optional path): every absolute URL
    # (QR codes, calendar feeds, Open311 media_url, certificate links) is built on it, never on
    # the request's Host header. Unset: DEFAULT_PUBLIC_URL, refused in production.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "")
    # Production answers 400 to any Host other than PUBLIC_URL's and these (comma-separated:
    # "127.0.0.1,localhost" for a health check made on the machine itself).
    EXTRA_HOSTS = [h.strip() for h in os.environ.get("EXTRA_HOSTS", "").split(",") if h.strip()]
    # Number of reverse proxies (nginx...) in front of gunicorn; 0 ignores X-Forwarded-* headers.
    # PROXY_HOPS is the older name of the same setting.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", os.environ.get("PROXY_HOPS", "0")))
    PAGE_SIZE = 20
    # Rendered pages kept per worker (portal/core/pagecache.py); 0 turns the page cache off.
    PAGE_CACHE_BYTES = int(os.environ.get("PAGE_CACHE_BYTES", str(32 * 1024 * 1024)))
    # Photos: at most 10 MB each; a request may carry a little more (form fields).
    MAX_PHOTO_BYTES = 10 * 1024 * 1024
    # Pixels (width x height) a photo may have: refused from its header, before decoding.
    PHOTO_MAX_PIXELS = int(os.environ.get("PHOTO_MAX_PIXELS", "24000000"))
    # Photos decoded at once by all the workers of the instance, one a core by default (a large
    # one takes a core for about a second); one more is refused at once, to be sent again
    # (portal/core/photos.py): many workers decoding never crowd out the rest of the portal.
    PHOTO_DECODE_SLOTS = int(os.environ.get("PHOTO_DECODE_SLOTS", str(os.cpu_count() or 1)))
    MAX_CONTENT_LENGTH = 12 * 1024 * 1024
    # A form's text fields (the whole body of a urlencoded form, each field of a multipart one)
    # and its number of fields: far above any real form, low enough that a flood answers 413.
    MAX_FORM_MEMORY_SIZE = 256 * 1024
    MAX_FORM_PARTS = 500
    SHIFT_CANCEL_CUTOFF_HOURS = 2
    # Where outbound SMS/WeChat messages go: "module:Class" with a send() method.
    MESSAGE_BACKEND = os.environ.get("MESSAGE_BACKEND", "portal.notifications.services:LogBackend")
    # A TrueType CJK font for the hours certificates' PDF; unset: Debian's fonts-wqy-microhei.
    CERTIFICATE_FONT = os.environ.get("CERTIFICATE_FONT")
    SERIES_HORIZON_DAYS = 56
    # Sign-in throttling (portal/auth/services.py), counted per account, never per spelling:
    # - 5 failures on one account from one address (or one known device) lock that pair until
    #   15 minutes after the last; other addresses and known devices go on;
    # - across all addresses, from the 5th failure on each further attempt must wait 2, 4, 8 ...
    #   seconds, at most 15 minutes (a known device skips the wait); forgotten after a day;
    # - one address may try at most 10 different accounts without success in an hour (spraying),
    #   so one attacker behind a shared network blocks only new accounts, not everyone.
    LOGIN_FAILURES_PER_ACCOUNT = 5
    LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
    LOGIN_DELAY_AFTER_FAILURES = 5
    LOGIN_DELAY_BASE_SECONDS = 2
    LOGIN_DELAY_MAX_SECONDS = 15 * 60
    LOGIN_DELAY_WINDOW_SECONDS = 24 * 60 * 60
    LOGIN_ACCOUNTS_PER_ADDRESS = 10
    LOGIN_ADDRESS_WINDOW_SECONDS = 60 * 60
    # A device where an account signed in gets a signed cookie, valid this long or until the
    # password changes.
    KNOWN_DEVICE_DAYS = 180
    # Self-registration: accounts created per address and hour, and "username taken" answers
    # per address and hour (so usernames cannot be probed in bulk).
    REGISTRATIONS_PER_ADDRESS = 3
    REGISTRATION_WINDOW_SECONDS = 60 * 60
    SIGNUP_USERNAME_TRIES_PER_ADDRESS = 10
    # Staff sessions end after this long without a request; the last-seen time in the session
    # cookie is rewritten at most once per SESSION_SEEN_REFRESH_SECONDS.
    STAFF_IDLE_TIMEOUT_SECONDS = 30 * 60
    SESSION_SEEN_REFRESH_SECONDS = 60
    # Benchmark aid: count SQL statements per request into an X-Query-Count header.
    QUERY_COUNT_HEADER = os.environ.get("QUERY_COUNT_HEADER", "0") == "1"


class ProductionConfig:
    """Overrides applied over Config when the production environment is selected."""

    PRODUCTION = True
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"


def production_selected() -> bool:
    """True when the environment asks for the production configuration."""
    return "production" in (os.environ.get("TONGXIN_ENV"), os.environ.get("FLASK_ENV"))


MIN_SECRET_LENGTH = 32


def public_url_problem(value: str) -> str | None:
    """Why PUBLIC_URL cannot be used, or None: it must be an http(s) URL with a host and
    nothing after its path."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return f"PUBLIC_URL {value!r} is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"PUBLIC_URL {value!r} must look like https://tongxin.example.org[/path]"
    if parts.query or parts.fragment or parts.username or parts.password:
        return f"PUBLIC_URL {value!r} must have no user, query or fragment"
    return None


def production_problems(config: dict, debug: bool) -> list[str]:
    """What stops a production start: a default or short SECRET_KEY, debug on, no PUBLIC_URL."""
    problems = []
    secret = config.get("SECRET_KEY") or ""
    if secret == DEFAULT_SECRET:
        problems.append("SECRET_KEY is the development default; set a random one")
    elif len(secret) < MIN_SECRET_LENGTH:
        problems.append(f"SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters")
    if debug:
        problems.append("debug is on (unset FLASK_DEBUG, drop --debug)")
    if not config.get("PUBLIC_URL"):
        problems.append("PUBLIC_URL is not set (the address people reach the portal at)")
    return problems


def trusted_hosts(public_url: str, extra: list[str]) -> list[str]:
    """The Host values production answers: PUBLIC_URL's host name and the extra ones."""
    return list(dict.fromkeys([urlsplit(public_url).hostname or "", *extra]))


class ConfigError(RuntimeError):
    """A setting cannot be used; the portal refuses to start."""


class ProductionConfigError(ConfigError):
    """The production configuration is unsafe; the portal refuses to start."""
