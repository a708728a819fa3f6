"""The shared domain every component reads: personas, accounts, campaigns and their metrics."""

import hashlib
import secrets

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform import timezones


class Persona(models.Model):
    """A kind of customer; the four slugs are ensured after every migrate
    (`OpsplatformConfig.ensure_reference_data`, a post-migrate hook)."""

    SOLO_PODCASTER = "solo_podcaster"
    PODCAST_NETWORK = "podcast_network"
    AGENCY = "agency"
    BRAND = "brand"

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name


class Account(models.Model):
    """One customer of the product: the tenant every customer-owned row hangs from."""

    class Plan(models.TextChoices):
        FREE = "free", "Free"
        STARTER = "starter", "Starter"
        GROWTH = "growth", "Growth"
        ENTERPRISE = "enterprise", "Enterprise"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="account"
    )
    name = models.CharField(max_length=200)
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="accounts")
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.STARTER)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code")
    # The customer's time zone (IANA name): their pages and emails show dates in it.
    time_zone = models.CharField(
        max_length=64,
        default=timezones.default_name,
        db_default="UTC",  # rows written outside Django (bulk SQL loads) get one too
        validators=[timezones.validate],
        help_text="IANA name, e.g. America/Los_Angeles; pages and emails show dates in it.",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["persona", "created_at"])]

    def __str__(self):
        return self.name


class Sponsor(models.Model):
    """A brand that pays an account for sponsorship; named per account."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sponsors")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"],
                name="sponsor_unique_per_account",
                violation_error_message="This account already has a sponsor with this name.",
            )
        ]

    def __str__(self):
        return self.name


class Campaign(models.Model):
    """A sponsorship deal; `renewed_from` links a renewal to the campaign it renews."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        CANCELED = "canceled", "Canceled"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="campaigns")
    sponsor = models.ForeignKey(Sponsor, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    starts_on = models.DateField()
    ends_on = models.DateField()
    deal_value = models.DecimalField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(0)]
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    renewed_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewal"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-starts_on", "-id"]
        indexes = [
            models.Index(fields=["account", "starts_on"]),
            models.Index(fields=["starts_on", "ends_on"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")),
                name="campaign_ends_after_start",
                violation_error_message="The end date must be on or after the start date.",
            ),
            models.CheckConstraint(
                condition=Q(deal_value__gte=0),
                name="campaign_deal_value_gte_0",
                violation_error_message="The deal value cannot be negative.",
            ),
        ]

    def __str__(self):
        return self.name


class CampaignMetric(models.Model):
    """One day of a campaign's delivery: the large table (tens of millions of rows)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="metrics")
    date = models.DateField()
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    conversions = models.PositiveBigIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    spend = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        ordering = ["campaign_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "date"],
                name="metric_unique_per_day",
                violation_error_message="This campaign already has metrics for this day.",
            ),
            models.CheckConstraint(
                condition=Q(clicks__lte=F("impressions")),
                name="metric_clicks_lte_impressions",
                violation_error_message="Clicks cannot be more than impressions.",
            ),
            models.CheckConstraint(
                condition=Q(revenue__gte=0) & Q(spend__gte=0),
                name="metric_money_gte_0",
                violation_error_message="Revenue and spend cannot be negative.",
            ),
        ]
        indexes = [models.Index(fields=["date"])]

    def __str__(self):
        return f"{self.campaign_id} {self.date}"


class UsageEvent(models.Model):
    """Something an account did in the product, pushed by the API; deduplicated by key."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="usage_events")
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=128)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                name="usage_event_unique_key",
                violation_error_message=(
                    "This account already has an event with this idempotency key."
                ),
            )
        ]
        indexes = [models.Index(fields=["account", "occurred_at"])]

    def __str__(self):
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ApiToken(models.Model):
    """A bearer token; only its SHA-256 is stored, the secret is shown once at creation."""

    PREFIX = "ops_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    label = models.CharField(max_length=100)
    token_prefix = models.CharField(max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.label} ({self.token_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)


class Heartbeat(models.Model):
    """Last time a named background process proved it was alive (the worker's schedule)."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"


class UserSession(AbstractBaseSession):
    """Django's database session plus the signed-in user's id, indexed, so an account
    deletion (or a "sign out everywhere") finds a user's sessions without decoding them all."""

    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        db_table = "opsplatform_user_session"

    @classmethod
    def get_session_store_class(cls):
        from opsplatform.sessions import SessionStore

        return SessionStore
