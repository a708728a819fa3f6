"""Account health API: staff under /api/v1/health/, the customer's own health at
/api/v1/me/health (no recommendations, no ticket: those are customer success's notes).
Mounted by the deployments router (deployments/api.py). See docs/health.md."""

import datetime as dt
from decimal import Decimal
from typing import Literal

from ninja import Field, Router, Schema
from ninja.responses import Status

from deployments.health import selectors, services
from deployments.health.factors import described
from opsplatform.schemas import Id, Input, responses
from opsplatform.tenancy import require_account, require_perm

router = Router(tags=["health"])

VIEW = "deployments.view_accounthealth"
CHECK = "deployments.add_accounthealthcheck"
HealthStatusName = Literal["healthy", "at_risk", "critical", "no_data"]


class CheckIn(Input):
    account_id: Id
    days: int = Field(30, ge=1, le=services.MAX_DAYS)


class CheckAllIn(Input):
    days: int = Field(30, ge=1, le=services.MAX_DAYS)
    batch_size: int = Field(500, ge=1, le=services.MAX_BATCH)


class FactorOut(Schema):
    name: str
    label: str
    value: int | str | None = Field(description="Raw value; ratios as exact decimal strings")
    display: str
    has_data: bool
    points: Decimal | None
    weight: Decimal
    contribution: Decimal | None = Field(description="points * weight / total weight with data")
    cost: Decimal | None = Field(description="(100 - points) * weight / total weight with data")


class RecommendationOut(Schema):
    factor: str
    cost: Decimal
    text: str


class HealthCheckOut(Schema):
    id: int
    account_id: int
    persona: str
    checked_at: dt.datetime
    days: int
    score: Decimal | None
    status: HealthStatusName
    previous_status: HealthStatusName | None
    delta: Decimal | None
    factors: list[FactorOut]
    recommendations: list[RecommendationOut]
    triggered_by: str

    @staticmethod
    def resolve_persona(obj):
        return obj.persona.slug

    @staticmethod
    def resolve_factors(obj):
        return described(obj.factors)

    @staticmethod
    def resolve_previous_status(obj):
        return obj.previous_status or None


class HistoryPointOut(Schema):
    checked_at: dt.datetime
    score: Decimal | None
    status: HealthStatusName
    delta: Decimal | None


class AccountHealthOut(Schema):
    account_id: int
    status: HealthStatusName
    score: Decimal | None
    status_changed_at: dt.datetime
    critical_since: dt.datetime | None
    critical_ticket_id: int | None
    latest: HealthCheckOut
    history: list[HistoryPointOut]


class StatusCountsOut(Schema):
    healthy: int
    at_risk: int
    critical: int
    no_data: int


class PersonaCountsOut(Schema):
    persona: str
    total: int
    counts: StatusCountsOut


class SummaryOut(Schema):
    total: int
    counts: StatusCountsOut
    personas: list[PersonaCountsOut]


class QueuedOut(Schema):
    task_id: str
    days: int
    batch_size: int


class MyFactorOut(Schema):
    name: str
    label: str
    value: int | str | None
    display: str
    has_data: bool
    points: Decimal | None
    weight: Decimal


class MyHealthOut(Schema):
    checked_at: dt.datetime
    score: Decimal | None
    status: HealthStatusName
    delta: Decimal | None
    factors: list[MyFactorOut]

    @staticmethod
    def resolve_factors(obj):
        return described(obj.factors)


@router.post(
    "/health/checks",
    response=responses({201: HealthCheckOut}),
    summary="Check one account's health now",
)
def create_check(request, payload: CheckIn):
    require_perm(request.user, CHECK)
    check = services.check_account_health(
        user_id=payload.account_id, days=payload.days, actor=request.user
    )
    return Status(201, check)


@router.get(
    "/health/accounts/{account_id}",
    response=responses({200: AccountHealthOut}),
    summary="An account's latest check and its score history (newest first)",
)
def get_account_health(request, account_id: Id):
    require_perm(request.user, VIEW)
    health = selectors.health_get(account_id=account_id)
    return {
        "account_id": health.account_id,
        "status": health.status,
        "score": health.score,
        "status_changed_at": health.status_changed_at,
        "critical_since": health.critical_since,
        "critical_ticket_id": health.critical_ticket_id,
        "latest": health.last_check,
        "history": selectors.check_history(account_id=account_id),
    }


@router.get(
    "/health/summary",
    response=responses({200: SummaryOut}),
    summary="Accounts by health status, in all and per persona",
)
def health_summary(request):
    require_perm(request.user, VIEW)
    return selectors.summary()


@router.post(
    "/health/check-all",
    response=responses({202: QueuedOut}),
    summary="Queue the check of every account (answers with the task id)",
)
def check_all(request, payload: CheckAllIn):
    require_perm(request.user, CHECK)
    task_id = services.queue_check_all(
        days=payload.days, batch_size=payload.batch_size, actor=request.user
    )
    return Status(202, {"task_id": task_id, "days": payload.days, "batch_size": payload.batch_size})


@router.get(
    "/me/health",
    response=responses({200: MyHealthOut}),
    summary="The caller's account health (latest check)",
)
def my_health(request):
    account = require_account(request.user)
    return selectors.health_get(account_id=account.id).last_check
