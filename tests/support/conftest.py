import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from tests.conftest import ApiClient
from tests.factories import token_for
from tests.support.factories import make_agent


class Clock:
    """A controllable `timezone.now()` for SLA tests."""

    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kwargs) -> dt.datetime:
        self.now += dt.timedelta(**kwargs)
        return self.now


@pytest.fixture(autouse=True)
def trusted_mta(settings):
    """Inbound email is authenticated by this border MTA (its Authentication-Results)."""
    settings.INBOUND_AUTHSERV_ID = "mx.opsplatform.test"
    return settings.INBOUND_AUTHSERV_ID


@pytest.fixture
def clock(monkeypatch):
    c = Clock(dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC))
    monkeypatch.setattr(timezone, "now", c)
    return c


@pytest.fixture
def agent(db):
    return make_agent(1, email="agent.one@opsplatform.local")


@pytest.fixture
def agent_api(agent):
    return ApiClient(token_for(agent))


class _Hook(BaseHTTPRequestHandler):
    received: list

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.received.append(
            {
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(self.rfile.read(length) or b"null"),
            }
        )
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        return


@pytest.fixture
def webhook(settings):
    """A local HTTP server standing in for Slack: SUPPORT_WEBHOOK_URL points at it."""
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SUPPORT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    yield server.received
    server.shutdown()
    server.server_close()
