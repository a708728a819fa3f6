import datetime as dt

import pytest
from django.utils import timezone

from deployments import gates
from opsplatform.models import Persona, UsageEvent
from tests.factories import AccountFactory


class Clock:
    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kwargs) -> dt.datetime:
        self.now += dt.timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC))
    monkeypatch.setattr(timezone, "now", c)
    return c


@pytest.fixture(autouse=True)
def _no_health_source():
    gates.set_health_source(None)
    yield
    gates.set_health_source(None)


def make_accounts(n: int, persona: str = "solo_podcaster"):
    p = Persona.objects.get(slug=persona)
    return [AccountFactory(persona=p) for _ in range(n)]


def add_events(accounts, *, per_account: int, errors: int, at: dt.datetime, tag: str = "e"):
    """`per_account` usage events per account, the first `errors` of them of type error."""
    rows = [
        UsageEvent(
            account=a,
            type="error" if i < errors else "report.exported",
            occurred_at=at,
            idempotency_key=f"{tag}-{a.id}-{i}",
        )
        for a in accounts
        for i in range(per_account)
    ]
    UsageEvent.objects.bulk_create(rows)
