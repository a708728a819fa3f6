"""Support data on account deletion and in customer exports.

`erase_account` anonymizes the account's tickets (kept, without personal data, for service
statistics), erases their messages, CSAT comments and escalation reasons, and scrubs the same
data from the tickets' history rows. `EXPORT_TYPES["tickets"]` streams the account's tickets
with their public messages (never an internal note).
"""

import datetime as dt
from collections.abc import Iterator

from django.db import transaction
from django.db.models import CharField, FilteredRelation, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from opsplatform.exports import ExportType, export_types
from opsplatform.models import Account
from opsplatform.privacy import scrub_admin_log
from opsplatform.registry import ErasureResult
from support.models import (
    Attachment,
    CSATRating,
    Escalation,
    HeldEmail,
    QueuedEmail,
    Ticket,
    TicketMessage,
    format_reference,
)
from support.services import insert_history_rows

ERASED = "[erased]"
ERASED_DOMAIN = "@erased.invalid"
LEGAL_GROUND = "Legitimate interest: support statistics, kept without personal data"
CHUNK = 500


def _anonymous_email():
    # Tickets keep a requester address (a row constraint), now one that identifies nobody.
    return Concat(Value("erased-"), Cast("id", CharField()), Value(ERASED_DOMAIN))


def _account_ticket_ids(account: Account) -> list[int]:
    email = (account.user.email or "").strip()
    condition = Q(account=account)
    if email:
        # Emails the person sent before their address was known to belong to the account.
        condition |= Q(account__isnull=True, requester_email__iexact=email)
    return list(Ticket.objects.filter(condition).values_list("id", flat=True).order_by("id"))


def erase_account(account: Account, *, actor) -> list[ErasureResult]:
    ids = _account_ticket_ids(account)
    now = timezone.now()
    counts = {
        "tickets": 0,
        "messages": 0,
        "history": 0,
        "csat": 0,
        "escalations": 0,
        "admin log": 0,
        "attachments": 0,
    }
    historical = Ticket.history.model
    with transaction.atomic():
        counts["held"], counts["queued"] = _erase_inbound_mail(account, ids)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            counts["admin log"] += _scrub_admin_log(chunk)
            counts["tickets"] += Ticket.objects.filter(id__in=chunk).update(
                subject=ERASED,
                requester_email=_anonymous_email(),
                requester_name="",
                tags="",
                chat_session_id="",
                updated_at=now,
            )
            counts["attachments"] += _erase_attachments(chunk)
            counts["messages"] += TicketMessage.objects.filter(ticket_id__in=chunk).update(
                body=ERASED,
                full_body="",
                signature="",
                author_email="",
                message_id="",
            )
            counts["csat"] += (
                CSATRating.objects.filter(ticket_id__in=chunk)
                .exclude(comment="")
                .update(comment="")
            )
            counts["escalations"] += Escalation.objects.filter(ticket_id__in=chunk).update(
                reason=ERASED
            )
            counts["history"] += historical.objects.filter(id__in=chunk).update(
                subject=ERASED,
                requester_email=_anonymous_email(),
                requester_name="",
                tags="",
                chat_session_id="",
                history_change_reason=None,
            )
            id_params = ", ".join(["%s"] * len(chunk))
            insert_history_rows(
                where_sql=f"t.id IN ({id_params})",
                params=chunk,
                reason="Personal data erased (account deletion)",
                user_id=actor.pk if actor is not None and actor.is_authenticated else None,
                now=now,
            )
    return [
        ErasureResult("support tickets", "anonymized", counts["tickets"], LEGAL_GROUND),
        ErasureResult("support ticket history", "anonymized", counts["history"], LEGAL_GROUND),
        ErasureResult("support messages", "erased", counts["messages"]),
        ErasureResult("support attachments", "erased", counts["attachments"]),
        ErasureResult("support CSAT comments", "erased", counts["csat"]),
        ErasureResult("support escalation reasons", "erased", counts["escalations"]),
        ErasureResult("support admin log entries", "anonymized", counts["admin log"]),
        ErasureResult("unverified inbound emails", "erased", counts["held"]),
        ErasureResult("queued inbound emails", "erased", counts["queued"]),
    ]


def _erase_attachments(ticket_ids: list[int]) -> int:
    """The tickets' files: rows deleted now, the stored files once the deletion commits (a
    rollback keeps both)."""
    rows = Attachment.objects.filter(ticket_id__in=ticket_ids)
    names = [(a.file.storage, a.file.name) for a in rows.only("id", "file") if a.file]
    count = rows.delete()[0]

    def remove_files():
        for storage, name in names:
            if storage.exists(name):
                storage.delete(name)

    transaction.on_commit(remove_files)
    return count


def _erase_inbound_mail(account: Account, ticket_ids: list[int]) -> tuple[int, int]:
    """Mail held for review from the person's address (or accepted onto their tickets), and
    raw messages queued for the worker that became their tickets: deleted with their
    history rows and admin log lines."""
    email = (account.user.email or "").strip()
    held = Q(ticket_id__in=ticket_ids)
    if email:
        held |= Q(from_email__iexact=email)
    held_ids = list(HeldEmail.objects.filter(held).values_list("id", flat=True))
    if email:
        held_ids += HeldEmail.history.filter(from_email__iexact=email).values_list("id", flat=True)
    queued_ids = list(
        QueuedEmail.objects.filter(ticket_id__in=ticket_ids).values_list("id", flat=True)
    )
    scrub_admin_log(HeldEmail, held_ids)
    scrub_admin_log(QueuedEmail, queued_ids)
    held_count = HeldEmail.objects.filter(id__in=held_ids).delete()[0]
    # After the delete: deleting writes a last history row ("-") with the same data.
    HeldEmail.history.filter(id__in=held_ids).delete()
    queued_count = QueuedEmail.objects.filter(id__in=queued_ids).delete()[0]
    return held_count, queued_count


def _scrub_admin_log(ticket_ids: list[int]) -> int:
    """Admin log lines about these tickets and their messages, ratings and escalations (a
    ticket's line reads "SUP-000059 <subject>")."""
    related = (TicketMessage, CSATRating, Escalation)
    return scrub_admin_log(Ticket, ticket_ids) + sum(
        scrub_admin_log(
            model, model.objects.filter(ticket_id__in=ticket_ids).values_list("id", flat=True)
        )
        for model in related
    )


TICKET_EXPORT_HEADER = [
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
AUTHOR_LABELS = {
    TicketMessage.Author.REQUESTER: "you",
    TicketMessage.Author.AGENT: "support",
    TicketMessage.Author.SYSTEM: "system",
}


def _moment(value: dt.date | dt.datetime, *, end: bool) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    day = value + dt.timedelta(days=1) if end else value
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def _ticket_rows(account: Account, date_from, date_to):
    """The account's tickets created in [date_from, date_to] (dates inclusive) joined to
    their public messages (a ticket without one still has a row)."""
    start = _moment(date_from, end=False)
    end = _moment(date_to, end=not isinstance(date_to, dt.datetime))
    return Ticket.objects.filter(
        account=account, created_at__gte=start, created_at__lt=end
    ).annotate(public=FilteredRelation("messages", condition=Q(messages__internal=False)))


def count_ticket_rows(account: Account, date_from, date_to) -> int:
    """How many rows `export_tickets` will write (the export's progress bar total)."""
    return _ticket_rows(account, date_from, date_to).values_list("id", "public__id").count()


def _ticket_export_rows(account: Account, date_from, date_to) -> Iterator[tuple]:
    """The account's tickets, one row per public message, streamed from one query."""
    qs = (
        _ticket_rows(account, date_from, date_to)
        .order_by("created_at", "id", "public__created_at", "public__id")
        .values_list(
            "id",
            "channel",
            "subject",
            "status",
            "priority",
            "created_at",
            "resolved_at",
            "public__created_at",
            "public__author_kind",
            "public__body",
        )
    )

    def rows():
        for (
            pk,
            channel,
            subject,
            status,
            priority,
            created,
            resolved,
            message_at,
            kind,
            body,
        ) in qs.iterator(chunk_size=2000):
            yield (
                format_reference(pk),
                channel,
                subject,
                status,
                priority,
                _iso(created),
                _iso(resolved),
                _iso(message_at),
                AUTHOR_LABELS.get(kind, ""),
                body or "",
            )

    return rows()


ATTACHMENT_EXPORT_HEADER = [
    "reference",
    "message_at",
    "message_from",
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
]


def _attachment_rows(account: Account, date_from, date_to):
    start = _moment(date_from, end=False)
    end = _moment(date_to, end=not isinstance(date_to, dt.datetime))
    return Attachment.objects.filter(
        ticket__account=account,
        ticket__created_at__gte=start,
        ticket__created_at__lt=end,
    ).exclude(message__internal=True)


def count_attachment_rows(account: Account, date_from, date_to) -> int:
    return _attachment_rows(account, date_from, date_to).count()


def _attachment_export_rows(account: Account, date_from, date_to) -> Iterator[tuple]:
    """The files of the account's tickets (never one on an internal note), one row each,
    with the checksum that identifies the stored file."""
    qs = (
        _attachment_rows(account, date_from, date_to)
        .order_by("ticket_id", "created_at", "id")
        .values_list(
            "ticket_id",
            "message__created_at",
            "message__author_kind",
            "filename",
            "content_type",
            "size",
            "sha256",
        )
    )
    return (
        (
            format_reference(ticket_id),
            _iso(message_at),
            AUTHOR_LABELS.get(kind, ""),
            filename,
            content_type,
            size,
            digest,
        )
        for ticket_id, message_at, kind, filename, content_type, size, digest in qs.iterator(
            chunk_size=2000
        )
    )


EXPORT_TYPES = export_types(
    ExportType(
        name="tickets",
        label="Support tickets",
        columns=tuple(TICKET_EXPORT_HEADER),
        rows=_ticket_export_rows,
        count=count_ticket_rows,  # a determinate progress bar
    ),
    ExportType(
        name="ticket_attachments",
        label="Support ticket attachments (list of files)",
        columns=tuple(ATTACHMENT_EXPORT_HEADER),
        rows=_attachment_export_rows,
        count=count_attachment_rows,
    ),
)
export_tickets = EXPORT_TYPES["tickets"]  # (account, date_from, date_to) -> (header, rows)


# --- record of processing (GDPR Art. 30) -------------------------------------------------------
# Support's personal data, read by the compliance app's record of processing.
PERSONAL_DATA = [
    {
        "model": "support.Ticket",
        "fields": ["requester_email", "requester_name"],
        "purpose": "Answer the requester's support request",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until the account is deleted; then anonymised for statistics",
    },
    {
        "model": "support.TicketMessage",
        "fields": ["author_email", "body"],
        "purpose": "The conversation of a support request",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until the account is deleted; then erased",
        "history_exempt": "Append-only thread: messages are never edited",
    },
    {
        "model": "support.CSATRating",
        "fields": ["comment"],
        "purpose": "Measure support satisfaction",
        "legal_basis": "Legitimate interests (Art. 6(1)(f))",
        "retention": "Until the account is deleted; then the comment is erased",
        "history_exempt": "Written once by the requester, never edited",
    },
    {
        "model": "support.HeldEmail",
        "fields": ["from_email", "from_name", "body"],
        "purpose": "Hold unverified inbound email until an agent accepts or drops it",
        "legal_basis": "Legitimate interests (Art. 6(1)(f)): protecting the service from spoofing",
        "retention": "Until accepted or dropped by an agent",
    },
]
