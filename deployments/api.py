"""Deployments API: rollouts under /api/v1/deployments, the release an account gets, and
onboarding experiments under /api/v1/onboarding/ (docs/deployments.md)."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import StringConstraints

from deployments import selectors, services
from opsplatform.errors import InvalidInput
from opsplatform.schemas import Id, Input, NoNul, Pagination, responses
from opsplatform.tenancy import require_account, require_perm, scope_account_id

router = Router(tags=["deployments"])

VIEW = "deployments.view_deployment"
ADD = "deployments.add_deployment"
CHANGE = "deployments.change_deployment"
VIEW_ONBOARDING = "deployments.view_onboardingversion"
ADD_ONBOARDING = "deployments.add_onboardingversion"
CHANGE_ONBOARDING = "deployments.change_onboardingversion"
ASSIGN_ONBOARDING = "deployments.add_onboardingassignment"

Percentage = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
Version = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]
# Literal, not the models' TextChoices: other apps also have enums named `Status`, and the
# OpenAPI components are keyed by class name.
StrategyName = Literal["rolling", "canary", "blue_green", "all_at_once"]
DeploymentStatus = Literal["pending", "in_progress", "paused", "completed", "rolled_back", "failed"]
VersionStatus = Literal["draft", "active", "retired"]
Outcome = Literal["waiting", "advanced", "completed", "rolled_back", "held"]


# --- rollouts -----------------------------------------------------------------------------------


class DeploymentIn(Input):
    version: Version = Field(description="Semantic version; the release is created if new")
    strategy: StrategyName
    rollout_percentage: Percentage = Field(description="The first stage's percentage")
    stages: list[Percentage] | None = Field(None, min_length=1, max_length=20)
    bake_minutes: int | None = Field(None, ge=0, le=10_080)
    max_error_rate_increase: Annotated[Decimal, Field(ge=0, le=1, decimal_places=4)] | None = None
    max_ticket_rate_increase: Annotated[Decimal, Field(ge=0, le=99, decimal_places=4)] | None = None
    max_health_drop: Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)] | None = None
    min_events_per_arm: int | None = Field(None, ge=1, le=10_000_000)


class GateOut(Schema):
    gate: str
    result: str
    exposed_rate: float | None
    control_rate: float | None
    margin: float
    exposed_n: int
    control_n: int
    detail: str


class EvaluationOut(Schema):
    id: int
    deployment_id: int
    evaluated_at: dt.datetime
    stage_index: int
    percentage: float
    window_start: dt.datetime
    window_end: dt.datetime
    baked: bool
    outcome: Outcome
    failed_gate: str
    triggered_by: str
    gates: list[GateOut]


class DeploymentOut(Schema):
    id: int
    version: str
    replaces: str | None
    strategy: StrategyName
    status: DeploymentStatus
    stages: list[float]
    stage_index: int
    current_percentage: float
    bake_minutes: int
    max_error_rate_increase: float
    max_ticket_rate_increase: float
    max_health_drop: float
    min_events_per_arm: int
    created_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    stage_started_at: dt.datetime | None
    completed_at: dt.datetime | None
    rolled_back_at: dt.datetime | None
    rollback_reason: str

    @staticmethod
    def resolve_version(obj):
        return obj.release.version

    @staticmethod
    def resolve_replaces(obj):
        return obj.replaces.version if obj.replaces_id else None

    @staticmethod
    def resolve_stages(obj):
        return [float(p) for p in obj.stage_percentages]

    @staticmethod
    def resolve_created_by(obj):
        return obj.created_by.get_username() if obj.created_by_id else None


class DeploymentDetailOut(DeploymentOut):
    evaluations: list[EvaluationOut]

    @staticmethod
    def resolve_evaluations(obj):
        return selectors.evaluations_of(obj)


class ExecuteIn(Input):
    dry_run: bool = False


class DeploymentStageOut(Schema):
    stage: int
    percentage: float
    bake_minutes: int
    accounts: int
    accounts_by_persona: dict[str, int]


class DeploymentPlanOut(Schema):
    deployment_id: int
    release: str
    strategy: str
    dry_run: bool
    stages: list[DeploymentStageOut]


class RollbackIn(Input):
    reason: Reason


class AssignmentOut(Schema):
    account_id: int
    release: str | None
    deployment_id: int | None
    exposed: bool
    bucket: float | None


@router.post(
    "/deployments",
    response=responses({201: DeploymentOut}),
    summary="Create a pending deployment of a release",
)
def create_deployment(request, payload: DeploymentIn):
    require_perm(request.user, ADD)
    extra = {
        k: v
        for k, v in payload.model_dump(
            include={
                "bake_minutes",
                "max_error_rate_increase",
                "max_ticket_rate_increase",
                "max_health_drop",
                "min_events_per_arm",
            }
        ).items()
        if v is not None
    }
    deployment = services.create_deployment(
        version=payload.version,
        strategy=payload.strategy,
        rollout_percentage=payload.rollout_percentage,
        stages=payload.stages,
        actor=request.user,
        **extra,
    )
    return Status(201, selectors.deployment_get(deployment_id=deployment.id))


@router.get(
    "/deployments",
    response=responses({200: list[DeploymentOut]}),
    summary="Deployments, newest first",
)
@paginate(Pagination)
def list_deployments(request, status: DeploymentStatus | None = None):
    require_perm(request.user, VIEW)
    qs = selectors.deployment_list()
    if status:
        qs = qs.filter(status=status)
    return qs


@router.get(
    "/deployments/assignment",
    response=responses({200: AssignmentOut}),
    summary="Which release an account gets (staff)",
)
def deployment_assignment(request, account_id: Id):
    scoped = scope_account_id(request.user, account_id, perm=VIEW)
    return selectors.release_assignment(account_id=scoped)


@router.get(
    "/me/release",
    response=responses({200: AssignmentOut}),
    summary="Which release the caller's account gets",
)
def my_release(request):
    account = require_account(request.user)
    return selectors.release_assignment(account_id=account.id)


@router.get(
    "/deployments/{deployment_id}",
    response=responses({200: DeploymentDetailOut}),
    summary="One deployment with its gate evaluations",
)
def get_deployment(request, deployment_id: Id):
    require_perm(request.user, VIEW)
    return selectors.deployment_get(deployment_id=deployment_id)


@router.post(
    "/deployments/{deployment_id}/execute",
    response=responses({200: DeploymentPlanOut | DeploymentOut}),
    summary="Start the deployment, or with dry_run see its plan (writes nothing)",
)
def execute_deployment(request, deployment_id: Id, payload: ExecuteIn):
    require_perm(request.user, CHANGE)
    result = services.execute_deployment(
        deployment_id=deployment_id, dry_run=payload.dry_run, actor=request.user
    )
    if payload.dry_run:
        return result
    return selectors.deployment_get(deployment_id=deployment_id)


def _move(request, deployment_id: int, service, **kwargs):
    require_perm(request.user, CHANGE)
    service(deployment_id=deployment_id, actor=request.user, **kwargs)
    return selectors.deployment_get(deployment_id=deployment_id)


@router.post(
    "/deployments/{deployment_id}/rollback",
    response=responses({200: DeploymentOut}),
    summary="Roll back: nobody is exposed any more",
)
def rollback_deployment(request, deployment_id: Id, payload: RollbackIn):
    return _move(request, deployment_id, services.rollback_deployment, reason=payload.reason)


@router.post(
    "/deployments/{deployment_id}/pause",
    response=responses({200: DeploymentOut}),
    summary="Pause at the current percentage",
)
def pause_deployment(request, deployment_id: Id):
    return _move(request, deployment_id, services.pause_deployment)


@router.post(
    "/deployments/{deployment_id}/resume",
    response=responses({200: DeploymentOut}),
    summary="Resume a paused deployment",
)
def resume_deployment(request, deployment_id: Id):
    return _move(request, deployment_id, services.resume_deployment)


@router.post(
    "/deployments/{deployment_id}/promote",
    response=responses({200: DeploymentOut}),
    summary="Go to the next stage now",
)
def promote_deployment(request, deployment_id: Id):
    return _move(request, deployment_id, services.promote_deployment)


@router.post(
    "/deployments/{deployment_id}/evaluate",
    response=responses({200: EvaluationOut}),
    summary="Evaluate the gates now (may advance or roll back)",
)
def evaluate_deployment(request, deployment_id: Id):
    require_perm(request.user, CHANGE)
    return services.evaluate_gates(deployment_id=deployment_id, actor=request.user)


# --- onboarding ----------------------------------------------------------------------------------


class OnboardingVersionIn(Input):
    name: Name
    rollout_percentage: Percentage
    target_personas: list[Slug] = Field(default_factory=list, max_length=20)
    features: list[Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]] = Field(
        default_factory=list, max_length=50
    )
    window_days: int = Field(14, ge=1, le=365)
    min_sample_per_arm: int = Field(100, ge=1, le=10_000_000)


class OnboardingVersionOut(Schema):
    id: int
    name: str
    features: list[str]
    target_personas: list[str]
    rollout_percentage: float
    status: VersionStatus
    window_days: int
    min_sample_per_arm: int
    created_at: dt.datetime
    activated_at: dt.datetime | None
    retired_at: dt.datetime | None

    @staticmethod
    def resolve_target_personas(obj):
        return sorted(p.slug for p in obj.target_personas.all())


class OnboardingAssignIn(Input):
    account_id: Id | None = Field(None, description="Staff: the account; customers omit it")


class OnboardingAssignmentOut(Schema):
    account_id: int
    version_id: int | None
    version_name: str | None
    features: list[str]
    assigned_at: dt.datetime


class ArmOut(Schema):
    version_id: int | None
    name: str
    assigned: int
    completed: int
    completion_rate: float | None
    ci_low: float | None
    ci_high: float | None


class ResultsOut(Schema):
    version_id: int
    window_days: int
    arms: list[ArmOut]
    lift_abs: float | None
    lift_abs_ci_low: float | None
    lift_abs_ci_high: float | None
    lift_rel: float | None
    p_value: float | None
    srm_p_value: float | None
    srm_flag: bool
    verdict: str


@router.post(
    "/onboarding/versions",
    response=responses({201: OnboardingVersionOut}),
    summary="Create a draft onboarding version",
)
def create_onboarding_version(request, payload: OnboardingVersionIn):
    require_perm(request.user, ADD_ONBOARDING)
    version = services.create_onboarding_version(
        version_name=payload.name,
        rollout_percentage=payload.rollout_percentage,
        target_personas=payload.target_personas,
        features=payload.features,
        window_days=payload.window_days,
        min_sample_per_arm=payload.min_sample_per_arm,
        actor=request.user,
    )
    return Status(201, selectors.onboarding_version_get(version_id=version.id))


@router.get(
    "/onboarding/versions",
    response=responses({200: list[OnboardingVersionOut]}),
    summary="Onboarding versions, newest first",
)
@paginate(Pagination)
def list_onboarding_versions(request, status: VersionStatus | None = None):
    require_perm(request.user, VIEW_ONBOARDING)
    qs = selectors.onboarding_version_list()
    if status:
        qs = qs.filter(status=status)
    return qs


@router.get(
    "/onboarding/versions/{version_id}",
    response=responses({200: OnboardingVersionOut}),
    summary="One onboarding version",
)
def get_onboarding_version(request, version_id: Id):
    require_perm(request.user, VIEW_ONBOARDING)
    return selectors.onboarding_version_get(version_id=version_id)


@router.post(
    "/onboarding/versions/{version_id}/activate",
    response=responses({200: OnboardingVersionOut}),
    summary="Start assigning the version (refused past 100% per persona)",
)
def activate_onboarding_version(request, version_id: Id):
    require_perm(request.user, CHANGE_ONBOARDING)
    services.activate_version(version_id=version_id, actor=request.user)
    return selectors.onboarding_version_get(version_id=version_id)


@router.post(
    "/onboarding/versions/{version_id}/retire",
    response=responses({200: OnboardingVersionOut}),
    summary="Stop assigning the version",
)
def retire_onboarding_version(request, version_id: Id):
    require_perm(request.user, CHANGE_ONBOARDING)
    services.retire_version(version_id=version_id, actor=request.user)
    return selectors.onboarding_version_get(version_id=version_id)


@router.get(
    "/onboarding/versions/{version_id}/results",
    response=responses({200: ResultsOut}),
    summary="The version against control: completion, lift, p-value, sample-ratio check",
)
def onboarding_results(
    request, version_id: Id, window_days: int | None = Query(None, ge=1, le=365)
):
    require_perm(request.user, VIEW_ONBOARDING)
    version = selectors.onboarding_version_get(version_id=version_id)
    return selectors.onboarding_results(version=version, window_days=window_days)


@router.post(
    "/onboarding/assignments",
    response=responses({200: OnboardingAssignmentOut}),
    summary="The account's onboarding flow (made once, then always the same)",
)
def assign_onboarding(request, payload: OnboardingAssignIn):
    account_id = scope_account_id(request.user, payload.account_id, perm=ASSIGN_ONBOARDING)
    if account_id is None:
        raise InvalidInput("Give the account_id to assign.", field="account_id")
    assignment, _ = services.assign_user_to_version(user_id=account_id, actor=request.user)
    version = assignment.version
    return {
        "account_id": assignment.account_id,
        "version_id": version.id if version else None,
        "version_name": version.name if version else None,
        "features": list(version.features) if version else [],
        "assigned_at": assignment.assigned_at,
    }


# Account health (issue 10): /api/v1/health/… and /api/v1/me/health.
from deployments.health.api import router as health_router  # noqa: E402

router.add_router("", health_router)
