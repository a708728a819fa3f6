"""Every write to support data: tickets, their status machine, threads, escalation, SLA sweep.

Each transition locks the ticket row, checks the move against `TRANSITIONS`, and raises a
domain error (Conflict → 409) when the current state forbids it. Notifications and emails are
queued with `transaction.on_commit`, so nothing is sent for a write that rolls back.
"""

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django_q.tasks import async_task

from opsplatform import telemetry
from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Account
from support import inbound
from support.models import (
    MAX_LEVEL,
    TAGS_VALIDATOR,
    Channel,
    CSATRating,
    Escalation,
    HeldEmail,
    Priority,
    QueuedEmail,
    SLAPolicy,
    Ticket,
    TicketMessage,
    parse_reference,
)

logger = logging.getLogger(__name__)

S = Ticket.Status
# One table for the ticket status machine: current status -> statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.ON_HOLD, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.PENDING, S.ON_HOLD, S.RESOLVED, S.CLOSED}),
    S.PENDING: frozenset({S.OPEN, S.ON_HOLD, S.RESOLVED, S.CLOSED}),
    S.ON_HOLD: frozenset({S.OPEN, S.PENDING, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}
# The moves a customer may make on their own ticket (within the table): close it, or reopen
# a resolved one.
CUSTOMER_MOVES = frozenset(
    {(s, S.CLOSED) for s in TRANSITIONS if S.CLOSED in TRANSITIONS[s]} | {(S.RESOLVED, S.OPEN)}
)
# The starting SLA policies (ensure_sla_policies, after every migrate), and the targets used
# if a policy row is missing.
DEFAULT_TARGET_MINUTES = {
    Priority.LOW: (24 * 60, 5 * 24 * 60),
    Priority.NORMAL: (8 * 60, 3 * 24 * 60),
    Priority.HIGH: (2 * 60, 24 * 60),
    Priority.URGENT: (30, 8 * 60),
}
URGENT_MIN_LEVEL = 2
MAX_BODY = inbound.MAX_BODY_CHARS + 100
MAX_MERGE_HOPS = 5


# --- helpers ----------------------------------------------------------------------------------


def sla_targets(priority: str) -> tuple[dt.timedelta, dt.timedelta]:
    """(first response, resolution) targets of a priority."""
    policy = SLAPolicy.objects.filter(priority=priority).first()
    if policy is not None:
        return policy.first_response, policy.resolution
    first, resolution = DEFAULT_TARGET_MINUTES[Priority(priority)]
    return dt.timedelta(minutes=first), dt.timedelta(minutes=resolution)


def initial_level(priority: str) -> int:
    return URGENT_MIN_LEVEL if priority == Priority.URGENT else 1


def normalize_tags(tags: Iterable[str]) -> str:
    cleaned = sorted({t.strip().lower() for t in tags if t and t.strip()})
    value = ",".join(cleaned)
    if len(cleaned) > 20:
        raise InvalidInput("At most 20 tags.", field="tags")
    try:
        TAGS_VALIDATOR(value)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], field="tags") from None
    return value


def _clean_text(value: str, *, field: str, max_length: int, label: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"{label} must not be empty.", field=field)
    if "\x00" in value:
        raise InvalidInput(f"{label} must not contain NUL characters.", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{label} is longer than {max_length:,} characters.", field=field)
    return value


def clean_subject(value: str) -> str:
    """A subject on one line: CR, LF, tabs and runs of spaces become one space (a line break
    in a subject makes Django refuse every email header built from it)."""
    value = " ".join((value or "").split())
    return _clean_text(value, field="subject", max_length=200, label="Subject")


def _clean_email(value: str, *, field: str = "requester_email") -> str:
    value = (value or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise InvalidInput("Enter a valid email address.", field=field) from None
    return value


def _locked(ticket: Ticket | int) -> Ticket:
    pk = ticket.pk if isinstance(ticket, Ticket) else ticket
    try:
        return (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("account__user")
            .get(pk=pk)
        )
    except Ticket.DoesNotExist:
        raise NotFound("Ticket not found.") from None


def _save(ticket: Ticket, *, actor, reason: str, now: dt.datetime) -> None:
    ticket.updated_at = now
    ticket._history_user = actor if actor is not None and actor.is_authenticated else None
    ticket._change_reason = reason[:100]
    ticket.full_clean(validate_constraints=False)
    ticket.save()


def _on_commit_task(func: str, *args) -> None:
    transaction.on_commit(lambda: async_task(func, *args))


def _apply_status(ticket: Ticket, new: str, now: dt.datetime) -> None:
    """Set the status and what goes with it: timestamps and the SLA pause."""
    old = ticket.status
    if old == S.PENDING and new != S.PENDING and ticket.sla_paused_at is not None:
        paused = now - ticket.sla_paused_at
        if ticket.first_response_at is None:
            ticket.first_response_due_at += paused
        if ticket.resolved_at is None:
            ticket.resolution_due_at += paused
        ticket.sla_paused_at = None
    if new == S.PENDING:
        ticket.sla_paused_at = now
    if new == S.RESOLVED:
        ticket.resolved_at = now
    if new == S.CLOSED:
        ticket.closed_at = now
    if old == S.RESOLVED and new == S.OPEN:
        # Reopened: the resolution clock starts again.
        _first, resolution = sla_targets(ticket.priority)
        ticket.resolved_at = None
        ticket.resolution_due_at = now + resolution
        ticket.resolution_breach_escalated_at = None
    ticket.status = new


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS.get(current, ()):
        raise Conflict(
            f"A ticket cannot move from {S(current).label.lower()} to {S(new).label.lower()}.",
            code="invalid_transition",
        )


# --- tickets ----------------------------------------------------------------------------------


@transaction.atomic
def create_ticket(
    *,
    subject: str,
    description: str,
    channel: str,
    priority: str = Priority.NORMAL,
    tags: Iterable[str] = (),
    account: Account | None = None,
    requester_email: str = "",
    requester_name: str = "",
    actor=None,
    author_kind: str = TicketMessage.Author.REQUESTER,
    message_id: str = "",
    chat_session_id: str = "",
    follow_up_of: Ticket | None = None,
    acknowledge: bool = True,
) -> Ticket:
    """Open a ticket with its first message; due times come from the priority's SLA policy
    and urgent tickets start at L2. The requester is acknowledged unless `acknowledge` is
    False (inbound email from a stranger: no backscatter)."""
    subject = clean_subject(subject)
    description = _clean_text(
        description, field="description", max_length=MAX_BODY, label="Description"
    )
    if channel not in Channel.values:
        raise InvalidInput(f"Unknown channel {channel!r}.", field="channel")
    if priority not in Priority.values:
        raise InvalidInput(f"Unknown priority {priority!r}.", field="priority")
    if account is None and not requester_email:
        raise InvalidInput(
            "A ticket needs an account or a requester email.", field="requester_email"
        )
    if requester_email:
        requester_email = _clean_email(requester_email)
    elif account is not None:
        requester_email = (account.user.email or "").lower()
    now = timezone.now()
    first, resolution = sla_targets(priority)
    ticket = Ticket(
        account=account,
        requester_email=requester_email,
        requester_name=(requester_name or "").strip()[:200],
        channel=channel,
        subject=subject,
        priority=priority,
        status=S.NEW,
        escalation_level=initial_level(priority),
        tags=normalize_tags(tags),
        chat_session_id=chat_session_id,
        follow_up_of=follow_up_of,
        created_at=now,
        updated_at=now,
        first_response_due_at=now + first,
        resolution_due_at=now + resolution,
    )
    _save(ticket, actor=actor, reason=f"Opened via {Channel(channel).label}", now=now)
    TicketMessage.objects.create(
        ticket=ticket,
        author_kind=author_kind,
        author=actor if actor is not None and actor.is_authenticated else None,
        author_email=requester_email if author_kind == TicketMessage.Author.REQUESTER else "",
        body=description,
        internal=False,
        channel=channel,
        message_id=message_id,
        created_at=now,
    )
    telemetry.count_on_commit(telemetry.TICKETS_OPENED, channel)
    if acknowledge and author_kind == TicketMessage.Author.REQUESTER and channel != Channel.CHAT:
        # Tell the requester we have it, with the reference to quote (chat is answered live).
        _on_commit_task("support.tasks.send_acknowledgement", ticket.pk)
    return ticket


@transaction.atomic
def update_ticket_status(
    *, ticket: Ticket, status: str, notes: str = "", actor=None, by_customer: bool = False
) -> Ticket:
    """Move a ticket along the status table; notes are kept on the thread (an internal note
    for agents, a public message for the customer) and in the history row."""
    if status not in S.values:
        raise InvalidInput(f"Unknown status {status!r}.", field="status")
    notes = (notes or "").strip()
    if len(notes) > 10_000 or "\x00" in notes:
        raise InvalidInput("Notes must be text of at most 10,000 characters.", field="notes")
    ticket = _locked(ticket)
    check_transition(ticket.status, status)
    if by_customer and (ticket.status, status) not in CUSTOMER_MOVES:
        raise Conflict(
            "You can close your ticket or reopen a resolved one; agents make other changes.",
            code="invalid_transition",
        )
    old = ticket.status
    now = timezone.now()
    _apply_status(ticket, status, now)
    reason = f"Status {old} → {status}" + (f": {notes}" if notes else "")
    _save(ticket, actor=actor, reason=reason, now=now)
    if status == S.RESOLVED:
        _on_commit_task("support.tasks.send_resolution_notice", ticket.pk)
    if notes:
        TicketMessage.objects.create(
            ticket=ticket,
            author_kind=TicketMessage.Author.REQUESTER
            if by_customer
            else TicketMessage.Author.AGENT,
            author=actor if actor is not None and actor.is_authenticated else None,
            author_email=ticket.requester_email if by_customer else "",
            body=f"Status changed to {S(status).label.lower()}: {notes}",
            internal=not by_customer,
            channel=ticket.channel,
            created_at=now,
        )
    return ticket


@transaction.atomic
def escalate_ticket(*, ticket: Ticket, level: int, reason: str, actor=None) -> Escalation:
    """Move a ticket up to `level` (upward only, reason required) and notify that level."""
    reason = _clean_text(reason, field="reason", max_length=2000, label="Reason")
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= MAX_LEVEL:
        raise InvalidInput(f"Level must be 1 to {MAX_LEVEL}.", field="level")
    ticket = _locked(ticket)
    if not ticket.is_active:
        raise Conflict(
            f"A {ticket.get_status_display().lower()} ticket cannot be escalated.",
            code="ticket_inactive",
        )
    if level <= ticket.escalation_level:
        raise Conflict(
            f"Escalation goes upward only: the ticket is already at L{ticket.escalation_level}.",
            code="not_upward",
        )
    now = timezone.now()
    escalation = Escalation(
        ticket=ticket,
        from_level=ticket.escalation_level,
        to_level=level,
        reason=reason,
        escalated_by=actor if actor is not None and actor.is_authenticated else None,
        automatic=False,
        created_at=now,
    )
    escalation.full_clean()
    escalation.save()
    ticket.escalation_level = level
    _save(ticket, actor=actor, reason=f"Escalated to L{level}: {reason}", now=now)
    _on_commit_task("support.tasks.notify_escalation", escalation.id)
    telemetry.count_on_commit(telemetry.ESCALATIONS, "manual")
    return escalation


def _check_assignee(assignee) -> None:
    if assignee is None:
        return
    if not (
        assignee.is_active and assignee.is_staff and assignee.has_perm("support.change_ticket")
    ):
        raise InvalidInput("The assignee must be an active support agent.", field="assignee_id")


@transaction.atomic
def assign_ticket(*, ticket: Ticket, assignee, actor=None) -> Ticket:
    """Give the ticket to an agent (None unassigns)."""
    _check_assignee(assignee)
    ticket = _locked(ticket)
    if ticket.status == S.CLOSED:
        raise Conflict("A closed ticket cannot be assigned.", code="ticket_inactive")
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    ticket.assignee = assignee
    who = assignee.get_username() if assignee else "nobody"
    _save(ticket, actor=actor, reason=f"Assigned to {who}", now=timezone.now())
    return ticket


@transaction.atomic
def update_ticket_details(
    *,
    ticket: Ticket,
    subject: str | None = None,
    priority: str | None = None,
    tags: Iterable[str] | None = None,
    actor=None,
) -> Ticket:
    """Edit subject, priority or tags. A new priority shifts the unmet SLA due times by the
    difference between the targets; raising a ticket to urgent escalates it to L2."""
    ticket = _locked(ticket)
    changes = []
    now = timezone.now()
    if subject is not None:
        subject = clean_subject(subject)
        if subject != ticket.subject:
            ticket.subject = subject
            changes.append("subject")
    if tags is not None:
        value = normalize_tags(tags)
        if value != ticket.tags:
            ticket.tags = value
            changes.append("tags")
    escalate_to_urgent = False
    if priority is not None and priority != ticket.priority:
        if priority not in Priority.values:
            raise InvalidInput(f"Unknown priority {priority!r}.", field="priority")
        old_first, old_resolution = sla_targets(ticket.priority)
        new_first, new_resolution = sla_targets(priority)
        if ticket.first_response_at is None:
            ticket.first_response_due_at += new_first - old_first
        if ticket.resolved_at is None:
            ticket.resolution_due_at += new_resolution - old_resolution
        ticket.priority = priority
        changes.append(f"priority → {priority}")
        escalate_to_urgent = (
            priority == Priority.URGENT
            and ticket.is_active
            and ticket.escalation_level < URGENT_MIN_LEVEL
        )
    if not changes:
        return ticket
    _save(ticket, actor=actor, reason="Changed " + ", ".join(changes), now=now)
    if escalate_to_urgent:
        escalate_ticket(
            ticket=ticket,
            level=URGENT_MIN_LEVEL,
            actor=actor,
            reason="Priority raised to urgent: urgent tickets are handled from L2.",
        )
        ticket.refresh_from_db()
    return ticket


@transaction.atomic
def add_message(
    *,
    ticket: Ticket,
    body: str,
    author_kind: str,
    author=None,
    author_email: str = "",
    internal: bool = False,
    channel: str | None = None,
    message_id: str = "",
) -> TicketMessage:
    """Append to a thread. An agent's first public reply sets first_response_at and the
    requester is emailed every public agent reply; a requester's message reopens a pending
    or resolved ticket. Internal notes are for agents only and are never emailed."""
    body = _clean_text(body, field="body", max_length=MAX_BODY, label="Message")
    if author_kind not in TicketMessage.Author.values:
        raise InvalidInput("Unknown author.", field="author_kind")
    if internal and author_kind == TicketMessage.Author.REQUESTER:
        raise InvalidInput("Only agents can write internal notes.", field="internal")
    ticket = _locked(ticket)
    if ticket.status == S.CLOSED:
        raise Conflict("This ticket is closed; open a new ticket instead.", code="ticket_closed")
    now = timezone.now()
    message = TicketMessage(
        ticket=ticket,
        author_kind=author_kind,
        author=author if author is not None and author.is_authenticated else None,
        author_email=(
            author_email
            or (ticket.requester_email if author_kind == TicketMessage.Author.REQUESTER else "")
        )[:254],
        body=body,
        internal=internal,
        channel=channel or ticket.channel,
        message_id=message_id,
        created_at=now,
    )
    message.save()
    reason = ""
    if author_kind == TicketMessage.Author.AGENT and not internal:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
            reason = "First response"
        if ticket.status == S.NEW:
            _apply_status(ticket, S.OPEN, now)
            reason = (reason + "; " if reason else "") + "Status new → open"
        _on_commit_task("support.tasks.send_reply_email", message.id)
    elif author_kind == TicketMessage.Author.REQUESTER and ticket.status in (S.PENDING, S.RESOLVED):
        old = ticket.status
        _apply_status(ticket, S.OPEN, now)
        reason = f"Status {old} → open: customer replied"
    if reason:
        _save(ticket, actor=author, reason=reason, now=now)
    else:
        ticket.updated_at = now
        ticket.save_without_historical_record(update_fields=["updated_at"])
    return message


@transaction.atomic
def merge_tickets(*, source: Ticket, target: Ticket, actor=None) -> Ticket:
    """Fold a duplicate into another ticket of the same requester: its messages move to the
    target's thread and the duplicate is closed, pointing at the target."""
    if source.pk == target.pk:
        raise InvalidInput("A ticket cannot be merged into itself.", field="into")
    first, second = sorted([source.pk, target.pk])
    locked = {t.pk: t for t in (_locked(first), _locked(second))}
    source, target = locked[source.pk], locked[target.pk]
    same_requester = (source.account_id is not None and source.account_id == target.account_id) or (
        source.account_id is None
        and target.account_id is None
        and source.requester_email.lower() == target.requester_email.lower()
    )
    if not same_requester:
        raise Conflict(
            "Only tickets of the same requester can be merged.", code="different_requester"
        )
    for ticket in (source, target):
        if ticket.status == S.CLOSED:
            raise Conflict(
                f"{ticket.reference} is closed and cannot be merged.", code="ticket_closed"
            )
    now = timezone.now()
    moved = TicketMessage.objects.filter(ticket=source).update(ticket=target)
    TicketMessage.objects.create(
        ticket=target,
        author_kind=TicketMessage.Author.SYSTEM,
        internal=True,
        author=actor if actor is not None and actor.is_authenticated else None,
        body=f"Merged {source.reference} into this ticket ({moved} message(s) moved).",
        channel=target.channel,
        created_at=now,
    )
    if target.first_response_at is None and source.first_response_at is not None:
        target.first_response_at = source.first_response_at
    _save(target, actor=actor, reason=f"Merged {source.reference} into this ticket", now=now)
    _apply_status(source, S.CLOSED, now)
    source.merged_into = target
    _save(source, actor=actor, reason=f"Merged into {target.reference}", now=now)
    return target


@transaction.atomic
def rate_ticket(*, ticket: Ticket, rating: int, comment: str = "") -> CSATRating:
    """The requester's CSAT rating, once, after the ticket is resolved or closed."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise InvalidInput("Rating must be 1 to 5.", field="rating")
    comment = (comment or "").strip()
    if len(comment) > 2000 or "\x00" in comment:
        raise InvalidInput("The comment must be text of at most 2,000 characters.", field="comment")
    ticket = _locked(ticket)
    if ticket.status not in (S.RESOLVED, S.CLOSED) or ticket.merged_into_id is not None:
        raise Conflict("A ticket can be rated once it is resolved.", code="not_resolved")
    if CSATRating.objects.filter(ticket=ticket).exists():
        raise Conflict("This ticket has already been rated.", code="already_rated")
    csat = CSATRating(ticket=ticket, rating=rating, comment=comment)
    csat.full_clean(validate_constraints=False)
    csat.save()
    return csat


# --- channels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatResult:
    ticket: Ticket
    message: TicketMessage
    created: bool


def post_chat_message(
    *, account: Account, session_id: str, body: str, author, subject: str = ""
) -> ChatResult:
    """A customer's chat message: the first message of a session opens a ticket, the
    following ones append to its thread."""
    session_id = _clean_text(session_id, field="session_id", max_length=64, label="Session id")
    body = _clean_text(body, field="body", max_length=MAX_BODY, label="Message")
    for attempt in range(2):
        existing = Ticket.objects.filter(account=account, chat_session_id=session_id).first()
        if existing is not None:
            if existing.merged_into_id is not None:
                existing = _follow_merges(existing)
            message = add_message(
                ticket=existing,
                body=body,
                author=author,
                author_kind=TicketMessage.Author.REQUESTER,
                channel=Channel.CHAT,
            )
            return ChatResult(ticket=existing, message=message, created=False)
        try:
            with transaction.atomic():
                ticket = create_ticket(
                    subject=(subject or _subject_from(body)),
                    description=body,
                    channel=Channel.CHAT,
                    account=account,
                    actor=author,
                    chat_session_id=session_id,
                )
        except IntegrityError:
            if attempt:
                raise
            continue  # another request opened the session's ticket first
        return ChatResult(ticket=ticket, message=ticket.messages.get(), created=True)
    raise Conflict("The chat session could not be opened; retry.", code="retry")


def _subject_from(body: str) -> str:
    line = body.strip().splitlines()[0] if body.strip() else "Chat"
    return (line[:77] + "…") if len(line) > 80 else line


def _follow_merges(ticket: Ticket) -> Ticket:
    for _ in range(MAX_MERGE_HOPS):
        if ticket.merged_into_id is None:
            break
        ticket = Ticket.objects.select_related("account__user").get(pk=ticket.merged_into_id)
    return ticket


@dataclass(frozen=True)
class IngestResult:
    result: str  # "created", "appended", "held", "queued", "duplicate" or "ignored"
    ticket: Ticket | None
    detail: str = ""


def _sender_matches(ticket: Ticket, sender: str) -> bool:
    emails = {ticket.requester_email.lower()}
    if ticket.account is not None:
        emails.add((ticket.account.user.email or "").lower())
    return sender in emails


def _thread_ticket(parsed: inbound.ParsedEmail) -> Ticket | None:
    """The ticket an email answers: the reference in its subject, else its In-Reply-To /
    References headers; only when the sender is that ticket's requester."""
    candidates = []
    ticket_id = parse_reference(parsed.subject)
    if ticket_id is not None:
        candidates.append(
            Ticket.objects.select_related("account__user").filter(pk=ticket_id).first()
        )
    if parsed.thread_ids:
        found = (
            TicketMessage.objects.filter(message_id__in=parsed.thread_ids)
            .select_related("ticket__account__user")
            .order_by("-created_at")
            .first()
        )
        if found is not None:
            candidates.append(found.ticket)
    for ticket in candidates:
        if ticket is not None and _sender_matches(ticket, parsed.from_email):
            return _follow_merges(ticket)
    return None


def _known_account(address: str) -> Account | None:
    user = (
        get_user_model()
        .objects.filter(email__iexact=address, account__isnull=False, is_active=True)
        .select_related("account__user")
        .order_by("id")
        .first()
    )
    return user.account if user is not None else None


def _stored_message_id(message_id: str) -> IngestResult | None:
    """The duplicate result when a Message-ID is already on a thread or held for review."""
    duplicate = _stored_message_id_on_thread(message_id)
    if (
        duplicate is None
        and message_id
        and HeldEmail.objects.filter(message_id=message_id).exists()
    ):
        return IngestResult("duplicate", None, "Message-ID already held for review")
    return duplicate


def ingest_email(*, raw: bytes) -> IngestResult:
    """Store an inbound email: a reply joins its ticket, anything else opens one; the same
    Message-ID is stored once; auto-replies and bounces open nothing. An email whose sender
    our MTA did not authenticate is held for an agent's review instead (see HeldEmail)."""
    try:
        parsed = inbound.parse_email(
            raw,
            authserv_id=settings.INBOUND_AUTHSERV_ID,
            max_parts=settings.INBOUND_MAX_PARTS,
            max_depth=settings.INBOUND_MAX_DEPTH,
        )
    except InvalidInput as exc:
        telemetry.INBOUND_REJECTED.labels(exc.code).inc()
        raise
    if parsed.automatic:
        logger.info("Inbound email from %s ignored: %s", parsed.from_email, parsed.automatic)
        return IngestResult("ignored", None, parsed.automatic)
    duplicate = _stored_message_id(parsed.message_id)
    if duplicate is not None:
        return duplicate
    try:
        if not parsed.sender.verified:
            return _hold_email(parsed)
        return _deliver_email(parsed)
    except IntegrityError:
        # The same Message-ID arrived concurrently and the other request stored it.
        duplicate = _stored_message_id(parsed.message_id)
        if duplicate is None:
            raise
        return duplicate


def queue_email(*, raw: bytes) -> IngestResult:
    """Keep a large inbound email for a worker to parse (see QueuedEmail). Its MIME
    structure is checked now, by the cheap scan, so a hostile message is still refused
    with 422 at once."""
    if not raw or not raw.strip():
        raise InvalidInput("The message is empty.", field="body")
    try:
        inbound.check_structure(
            raw, max_parts=settings.INBOUND_MAX_PARTS, max_depth=settings.INBOUND_MAX_DEPTH
        )
    except InvalidInput as exc:
        telemetry.INBOUND_REJECTED.labels(exc.code).inc()
        raise
    with transaction.atomic():
        queued = QueuedEmail.objects.create(raw=raw)
        _on_commit_task("support.tasks.ingest_queued_email", queued.pk)
    return IngestResult("queued", None, f"parsed in the background (#{queued.pk})")


def ingest_queued_email(*, queued_id: int) -> bool:
    """Parse and store one queued email, once; False when it was already processed."""
    with transaction.atomic():
        queued = QueuedEmail.objects.select_for_update().filter(pk=queued_id).first()
        if queued is None or queued.processed_at is not None:
            return False
        try:
            result = ingest_email(raw=bytes(queued.raw))
            queued.result, queued.detail, queued.ticket = (
                result.result,
                result.detail[:300],
                result.ticket,
            )
        except InvalidInput as exc:
            logger.warning("Queued inbound email #%s refused: %s", queued.pk, exc.detail)
            queued.result, queued.detail = "refused", exc.detail[:300]
        queued.raw = b""
        queued.processed_at = timezone.now()
        queued.save()
    return True


def _hold_email(parsed: inbound.ParsedEmail) -> IngestResult:
    with transaction.atomic():
        held = HeldEmail(
            from_email=parsed.from_email,
            from_name=parsed.from_name,
            subject=clean_subject(parsed.subject),
            body=parsed.body or "(empty message)",
            message_id=parsed.message_id,
            thread_ids=" ".join(parsed.thread_ids),
            reason=parsed.sender.reason[:200],
        )
        held._change_reason = "Held: unverified sender"
        held.full_clean(validate_constraints=False)
        held.save()
        telemetry.count_on_commit(telemetry.INBOUND_HELD)
    logger.warning(
        "Inbound email from %s held for review: %s", parsed.from_email, parsed.sender.reason
    )
    return IngestResult("held", None, f"unverified sender: {parsed.sender.reason}")


def _has_ticket(address: str) -> bool:
    return Ticket.objects.filter(requester_email=address).exists()


@transaction.atomic
def _deliver_email(parsed: inbound.ParsedEmail) -> IngestResult:
    """Thread or open a ticket for an email whose sender is verified (by the MTA or by an
    agent). Only a sender with an account or an earlier ticket is acknowledged."""
    body = parsed.body or "(empty message)"
    ticket = _thread_ticket(parsed)
    if ticket is not None and ticket.status != S.CLOSED:
        add_message(
            ticket=ticket,
            body=body,
            author_kind=TicketMessage.Author.REQUESTER,
            author_email=parsed.from_email,
            channel=Channel.EMAIL,
            message_id=parsed.message_id,
        )
        return IngestResult("appended", ticket)
    account = _known_account(parsed.from_email)
    created = create_ticket(
        subject=parsed.subject,
        description=body,
        channel=Channel.EMAIL,
        account=account,
        requester_email=parsed.from_email,
        requester_name=parsed.from_name,
        message_id=parsed.message_id,
        follow_up_of=ticket,
        acknowledge=account is not None or _has_ticket(parsed.from_email),
    )
    return IngestResult("created", created, f"follow-up of {ticket.reference}" if ticket else "")


def _locked_held(held: HeldEmail | int) -> HeldEmail:
    pk = held.pk if isinstance(held, HeldEmail) else held
    try:
        return HeldEmail.objects.select_for_update().get(pk=pk)
    except HeldEmail.DoesNotExist:
        raise NotFound("Held email not found.") from None


def _review(held: HeldEmail, *, status: str, actor, reason: str) -> None:
    held.status = status
    held.reviewed_at = timezone.now()
    held.reviewed_by = actor if actor is not None and actor.is_authenticated else None
    held._history_user = held.reviewed_by
    held._change_reason = reason[:100]
    held.save()


def _check_held(held: HeldEmail) -> None:
    if held.status != HeldEmail.Status.HELD:
        raise Conflict(
            f"This email was already {held.get_status_display().lower()}.", code="not_held"
        )


@transaction.atomic
def accept_held_email(*, held: HeldEmail | int, actor=None) -> IngestResult:
    """An agent vouches for a held email's sender: the email is threaded (or opens a
    ticket) as a verified one would be, and acknowledged by the same rule."""
    held = _locked_held(held)
    _check_held(held)
    duplicate = _stored_message_id_on_thread(held.message_id)
    if duplicate is not None:
        result = duplicate
    else:
        thread_ids = held.thread_ids.split()
        parsed = inbound.ParsedEmail(
            message_id=held.message_id,
            from_email=held.from_email,
            from_name=held.from_name,
            subject=held.subject,
            body=held.body,
            references=list(reversed(thread_ids)),
            sender=inbound.SenderCheck(True, "accepted by an agent"),
        )
        result = _deliver_email(parsed)
    held.ticket = result.ticket
    _review(held, status=HeldEmail.Status.ACCEPTED, actor=actor, reason="Sender accepted")
    return result


def _stored_message_id_on_thread(message_id: str) -> IngestResult | None:
    if not message_id:
        return None
    existing = TicketMessage.objects.filter(message_id=message_id).select_related("ticket").first()
    if existing is None:
        return None
    return IngestResult("duplicate", existing.ticket, "Message-ID already stored")


@transaction.atomic
def discard_held_email(*, held: HeldEmail | int, actor=None) -> HeldEmail:
    """An agent rejects a held email: it stays in the review history, on no ticket."""
    held = _locked_held(held)
    _check_held(held)
    _review(held, status=HeldEmail.Status.DISCARDED, actor=actor, reason="Discarded")
    return held


# --- SLA breach sweep -------------------------------------------------------------------------


def _history_columns() -> list[str]:
    historical = Ticket.history.model
    own = {"history_id", "history_date", "history_change_reason", "history_type", "history_user"}
    return [f.column for f in historical._meta.concrete_fields if f.name not in own]


def _db_time(value: dt.datetime):
    """A datetime as the backend stores it, for raw SQL parameters."""
    return connection.ops.adapt_datetimefield_value(value)


def insert_history_rows(
    *, where_sql: str, params: list, reason: str, user_id: int | None, now: dt.datetime
) -> int:
    """History rows for tickets changed by a set-based UPDATE, written by one INSERT … SELECT
    (simple-history does not see QuerySet.update())."""
    historical = Ticket.history.model
    columns = _history_columns()
    qn = connection.ops.quote_name
    cols = ", ".join(qn(c) for c in columns)
    sql = (
        f"INSERT INTO {qn(historical._meta.db_table)} ({cols}, history_date, "  # noqa: S608
        f"history_change_reason, history_type, history_user_id) "
        f"SELECT {', '.join('t.' + qn(c) for c in columns)}, %s, %s, '~', %s "
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
    _on_commit_task("support.tasks.notify_automatic_escalations")
    telemetry.count_on_commit(telemetry.ESCALATIONS, "automatic", amount=count)
    return count


def ensure_sla_policies() -> None:
    """One SLA policy per priority; existing (possibly edited) policies are left alone."""
    for priority, (first, resolution) in DEFAULT_TARGET_MINUTES.items():
        SLAPolicy.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first, "resolution_minutes": resolution},
        )
