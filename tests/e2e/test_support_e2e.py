"""An agent works a ticket in admin (reply, internal note, escalation); the customer sees the
reply, and never the note, on their ticket page."""

import pytest

from support.models import Escalation, Ticket
from tests.e2e.conftest import admin_sign_in, sign_in
from tests.factories import PASSWORD, AccountFactory
from tests.support.factories import make_agent, make_ticket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_agent_replies_and_escalates_and_customer_sees_the_reply(page):
    account = AccountFactory(name="Backyard Science")
    ticket = make_ticket(
        account=account, subject="Sponsor link broken", description="The promo link gives a 404."
    )
    agent = make_agent(1, username="alice")
    make_agent(3, username="erin", email="erin@opsplatform.local")

    admin_sign_in(page, agent.username, PASSWORD)
    page.wait_for_url("**/admin/")
    page.goto(f"/admin/support/ticket/{ticket.pk}/change/")
    assert page.get_by_text("The promo link gives a 404.").is_visible()
    page.get_by_label("Public reply").fill("We fixed the link; please try again.")
    page.get_by_label("Internal note").fill("SECRET-NOTE: CDN cache purge")
    page.locator("[name=_save]").click()
    page.wait_for_selector("text=updated.")
    assert page.get_by_text("SECRET-NOTE: CDN cache purge").is_visible()

    page.goto("/admin/support/ticket/")
    page.locator(f"input[name=_selected_action][value='{ticket.pk}']").check()
    page.select_option("select[name=action]", "escalate")
    page.locator("button[name=index]").click()
    page.get_by_label("Escalate to level").select_option("3")
    page.get_by_label("Reason").fill("Needs engineering")
    page.locator("button[name=_escalate]").click()
    page.wait_for_selector("text=Escalated to L3: 1 ticket(s).")

    ticket.refresh_from_db()
    assert ticket.escalation_level == 3
    assert ticket.first_response_at is not None
    assert Escalation.objects.get(ticket=ticket).escalated_by == agent

    page.context.clear_cookies()
    sign_in(page, account.user.username, PASSWORD)
    page.wait_for_url("**/account/")
    page.get_by_role("link", name="Support").click()
    page.get_by_role("link", name=ticket.reference).click()
    assert page.get_by_role("heading", name=f"{ticket.reference}: Sponsor link broken").is_visible()
    assert page.get_by_text("We fixed the link; please try again.").is_visible()
    assert "SECRET-NOTE" not in page.content()

    page.get_by_label("Your reply").fill("Works now, thanks!")
    page.get_by_role("button", name="Send reply").click()
    page.wait_for_selector("text=Reply sent.")
    assert Ticket.objects.get(pk=ticket.pk).messages.last().body == "Works now, thanks!"
