"""Scaling checkpoints API (staff with the checkpoints permissions; customers get 403):
POST/GET /checkpoints, GET /checkpoints/{id}, GET/POST/PATCH /checkpoints/kpis,
GET /checkpoints/backlog, POST /checkpoints/freeze/lift."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Path, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import StringConstraints

from checkpoints import selectors, services
from checkpoints.models import MAX_DAYS, Checkpoint, ScopeKind, Severity
from opsplatform.errors import InvalidInput
from opsplatform.schemas import Id, Input, NoNul, Pagination, responses
from opsplatform.tenancy import require_perm

router = Router(tags=["checkpoints"])

Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul]
Text = Annotated[str, StringConstraints(max_length=2000), NoNul]
Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$"), NoNul]
Scope = Annotated[str, StringConstraints(max_length=40), NoNul]
MetricKey = Annotated[str, StringConstraints(min_length=1, max_length=60), NoNul]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS, strict=True)]
Number = Annotated[
    Decimal,
    Field(
        ge=Decimal("-1000000000"), le=Decimal("1000000000"), decimal_places=4, allow_inf_nan=False
    ),
]
Band = Annotated[
    Decimal, Field(ge=Decimal("0"), le=Decimal("1000000000"), decimal_places=4, allow_inf_nan=False)
]
CheckpointStatus = Literal["passed", "warning", "failed"]
ScopeKindName = Literal[tuple(ScopeKind.values)]  # type: ignore[valid-type]
SeverityName = Literal[tuple(Severity.values)]  # type: ignore[valid-type]
ComparatorName = Literal[">=", "<="]


class RunIn(Input):
    checkpoint_name: Name
    days: Days = 90


class CheckpointOut(Schema):
    id: int
    checkpoint_name: str = Field(alias="name")
    days: int
    as_of: dt.datetime
    status: CheckpointStatus
    summary: str
    persona_results: dict[str, Any]
    function_results: dict[str, Any]
    journey_results: dict[str, Any]
    escalations: list[dict[str, Any]]
    backlog_items: list[dict[str, Any]]
    created_at: dt.datetime


class CheckpointFilters(Schema):
    status: CheckpointStatus | None = None


class KPIOut(Schema):
    key: str
    name: str
    description: str
    scope_kind: str
    scope: str
    metric: str
    comparator: str
    target: Decimal
    warning_band: Decimal
    window_days: int | None
    severity: str
    reliability: bool
    active: bool


class KPIIn(Input):
    key: Key
    name: Name
    description: Text = ""
    scope_kind: ScopeKindName
    scope: Scope = ""
    metric: MetricKey
    comparator: ComparatorName
    target: Number
    warning_band: Band = Decimal("0")
    window_days: Days | None = None
    severity: SeverityName = "medium"
    reliability: bool = Field(False, strict=True)
    active: bool = Field(True, strict=True)


class KPIPatch(Input):
    key: Key
    name: Name | None = None
    description: Text | None = None
    scope_kind: ScopeKindName | None = None
    scope: Scope | None = None
    metric: MetricKey | None = None
    comparator: ComparatorName | None = None
    target: Number | None = None
    warning_band: Band | None = None
    window_days: Days | None = None
    severity: SeverityName | None = None
    reliability: bool | None = Field(None, strict=True)
    active: bool | None = Field(None, strict=True)


class BacklogOut(Schema):
    id: int
    title: str
    description: str
    kpi: str
    priority: str
    status: str
    gap: Decimal | None
    times_failed: int
    feature_key: str
    score: Decimal | None
    first_checkpoint_id: int
    last_checkpoint_id: int
    updated_at: dt.datetime

    @staticmethod
    def resolve_kpi(obj):
        return obj.kpi.key


class BacklogFilters(Schema):
    status: Literal["open", "in_progress", "done", "wont_do"] | None = None


class LiftIn(Input):
    reason: Reason


class FreezeOut(Schema):
    id: int
    source: str
    checkpoint_name: str
    kpi_key: str
    reason: str
    created_at: dt.datetime
    lifted_at: dt.datetime | None
    lift_reason: str


@router.post(
    "/checkpoints",
    response=responses({201: CheckpointOut}),
    summary="Run a scaling checkpoint now (run_checkpoint)",
)
def create_checkpoint(request, payload: RunIn):
    require_perm(request.user, "checkpoints.run_checkpoint")
    checkpoint = services.run_checkpoint(payload.checkpoint_name, payload.days, actor=request.user)
    return Status(201, checkpoint)


@router.get(
    "/checkpoints",
    response=responses({200: list[CheckpointOut]}),
    summary="Checkpoints, newest first (list_checkpoints)",
)
@paginate(Pagination)
def list_checkpoints(request, filters: Query[CheckpointFilters]):
    require_perm(request.user, "checkpoints.view_checkpoint")
    return services.list_checkpoints(status=filters.status)


@router.get("/checkpoints/kpis", response=responses({200: list[KPIOut]}), summary="KPI definitions")
@paginate(Pagination)
def list_kpis(request):
    require_perm(request.user, "checkpoints.view_kpidefinition")
    return selectors.kpi_list()


@router.post("/checkpoints/kpis", response=responses({201: KPIOut}), summary="Define a KPI")
def create_kpi(request, payload: KPIIn):
    require_perm(request.user, "checkpoints.add_kpidefinition")
    data = payload.model_dump()
    return Status(201, services.create_kpi(actor=request.user, **data))


@router.patch(
    "/checkpoints/kpis",
    response=responses({200: KPIOut}),
    summary="Change a KPI (named by its key in the body)",
)
def update_kpi(request, payload: KPIPatch):
    require_perm(request.user, "checkpoints.change_kpidefinition")
    changes = payload.model_dump(exclude_unset=True)
    key = changes.pop("key")
    nulls = [f for f, v in changes.items() if v is None and f != "window_days"]
    if nulls:
        raise InvalidInput(f"{nulls[0]} must not be null.", field=nulls[0])
    return services.update_kpi(key=key, actor=request.user, **changes)


@router.get(
    "/checkpoints/backlog",
    response=responses({200: list[BacklogOut]}),
    summary="The backlog the checkpoints opened, most urgent first",
)
@paginate(Pagination)
def list_backlog(request, filters: Query[BacklogFilters]):
    require_perm(request.user, "checkpoints.view_backlogitem")
    return selectors.backlog_list(status=filters.status)


@router.post(
    "/checkpoints/freeze/lift",
    response=responses({200: list[FreezeOut]}),
    summary="Lift the rollout freeze with a reason (kept in history)",
)
def lift_freeze(request, payload: LiftIn):
    require_perm(request.user, "deployments.lift_rolloutfreeze")
    return services.lift_freeze(reason=payload.reason, actor=request.user)


@router.get(
    "/checkpoints/{checkpoint_id}",
    response=responses({200: CheckpointOut}),
    summary="One checkpoint",
)
def get_checkpoint(request, checkpoint_id: Path[Id]):
    require_perm(request.user, "checkpoints.view_checkpoint")
    return selectors.checkpoint_get(checkpoint_id=checkpoint_id)


__all__ = ["Checkpoint", "router"]
