"""The customer's subscription: billing info, payment method, cancel and resume, plan changes
(upgrade prorated and charged now, downgrade at period end), for both providers, and the plans
every account can be on."""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from opsplatform import services as core_services
from opsplatform import validation
from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Account
from opsplatform.transitions import transition
from userflows import emails, selectors
from userflows.billing import get_provider
from userflows.billing.base import PaymentDeclined, ProviderUnavailable
from userflows.models import Invoice, PaymentMethod, Plan, Subscription, format_cents
from userflows.services.billing.cycle import (
    LOCAL,
    add_months,
    charge_invoice,
    collect_invoices,
    new_invoice,
    next_invoice_number,
    payment_failed_mail,
)

logger = logging.getLogger(__name__)

CUSTOMER_REASONS = [
    c
    for c in Subscription.CancellationReason
    if c != Subscription.CancellationReason.PAYMENT_FAILED
]


def set_account_plan(account: Account, code: str, actor, reason: str = "") -> None:
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
    """`plan` is the plan the account is on now, the one `/me` reports: after a cancellation
    that took effect it is the free plan, while `subscription.plan` names the plan that was
    canceled. `state` and `state_label` say the same thing in one word and in words."""

    plan: Plan
    subscription: Subscription | None
    payment_method: PaymentMethod | None
    next_invoice: NextInvoice | None
    balance_due_cents: int
    state: str
    state_label: str


def long_date(moment: dt.datetime) -> str:
    """ "March 3, 2027", in the site's time zone (the customer's calendar day)."""
    local = timezone.localtime(moment)
    return f"{local:%B} {local.day}, {local.year}"


def subscription_state(subscription: Subscription | None) -> tuple[str, str]:
    """(state, label) as every page, email and API field says it: "ending" while a
    cancellation waits for the period's end (the plan is still active until then)."""
    if subscription is None:
        return "none", "No subscription"
    if subscription.status == Subscription.Status.CANCELED:
        when = subscription.canceled_at
        return "canceled", f"Canceled on {long_date(when)}" if when else "Canceled"
    if subscription.cancel_at_period_end:
        return "ending", f"Your plan ends on {long_date(subscription.current_period_end)}"
    if subscription.status == Subscription.Status.PAST_DUE:
        return "past_due", "Payment overdue"
    if subscription.status == Subscription.Status.TRIALING:
        return "trialing", f"Trial until {long_date(subscription.current_period_end)}"
    if subscription.plan.is_free:
        return "active", "Active"
    return "active", f"Renews on {long_date(subscription.current_period_end)}"


def get_billing_info(*, account: Account) -> BillingInfo:
    """Plan, subscription, payment method, the next invoice and what is still owed."""
    subscription = selectors.subscription_get(account)
    if subscription is not None and subscription.status != Subscription.Status.CANCELED:
        plan = subscription.plan
    else:
        plan = Plan.objects.get(code=account.plan)
    next_invoice = None
    if (
        subscription is not None
        and subscription.status != Subscription.Status.CANCELED
        and not subscription.cancel_at_period_end
        and not plan.is_free
    ):
        upcoming = subscription.scheduled_plan or plan
        next_invoice = NextInvoice(
            amount_cents=upcoming.price_cents,
            currency=upcoming.currency,
            date=subscription.current_period_end,
        )
    state, label = subscription_state(subscription)
    due = (
        Invoice.objects.filter(account=account, status=Invoice.Status.OPEN).aggregate(
            due=Sum(F("amount_due_cents") - F("amount_paid_cents"))
        )["due"]
        or 0
    )
    return BillingInfo(
        plan=plan,
        subscription=subscription,
        payment_method=selectors.payment_method_get(account),
        next_invoice=next_invoice,
        balance_due_cents=due,
        state=state,
        state_label=label,
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
        status=status
        or (Subscription.Status.ACTIVE if plan.is_free else Subscription.Status.TRIALING),
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
        subscription = start_subscription(
            account=account, actor=actor, status=Subscription.Status.ACTIVE
        )
    if subscription is not None:
        subscription.account = account
    return account, subscription


def save_subscription(subscription: Subscription, actor, reason: str | None = None) -> None:
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
            save_subscription(subscription, actor, "provider customer created")
        method = PaymentMethod.objects.select_for_update().filter(account=account).first()
        old_reference = method.provider_reference if method else None
        method = method or PaymentMethod(account=account)
        method.provider = subscription.provider
        method.provider_reference = card.reference
        method.brand, method.last4 = card.brand, card.last4
        method.exp_month, method.exp_year = card.exp_month, card.exp_year
        method.updated_at = timezone.now()
        method._history_user = actor
        method.full_clean()
        method.save()
        if provider.remote and old_reference and old_reference != card.reference:
            transaction.on_commit(lambda: _detach_quietly(provider, old_reference))
        if subscription.status == Subscription.Status.PAST_DUE and not provider.remote:
            open_invoices = list(
                Invoice.objects.select_for_update(of=("self",))
                .select_related("subscription__plan", "account__user")
                .filter(account=account, provider=LOCAL, status=Invoice.Status.OPEN)
                .order_by("period_start")
            )
            account.payment_method = method
            for invoice in open_invoices:
                invoice.account = account
            collect_invoices(open_invoices, now=timezone.now(), actor=actor)
    return method


def _detach_quietly(provider, reference: str) -> None:
    try:
        provider.detach_payment_method(reference=reference)
    except ProviderUnavailable:
        logger.warning("could not detach a replaced payment method at %s", provider.name)


# Words that point a free-text reason at a code, checked in this order; no match is "other".
REASON_KEYWORDS = [
    (
        Subscription.CancellationReason.SWITCHED_SERVICE,
        (
            "competitor",
            "switch",
            "another service",
            "another tool",
            "alternative",
            "moving to",
            "moved to",
            "went with",
            "going with",
        ),
    ),
    (
        Subscription.CancellationReason.TOO_EXPENSIVE,
        ("expensive", "price", "pricing", "cost", "afford", "budget", "cheaper"),
    ),
    (
        Subscription.CancellationReason.MISSING_FEATURES,
        ("feature", "missing", "lacks", "lacking", "doesn't have", "does not have"),
    ),
    (
        Subscription.CancellationReason.TECHNICAL_ISSUES,
        ("bug", "broken", "crash", "slow", "error", "technical", "doesn't work", "not working"),
    ),
    (
        Subscription.CancellationReason.CLOSING_BUSINESS,
        (
            "closing",
            "shutting",
            "shut down",
            "retire",
            "ending the show",
            "out of business",
            "stopping the podcast",
        ),
    ),
    (
        Subscription.CancellationReason.NOT_USING,
        ("not using", "don't use", "do not use", "rarely", "no longer need", "unused"),
    ),
]


def reason_code(text: str) -> str:
    """The code a free-text reason is closest to: a code or a label given as is, else the
    first code whose keywords the text contains, else "other"."""
    folded = " ".join(text.lower().split())
    for choice in CUSTOMER_REASONS:
        if folded in (choice.value, choice.label.lower()):
            return choice.value
    for code, words in REASON_KEYWORDS:
        if any(word in folded for word in words):
            return code.value
    return Subscription.CancellationReason.OTHER.value


def cancellation_reason(reason: str, comment: str) -> tuple[str, str]:
    """(code, comment) from what the customer gave: one of the codes, or free text (as the
    seed's `cancel_subscription(reason="Switching to competitor")`), which is kept as the
    comment (before any comment given too) under its closest code."""
    reason = validation.clean_text(reason, field="reason", label="The reason", max_length=1000)
    comment = validation.clean_text(
        comment, field="comment", label="The comment", max_length=1000, required=False
    )
    if reason in CUSTOMER_REASONS:
        return reason, comment
    if reason == Subscription.CancellationReason.PAYMENT_FAILED:
        raise InvalidInput("Choose the reason that fits best.", field="reason")
    code = reason_code(reason)
    if reason.lower() == Subscription.CancellationReason(code).label.lower():
        return code, comment
    combined = f"{reason}\n\n{comment}" if comment else reason
    if len(combined) > 1000:
        raise InvalidInput("Keep the reason and comment under 1,000 characters.", field="comment")
    return code, combined


def cancel_subscription(
    *, account: Account, reason: str, comment: str = "", at_period_end: bool = True, actor
) -> Subscription:
    """Cancel at the end of the paid period (the default) or now, recording why. `reason` is
    a code of CUSTOMER_REASONS or free text (see `cancellation_reason`)."""
    reason, comment = cancellation_reason(reason, comment)
    with transaction.atomic():
        account, subscription = _locked_subscription(account, actor=actor, create=False)
        if subscription is None or subscription.status == Subscription.Status.CANCELED:
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
            transition(
                subscription,
                Subscription.Status.CANCELED,
                save=False,  # locked above, saved once below
                cancel_at_period_end=False,
                scheduled_plan=None,
            )
            set_account_plan(account, Account.Plan.FREE, actor, "subscription canceled")
        save_subscription(subscription, actor)
        subject = (
            f"Your plan ends on {long_date(subscription.current_period_end)}"
            if at_period_end
            else "Your subscription was canceled"
        )
        emails.send_on_commit(
            [
                emails.build(
                    "subscription_canceled",
                    to=account.user.email,
                    subject=subject,
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
            or subscription.status == Subscription.Status.CANCELED
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
        save_subscription(subscription, actor)
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
    if subscription.status == Subscription.Status.CANCELED or (
        current.is_free and not plan.is_free
    ):
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
    if (
        subscription.status == Subscription.Status.TRIALING
        or plan.price_cents == current.price_cents
    ):
        return change("switch")
    if subscription.status == Subscription.Status.PAST_DUE:
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
        method = selectors.payment_method_get(account)
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
        if subscription.status == Subscription.Status.CANCELED:
            transition(subscription, Subscription.Status.ACTIVE, save=False, canceled_at=None)
        if restart:
            subscription.current_period_start = now
            subscription.current_period_end = add_months(now)
        save_subscription(subscription, actor)
        set_account_plan(account, plan.code, actor, f"plan changed ({change.kind})")
        if restart and not plan.is_free and not provider.remote:
            account.payment_method = method
            invoice = new_invoice(
                subscription,
                number=next_invoice_number(subscription),
                now=now,
                start=now,
                end=subscription.current_period_end,
            )
            charge_invoice(invoice, method, now)
            invoice.save()
            if invoice.status == Invoice.Status.PAID:
                emails.send_on_commit([emails.receipt(invoice)])
            else:
                transition(
                    subscription, Subscription.Status.PAST_DUE, save=False, past_due_since=now
                )
                save_subscription(subscription, actor, "first payment failed")
                emails.send_on_commit([payment_failed_mail(invoice)])
    return subscription


def _charge_upgrade(subscription, plan, change: PlanChange, method, now, actor) -> Invoice:
    """Invoice and collect the prorated difference of an upgrade (local ledger). A declined
    charge raises PaymentDeclined before anything is saved, so the caller's transaction
    rolls back and the subscription, the plan and the invoices stay as they were."""
    old, end = subscription.plan, subscription.current_period_end
    invoice = new_invoice(
        subscription,
        number=next_invoice_number(subscription),
        now=now,
        start=now,
        end=end,
        plan=plan,
        description=f"Upgrade from {old.name} to {plan.name}, prorated to {end:%b %-d, %Y}",
        amount_due_cents=change.amount_due_now_cents,
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
    emails.send_on_commit([emails.receipt(invoice)])
    return invoice


def _schedule_downgrade(subscription, plan, provider, actor) -> Subscription:
    """A cheaper plan from the next period on: the paid period keeps its plan."""
    if provider.remote:
        provider.schedule_plan(subscription=subscription, plan=plan)
    subscription.scheduled_plan = plan
    subscription.cancel_at_period_end = False
    subscription.cancellation_reason = ""
    subscription.cancellation_comment = ""
    save_subscription(subscription, actor, f"downgrade to {plan.code} scheduled")
    return subscription


def _keep_plan(subscription, provider, actor) -> Subscription:
    """The current plan chosen again: a pending downgrade or cancellation is undone."""
    if provider.remote:
        provider.schedule_plan(subscription=subscription, plan=subscription.plan)
    subscription.scheduled_plan = None
    subscription.cancel_at_period_end = False
    subscription.cancellation_reason = ""
    subscription.cancellation_comment = ""
    save_subscription(subscription, actor, "kept the current plan")
    return subscription


# Monthly prices in cents, one plan per Account.Plan choice, and what each includes in the
# product (shown on the billing page's plan cards; staff edit both in admin).
DEFAULT_PLANS = [
    ("free", "Free", 0, 10),
    ("starter", "Starter", 1900, 20),
    ("growth", "Growth", 4900, 30),
    ("enterprise", "Enterprise", 19900, 40),
]
DEFAULT_FEATURES = {
    "free": ["1 show", "Sponsorship tracking for 2 campaigns at a time", "Email support"],
    "starter": [
        "1 show",
        "Unlimited campaigns",
        "Daily campaign metrics and reports",
        "Data exports (CSV, JSON, Excel)",
        "Email and chat support",
    ],
    "growth": [
        "Up to 10 shows",
        "Everything in Starter",
        "API access for your own tools",
        "Renewal and revenue reports",
        "Priority support",
    ],
    "enterprise": [
        "Unlimited shows and networks",
        "Everything in Growth",
        "Team seats and single sign-on",
        "A named account manager",
        "Support around the clock",
    ],
}


def ensure_plans() -> None:
    """The plans every account can be on; prices and features edited in admin are left
    alone (features are filled in only while empty)."""
    for code, name, price, order in DEFAULT_PLANS:
        features = "\n".join(DEFAULT_FEATURES[code])
        plan, created = Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "price_cents": price,
                "currency": "usd",
                "sort_order": order,
                "features": features,
            },
        )
        if not created and not plan.features:
            plan.features = features
            plan.save(update_fields=["features"])
