"""Settings classes, chosen by LTI_TOOL_ENV and read from the environment once.

`load(env)` returns a plain dict so that create_app never reads os.environ itself
and tests can hand in any configuration they like.
"""
import ipaddress
import os
import tempfile
from pathlib import Path

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


class ConfigError(RuntimeError):
    """The environment does not describe a safe configuration."""


def normalise_database_url(url: str) -> str:
    # Heroku-style URLs and plain postgresql:// would pick psycopg2; we ship psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Config:
    NAME = "base"
    TOOL_TITLE = "Pharmacy Tech Pathways"
    SECRET_KEY = None
    SQLALCHEMY_DATABASE_URI = None
    # Idle pooled connections are pinged before use (extensions.py); busy ones are not.
    SQLALCHEMY_ENGINE_OPTIONS = {}
    DEV_LMS_ENABLED = False
    # Every outbound call to a platform (lti/http.py: registration, JWKS, token, AGS, NRPS): connect/read timeout
    # in seconds (the whole answer must arrive within twice this), and the largest answer read.
    LTI_HTTP_TIMEOUT = 5.0
    LTI_HTTP_MAX_BYTES = 5 * 1024 * 1024
    # Addresses (IPs or CIDR networks) outside the public internet that platforms may still make the tool call:
    # loopback, private, link-local and metadata addresses are refused unless listed here.
    LTI_OUTBOUND_ALLOW: tuple = ()
    # Clock skew allowed on exp/iat between the LMS and us.
    LTI_JWT_LEEWAY = 60
    # How long a login's state/nonce waits for the launch.
    LTI_STATE_TTL = 600
    # OIDC logins one client (address) may start per LTI_LOGIN_WINDOW seconds, in each server process.
    LTI_LOGIN_LIMIT = 120
    LTI_LOGIN_WINDOW = 60
    # Validated launch data kept for later Advantage calls.
    LTI_LAUNCH_DATA_TTL = 86400
    # Platform JWKS cache lifetime.
    LTI_JWKS_CACHE_SECONDS = 3600
    # Each process caches registrations; changes made through the tool reach every process at their next login or
    # launch (lti/tool_conf.py). This bounds how long a change made behind the tool's back (raw SQL) goes unseen.
    LTI_REGISTRY_CACHE_SECONDS = 300
    # A login reads the registry stamp unless a statement showed this process's copy current within this many
    # seconds (every launch does): a registration changed elsewhere reaches logins within it, launches at once.
    LTI_LOGIN_STAMP_SECONDS = 2.0
    # A returning launch that changes nothing about the person, course or membership writes nothing, unless their
    # last launch time is older than this (so "last opened the tool" is right to within this many seconds).
    LTI_LAUNCH_TOUCH_SECONDS = 300
    # A rotated signing key is published at once but signs only after this delay, so platforms that cache the
    # tool's JWKS have fetched it first. To replace a compromised key at once: rotate-key, then retire-key OLD.
    LTI_KEY_ACTIVATION_DELAY = 24 * 3600
    # Days a registration link (`flask lti registration-link`) stays valid when the operator does not say.
    LTI_REGISTRATION_LINK_DAYS = 7
    # The tool's own session token (carried in links and forms, not a third-party cookie).
    SESSION_TOKEN_MAX_AGE = 8 * 3600
    # ... and at most this long after the launch, however active the person is: then they launch again.
    SESSION_ABSOLUTE_MAX_AGE = 24 * 3600
    # Trust X-Forwarded-For/Proto/Host/Port from this many proxies in front of the tool. 0 (the default) trusts
    # none: a client could otherwise choose the host the tool names in its configuration and credential ids.
    PROXY_FIX_HOPS = 0
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    # The tool's public address, for CLI output (show-config) where there is no request.
    TOOL_BASE_URL = "http://127.0.0.1:5000"
    # Evidence attachments: where local-disk storage keeps the files, and the largest file accepted.
    ATTACHMENT_DIR = str(INSTANCE_DIR / "attachments")
    ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
    # Background work (Huey): redis://host:port/db in production (any number of workers on any machines),
    # sqlite:///file for a single machine with no broker, memory:// to run each task as it is queued.
    TASK_QUEUE_URL = "redis://127.0.0.1:6379/0"
    # The queue's name: Huey's key prefix on Redis, so several installations (or test runs) share one Redis.
    TASK_QUEUE_NAME = "pathways"
    # Where ZIP exports are written (default: next to ATTACHMENT_DIR); web and worker hosts must share it.
    EXPORT_DIR = None
    # A running ZIP export or prior-records import not heard from for this long died with its worker; the sweep
    # hands it to another one.
    EXPORT_STALE_SECONDS = 300
    # E-mail. MAIL_BACKEND: smtp (production), console (development: print) or file (append to MAIL_FILE).
    MAIL_BACKEND = "smtp"
    MAIL_HOST = "localhost"
    MAIL_PORT = 25
    # none, starttls or ssl
    MAIL_TLS = "starttls"
    MAIL_USERNAME = None
    MAIL_PASSWORD = None
    MAIL_SENDER = "pathways@localhost"
    MAIL_FILE = str(INSTANCE_DIR / "mail.log")
    MAIL_TIMEOUT = 10.0


class DevelopmentConfig(Config):
    NAME = "development"
    SECRET_KEY = "dev-only-not-secret"
    DEV_LMS_ENABLED = True
    # The development LMS runs inside the tool on this machine (reached as 127.0.0.1 or localhost).
    LTI_OUTBOUND_ALLOW = ("127.0.0.1", "::1")
    TASK_QUEUE_URL = f"sqlite:///{INSTANCE_DIR / 'tasks.sqlite3'}"
    MAIL_BACKEND = "console"


class TestingConfig(Config):
    NAME = "testing"
    TESTING = True
    LTI_KEY_ACTIVATION_DELAY = 0
    # The suite launches hundreds of times from 127.0.0.1 in one process; the limit's own test lowers it.
    LTI_LOGIN_LIMIT = 100_000
    SECRET_KEY = "testing-only-not-secret"
    DEV_LMS_ENABLED = True
    # The test platforms listen on 127.0.0.1; other loopback addresses stay refused, as in production.
    LTI_OUTBOUND_ALLOW = ("127.0.0.1",)
    # A directory per test process under the system temp dir (created on first upload, not at import).
    ATTACHMENT_DIR = os.path.join(tempfile.gettempdir(), f"lti-tool-test-attachments-{os.getpid()}")
    TASK_QUEUE_URL = "memory://"
    MAIL_BACKEND = "file"
    MAIL_FILE = os.path.join(tempfile.gettempdir(), f"lti-tool-test-mail-{os.getpid()}.log")


class ProductionConfig(Config):
    NAME = "production"


CONFIGS = {c.NAME: c for c in (DevelopmentConfig, TestingConfig, ProductionConfig)}


def _as_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load(environ=None) -> dict:
    """Build the settings dict from an environment mapping (os.environ by default)."""
    environ = os.environ if environ is None else environ
    name = environ.get("LTI_TOOL_ENV", "development")
    if name not in CONFIGS:
        raise ConfigError(f"LTI_TOOL_ENV must be one of {', '.join(CONFIGS)}, not {name!r}")
    cls = CONFIGS[name]
    settings = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}

    if environ.get("SECRET_KEY"):
        settings["SECRET_KEY"] = environ["SECRET_KEY"]
    if environ.get("DATABASE_URL"):
        settings["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(environ["DATABASE_URL"])
    elif name != "production":
        settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{INSTANCE_DIR / (name + '.sqlite3')}"
    dev_lms = _as_bool(environ.get("DEV_LMS_ENABLED"))
    if dev_lms is not None:
        settings["DEV_LMS_ENABLED"] = dev_lms
    if environ.get("TOOL_BASE_URL"):
        settings["TOOL_BASE_URL"] = environ["TOOL_BASE_URL"].rstrip("/")
    if environ.get("LTI_OUTBOUND_ALLOW") is not None:
        settings["LTI_OUTBOUND_ALLOW"] = tuple(a.strip() for a in environ["LTI_OUTBOUND_ALLOW"].split(",")
                                               if a.strip())
    if environ.get("LTI_REGISTRATION_LINK_DAYS"):
        settings["LTI_REGISTRATION_LINK_DAYS"] = int(environ["LTI_REGISTRATION_LINK_DAYS"])
    if environ.get("PROXY_FIX_HOPS"):
        settings["PROXY_FIX_HOPS"] = int(environ["PROXY_FIX_HOPS"])
    if environ.get("ATTACHMENT_DIR"):
        settings["ATTACHMENT_DIR"] = environ["ATTACHMENT_DIR"]
    if environ.get("ATTACHMENT_MAX_BYTES"):
        settings["ATTACHMENT_MAX_BYTES"] = int(environ["ATTACHMENT_MAX_BYTES"])
    for key in ("EXPORT_DIR", "TASK_QUEUE_URL", "TASK_QUEUE_NAME", "MAIL_BACKEND", "MAIL_HOST", "MAIL_TLS",
                "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_SENDER", "MAIL_FILE"):
        if environ.get(key):
            settings[key] = environ[key]
    for key in ("MAIL_PORT", "EXPORT_STALE_SECONDS"):
        if environ.get(key):
            settings[key] = int(environ[key])
    for key in ("LTI_HTTP_TIMEOUT", "MAIL_TIMEOUT"):
        if environ.get(key):
            settings[key] = float(environ[key])
    if environ.get("LTI_HTTP_MAX_BYTES"):
        settings["LTI_HTTP_MAX_BYTES"] = int(environ["LTI_HTTP_MAX_BYTES"])
    return settings


def check(settings: dict) -> dict:
    """Refuse settings that are unsafe for their environment."""
    if settings.get("NAME") == "production":
        missing = [k for k in ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI") if not settings.get(k)]
        if missing:
            names = {"SQLALCHEMY_DATABASE_URI": "DATABASE_URL"}
            raise ConfigError(
                "Production needs " + " and ".join(names.get(k, k) for k in missing) + " in the environment."
            )
        if settings.get("DEV_LMS_ENABLED"):
            raise ConfigError("The development LMS cannot be switched on in production.")
    if not settings.get("SECRET_KEY"):
        raise ConfigError("SECRET_KEY is not set.")
    try:
        for item in settings.get("LTI_OUTBOUND_ALLOW") or ():
            ipaddress.ip_network(item, strict=False)
    except ValueError as exc:
        raise ConfigError(f"LTI_OUTBOUND_ALLOW: {exc}") from exc
    if not str(settings.get("TASK_QUEUE_URL", "")).startswith(("redis://", "rediss://", "sqlite:///", "memory://")):
        raise ConfigError("TASK_QUEUE_URL must be redis://..., sqlite:///FILE or memory://.")
    if settings.get("MAIL_BACKEND") not in ("smtp", "console", "file"):
        raise ConfigError("MAIL_BACKEND must be smtp, console or file.")
    if settings.get("MAIL_TLS") not in ("none", "starttls", "ssl"):
        raise ConfigError("MAIL_TLS must be none, starttls or ssl.")
    return settings
