#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsplatform.settings")
    # A checkout with no configuration at all is a developer's: run in development mode.
    # Production always sets SECRET_KEY (and the web server, wsgi.py, refuses to start without
    # it), so this never applies there.
    if not os.environ.get("SECRET_KEY") and not os.environ.get("DEBUG"):
        os.environ["DEBUG"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
