"""Support test data, made through the services so SLA due times are what production sets."""

import datetime as dt

from support import services
from support.models import Channel, Priority, Ticket, TicketMessage
from tests.factories import AccountFactory, staff_in


def make_ticket(
    *,
    account=None,
    subject="Campaign not tracking",
    description="It broke.",
    channel=Channel.WEB,
    priority=Priority.NORMAL,
    tags=(),
    requester_email="",
    **kwargs,
) -> Ticket:
    if account is None and not requester_email:
        account = AccountFactory()
    return services.create_ticket(
        subject=subject,
        description=description,
        channel=channel,
        priority=priority,
        tags=tags,
        account=account,
        requester_email=requester_email,
        actor=account.user if account else None,
        **kwargs,
    )


def make_agent(level: int = 1, **kwargs):
    return staff_in(f"support_l{level}", **kwargs)


def reply(ticket, agent, body="We are on it.", internal=False) -> TicketMessage:
    return services.add_message(
        ticket=ticket,
        body=body,
        author=agent,
        author_kind=TicketMessage.Author.AGENT,
        internal=internal,
    )


def age_ticket(ticket: Ticket, delta: dt.timedelta) -> Ticket:
    """Move a ticket's clock `delta` into the past (no history: test setup, not a change)."""
    fields = ["created_at", "first_response_due_at", "resolution_due_at", "updated_at"]
    for name in fields:
        setattr(ticket, name, getattr(ticket, name) - delta)
    Ticket.objects.filter(pk=ticket.pk).update(**{f: getattr(ticket, f) for f in fields})
    return ticket
