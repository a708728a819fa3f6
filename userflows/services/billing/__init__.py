"""Billing, by subject: the customer's subscription and plan changes (`subscriptions`), the
local ledger's billing cycle and dunning (`cycle`) and the Stripe webhook mirror
(`stripe_events`). Subscription status moves only through `Subscription.STATUS_MACHINE`.

The public names are re-exported here: `from userflows.services import billing` keeps working."""

from userflows.services.billing.cycle import (
    DUNNING_MAX_ATTEMPTS,
    DUNNING_RETRY,
    add_months,
    run_billing_cycle,
)
from userflows.services.billing.stripe_events import WebhookRejected, apply_stripe_event
from userflows.services.billing.subscriptions import (
    CUSTOMER_REASONS,
    DEFAULT_PLANS,
    BillingInfo,
    NextInvoice,
    PlanChange,
    cancel_subscription,
    change_plan,
    ensure_plans,
    get_billing_info,
    long_date,
    preview_plan_change,
    prorate,
    resume_subscription,
    start_subscription,
    subscription_state,
    update_payment_method,
)

__all__ = [
    "CUSTOMER_REASONS",
    "DEFAULT_PLANS",
    "DUNNING_MAX_ATTEMPTS",
    "DUNNING_RETRY",
    "BillingInfo",
    "NextInvoice",
    "PlanChange",
    "WebhookRejected",
    "add_months",
    "apply_stripe_event",
    "cancel_subscription",
    "change_plan",
    "ensure_plans",
    "get_billing_info",
    "long_date",
    "preview_plan_change",
    "prorate",
    "resume_subscription",
    "run_billing_cycle",
    "start_subscription",
    "subscription_state",
    "update_payment_method",
]
