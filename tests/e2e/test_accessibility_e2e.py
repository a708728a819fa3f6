"""Accessibility: axe-core (bundled by axe-playwright-python, no download) finds no serious or
critical WCAG 2 A/AA violation on any customer page."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD, AccountFactory, CampaignFactory
from tests.support.factories import make_ticket
from tests.userflows.factories import InvoiceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def serious(page) -> list[str]:
    results = Axe().run(page, options=WCAG)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_customer_pages_have_no_serious_accessibility_violations(page):
    account = AccountFactory(name="Backyard Science")
    CampaignFactory(account=account)
    ticket = make_ticket(account=account, subject="Downloads dropped")
    invoice = InvoiceFactory(account=account)

    page.goto("/login/")
    found = {"/login/": serious(page)}
    sign_in(page, account.user.username, PASSWORD)
    page.wait_for_url("**/account/")
    for path in [
        "/account/",
        "/account/support/",
        "/account/support/new/",
        f"/account/support/{ticket.reference}/",
        "/account/exports/",
        "/account/billing/",
        f"/account/billing/invoices/{invoice.id}/",
        "/account/delete/",
        "/account/tokens/",
    ]:
        page.goto(path)
        found[path] = serious(page)

    assert {path: v for path, v in found.items() if v} == {}
