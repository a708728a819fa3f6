"""Compliance API under /api/v1/compliance/ (the compliance group, or staff with the
permission): the catalogue, segment checks, security assessments, DPIAs and their sign-off,
pattern validations, the monitors and the record of processing. Customers get 403."""

import datetime as dt
from typing import Annotated, Any, Literal

from ninja import Field, Path, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import StringConstraints

from compliance import metadata, selectors, services
from compliance.models import PrivacyImpactAssessment
from opsplatform.schemas import Id, Input, NoNul, Pagination, responses
from opsplatform.tenancy import require_perm

router = Router(tags=["compliance"])

Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Note = Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul]
StandardName = metadata.Standard
Standards = Annotated[list[StandardName], Field(min_length=1, max_length=3)]
Outcome = Literal["passed", "failed", "not_evidenced"]
Level = Literal["none", "low", "medium", "high", "critical"]
PiaStatus = Literal[tuple(PrivacyImpactAssessment.Status.values)]  # type: ignore[valid-type]


class RequirementOut(Schema):
    code: str
    standard: str
    title: str
    text: str
    severity: str
    rule: dict[str, Any]
    remediation: str
    catalogue_version: str


class RequirementFilters(Schema):
    standard: StandardName | None = None


class CheckOut(Schema):
    requirement: str = Field(alias="requirement_code")
    standard: str
    passed: bool
    outcome: Outcome
    severity: str
    finding: str
    remediation: str


class SegmentCheckIn(Input):
    segment_name: Name
    segment_metadata: metadata.SegmentMetadata
    applicable_standards: Standards


class CheckRunOut(Schema):
    id: int
    kind: str
    subject_name: str
    standards: list[str]
    catalogue_version: str
    passed: bool
    checks: list[CheckOut]
    created_at: dt.datetime

    @staticmethod
    def resolve_checks(obj):
        return list(obj.checks.all())


class SecurityIn(Input):
    feature_name: Name
    feature_metadata: metadata.FeatureMetadata


class VulnerabilityOut(Schema):
    key: str
    title: str
    owasp: str
    cwe: str
    severity: str
    finding: str
    remediation: str


class SecurityOut(Schema):
    id: int
    feature_name: str
    security_level: Level
    vulnerabilities: list[VulnerabilityOut]
    recommendations: list[str]
    unanswered: list[str]
    created_at: dt.datetime


class PiaIn(Input):
    feature_name: Name
    data_types_collected: list[metadata.Term] = Field(max_length=50)
    data_retention_period: metadata.Days = Field(description="Days")
    data_sharing: list[metadata.Term] = Field(default_factory=list, max_length=50)
    user_consent_required: bool = Field(strict=True)
    systematic_monitoring: bool = Field(False, strict=True)
    automated_decisions: bool = Field(False, strict=True)


class PiaOut(Schema):
    id: int
    feature_name: str
    status: PiaStatus
    dpia_required: bool
    required_reasons: list[str]
    data_types_collected: list[str]
    data_retention_period: int
    data_sharing: list[str]
    user_consent_required: bool
    systematic_monitoring: bool
    automated_decisions: bool
    description: dict[str, Any]
    necessity: list[dict[str, Any]]
    risks: list[dict[str, Any]]
    residual_risk: str
    submitted_by: str | None
    reviewed_by: str | None
    review_note: str
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    reviewed_at: dt.datetime | None

    @staticmethod
    def resolve_submitted_by(obj):
        return obj.submitted_by.get_username() if obj.submitted_by_id else None

    @staticmethod
    def resolve_reviewed_by(obj):
        return obj.reviewed_by.get_username() if obj.reviewed_by_id else None


class ReviewIn(Input):
    decision: Literal["approved", "rejected"]
    note: Note


class PatternIn(Input):
    pattern_name: Name
    pattern_metadata: metadata.PatternMetadata
    applicable_standards: Standards


class PatternOut(Schema):
    id: int
    pattern_name: str
    validation_passed: bool
    checks: list[CheckOut]
    pia_required: bool
    pia_reasons: list[str]
    security_level: Level
    vulnerabilities: list[VulnerabilityOut]
    recommendations: list[str]
    catalogue_version: str
    created_at: dt.datetime


class MonitorOut(Schema):
    key: str
    title: str
    passed: bool | None
    summary: str
    evidence: dict[str, Any]
    requirement_codes: list[str]
    standards: list[str]
    remediation: str | None
    error: str
    checked_at: dt.datetime | None

    @staticmethod
    def resolve_remediation(obj):
        return None if obj.passed else obj.remediation


MonitorKey = Annotated[str, StringConstraints(max_length=60), NoNul]


class MonitorRunIn(Input):
    keys: list[MonitorKey] | None = Field(None, max_length=20, description="All when absent")


class ProcessingRecordOut(Schema):
    app: str
    model: str
    field: str
    field_label: str
    purpose: str
    legal_basis: str
    retention: str
    has_history: bool


@router.get(
    "requirements",
    response=responses({200: list[RequirementOut]}),
    summary="The requirement catalogue",
)
@paginate(Pagination)
def list_requirements(request, filters: Query[RequirementFilters]):
    require_perm(request.user, "compliance.view_requirement")
    return selectors.requirement_list(standard=filters.standard)


@router.post(
    "segment-checks",
    response=responses({201: CheckRunOut}),
    summary="Check a segment's metadata against the standards (validate_segment_compliance)",
)
def create_segment_check(request, payload: SegmentCheckIn):
    require_perm(request.user, "compliance.add_checkrun")
    run = services.validate_segment_compliance(
        segment_name=payload.segment_name,
        segment_metadata=payload.segment_metadata.model_dump(exclude_none=True),
        applicable_standards=payload.applicable_standards,
        actor=request.user,
    )
    return Status(201, selectors.check_run_get(run_id=run.pk))


@router.post(
    "security-assessments",
    response=responses({201: SecurityOut}),
    summary="Assess a feature's security (assess_security)",
)
def create_security_assessment(request, payload: SecurityIn):
    require_perm(request.user, "compliance.add_securityassessment")
    assessment = services.assess_security(
        feature_name=payload.feature_name,
        feature_metadata=payload.feature_metadata.model_dump(exclude_none=True),
        actor=request.user,
    )
    return Status(201, assessment)


@router.post(
    "pias",
    response=responses({201: PiaOut}),
    summary="Conduct a DPIA (conduct_privacy_impact_assessment); it starts as a draft",
)
def create_pia(request, payload: PiaIn):
    require_perm(request.user, "compliance.add_privacyimpactassessment")
    pia = services.conduct_privacy_impact_assessment(**payload.model_dump(), actor=request.user)
    return Status(201, selectors.pia_get(pia_id=pia.pk))


@router.get("pias/{pia_id}", response=responses({200: PiaOut}), summary="One DPIA")
def get_pia(request, pia_id: Path[Id]):
    require_perm(request.user, "compliance.view_privacyimpactassessment")
    return selectors.pia_get(pia_id=pia_id)


@router.post(
    "pias/{pia_id}/submit",
    response=responses({200: PiaOut}),
    summary="Submit a draft DPIA for review",
)
def submit_pia(request, pia_id: Path[Id]):
    require_perm(request.user, "compliance.change_privacyimpactassessment")
    services.submit_pia(pia_id=pia_id, actor=request.user)
    return selectors.pia_get(pia_id=pia_id)


@router.post(
    "pias/{pia_id}/review",
    response=responses({200: PiaOut}),
    summary="Approve or reject a DPIA in review (compliance group only)",
)
def review_pia(request, pia_id: Path[Id], payload: ReviewIn):
    require_perm(request.user, "compliance.review_dpia")
    services.review_pia(
        pia_id=pia_id, decision=payload.decision, note=payload.note, actor=request.user
    )
    return selectors.pia_get(pia_id=pia_id)


@router.post(
    "pattern-validations",
    response=responses({201: PatternOut}),
    summary="Validate an operational pattern (validate_operational_pattern)",
)
def create_pattern_validation(request, payload: PatternIn):
    require_perm(request.user, "compliance.add_patternvalidation")
    validation = services.validate_operational_pattern(
        pattern_name=payload.pattern_name,
        pattern_metadata=payload.pattern_metadata.model_dump(exclude_none=True),
        applicable_standards=payload.applicable_standards,
        actor=request.user,
    )
    return Status(201, selectors.pattern_result(selectors.pattern_get(validation_id=validation.pk)))


@router.get(
    "monitors",
    response=responses({200: list[MonitorOut]}),
    summary="The monitors, failing first",
)
def list_monitors(request):
    require_perm(request.user, "compliance.view_monitor")
    return selectors.monitor_list()


@router.post(
    "monitors/run",
    response=responses({200: list[MonitorOut]}),
    summary="Refresh the monitors now (all, or the keys given)",
)
def run_monitors(request, payload: MonitorRunIn | None = None):
    require_perm(request.user, "compliance.run_monitors")
    keys = payload.keys if payload is not None else None
    services.run_monitors(keys=keys, actor=request.user)
    return selectors.monitor_list()


@router.get(
    "processing-records",
    response=responses({200: list[ProcessingRecordOut]}),
    summary="The record of processing (GDPR Art. 30), from the apps' privacy declarations",
)
def list_processing_records(request):
    require_perm(request.user, "compliance.view_requirement")
    return selectors.processing_record_list()
