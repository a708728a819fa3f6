"""Self-serve flows: data exports, billing (plans, subscriptions, invoices), account deletion."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.models import Account
from opsplatform.transitions import StatusMachine

# --- exports ----------------------------------------------------------------------------------


class ExportRequest(models.Model):
    """A customer's request for a copy of their data (GDPR Art. 15/20, CCPA): one ZIP with a
    file per data type, built by a background job and downloadable for a limited time."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSON = "json", "JSON"
        XLSX = "xlsx", "Excel (XLSX)"

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"
        CANCELED = "canceled", "Canceled"

    ACTIVE_STATUSES = (Status.PENDING, Status.PROCESSING)
    STATUS_MACHINE = StatusMachine(
        noun="export",
        table={
            "pending": {"processing", "failed", "canceled"},
            "processing": {"completed", "failed", "canceled"},
            "completed": {"expired"},
            "failed": set(),
            "expired": set(),
            "canceled": set(),
        },
        stamps={"processing": "started_at", "completed": "completed_at"},
    )

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="export_requests")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    format = models.CharField(max_length=8, choices=Format.choices)
    data_types = models.JSONField(default=list)
    date_from = models.DateField()
    date_to = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    rows_done = models.PositiveBigIntegerField(default=0)
    rows_total = models.PositiveBigIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="exports/", max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Progress ticks are not a person's change: they are written without history rows.
    history = HistoricalRecords(excluded_fields=["rows_done", "rows_total"])

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=["pending", "processing"]),
                name="export_one_active_per_account",
                violation_error_message="An export is already being prepared for this account.",
            ),
            models.CheckConstraint(
                condition=Q(date_to__gte=models.F("date_from")),
                name="export_range_in_order",
                violation_error_message="The end date must be on or after the start date.",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "created_at"]),
            models.Index(fields=["status", "expires_at"]),
        ]

    def __str__(self):
        return f"Export #{self.pk} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def percent(self) -> int | None:
        if self.status == self.Status.COMPLETED:
            return 100
        if not self.rows_total:
            return 0 if self.rows_total == 0 else None
        return min(99, int(self.rows_done * 100 / self.rows_total))


# --- billing ----------------------------------------------------------------------------------


class Plan(models.Model):
    """A price list entry; the codes are Account.Plan's, ensured after every migrate
    (`UserflowsConfig.ensure_reference_data`, a post-migrate hook)."""

    code = models.CharField(max_length=20, unique=True, choices=Account.Plan.choices)
    name = models.CharField(max_length=80)
    price_cents = models.PositiveIntegerField(help_text="Monthly price in cents")
    currency = models.CharField(max_length=3, default="usd")
    stripe_price_id = models.CharField(
        max_length=100, blank=True, help_text="The Stripe Price this plan maps to (stripe provider)"
    )
    features = models.TextField(
        blank=True,
        max_length=2000,
        help_text="What the plan includes, one item per line (shown on the plan's card)",
    )
    sort_order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["sort_order", "price_cents"]

    def __str__(self):
        return self.name

    @property
    def is_free(self) -> bool:
        return self.price_cents == 0

    @property
    def feature_list(self) -> list[str]:
        return [line.strip() for line in self.features.splitlines() if line.strip()]


class Subscription(models.Model):
    """An account's subscription to a plan, billed monthly by the account's provider."""

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"

    class Provider(models.TextChoices):
        LOCAL = "local", "Local ledger"
        STRIPE = "stripe", "Stripe"

    class CancellationReason(models.TextChoices):
        TOO_EXPENSIVE = "too_expensive", "Too expensive"
        MISSING_FEATURES = "missing_features", "Missing features"
        SWITCHED_SERVICE = "switched_service", "Switched to another service"
        NOT_USING = "not_using", "Not using it enough"
        TECHNICAL_ISSUES = "technical_issues", "Technical issues"
        CLOSING_BUSINESS = "closing_business", "Closing the show or business"
        OTHER = "other", "Other"
        PAYMENT_FAILED = "payment_failed", "Payment failed (involuntary)"

    STATUS_MACHINE = StatusMachine(
        noun="subscription",
        table={
            "trialing": {"active", "past_due", "canceled"},
            "active": {"past_due", "canceled"},
            "past_due": {"active", "canceled"},
            "canceled": {"active"},  # choosing a plan again
        },
        stamps={"canceled": "canceled_at"},
    )

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    scheduled_plan = models.ForeignKey(
        Plan,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A downgrade chosen by the customer, applied when the current period ends",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    provider = models.CharField(max_length=10, choices=Provider.choices, default=Provider.LOCAL)
    provider_customer_id = models.CharField(max_length=100, blank=True)
    provider_subscription_id = models.CharField(max_length=100, blank=True)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(
        max_length=20, choices=CancellationReason.choices, blank=True
    )
    cancellation_comment = models.TextField(blank=True, max_length=1000)
    past_due_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["provider", "status", "current_period_end"]),
            models.Index(fields=["cancellation_reason", "canceled_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_in_order",
                violation_error_message="The period must end after it starts.",
            ),
        ]

    def __str__(self):
        return f"{self.account} — {self.plan} ({self.get_status_display()})"


class PaymentMethod(models.Model):
    """The card an account pays with, as the provider describes it: never a card number."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="payment_method")
    provider = models.CharField(max_length=10, choices=Subscription.Provider.choices)
    provider_reference = models.CharField(max_length=255)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4, validators=[RegexValidator(r"^\d{4}$")])
    exp_month = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    exp_year = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(2000), MaxValueValidator(2100)]
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Personal (brand, last4, expiry): the account's erasure deletes these history rows too.
    history = HistoricalRecords()

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self):
        return f"{self.brand.title()} •••• {self.last4}"

    def is_expired(self, on) -> bool:
        return (self.exp_year, self.exp_month) < (on.year, on.month)


class Invoice(models.Model):
    """A bill for one period. Kept after an account's deletion (tax law) under a
    pseudonymous customer reference instead of the name and email."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    number = models.CharField(max_length=40, unique=True)
    provider = models.CharField(
        max_length=10, choices=Subscription.Provider.choices, default=Subscription.Provider.LOCAL
    )
    provider_reference = models.CharField(max_length=100, blank=True)
    plan_code = models.CharField(max_length=20, blank=True)
    description = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="usd")
    amount_due_cents = models.PositiveBigIntegerField()
    amount_paid_cents = models.PositiveBigIntegerField(default=0)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    issued_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.CharField(max_length=200, blank=True)
    bill_to_name = models.CharField(max_length=200, blank=True)
    bill_to_email = models.EmailField(blank=True)
    bill_to_country = models.CharField(max_length=2, blank=True)
    customer_reference = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(provider="local"),
                name="invoice_one_per_local_period",
                violation_error_message="This subscription already has an invoice for this period.",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_reference"],
                condition=~Q(provider_reference=""),
                name="invoice_unique_provider_reference",
                violation_error_message="Another invoice has this payment reference.",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "period_start"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self):
        return self.number

    @property
    def amount_due(self) -> str:
        return format_cents(self.amount_due_cents, self.currency)

    @property
    def amount_paid(self) -> str:
        return format_cents(self.amount_paid_cents, self.currency)


class ProviderEvent(models.Model):
    """A billing provider's webhook event, recorded so a redelivery is applied only once."""

    provider = models.CharField(max_length=10, choices=Subscription.Provider.choices)
    event_id = models.CharField(max_length=100)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"],
                name="provider_event_once",
                violation_error_message="This provider event was already received.",
            ),
        ]

    def __str__(self):
        return f"{self.provider} {self.type} {self.event_id}"


def format_cents(cents: int, currency: str) -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower(), "")
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


# --- deletion ---------------------------------------------------------------------------------


class DeletionRequest(models.Model):
    """A customer's request to delete their account (GDPR Art. 17), executed after a grace
    period unless canceled; staff and password-confirmed customers may run it at once."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CANCELED = "canceled", "Canceled"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    PENDING_STATUSES = (Status.SCHEDULED, Status.FAILED)
    STATUS_MACHINE = StatusMachine(
        noun="deletion request",
        table={
            "scheduled": {"canceled", "completed", "failed"},
            "failed": {"canceled", "completed", "failed"},  # retried until it completes
            "canceled": set(),
            "completed": set(),
        },
        stamps={"canceled": "canceled_at", "completed": "completed_at", "failed": "failed_at"},
    )

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="deletion_requests")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(blank=True, max_length=1000)
    immediate = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    requested_at = models.DateTimeField(default=timezone.now)
    scheduled_for = models.DateTimeField()
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=["scheduled", "failed"]),
                name="deletion_one_pending_per_account",
                violation_error_message="A deletion is already scheduled for this account.",
            ),
        ]
        indexes = [models.Index(fields=["status", "scheduled_for"])]

    def __str__(self):
        return f"Deletion #{self.pk} ({self.get_status_display()})"

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING_STATUSES


class DeletionCertificate(models.Model):
    """Proof of an executed deletion: what was erased, anonymized and kept (with the legal
    ground), when — and no personal data: the subject is a pseudonymous reference."""

    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    deletion = models.OneToOneField(
        DeletionRequest, on_delete=models.PROTECT, related_name="certificate"
    )
    subject_reference = models.CharField(max_length=40)
    requested_at = models.DateTimeField()
    scheduled_for = models.DateTimeField()
    executed_at = models.DateTimeField()
    categories = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-executed_at"]

    def __str__(self):
        return f"Certificate {self.reference}"
