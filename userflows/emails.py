"""Customer emails of the self-serve flows, rendered from text templates and sent through
django.core.mail after the transaction that caused them commits."""

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string


def build(template: str, *, to: str, subject: str, context: dict) -> EmailMessage | None:
    if not to:
        return None
    body = render_to_string(
        f"userflows/email/{template}.txt", {**context, "site_url": settings.SITE_URL}
    )
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])


def send_on_commit(messages: list[EmailMessage | None]) -> None:
    """Send once the surrounding transaction commits (never for a rolled-back change)."""
    wanted = [m for m in messages if m is not None]
    if wanted:
        transaction.on_commit(lambda: get_connection().send_messages(wanted))


def send_now(messages: list[EmailMessage | None]) -> None:
    wanted = [m for m in messages if m is not None]
    if wanted:
        get_connection().send_messages(wanted)
