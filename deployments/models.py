"""Rollouts (Release, Deployment, GateEvaluation) and onboarding experiments
(OnboardingVersion, OnboardingAssignment). See docs/deployments.md."""

import itertools
import re
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.models import Account, Persona
from opsplatform.transitions import StatusMachine

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
PERCENT = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


def new_salt() -> str:
    return secrets.token_hex(8)


def validate_semver(value: str) -> None:
    if not SEMVER.match(value):
        raise ValidationError(f"{value!r} is not a semantic version (e.g. 2.4.0 or 2.4.0-rc.1).")


class Release(models.Model):
    """A version of the product that can be rolled out."""

    version = models.CharField(max_length=64, unique=True, validators=[validate_semver])
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.version


class Deployment(models.Model):
    """A staged, metric-gated rollout of a release to a sticky share of the accounts."""

    class Strategy(models.TextChoices):
        ROLLING = "rolling", "Rolling"
        CANARY = "canary", "Canary"
        BLUE_GREEN = "blue_green", "Blue/green"
        ALL_AT_ONCE = "all_at_once", "All at once"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        FAILED = "failed", "Failed"

    LIVE = (Status.IN_PROGRESS, Status.PAUSED)

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="deployments")
    replaces = models.ForeignKey(
        Release,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
        help_text="What unexposed accounts keep getting: the last completed deployment's release.",
    )
    strategy = models.CharField(max_length=20, choices=Strategy.choices)
    stages = models.JSONField(
        help_text='Rising percentages ending at 100, e.g. ["5", "25", "50", "100"].'
    )
    bake_minutes = models.PositiveIntegerField(default=60)
    stage_index = models.PositiveSmallIntegerField(default=0)
    stage_started_at = models.DateTimeField(null=True, blank=True)
    current_percentage = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0"), validators=PERCENT
    )
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # True while in progress or paused; unique, so one live deployment at a time.
    live = models.BooleanField(null=True, editable=False)
    # Gate settings.
    max_error_rate_increase = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.0100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="How much higher (absolute, 0.01 = 1 point) the exposed error rate may be.",
    )
    max_ticket_rate_increase = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.0500"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="How many more tickets per account the exposed accounts may open.",
    )
    max_health_drop = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("5.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="How many points lower the exposed accounts' mean health may be.",
    )
    min_events_per_arm = models.PositiveIntegerField(
        default=200, help_text="The error-rate gate waits until each arm has this many events."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    rollback_reason = models.TextField(blank=True)
    rollback_notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords()

    STATUS_MACHINE = StatusMachine(
        noun="deployment",
        table={
            "pending": {"in_progress", "failed"},
            "in_progress": {"paused", "completed", "rolled_back", "failed"},
            "paused": {"in_progress", "rolled_back", "failed"},
            "completed": {"rolled_back"},
            "rolled_back": set(),
            "failed": set(),
        },
        stamps={
            "paused": "paused_at",
            "completed": "completed_at",
            "rolled_back": "rolled_back_at",
            "failed": "failed_at",
        },
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["live"],
                condition=Q(live=True),
                name="deployment_one_live",
                violation_error_message=(
                    "Another deployment is already live; only one can be at a time."
                ),
            ),
            models.CheckConstraint(
                condition=Q(current_percentage__gte=0) & Q(current_percentage__lte=100),
                name="deployment_percentage_0_100",
                violation_error_message="The current percentage must be between 0 and 100.",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"{self.release} ({self.get_status_display()}, {self.current_percentage}%)"

    def save(self, *args, **kwargs):
        self.live = True if self.status in self.LIVE else None
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "status" in update_fields:
            kwargs["update_fields"] = {*update_fields, "live"}
        super().save(*args, **kwargs)

    def clean(self):
        stages = self.stages
        if not isinstance(stages, list) or not stages:
            raise ValidationError({"stages": "Give at least one stage."})
        try:
            values = [Decimal(str(s)) for s in stages]
        except ArithmeticError:
            raise ValidationError({"stages": "Stages are percentages."}) from None
        if any(v <= 0 or v > 100 or v != v.quantize(Decimal("0.01")) for v in values):
            raise ValidationError(
                {"stages": "Each stage is a percentage above 0 and at most 100 (2 decimals)."}
            )
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValidationError({"stages": "Stages must rise strictly."})
        if values[-1] != 100:
            raise ValidationError({"stages": "The last stage must be 100."})
        if self.replaces_id and self.replaces_id == self.release_id:
            raise ValidationError({"replaces": "A release cannot replace itself."})

    @property
    def stage_percentages(self) -> list[Decimal]:
        return [Decimal(str(s)) for s in self.stages]

    @property
    def is_last_stage(self) -> bool:
        return self.stage_index >= len(self.stages) - 1


class GateEvaluation(models.Model):
    """One evaluation of a deployment's gates: each gate's arms side by side, and what
    happened next."""

    class Outcome(models.TextChoices):
        WAITING = "waiting", "Waiting"
        ADVANCED = "advanced", "Advanced to the next stage"
        COMPLETED = "completed", "Completed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        HELD = "held", "Held (paused or checked on demand)"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="evaluations")
    evaluated_at = models.DateTimeField(default=timezone.now)
    stage_index = models.PositiveSmallIntegerField()
    percentage = models.DecimalField(max_digits=5, decimal_places=2)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    baked = models.BooleanField()
    # [{"gate", "result" (pass|fail|waiting|no_data), "exposed_rate", "control_rate",
    #   "margin", "exposed_n", "control_n", "detail"}]
    gates = models.JSONField(default=list)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    failed_gate = models.CharField(max_length=20, blank=True)
    triggered_by = models.CharField(max_length=40, help_text="A username or the schedule's name.")

    class Meta:
        ordering = ["-evaluated_at", "-id"]
        indexes = [models.Index(fields=["deployment", "evaluated_at"])]

    def __str__(self):
        return f"{self.deployment_id} @ {self.evaluated_at:%Y-%m-%d %H:%M}: {self.outcome}"


class OnboardingVersion(models.Model):
    """An onboarding flow shown to a share of the eligible accounts; the rest get control."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    name = models.CharField(max_length=100, unique=True)
    features = models.JSONField(default=list, blank=True)
    target_personas = models.ManyToManyField(
        Persona, blank=True, related_name="+", help_text="Empty: every persona."
    )
    rollout_percentage = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=PERCENT,
        help_text="This version's share of the eligible accounts.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    window_days = models.PositiveSmallIntegerField(
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Completion counts within this many days after assignment.",
    )
    min_sample_per_arm = models.PositiveIntegerField(
        default=100, help_text="Below this many assigned per arm the verdict is not enough data."
    )
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(m2m_fields=[target_personas])

    STATUS_MACHINE = StatusMachine(
        noun="onboarding version",
        table={"draft": {"active", "retired"}, "active": {"retired"}, "retired": set()},
        stamps={"active": "activated_at", "retired": "retired_at"},
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rollout_percentage__gte=0) & Q(rollout_percentage__lte=100),
                name="onboarding_share_0_100",
                violation_error_message="The rollout percentage must be between 0 and 100.",
            )
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if not isinstance(self.features, list) or not all(
            isinstance(f, str) and 0 < len(f) <= 100 for f in self.features
        ):
            raise ValidationError({"features": "Features are names of 1 to 100 characters."})


class OnboardingAssignment(models.Model):
    """Which onboarding flow an account got (a version, or control when `version` is null).
    One per account, never moved once made."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="onboarding_assignment"
    )
    version = models.ForeignKey(
        OnboardingVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assignments",
    )
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(default=timezone.now, db_index=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-assigned_at", "-id"]
        indexes = [models.Index(fields=["version", "persona", "assigned_at"])]

    def __str__(self):
        return f"{self.account_id} → {self.version or 'control'}"


class RolloutFreeze(models.Model):
    """A stop on rollouts (the error budget of docs/checkpoints.md): while one is in force no
    deployment is executed, promoted or advanced by its gates. A scaling checkpoint whose
    reliability KPI fails puts one in force (source "checkpoint", one per KPI); a later
    checkpoint where the KPI passes, or an operator with a reason, lifts it. Rows are kept."""

    class Source(models.TextChoices):
        CHECKPOINT = "checkpoint", "Scaling checkpoint"
        OPERATOR = "operator", "Operator"

    source = models.CharField(max_length=12, choices=Source.choices)
    # The checkpoint and KPI that froze rollouts, by name and id (deployments does not import
    # the checkpoints app).
    checkpoint_name = models.CharField(max_length=200, blank=True)
    checkpoint_id = models.PositiveBigIntegerField(null=True, blank=True)
    kpi_key = models.CharField(max_length=80, blank=True)
    reason = models.TextField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lift_reason = models.TextField(max_length=2000, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("lift_rolloutfreeze", "Can lift a rollout freeze")]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kpi_key"],
                condition=Q(lifted_at__isnull=True),
                name="one_active_freeze_per_source_kpi",
                violation_error_message=(
                    "This KPI already holds rollouts frozen: lift that freeze before freezing "
                    "them again."
                ),
            )
        ]

    def __str__(self):
        what = (
            f"checkpoint {self.checkpoint_name}, KPI {self.kpi_key}" if self.kpi_key else "operator"
        )
        return f"Rollout freeze ({what})"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


# Account health (issue 10) lives in deployments/health/; its models are this app's models.
from deployments.health.models import (  # noqa: E402
    AccountHealth,
    AccountHealthCheck,
    AtRiskAccount,
    Scorecard,
    ScorecardFactor,
)

__all__ = [
    "AccountHealth",
    "AccountHealthCheck",
    "AtRiskAccount",
    "Deployment",
    "GateEvaluation",
    "OnboardingAssignment",
    "OnboardingVersion",
    "Release",
    "RolloutFreeze",
    "Scorecard",
    "ScorecardFactor",
]
