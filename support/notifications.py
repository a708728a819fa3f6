"""Outgoing support messages: escalation alerts to a level's agents (email and an optional
Slack-compatible webhook) and public replies to requesters. Each is safe to run twice."""

import json
import logging
import urllib.error
import urllib.request
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import dateformat, timezone

from opsplatform import telemetry, timezones
from support.models import Escalation, Ticket, TicketMessage

logger = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 5
DIGEST_SAMPLE = 20


def one_line(text: str, limit: int = 250) -> str:
    """Text safe for an email header: no CR/LF (Django refuses the header), one space."""
    return " ".join((text or "").split())[:limit]


def level_group(level: int) -> str:
    return f"support_l{level}"


def level_recipients(level: int) -> list[str]:
    """Email addresses of the active agents of a support level."""
    return list(
        get_user_model()
        .objects.filter(groups__name=level_group(level), is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )


def admin_ticket_url(ticket_id: int) -> str:
    return settings.SITE_URL + reverse("admin:support_ticket_change", args=[ticket_id])


def _notify_agents(subject: str, text: str, recipients: list[str]) -> None:
    # Machine-generated: agents' auto-responders must not answer it (RFC 3834).
    EmailMessage(
        subject=one_line(subject),
        body=text,
        from_email=settings.SUPPORT_FROM_EMAIL,
        to=recipients,
        headers={"Auto-Submitted": "auto-generated"},
    ).send()


def post_webhook(text: str) -> bool:
    """POST `{"text": ...}` to SUPPORT_WEBHOOK_URL when set. Failures are logged, never raised:
    an unreachable chat service must not stop an escalation."""
    url = getattr(settings, "SUPPORT_WEBHOOK_URL", "")
    if not url:
        return False
    if urlsplit(url).scheme not in ("http", "https"):
        logger.error("SUPPORT_WEBHOOK_URL must be an http(s) URL; not posting.")
        return False
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read(1024)
        return True
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("Support webhook POST failed: %s", exc)
        telemetry.NOTIFICATIONS_FAILED.labels("webhook").inc()
        return False


def notify_escalation(*, escalation_id: int) -> bool:
    """Tell the new level's agents about one escalation; False when already told."""
    with transaction.atomic():
        escalation = (
            Escalation.objects.select_for_update(of=("self",))
            .select_related("ticket", "escalated_by")
            .filter(pk=escalation_id)
            .first()
        )
        if escalation is None or escalation.notified_at is not None:
            return False
        ticket = escalation.ticket
        who = (
            "automatically (SLA breach)"
            if escalation.automatic
            else (escalation.escalated_by.get_username() if escalation.escalated_by else "an agent")
        )
        subject = (f"[{ticket.reference}] escalated to L{escalation.to_level}: {ticket.subject}")[
            :250
        ]
        text = (
            f"{ticket.reference} ({ticket.get_priority_display()}) was escalated from "
            f"L{escalation.from_level} to L{escalation.to_level} {who}.\n"
            f"Reason: {escalation.reason}\n{admin_ticket_url(ticket.id)}"
        )
        recipients = level_recipients(escalation.to_level)
        if recipients:
            _notify_agents(subject, text, recipients)
        escalation.notified_at = timezone.now()
        escalation.save(update_fields=["notified_at"])
    post_webhook(f"{subject}\n{text}")
    return True


def notify_automatic_escalations() -> int:
    """One digest per level for the SLA sweep's escalations not yet announced. The UPDATE
    claims them, so a concurrent run announces nothing twice."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Escalation.objects.filter(automatic=True, notified_at__isnull=True).update(
            notified_at=now
        )
        if not claimed:
            return 0
        mine = Escalation.objects.filter(automatic=True, notified_at=now)
        per_level = dict(mine.values_list("to_level").annotate(n=Count("id")).order_by())
        digests = []
        for level, count in sorted(per_level.items()):
            sample = list(
                mine.filter(to_level=level).select_related("ticket").order_by("id")[:DIGEST_SAMPLE]
            )
            lines = [f"- {e.ticket.reference} {e.ticket.subject} ({e.reason})" for e in sample]
            if count > len(sample):
                lines.append(f"… and {count - len(sample)} more.")
            subject = f"{count} ticket(s) escalated to L{level} for SLA breach"
            text = "\n".join(
                [
                    subject + ":",
                    *lines,
                    settings.SITE_URL
                    + reverse("admin:support_ticket_changelist")
                    + f"?escalation_level__exact={level}&breached=yes",
                ]
            )
            recipients = level_recipients(level)
            if recipients:
                _notify_agents(subject, text, recipients)
            digests.append(text)
    for text in digests:
        post_webhook(text)
    return claimed


def customer_ticket_url(reference: str) -> str:
    return settings.SITE_URL + reverse("support:ticket_detail", args=[reference])


def send_public_reply(*, message_id: int) -> bool:
    """Email an agent's public reply to the requester, threaded with the conversation;
    internal notes and already-sent replies are never (re)sent."""
    with transaction.atomic():
        message = (
            TicketMessage.objects.select_for_update(of=("self",))
            .select_related("ticket__account__user")
            .filter(pk=message_id)
            .first()
        )
        if (
            message is None
            or message.internal
            or message.emailed_at is not None
            or message.author_kind != TicketMessage.Author.AGENT
        ):
            return False
        ticket = message.ticket
        to = ticket.requester_email or (ticket.account.user.email if ticket.account else "")
        if not to:
            return False
        last_inbound = (
            TicketMessage.objects.filter(ticket=ticket, internal=False)
            .exclude(message_id="")
            .exclude(pk=message.pk)
            .order_by("-created_at", "-id")
            .values_list("message_id", flat=True)
            .first()
        )
        own_id = message.message_id or make_msgid(domain=_mail_domain())
        headers = {"Message-ID": own_id}
        if last_inbound:
            headers.update({"In-Reply-To": last_inbound, "References": last_inbound})
        link = (
            f"\n\nView your ticket: {customer_ticket_url(ticket.reference)}"
            if ticket.account_id
            else ""
        )
        EmailMessage(
            subject=one_line(f"[{ticket.reference}] Re: {ticket.subject}"),
            body=(
                f"{message.signed_body}{link}\n\nReply to this email to answer; keep "
                f"{ticket.reference} in the subject."
            ),
            from_email=settings.SUPPORT_FROM_EMAIL,
            to=[to],
            headers=headers,
        ).send()
        message.message_id = own_id
        message.emailed_at = timezone.now()
        message.save(update_fields=["message_id", "emailed_at"])
    return True


def _locked_ticket(ticket_id: int) -> Ticket | None:
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("account__user")
        .filter(pk=ticket_id)
        .first()
    )


def _requester_address(ticket: Ticket) -> str:
    return ticket.requester_email or (ticket.account.user.email if ticket.account else "")


def _first_inbound_id(ticket: Ticket) -> str:
    return (
        TicketMessage.objects.filter(ticket=ticket, internal=False)
        .exclude(message_id="")
        .order_by("created_at", "id")
        .values_list("message_id", flat=True)
        .first()
        or ""
    )


def requester_time(ticket: Ticket, value) -> str:
    """A moment as the requester reads it: in their account's time zone (the site's for an
    email-only requester), with the zone's abbreviation."""
    with timezones.for_account(ticket.account):
        return dateformat.format(timezone.localtime(value), "M j, Y, H:i T")


def _send_to_requester(ticket: Ticket, *, to: str, subject: str, body: str) -> None:
    """An automatic message to the requester, threaded with their first email and marked
    Auto-Submitted so their auto-responder does not answer it (RFC 3834)."""
    headers = {"Message-ID": make_msgid(domain=_mail_domain()), "Auto-Submitted": "auto-replied"}
    first = _first_inbound_id(ticket)
    if first:
        headers.update({"In-Reply-To": first, "References": first})
    link = (
        f"\n\nFollow your ticket: {customer_ticket_url(ticket.reference)}"
        if ticket.account_id
        else ""
    )
    EmailMessage(
        subject=one_line(subject),
        body=f"{body}{link}\n\nReply to this email to add to it; keep {ticket.reference} in "
        "the subject.",
        from_email=settings.SUPPORT_FROM_EMAIL,
        to=[to],
        headers=headers,
    ).send()


def send_acknowledgement(*, ticket_id: int) -> bool:
    """Tell the requester their ticket was received and its reference; once per ticket."""
    with transaction.atomic():
        ticket = _locked_ticket(ticket_id)
        if ticket is None or ticket.acknowledged_at is not None:
            return False
        to = _requester_address(ticket)
        if not to:
            return False
        _send_to_requester(
            ticket,
            to=to,
            subject=f"[{ticket.reference}] We received your request: {ticket.subject}",
            body=(
                f"Thanks for contacting us. We received your request on "
                f"{requester_time(ticket, ticket.created_at)}; it is {ticket.reference} and "
                "an agent will answer you by email."
            ),
        )
        Ticket.objects.filter(pk=ticket.pk).update(acknowledged_at=timezone.now())
    return True


def send_resolution_notice(*, ticket_id: int) -> bool:
    """Tell the requester their ticket was resolved (and where to rate the help); once per
    resolution — a ticket reopened and resolved again is announced again."""
    with transaction.atomic():
        ticket = _locked_ticket(ticket_id)
        if (
            ticket is None
            or ticket.status != Ticket.Status.RESOLVED
            or ticket.resolved_at is None
            or (
                ticket.resolution_notified_at is not None
                and ticket.resolution_notified_at >= ticket.resolved_at
            )
        ):
            return False
        to = _requester_address(ticket)
        if not to:
            return False
        rate = " You can tell us how we did on the ticket page below." if ticket.account_id else ""
        _send_to_requester(
            ticket,
            to=to,
            subject=f"[{ticket.reference}] Resolved: {ticket.subject}",
            body=(
                f"We have marked {ticket.reference} as resolved.{rate} If something is still "
                "wrong, just reply and the ticket reopens."
            ),
        )
        Ticket.objects.filter(pk=ticket.pk).update(resolution_notified_at=timezone.now())
    return True


def _mail_domain() -> str:
    address = settings.SUPPORT_FROM_EMAIL
    domain = address.rsplit("@", 1)[-1].strip(" >") if "@" in address else "opsplatform.local"
    return domain or "opsplatform.local"
