"""The interface both billing providers implement, and the values they exchange."""

from dataclasses import dataclass
from typing import Protocol

from opsplatform.errors import DomainError


class ProviderUnavailable(DomainError):
    """The provider could not be reached or failed; nothing was changed on our side."""

    status_code = 503
    code = "provider_unavailable"


class PaymentDeclined(DomainError):
    """A charge that a change depends on failed (an upgrade's proration): the change was
    not made."""

    status_code = 402
    code = "payment_declined"


@dataclass(frozen=True)
class CardDetails:
    """What we keep about a card: the provider's reference and its public description."""

    reference: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str = ""
    failure: str = ""


class BillingProvider(Protocol):
    name: str
    # True when the provider holds its own copy of the subscription (Stripe): our services
    # then push every change to it. The local ledger's only copy is our tables.
    remote: bool

    def attach_payment_method(self, *, subscription, payment_method_id: str) -> CardDetails:
        """Verify a payment method token and make it the account's default."""

    def detach_payment_method(self, *, reference: str) -> None:
        """Forget a payment method at the provider."""

    def charge(self, *, invoice, payment_method) -> ChargeResult:
        """Collect an invoice (local ledger only: Stripe collects its own invoices)."""

    def cancel_subscription(
        self, *, subscription, at_period_end: bool, reason: str, comment: str
    ) -> None: ...

    def resume_subscription(self, *, subscription) -> None: ...

    def change_plan(self, *, subscription, plan, prorate_now: bool = False) -> None: ...

    def schedule_plan(self, *, subscription, plan) -> None:
        """Make `plan` the subscription's plan from the next period on."""

    def forget_customer(self, *, subscription) -> None:
        """On account deletion: cancel now and remove the customer's data at the provider."""
