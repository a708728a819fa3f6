"""Compliance records: the requirement catalogue (rules as data, versioned), the checks run
against declared metadata, security assessments, DPIAs with their sign-off, pattern
validations, and the continuous monitors that read the platform's own records."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.transitions import StatusMachine


class Standard(models.TextChoices):
    GDPR = "gdpr", "GDPR"
    CCPA = "ccpa", "CCPA"
    SOC2 = "soc2", "SOC 2"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Requirement(models.Model):
    """One article or criterion, with the metadata rule that decides it (compliance/rules.py)
    and what to do when it fails. Loaded by a data migration; edits are kept in history."""

    code = models.CharField(max_length=30, unique=True)
    standard = models.CharField(max_length=8, choices=Standard.choices)
    title = models.CharField(max_length=200)
    text = models.CharField(max_length=500, help_text="The article or criterion in one line.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    rule = models.JSONField(help_text="The metadata rule that decides it (docs/compliance.md).")
    remediation = models.TextField(max_length=2000)
    catalogue_version = models.CharField(max_length=20)
    sort_order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["sort_order", "code"]
        permissions = [
            ("review_dpia", "Can approve or reject a DPIA (compliance group)"),
            ("view_audit_trail", "Can read the audit trail across all history tables"),
            ("run_monitors", "Can refresh the compliance monitors"),
        ]

    def __str__(self):
        return f"{self.code} {self.title}"

    def clean(self):
        from django.core.exceptions import ValidationError

        from compliance.rules import validate_rule
        from opsplatform.errors import InvalidInput

        try:
            validate_rule(self.rule, field="rule")
        except InvalidInput as exc:
            raise ValidationError({"rule": exc.detail}) from None


class CheckRun(models.Model):
    """One call of validate_segment_compliance (or the check part of a pattern validation):
    the metadata as given and the standards asked for; its checks hang below it."""

    class Kind(models.TextChoices):
        SEGMENT = "segment", "Segment"
        PATTERN = "pattern", "Operational pattern"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject_name = models.CharField(max_length=200)
    metadata = models.JSONField(default=dict, blank=True)
    standards = models.JSONField(default=list, blank=True)
    catalogue_version = models.CharField(max_length=20)
    passed = models.BooleanField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_kind_display()} check: {self.subject_name}"


class ComplianceCheck(models.Model):
    class Outcome(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        NOT_EVIDENCED = "not_evidenced", "Not evidenced"

    run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="checks")
    requirement = models.ForeignKey(Requirement, on_delete=models.PROTECT, related_name="checks")
    requirement_code = models.CharField(max_length=30)
    standard = models.CharField(max_length=8, choices=Standard.choices)
    passed = models.BooleanField()
    outcome = models.CharField(max_length=14, choices=Outcome.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    finding = models.CharField(max_length=1000)
    remediation = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["run_id", "id"]

    def __str__(self):
        return f"{self.requirement_code}: {self.get_outcome_display()}"


class SecurityLevel(models.TextChoices):
    NONE = "none", "None"
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class SecurityAssessment(models.Model):
    feature_name = models.CharField(max_length=200)
    metadata = models.JSONField(default=dict, blank=True)
    vulnerabilities = models.JSONField(default=list, blank=True)
    security_level = models.CharField(max_length=10, choices=SecurityLevel.choices)
    recommendations = models.JSONField(default=list, blank=True)
    unanswered = models.JSONField(
        default=list, blank=True, help_text="Questions the metadata left open."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Security assessment: {self.feature_name} ({self.security_level})"


class PrivacyImpactAssessment(models.Model):
    """A DPIA in the ICO's seven steps (docs/compliance.md), signed off by the compliance
    group: draft → in review → approved or rejected, with the reviewer's note, in history."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    STATUS_MACHINE = StatusMachine(
        noun="DPIA",
        table={
            "draft": {"in_review"},
            "in_review": {"approved", "rejected"},
            "approved": set(),
            "rejected": set(),
        },
        stamps={"in_review": "submitted_at", "approved": "reviewed_at", "rejected": "reviewed_at"},
    )

    feature_name = models.CharField(max_length=200)
    data_types_collected = models.JSONField(default=list, blank=True)
    data_retention_period = models.PositiveIntegerField(help_text="Days")
    data_sharing = models.JSONField(default=list, blank=True)
    user_consent_required = models.BooleanField()
    systematic_monitoring = models.BooleanField(default=False)
    automated_decisions = models.BooleanField(
        default=False, help_text="Automated decisions with legal or similarly significant effect"
    )
    dpia_required = models.BooleanField()
    required_reasons = models.JSONField(default=list, blank=True)
    description = models.JSONField(
        default=dict, blank=True, help_text="Step 2: the processing described"
    )
    necessity = models.JSONField(
        default=list, blank=True, help_text="Step 4: necessity and proportionality"
    )
    risks = models.JSONField(
        default=list, blank=True, help_text="Steps 5-6: risks, measures, residual risk"
    )
    residual_risk = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_note = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "DPIA"
        verbose_name_plural = "DPIAs"

    def __str__(self):
        return f"DPIA: {self.feature_name} ({self.get_status_display()})"


class PatternValidation(models.Model):
    """validate_operational_pattern's stored answer: its checks (a CheckRun), whether a DPIA
    is required, the security assessment's level, and the recommendations."""

    run = models.OneToOneField(CheckRun, on_delete=models.CASCADE, related_name="pattern")
    security_assessment = models.OneToOneField(
        SecurityAssessment, on_delete=models.PROTECT, related_name="pattern"
    )
    validation_passed = models.BooleanField()
    pia_required = models.BooleanField()
    pia_reasons = models.JSONField(default=list, blank=True)
    security_level = models.CharField(max_length=10, choices=SecurityLevel.choices)
    recommendations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Pattern validation: {self.run.subject_name}"


class Monitor(models.Model):
    """A continuous check on the platform's own records (compliance/monitors.py), refreshed
    daily and on demand; history keeps every past result."""

    key = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=200)
    requirement_codes = models.JSONField(default=list, blank=True)
    standards = models.JSONField(default=list, blank=True)
    passed = models.BooleanField(null=True, help_text="Empty until first run; false on error.")
    summary = models.CharField(max_length=500, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    remediation = models.TextField(max_length=2000, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, max_length=2000)
    sort_order = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords(excluded_fields=["duration_ms"])

    class Meta:
        ordering = ["sort_order", "key"]

    def __str__(self):
        return self.title
