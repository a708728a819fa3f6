"""Writes to tickets: open, move along the status machine, escalate, assign, edit, thread,
merge and rate, and the agent's ticket page save that combines several of them.

Every status move goes through `opsplatform.transitions.transition` with the table declared
on `Ticket.STATUS_MACHINE` (409 `invalid_transition` when it is not allowed); what is special
to support stays here around it: the moves a customer may make and the SLA clocks.
Notifications are queued with `transaction.on_commit`, so nothing is sent for a write that
rolls back.
"""

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from django.db import transaction
from django.utils import timezone

from opsplatform import telemetry
from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Account
from opsplatform.transitions import transition
from opsplatform.validation import clean_text, strip_nul
from support.attachments import IncomingFile
from support.models import (
    MAX_LEVEL,
    Attachment,
    Channel,
    CSATRating,
    Escalation,
    Priority,
    Ticket,
    TicketMessage,
)
from support.services.attachments import store_attachments
from support.services.common import (
    MAX_BODY,
    acting_user,
    agent_display_name,
    clean_email,
    clean_subject,
    locked_ticket,
    normalize_tags,
    on_commit_task,
    save_ticket,
)
from support.services.sla import URGENT_MIN_LEVEL, clock_changes, initial_level, sla_targets

Status = Ticket.Status
# The moves a customer may make on their own ticket (within the table): close it, or reopen
# a resolved one.
CUSTOMER_MOVES = frozenset(
    {(current, to) for current, to in Ticket.STATUS_MACHINE.pairs() if to == Status.CLOSED}
    | {(Status.RESOLVED, Status.OPEN)}
)


def move_status(
    ticket: Ticket, to: str, *, actor, reason: str, now: dt.datetime, **changes
) -> Ticket:
    """One move of a ticket locked by the caller: the status machine checks it, sets the status
    and its timestamp and writes the history row; the SLA clocks move with it."""
    ticket._history_user = acting_user(actor)  # None stays None (a system move)
    return transition(
        ticket,
        to,
        actor=actor,
        reason=reason,
        now=now,
        lock=False,
        updated_at=now,
        **clock_changes(ticket, to, now),
        **changes,
    )


def _lock_open_account(account: Account) -> Account:
    """The account, locked until this ticket commits. An account deletion holds the same
    row lock while it erases the account's tickets: a ticket arriving meanwhile waits for it
    and is then refused (the deletion closed the owner's login), instead of being written
    after the erasure ran and left behind."""
    # The same rows, the same way, as the deletion and an export request lock them (account
    # and owner together): one lock order, so the three never deadlock each other.
    locked = (
        Account.objects.select_for_update().select_related("user").filter(pk=account.pk).first()
    )
    if locked is None or not locked.user.is_active:
        raise NotFound("Account not found.")
    return locked


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
    full_body: str = "",
    files: Sequence[IncomingFile] = (),
) -> Ticket:
    """Open a ticket with its first message; due times come from the priority's SLA policy
    and urgent tickets start at L2. The requester is acknowledged unless `acknowledge` is
    False (inbound email from a stranger: no backscatter)."""
    subject = clean_subject(subject)
    description = clean_text(
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
    if account is not None:
        account = _lock_open_account(account)
    if requester_email:
        requester_email = clean_email(requester_email)
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
        status=Status.NEW,
        escalation_level=initial_level(priority),
        tags=normalize_tags(tags),
        chat_session_id=chat_session_id,
        follow_up_of=follow_up_of,
        created_at=now,
        updated_at=now,
        first_response_due_at=now + first,
        resolution_due_at=now + resolution,
    )
    save_ticket(ticket, actor=actor, reason=f"Opened via {Channel(channel).label}", now=now)
    first_message = TicketMessage.objects.create(
        ticket=ticket,
        author_kind=author_kind,
        author=acting_user(actor),
        author_email=requester_email if author_kind == TicketMessage.Author.REQUESTER else "",
        body=description,
        full_body=strip_nul(full_body)[:MAX_BODY],
        internal=False,
        channel=channel,
        message_id=message_id,
        created_at=now,
    )
    if files:
        store_attachments(ticket=ticket, message=first_message, files=files)
    telemetry.count_on_commit(telemetry.TICKETS_OPENED, channel)
    if acknowledge and author_kind == TicketMessage.Author.REQUESTER and channel != Channel.CHAT:
        # Tell the requester we have it, with the reference to quote (chat is answered live).
        on_commit_task("support.tasks.send_acknowledgement", ticket.pk)
    return ticket


@transaction.atomic
def update_ticket_status(
    *, ticket: Ticket, status: str, notes: str = "", actor=None, by_customer: bool = False
) -> Ticket:
    """Move a ticket along the status table; notes are kept on the thread (an internal note
    for agents, a public message for the customer) and in the history row."""
    if status not in Status.values:
        raise InvalidInput(f"Unknown status {status!r}.", field="status")
    notes = clean_text(notes, field="notes", label="Notes", max_length=10_000, required=False)
    ticket = locked_ticket(ticket)
    Ticket.STATUS_MACHINE.check(ticket, status)
    if by_customer and (ticket.status, status) not in CUSTOMER_MOVES:
        raise Conflict(
            "You can close your ticket or reopen a resolved one; agents make other changes.",
            code="invalid_transition",
        )
    reason = f"Status {ticket.status} → {status}" + (f": {notes}" if notes else "")
    now = timezone.now()
    ticket = move_status(ticket, status, actor=actor, reason=reason, now=now)
    if status == Status.RESOLVED:
        on_commit_task("support.tasks.send_resolution_notice", ticket.pk)
    if notes:
        TicketMessage.objects.create(
            ticket=ticket,
            author_kind=TicketMessage.Author.REQUESTER
            if by_customer
            else TicketMessage.Author.AGENT,
            author=acting_user(actor),
            author_email=ticket.requester_email if by_customer else "",
            body=f"Status changed to {Status(status).label.lower()}: {notes}",
            internal=not by_customer,
            channel=ticket.channel,
            created_at=now,
        )
    return ticket


@transaction.atomic
def escalate_ticket(*, ticket: Ticket, level: int, reason: str, actor=None) -> Escalation:
    """Move a ticket up to `level` (upward only, reason required) and notify that level."""
    reason = clean_text(reason, field="reason", max_length=2000, label="Reason")
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= MAX_LEVEL:
        raise InvalidInput(f"Level must be 1 to {MAX_LEVEL}.", field="level")
    ticket = locked_ticket(ticket)
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
        escalated_by=acting_user(actor),
        automatic=False,
        created_at=now,
    )
    escalation.full_clean()
    escalation.save()
    ticket.escalation_level = level
    save_ticket(ticket, actor=actor, reason=f"Escalated to L{level}: {reason}", now=now)
    on_commit_task("support.tasks.notify_escalation", escalation.id)
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
    ticket = locked_ticket(ticket)
    if ticket.status == Status.CLOSED:
        raise Conflict("A closed ticket cannot be assigned.", code="ticket_inactive")
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    ticket.assignee = assignee
    who = assignee.get_username() if assignee else "nobody"
    save_ticket(ticket, actor=actor, reason=f"Assigned to {who}", now=timezone.now())
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
    ticket = locked_ticket(ticket)
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
    save_ticket(ticket, actor=actor, reason="Changed " + ", ".join(changes), now=now)
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
    full_body: str = "",
    files: Sequence[IncomingFile] = (),
) -> TicketMessage:
    """Append to a thread. An agent's first public reply sets first_response_at and the
    requester is emailed every public agent reply, signed with the agent's display name; a
    requester's message reopens a pending or resolved ticket. Internal notes are for agents
    only and are never emailed. `full_body` keeps an email reply as received when `body` is
    only its new text."""
    body = clean_text(body, field="body", max_length=MAX_BODY, label="Message")
    signer = acting_user(author)
    signature = ""
    if author_kind == TicketMessage.Author.AGENT and not internal and signer is not None:
        signature = agent_display_name(signer)[:200]
    if author_kind not in TicketMessage.Author.values:
        raise InvalidInput("Unknown author.", field="author_kind")
    if internal and author_kind == TicketMessage.Author.REQUESTER:
        raise InvalidInput("Only agents can write internal notes.", field="internal")
    ticket = locked_ticket(ticket)
    if ticket.status == Status.CLOSED:
        raise Conflict("This ticket is closed; open a new ticket instead.", code="ticket_closed")
    now = timezone.now()
    message = TicketMessage(
        ticket=ticket,
        author_kind=author_kind,
        author=acting_user(author),
        author_email=(
            author_email
            or (ticket.requester_email if author_kind == TicketMessage.Author.REQUESTER else "")
        )[:254],
        body=body,
        signature=signature,
        full_body=strip_nul(full_body)[:MAX_BODY],
        internal=internal,
        channel=channel or ticket.channel,
        message_id=message_id,
        created_at=now,
    )
    message.save()
    if files:
        store_attachments(ticket=ticket, message=message, files=files)
    reason, to, changes = "", None, {}
    if author_kind == TicketMessage.Author.AGENT and not internal:
        if ticket.first_response_at is None:
            changes["first_response_at"] = now
            reason = "First response"
        if ticket.status == Status.NEW:
            to = Status.OPEN
            reason = (reason + "; " if reason else "") + "Status new → open"
        on_commit_task("support.tasks.send_reply_email", message.id)
    elif author_kind == TicketMessage.Author.REQUESTER and ticket.status in (
        Status.PENDING,
        Status.RESOLVED,
    ):
        to = Status.OPEN
        reason = f"Status {ticket.status} → open: customer replied"
    if to is not None:
        move_status(ticket, to, actor=author, reason=reason, now=now, **changes)
    elif changes:
        for name, value in changes.items():
            setattr(ticket, name, value)
        save_ticket(ticket, actor=author, reason=reason, now=now)
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
    locked = {t.pk: t for t in (locked_ticket(first), locked_ticket(second))}
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
        if ticket.status == Status.CLOSED:
            raise Conflict(
                f"{ticket.reference} is closed and cannot be merged.", code="ticket_closed"
            )
    now = timezone.now()
    moved = TicketMessage.objects.filter(ticket=source).update(ticket=target)
    # Files go with their messages (rows without history: a set-based move is enough).
    Attachment.objects.filter(ticket=source).update(ticket=target)
    TicketMessage.objects.create(
        ticket=target,
        author_kind=TicketMessage.Author.SYSTEM,
        internal=True,
        author=acting_user(actor),
        body=f"Merged {source.reference} into this ticket ({moved} message(s) moved).",
        channel=target.channel,
        created_at=now,
    )
    if target.first_response_at is None and source.first_response_at is not None:
        target.first_response_at = source.first_response_at
    save_ticket(target, actor=actor, reason=f"Merged {source.reference} into this ticket", now=now)
    move_status(
        source,
        Status.CLOSED,
        actor=actor,
        reason=f"Merged into {target.reference}",
        now=now,
        merged_into=target,
    )
    return target


@transaction.atomic
def rate_ticket(*, ticket: Ticket, rating: int, comment: str = "") -> CSATRating:
    """The requester's CSAT rating, once, after the ticket is resolved or closed."""
    if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
        raise InvalidInput("Rating must be 1 to 5.", field="rating")
    comment = clean_text(
        comment, field="comment", label="The comment", max_length=2000, required=False
    )
    ticket = locked_ticket(ticket)
    if ticket.status not in (Status.RESOLVED, Status.CLOSED) or ticket.merged_into_id is not None:
        raise Conflict("A ticket can be rated once it is resolved.", code="not_resolved")
    if CSATRating.objects.filter(ticket=ticket).exists():
        raise Conflict("This ticket has already been rated.", code="already_rated")
    csat = CSATRating(ticket=ticket, rating=rating, comment=comment)
    csat.full_clean(validate_constraints=False)
    csat.save()
    return csat


TICKET_PAGE_FIELDS = frozenset(
    {"subject", "priority", "tags", "assignee", "internal_note", "reply", "status", "status_notes"}
)


@transaction.atomic
def update_ticket(*, ticket: Ticket, changes: Mapping, actor) -> Ticket:
    """The agent's ticket page save, all or nothing: edited details, the assignee, an internal
    note, a public reply and a status move (with its notes), in that order. `changes` holds
    only what the agent changed (`tags` as a comma-separated string, `assignee` a user or
    None); a status equal to the ticket's status by then (a first reply opens a new ticket)
    is no move. Any domain error rolls the whole save back."""
    unknown = set(changes) - TICKET_PAGE_FIELDS
    if unknown:
        raise ValueError(f"update_ticket: unknown changes {sorted(unknown)}")
    if changes.keys() & {"subject", "priority", "tags"}:
        update_ticket_details(
            ticket=ticket,
            actor=actor,
            subject=changes.get("subject"),
            priority=changes.get("priority"),
            tags=changes["tags"].split(",") if "tags" in changes else None,
        )
    if "assignee" in changes:
        assign_ticket(ticket=ticket, assignee=changes["assignee"], actor=actor)
    for field, internal in (("internal_note", True), ("reply", False)):
        if changes.get(field):
            add_message(
                ticket=ticket,
                body=changes[field],
                author=actor,
                author_kind=TicketMessage.Author.AGENT,
                internal=internal,
            )
    status = changes.get("status")
    if status and Ticket.objects.only("status").get(pk=ticket.pk).status != status:
        update_ticket_status(
            ticket=ticket, status=status, notes=changes.get("status_notes") or "", actor=actor
        )
    return Ticket.objects.select_related("account__user").get(pk=ticket.pk)
