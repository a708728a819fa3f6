"""Demo data: tickets across channels, priorities, levels and states, some breached."""

import datetime as dt

import pytest
from django.db.models import Count

from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from support import demo
from support.models import CSATRating, Escalation, Ticket, TicketMessage

pytestmark = pytest.mark.django_db


def seed(accounts=40):
    ctx = DemoContext(
        seed=7, accounts_wanted=accounts, as_of=dt.date(2025, 6, 2), write=lambda *a: None
    )
    seed_core(ctx)
    demo.seed_demo(ctx)
    return ctx


def test_demo_covers_channels_priorities_levels_and_states():
    ctx = seed()

    tickets = Ticket.objects.all()
    assert ctx.counts["support_tickets"] == tickets.count() > 20
    assert set(tickets.values_list("channel", flat=True)) == {
        "email",
        "chat",
        "web",
        "in_app",
        "api",
    }
    assert set(tickets.values_list("priority", flat=True)) == {"low", "normal", "high", "urgent"}
    assert set(tickets.values_list("status", flat=True)) == set(Ticket.Status.values)
    assert {1, 2, 3}.issubset(set(tickets.values_list("escalation_level", flat=True)))
    assert tickets.filter(Ticket.breached_q(ctx.now)).exists()
    assert tickets.filter(account__isnull=True).exists()
    assert not tickets.filter(priority="urgent", escalation_level=1).exists()
    assert TicketMessage.objects.filter(internal=True).exists()
    assert Escalation.objects.exists() and CSATRating.objects.exists()
    no_thread = tickets.annotate(n=Count("messages")).filter(n=0)
    assert not no_thread.exists()


def test_every_demo_login_has_tickets():
    ctx = seed(accounts=10)
    for customer in ctx.customers.values():
        assert Ticket.objects.filter(account_id=customer.id).count() >= 4


def test_demo_is_deterministic():
    ctx = seed(accounts=12)
    count = Ticket.objects.count()
    Ticket.objects.update(chat_session_id="")  # chat session ids are unique per account
    demo.seed_demo(ctx)  # the same seed and date again: the same tickets once more

    fields = (
        "subject",
        "channel",
        "priority",
        "status",
        "escalation_level",
        "created_at",
        "account_id",
        "first_response_at",
        "resolved_at",
    )
    rows = list(Ticket.objects.order_by("id").values_list(*fields))
    assert len(rows) == 2 * count
    assert rows[:count] == rows[count:]
