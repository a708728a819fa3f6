"""Test settings: the suite runs on SQLite by default and on PostgreSQL with DATABASE_URL."""

import os
import tempfile
from pathlib import Path

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
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
Q_CLUSTER.pop("redis", None)
Q_CLUSTER["orm"] = "default"
API_RATE_LIMIT = "100000/m"
STATIC_ROOT = Path(tempfile.mkdtemp(prefix="opsplatform-static-"))  # whitenoise wants it to exist
