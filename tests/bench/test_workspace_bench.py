"""The agents' workspace with 100k tickets on PostgreSQL: the queue's saved views (sorted by
SLA, breached first), the ticket page with a 60-message thread and the requester panel, and
the account's customer 360 page (time per request, queries)."""

import pytest
from django.test import Client
from django.urls import reverse

from opsplatform import services as core_services
from support.models import Ticket, TicketMessage
from support.services import add_message
from tests.bench.conftest import report
from tests.bench.test_support_bench import ACCOUNTS, TICKETS, insert_tickets, timed
from tests.factories import AccountFactory, staff_in
from tests.support.factories import make_agent
from userflows.services.billing import start_subscription


@pytest.fixture
def loaded(postgres_only):
    accounts = [AccountFactory().id for _ in range(ACCOUNTS)]
    agent = make_agent(1, is_superuser=False)
    insert_tickets(TICKETS, accounts, agent.id)
    assert Ticket.objects.count() == TICKETS
    return agent, accounts


def test_workspace_pages_with_100k_tickets(loaded):
    agent, accounts = loaded
    client = Client()
    client.force_login(agent)
    queue = reverse("admin:support_ticket_changelist")

    def view(name):
        def get():
            response = client.get(queue, {"view": name})
            assert response.status_code == 200
            assert len(response.context["cl"].result_list) <= 50

        return get

    ticket = Ticket.objects.filter(account_id=accounts[0]).order_by("id").first()
    for n in range(60):
        add_message(
            ticket=ticket,
            body=f"message {n}",
            author=agent,
            author_kind=TicketMessage.Author.AGENT,
            internal=bool(n % 3 == 0),
        )

    def ticket_page():
        assert (
            client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).status_code == 200
        )

    account = ticket.account
    start_subscription(account=account, actor=None)
    core_services.issue_api_token(user=account.user, label="bench")
    ops = Client()
    ops.force_login(staff_in("operations"))

    def account_page():
        url = reverse("admin:opsplatform_account_change", args=[account.pk])
        assert ops.get(url).status_code == 200

    figures = {}
    for name in ["open", "mine", "unassigned", "breached", "waiting", "solved", "all"]:
        timing, queries = timed(view(name))
        figures[f"queue ?view={name}"] = f"{timing}, {queries} queries"
    timing, queries = timed(ticket_page)
    figures["ticket page (60 messages)"] = f"{timing}, {queries} queries"
    timing, queries = timed(account_page)
    figures["account 360 page"] = f"{timing}, {queries} queries"
    report(f"agent workspace with {TICKETS:,} tickets (PostgreSQL)", **figures)
