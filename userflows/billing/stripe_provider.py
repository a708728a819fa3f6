"""Stripe through its official SDK: customers, payment methods and subscriptions live at Stripe,
which bills them; `services.billing.apply_stripe_event` mirrors what its webhooks report.

Card details never reach us: the browser (Stripe.js / Elements) turns a card into a
PaymentMethod id (`pm_…`), which is all this provider receives.
"""

import logging

import stripe
from django.conf import settings

from opsplatform.errors import Conflict, InvalidInput
from userflows.billing.base import (
    CardDetails,
    ChargeResult,
    PaymentDeclined,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)

# Our cancellation reasons in Stripe's `cancellation_details.feedback` vocabulary.
FEEDBACK = {
    "too_expensive": "too_expensive",
    "missing_features": "missing_features",
    "switched_service": "switched_service",
    "not_using": "unused",
    "technical_issues": "low_quality",
    "closing_business": "other",
    "payment_failed": "other",
    "other": "other",
}


def _options(**extra) -> dict:
    if not settings.STRIPE_API_KEY:
        raise ProviderUnavailable("Stripe billing is not configured (STRIPE_API_KEY is empty).")
    return {"api_key": settings.STRIPE_API_KEY, **extra}


class _Calls:
    """Turns SDK errors into domain errors a customer can read. With `declined`, a card
    error is a PaymentDeclined (402: the change that needed the payment was not made)."""

    def __init__(self, declined: bool = False):
        self.declined = declined

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            return False
        if isinstance(exc, stripe.CardError) and self.declined:
            raise PaymentDeclined(
                (exc.user_message or "The card was declined.") + " Nothing was changed."
            ) from exc
        if isinstance(exc, stripe.CardError):
            raise InvalidInput(
                exc.user_message or "The card was declined.", field="payment_method_id"
            ) from exc
        if isinstance(exc, stripe.InvalidRequestError):
            logger.warning("stripe rejected a request: %s", exc.user_message or exc)
            raise InvalidInput(
                exc.user_message or "Stripe rejected the request.",
                field=getattr(exc, "param", None) or "__all__",
            ) from exc
        if isinstance(exc, stripe.StripeError):
            logger.warning("stripe call failed: %s", exc.__class__.__name__)
            raise ProviderUnavailable(
                "Stripe could not be reached; nothing was changed. "
                "Please try again in a few minutes."
            ) from exc
        return False


class StripeProvider:
    name = "stripe"
    remote = True

    def _customer(self, subscription) -> str:
        if subscription.provider_customer_id:
            return subscription.provider_customer_id
        account = subscription.account
        with _Calls():
            customer = stripe.Customer.create(
                name=account.name,
                email=account.user.email or None,
                metadata={"account_id": str(account.pk)},
                **_options(idempotency_key=f"customer-account-{account.pk}"),
            )
        subscription.provider_customer_id = customer.id
        return customer.id

    def attach_payment_method(self, *, subscription, payment_method_id: str) -> CardDetails:
        customer = self._customer(subscription)
        with _Calls():
            method = stripe.PaymentMethod.attach(payment_method_id, customer=customer, **_options())
            stripe.Customer.modify(
                customer, invoice_settings={"default_payment_method": method.id}, **_options()
            )
            if subscription.provider_subscription_id:
                stripe.Subscription.modify(
                    subscription.provider_subscription_id,
                    default_payment_method=method.id,
                    **_options(),
                )
        card = method.card
        if card is None:
            raise InvalidInput("Only cards are accepted.", field="payment_method_id")
        return CardDetails(
            reference=method.id,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

    def detach_payment_method(self, *, reference: str) -> None:
        try:
            stripe.PaymentMethod.detach(reference, **_options())
        except stripe.InvalidRequestError:
            logger.info("payment method was already detached at Stripe")
        except stripe.StripeError as exc:
            raise ProviderUnavailable("Stripe could not be reached.") from exc

    def charge(self, *, invoice, payment_method) -> ChargeResult:
        raise Conflict("Stripe collects its own invoices; there is nothing to charge here.")

    def cancel_subscription(
        self, *, subscription, at_period_end: bool, reason: str, comment: str
    ) -> None:
        if not subscription.provider_subscription_id:
            return
        details = {"feedback": FEEDBACK.get(reason, "other")}
        if comment:
            details["comment"] = comment[:500]
        with _Calls():
            if at_period_end:
                stripe.Subscription.modify(
                    subscription.provider_subscription_id,
                    cancel_at_period_end=True,
                    cancellation_details=details,
                    **_options(),
                )
            else:
                stripe.Subscription.cancel(
                    subscription.provider_subscription_id,
                    cancellation_details=details,
                    **_options(),
                )

    def resume_subscription(self, *, subscription) -> None:
        if not subscription.provider_subscription_id:
            return
        with _Calls():
            stripe.Subscription.modify(
                subscription.provider_subscription_id, cancel_at_period_end=False, **_options()
            )

    def change_plan(self, *, subscription, plan, prorate_now: bool = False) -> None:
        """Move the Stripe subscription to the plan's Price now, start one for a paid plan, or
        cancel it when moving to the free plan. With `prorate_now` (an upgrade) Stripe
        invoices the proration at once (`always_invoice`) and, with `error_if_incomplete`,
        refuses the change when that payment fails: a declined card is a PaymentDeclined
        and nothing changes at Stripe."""
        sub_id = subscription.provider_subscription_id
        if plan.is_free:
            if sub_id:
                with _Calls():
                    stripe.Subscription.cancel(sub_id, **_options())
                subscription.provider_subscription_id = ""
            return
        self._require_price(plan)
        customer = self._customer(subscription)
        with _Calls(declined=prorate_now):
            if sub_id:
                extra = (
                    {
                        "proration_behavior": "always_invoice",
                        "payment_behavior": "error_if_incomplete",
                    }
                    if prorate_now
                    else {"proration_behavior": "none"}
                )
                stripe.Subscription.modify(
                    sub_id,
                    items=[{"id": self._item(sub_id), "price": plan.stripe_price_id}],
                    cancel_at_period_end=False,
                    **extra,
                    **_options(),
                )
            else:
                created = stripe.Subscription.create(
                    customer=customer,
                    items=[{"price": plan.stripe_price_id}],
                    metadata={"account_id": str(subscription.account_id)},
                    **_options(idempotency_key=f"subscription-{subscription.pk}-{plan.code}"),
                )
                subscription.provider_subscription_id = created.id

    def schedule_plan(self, *, subscription, plan) -> None:
        """A downgrade at the period's end: the next invoice is at `plan`'s price with nothing
        prorated (`proration_behavior="none"`), or, for the free plan, the subscription ends
        with the period. Choosing the current plan again undoes either."""
        sub_id = subscription.provider_subscription_id
        if not sub_id:
            return
        with _Calls():
            if plan.is_free:
                stripe.Subscription.modify(sub_id, cancel_at_period_end=True, **_options())
                return
            self._require_price(plan)
            stripe.Subscription.modify(
                sub_id,
                items=[{"id": self._item(sub_id), "price": plan.stripe_price_id}],
                proration_behavior="none",
                cancel_at_period_end=False,
                **_options(),
            )

    def _item(self, sub_id: str) -> str:
        current = stripe.Subscription.retrieve(sub_id, **_options())
        return current["items"]["data"][0]["id"]

    @staticmethod
    def _require_price(plan) -> None:
        if not plan.stripe_price_id:
            raise Conflict(
                f"The {plan.name} plan is not available for online payment yet; "
                "contact us to switch.",
                code="plan_unavailable",
            )

    def forget_customer(self, *, subscription) -> None:
        """Deleting the Stripe customer cancels its subscriptions and removes its payment
        methods and contact details at Stripe; Stripe keeps its invoices."""
        if not subscription.provider_customer_id:
            return
        try:
            stripe.Customer.delete(subscription.provider_customer_id, **_options())
        except stripe.InvalidRequestError:
            logger.info("stripe customer was already deleted")
        except stripe.StripeError as exc:
            raise ProviderUnavailable(
                "Stripe could not be reached to delete the customer; the deletion will be retried."
            ) from exc
