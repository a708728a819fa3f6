"""A CR/LF in a subject must not break a ticket's mail, and a notification that cannot be
sent is logged, counted in /metrics and retried, never silently lost nor sent twice."""

import logging
import smtplib

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.urls import reverse
from django_q.models import Schedule
from prometheus_client import REGISTRY

from support import services, tasks
from support.models import Ticket
from tests.support.factories import make_agent, make_ticket

pytestmark = pytest.mark.django_db
HOSTILE = "Refund please\r\nBcc: everyone@evil.example.net"
ONE_LINE = "Refund please Bcc: everyone@evil.example.net"
FAILED = "opsplatform_support_notifications_failed_total"


def failures(kind: str) -> float:
    return REGISTRY.get_sample_value(FAILED, {"kind": kind}) or 0.0


# --- subjects on one line ---------------------------------------------------------------------


def test_a_subject_with_line_breaks_is_stored_on_one_line_and_acknowledged(
    account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(account=account, subject=HOSTILE)

    assert Ticket.objects.get(pk=ticket.pk).subject == ONE_LINE
    [ack] = mail.outbox
    assert ack.subject == f"[{ticket.reference}] We received your request: {ONE_LINE}"
    assert "Bcc" not in ack.extra_headers
    assert ack.bcc == []


def test_the_api_and_the_page_form_store_one_line_subjects(api, client, account):
    created = api.post("support/tickets", {"subject": "Line one\nline two", "description": "d"})
    client.force_login(account.user)
    client.post(
        reverse("support:ticket_create"),
        {"subject": "Tab\there\r\nand there", "description": "d", "priority": "normal"},
    )

    assert created.status_code == 201, created.content
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [
        "Line one line two",
        "Tab here and there",
    ]


def test_an_edited_subject_is_put_on_one_line(agent):
    ticket = make_ticket(subject="Original")

    services.update_ticket_details(ticket=ticket, subject="New\n\nsubject ", actor=agent)

    ticket.refresh_from_db()
    assert ticket.subject == "New subject"
    assert ticket.history.first().history_change_reason == "Changed subject"


def test_an_old_subject_with_a_line_break_still_escalates_by_email(
    agent, django_capture_on_commit_callbacks
):
    l2 = make_agent(2, email="l2@opsplatform.local")
    ticket = make_ticket(subject="Before the fix")
    Ticket.objects.filter(pk=ticket.pk).update(subject="Stored before\r\nthe fix")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.escalate_ticket(ticket=ticket, level=2, reason="Needs L2", actor=agent)

    [alert] = mail.outbox
    assert alert.to == [l2.email]
    assert alert.subject == f"[{ticket.reference}] escalated to L2: Stored before the fix"
    assert ticket.escalations.get().notified_at is not None


# --- failures are visible and retried ---------------------------------------------------------


@pytest.fixture
def smtp_down(monkeypatch):
    def refuse(self, fail_silently=False):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    return monkeypatch


def test_a_failed_acknowledgement_is_logged_counted_and_retried(
    account, smtp_down, caplog, django_capture_on_commit_callbacks
):
    before = failures("send_acknowledgement")
    with (
        caplog.at_level(logging.ERROR, logger="support.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        ticket = make_ticket(account=account)

    assert failures("send_acknowledgement") == before + 1
    [record] = caplog.records
    assert record.getMessage() == (
        f"Support notification send_acknowledgement({ticket.pk},) failed (attempt 1 of 5); "
        "retrying in 0:05:00."
    )
    assert "SMTPServerDisconnected" in caplog.text
    [retry] = Schedule.objects.all()
    assert (retry.func, retry.args, retry.kwargs, retry.schedule_type) == (
        "support.tasks.send_acknowledgement",
        f"({ticket.pk},)",
        "{'attempt': 2}",
        Schedule.ONCE,
    )
    ticket.refresh_from_db()
    assert ticket.acknowledged_at is None

    # The mail server is back: the retry sends it, and a further run sends nothing.
    smtp_down.undo()
    assert tasks.send_acknowledgement(ticket.pk, attempt=2) is True
    assert tasks.send_acknowledgement(ticket.pk, attempt=2) is False
    [ack] = mail.outbox
    assert ack.to == [account.user.email]
    assert Schedule.objects.count() == 1


def test_the_last_attempt_gives_up_loudly(account, smtp_down, caplog):
    ticket = make_ticket(account=account)

    with caplog.at_level(logging.ERROR, logger="support.tasks"):
        assert tasks.send_acknowledgement(ticket.pk, attempt=5) is False

    assert caplog.records[-1].getMessage() == (
        f"Support notification send_acknowledgement({ticket.pk},) failed (attempt 5 of 5); "
        "giving up."
    )
    assert not Schedule.objects.exists()


def test_failed_replies_and_escalations_are_retried_too(agent, smtp_down):
    ticket = make_ticket()
    message = services.add_message(
        ticket=ticket, body="Here is the fix.", author=agent, author_kind="agent"
    )

    assert tasks.send_reply_email(message.pk) is False

    assert list(Schedule.objects.values_list("func", "args")) == [
        ("support.tasks.send_reply_email", f"({message.pk},)")
    ]
    message.refresh_from_db()
    assert message.emailed_at is None


def test_metrics_show_failed_notifications(client, settings, account, smtp_down):
    settings.METRICS_TOKEN = "scrape-me"
    ticket = make_ticket(account=account)
    tasks.send_acknowledgement(ticket.pk)

    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})

    assert scraped.status_code == 200
    assert f'{FAILED}{{kind="send_acknowledgement"}} '.encode() in scraped.content, scraped.content[
        :200
    ]
