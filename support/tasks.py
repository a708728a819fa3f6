"""django-q2 entry points of support: take ids, call one service, safe to run twice.

A notification that cannot be sent (SMTP down, a header Django refuses, an unreachable
webhook) is logged, counted in `opsplatform_support_notifications_failed_total` and
retried later by a one-off schedule; the service's own stamp (acknowledged_at, emailed_at,
notified_at) is only set once the email went out, so a retry never sends it twice."""

import datetime as dt
import logging

from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule

from opsplatform import telemetry
from support import notifications, services

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
RETRY_BASE = dt.timedelta(minutes=5)


def _retry_delay(attempt: int) -> dt.timedelta:
    """5, 10, 20, 40 minutes after attempts 1 to 4."""
    return RETRY_BASE * 2 ** (attempt - 1)


def _notify(kind: str, func, *args, attempt: int):
    telemetry.TASKS_RUN.labels(f"support.{kind}").inc()
    try:
        return func(*args)
    except Exception:
        telemetry.NOTIFICATIONS_FAILED.labels(kind).inc()
        if attempt >= MAX_ATTEMPTS:
            logger.exception(
                "Support notification %s%r failed (attempt %d of %d); giving up.",
                kind,
                args,
                attempt,
                MAX_ATTEMPTS,
            )
            return False
        logger.exception(
            "Support notification %s%r failed (attempt %d of %d); retrying in %s.",
            kind,
            args,
            attempt,
            MAX_ATTEMPTS,
            _retry_delay(attempt),
        )
        schedule(
            f"support.tasks.{kind}",
            *args,
            attempt=attempt + 1,
            schedule_type=Schedule.ONCE,
            repeats=1,
            next_run=timezone.now() + _retry_delay(attempt),
        )
        return False


def notify_escalation(escalation_id: int, attempt: int = 1) -> bool:
    return _notify(
        "notify_escalation",
        lambda pk: notifications.notify_escalation(escalation_id=pk),
        escalation_id,
        attempt=attempt,
    )


def notify_automatic_escalations(attempt: int = 1) -> int:
    return _notify(
        "notify_automatic_escalations",
        notifications.notify_automatic_escalations,
        attempt=attempt,
    )


def send_reply_email(message_id: int, attempt: int = 1) -> bool:
    return _notify(
        "send_reply_email",
        lambda pk: notifications.send_public_reply(message_id=pk),
        message_id,
        attempt=attempt,
    )


def send_acknowledgement(ticket_id: int, attempt: int = 1) -> bool:
    return _notify(
        "send_acknowledgement",
        lambda pk: notifications.send_acknowledgement(ticket_id=pk),
        ticket_id,
        attempt=attempt,
    )


def send_resolution_notice(ticket_id: int, attempt: int = 1) -> bool:
    return _notify(
        "send_resolution_notice",
        lambda pk: notifications.send_resolution_notice(ticket_id=pk),
        ticket_id,
        attempt=attempt,
    )


def ingest_queued_email(queued_id: int) -> bool:
    """A large inbound email, parsed here rather than in the web request."""
    telemetry.TASKS_RUN.labels("support.ingest_queued_email").inc()
    return services.ingest_queued_email(queued_id=queued_id)


def sweep_sla_breaches() -> int:
    """Every 5 minutes: escalate tickets whose SLA is breached (each breach once)."""
    telemetry.TASKS_RUN.labels("support.sweep_sla_breaches").inc()
    return services.sweep_sla_breaches()
