"""Billing: the customer's subscription, payment method and invoices, for both providers, the
local ledger's billing cycle (invoices at period end, failed payments → past_due → reminders)
and the Stripe webhook. Subscription status moves only through `SUBSCRIPTION_TRANSITIONS`."""

import calendar
import datetime as dt
import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from opsplatform import services as core_services
from opsplatform.errors import Conflict, DomainError, InvalidInput, NotFound
from opsplatform.models import Account
from userflows import emails, selectors
from userflows.billing import ChargeResult, get_provider
from userflows.billing.base import PaymentDeclined, ProviderUnavailable
from userflows.models import (
    Invoice,
    PaymentMethod,
    Plan,
    ProviderEvent,
    Subscription,
    format_cents,
)

logger = logging.getLogger(__name__)

SS = Subscription.Status
SUBSCRIPTION_TRANSITIONS: dict[str, set[str]] = {
    SS.TRIALING: {SS.ACTIVE, SS.PAST_DUE, SS.CANCELED},
    SS.ACTIVE: {SS.PAST_DUE, SS.CANCELED},
    SS.PAST_DUE: {SS.ACTIVE, SS.CANCELED},
    SS.CANCELED: {SS.ACTIVE},  # choosing a plan again
}
CUSTOMER_REASONS = [
    c
    for c in Subscription.CancellationReason
    if c != Subscription.CancellationReason.PAYMENT_FAILED
]
DUNNING_RETRY = dt.timedelta(days=3)
DUNNING_MAX_ATTEMPTS = 4
LOCAL = Subscription.Provider.LOCAL


class WebhookRejected(DomainError):
    status_code = 400
    code = "invalid_webhook"


def add_months(moment: dt.datetime, months: int = 1) -> dt.datetime:
    """The same day and time `months` later, clamped to the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def transition(subscription: Subscription, to: str) -> None:
    if to not in SUBSCRIPTION_TRANSITIONS[subscription.status]:
        raise Conflict(
            f"A {subscription.get_status_display().lower()} subscription cannot "
            f"become {SS(to).label.lower()}.",
            code="invalid_transition",
        )
    subscription.status = to


def _set_account_plan(account: Account, code: str, actor, reason: str = "") -> None:
    """Account.plan follows the subscription; the core service locks and re-reads the row."""
    core_services.set_account_plan(
        account_id=account.pk, plan_code=code, actor=actor, reason=reason
    )
    account.plan = code


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextInvoice:
    amount_cents: int
    currency: str
    date: dt.datetime


@dataclass(frozen=True)
class BillingInfo:
    plan: Plan
    subscription: Subscription | None
    payment_method: PaymentMethod | None
    next_invoice: NextInvoice | None
    balance_due_cents: int


def get_billing_info(*, account: Account) -> BillingInfo:
    """Plan, subscription, payment method, the next invoice and what is still owed."""
    subscription = selectors.subscription_of(account)
    plan = subscription.plan if subscription else Plan.objects.get(code=account.plan)
    next_invoice = None
    if (
        subscription is not None
        and subscription.status != SS.CANCELED
        and not subscription.cancel_at_period_end
        and not plan.is_free
    ):
        upcoming = subscription.scheduled_plan or plan
        next_invoice = NextInvoice(
            amount_cents=upcoming.price_cents,
            currency=upcoming.currency,
            date=subscription.current_period_end,
        )
    due = (
        Invoice.objects.filter(account=account, status=Invoice.Status.OPEN).aggregate(
            due=Sum(F("amount_due_cents") - F("amount_paid_cents"))
        )["due"]
        or 0
    )
    return BillingInfo(
        plan=plan,
        subscription=subscription,
        payment_method=selectors.payment_method_of(account),
        next_invoice=next_invoice,
        balance_due_cents=due,
    )


# --- customer actions -------------------------------------------------------------------------


def start_subscription(*, account: Account, actor, status: str | None = None) -> Subscription:
    """The account's one subscription, on its plan, from now for a month: a paid plan starts
    as a trial (the first invoice comes at the period's end), the free plan is active.
    Called when an account is created (`userflows.accounts.on_account_created`)."""
    existing = Subscription.objects.filter(account=account).first()
    if existing is not None:
        return existing
    plan = Plan.objects.get(code=account.plan)
    now = timezone.now()
    subscription = Subscription(
        account=account,
        plan=plan,
        status=status or (SS.ACTIVE if plan.is_free else SS.TRIALING),
        provider=settings.BILLING_PROVIDER,
        current_period_start=now,
        current_period_end=add_months(now),
    )
    subscription._history_user = actor
    subscription.full_clean()
    subscription.save()
    return subscription


def _locked_subscription(
    account: Account, *, actor, create: bool
) -> tuple[Account, Subscription | None]:
    """The account and its subscription, both row-locked and read again under the lock:
    every decision below is made on these, never on copies loaded before the lock (two
    requests racing would otherwise each act on what the other has already changed).
    Accounts owned by staff logins are refused."""
    locked = Account.objects.select_for_update().select_related("user").filter(pk=account.pk)
    account = locked.first()
    if account is None:
        raise NotFound("Account not found.")
    core_services.require_customer_owner(account)
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "scheduled_plan")
        .filter(account=account)
        .first()
    )
    if subscription is None and create:
        subscription = start_subscription(account=account, actor=actor, status=SS.ACTIVE)
    if subscription is not None:
        subscription.account = account
    return account, subscription


def _save(subscription: Subscription, actor, reason: str | None = None) -> None:
    subscription._history_user = actor
    if reason:
        subscription._change_reason = reason
    subscription.full_clean()
    subscription.save()


def update_payment_method(*, account: Account, payment_method_id: str, actor) -> PaymentMethod:
    """Make `payment_method_id` (a provider token, never a card number) the account's card.
    A past-due local subscription is charged again at once with the new card."""
    payment_method_id = (payment_method_id or "").strip()
    if not payment_method_id or len(payment_method_id) > 255:
        raise InvalidInput("Give a payment method id.", field="payment_method_id")
    with transaction.atomic():
        account, subscription = _locked_subscription(account, actor=actor, create=True)
        provider = get_provider(subscription.provider)
        customer_before = subscription.provider_customer_id
        card = provider.attach_payment_method(
            subscription=subscription, payment_method_id=payment_method_id
        )
        if subscription.provider_customer_id != customer_before:
            _save(subscription, actor, "provider customer created")
        method = PaymentMethod.objects.select_for_update().filter(account=account).first()
        old_reference = method.provider_reference if method else None
        method = method or PaymentMethod(account=account)
        method.provider = subscription.provider
        method.provider_reference = card.reference
        method.brand, method.last4 = card.brand, card.last4
        method.exp_month, method.exp_year = card.exp_month, card.exp_year
        method.updated_at = timezone.now()
        method.full_clean()
        method.save()
        if provider.remote and old_reference and old_reference != card.reference:
            transaction.on_commit(lambda: _detach_quietly(provider, old_reference))
        if subscription.status == SS.PAST_DUE and not provider.remote:
            open_invoices = list(
                Invoice.objects.select_for_update(of=("self",))
                .select_related("subscription__plan", "account__user")
                .filter(account=account, provider=LOCAL, status=Invoice.Status.OPEN)
                .order_by("period_start")
            )
            account.payment_method = method
            for invoice in open_invoices:
                invoice.account = account
            _collect(open_invoices, now=timezone.now(), actor=actor)
    return method


def _detach_quietly(provider, reference: str) -> None:
    try:
        provider.detach_payment_method(reference=reference)
    except ProviderUnavailable:
        logger.warning("could not detach a replaced payment method at %s", provider.name)


def cancel_subscription(
    *, account: Account, reason: str, comment: str = "", at_period_end: bool = True, actor
) -> Subscription:
    """Cancel at the end of the paid period (the default) or now, recording why."""
    if reason not in CUSTOMER_REASONS:
        raise InvalidInput(f"Choose a reason: {', '.join(CUSTOMER_REASONS)}.", field="reason")
    comment = (comment or "").strip()
    if len(comment) > 1000:
        raise InvalidInput("Keep the comment under 1,000 characters.", field="comment")
    with transaction.atomic():
        account, subscription = _locked_subscription(account, actor=actor, create=False)
        if subscription is None or subscription.status == SS.CANCELED:
            raise Conflict("There is no active subscription to cancel.", code="no_subscription")
        if at_period_end and subscription.cancel_at_period_end:
            raise Conflict(
                f"The subscription already ends on {subscription.current_period_end:%B %-d, %Y}.",
                code="already_canceling",
            )
        provider = get_provider(subscription.provider)
        if provider.remote:
            provider.cancel_subscription(
                subscription=subscription,
                at_period_end=at_period_end,
                reason=reason,
                comment=comment,
            )
        subscription.cancellation_reason = reason
        subscription.cancellation_comment = comment
        if at_period_end:
            subscription.cancel_at_period_end = True
        else:
            transition(subscription, SS.CANCELED)
            subscription.canceled_at = timezone.now()
            subscription.cancel_at_period_end = False
            subscription.scheduled_plan = None
            _set_account_plan(account, Account.Plan.FREE, actor, "subscription canceled")
        _save(subscription, actor)
        emails.send_on_commit(
            [
                emails.build(
                    "subscription_canceled",
                    to=account.user.email,
                    subject="Your subscription has been canceled",
                    context={"subscription": subscription, "account": account},
                )
            ]
        )
    return subscription


def resume_subscription(*, account: Account, actor) -> Subscription:
    """Undo a cancellation at period end, before the period ends."""
    with transaction.atomic():
        account, subscription = _locked_subscription(account, actor=actor, create=False)
        if (
            subscription is None
            or subscription.status == SS.CANCELED
            or not subscription.cancel_at_period_end
        ):
            raise Conflict("There is no pending cancellation to undo.", code="not_canceling")
        if timezone.now() >= subscription.current_period_end:
            raise Conflict("The billing period has already ended.", code="period_over")
        provider = get_provider(subscription.provider)
        if provider.remote:
            provider.resume_subscription(subscription=subscription)
        subscription.cancel_at_period_end = False
        subscription.cancellation_reason = ""
        subscription.cancellation_comment = ""
        _save(subscription, actor)
    return subscription


@dataclass(frozen=True)
class PlanChange:
    """What choosing `plan` would do, computed from the subscription as it is now.

    kind: "upgrade" (paid → dearer paid plan on an active subscription: the prorated
    difference is charged now), "downgrade" (to a cheaper plan, the free plan included:
    applied when the paid period ends, nothing charged or refunded), "restart" (from the
    free plan or a canceled subscription to a paid plan: a new period starts now and is
    invoiced in full), "switch" (takes effect now with nothing to pay: a trial, an equal
    price, leaving a past-due subscription for the free plan), "keep" (the current plan
    again: undoes a pending downgrade or cancellation).
    """

    kind: str
    plan: Plan
    amount_due_now_cents: int
    credit_cents: int
    charge_cents: int
    currency: str
    effective_at: dt.datetime


def prorate(
    *, old_cents: int, new_cents: int, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> tuple[int, int]:
    """Stripe's proration for a price change at `now` inside the period [start, end):
    the unused time on the old price is credited and the remaining time on the new price is
    charged. Both lines are price * (whole seconds remaining / seconds in the period),
    computed in Decimal and each rounded to the cent, halves up. Returns (credit, charge);
    the amount due now is charge - credit."""
    period = int((end - start).total_seconds())
    remaining = min(max(int((end - now).total_seconds()), 0), period)
    if period <= 0:
        return 0, 0
    fraction = Decimal(remaining) / Decimal(period)
    one = Decimal(1)
    credit = int((Decimal(old_cents) * fraction).quantize(one, rounding=ROUND_HALF_UP))
    charge = int((Decimal(new_cents) * fraction).quantize(one, rounding=ROUND_HALF_UP))
    return credit, charge


def _plan_change(subscription: Subscription | None, plan: Plan, now) -> PlanChange:
    def change(kind, credit=0, charge=0, effective_at=now, due=None):
        return PlanChange(
            kind=kind,
            plan=plan,
            amount_due_now_cents=charge - credit if due is None else due,
            credit_cents=credit,
            charge_cents=charge,
            currency=plan.currency,
            effective_at=effective_at,
        )

    if subscription is None:
        return change("restart", due=plan.price_cents) if not plan.is_free else change("switch")
    current = subscription.plan
    if subscription.status == SS.CANCELED or (current.is_free and not plan.is_free):
        return change("restart", due=plan.price_cents) if not plan.is_free else change("switch")
    if current.pk == plan.pk:
        if subscription.scheduled_plan_id is None and not subscription.cancel_at_period_end:
            raise Conflict(f"You are already on the {plan.name} plan.", code="same_plan")
        return change("keep")
    if subscription.scheduled_plan_id == plan.pk:
        raise Conflict(
            f"The change to the {plan.name} plan is already scheduled for "
            f"{subscription.current_period_end:%B %-d, %Y}.",
            code="already_scheduled",
        )
    if subscription.status == SS.TRIALING or plan.price_cents == current.price_cents:
        return change("switch")
    if subscription.status == SS.PAST_DUE:
        if plan.is_free:
            return change("switch")
        raise Conflict(
            "A payment is overdue: update your card to settle it before changing plans.",
            code="payment_overdue",
        )
    if plan.price_cents < current.price_cents:
        return change("downgrade", effective_at=subscription.current_period_end)
    credit, charge = prorate(
        old_cents=current.price_cents,
        new_cents=plan.price_cents,
        start=subscription.current_period_start,
        end=subscription.current_period_end,
        now=now,
    )
    return change("upgrade", credit, charge)


def _plan_or_422(plan_code: str) -> Plan:
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        raise InvalidInput(f"Unknown plan {plan_code!r}.", field="plan")
    return plan


def preview_plan_change(*, account: Account, plan_code: str) -> PlanChange:
    """What `change_plan` would do and charge now, for the customer to confirm first."""
    core_services.require_customer_owner(account)
    plan = _plan_or_422(plan_code)
    subscription = (
        Subscription.objects.select_related("plan", "scheduled_plan")
        .filter(account=account)
        .first()
    )
    return _plan_change(subscription, plan, timezone.now())


def change_plan(*, account: Account, plan_code: str, actor) -> Subscription:
    """Switch plans (`PlanChange` says which way). An upgrade between paid plans charges the
    prorated difference at once and is refused, changing nothing, when the charge fails
    (402); a downgrade is scheduled for the period's end; a free or canceled subscription
    moving to a paid plan starts a new period now and is invoiced at once (local ledger) or
    by Stripe."""
    plan = _plan_or_422(plan_code)
    with transaction.atomic():
        account, subscription = _locked_subscription(account, actor=actor, create=True)
        provider = get_provider(subscription.provider)
        now = timezone.now()
        change = _plan_change(subscription, plan, now)
        method = selectors.payment_method_of(account)
        if not plan.is_free and method is None and change.kind != "keep":
            raise InvalidInput("Add a payment method before choosing a paid plan.", field="plan")
        if change.kind == "downgrade":
            return _schedule_downgrade(subscription, plan, provider, actor)
        if change.kind == "keep":
            return _keep_plan(subscription, provider, actor)
        if provider.remote:
            provider.change_plan(
                subscription=subscription, plan=plan, prorate_now=change.kind == "upgrade"
            )
        elif change.kind == "upgrade" and change.amount_due_now_cents > 0:
            _charge_upgrade(subscription, plan, change, method, now, actor)
        restart = change.kind == "restart"
        subscription.plan = plan
        subscription.scheduled_plan = None
        subscription.cancel_at_period_end = False
        subscription.cancellation_reason = ""
        subscription.cancellation_comment = ""
        if subscription.status == SS.CANCELED:
            transition(subscription, SS.ACTIVE)
            subscription.canceled_at = None
        if restart:
            subscription.current_period_start = now
            subscription.current_period_end = add_months(now)
        _save(subscription, actor)
        _set_account_plan(account, plan.code, actor, f"plan changed ({change.kind})")
        if restart and not plan.is_free and not provider.remote:
            account.payment_method = method
            invoice = _new_invoice(
                subscription,
                number=_next_number(subscription),
                now=now,
                start=now,
                end=subscription.current_period_end,
            )
            _charge(invoice, method, now)
            invoice.save()
            if invoice.status != Invoice.Status.PAID:
                transition(subscription, SS.PAST_DUE)
                subscription.past_due_since = now
                _save(subscription, actor, "first payment failed")
                emails.send_on_commit([_payment_failed_mail(invoice)])
    return subscription


def _charge_upgrade(subscription, plan, change: PlanChange, method, now, actor) -> Invoice:
    """Invoice and collect the prorated difference of an upgrade (local ledger). A declined
    charge raises PaymentDeclined before anything is saved, so the caller's transaction
    rolls back and the subscription, the plan and the invoices stay as they were."""
    old, end = subscription.plan, subscription.current_period_end
    invoice = Invoice(
        account=subscription.account,
        subscription=subscription,
        number=_next_number(subscription),
        provider=LOCAL,
        plan_code=plan.code,
        description=(f"Upgrade from {old.name} to {plan.name}, prorated to {end:%b %-d, %Y}")[:200],
        currency=plan.currency,
        amount_due_cents=change.amount_due_now_cents,
        period_start=now,
        period_end=end,
        status=Invoice.Status.OPEN,
        issued_at=now,
        due_at=now,
        bill_to_name=subscription.account.name,
        bill_to_email=subscription.account.user.email,
        bill_to_country=subscription.account.country,
    )
    result = get_provider(LOCAL).charge(invoice=invoice, payment_method=method)
    if not result.ok:
        raise PaymentDeclined(
            f"The upgrade to {plan.name} needs a payment of "
            f"{format_cents(change.amount_due_now_cents, plan.currency)} now, and it failed: "
            f"{result.failure} Nothing was changed.",
        )
    invoice.status = Invoice.Status.PAID
    invoice.amount_paid_cents = invoice.amount_due_cents
    invoice.paid_at = now
    invoice.attempt_count = 1
    invoice.provider_reference = result.reference
    invoice.full_clean()
    invoice.save()
    return invoice


def _schedule_downgrade(subscription, plan, provider, actor) -> Subscription:
    """A cheaper plan from the next period on: the paid period keeps its plan."""
    if provider.remote:
        provider.schedule_plan(subscription=subscription, plan=plan)
    subscription.scheduled_plan = plan
    subscription.cancel_at_period_end = False
    subscription.cancellation_reason = ""
    subscription.cancellation_comment = ""
    _save(subscription, actor, f"downgrade to {plan.code} scheduled")
    return subscription


def _keep_plan(subscription, provider, actor) -> Subscription:
    """The current plan chosen again: a pending downgrade or cancellation is undone."""
    if provider.remote:
        provider.schedule_plan(subscription=subscription, plan=subscription.plan)
    subscription.scheduled_plan = None
    subscription.cancel_at_period_end = False
    subscription.cancellation_reason = ""
    subscription.cancellation_comment = ""
    _save(subscription, actor, "kept the current plan")
    return subscription


# --- the local ledger -------------------------------------------------------------------------


def _next_number(subscription: Subscription, offset: int = 0) -> str:
    sequence = Invoice.objects.filter(subscription=subscription).count() + 1 + offset
    return f"INV-{subscription.pk:07d}-{sequence:04d}"


def _new_invoice(subscription: Subscription, *, number: str, now, start, end) -> Invoice:
    account, plan = subscription.account, subscription.plan
    return Invoice(
        account=account,
        subscription=subscription,
        number=number,
        provider=LOCAL,
        plan_code=plan.code,
        description=f"{plan.name} plan, {start:%b %-d, %Y} to {end:%b %-d, %Y}",
        currency=plan.currency,
        amount_due_cents=plan.price_cents,
        period_start=start,
        period_end=end,
        status=Invoice.Status.OPEN,
        issued_at=now,
        due_at=now,
        bill_to_name=account.name,
        bill_to_email=account.user.email,
        bill_to_country=account.country,
    )


def _charge(invoice: Invoice, method: PaymentMethod | None, now) -> ChargeResult:
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


def _payment_failed_mail(invoice: Invoice):
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
                    provider=LOCAL, status__in=[SS.TRIALING, SS.ACTIVE], current_period_end__lte=now
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
                    transition(sub, SS.CANCELED)
                    sub.canceled_at = start
                    sub.cancel_at_period_end = False
                    sub.scheduled_plan = None
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
                    if sub.status == SS.TRIALING:
                        transition(sub, SS.ACTIVE)
                    continue
                sequences[sub.pk] = sequences.get(sub.pk, 0) + 1
                invoice = _new_invoice(
                    sub,
                    number=f"INV-{sub.pk:07d}-{sequences[sub.pk]:04d}",
                    now=now,
                    start=start,
                    end=end,
                )
                method = getattr(sub.account, "payment_method", None)
                result = _charge(invoice, method, now)
                invoices.append(invoice)
                stats["invoiced"] += 1
                if result.ok:
                    if sub.status == SS.TRIALING:
                        transition(sub, SS.ACTIVE)
                else:
                    transition(sub, SS.PAST_DUE)
                    sub.past_due_since = now
                    mails.append(_payment_failed_mail(invoice))
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
            for key, value in _collect(batch, now=now, actor=None).items():
                stats[key] += value


def _collect(invoices: list[Invoice], *, now, actor) -> dict:
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
        result = _charge(invoice, method, now)
        sub = locked.get(invoice.subscription_id)
        if result.ok:
            stats["collected"] += 1
            if sub is not None and sub.status == SS.PAST_DUE:
                subs[sub.pk] = sub
        elif invoice.status == Invoice.Status.UNCOLLECTIBLE:
            stats["gave_up"] += 1
            mails.append(_payment_failed_mail(invoice))
            if sub is not None and sub.status != SS.CANCELED:
                transition(sub, SS.CANCELED)
                sub.canceled_at = now
                sub.cancel_at_period_end = False
                sub.cancellation_reason = Subscription.CancellationReason.PAYMENT_FAILED
                sub.past_due_since = None
                sub.scheduled_plan = None
                subs[sub.pk] = sub
                ended[sub.account_id] = Account.Plan.FREE
        else:
            stats["retry_failed"] += 1
            mails.append(_payment_failed_mail(invoice))
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
        if sub.status == SS.PAST_DUE and sub.pk not in still_open:
            transition(sub, SS.ACTIVE)
            sub.past_due_since = None
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


# --- Stripe webhooks --------------------------------------------------------------------------

STRIPE_STATUS = {
    "trialing": SS.TRIALING,
    "active": SS.ACTIVE,
    "past_due": SS.PAST_DUE,
    "unpaid": SS.PAST_DUE,
    "incomplete": SS.PAST_DUE,
    "paused": SS.PAST_DUE,
    "canceled": SS.CANCELED,
    "incomplete_expired": SS.CANCELED,
}
STRIPE_INVOICE_STATUS = {
    "open": Invoice.Status.OPEN,
    "paid": Invoice.Status.PAID,
    "void": Invoice.Status.VOID,
    "uncollectible": Invoice.Status.UNCOLLECTIBLE,
}


def apply_stripe_event(*, payload: bytes, signature: str | None) -> str:
    """Verify a webhook's signature and apply it once: "applied", "ignored" (not ours or
    not relevant) or "duplicate" (a redelivery)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        # Without a secret no event can be verified: the endpoint does not exist here.
        raise NotFound("Stripe webhooks are not configured.", code="not_configured")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret).to_dict()
    except stripe.SignatureVerificationError:
        raise WebhookRejected("The Stripe signature is missing or invalid.") from None
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
        raise WebhookRejected("The body is not a Stripe event.") from None
    event_id, event_type = event.get("id"), event.get("type")
    obj = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    if (
        not isinstance(event_id, str)
        or not isinstance(event_type, str)
        or not isinstance(obj, dict)
    ):
        raise WebhookRejected("The body is not a Stripe event.")
    with transaction.atomic():
        try:
            with transaction.atomic():
                ProviderEvent.objects.create(
                    provider="stripe", event_id=event_id[:100], type=event_type[:100]
                )
        except IntegrityError:
            return "duplicate"
        handler = None
        if event_type.startswith("customer.subscription."):
            handler = _sync_stripe_subscription
        elif event_type.startswith("invoice."):
            handler = _sync_stripe_invoice
        if handler is None:
            return "ignored"
        try:
            with transaction.atomic():
                applied = handler(obj, event_type)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, OSError) as exc:
            # Rolled back, event id included, so a corrected redelivery is applied.
            raise WebhookRejected(f"The {event_type} event could not be read.") from exc
    return "applied" if applied else "ignored"


# Amounts in a signed event are still checked: a negative or absurd amount is refused
# (400, nothing applied) rather than reaching the database (a 500 and a half-applied event).
MAX_EVENT_CENTS = 10**11  # one billion in any currency: far above any plan's invoice
MAX_EVENT_ATTEMPTS = 1000


def _count(value, *, maximum: int, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} is not a whole number")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} is out of range")
    return value


def _ts(value) -> dt.datetime | None:
    if not value:
        return None
    seconds = _count(value, maximum=253402300799, name="timestamp")  # 9999-12-31
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _stripe_subscription_for(customer_id, subscription_id=None) -> Subscription | None:
    match = Q(provider_customer_id=customer_id) if customer_id else Q(pk__in=[])
    if subscription_id:
        match |= Q(provider_subscription_id=subscription_id)
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "account__user")
        .filter(match, provider=Subscription.Provider.STRIPE)
        .first()
    )


def _sync_stripe_subscription(obj, event_type: str) -> bool:
    sub = _stripe_subscription_for(obj.get("customer"), obj.get("id"))
    if sub is None:
        return False
    items = (obj.get("items") or {}).get("data") or [{}]
    item = items[0]
    status = STRIPE_STATUS.get(obj.get("status"), sub.status)
    if event_type == "customer.subscription.deleted":
        status = SS.CANCELED
    if status != sub.status:
        if status == SS.PAST_DUE:
            sub.past_due_since = timezone.now()
        elif status in (SS.ACTIVE, SS.TRIALING):
            sub.past_due_since = None
        sub.status = status  # Stripe is the source of truth for its subscriptions
    start = _ts(obj.get("current_period_start") or item.get("current_period_start"))
    end = _ts(obj.get("current_period_end") or item.get("current_period_end"))
    previous_end = sub.current_period_end
    if start and end and end > start:
        sub.current_period_start, sub.current_period_end = start, end
    sub.provider_subscription_id = obj.get("id") or sub.provider_subscription_id
    sub.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    sub.canceled_at = _ts(obj.get("canceled_at"))
    price = (item.get("price") or {}).get("id")
    plan = Plan.objects.filter(stripe_price_id=price).first() if price else None
    if sub.scheduled_plan_id is not None:
        if start is not None and start >= previous_end:
            # A new period began: a downgrade chosen during the last one applies now.
            plan, sub.scheduled_plan = plan or sub.scheduled_plan, None
        elif plan is not None and plan.pk == sub.scheduled_plan_id:
            # The downgrade is already set at Stripe for the next invoice; the customer keeps
            # the plan they paid for until the period ends.
            plan = None
    if plan is not None:
        sub.plan = plan
    if status == SS.CANCELED:
        sub.scheduled_plan = None
    _save(sub, None, f"stripe {event_type}")
    if status == SS.CANCELED:
        _set_account_plan(sub.account, Account.Plan.FREE, None, f"stripe {event_type}")
    elif plan is not None:
        _set_account_plan(sub.account, plan.code, None, f"stripe {event_type}")
    return True


def _sync_stripe_invoice(obj, event_type: str) -> bool:
    status = STRIPE_INVOICE_STATUS.get(obj.get("status"))
    sub = _stripe_subscription_for(obj.get("customer"))
    if sub is None or status is None:
        return False
    account = sub.account
    lines = (obj.get("lines") or {}).get("data") or [{}]
    period = lines[0].get("period") or {}
    start = _ts(period.get("start") or obj.get("period_start"))
    end = _ts(period.get("end") or obj.get("period_end"))
    issued = _ts(obj.get("created")) or timezone.now()
    paid_at = _ts((obj.get("status_transitions") or {}).get("paid_at"))
    invoice, _ = Invoice.objects.update_or_create(
        provider=Subscription.Provider.STRIPE,
        provider_reference=obj["id"],
        defaults={
            "account": account,
            "subscription": sub,
            "number": obj.get("number") or obj["id"],
            "plan_code": sub.plan.code,
            "description": (lines[0].get("description") or f"{sub.plan.name} plan")[:200],
            "currency": (obj.get("currency") or "usd")[:3],
            "amount_due_cents": _count(
                obj.get("amount_due"), maximum=MAX_EVENT_CENTS, name="amount_due"
            ),
            "amount_paid_cents": _count(
                obj.get("amount_paid"), maximum=MAX_EVENT_CENTS, name="amount_paid"
            ),
            "period_start": start or issued,
            "period_end": end or issued,
            "status": status,
            "issued_at": issued,
            "due_at": _ts(obj.get("due_date")) or issued,
            "paid_at": paid_at,
            "attempt_count": _count(
                obj.get("attempt_count"), maximum=MAX_EVENT_ATTEMPTS, name="attempt_count"
            ),
            "next_attempt_at": _ts(obj.get("next_payment_attempt")),
            "bill_to_name": (obj.get("customer_name") or account.name)[:200],
            "bill_to_email": obj.get("customer_email") or account.user.email,
            "bill_to_country": account.country,
        },
    )
    if event_type == "invoice.payment_failed":
        emails.send_on_commit([_payment_failed_mail(invoice)])
    return True


# Monthly prices in cents, one plan per Account.Plan choice.
DEFAULT_PLANS = [
    ("free", "Free", 0, 10),
    ("starter", "Starter", 1900, 20),
    ("growth", "Growth", 4900, 30),
    ("enterprise", "Enterprise", 19900, 40),
]


def ensure_plans() -> None:
    """The plans every account can be on; prices edited in admin are left alone."""
    for code, name, price, order in DEFAULT_PLANS:
        Plan.objects.get_or_create(
            code=code,
            defaults={"name": name, "price_cents": price, "currency": "usd", "sort_order": order},
        )
