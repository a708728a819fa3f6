import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from checkpoints.models import KPIDefinition
from opsplatform.models import Account, Persona
from support.services.tickets import create_ticket
from tests.factories import AccountFactory


@pytest.fixture(autouse=True)
def _only_test_kpis(db):
    """The default KPIs read every app; each test defines the ones it checks."""
    KPIDefinition.objects.update(active=False)


def tomorrow() -> dt.datetime:
    """A checkpoint run 'tomorrow' has today in its window (windows are whole UTC days)."""
    return timezone.now() + dt.timedelta(days=1)


def kpi(key="tickets-solo", **fields) -> KPIDefinition:
    values = {
        "name": "Tickets per account (solo)",
        "scope_kind": "persona",
        "scope": "solo_podcaster",
        "metric": "tickets_per_account",
        "comparator": "<=",
        "target": Decimal("0.5"),
        "warning_band": Decimal("0"),
        "severity": "high",
        "reliability": False,
        **fields,
    }
    return KPIDefinition.objects.create(key=key, **values)


def solo_accounts(n: int) -> list[Account]:
    persona = Persona.objects.get(slug="solo_podcaster")
    return [AccountFactory(persona=persona) for _ in range(n)]


def open_ticket(account: Account, subject="Help"):
    return create_ticket(
        subject=subject, description="Please help.", channel="web", account=account
    )
