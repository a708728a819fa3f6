"""django-q2 entry points of support: take ids, call one service, safe to run twice."""

from opsplatform import telemetry
from support import notifications, services


def notify_escalation(escalation_id: int) -> bool:
    telemetry.TASKS_RUN.labels("support.notify_escalation").inc()
    return notifications.notify_escalation(escalation_id=escalation_id)


def notify_automatic_escalations() -> int:
    telemetry.TASKS_RUN.labels("support.notify_automatic_escalations").inc()
    return notifications.notify_automatic_escalations()


def send_reply_email(message_id: int) -> bool:
    telemetry.TASKS_RUN.labels("support.send_reply_email").inc()
    return notifications.send_public_reply(message_id=message_id)


def send_acknowledgement(ticket_id: int) -> bool:
    telemetry.TASKS_RUN.labels("support.send_acknowledgement").inc()
    return notifications.send_acknowledgement(ticket_id=ticket_id)


def send_resolution_notice(ticket_id: int) -> bool:
    telemetry.TASKS_RUN.labels("support.send_resolution_notice").inc()
    return notifications.send_resolution_notice(ticket_id=ticket_id)


def sweep_sla_breaches() -> int:
    """Every 5 minutes: escalate tickets whose SLA is breached (each breach once)."""
    telemetry.TASKS_RUN.labels("support.sweep_sla_breaches").inc()
    return services.sweep_sla_breaches()
