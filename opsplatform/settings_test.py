"""Test settings: the suite runs on SQLite by default and on PostgreSQL with DATABASE_URL."""

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DEBUG", "1")

from opsplatform.settings import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:  # noqa: F405 - CI's Redis pass: the real Redis cache
    # One Redis database per test process (REDIS_URL's number + 1 + the xdist worker's), so a
    # test's cache.clear() (FLUSHDB) never empties another process's counters mid-test.
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    _url = urlsplit(REDIS_URL)  # noqa: F405
    _db = (int(_url.path.strip("/") or 0) + 1 + int(_worker or 0)) % 16
    CACHES = {
        "default": {
            "BACKEND": "opsplatform.cache.RedisCache",
            "LOCATION": urlunsplit(_url._replace(path=f"/{_db}")),
            "KEY_PREFIX": f"test-{os.getpid()}",
        }
    }
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
Q_CLUSTER.pop("redis", None)
Q_CLUSTER["orm"] = "default"
API_RATE_LIMIT = "100000/m"
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="opsplatform-static-"))  # whitenoise wants it to exist
