"""Account health: the scorecard per persona (editable, with history), each check of an account
(score, status, every factor's breakdown, recommendations) and each account's current health.
See docs/health.md for the factors, the points and the score."""

import itertools
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.models import Account, Persona

HUNDRED = Decimal(100)
POINTS = [MinValueValidator(Decimal(0)), MaxValueValidator(HUNDRED)]


class Factor(models.TextChoices):
    """What a scorecard can weigh; each is measured by deployments.health.factors."""

    DAYS_SINCE_LOGIN = "days_since_login", "Days since last login"
    LOGINS = "logins", "Logins in the window"
    ACTIVE_CAMPAIGNS = "active_campaigns", "Active campaigns"
    METRICS_STALENESS = "metrics_staleness", "Days since metrics arrived (active campaigns)"
    ROAS_TREND = "roas_trend", "ROAS trend (window vs previous)"
    OPEN_TICKETS = "open_tickets", "Tickets opened in the window"
    ESCALATED_TICKETS = "escalated_tickets", "Tickets at L3 or higher in the window"
    SLA_BREACHES = "sla_breaches", "SLA breaches suffered in the window"
    BILLING_STATUS = "billing_status", "Billing status"
    DELETION_REQUESTED = "deletion_requested", "Deletion requested"
    ONBOARDING_COMPLETED = "onboarding_completed", "Onboarding completed"
    USAGE_TREND = "usage_trend", "Usage-event trend (window vs previous)"


# Factors whose raw value is one of a few words: their thresholds map each word to points.
CHOICES = {
    Factor.BILLING_STATUS: ["active", "trialing", "cancel_scheduled", "past_due", "canceled"],
    Factor.DELETION_REQUESTED: ["no", "yes"],
    Factor.ONBOARDING_COMPLETED: ["no", "yes"],
}


class InsertedJSONField(models.JSONField):
    """A JSONField bulk-inserted with a VALUES list. Django 5.2 bulk-inserts on PostgreSQL
    through UNNEST of arrays, and quoting a jsonb array client-side escapes every quote of the
    JSON with a regular expression: 0.7 s for 500 checks. A field with `get_placeholder` opts
    the insert out of UNNEST (django/db/backends/postgresql/compiler.py)."""

    def get_placeholder(self, value, compiler, connection):
        return "%s"


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    AT_RISK = "at_risk", "At risk"
    CRITICAL = "critical", "Critical"
    NO_DATA = "no_data", "No data"


def _decimal(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValidationError(f"{value!r} is not a number (write it as a string or an integer).")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ValidationError(f"{value!r} is not a number.") from None
    if not number.is_finite() or abs(number) > Decimal("1000000"):
        raise ValidationError(f"{value!r} is out of range (±1,000,000).")
    return number


def parse_thresholds(name: str, thresholds) -> list[tuple[Decimal, Decimal]] | dict[str, Decimal]:
    """A factor's thresholds, checked: for a numeric factor a list of [value, points] pairs in
    rising value order (points in between are interpolated, beyond the ends held flat); for a
    choice factor a map from each choice to its points."""
    if name in CHOICES:
        if not isinstance(thresholds, dict) or set(thresholds) != set(CHOICES[name]):
            raise ValidationError(
                f"Give points for exactly these values: {', '.join(CHOICES[name])}."
            )
        parsed = {key: _decimal(points) for key, points in thresholds.items()}
        if any(not 0 <= p <= HUNDRED for p in parsed.values()):
            raise ValidationError("Points lie between 0 and 100.")
        return parsed
    if not isinstance(thresholds, list) or not 1 <= len(thresholds) <= 20:
        raise ValidationError('Give 1 to 20 [value, points] pairs, e.g. [["0", 100], ["30", 0]].')
    pairs = []
    for pair in thresholds:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValidationError("Each threshold is a [value, points] pair.")
        value, points = _decimal(pair[0]), _decimal(pair[1])
        if not 0 <= points <= HUNDRED:
            raise ValidationError("Points lie between 0 and 100.")
        pairs.append((value, points))
    if any(b[0] <= a[0] for a, b in itertools.pairwise(pairs)):
        raise ValidationError("Threshold values must rise strictly.")
    return pairs


class Scorecard(models.Model):
    """How one persona's accounts are scored: the weighted factors and the status bands."""

    persona = models.OneToOneField(
        Persona, on_delete=models.PROTECT, related_name="health_scorecard"
    )
    healthy_min = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("80.00"),
        validators=POINTS,
        help_text="A score at or above this is healthy.",
    )
    at_risk_min = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("60.00"),
        validators=POINTS,
        help_text="A score at or above this (and below healthy) is at risk; below is critical.",
    )
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["persona__slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(at_risk_min__lt=models.F("healthy_min")),
                name="health_scorecard_bands_rise",
                violation_error_message="The at-risk band must start below the healthy band.",
            )
        ]

    def __str__(self):
        return f"Health scorecard: {self.persona}"

    def clean(self):
        if (
            self.healthy_min is not None
            and self.at_risk_min is not None
            and self.at_risk_min >= self.healthy_min
        ):
            raise ValidationError({"at_risk_min": "The at-risk band must start below healthy."})


class ScorecardFactor(models.Model):
    """One weighted factor of a scorecard and the thresholds that turn its value into points."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="factors")
    name = models.CharField(max_length=40, choices=Factor.choices)
    weight = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1000))],
        help_text="Relative weight; 0 leaves the factor out.",
    )
    thresholds = models.JSONField(
        help_text='Numbers: [[value, points], …] with rising values, e.g. [["7", 100], '
        '["30", 40], ["60", 0]] (interpolated in between). Yes/no and billing: '
        '{"value": points}.'
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["scorecard_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["scorecard", "name"],
                name="health_factor_once",
                violation_error_message="This scorecard already has this factor.",
            ),
            models.CheckConstraint(
                condition=Q(weight__gte=0),
                name="health_factor_weight_gte_0",
                violation_error_message="The weight cannot be negative.",
            ),
        ]

    def __str__(self):
        return f"{self.get_name_display()} x {self.weight}"

    def clean(self):
        if self.name:
            try:
                parse_thresholds(self.name, self.thresholds)
            except ValidationError as exc:
                raise ValidationError({"thresholds": exc.messages}) from None


class AccountHealthCheck(models.Model):
    """One check of one account: the score, the status and the breakdown behind them."""

    # No single-column indexes on the foreign keys: (account, checked_at) serves the account's
    # lookups, and every index costs time on each bulk insert.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="health_checks", db_index=False
    )
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="+", db_index=False)
    checked_at = models.DateTimeField(default=timezone.now)
    days = models.PositiveSmallIntegerField()
    score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=10, choices=HealthStatus.choices)
    previous_status = models.CharField(max_length=10, choices=HealthStatus.choices, blank=True)
    delta = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Score minus the account's previous check's score.",
    )
    # [{"name", "value", "has_data", "points", "weight", "contribution", "cost"}] (numbers as
    # exact decimal strings): see docs/health.md; factors.described() adds label and display.
    factors = InsertedJSONField(default=list)
    # [{"factor", "cost", "text"}], costliest first.
    recommendations = InsertedJSONField(default=list)
    top_reason = models.CharField(max_length=300, blank=True)
    triggered_by = models.CharField(max_length=40)

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [
            models.Index(fields=["account", "checked_at"]),
            models.Index(fields=["checked_at", "status"]),
        ]

    def __str__(self):
        return f"{self.account_id} @ {self.checked_at:%Y-%m-%d %H:%M}: {self.status} {self.score}"


class AccountHealth(models.Model):
    """Each account's current health: its latest check, and the critical episode it is in.
    Written in bulk by the checks (like the SLA sweep, not through a status machine: the
    status is computed, not chosen)."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="health")
    # (persona, status) serves persona lookups; last_check is only followed, never searched.
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="+", db_index=False)
    last_check = models.ForeignKey(
        AccountHealthCheck, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    checked_at = models.DateTimeField()
    score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=10, choices=HealthStatus.choices)
    previous_status = models.CharField(max_length=10, choices=HealthStatus.choices, blank=True)
    delta = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    status_changed_at = models.DateTimeField()
    top_reason = models.CharField(max_length=300, blank=True)
    # The costliest factor's name and the top three, costliest first ("revenue at risk").
    top_factor = models.CharField(max_length=40, blank=True, choices=Factor.choices)
    top_factors = models.JSONField(default=list)
    # The current critical episode: since when, and the support ticket opened for it (by id:
    # deployments does not import support). Cleared once the account is healthy or at risk.
    critical_since = models.DateTimeField(null=True, blank=True)
    critical_ticket_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "account health"
        verbose_name_plural = "account health"
        ordering = ["score", "account_id"]
        indexes = [
            models.Index(fields=["status", "score"]),
            models.Index(fields=["persona", "status"]),
            models.Index(fields=["top_factor", "status"]),
        ]

    def __str__(self):
        return f"{self.account} — {self.get_status_display()}"


class AtRiskAccount(AccountHealth):
    """The customer-success list: accounts at risk, with their top reasons."""

    class Meta:
        proxy = True
        verbose_name = "at-risk account"
        verbose_name_plural = "at-risk accounts"
