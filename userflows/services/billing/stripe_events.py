"""The Stripe webhook: verified, applied once, mirroring Stripe's subscriptions and invoices
(Stripe is the source of truth for its subscriptions' status)."""

import datetime as dt

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from opsplatform.errors import DomainError, NotFound
from opsplatform.models import Account
from userflows import emails
from userflows.models import Invoice, Plan, ProviderEvent, Subscription
from userflows.services.billing.cycle import payment_failed_mail
from userflows.services.billing.subscriptions import save_subscription, set_account_plan


class WebhookRejected(DomainError):
    status_code = 400
    code = "invalid_webhook"


# --- Stripe webhooks --------------------------------------------------------------------------

STRIPE_STATUS = {
    "trialing": Subscription.Status.TRIALING,
    "active": Subscription.Status.ACTIVE,
    "past_due": Subscription.Status.PAST_DUE,
    "unpaid": Subscription.Status.PAST_DUE,
    "incomplete": Subscription.Status.PAST_DUE,
    "paused": Subscription.Status.PAST_DUE,
    "canceled": Subscription.Status.CANCELED,
    "incomplete_expired": Subscription.Status.CANCELED,
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
        status = Subscription.Status.CANCELED
    if status != sub.status:
        if status == Subscription.Status.PAST_DUE:
            sub.past_due_since = timezone.now()
        elif status in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
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
    if status == Subscription.Status.CANCELED:
        sub.scheduled_plan = None
    save_subscription(sub, None, f"stripe {event_type}")
    if status == Subscription.Status.CANCELED:
        set_account_plan(sub.account, Account.Plan.FREE, None, f"stripe {event_type}")
    elif plan is not None:
        set_account_plan(sub.account, plan.code, None, f"stripe {event_type}")
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
        emails.send_on_commit([payment_failed_mail(invoice)])
    return True
