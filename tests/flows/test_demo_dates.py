"""Demo data as a customer sees it on a fresh `make run`: nothing dated in the future (the seed
may run on the morning of its `as_of` day), chat-titled tickets only on the chat channel, and
free plans never in a trial."""

import datetime as dt

import pytest
from django.db.models import Max
from django.utils import timezone

from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from opsplatform.models import UsageEvent
from support import demo as support_demo
from support.models import Channel, CSATRating, Escalation, Ticket, TicketMessage
from userflows import demo as userflows_demo
from userflows.models import Subscription

pytestmark = pytest.mark.django_db

MORNING = dt.datetime(2026, 11, 30, 7, 15, tzinfo=dt.UTC)


@pytest.fixture
def seeded_in_the_morning(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: MORNING)
    ctx = DemoContext(seed=11, accounts_wanted=40, as_of=MORNING.date(), write=lambda *a: None)
    seed_core(ctx)
    userflows_demo.seed_demo(ctx)
    support_demo.seed_demo(ctx)
    return ctx


def latest(model, field):
    return model.objects.aggregate(latest=Max(field))["latest"]


def test_nothing_is_dated_after_the_moment_of_seeding(seeded_in_the_morning):
    assert seeded_in_the_morning.now == MORNING
    for model, field in [
        (Ticket, "created_at"),
        (Ticket, "updated_at"),
        (Ticket, "first_response_at"),
        (Ticket, "resolved_at"),
        (Ticket, "closed_at"),
        (TicketMessage, "created_at"),
        (Escalation, "created_at"),
        (CSATRating, "created_at"),
        (UsageEvent, "occurred_at"),
        (UsageEvent, "received_at"),
    ]:
        found = latest(model, field)
        assert found is not None and found <= MORNING, (model.__name__, field, found)
    # Today's rows exist: the cap did not simply drop them.
    assert Ticket.objects.filter(created_at__date=MORNING.date()).exists()


def test_escalations_follow_their_ticket(seeded_in_the_morning):
    for created, escalated in Escalation.objects.values_list("ticket__created_at", "created_at"):
        assert created <= escalated <= MORNING


def test_chat_titled_tickets_are_on_the_chat_channel(seeded_in_the_morning):
    chat_titled = Ticket.objects.filter(subject__startswith="Chat:")
    assert chat_titled.exists()
    assert set(chat_titled.values_list("channel", flat=True)) == {Channel.CHAT}


def test_free_plans_are_never_trialing(seeded_in_the_morning):
    assert Subscription.objects.filter(plan__price_cents__gt=0).exists()
    assert not Subscription.objects.filter(
        plan__price_cents=0, status=Subscription.Status.TRIALING
    ).exists()
