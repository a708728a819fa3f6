"""Every write of the compliance app: segment checks, security assessments, DPIAs and their
sign-off (through the status machine), pattern validations, and the monitors' refresh.
The seed's four operations keep their names."""

import logging
import time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from compliance import catalogue, dpia, metadata, monitors, rules, security
from compliance.models import (
    CheckRun,
    ComplianceCheck,
    Monitor,
    PatternValidation,
    PrivacyImpactAssessment,
    Requirement,
    SecurityAssessment,
)
from opsplatform.errors import Conflict, Forbidden, InvalidInput, NotFound
from opsplatform.transitions import transition
from opsplatform.validation import clean_text

logger = logging.getLogger(__name__)

COMPLIANCE_GROUP = "compliance"
Status = PrivacyImpactAssessment.Status


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def _save(obj, actor) -> None:
    obj.full_clean()
    if _user(actor) is not None:
        obj._history_user = actor
    obj.save()


# --- the catalogue ------------------------------------------------------------------------

EDITABLE = ("title", "text", "severity", "rule", "remediation")


@transaction.atomic
def update_requirement(*, requirement: Requirement, actor, reason: str = "", **changes):
    """An edit of a requirement's wording, severity, rule or remediation (validated, in
    history with the editor); its code, standard and version stay."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}.", field=sorted(unknown)[0])
    for name, value in changes.items():
        setattr(requirement, name, value)
    try:
        requirement.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidInput(messages[0], field=field) from None
    if _user(actor) is not None:
        requirement._history_user = actor
    requirement._change_reason = (reason or "edited")[:100]
    requirement.save()
    return requirement


# --- requirement checks -------------------------------------------------------------------


def _check_metadata(*, kind: str, name: str, meta: dict, standards: list[str], actor) -> CheckRun:
    """Evaluates every requirement of the standards asked for and stores the run."""
    requirements = list(Requirement.objects.filter(standard__in=standards).order_by("sort_order"))
    verdicts = [(r, rules.evaluate(r.rule, meta)) for r in requirements]
    run = CheckRun(
        kind=kind,
        subject_name=name,
        metadata=meta,
        standards=standards,
        catalogue_version=max(
            (r.catalogue_version for r in requirements), default=catalogue.CURRENT_VERSION
        ),
        passed=all(v.outcome == rules.PASSED for _, v in verdicts),
        created_by=_user(actor),
    )
    run.full_clean()
    run.save()
    ComplianceCheck.objects.bulk_create(
        ComplianceCheck(
            run=run,
            requirement=requirement,
            requirement_code=requirement.code,
            standard=requirement.standard,
            passed=verdict.outcome == rules.PASSED,
            outcome=verdict.outcome,
            severity=requirement.severity,
            finding=verdict.finding[:1000],
            remediation="" if verdict.outcome == rules.PASSED else requirement.remediation,
        )
        for requirement, verdict in verdicts
    )
    return run


@transaction.atomic
def validate_segment_compliance(
    *, segment_name: str, segment_metadata: dict, applicable_standards, actor=None
) -> CheckRun:
    """One stored check per requirement of each standard asked for (none for the others)."""
    name = clean_text(segment_name, field="segment_name", label="The segment name", max_length=200)
    meta = metadata.parse(metadata.SegmentMetadata, segment_metadata, field="segment_metadata")
    standards = metadata.parse_standards(applicable_standards)
    return _check_metadata(
        kind=CheckRun.Kind.SEGMENT, name=name, meta=meta, standards=standards, actor=actor
    )


# --- security -----------------------------------------------------------------------------


def _assessment(name: str, meta: dict, actor) -> SecurityAssessment:
    found = security.find_vulnerabilities(meta)
    questions = security.unanswered(meta)
    assessment = SecurityAssessment(
        feature_name=name,
        metadata=meta,
        vulnerabilities=security.as_dicts(found),
        security_level=security.security_level(found),
        recommendations=security.recommendations(found, questions),
        unanswered=questions,
        created_by=_user(actor),
    )
    assessment.full_clean()
    assessment.save()
    return assessment


@transaction.atomic
def assess_security(*, feature_name: str, feature_metadata: dict, actor=None) -> SecurityAssessment:
    name = clean_text(feature_name, field="feature_name", label="The feature name", max_length=200)
    meta = metadata.parse(metadata.FeatureMetadata, feature_metadata, field="feature_metadata")
    return _assessment(name, meta, actor)


# --- DPIA ---------------------------------------------------------------------------------


@transaction.atomic
def conduct_privacy_impact_assessment(
    *,
    feature_name: str,
    data_types_collected,
    data_retention_period: int,
    data_sharing,
    user_consent_required: bool,
    systematic_monitoring: bool = False,
    automated_decisions: bool = False,
    actor=None,
) -> PrivacyImpactAssessment:
    """A draft DPIA in the ICO's steps (compliance/dpia.py), ready to submit for review."""
    args = metadata.parse_fields(
        metadata.PiaInput,
        {
            "feature_name": feature_name,
            "data_types_collected": data_types_collected,
            "data_retention_period": data_retention_period,
            "data_sharing": data_sharing,
            "user_consent_required": user_consent_required,
            "systematic_monitoring": systematic_monitoring,
            "automated_decisions": automated_decisions,
        },
    )
    types = list(dict.fromkeys(args["data_types_collected"]))
    sharing = list(dict.fromkeys(args["data_sharing"]))
    days, consent = args["data_retention_period"], args["user_consent_required"]
    reasons = dpia.screen(
        types,
        systematic_monitoring=args["systematic_monitoring"],
        automated_decisions=args["automated_decisions"],
    )
    found = dpia.risks(
        data_types=types,
        retention_days=days,
        sharing=sharing,
        consent=consent,
        systematic_monitoring=args["systematic_monitoring"],
        automated_decisions=args["automated_decisions"],
    )
    pia = PrivacyImpactAssessment(
        feature_name=args["feature_name"],
        data_types_collected=types,
        data_retention_period=days,
        data_sharing=sharing,
        user_consent_required=consent,
        systematic_monitoring=args["systematic_monitoring"],
        automated_decisions=args["automated_decisions"],
        dpia_required=bool(reasons),
        required_reasons=reasons,
        description=dpia.describe(
            feature_name=args["feature_name"],
            data_types=types,
            retention_days=days,
            sharing=sharing,
            consent=consent,
        ),
        necessity=dpia.necessity(data_types=types, retention_days=days, consent=consent),
        risks=found,
        residual_risk=dpia.residual_risk(found),
        created_by=_user(actor),
    )
    _save(pia, actor)
    return pia


def _pia(pia_id: int) -> PrivacyImpactAssessment:
    pia = PrivacyImpactAssessment.objects.filter(pk=pia_id).first()
    if pia is None:
        raise NotFound("DPIA not found.")
    return pia


def submit_pia(*, pia_id: int, actor) -> PrivacyImpactAssessment:
    """draft → in review."""
    return transition(
        _pia(pia_id),
        Status.IN_REVIEW,
        actor=actor,
        reason="submitted for review",
        submitted_by=_user(actor),
    )


def can_review(user) -> bool:
    """Only members of the compliance group (with the permission) sign DPIAs off."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.groups.filter(name=COMPLIANCE_GROUP).exists()
        and user.has_perm("compliance.review_dpia")
    )


def review_pia(*, pia_id: int, decision: str, note: str, actor) -> PrivacyImpactAssessment:
    """in review → approved or rejected, by a compliance-group member other than the one
    who submitted it, with a note."""
    if decision not in (Status.APPROVED, Status.REJECTED):
        raise InvalidInput('decision must be "approved" or "rejected".', field="decision")
    note = clean_text(note, field="note", label="The reviewer's note", max_length=2000)
    if not can_review(actor):
        raise Forbidden("Only the compliance group may approve or reject a DPIA.")
    with transaction.atomic():
        pia = PrivacyImpactAssessment.objects.select_for_update().filter(pk=pia_id).first()
        if pia is None:
            raise NotFound("DPIA not found.")
        if pia.status == Status.IN_REVIEW and pia.submitted_by_id == actor.pk:
            raise Conflict(
                "A DPIA is reviewed by someone other than who submitted it.", code="same_reviewer"
            )
        return transition(
            pia,
            decision,
            actor=actor,
            reason=f"{decision}: {note}",
            lock=False,
            reviewed_by=actor,
            review_note=note,
        )


# --- operational patterns -----------------------------------------------------------------

_ALIASES = {
    # a pattern states its design in its own words; the catalogue's rules read these keys
    "consent_obtained": "user_consent_required",
    "encryption_at_rest": "encryption_implemented",
    "encryption_in_transit": "encryption_implemented",
}


@transaction.atomic
def validate_operational_pattern(
    *, pattern_name: str, pattern_metadata: dict, applicable_standards, actor=None
) -> PatternValidation:
    """Checks (as a segment), the DPIA screening and a security assessment of one pattern;
    it passes when every check passes and the security level is none or low."""
    name = clean_text(pattern_name, field="pattern_name", label="The pattern name", max_length=200)
    meta = metadata.parse(metadata.PatternMetadata, pattern_metadata, field="pattern_metadata")
    standards = metadata.parse_standards(applicable_standards)
    derived = dict(meta)
    for key, source in _ALIASES.items():
        if key not in derived and source in meta:
            derived[key] = meta[source]
    run = _check_metadata(
        kind=CheckRun.Kind.PATTERN, name=name, meta=derived, standards=standards, actor=actor
    )
    security_keys = set(metadata.FeatureMetadata.model_fields)
    assessment = _assessment(name, {k: v for k, v in derived.items() if k in security_keys}, actor)
    reasons = (
        dpia.screen(
            meta.get("data_types_collected", []),
            systematic_monitoring=meta.get("systematic_monitoring", False),
            automated_decisions=meta.get("automated_decisions", False),
        )
        if meta.get("personal_data_involved", True)
        else []
    )
    failed = run.checks.exclude(outcome=ComplianceCheck.Outcome.PASSED).order_by("id")
    recommendations = [f"{c.requirement_code}: {c.remediation}" for c in failed]
    recommendations += assessment.recommendations
    if reasons:
        recommendations.append(
            "Conduct a DPIA before launch (POST /compliance/pias): " + "; ".join(reasons)
        )
    validation = PatternValidation(
        run=run,
        security_assessment=assessment,
        validation_passed=run.passed and assessment.security_level in ("none", "low"),
        pia_required=bool(reasons),
        pia_reasons=reasons,
        security_level=assessment.security_level,
        recommendations=recommendations,
    )
    validation.full_clean()
    validation.save()
    return validation


# --- monitors -----------------------------------------------------------------------------


def ensure_monitors() -> int:
    """A row per monitor definition (idempotent); returns rows created."""
    created = 0
    for order, definition in enumerate(monitors.MONITORS):
        _, made = Monitor.objects.get_or_create(
            key=definition.key,
            defaults={
                "title": definition.title,
                "requirement_codes": list(definition.requirement_codes),
                "standards": monitors.standards_of(definition.requirement_codes),
                "remediation": definition.remediation,
                "sort_order": order,
            },
        )
        created += made
    return created


def run_monitors(*, keys=None, now=None, actor=None) -> list[Monitor]:
    """Refreshes the monitors (all, or those named): each in its own transaction, so one
    that errors is stored as failing with its error and the others still run. Safe twice."""
    if keys is not None:
        unknown = [k for k in keys if k not in monitors.BY_KEY]
        if unknown:
            raise InvalidInput(f"Unknown monitor(s): {', '.join(unknown)}.", field="keys")
    ensure_monitors()
    chosen = [m for m in monitors.MONITORS if keys is None or m.key in keys]
    now = now or timezone.now()
    results = []
    for order, definition in enumerate(monitors.MONITORS):
        if definition not in chosen:
            continue
        started = time.monotonic()
        error = ""
        try:
            with transaction.atomic():
                outcome = definition.run(now)
        except Exception as exc:  # a broken monitor must not hide the others' results
            logger.exception("compliance monitor %s failed", definition.key)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            outcome = monitors.Outcome(False, "The monitor could not run.", {})
        with transaction.atomic():
            monitor = Monitor.objects.select_for_update().get(key=definition.key)
            monitor.title = definition.title
            monitor.requirement_codes = list(definition.requirement_codes)
            monitor.standards = monitors.standards_of(definition.requirement_codes)
            monitor.remediation = definition.remediation
            monitor.sort_order = order
            monitor.passed = outcome.passed
            monitor.summary = outcome.summary[:500]
            monitor.evidence = outcome.evidence
            monitor.error = error
            monitor.checked_at = now
            monitor.duration_ms = int((time.monotonic() - started) * 1000)
            monitor._change_reason = "passed" if outcome.passed else "failed"
            _save(monitor, actor)
        results.append(monitor)
    return results


def ensure_catalogue() -> int:
    """The current catalogue's missing requirements (after a test flush); never overwrites."""
    return catalogue.load(Requirement, overwrite=False)
