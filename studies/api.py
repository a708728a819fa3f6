"""Studies API under /api/v1/studies (staff with the studies permissions): run or queue a
study, list and read them, follow one metric over past runs, schedule longitudinal runs."""

import ast
import datetime as dt
from typing import Annotated, Any, Literal

from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import StringConstraints

from opsplatform.schemas import Id, Input, NoNul, Pagination, RangeDate, responses
from opsplatform.tenancy import require_perm
from studies import selectors, services
from studies.models import Study

router = Router(tags=["studies"])

# Literals, not the model's enums: OpenAPI names an enum after its class, and another app's
# `Status` would share (and overwrite) the component.
StudyType = Literal[tuple(Study.Type.values)]  # type: ignore[valid-type]
StudyStatus = Literal[tuple(Study.Status.values)]  # type: ignore[valid-type]
Slug = Annotated[str, StringConstraints(max_length=40), NoNul]


class StudyIn(Input):
    study_type: StudyType
    period_start: RangeDate
    period_end: RangeDate
    persona_segment: Slug | None = Field(None, description="A persona slug")
    background: bool = Field(False, description="Queue it for the worker (answers 202)")


class StudyOut(Schema):
    id: int
    study_type: StudyType
    status: StudyStatus
    period_start: dt.date
    period_end: dt.date
    persona_segment: str | None
    definition_version: str
    results: dict[str, Any]
    duration_ms: int | None
    error: str
    requested_by: str | None
    schedule_name: str
    created_at: dt.datetime
    computed_at: dt.datetime | None

    @staticmethod
    def resolve_persona_segment(obj):
        return obj.segment_slug

    @staticmethod
    def resolve_requested_by(obj):
        return obj.requested_by.get_username() if obj.requested_by_id else None


class StudyFilters(Schema):
    study_type: StudyType | None = None
    status: StudyStatus | None = None
    persona_segment: Slug | None = Field(
        None, description='A persona slug, or "all" for all-accounts studies'
    )
    period_from: RangeDate | None = Field(None, description="period_start on or after")
    period_to: RangeDate | None = Field(None, description="period_end on or before")


class SeriesFilters(Schema):
    study_type: StudyType
    metric: Slug
    persona_segment: Slug | None = None


class SeriesPointOut(Schema):
    study_id: int
    period_start: dt.date
    period_end: dt.date
    computed_at: dt.datetime | None
    definition_version: str
    value: float | int | str | None


class ScheduleIn(Input):
    study_types: list[StudyType] = Field(min_length=1, max_length=5)
    frequency_days: int = Field(ge=1, le=services.MAX_FREQUENCY_DAYS)


class ScheduleOut(Schema):
    name: str
    func: str
    schedule_type: str = Field(description="D: django-q2 fires it daily; due runs only")
    kwargs: dict[str, Any]
    next_run: dt.datetime | None

    @staticmethod
    def resolve_kwargs(obj):
        # django-q2 stores kwargs as the dict's literal text (a fresh instance holds the dict).
        if isinstance(obj.kwargs, dict):
            return obj.kwargs
        return ast.literal_eval(obj.kwargs) if obj.kwargs else {}


@router.post(
    "/studies",
    response=responses({201: StudyOut, 202: StudyOut}),
    summary="Run a study (or queue it with background)",
)
def create_study(request, payload: StudyIn):
    """Runs the study now and answers 201 with its results; with `"background": true` the
    study is queued for the worker and the answer is 202 (poll `GET /studies/{id}`)."""
    require_perm(request.user, "studies.add_study")
    study = services.request_study(
        study_type=payload.study_type,
        period_start=payload.period_start,
        period_end=payload.period_end,
        persona_segment=payload.persona_segment,
        actor=request.user,
        background=payload.background,
    )
    return Status(202 if payload.background else 201, selectors.study_get(study_id=study.pk))


@router.get("/studies", response=responses({200: list[StudyOut]}), summary="List studies")
@paginate(Pagination)
def list_studies(request, filters: Query[StudyFilters]):
    require_perm(request.user, "studies.view_study")
    return selectors.study_list(
        study_type=filters.study_type,
        status=filters.status,
        persona_segment=filters.persona_segment,
        period_from=filters.period_from,
        period_to=filters.period_to,
    )


@router.get(
    "/studies/series",
    response=responses({200: list[SeriesPointOut]}),
    summary="One metric over past completed studies, oldest first",
)
def study_series(request, filters: Query[SeriesFilters]):
    require_perm(request.user, "studies.view_study")
    if filters.persona_segment is not None:
        services.resolve_persona(filters.persona_segment)
    return selectors.study_series(
        study_type=filters.study_type,
        metric=filters.metric,
        persona_segment=filters.persona_segment,
    )


@router.post(
    "/studies/schedules",
    response=responses({200: list[ScheduleOut]}),
    summary="Schedule longitudinal studies (upserted by name)",
)
def schedule_studies(request, payload: ScheduleIn):
    require_perm(request.user, "studies.add_study")
    return services.schedule_longitudinal_studies(
        payload.study_types, payload.frequency_days, actor=request.user
    )


@router.get("/studies/{study_id}", response=responses({200: StudyOut}), summary="One study")
def get_study(request, study_id: Id):
    require_perm(request.user, "studies.view_study")
    return selectors.study_get(study_id=study_id)
