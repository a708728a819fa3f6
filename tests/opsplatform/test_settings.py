"""Configuration guards: production refuses to start without a secret key; a bare checkout's
manage.py runs in development mode."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DATABASE_URL"}
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_web_server_refuses_to_start_without_a_secret_key():
    result = run(["-c", "import opsplatform.wsgi"], DEBUG="0")

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_manage_py_in_a_bare_checkout_runs_in_development_mode():
    result = run(
        ["manage.py", "shell", "-c", "from django.conf import settings; print(settings.DEBUG)"]
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_manage_py_with_debug_off_still_needs_a_secret_key():
    result = run(["manage.py", "check"], DEBUG="0")

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
