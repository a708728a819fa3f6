"""Candidate features, the scoring model versions, the scores they made, what launched features
delivered, and the roadmaps built from the scores (docs/scoring.md)."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.transitions import StatusMachine
from scoring.formulas import DEFAULT_CONSTANTS, DIMENSIONS

KEY_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,79}$",
    "A key is lowercase letters, digits, - and _ (at most 80 characters).",
)
SCORE = [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))]


class Feature(models.Model):
    """A candidate feature, scored before the roadmap is set and measured after launch."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        PLANNED = "planned", "Planned"
        IN_PROGRESS = "in_progress", "In progress"
        LAUNCHED = "launched", "Launched"
        DROPPED = "dropped", "Dropped"

    key = models.CharField(max_length=80, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=5000)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    launched_on = models.DateField(null=True, blank=True)
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(m2m_fields=[depends_on], excluded_fields=["updated_at"])

    STATUS_MACHINE = StatusMachine(
        noun="feature",
        table={
            Status.PROPOSED: {Status.PLANNED, Status.DROPPED},
            Status.PLANNED: {Status.PROPOSED, Status.IN_PROGRESS, Status.DROPPED},
            Status.IN_PROGRESS: {Status.PLANNED, Status.LAUNCHED, Status.DROPPED},
            Status.LAUNCHED: set(),
            Status.DROPPED: {Status.PROPOSED},
        },
    )

    class Meta:
        ordering = ["key"]
        indexes = [models.Index(fields=["status", "key"])]

    def __str__(self):
        return f"{self.name} ({self.key})"


class ScoringModel(models.Model):
    """One version of the weights and constants. Exactly one is active; scores keep the
    version that made them."""

    version = models.PositiveIntegerField(unique=True)
    weights = models.JSONField(help_text="Dimension weights (≥ 0, summing to 1).")
    persona_weights = models.JSONField(
        help_text="Per persona slug: its dimension weights (≥ 0, summing to 1)."
    )
    constants = models.JSONField(help_text="The formulas' constants (docs/scoring.md).")
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    # The last calibration against outcomes: Spearman rho, held-out errors, the points.
    calibration = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"],
                condition=Q(active=True),
                name="scoring_one_active_model",
                violation_error_message="Another model version is already active; only one can be.",
            )
        ]

    def __str__(self):
        return f"v{self.version}{' (active)' if self.active else ''}"

    def clean(self):
        errors = {}
        problem = _weights_problem(self.weights)
        if problem:
            errors["weights"] = problem
        if not isinstance(self.persona_weights, dict) or not self.persona_weights:
            errors["persona_weights"] = "Give each persona slug its dimension weights."
        else:
            for slug, weights in self.persona_weights.items():
                problem = _weights_problem(weights)
                if problem:
                    errors["persona_weights"] = f"{slug}: {problem}"
                    break
        if not isinstance(self.constants, dict) or set(self.constants) != set(DEFAULT_CONSTANTS):
            errors["constants"] = f"Give exactly these constants: {', '.join(DEFAULT_CONSTANTS)}."
        else:
            for name, value in self.constants.items():
                try:
                    number = Decimal(str(value))
                except ArithmeticError:
                    number = None
                if number is None or not number.is_finite() or number <= 0 or number > 10**9:
                    errors["constants"] = f"{name} must be a positive number."
                    break
            else:
                both = Decimal(str(self.constants["complexity_weight"])) + Decimal(
                    str(self.constants["ui_complexity_weight"])
                )
                if both != 1:
                    errors["constants"] = "complexity_weight + ui_complexity_weight must be 1."
                elif Decimal(str(self.constants["non_target_factor"])) > 1:
                    errors["constants"] = "non_target_factor must be at most 1."
        if errors:
            raise ValidationError(errors)


def _weights_problem(weights) -> str | None:
    if not isinstance(weights, dict) or set(weights) != set(DIMENSIONS):
        return f"Give a weight for exactly these dimensions: {', '.join(DIMENSIONS)}."
    total = Decimal(0)
    for name, value in weights.items():
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            return f"{name}: not a number."
        if not number.is_finite() or number < 0 or number > 1:
            return f"{name}: a weight lies between 0 and 1."
        total += number
    if total != 1:
        return f"The weights sum to {total}, not 1."
    return None


class FeatureScore(models.Model):
    """One score of a feature by one model version, with every step that made it."""

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="scores")
    model = models.ForeignKey(ScoringModel, on_delete=models.PROTECT, related_name="scores")
    roi_score = models.DecimalField(max_digits=5, decimal_places=2, validators=SCORE)
    workload_impact_score = models.DecimalField(max_digits=5, decimal_places=2, validators=SCORE)
    ease_of_use_score = models.DecimalField(max_digits=5, decimal_places=2, validators=SCORE)
    value_creation_score = models.DecimalField(max_digits=5, decimal_places=2, validators=SCORE)
    overall_score = models.DecimalField(max_digits=5, decimal_places=2, validators=SCORE)
    persona_scores = models.JSONField(default=dict, blank=True)
    explanation = models.JSONField(default=dict, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    recommendations = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="The metadata this score used.")
    ignored_keys = models.JSONField(default=list, blank=True)
    rice = models.DecimalField(max_digits=18, decimal_places=2)
    ice = models.DecimalField(max_digits=8, decimal_places=2)
    wsjf = models.DecimalField(max_digits=18, decimal_places=2)
    effort_weeks = models.DecimalField(max_digits=12, decimal_places=6)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["feature", "-created_at", "-id"])]

    def __str__(self):
        return f"{self.feature.key} v{self.model.version}: {self.overall_score}"

    def dimension_scores(self) -> dict[str, Decimal]:
        return {d: getattr(self, f"{d}_score") for d in DIMENSIONS}


class Outcome(models.Model):
    """What a launched feature delivered, measured on a day after launch."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Entered"
        COMPUTED = "computed", "Computed from usage events and tickets"

    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="outcomes")
    measured_on = models.DateField()
    adoption_rate = models.DecimalField(
        max_digits=7,
        decimal_places=6,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="Share of active accounts that used the feature (0-1).",
    )
    revenue_change = models.DecimalField(
        max_digits=14, decimal_places=2, help_text="Change in monthly revenue (money per month)."
    )
    ticket_change = models.IntegerField(
        help_text="Tickets carrying the feature's tags: 90 days after launch minus 90 before."
    )
    time_saved_hours = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Hours saved per month.",
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    details = models.JSONField(default=dict, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-measured_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["feature", "measured_on"],
                name="scoring_one_outcome_per_day",
                violation_error_message="This feature already has an outcome measured on this day.",
            ),
            models.CheckConstraint(
                condition=Q(adoption_rate__gte=0) & Q(adoption_rate__lte=1),
                name="scoring_adoption_0_1",
                violation_error_message="The adoption rate must be between 0 and 1.",
            ),
        ]

    def __str__(self):
        return f"{self.feature.key} on {self.measured_on}"


class Roadmap(models.Model):
    """A ranked, tiered roadmap as `score_feature_roadmap` built it (items in placement order)."""

    capacity_weeks = models.DecimalField(max_digits=8, decimal_places=2)
    model = models.ForeignKey(ScoringModel, on_delete=models.PROTECT, related_name="+")
    items = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Roadmap {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"
