"""Account erasure scrubs tickets, threads and their history; the export streams public
messages only."""

import datetime as dt

import pytest
from django.contrib.admin.models import CHANGE, LogEntry

from opsplatform.registry import ErasureResult
from support import privacy, services
from support.models import CSATRating, Escalation, Ticket, TicketMessage
from tests.factories import AccountFactory
from tests.support.factories import make_ticket, reply

pytestmark = pytest.mark.django_db


def test_erase_account_scrubs_tickets_messages_and_history(agent):
    account = AccountFactory(user__email="jane@example.com", user__username="jane")
    ticket = make_ticket(
        account=account,
        subject="Jane's card 4242 declined",
        description="My phone is 555-0100",
        tags=["billing"],
    )
    reply(ticket, agent, "Hi Jane", internal=False)
    reply(ticket, agent, "Jane is upset", internal=True)
    services.escalate_ticket(ticket=ticket, level=2, reason="Jane asked for a manager", actor=agent)
    services.update_ticket_status(ticket=ticket, status="resolved", notes="told Jane", actor=agent)
    services.rate_ticket(ticket=ticket, rating=2, comment="Jane was not happy")
    before_email = services.create_ticket(
        subject="Jane by email",
        description="from Jane",
        channel="email",
        requester_email="JANE@example.com",
    )
    other = make_ticket(subject="Someone else")

    results = privacy.erase_account(account, actor=agent)

    counts = {r.category: (r.action, r.count) for r in results}
    assert all(isinstance(r, ErasureResult) for r in results)
    assert counts["support tickets"] == ("anonymized", 2)
    assert counts["support messages"] == ("erased", 5)
    assert counts["support CSAT comments"] == ("erased", 1)
    assert counts["support escalation reasons"] == ("erased", 1)
    assert counts["support ticket history"][1] >= 5
    for t in Ticket.objects.filter(pk__in=[ticket.pk, before_email.pk]):
        assert t.subject == "[erased]"
        assert t.requester_email == f"erased-{t.pk}@erased.invalid"
        assert t.tags == ""
    text = " ".join(TicketMessage.objects.filter(ticket=ticket).values_list("body", flat=True))
    assert "Jane" not in text and "555" not in text
    assert "Jane" not in Escalation.objects.get().reason
    assert CSATRating.objects.get().comment == ""
    history = Ticket.history.filter(id__in=[ticket.pk, before_email.pk])
    for row in history:
        assert "Jane" not in row.subject and "jane" not in row.requester_email.lower()
        assert "Jane" not in (row.history_change_reason or "")
    erasure_row = ticket.history.first()
    assert erasure_row.history_change_reason == "Personal data erased (account deletion)"
    assert erasure_row.history_user == agent
    other.refresh_from_db()
    assert other.subject == "Someone else"
    assert other.messages.get().body == "It broke."


def test_erasure_is_safe_to_repeat(agent):
    account = AccountFactory()
    make_ticket(account=account)
    privacy.erase_account(account, actor=agent)
    again = privacy.erase_account(account, actor=agent)
    assert {r.category: r.count for r in again}["support tickets"] == 1
    assert Ticket.objects.get().subject == "[erased]"


def test_erase_account_scrubs_the_admin_log_lines_about_the_tickets(agent):
    account = AccountFactory(user__email="jane@example.com", user__username="jane")
    ticket = make_ticket(account=account, subject="Jane's card 4242 declined")
    reply(ticket, agent, "Hi Jane", internal=False)
    other = make_ticket(subject="Someone else's printer")
    # What the admin writes when an agent edits a ticket and its thread.
    LogEntry.objects.log_actions(
        agent.pk,
        Ticket.objects.filter(pk__in=[ticket.pk, other.pk]),
        CHANGE,
        change_message='[{"changed": {"fields": ["Subject"]}}]',
    )
    LogEntry.objects.log_actions(
        agent.pk, TicketMessage.objects.filter(ticket=ticket), CHANGE, change_message="Jane"
    )
    line = LogEntry.objects.get(object_id=str(ticket.pk), content_type__model="ticket")
    assert line.object_repr == f"SUP-{ticket.pk:06d} Jane's card 4242 declined"

    results = privacy.erase_account(account, actor=agent)

    counts = {r.category: (r.action, r.count) for r in results}
    assert counts["support admin log entries"] == ("anonymized", 3)
    scrubbed = LogEntry.objects.exclude(object_id=str(other.pk), content_type__model="ticket")
    assert {(e.object_repr, e.change_message) for e in scrubbed} == {
        ("ticket (erased)", "Details erased with the account's personal data."),
        ("ticket message (erased)", "Details erased with the account's personal data."),
    }
    assert {(e.user_id, e.action_flag) for e in scrubbed} == {(agent.pk, CHANGE)}
    kept = LogEntry.objects.get(object_id=str(other.pk), content_type__model="ticket")
    assert (kept.object_repr, kept.change_message) == (
        f"SUP-{other.pk:06d} Someone else's printer",
        '[{"changed": {"fields": ["Subject"]}}]',
    )


def test_export_streams_public_messages_only(agent, clock):
    account = AccountFactory()
    ticket = make_ticket(account=account, subject="Export me", description="question")
    clock.advance(minutes=5)
    reply(ticket, agent, "SECRET-NOTE", internal=True)
    reply(ticket, agent, "answer")
    services.update_ticket_status(ticket=ticket, status="resolved", actor=agent)
    quiet = make_ticket(account=account, subject="No reply yet")
    make_ticket(subject="Another account")

    export = privacy.EXPORT_TYPES["tickets"]
    header, rows = export(account, clock.now.date(), clock.now.date())
    rows = list(rows)

    assert header == [
        "reference",
        "channel",
        "subject",
        "status",
        "priority",
        "created_at",
        "resolved_at",
        "message_at",
        "message_from",
        "message",
    ]
    assert [(r[0], r[8], r[9]) for r in rows] == [
        (ticket.reference, "you", "question"),
        (ticket.reference, "support", "answer"),
        (quiet.reference, "you", "It broke."),
    ]
    assert export.count(account, clock.now.date(), clock.now.date()) == len(rows)
    assert rows[0][3] == "resolved" and rows[0][6]
    assert "SECRET-NOTE" not in str(rows)
    later = clock.now.date() + dt.timedelta(days=1)
    assert list(export(account, later, later)[1]) == []


def test_export_returns_an_iterator_not_a_list():
    account = AccountFactory()
    _header, rows = privacy.export_tickets(account, dt.date(2025, 1, 1), dt.date(2025, 1, 2))
    assert iter(rows) is rows


def test_erase_account_deletes_held_and_queued_mail_of_the_person(agent):
    from support.models import HeldEmail, QueuedEmail

    account = AccountFactory(user__email="jane@example.com", user__username="jane")
    ticket = make_ticket(account=account, subject="Jane's ticket")
    held = HeldEmail.objects.create(
        from_email="Jane@Example.com",
        from_name="Jane Doe",
        subject="Jane's spoof check",
        body="Call Jane on 555-0100",
        reason="dmarc=fail",
    )
    held.subject = "Jane's spoof check (edited)"
    held.save()  # a second history row
    queued = QueuedEmail.objects.create(raw=b"From: jane@example.com\r\n\r\nHi", ticket=ticket)
    strangers = HeldEmail.objects.create(
        from_email="sam@example.org", subject="Sam", body="Sam", reason="spf=fail"
    )
    LogEntry.objects.log_actions(
        user_id=agent.pk, queryset=HeldEmail.objects.filter(pk=held.pk), action_flag=CHANGE
    )

    results = {r.category: r.count for r in privacy.erase_account(account, actor=agent)}

    assert results["unverified inbound emails"] == 1
    assert results["queued inbound emails"] == 1
    assert not HeldEmail.objects.filter(pk=held.pk).exists()
    assert not HeldEmail.history.filter(id=held.pk).exists()
    assert not QueuedEmail.objects.filter(pk=queued.pk).exists()
    assert HeldEmail.objects.filter(pk=strangers.pk).exists()
    assert not LogEntry.objects.filter(object_repr__icontains="jane").exists()
