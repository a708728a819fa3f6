"""Settings for opsplatform, read from the environment (see the README's configuration table)."""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in production, or DEBUG=1 for local work."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "unfold",  # the admin's look (ADR 0003): before django.contrib.admin
    "unfold.contrib.filters",
    "unfold.contrib.simple_history",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",  # Swagger UI from the package's static files, not a CDN
    "csp",
    "simple_history",
    "django_q",
    "axes",
    "opsplatform",
    "support",
    "userflows",
    "deployments",
    "studies",
    "compliance",
    "scoring",
    "checkpoints",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "opsplatform.telemetry.PrometheusMiddleware",
    "opsplatform.middleware.ApiErrorEnvelopeMiddleware",
    "opsplatform.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "opsplatform.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "opsplatform.middleware.NoStoreForPersonalPagesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
    "opsplatform.middleware.DomainErrorMiddleware",
]

ROOT_URLCONF = "opsplatform.urls"
WSGI_APPLICATION = "opsplatform.wsgi.application"

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
                "opsplatform.context_processors.account",
            ],
        },
    },
]

# Database: SQLite (WAL, IMMEDIATE transactions) by default, PostgreSQL through DATABASE_URL.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# Reused connections are checked with a `SELECT 1` before a request or job uses them only in
# job workers: on the web that round trip cost 7% of the API's throughput
# (docs/performance.md), and a connection a database restart broke answers one 503 there
# and is replaced; a job that failed on one would wait Q_CLUSTER["retry"] for its next try.
# CONN_HEALTH_CHECKS=1/0 decides for every process.
RUNS_JOBS = sys.argv[1:2] == ["qcluster"]
CONN_HEALTH_CHECKS = env_bool("CONN_HEALTH_CHECKS", default=RUNS_JOBS)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("CONN_MAX_AGE", 60),
            conn_health_checks=CONN_HEALTH_CHECKS,
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["OPTIONS"] = dict(SQLITE_OPTIONS)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": dict(SQLITE_OPTIONS),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": CONN_HEALTH_CHECKS,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "opsplatform.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "opsplatform_cache",
        }
    }

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The client's address: X-Forwarded-For is trusted through this many proxies (load balancers
# that append the address they saw), and ignored at 0. Every lockout and throttle keys on it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")

# Login throttling: lock a username+client-address pair after repeated failures.
AXES_CLIENT_IP_CALLABLE = "opsplatform.clientip.client_ip"
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {
        "BACKEND": os.environ.get("FILE_STORAGE", "django.core.files.storage.FileSystemStorage")
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Email: console in development, SMTP when EMAIL_HOST is set.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = os.environ.get(
        "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
    )
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "opsplatform <support@opsplatform.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# django-q2: ORM broker by default, Redis when REDIS_URL is set. Tasks can run twice
# (retry after a timeout), so every task is idempotent; attempts are bounded.
Q_CLUSTER = {
    "name": "opsplatform",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 600),
    "retry": env_int("Q_TIMEOUT", 600) + 120,
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "label": "Background jobs",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# API
NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 200
API_RATE_LIMIT = os.environ.get("API_RATE_LIMIT", "1200/m")
# Failed credentials (bad bearer tokens, wrong inbound-email secrets) per client address:
# past the limit within the window, every credential from that address answers 429.
CREDENTIAL_FAILURE_LIMIT = env_int("CREDENTIAL_FAILURE_LIMIT", 20)
CREDENTIAL_FAILURE_WINDOW = env_int("CREDENTIAL_FAILURE_WINDOW_SECONDS", 600)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Security: secure by default whenever DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy on every response: this origin only, no third-party origins. The
# admin (Unfold's Alpine.js evaluates its attributes) and the API docs widen script/style
# for their paths only; see opsplatform.middleware.ContentSecurityPolicyMiddleware.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
SESSION_ENGINE = "opsplatform.sessions"  # database sessions indexed by user
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Admin on django-unfold (ADR 0003); its fonts, icons and Chart.js are served locally.
UNFOLD = {
    "SITE_TITLE": "opsplatform admin",
    "SITE_HEADER": "opsplatform",
    "SITE_SUBHEADER": "Operations back office",
    "SITE_SYMBOL": "podcasts",
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": "opsplatform.admin_base.favicon_url"}
    ],
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "COLORS": {
        "primary": {
            "50": "239 246 255",
            "100": "219 234 254",
            "200": "191 219 254",
            "300": "147 197 253",
            "400": "96 165 250",
            "500": "59 130 246",
            "600": "37 99 235",
            "700": "29 78 216",
            "800": "30 64 175",
            "900": "30 58 138",
            "950": "23 37 84",
        },
    },
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "opsplatform.admin_base.sidebar_navigation",
    },
}

# Support (issue: support app)
SUPPORT_WEBHOOK_URL = os.environ.get("SUPPORT_WEBHOOK_URL", "")
# Ticket attachments (web form, API, inbound email): size per file, files per message, and
# the lifetime of a signed download link. Allowed types: support/attachments.DEFAULT_TYPES.
SUPPORT_ATTACHMENT_MAX_BYTES = env_int("SUPPORT_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
SUPPORT_ATTACHMENT_MAX_COUNT = env_int("SUPPORT_ATTACHMENT_MAX_COUNT", 10)
SUPPORT_ATTACHMENT_LINK_MINUTES = env_int("SUPPORT_ATTACHMENT_LINK_MINUTES", 15)
# Rollouts: a failing gate's rollback is posted here too (Slack-compatible); empty = email only.
DEPLOYMENTS_WEBHOOK_URL = os.environ.get("DEPLOYMENTS_WEBHOOK_URL", "")
# Scaling checkpoints: a failed checkpoint is posted here (Slack-compatible; empty: the
# deployments webhook), and paged to PagerDuty (Events API v2) when a routing key is set.
CHECKPOINTS_WEBHOOK_URL = os.environ.get("CHECKPOINTS_WEBHOOK_URL", "")
PAGERDUTY_ROUTING_KEY = os.environ.get("PAGERDUTY_ROUTING_KEY", "")
# The requester of the checkpoints' escalation tickets (gets their resolution notices).
CHECKPOINTS_REQUESTER_EMAIL = os.environ.get("CHECKPOINTS_REQUESTER_EMAIL", "")
SUPPORT_INBOUND_EMAIL_SECRET = os.environ.get("SUPPORT_INBOUND_EMAIL_SECRET", "")
SUPPORT_FROM_EMAIL = os.environ.get("SUPPORT_FROM_EMAIL", DEFAULT_FROM_EMAIL)
# Inbound email: the authserv-id of our border MTA's Authentication-Results header (empty:
# every inbound message is held as unverified), and the MIME structure a message may have.
INBOUND_AUTHSERV_ID = os.environ.get("INBOUND_AUTHSERV_ID", "").strip().lower()
INBOUND_MAX_PARTS = env_int("INBOUND_MAX_PARTS", 500)
INBOUND_MAX_DEPTH = env_int("INBOUND_MAX_DEPTH", 20)
# Links in emails: SITE_URL when set, else the address `make run` serves on (PORT=9100 make run
# → http://127.0.0.1:9100).
SITE_URL = (
    os.environ.get("SITE_URL") or f"http://127.0.0.1:{os.environ.get('PORT') or '8000'}"
).rstrip("/")

# Password reset: requests per client address and mails per address, per window (seconds).
PASSWORD_RESET_LIMIT_PER_ADDRESS = env_int("PASSWORD_RESET_LIMIT_PER_ADDRESS", 10)
PASSWORD_RESET_LIMIT_PER_EMAIL = env_int("PASSWORD_RESET_LIMIT_PER_EMAIL", 3)
PASSWORD_RESET_WINDOW = env_int("PASSWORD_RESET_WINDOW", 3600)

# Self-serve flows: exports, billing, deletion
EXPORT_DAILY_LIMIT = env_int("EXPORT_DAILY_LIMIT", 20)
EXPORT_RETENTION_DAYS = env_int("EXPORT_RETENTION_DAYS", 7)
EXPORT_LINK_MINUTES = env_int("EXPORT_LINK_MINUTES", 15)
EXPORT_MAX_SPAN_DAYS = env_int("EXPORT_MAX_SPAN_DAYS", 3 * 366)
BILLING_PROVIDER = os.environ.get("BILLING_PROVIDER", "local")
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
# 29 days + the 15-minute sweep: executed within 30 days of the request (GDPR Art. 12).
DELETION_GRACE_DAYS = env_int("DELETION_GRACE_DAYS", 29)
COMPLIANCE_MAX_SUPERUSERS = env_int("COMPLIANCE_MAX_SUPERUSERS", 3)
DELETION_REMINDER_DAYS = env_int("DELETION_REMINDER_DAYS", 3)
