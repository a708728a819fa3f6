"""Hand-built accounts for the account-health tests: every factor at a known value."""

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model

from opsplatform.models import Account, CampaignMetric, Persona, UsageEvent
from support import services as support_services
from support.models import Ticket
from tests.factories import AccountFactory, CampaignFactory
from tests.userflows.factories import DeletionRequestFactory, SubscriptionFactory


def event(account, type_, at, key):
    return UsageEvent.objects.create(
        account=account, type=type_, occurred_at=at, idempotency_key=key
    )


def every_factor_account(now: dt.datetime) -> Account:
    """An account whose factors are, as of `now` with a 30-day window:
    last login 14 days ago, 2 logins, 1 running campaign whose metrics stopped 5 days ago,
    ROAS 1.5 against 2.0 before (-25 %), 3 tickets opened of which 1 at L3 and 2 breached,
    billing past due, deletion requested, onboarding completed, usage 6 events against 12."""
    account = AccountFactory()
    today = now.date()
    event(account, "login", now - dt.timedelta(days=14), "l1")
    event(account, "login", now - dt.timedelta(days=20), "l2")
    for i in range(4):
        event(account, "report.exported", now - dt.timedelta(days=3, hours=i), f"c{i}")
    event(account, "error", now - dt.timedelta(days=2), "err")  # errors are not usage
    for i in range(12):
        event(account, "campaign.viewed", now - dt.timedelta(days=40, hours=i), f"p{i}")
    event(account, "onboarding_completed", now - dt.timedelta(days=100), "onb")
    campaign = CampaignFactory(
        account=account,
        starts_on=today - dt.timedelta(days=40),
        ends_on=today + dt.timedelta(days=20),
    )
    CampaignMetric.objects.create(
        campaign=campaign,
        date=today - dt.timedelta(days=5),
        revenue=Decimal("150.00"),
        spend=Decimal("100.00"),
    )
    CampaignMetric.objects.create(
        campaign=campaign,
        date=today - dt.timedelta(days=40),
        revenue=Decimal("200.00"),
        spend=Decimal("100.00"),
    )
    tickets = [
        support_services.create_ticket(
            subject=f"Problem {i}", description="Broken.", channel="web", account=account
        )
        for i in range(3)
    ]
    # Two opened ten days ago and never answered (breached), one a minute ago (not yet).
    for ticket, age in zip(tickets, (dt.timedelta(days=10), dt.timedelta(days=10)), strict=False):
        Ticket.objects.filter(pk=ticket.pk).update(
            created_at=now - age,
            first_response_due_at=now - age + dt.timedelta(hours=4),
            resolution_due_at=now - age + dt.timedelta(days=2),
        )
    Ticket.objects.filter(pk=tickets[2].pk).update(created_at=now - dt.timedelta(minutes=1))
    support_services.escalate_ticket(ticket=tickets[2], level=3, reason="Needs an engineer.")
    SubscriptionFactory(account=account, status="past_due")
    DeletionRequestFactory(account=account, requested_at=now - dt.timedelta(hours=1))
    return account


def bulk_accounts(n: int, *, tag: str, now: dt.datetime) -> list[int]:
    """n accounts with a login each, written in bulk (for query-count tests)."""
    User = get_user_model()
    persona = Persona.objects.get(slug="agency")
    users = User.objects.bulk_create(
        [User(username=f"{tag}{i}@example.test", email=f"{tag}{i}@example.test") for i in range(n)]
    )
    accounts = Account.objects.bulk_create(
        [
            Account(user=u, name=f"{tag} {i}", persona=persona, country="US")
            for i, u in enumerate(users)
        ]
    )
    UsageEvent.objects.bulk_create(
        [
            UsageEvent(
                account=a,
                type="login",
                occurred_at=now - dt.timedelta(days=i % 60),
                idempotency_key=f"{tag}-{a.id}",
            )
            for i, a in enumerate(accounts)
        ]
    )
    return [a.id for a in accounts]
