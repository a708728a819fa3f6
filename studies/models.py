"""A study: one computation of a business metric over a period and a segment, kept with its
definition version so a past result can always be read against the definition it used."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.models import Persona
from opsplatform.transitions import StatusMachine

# Bump when a definition in docs/metrics.md changes; every result records the version it used.
DEFINITION_VERSION = "2026.11-2"  # -2: persona impact adds health and onboarding


class Study(models.Model):
    class Type(models.TextChoices):
        RENEWAL_RATE = "renewal_rate", "Renewal rate"
        REVENUE_GROWTH = "revenue_growth", "Revenue growth"
        CAMPAIGN_EFFICIENCY = "campaign_efficiency", "Campaign efficiency"
        PERSONA_IMPACT = "persona_impact", "Persona impact"
        REVENUE_COHORTS = "revenue_cohorts", "Revenue cohorts"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    study_type = models.CharField(max_length=32, choices=Type.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    persona_segment = models.ForeignKey(
        Persona,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only this persona's accounts; empty means all accounts.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    results = models.JSONField(default=dict, blank=True)
    definition_version = models.CharField(max_length=20, default=DEFINITION_VERSION)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    schedule_name = models.CharField(
        max_length=100, blank=True, help_text="The django-q2 schedule that ran it, if any."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    history = HistoricalRecords()

    STATUS_MACHINE = StatusMachine(
        noun="study",
        table={
            Status.QUEUED: {Status.RUNNING},
            Status.RUNNING: {Status.COMPLETED, Status.FAILED},
            Status.COMPLETED: set(),
            Status.FAILED: set(),
        },
        stamps={
            Status.RUNNING: "started_at",
            Status.COMPLETED: "computed_at",
            Status.FAILED: "failed_at",
        },
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "studies"
        indexes = [
            models.Index(fields=["study_type", "status", "period_end"]),
            models.Index(fields=["schedule_name", "period_end"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")),
                name="study_period_ends_after_start",
                violation_error_message="The period end must be on or after the period start.",
            )
        ]

    def __str__(self):
        return f"{self.get_study_type_display()} {self.period_start} - {self.period_end}"

    @property
    def segment_slug(self) -> str | None:
        return self.persona_segment.slug if self.persona_segment_id else None
