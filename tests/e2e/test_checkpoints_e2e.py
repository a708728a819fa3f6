"""An operations lead opens a failed scaling checkpoint in admin: the persona x KPI matrix shows
the failing cell in red, the journeys and functions are tabled, the KPI trend is drawn, and the
escalation ticket's link leads to the ticket; all served from this origin."""

import datetime as dt
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from checkpoints.models import KPIDefinition
from checkpoints.services import run_checkpoint
from opsplatform.models import Persona
from support.services.tickets import create_ticket
from tests.e2e.conftest import admin_sign_in
from tests.factories import PASSWORD, AccountFactory, staff_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_lead_opens_a_failed_checkpoint_and_follows_its_ticket(page, live_server):
    staff_in(is_superuser=True, username="lena", email="lena@opsplatform.local")
    KPIDefinition.objects.update(active=False)
    KPIDefinition.objects.create(
        key="agency-tickets",
        name="Tickets per agency account",
        scope_kind="persona",
        scope="agency",
        metric="tickets_per_account",
        comparator="<=",
        target=Decimal("0.5"),
        severity="critical",
    )
    account = AccountFactory(persona=Persona.objects.get(slug="agency"))
    tomorrow = timezone.now() + dt.timedelta(days=1)
    run_checkpoint("October", 30, as_of=tomorrow)
    create_ticket(subject="Reports broken", description="Help", channel="web", account=account)
    failed = run_checkpoint("November", 30, as_of=tomorrow)
    assert failed.status == "failed"
    reference = failed.escalations[0]["ticket"]
    origins = set()
    page.on("request", lambda request: origins.add(urlparse(request.url).netloc))

    admin_sign_in(page, "lena", PASSWORD)
    page.goto(f"/admin/checkpoints/checkpoint/{failed.id}/change/")
    matrix = page.locator("#persona-matrix")
    assert matrix.get_by_role("columnheader", name="agency-tickets").is_visible()
    cell = matrix.locator("td[data-status=failed]")
    assert cell.count() == 1
    assert "1.0000" in cell.inner_text()
    # Tailwind's red-100, from Unfold's bundled stylesheet: the failing cell is coloured.
    assert cell.evaluate("e => getComputedStyle(e).backgroundColor") == "oklch(0.936 0.032 17.717)"
    assert page.locator("#journey-table").get_by_text("Export requested → ready").is_visible()
    assert page.locator("#kpi-trends svg").count() == 1
    assert page.get_by_text("No: 1 KPI reading missed its target").first.is_visible()

    page.locator("#escalations").get_by_role("link", name=reference).click()
    page.wait_for_load_state()
    assert f"/admin/support/ticket/{failed.escalations[0]['ticket_id']}/change/" in page.url
    html = page.content()
    assert reference in html
    assert "KPI agency-tickets misses its target at checkpoint November" in html
    assert origins == {urlparse(live_server.url).netloc}
