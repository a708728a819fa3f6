"""Billing changes staff make for a customer who asked (from the account page in admin):
the one write no customer page offers — extending the paid period as a goodwill gesture."""

import datetime as dt

from django.db import transaction

from opsplatform.errors import Conflict, InvalidInput
from opsplatform.models import Account
from userflows.billing import get_provider
from userflows.models import Subscription
from userflows.services.billing.subscriptions import _locked_subscription, save_subscription

MAX_EXTENSION_DAYS = 90


def extend_current_period(*, account: Account, days: int, reason: str, actor) -> Subscription:
    """Push the end of the current period back by `days` (1 to 90): the next invoice comes
    that much later. Local ledger only (a Stripe subscription is extended in Stripe)."""
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(f"Extend by 1 to {MAX_EXTENSION_DAYS} days.", field="days")
    with transaction.atomic():
        account, subscription = _locked_subscription(account, actor=actor, create=False)
        if subscription is None or subscription.status == Subscription.Status.CANCELED:
            raise Conflict("There is no active subscription to extend.", code="no_subscription")
        if subscription.status == Subscription.Status.PAST_DUE:
            raise Conflict(
                "A payment is overdue: settle it before extending the period.",
                code="payment_overdue",
            )
        if get_provider(subscription.provider).remote:
            raise Conflict(
                "This subscription is billed by Stripe: extend it in Stripe.",
                code="remote_provider",
            )
        subscription.current_period_end += dt.timedelta(days=days)
        save_subscription(subscription, actor, f"Period extended by {days} day(s): {reason}"[:100])
    return subscription
