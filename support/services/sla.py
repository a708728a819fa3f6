"""SLA clocks: the targets per priority, what a status move does to the due times, and the
breach sweep that escalates late tickets in a fixed number of statements."""

import datetime as dt

from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from opsplatform import telemetry
from support.models import MAX_LEVEL, Escalation, Priority, SLAPolicy, Ticket
from support.services.common import on_commit_task

# The starting SLA policies (ensure_sla_policies, after every migrate), and the targets used
# if a policy row is missing.
DEFAULT_TARGET_MINUTES = {
    Priority.LOW: (24 * 60, 5 * 24 * 60),
    Priority.NORMAL: (8 * 60, 3 * 24 * 60),
    Priority.HIGH: (2 * 60, 24 * 60),
    Priority.URGENT: (30, 8 * 60),
}
URGENT_MIN_LEVEL = 2


def sla_targets(priority: str) -> tuple[dt.timedelta, dt.timedelta]:
    """(first response, resolution) targets of a priority."""
    policy = SLAPolicy.objects.filter(priority=priority).first()
    if policy is not None:
        return policy.first_response, policy.resolution
    first, resolution = DEFAULT_TARGET_MINUTES[Priority(priority)]
    return dt.timedelta(minutes=first), dt.timedelta(minutes=resolution)


def initial_level(priority: str) -> int:
    return URGENT_MIN_LEVEL if priority == Priority.URGENT else 1


def clock_changes(ticket: Ticket, new: str, now: dt.datetime) -> dict:
    """The SLA fields a move of `ticket` to `new` changes (the status timestamps are the
    status machine's stamps): pending pauses the clocks, leaving pending resumes them shifted
    by the paused time, reopening a resolved ticket starts the resolution clock again."""
    old, pending = ticket.status, Ticket.Status.PENDING
    changes = {}
    if old == pending and new != pending and ticket.sla_paused_at is not None:
        paused = now - ticket.sla_paused_at
        if ticket.first_response_at is None:
            changes["first_response_due_at"] = ticket.first_response_due_at + paused
        if ticket.resolved_at is None:
            changes["resolution_due_at"] = ticket.resolution_due_at + paused
        changes["sla_paused_at"] = None
    if new == pending:
        changes["sla_paused_at"] = now
    if old == Ticket.Status.RESOLVED and new == Ticket.Status.OPEN:
        _first, resolution = sla_targets(ticket.priority)
        changes["resolved_at"] = None
        changes["resolution_due_at"] = now + resolution
        changes["resolution_breach_escalated_at"] = None
    return changes


# --- breach sweep -----------------------------------------------------------------------------


def _history_columns() -> list[str]:
    historical = Ticket.history.model
    own = {"history_id", "history_date", "history_change_reason", "history_type", "history_user"}
    return [f.column for f in historical._meta.concrete_fields if f.name not in own]


def _db_time(value: dt.datetime):
    """A datetime as the backend stores it, for raw SQL parameters."""
    return connection.ops.adapt_datetimefield_value(value)


def insert_history_rows(
    *,
    where_sql: str,
    params: list,
    reason: str,
    user_id: int | None,
    now: dt.datetime,
    history_type: str = "~",
) -> int:
    """History rows for tickets changed by a set-based UPDATE, written by one INSERT … SELECT
    (simple-history does not see QuerySet.update()); `history_type` "+" writes the baseline
    rows of bulk-created tickets, so their first change shows what it changed."""
    if history_type not in ("+", "~"):
        raise ValueError("history_type is + or ~")
    historical = Ticket.history.model
    columns = _history_columns()
    qn = connection.ops.quote_name
    cols = ", ".join(qn(c) for c in columns)
    sql = (
        f"INSERT INTO {qn(historical._meta.db_table)} ({cols}, history_date, "  # noqa: S608
        f"history_change_reason, history_type, history_user_id) "
        f"SELECT {', '.join('t.' + qn(c) for c in columns)}, %s, %s, '{history_type}', %s "
        f"FROM {qn(Ticket._meta.db_table)} t WHERE {where_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_db_time(now), reason[:100], user_id, *params])
        return cursor.rowcount


@transaction.atomic
def sweep_sla_breaches(*, now: dt.datetime | None = None) -> int:
    """Escalate every breached ticket one level, once per breach, in a fixed number of
    statements whatever the number of tickets: one UPDATE marks and escalates them, one
    INSERT … SELECT writes their Escalation rows and one their history rows. A second run
    finds nothing new: each breach kind is stamped when it is escalated."""
    now = now or timezone.now()
    first_breach = Q(
        first_response_at__isnull=True,
        first_response_due_at__lt=now,
        first_response_breach_escalated_at__isnull=True,
    )
    resolution_breach = Q(
        resolved_at__isnull=True,
        resolution_due_at__lt=now,
        resolution_breach_escalated_at__isnull=True,
    )
    candidates = Ticket.objects.filter(
        Q(status__in=Ticket.CLOCK_STATUSES, escalation_level__lt=MAX_LEVEL)
        & (first_breach | resolution_breach)
    )
    count = candidates.update(
        escalation_level=F("escalation_level") + 1,
        first_response_breach_escalated_at=Case(
            When(first_breach, then=Value(now)),
            default=F("first_response_breach_escalated_at"),
        ),
        resolution_breach_escalated_at=Case(
            When(resolution_breach, then=Value(now)),
            default=F("resolution_breach_escalated_at"),
        ),
        updated_at=now,
    )
    if not count:
        return 0
    qn = connection.ops.quote_name
    marked = "(t.first_response_breach_escalated_at = %s OR t.resolution_breach_escalated_at = %s)"
    sql = (
        f"INSERT INTO {qn(Escalation._meta.db_table)} "  # noqa: S608
        f"(ticket_id, from_level, to_level, reason, automatic, created_at) "
        f"SELECT t.id, t.escalation_level - 1, t.escalation_level, "
        f"CASE WHEN t.first_response_breach_escalated_at = %s "
        f"AND t.resolution_breach_escalated_at = %s "
        f"THEN 'First-response and resolution SLA breached' "
        f"WHEN t.first_response_breach_escalated_at = %s THEN 'First-response SLA breached' "
        f"ELSE 'Resolution SLA breached' END, %s, %s "
        f"FROM {qn(Ticket._meta.db_table)} t WHERE {marked}"
    )
    stamp = _db_time(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [stamp, stamp, stamp, True, stamp, stamp, stamp])
    insert_history_rows(
        where_sql=marked,
        params=[stamp, stamp],
        reason="Automatic escalation: SLA breached",
        user_id=None,
        now=now,
    )
    on_commit_task("support.tasks.notify_automatic_escalations")
    telemetry.count_on_commit(telemetry.ESCALATIONS, "automatic", amount=count)
    return count


def ensure_sla_policies() -> None:
    """One SLA policy per priority; existing (possibly edited) policies are left alone."""
    for priority, (first, resolution) in DEFAULT_TARGET_MINUTES.items():
        SLAPolicy.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first, "resolution_minutes": resolution},
        )
