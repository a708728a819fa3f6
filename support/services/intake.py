"""Tickets arriving by channel: chat sessions and inbound email (threading, the Message-ID
dedupe, the background queue for large mail, and the review queue of mail from unverified
senders)."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from opsplatform import telemetry
from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Account
from opsplatform.validation import clean_text
from support import inbound, replies
from support.attachments import clean_filename
from support.models import (
    Channel,
    HeldEmail,
    QueuedEmail,
    Ticket,
    TicketMessage,
    parse_reference,
)
from support.services.attachments import screen_files
from support.services.common import MAX_BODY, acting_user, clean_subject, on_commit_task
from support.services.tickets import add_message, create_ticket

logger = logging.getLogger(__name__)
MAX_MERGE_HOPS = 5


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
    session_id = clean_text(session_id, field="session_id", max_length=64, label="Session id")
    body = clean_text(body, field="body", max_length=MAX_BODY, label="Message")
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
        on_commit_task("support.tasks.ingest_queued_email", queued.pk)
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
            body=_held_body(parsed),
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


def _held_body(parsed: inbound.ParsedEmail) -> str:
    """A held email keeps its text; its files are not stored for an unverified sender."""
    notes = [
        f"[attachment {clean_filename(f.filename)} not stored: the sender was not verified]"
        for f in parsed.attachments
    ]
    return "\n\n".join(part for part in [parsed.body, *notes] if part) or "(empty message)"


def _has_ticket(address: str) -> bool:
    return Ticket.objects.filter(requester_email=address).exists()


@transaction.atomic
def _deliver_email(parsed: inbound.ParsedEmail) -> IngestResult:
    """Thread or open a ticket for an email whose sender is verified (by the MTA or by an
    agent). Only a sender with an account or an earlier ticket is acknowledged. The stored
    text is the reply without quoted history or signature (the whole email is kept beside
    it); attachments that pass the checks are stored, the others noted in the message."""
    files, notes = screen_files(parsed.attachments)
    split = replies.split_reply(parsed.body or "")
    body = "\n\n".join(part for part in [split.text.strip(), *notes] if part) or ("(empty message)")
    ticket = _thread_ticket(parsed)
    if ticket is not None and ticket.status != Ticket.Status.CLOSED:
        add_message(
            ticket=ticket,
            body=body,
            author_kind=TicketMessage.Author.REQUESTER,
            author_email=parsed.from_email,
            channel=Channel.EMAIL,
            message_id=parsed.message_id,
            full_body=split.full,
            files=files,
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
        full_body=split.full,
        files=files,
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
    held.reviewed_by = acting_user(actor)
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
