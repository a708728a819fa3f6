"""The requester hears from us without an agent: an acknowledgement with the reference when a
ticket opens, and a notice when it is resolved. Each is sent once, threaded, and marked as an
automatic message so auto-responders stay quiet."""

import pytest
from django.core import mail

from support import notifications, services
from support.models import Channel, Ticket
from tests.factories import AccountFactory
from tests.support.factories import make_ticket
from tests.support.test_inbound import raw_email

pytestmark = pytest.mark.django_db


def test_an_emailed_request_is_acknowledged_with_its_reference(django_capture_on_commit_callbacks):
    AccountFactory(user__email="jane@example.com")  # strangers get no acknowledgement
    with django_capture_on_commit_callbacks(execute=True):
        services.ingest_email(raw=raw_email(message_id="<first@mail.example.com>"))

    ticket = Ticket.objects.get()
    [ack] = mail.outbox
    assert ack.to == ["jane@example.com"]
    assert ack.subject == f"[{ticket.reference}] We received your request: Help with my campaign"
    assert ack.extra_headers["Auto-Submitted"] == "auto-replied"
    assert ack.extra_headers["In-Reply-To"] == "<first@mail.example.com>"
    assert ticket.first_response_at is None  # an automatic message is not a response


def test_the_acknowledgement_is_sent_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(channel=Channel.WEB)

    assert notifications.send_acknowledgement(ticket_id=ticket.pk) is False
    assert len(mail.outbox) == 1
    assert "/account/support/" in mail.outbox[0].body


def test_a_reply_to_the_acknowledgement_joins_the_ticket(django_capture_on_commit_callbacks):
    AccountFactory(user__email="jane@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        services.ingest_email(raw=raw_email(message_id="<first@mail.example.com>"))
    ticket = Ticket.objects.get()
    ack = mail.outbox[0]

    services.ingest_email(
        raw=raw_email(
            subject=f"Re: {ack.subject}", body="More detail", message_id="<second@mail.example.com>"
        )
    )

    assert Ticket.objects.count() == 1
    assert ticket.messages.filter(body__contains="More detail").exists()


def test_chat_tickets_get_no_acknowledgement(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        make_ticket(channel=Channel.CHAT)

    assert mail.outbox == []


def test_resolving_tells_the_requester_once_per_resolution(
    agent, django_capture_on_commit_callbacks
):
    ticket = make_ticket(channel=Channel.WEB, subject="Report is empty")
    with django_capture_on_commit_callbacks(execute=True):
        services.update_ticket_status(ticket=ticket, status="resolved", actor=agent)
    notices = [m for m in mail.outbox if "Resolved:" in m.subject]
    assert [m.subject for m in notices] == [f"[{ticket.reference}] Resolved: Report is empty"]
    assert "tell us how we did" in notices[0].body

    assert notifications.send_resolution_notice(ticket_id=ticket.pk) is False
    with django_capture_on_commit_callbacks(execute=True):
        services.update_ticket_status(ticket=ticket, status="open", actor=agent)
        services.update_ticket_status(ticket=ticket, status="resolved", actor=agent)

    assert len([m for m in mail.outbox if "Resolved:" in m.subject]) == 2


def test_no_resolution_notice_once_the_ticket_moved_on(agent, django_capture_on_commit_callbacks):
    ticket = make_ticket(channel=Channel.WEB)
    services.update_ticket_status(ticket=ticket, status="resolved", actor=agent)
    services.update_ticket_status(ticket=ticket, status="closed", actor=agent)

    assert notifications.send_resolution_notice(ticket_id=ticket.pk) is False
    assert not [m for m in mail.outbox if "Resolved:" in m.subject]


def test_internal_notes_never_appear_in_automatic_emails(agent, django_capture_on_commit_callbacks):
    from tests.support.factories import reply

    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(channel=Channel.WEB)
        reply(ticket, agent, "INTERNAL-ONLY remark", internal=True)
        services.update_ticket_status(ticket=ticket, status="resolved", actor=agent)

    assert mail.outbox
    assert all("INTERNAL-ONLY" not in m.body for m in mail.outbox)
