"""This app's part in privacy requests: invoices as an export type, and on account deletion
the erasure of payment methods, export files, free-text reasons and provider references
(history rows included, the payment methods' too), keeping invoices under a pseudonymous
reference."""

from django.db import transaction
from django.db.models import Q

from opsplatform.exports import export_types, query_export
from opsplatform.privacy import day_bounds, scrub_admin_log, subject_reference
from opsplatform.registry import ErasureResult
from opsplatform.transitions import transition
from userflows.models import DeletionRequest, ExportRequest, Invoice, PaymentMethod, Subscription

INVOICE_RETENTION = (
    "GDPR Art. 17(3)(b) and 6(1)(c): accounting records must be retained "
    "under tax law; kept under a pseudonymous customer reference."
)
EXPORT_RECORDS = (
    "GDPR Art. 5(2) accountability: the record that access requests were "
    "answered; it holds no personal data and its files are deleted."
)


def _invoices(account, date_from, date_to):
    start, end = day_bounds(date_from, date_to)
    return Invoice.objects.filter(
        account=account, period_start__lt=end, period_end__gt=start
    ).order_by("period_start", "id")


EXPORT_TYPES = export_types(
    query_export(
        "invoices",
        "Invoices",
        columns=[
            (field, field)
            for field in (
                "number",
                "description",
                "period_start",
                "period_end",
                "currency",
                "amount_due_cents",
                "amount_paid_cents",
                "status",
                "issued_at",
                "paid_at",
            )
        ],
        query=_invoices,
    ),
)


def erase_account(account, *, actor) -> list[ErasureResult]:
    # First, while the payment method it names is still there.
    log_lines = _scrub_admin_log(account)
    payment_methods = PaymentMethod.objects.filter(account=account).delete()[0]
    # The card's brand, last4 and expiry are in its history too (the delete above adds a row).
    payment_history = PaymentMethod.history.filter(account_id=account.pk).delete()[0]
    return [
        ErasureResult("payment methods", "erased", payment_methods),
        ErasureResult("payment method history rows", "erased", payment_history),
        *_close_subscription(account, actor),
        *_pseudonymize_invoices(account),
        *_erase_exports(account, actor),
        ErasureResult("deletion request reasons", "erased", _erase_reasons(account)),
        ErasureResult("billing and privacy admin log entries", "anonymized", log_lines),
    ]


def _scrub_admin_log(account) -> int:
    """Admin log lines about the account's billing and privacy records (a subscription's
    line repeats the account's name). Ids come from the history too, so lines about rows
    deleted since are found as well."""

    def ids(model, *, history: bool):
        found = set(model.objects.filter(account=account).values_list("id", flat=True))
        if history:
            found |= set(model.history.filter(account_id=account.pk).values_list("id", flat=True))
        return found

    return (
        scrub_admin_log(Subscription, ids(Subscription, history=True))
        + scrub_admin_log(Invoice, ids(Invoice, history=False))
        + scrub_admin_log(PaymentMethod, ids(PaymentMethod, history=True))
        + scrub_admin_log(ExportRequest, ids(ExportRequest, history=True))
        + scrub_admin_log(DeletionRequest, ids(DeletionRequest, history=True))
    )


def _close_subscription(account, actor) -> list[ErasureResult]:
    subscription = Subscription.objects.filter(account=account).first()
    if subscription is None:
        return []
    if subscription.status != Subscription.Status.CANCELED:
        transition(subscription, Subscription.Status.CANCELED, save=False)  # saved below
    subscription.cancel_at_period_end = False
    subscription.cancellation_comment = ""
    subscription.provider_customer_id = ""
    subscription.provider_subscription_id = ""
    subscription._history_user = actor
    subscription._change_reason = "account deleted"
    subscription.save()
    scrubbed = Subscription.history.filter(id=subscription.pk).update(
        cancellation_comment="", provider_customer_id="", provider_subscription_id=""
    )
    return [
        ErasureResult("subscription", "anonymized", 1),
        ErasureResult("subscription history rows", "anonymized", scrubbed),
    ]


def _pseudonymize_invoices(account) -> list[ErasureResult]:
    count = Invoice.objects.filter(account=account).update(
        bill_to_name="", bill_to_email="", customer_reference=subject_reference(account.pk)
    )
    if not count:
        return []
    return [
        ErasureResult("invoice contact details", "anonymized", count),
        ErasureResult("invoices", "kept", count, INVOICE_RETENTION),
    ]


def _erase_exports(account, actor) -> list[ErasureResult]:
    """Stop running exports and delete every file. The deletion holds the account's row lock,
    which an export job takes before publishing, so no file appears afterwards."""
    exports = list(
        ExportRequest.objects.select_for_update().filter(
            Q(status__in=ExportRequest.ACTIVE_STATUSES) | ~Q(file=""), account=account
        )
    )
    names = [e.file.name for e in exports if e.file]
    for export in exports:
        # The account's row lock is held (see above); all are saved in bulk below.
        if export.status in ExportRequest.ACTIVE_STATUSES:
            transition(
                export,
                ExportRequest.Status.CANCELED,
                save=False,
                error="Canceled: the account was deleted.",
            )
        elif export.status == ExportRequest.Status.COMPLETED:
            transition(export, ExportRequest.Status.EXPIRED, save=False)
        export.file.name = ""
    ExportRequest.objects.bulk_update(exports, ["status", "error", "file"])
    ExportRequest.history.bulk_history_create(
        exports, update=True, default_user=actor, default_change_reason="account deleted"
    )

    def delete_files():
        from django.core.files.storage import default_storage

        for name in names:
            default_storage.delete(name)

    transaction.on_commit(delete_files)
    kept = ExportRequest.objects.filter(account=account).count()
    return [
        ErasureResult("export files", "erased", len(names)),
        ErasureResult("export request records", "kept", kept, EXPORT_RECORDS),
    ]


def _erase_reasons(account) -> int:
    requests = list(DeletionRequest.objects.filter(account=account).exclude(reason=""))
    for request in requests:
        request.reason = ""
    DeletionRequest.objects.bulk_update(requests, ["reason"])
    DeletionRequest.history.filter(account_id=account.pk).update(reason="")
    DeletionRequest.history.bulk_history_create(
        requests, update=True, default_change_reason="reason erased"
    )
    return len(requests)


# --- record of processing (GDPR Art. 30) -------------------------------------------------------
# Self-serve flows' personal data, read by the compliance app's record of processing.
PERSONAL_DATA = [
    {
        "model": "userflows.ExportRequest",
        "fields": ["requested_by", "file"],
        "purpose": "Answer the customer's access and portability requests (Art. 15, 20)",
        "legal_basis": "Legal obligation (Art. 6(1)(c))",
        "retention": "File deleted after EXPORT_RETENTION_DAYS; the request record is kept",
    },
    {
        "model": "userflows.DeletionRequest",
        "fields": ["requested_by", "reason"],
        "purpose": "Answer the customer's erasure request (Art. 17)",
        "legal_basis": "Legal obligation (Art. 6(1)(c))",
        "retention": "Reason erased on execution; the request and its certificate are kept",
    },
    {
        "model": "userflows.Subscription",
        "fields": ["cancellation_comment", "provider_customer_id"],
        "purpose": "Bill the customer and learn why customers cancel",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until the account is deleted (erased on deletion)",
    },
    {
        "model": "userflows.PaymentMethod",
        "fields": ["brand", "last4", "exp_month", "exp_year"],
        "purpose": "Charge the subscription",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until replaced or the account is deleted",
    },
    {
        "model": "userflows.Invoice",
        "fields": ["bill_to_name", "bill_to_country"],
        "purpose": "Accounting records",
        "legal_basis": "Legal obligation (Art. 6(1)(c)): tax law",
        "retention": INVOICE_RETENTION,
    },
]
