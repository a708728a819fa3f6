"""The SLA breach sweep: set-based, escalates each breach once, notifies by email and webhook."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from support import services, tasks
from support.models import Escalation, Priority, Ticket
from support.schedules import SCHEDULES
from tests.support.factories import make_agent, make_ticket, reply

pytestmark = pytest.mark.django_db
Status = Ticket.Status


def test_schedule_runs_the_sweep_every_five_minutes():
    (spec,) = SCHEDULES
    assert spec.func == "support.tasks.sweep_sla_breaches"
    assert spec.minutes == 5


def test_sweep_escalates_a_breach_once_not_twice(clock, django_capture_on_commit_callbacks):
    breached = make_ticket(priority=Priority.HIGH)  # first response due in 2h
    fresh = make_ticket(priority=Priority.LOW)  # due in 24h
    clock.advance(hours=2, minutes=1)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep_sla_breaches() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep_sla_breaches() == 0
    clock.advance(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_sla_breaches() == 0

    breached.refresh_from_db()
    fresh.refresh_from_db()
    assert breached.escalation_level == 2
    assert fresh.escalation_level == 1
    escalation = Escalation.objects.get()
    assert escalation.ticket == breached
    assert (escalation.from_level, escalation.to_level) == (1, 2)
    assert escalation.automatic and escalation.escalated_by is None
    assert escalation.reason == "First-response SLA breached"
    row = breached.history.first()
    assert row.escalation_level == 2
    assert row.history_change_reason == "Automatic escalation: SLA breached"
    assert row.history_user is None
    assert breached.history.count() == 2


def test_a_later_resolution_breach_escalates_again(clock, agent):
    ticket = make_ticket(priority=Priority.URGENT)  # L2; 30 min / 8 h
    clock.advance(minutes=31)
    services.sweep_sla_breaches()
    reply(ticket, agent)
    clock.advance(hours=8)
    services.sweep_sla_breaches()
    services.sweep_sla_breaches()

    ticket.refresh_from_db()
    assert ticket.escalation_level == 4
    assert list(Escalation.objects.order_by("id").values_list("to_level", "reason")) == [
        (3, "First-response SLA breached"),
        (4, "Resolution SLA breached"),
    ]


def test_both_breaches_at_once_escalate_one_level(clock):
    ticket = make_ticket(priority=Priority.URGENT)
    clock.advance(hours=9)
    services.sweep_sla_breaches()
    ticket.refresh_from_db()
    assert ticket.escalation_level == 3
    assert Escalation.objects.get().reason == "First-response and resolution SLA breached"


@pytest.mark.parametrize("status", [Status.PENDING, Status.RESOLVED, Status.CLOSED])
def test_paused_and_finished_tickets_are_not_swept(status, clock, agent):
    ticket = make_ticket(priority=Priority.HIGH)
    services.update_ticket_status(ticket=ticket, status=status, actor=agent)
    clock.advance(days=10)
    assert services.sweep_sla_breaches() == 0
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1
    assert not Escalation.objects.exists()


def test_l4_is_the_top(clock, agent):
    ticket = make_ticket(priority=Priority.HIGH)
    services.escalate_ticket(ticket=ticket, level=4, reason="VIP", actor=agent)
    clock.advance(days=2)
    assert services.sweep_sla_breaches() == 0
    ticket.refresh_from_db()
    assert ticket.escalation_level == 4


def _sweep_queries(count, clock):
    for _ in range(count):
        make_ticket(priority=Priority.HIGH)
    clock.advance(hours=3)
    with CaptureQueriesContext(connection) as ctx:
        escalated = services.sweep_sla_breaches()
    assert escalated == count
    return len(ctx.captured_queries)


def test_sweep_is_set_based(clock):
    small = _sweep_queries(2, clock)
    large = _sweep_queries(40, clock)
    assert small == large <= 8
    assert Escalation.objects.count() == 42
    assert Ticket.history.filter(history_change_reason__startswith="Automatic").count() == 42


def test_sweep_notifies_each_level_once_by_email_and_webhook(
    clock, webhook, django_capture_on_commit_callbacks
):
    l2 = make_agent(2, email="l2@opsplatform.local")
    make_agent(3, email="l3@opsplatform.local")
    tickets = [make_ticket(priority=Priority.HIGH, subject=f"Problem {i}") for i in range(3)]
    clock.advance(hours=3)

    with django_capture_on_commit_callbacks(execute=True):
        services.sweep_sla_breaches()

    assert len(mail.outbox) == 1
    digest = mail.outbox[0]
    assert digest.to == [l2.email]
    assert digest.extra_headers["Auto-Submitted"] == "auto-generated"
    assert digest.subject == "3 ticket(s) escalated to L2 for SLA breach"
    for ticket in tickets:
        assert ticket.reference in digest.body
    assert len(webhook) == 1
    assert webhook[0]["content_type"] == "application/json"
    assert webhook[0]["body"]["text"].startswith("3 ticket(s) escalated to L2")
    assert not Escalation.objects.filter(notified_at__isnull=True).exists()
    # Running the notifier again sends nothing.
    assert tasks.notify_automatic_escalations() == 0
    assert len(mail.outbox) == 1


def test_webhook_failure_is_logged_not_raised(
    settings, agent, caplog, django_capture_on_commit_callbacks
):
    settings.SUPPORT_WEBHOOK_URL = "http://127.0.0.1:9/unreachable"
    make_agent(2, email="l2@opsplatform.local")
    ticket = make_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        services.escalate_ticket(ticket=ticket, level=2, reason="r", actor=agent)
    assert len(mail.outbox) == 1
    assert "Support webhook POST failed" in caplog.text
    assert Escalation.objects.get().notified_at is not None


def test_manual_escalation_posts_to_webhook(agent, webhook, django_capture_on_commit_callbacks):
    ticket = make_ticket(subject="Payout missing")
    with django_capture_on_commit_callbacks(execute=True):
        services.escalate_ticket(ticket=ticket, level=3, reason="Finance check", actor=agent)
    (posted,) = webhook
    assert f"[{ticket.reference}] escalated to L3: Payout missing" in posted["body"]["text"]
    assert "Finance check" in posted["body"]["text"]
