"""Billing providers. `local` keeps the ledger in this database (the default); `stripe` keeps
subscriptions and invoices at Stripe and tells us about them through signed webhooks.
Each subscription remembers its provider, so changing BILLING_PROVIDER only affects new ones.
"""

from userflows.billing.base import (
    BillingProvider,
    CardDetails,
    ChargeResult,
    PaymentDeclined,
    ProviderUnavailable,
)
from userflows.billing.local_provider import LocalProvider
from userflows.billing.stripe_provider import StripeProvider

PROVIDERS: dict[str, type] = {"local": LocalProvider, "stripe": StripeProvider}


def get_provider(name: str) -> BillingProvider:
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise ValueError(
            f"Unknown billing provider {name!r}; use one of {sorted(PROVIDERS)}."
        ) from None


__all__ = [
    "BillingProvider",
    "CardDetails",
    "ChargeResult",
    "PaymentDeclined",
    "ProviderUnavailable",
    "get_provider",
]
