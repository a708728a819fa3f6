"""Customer emails of the self-serve flows, rendered from text templates and sent through
django.core.mail after the transaction that caused them commits."""

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from opsplatform import timezones
from opsplatform.models import Account


def build(
    template: str, *, to: str, subject: str, context: dict, time_zone: str | None = None
) -> EmailMessage | None:
    """The mail rendered in the customer's time zone: `time_zone` when given (an account about
    to be erased), else the zone of the account in the context (`account`, or the account of
    the invoice, subscription or deletion it names)."""
    if not to:
        return None
    if time_zone is None:
        account = _account_in(context)
        time_zone = account.time_zone if account is not None else None
    with timezone.override(timezones.zone(time_zone)):
        body = render_to_string(
            f"userflows/email/{template}.txt", {**context, "site_url": settings.SITE_URL}
        )
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])


def _account_in(context: dict) -> Account | None:
    if isinstance(context.get("account"), Account):
        return context["account"]
    for value in context.values():
        account = getattr(value, "account", None)
        if isinstance(account, Account):
            return account
    return None


def receipt(invoice) -> EmailMessage | None:
    """The receipt after a successful charge, with the invoice as a PDF attachment."""
    from userflows.invoice_pdf import render_invoice_pdf

    to = invoice.bill_to_email or invoice.account.user.email
    message = build(
        "payment_receipt",
        to=to,
        subject=f"Receipt for invoice {invoice.number}",
        context={"invoice": invoice},
    )
    if message is not None:
        message.attach(
            f"invoice-{invoice.number}.pdf",
            render_invoice_pdf(invoice, seller_email=settings.DEFAULT_FROM_EMAIL),
            "application/pdf",
        )
    return message


def send_on_commit(messages: list[EmailMessage | None]) -> None:
    """Send once the surrounding transaction commits (never for a rolled-back change)."""
    wanted = [m for m in messages if m is not None]
    if wanted:
        transaction.on_commit(lambda: get_connection().send_messages(wanted))


def send_now(messages: list[EmailMessage | None]) -> None:
    wanted = [m for m in messages if m is not None]
    if wanted:
        get_connection().send_messages(wanted)
