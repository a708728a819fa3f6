"""Reads for exports, billing and deletion, with the tenant wall inside: a customer sees only
their own account's rows, staff need the model's view permission, anything else is 404."""

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from opsplatform.compiled import CompiledQuery
from opsplatform.errors import NotFound
from opsplatform.tenancy import scope_account_id, visible_to
from userflows.models import (
    DeletionRequest,
    ExportRequest,
    Invoice,
    PaymentMethod,
    Plan,
    Subscription,
)

# --- exports ----------------------------------------------------------------------------------


def export_list(*, user, account_id: int | None = None) -> QuerySet[ExportRequest]:
    scoped = scope_account_id(user, account_id, perm="userflows.view_exportrequest")
    qs = ExportRequest.objects.order_by("-created_at", "-id")
    return qs if scoped is None else qs.filter(account_id=scoped)


def export_get(*, user, export_id: int) -> ExportRequest:
    qs = visible_to(user, ExportRequest.objects.all(), perm="userflows.view_exportrequest")
    try:
        return qs.get(pk=export_id)
    except ExportRequest.DoesNotExist:
        raise NotFound("Export not found.") from None


# --- billing ----------------------------------------------------------------------------------


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.order_by("sort_order", "price_cents")


# The billing answer reads these on every call: compiled once (opsplatform/compiled.py).
_SUBSCRIPTION = CompiledQuery(
    lambda account_id: (
        Subscription.objects.select_related("plan", "scheduled_plan")
        .filter(account_id=account_id)
        .order_by("pk")[:1]
    ),
    account_id=int,
)
_PAYMENT_METHOD = CompiledQuery(
    lambda account_id: PaymentMethod.objects.filter(account_id=account_id).order_by("pk")[:1],
    account_id=int,
)
_PLANS = CompiledQuery(lambda: Plan.objects.order_by("sort_order", "price_cents"))


def subscription_get(account) -> Subscription | None:
    """The account's subscription (one per account) with its plans, or None."""
    return _SUBSCRIPTION.first(account_id=account.pk)


def payment_method_get(account) -> PaymentMethod | None:
    return _PAYMENT_METHOD.first(account_id=account.pk)


def plans() -> list[Plan]:
    """Every plan, in the order they are offered."""
    return _PLANS.all()


def invoice_list(*, user, account_id: int | None = None) -> QuerySet[Invoice]:
    scoped = scope_account_id(user, account_id, perm="userflows.view_invoice")
    qs = Invoice.objects.order_by("-period_start", "-id")
    return qs if scoped is None else qs.filter(account_id=scoped)


def invoice_get(*, user, invoice_id: int) -> Invoice:
    qs = visible_to(user, Invoice.objects.select_related("account"), perm="userflows.view_invoice")
    try:
        return qs.get(pk=invoice_id)
    except Invoice.DoesNotExist:
        raise NotFound("Invoice not found.") from None


def cancellation_reason_list(*, since: dt.datetime | None = None) -> list[dict]:
    """Why customers cancel: one aggregate query, each reason with its count and share."""
    qs = Subscription.objects.exclude(cancellation_reason="")
    if since is not None:
        qs = qs.filter(
            Q(canceled_at__gte=since) | Q(canceled_at__isnull=True, cancel_at_period_end=True)
        )
    rows = (
        qs.values("cancellation_reason")
        .annotate(
            count=Count("id"),
            with_comment=Count("id", filter=~Q(cancellation_comment="")),
        )
        .order_by("-count", "cancellation_reason")
    )
    total = sum(r["count"] for r in rows)
    labels = dict(Subscription.CancellationReason.choices)
    return [
        {
            "reason": r["cancellation_reason"],
            "label": labels.get(r["cancellation_reason"], r["cancellation_reason"]),
            "count": r["count"],
            "with_comment": r["with_comment"],
            "share": round(r["count"] * 100 / total, 1) if total else 0.0,
        }
        for r in rows
    ]


# --- deletion ---------------------------------------------------------------------------------


def deletion_list(*, user, account_id: int | None = None) -> QuerySet[DeletionRequest]:
    scoped = scope_account_id(user, account_id, perm="userflows.view_deletionrequest")
    qs = DeletionRequest.objects.select_related("certificate").order_by("-requested_at", "-id")
    return qs if scoped is None else qs.filter(account_id=scoped)


def deletion_get(*, user, deletion_id: int) -> DeletionRequest:
    qs = visible_to(
        user,
        DeletionRequest.objects.select_related("certificate"),
        perm="userflows.view_deletionrequest",
    )
    try:
        return qs.get(pk=deletion_id)
    except DeletionRequest.DoesNotExist:
        raise NotFound("Deletion request not found.") from None


# Every customer page asks (the banner): compiled once.
_PENDING_DELETION = CompiledQuery(
    lambda account_id: DeletionRequest.objects.filter(
        account_id=account_id, status__in=DeletionRequest.PENDING_STATUSES
    ).order_by("-requested_at", "-pk")[:1],
    account_id=int,
)


def pending_deletion_get(account) -> DeletionRequest | None:
    return _PENDING_DELETION.first(account_id=account.pk)


def due_deletion_id_list(*, now: dt.datetime | None = None) -> list[int]:
    """Scheduled requests whose date has come, and failed ones (retried every run)."""
    now = now or timezone.now()
    return list(
        DeletionRequest.objects.filter(
            Q(status=DeletionRequest.Status.SCHEDULED, scheduled_for__lte=now)
            | Q(status=DeletionRequest.Status.FAILED)
        )
        .order_by("scheduled_for")
        .values_list("id", flat=True)
    )


# --- figures for the scaling checkpoints (set-based: one query each) -----------------------------


def payment_failure_counts(*, since: dt.datetime, until: dt.datetime) -> tuple[int, int]:
    """(invoices issued in [since, until) with something to collect, those with at least one
    failed collection attempt): uncollectible, a failure on record, or paid after a retry."""
    failed = (
        Q(status=Invoice.Status.UNCOLLECTIBLE)
        | ~Q(last_failure="")
        | Q(status=Invoice.Status.PAID, attempt_count__gt=1)
    )
    counts = (
        Invoice.objects.filter(issued_at__gte=since, issued_at__lt=until, amount_due_cents__gt=0)
        .exclude(status=Invoice.Status.VOID)
        .aggregate(total=Count("id"), failed=Count("id", filter=failed))
    )
    return int(counts["total"] or 0), int(counts["failed"] or 0)


def involuntary_churn_counts(*, since: dt.datetime, until: dt.datetime) -> tuple[int, int]:
    """(subscriptions live at `since` — created before it and not canceled before it —, those
    canceled in [since, until) because payment failed)."""
    live = Q(created_at__lt=since) & (Q(canceled_at__isnull=True) | Q(canceled_at__gte=since))
    churned = live & Q(
        canceled_at__gte=since,
        canceled_at__lt=until,
        cancellation_reason=Subscription.CancellationReason.PAYMENT_FAILED,
    )
    counts = Subscription.objects.aggregate(
        live=Count("id", filter=live), churned=Count("id", filter=churned)
    )
    return int(counts["live"] or 0), int(counts["churned"] or 0)


def export_journeys(*, since: dt.datetime, until: dt.datetime) -> list[tuple]:
    """(created_at, completed_at or None) per export requested in [since, until): the journey
    "export requested → ready" (a file ready after `until` counts as not yet)."""
    rows = (
        ExportRequest.objects.filter(created_at__gte=since, created_at__lt=until)
        .order_by()
        .values_list("created_at", "completed_at")
    )
    return [(c, d if d is not None and d < until else None) for c, d in rows]


def deletion_journeys(*, since: dt.datetime, until: dt.datetime) -> list[tuple]:
    """(requested_at, scheduled_for, completed_at or None) per deletion request that fell due in
    [since, until) and was not canceled: the journey "deletion requested → executed on its
    date" (a completion after `until` counts as not yet)."""
    rows = (
        DeletionRequest.objects.filter(scheduled_for__gte=since, scheduled_for__lt=until)
        .exclude(status=DeletionRequest.Status.CANCELED)
        .order_by()
        .values_list("requested_at", "scheduled_for", "completed_at")
    )
    return [(r, s, c if c is not None and c < until else None) for r, s, c in rows]
