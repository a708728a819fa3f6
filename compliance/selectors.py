"""Reads of the compliance app: the catalogue, stored runs and assessments, DPIAs, monitors
(failing first), the dashboard's pass/fail by standard, the record of processing and the
audit trail (compliance/audit.py)."""

from django.db.models import Prefetch, QuerySet

from compliance.models import (
    CheckRun,
    ComplianceCheck,
    Monitor,
    PatternValidation,
    PrivacyImpactAssessment,
    Requirement,
    SecurityAssessment,
    Standard,
)
from compliance.processing import processing_records
from opsplatform.errors import NotFound


def requirement_list(*, standard: str | None = None) -> QuerySet[Requirement]:
    qs = Requirement.objects.order_by("sort_order", "code")
    return qs.filter(standard=standard) if standard else qs


def check_run_get(*, run_id: int) -> CheckRun:
    run = (
        CheckRun.objects.select_related("created_by")
        .prefetch_related(Prefetch("checks", queryset=ComplianceCheck.objects.order_by("id")))
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise NotFound("Check run not found.")
    return run


def assessment_get(*, assessment_id: int) -> SecurityAssessment:
    found = SecurityAssessment.objects.filter(pk=assessment_id).first()
    if found is None:
        raise NotFound("Security assessment not found.")
    return found


def pia_get(*, pia_id: int) -> PrivacyImpactAssessment:
    found = (
        PrivacyImpactAssessment.objects.select_related("created_by", "submitted_by", "reviewed_by")
        .filter(pk=pia_id)
        .first()
    )
    if found is None:
        raise NotFound("DPIA not found.")
    return found


def pattern_get(*, validation_id: int) -> PatternValidation:
    found = (
        PatternValidation.objects.select_related("run", "security_assessment")
        .prefetch_related(Prefetch("run__checks", queryset=ComplianceCheck.objects.order_by("id")))
        .filter(pk=validation_id)
        .first()
    )
    if found is None:
        raise NotFound("Pattern validation not found.")
    return found


def pattern_result(validation: PatternValidation) -> dict:
    """The seed's answer: validation_passed, checks, pia_required, security_level,
    recommendations."""
    return {
        "id": validation.pk,
        "pattern_name": validation.run.subject_name,
        "validation_passed": validation.validation_passed,
        "checks": list(validation.run.checks.all()),
        "pia_required": validation.pia_required,
        "pia_reasons": validation.pia_reasons,
        "security_level": validation.security_level,
        "vulnerabilities": validation.security_assessment.vulnerabilities,
        "recommendations": validation.recommendations,
        "catalogue_version": validation.run.catalogue_version,
        "created_at": validation.created_at,
    }


def monitor_list() -> list[Monitor]:
    """Failing first (never run counts as failing), then by their order."""
    rows = list(Monitor.objects.order_by("sort_order", "key"))
    return sorted(rows, key=lambda m: (m.passed is True, m.sort_order))


def dashboard(monitors: list[Monitor]) -> dict:
    """Pass/fail per standard: a monitor counts under each standard its codes belong to."""
    by_standard = []
    for value, label in Standard.choices:
        mine = [m for m in monitors if value in m.standards]
        passed = sum(1 for m in mine if m.passed is True)
        by_standard.append(
            {"standard": value, "label": label, "passed": passed, "failed": len(mine) - passed}
        )
    return {
        "by_standard": by_standard,
        "failing": [m for m in monitors if m.passed is not True],
        "passing": [m for m in monitors if m.passed is True],
        "last_checked": max((m.checked_at for m in monitors if m.checked_at), default=None),
    }


def processing_record_list():
    return processing_records()


def failing_monitor_count(*, at=None) -> tuple[int, int]:
    """(monitors with a result, those failing) now, or as their history stood at `at`."""
    if at is None:
        rows = list(Monitor.objects.filter(passed__isnull=False).values_list("passed", flat=True))
    else:
        rows = [m.passed for m in Monitor.history.as_of(at) if m.passed is not None]
    return len(rows), sum(1 for passed in rows if not passed)
