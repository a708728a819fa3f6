"""The local ledger: subscriptions and invoices live only in our tables and a schedule bills
them. Payment methods are Stripe's public test tokens, so outcomes are deterministic: like
Stripe's test cards, a card ending in 0002 is declined."""

import uuid

from django.utils import timezone

from opsplatform.errors import InvalidInput
from userflows.billing.base import CardDetails, ChargeResult

DECLINING_LAST4 = "0002"
# Stripe's documented test PaymentMethod ids and the cards they stand for.
TEST_CARDS = {
    "pm_card_visa": ("visa", "4242"),
    "pm_card_mastercard": ("mastercard", "4444"),
    "pm_card_amex": ("amex", "8431"),
    "pm_card_discover": ("discover", "1117"),
    "pm_card_chargeDeclined": ("visa", DECLINING_LAST4),
}
TEST_CARD_LABELS = {
    "pm_card_visa": "Visa ending 4242",
    "pm_card_mastercard": "Mastercard ending 4444",
    "pm_card_amex": "American Express ending 8431",
    "pm_card_discover": "Discover ending 1117",
    "pm_card_chargeDeclined": "Visa ending 0002 (always declined)",
}


class LocalProvider:
    name = "local"
    remote = False

    def attach_payment_method(self, *, subscription, payment_method_id: str) -> CardDetails:
        card = TEST_CARDS.get(payment_method_id)
        if card is None:
            raise InvalidInput(
                "Unknown payment method. The built-in billing accepts the test cards "
                f"{', '.join(TEST_CARDS)}.",
                field="payment_method_id",
            )
        brand, last4 = card
        return CardDetails(
            reference=payment_method_id,
            brand=brand,
            last4=last4,
            exp_month=12,
            exp_year=timezone.now().year + 3,
        )

    def charge(self, *, invoice, payment_method) -> ChargeResult:
        if payment_method is None:
            return ChargeResult(ok=False, failure="No payment method on file.")
        if payment_method.is_expired(timezone.now()):
            return ChargeResult(ok=False, failure="The card has expired.")
        if payment_method.last4 == DECLINING_LAST4:
            return ChargeResult(ok=False, failure="The card was declined.")
        return ChargeResult(ok=True, reference=f"ch_local_{uuid.uuid4().hex[:20]}")
