"""On a 1440x900 laptop an agent works a ticket from the queue to resolution using only
the page's buttons: the queue opens on open work with every key column in view, the ticket
page assigns, inserts a macro into the reply box, sends the signed reply and resolves. A
screenshot of the ticket page is kept in test-artifacts/ (TEST_ARTIFACTS_DIR)."""

import os
from pathlib import Path

import pytest

from support.models import Macro, Ticket, TicketMessage
from tests.e2e.conftest import admin_sign_in
from tests.factories import PASSWORD, AccountFactory
from tests.support.factories import make_agent, make_ticket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", "test-artifacts"))


def fits_without_scrolling(page) -> bool:
    """The queue's table is not wider than the space it has."""
    return page.evaluate(
        """() => {
            const table = document.querySelector('#result_list');
            const box = table.parentElement;
            return table.scrollWidth <= box.clientWidth + 1
                && document.documentElement.scrollWidth <= window.innerWidth;
        }"""
    )


def test_agent_works_a_ticket_from_the_queue_to_resolution_at_1440(page):
    account = AccountFactory(name="Backyard Science Podcast Network")
    ticket = make_ticket(
        account=account,
        subject="Sponsor read-through numbers missing from the March campaign report",
        description="The report shows zero impressions since Monday.",
    )
    solved = make_ticket(account=account, subject="An old solved question")
    from support import services

    services.update_ticket_status(ticket=solved, status=Ticket.Status.RESOLVED)
    Macro.objects.create(
        name="Fixed, please check",
        body="Hi {{ requester_name }}, we fixed {{ reference }}. Please check again.",
        status="",
    )
    agent = make_agent(1, username="alice", first_name="Alice", last_name="Agent")

    page.set_viewport_size({"width": 1440, "height": 900})
    admin_sign_in(page, agent.username, PASSWORD)
    page.wait_for_url("**/admin/")

    # The queue opens on open work: the solved ticket is not there; every column fits.
    page.goto("/admin/support/ticket/")
    assert page.locator("#result_list").get_by_text(ticket.subject).is_visible()
    assert page.locator("#result_list").get_by_text("An old solved question").count() == 0
    for column in ["Level", "Assignee", "SLA due"]:
        header = page.locator("#result_list thead th", has_text=column).first
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1440, column
    assert fits_without_scrolling(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workspace-queue-1440x900.png"))
    page.set_viewport_size({"width": 1366, "height": 768})
    assert fits_without_scrolling(page)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.get_by_role("link", name="Waiting on customer").click()
    page.wait_for_url("**view=waiting")
    page.get_by_role("link", name="Open work").click()

    # Open the ticket from the queue.
    page.locator("#result_list").get_by_role("link", name=ticket.subject).click()
    page.wait_for_url(f"**/admin/support/ticket/{ticket.pk}/change/**")
    assert (
        page.locator(".support-side").get_by_text("Backyard Science Podcast Network").is_visible()
    )

    # Assign to me with the page's button.
    page.get_by_role("link", name="Assign to me").click()
    page.locator("button[name=_confirm]").click()
    page.wait_for_selector("text=Assigned to you.")

    # A macro fills the reply box (its placeholders filled in), then the reply is sent.
    page.get_by_label("Macro").select_option(label="Fixed, please check")
    reply = page.get_by_label("Public reply")
    assert reply.input_value() == (
        f"Hi Backyard Science Podcast Network, we fixed {ticket.reference}. Please check again."
    )
    page.locator("[name=_save]").click()
    page.wait_for_selector("text=updated.")
    assert page.locator(".support-signature", has_text="— Alice Agent").is_visible()

    # Resolve with the page's button.
    page.get_by_role("link", name="Resolve").click()
    page.locator("button[name=_confirm]").click()
    page.wait_for_selector("text=Resolved.")

    page.screenshot(path=str(ARTIFACTS / "workspace-ticket-1440x900.png"))

    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    assert ticket.assignee == agent
    sent = ticket.messages.get(author_kind=TicketMessage.Author.AGENT)
    assert sent.signature == "Alice Agent"
    assert sent.body.startswith("Hi Backyard Science Podcast Network, we fixed")
