"""The local ledger's billing cycle: renew subscriptions whose period ended (an invoice,
charged at once), retry open invoices (dunning: every DUNNING_RETRY, at most
DUNNING_MAX_ATTEMPTS, then the subscription is canceled)."""

import calendar
import datetime as dt

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from opsplatform import services as core_services
from opsplatform.models import Account
from opsplatform.transitions import transition
from userflows import emails
from userflows.billing import ChargeResult, get_provider
from userflows.models import Invoice, PaymentMethod, Subscription

DUNNING_RETRY = dt.timedelta(days=3)
DUNNING_MAX_ATTEMPTS = 4
LOCAL = Subscription.Provider.LOCAL


def add_months(moment: dt.datetime, months: int = 1) -> dt.datetime:
    """The same day and time `months` later, clamped to the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_invoice_number(subscription: Subscription, offset: int = 0) -> str:
    sequence = Invoice.objects.filter(subscription=subscription).count() + 1 + offset
    return f"INV-{subscription.pk:07d}-{sequence:04d}"


def new_invoice(
    subscription: Subscription,
    *,
    number: str,
    now,
    start,
    end,
    plan=None,
    description: str | None = None,
    amount_due_cents: int | None = None,
) -> Invoice:
    """An open local invoice for [start, end), billed to the account as it is now: by default
    the subscription's plan for the whole period."""
    account, plan = subscription.account, plan or subscription.plan
    description = description or f"{plan.name} plan, {start:%b %-d, %Y} to {end:%b %-d, %Y}"
    return Invoice(
        account=account,
        subscription=subscription,
        number=number,
        provider=LOCAL,
        plan_code=plan.code,
        description=description[:200],
        currency=plan.currency,
        amount_due_cents=plan.price_cents if amount_due_cents is None else amount_due_cents,
        period_start=start,
        period_end=end,
        status=Invoice.Status.OPEN,
        issued_at=now,
        due_at=now,
        bill_to_name=account.name,
        bill_to_email=account.user.email,
        bill_to_country=account.country,
    )


def charge_invoice(invoice: Invoice, method: PaymentMethod | None, now) -> ChargeResult:
    result = get_provider(LOCAL).charge(invoice=invoice, payment_method=method)
    invoice.attempt_count += 1
    if result.ok:
        invoice.status = Invoice.Status.PAID
        invoice.amount_paid_cents = invoice.amount_due_cents
        invoice.paid_at = now
        invoice.next_attempt_at = None
        invoice.last_failure = ""
        invoice.provider_reference = result.reference
    else:
        invoice.last_failure = result.failure
        if invoice.attempt_count >= DUNNING_MAX_ATTEMPTS:
            invoice.status = Invoice.Status.UNCOLLECTIBLE
            invoice.next_attempt_at = None
        else:
            invoice.next_attempt_at = now + DUNNING_RETRY
    return result


def payment_failed_mail(invoice: Invoice):
    final = invoice.status == Invoice.Status.UNCOLLECTIBLE
    subject = (
        "Your subscription was canceled: payment failed"
        if final
        else "Payment failed: please update your card"
    )
    return emails.build(
        "payment_failed",
        to=invoice.account.user.email,
        subject=subject,
        context={"invoice": invoice, "final": final},
    )


def run_billing_cycle(*, now: dt.datetime | None = None, batch_size: int = 200) -> dict:
    """The local ledger's schedule: renew subscriptions whose period ended (invoice and
    charge, or end those set to cancel) and retry open invoices that are due again."""
    now = now or timezone.now()
    return {**_renew_due(now, batch_size), **_collect_due(now, batch_size)}


def _renew_due(now, batch_size) -> dict:
    stats = {"renewed": 0, "ended": 0, "invoiced": 0, "failed": 0}
    while True:
        with transaction.atomic():
            batch = list(
                Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related(
                    "plan", "scheduled_plan", "account__user", "account__payment_method"
                )
                .filter(
                    provider=LOCAL,
                    status__in=[Subscription.Status.TRIALING, Subscription.Status.ACTIVE],
                    current_period_end__lte=now,
                )
                .order_by("current_period_end", "id")[:batch_size]
            )
            if not batch:
                return stats
            sequences = dict(
                Invoice.objects.filter(subscription__in=batch)
                .values_list("subscription_id")
                .annotate(n=Count("id"))
            )
            invoices, mails, plans = [], [], {}
            for sub in batch:
                start, end = sub.current_period_end, add_months(sub.current_period_end)
                if sub.cancel_at_period_end:
                    transition(
                        sub,
                        Subscription.Status.CANCELED,
                        save=False,  # locked above, saved in bulk below
                        now=start,
                        cancel_at_period_end=False,
                        scheduled_plan=None,
                    )
                    plans[sub.account_id] = Account.Plan.FREE
                    mails.append(
                        emails.build(
                            "subscription_ended",
                            to=sub.account.user.email,
                            subject="Your subscription has ended",
                            context={"subscription": sub},
                        )
                    )
                    stats["ended"] += 1
                    continue
                sub.current_period_start, sub.current_period_end = start, end
                stats["renewed"] += 1
                if sub.scheduled_plan is not None:
                    # A downgrade chosen during the period starts with the new one.
                    sub.plan, sub.scheduled_plan = sub.scheduled_plan, None
                    plans[sub.account_id] = sub.plan.code
                if sub.plan.is_free:
                    if sub.status == Subscription.Status.TRIALING:
                        transition(sub, Subscription.Status.ACTIVE, save=False)
                    continue
                sequences[sub.pk] = sequences.get(sub.pk, 0) + 1
                invoice = new_invoice(
                    sub,
                    number=f"INV-{sub.pk:07d}-{sequences[sub.pk]:04d}",
                    now=now,
                    start=start,
                    end=end,
                )
                method = getattr(sub.account, "payment_method", None)
                result = charge_invoice(invoice, method, now)
                invoices.append(invoice)
                stats["invoiced"] += 1
                if result.ok:
                    mails.append(emails.receipt(invoice))
                    if sub.status == Subscription.Status.TRIALING:
                        transition(sub, Subscription.Status.ACTIVE, save=False)
                else:
                    transition(sub, Subscription.Status.PAST_DUE, save=False, past_due_since=now)
                    mails.append(payment_failed_mail(invoice))
                    stats["failed"] += 1
            Invoice.objects.bulk_create(invoices)
            Subscription.objects.bulk_update(
                batch,
                [
                    "plan",
                    "scheduled_plan",
                    "status",
                    "current_period_start",
                    "current_period_end",
                    "cancel_at_period_end",
                    "canceled_at",
                    "past_due_since",
                ],
            )
            Subscription.history.bulk_history_create(
                batch, update=True, default_change_reason="billing cycle"
            )
            core_services.set_account_plans(plans=plans, reason="billing cycle")
            emails.send_on_commit(mails)


def _collect_due(now, batch_size) -> dict:
    stats = {"collected": 0, "retry_failed": 0, "gave_up": 0}
    while True:
        with transaction.atomic():
            batch = list(
                Invoice.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("subscription__plan", "account__user", "account__payment_method")
                .filter(provider=LOCAL, status=Invoice.Status.OPEN, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "id")[:batch_size]
            )
            if not batch:
                return stats
            for key, value in collect_invoices(batch, now=now, actor=None).items():
                stats[key] += value


def collect_invoices(invoices: list[Invoice], *, now, actor) -> dict:
    """Charge open invoices again; subscriptions follow (paid → active, last failure →
    canceled). Invoices must come with account__user and account__payment_method loaded."""
    stats = {"collected": 0, "retry_failed": 0, "gave_up": 0}
    if not invoices:
        return stats
    mails, subs, ended = [], {}, {}
    sub_ids = {i.subscription_id for i in invoices if i.subscription_id}
    locked = {
        s.pk: s
        for s in Subscription.objects.select_for_update(of=("self",))
        .select_related("plan")
        .filter(pk__in=sub_ids)
    }
    for invoice in invoices:
        method = getattr(invoice.account, "payment_method", None)
        result = charge_invoice(invoice, method, now)
        sub = locked.get(invoice.subscription_id)
        if result.ok:
            stats["collected"] += 1
            mails.append(emails.receipt(invoice))
            if sub is not None and sub.status == Subscription.Status.PAST_DUE:
                subs[sub.pk] = sub
        elif invoice.status == Invoice.Status.UNCOLLECTIBLE:
            stats["gave_up"] += 1
            mails.append(payment_failed_mail(invoice))
            if sub is not None and sub.status != Subscription.Status.CANCELED:
                transition(
                    sub,
                    Subscription.Status.CANCELED,
                    save=False,  # locked above, saved in bulk below
                    now=now,
                    cancel_at_period_end=False,
                    cancellation_reason=Subscription.CancellationReason.PAYMENT_FAILED,
                    past_due_since=None,
                    scheduled_plan=None,
                )
                subs[sub.pk] = sub
                ended[sub.account_id] = Account.Plan.FREE
        else:
            stats["retry_failed"] += 1
            mails.append(payment_failed_mail(invoice))
    Invoice.objects.bulk_update(
        invoices,
        [
            "status",
            "amount_paid_cents",
            "paid_at",
            "attempt_count",
            "next_attempt_at",
            "last_failure",
            "provider_reference",
        ],
    )
    still_open = set(
        Invoice.objects.filter(
            subscription_id__in=list(subs), status=Invoice.Status.OPEN
        ).values_list("subscription_id", flat=True)
    )
    for sub in subs.values():
        if sub.status == Subscription.Status.PAST_DUE and sub.pk not in still_open:
            transition(sub, Subscription.Status.ACTIVE, save=False, past_due_since=None)
    changed = list(subs.values())
    if changed:
        Subscription.objects.bulk_update(
            changed,
            [
                "status",
                "canceled_at",
                "past_due_since",
                "cancel_at_period_end",
                "cancellation_reason",
                "scheduled_plan",
            ],
        )
        Subscription.history.bulk_history_create(
            changed, update=True, default_user=actor, default_change_reason="payment collection"
        )
    core_services.set_account_plans(plans=ended, actor=actor, reason="payment failed")
    emails.send_on_commit(mails)
    return stats
