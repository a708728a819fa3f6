"""Scaling checkpoints (docs/checkpoints.md): KPI definitions, checkpoints with their results,
each KPI's state across checkpoints (its open ticket, its page) and the backlog."""

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.transitions import StatusMachine

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_DAYS = 3650
FUNCTIONS = ("support", "billing", "onboarding", "deployments", "compliance", "revenue")
JOURNEYS = {
    "signup_onboarding": "Signup → onboarding completed",
    "campaign_first_metrics": "Campaign created → first metrics",
    "export_ready": "Export requested → ready",
    "deletion_executed": "Deletion requested → executed on its date",
    "ticket_first_response": "Ticket opened → first response within SLA",
}


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Comparator(models.TextChoices):
    AT_LEAST = ">=", "≥ (at least)"
    AT_MOST = "<=", "≤ (at most)"


class ScopeKind(models.TextChoices):
    PERSONA = "persona", "One persona"
    ALL_PERSONAS = "all_personas", "Every persona"
    FUNCTION = "function", "A business function"
    JOURNEY = "journey", "A critical journey"


class KPIDefinition(models.Model):
    """One target: a registered metric (checkpoints/metrics.py) read over a window for a scope,
    compared with the target; within the warning band of the target it is a warning."""

    key = models.CharField(
        max_length=40,
        unique=True,
        validators=[RegexValidator(KEY_RE, "Lowercase letters, digits, _ and -.")],
    )
    name = models.CharField(max_length=200)
    description = models.TextField(max_length=2000, blank=True)
    scope_kind = models.CharField(max_length=14, choices=ScopeKind.choices)
    # A persona slug, a function (FUNCTIONS) or a journey (JOURNEYS); empty for every persona.
    scope = models.CharField(max_length=40, blank=True)
    metric = models.CharField(max_length=60)
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    target = models.DecimalField(max_digits=16, decimal_places=4)
    warning_band = models.DecimalField(
        max_digits=16,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="A miss by at most this much is a warning, not a failure.",
    )
    window_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)],
        help_text="Empty: the checkpoint's window.",
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    reliability = models.BooleanField(
        default=False, help_text="A failure spends the error budget: rollouts freeze."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["scope_kind", "scope", "key"]
        verbose_name = "KPI definition"

    def __str__(self):
        return f"{self.name} ({self.key})"

    def clean(self):
        from checkpoints.metrics import scope_problem

        problem = scope_problem(self.scope_kind, self.scope, self.metric)
        if problem:
            raise ValidationError({problem[0]: problem[1]})


class Checkpoint(models.Model):
    """One answer to "does every persona, business function and critical journey meet or
    exceed its KPI targets?", with the evidence and what it opened."""

    class Status(models.TextChoices):
        PASSED = "passed", "Passed"
        WARNING = "warning", "Warning"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    days = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAYS)]
    )
    as_of = models.DateTimeField(help_text="The end of the window (exclusive).")
    status = models.CharField(max_length=10, choices=Status.choices)
    summary = models.TextField()
    persona_results = models.JSONField(default=dict)
    function_results = models.JSONField(default=dict)
    journey_results = models.JSONField(default=dict)
    escalations = models.JSONField(default=list)
    backlog_items = models.JSONField(default=list)
    # What the notification task sends: {"trigger": [{kpi, summary, severity}], "resolve": [kpi]}
    pages = models.JSONField(default=dict)
    notified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    triggered_by = models.CharField(max_length=60, default="api")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("run_checkpoint", "Can run a scaling checkpoint")]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"{self.name} ({self.status})"


class KPIResult(models.Model):
    """One KPI's value for one scope item at one checkpoint (the trend chart reads these)."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="results")
    kpi = models.ForeignKey(KPIDefinition, on_delete=models.CASCADE, related_name="results")
    scope_kind = models.CharField(max_length=14, choices=ScopeKind.choices)
    scope = models.CharField(max_length=40)
    value = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    target = models.DecimalField(max_digits=16, decimal_places=4)
    comparator = models.CharField(max_length=2, choices=Comparator.choices)
    status = models.CharField(max_length=10)

    class Meta:
        ordering = ["checkpoint_id", "kpi_id", "scope"]
        indexes = [models.Index(fields=["kpi", "checkpoint"])]

    def __str__(self):
        return f"{self.kpi_id} {self.scope}: {self.value} ({self.status})"


class KPIState(models.Model):
    """Where a KPI stands across checkpoints: failing or not, the one open escalation ticket
    (re-read under this row's lock, so a KPI never has two), whether PagerDuty was paged."""

    kpi = models.OneToOneField(KPIDefinition, on_delete=models.CASCADE, related_name="state")
    failing = models.BooleanField(default=False)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_checkpoint = models.ForeignKey(
        Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket = models.ForeignKey(
        "support.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paged = models.BooleanField(default=False)
    history = HistoricalRecords()

    def __str__(self):
        return f"{self.kpi.key}: {'failing' if self.failing else 'ok'}"


class BacklogItem(models.Model):
    """The product work a failing KPI asks for: one per KPI, updated at every checkpoint where
    it fails, scored through the scoring app (a Feature keyed `kpi-<key>`)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    class Priority(models.TextChoices):
        P1 = "p1", "P1 (urgent)"
        P2 = "p2", "P2 (high)"
        P3 = "p3", "P3 (medium)"
        P4 = "p4", "P4 (low)"

    STATUS_MACHINE = StatusMachine(
        noun="backlog item",
        table={
            "open": {"in_progress", "done", "wont_do"},
            "in_progress": {"open", "done", "wont_do"},
            "done": {"open"},
            "wont_do": {"open"},
        },
        stamps={"done": "done_at"},
    )

    kpi = models.OneToOneField(KPIDefinition, on_delete=models.PROTECT, related_name="backlog_item")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=10000)
    priority = models.CharField(max_length=2, choices=Priority.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    gap = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    first_checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="+")
    last_checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="+")
    times_failed = models.PositiveIntegerField(default=1)
    feature_key = models.CharField(max_length=80, blank=True)
    score = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["priority", "-updated_at", "-id"]

    def __str__(self):
        return self.title
