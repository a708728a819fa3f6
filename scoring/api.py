"""Scoring API under /api/v1/scoring/ (staff with the scoring permissions; customers get 403):
features, scores, comparison, roadmaps, outcomes and the model's refit (docs/scoring.md)."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import StringConstraints, model_validator

from opsplatform.schemas import Id, Input, JsonValue, NoNul, Pagination, responses
from opsplatform.tenancy import require_perm
from scoring import selectors, services
from scoring.metadata import KNOWN_KEYS
from scoring.models import Feature

router = Router(tags=["scoring"])

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$"), NoNul]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Text = Annotated[str, StringConstraints(max_length=5000), NoNul]
FeatureStatus = Literal[tuple(Feature.Status.values)]  # type: ignore[valid-type]
Metadata = Annotated[dict[str, JsonValue], Field(max_length=100)]
Money = Annotated[
    Decimal, Field(ge=Decimal("-100000000000"), le=Decimal("100000000000"), decimal_places=2)
]
Rate = Annotated[Decimal, Field(ge=0, le=1, decimal_places=6)]
Hours = Annotated[Decimal, Field(ge=0, le=Decimal("1000000"), decimal_places=2)]
Weeks = Annotated[Decimal, Field(ge=1, le=520, decimal_places=2)]
MeasureDate = Annotated[dt.date, Field(ge=dt.date(2000, 1, 1), le=dt.date(9998, 12, 31))]


class FeatureIn(Input):
    key: Key
    name: Name
    description: Text = ""
    metadata: Metadata = Field(default_factory=dict)
    depends_on: list[Key] = Field(default_factory=list, max_length=50)


class ScoreOut(Schema):
    id: int
    feature_id: str = Field(description="The feature's key")
    feature_pk: int
    model_version: int
    roi_score: Decimal
    workload_impact_score: Decimal
    ease_of_use_score: Decimal
    value_creation_score: Decimal
    overall_score: Decimal
    persona_scores: dict[str, Decimal]
    explanation: dict[str, Any]
    evidence: dict[str, Any]
    recommendations: list[str]
    rice: Decimal
    ice: Decimal
    wsjf: Decimal
    metadata: dict[str, Any]
    ignored_keys: list[str]
    created_at: dt.datetime

    @staticmethod
    def resolve_feature_id(obj):
        return obj.feature.key

    @staticmethod
    def resolve_feature_pk(obj):
        return obj.feature_id

    @staticmethod
    def resolve_model_version(obj):
        return obj.model.version


class FeatureOut(Schema):
    id: int
    key: str
    name: str
    description: str
    status: FeatureStatus
    launched_on: dt.date | None
    metadata: dict[str, Any]
    ignored_keys: list[str] = Field(description="Metadata keys kept but not used by scoring")
    depends_on: list[str]
    created_at: dt.datetime
    latest_score: ScoreOut | None

    @staticmethod
    def resolve_ignored_keys(obj):
        return sorted(k for k in obj.metadata if k not in KNOWN_KEYS)

    @staticmethod
    def resolve_depends_on(obj):
        return [f.key for f in obj.depends_on.all()]

    @staticmethod
    def resolve_latest_score(obj):
        return getattr(obj, "latest_score", None)


class FeatureFilters(Schema):
    status: FeatureStatus | None = None


class ScoreIn(Input):
    metadata: Metadata | None = Field(
        None, description="Overrides the feature's stored metadata for this score only"
    )


class CompareIn(Input):
    feature_ids: list[Key] = Field(min_length=2, max_length=services.MAX_COMPARE)


class CompareRowOut(Schema):
    rank: int
    feature_id: str
    name: str
    score_id: int
    overall_score: Decimal
    roi_score: Decimal
    workload_impact_score: Decimal
    ease_of_use_score: Decimal
    value_creation_score: Decimal
    difference_to_leader: dict[str, Decimal]


class PairOut(Schema):
    higher: str
    lower: str
    overall_difference: Decimal
    deciding_dimension: str
    contributions: dict[str, Decimal]


class CompareOut(Schema):
    model_version: int
    leader: str
    features: list[CompareRowOut]
    pairs: list[PairOut]


class RoadmapItemIn(Input):
    feature_id: Key
    name: Name | None = None
    metadata: Metadata | None = None
    depends_on: list[Key] | None = Field(None, max_length=50)


class RoadmapIn(Input):
    items: list[RoadmapItemIn] = Field(min_length=1, max_length=services.MAX_ROADMAP_ITEMS)
    capacity_weeks: Weeks = services.DEFAULT_CAPACITY_WEEKS


class RoadmapItemOut(Schema):
    position: int
    feature_id: str
    name: str
    score_id: int
    overall_score: Decimal
    effort_weeks: Decimal
    score_per_week: Decimal
    rank_by_score_per_week: int
    cumulative_weeks: Decimal
    tier: Literal["now", "next", "later"]
    depends_on: list[str]
    waiting_on_unlaunched: list[str]


class RoadmapOut(Schema):
    id: int
    capacity_weeks: Decimal
    model_version: int
    created_at: dt.datetime
    items: list[RoadmapItemOut]
    tiers: dict[str, list[str]]

    @staticmethod
    def resolve_model_version(obj):
        return obj.model.version

    @staticmethod
    def resolve_tiers(obj):
        tiers = {tier: [] for tier in services.TIERS}
        for item in obj.items:
            tiers[item["tier"]].append(item["feature_id"])
        return tiers


class OutcomeIn(Input):
    feature_id: Key
    measured_on: MeasureDate
    adoption_rate: Rate | None = Field(None, description="Omit with compute")
    revenue_change: Money = Field(description="Change in monthly revenue")
    ticket_change: int | None = Field(None, ge=-(10**9), le=10**9, description="Omit with compute")
    time_saved_hours: Hours = Field(description="Hours saved per month")
    compute: bool = Field(
        False, description="Compute adoption_rate and ticket_change from usage events and tickets"
    )

    @model_validator(mode="after")
    def _given_or_computed(self):
        given = self.adoption_rate is not None, self.ticket_change is not None
        if self.compute and any(given):
            raise ValueError(
                "with compute, adoption_rate and ticket_change are computed: omit them"
            )
        if not self.compute and not all(given):
            raise ValueError("give adoption_rate and ticket_change, or set compute")
        return self


class OutcomeOut(Schema):
    id: int
    feature_id: str
    measured_on: dt.date
    adoption_rate: Decimal
    revenue_change: Decimal
    ticket_change: int
    time_saved_hours: Decimal
    source: Literal["manual", "computed"]
    details: dict[str, Any]
    created_at: dt.datetime

    @staticmethod
    def resolve_feature_id(obj):
        return obj.feature.key


class ModelOut(Schema):
    id: int
    version: int
    active: bool
    weights: dict[str, Decimal]
    persona_weights: dict[str, dict[str, Decimal]]
    constants: dict[str, Decimal]
    note: str
    calibration: dict[str, Any]
    created_at: dt.datetime


class RefitOut(Schema):
    created: bool
    reason: str
    model: ModelOut
    n: int
    spearman: Decimal | None
    loo_mse_current: Decimal | None = None
    loo_mse_candidate: Decimal | None = None


@router.post("/features", response=responses({201: FeatureOut}), summary="Propose a feature")
def create_feature(request, payload: FeatureIn):
    require_perm(request.user, "scoring.add_feature")
    feature, _ignored = services.create_feature(
        key=payload.key,
        name=payload.name,
        description=payload.description,
        metadata=payload.metadata,
        depends_on=payload.depends_on,
        actor=request.user,
    )
    return Status(201, selectors.feature_get(feature_id=feature.pk))


@router.get("/features", response=responses({200: list[FeatureOut]}), summary="List features")
@paginate(Pagination)
def list_features(request, filters: Query[FeatureFilters]):
    require_perm(request.user, "scoring.view_feature")
    return _FeaturePage(selectors.feature_list(status=filters.status))


class _FeaturePage:
    """A queryset whose slices come with their latest scores (one query per page)."""

    def __init__(self, qs):
        self.qs = qs

    def count(self):
        return self.qs.count()

    def __len__(self):
        return self.count()

    def __getitem__(self, item):
        return selectors.with_latest_scores(self.qs[item])


@router.get("/features/{feature_id}", response=responses({200: FeatureOut}), summary="A feature")
def get_feature(request, feature_id: Id):
    require_perm(request.user, "scoring.view_feature")
    return selectors.feature_get(feature_id=feature_id)


@router.post(
    "/features/{feature_id}/score",
    response=responses({201: ScoreOut}),
    summary="Score a feature under the active model",
)
def score_feature(request, feature_id: Id, payload: ScoreIn | None = None):
    require_perm(request.user, "scoring.add_featurescore")
    feature = selectors.feature_get(feature_id=feature_id)
    metadata = payload.metadata if payload is not None else None
    score = services.score_feature(feature.key, feature_metadata=metadata, actor=request.user)
    return Status(201, selectors.score_get(score_id=score.pk))


@router.post("/compare", response=responses({200: CompareOut}), summary="Compare features")
def compare(request, payload: CompareIn):
    require_perm(request.user, "scoring.add_featurescore")
    return services.compare_features(payload.feature_ids, actor=request.user)


@router.post("/roadmap", response=responses({201: RoadmapOut}), summary="Rank and tier a roadmap")
def roadmap(request, payload: RoadmapIn):
    require_perm(request.user, "scoring.add_featurescore")
    require_perm(request.user, "scoring.add_roadmap")
    built = services.score_feature_roadmap(
        [item.model_dump() for item in payload.items],
        payload.capacity_weeks,
        actor=request.user,
    )
    return Status(201, selectors.roadmap_get(roadmap_id=built.pk))


@router.post(
    "/outcomes",
    response=responses({201: OutcomeOut}),
    summary="Record a launched feature's outcome",
)
def record_outcome(request, payload: OutcomeIn):
    require_perm(request.user, "scoring.add_outcome")
    if payload.compute:
        outcome = services.measure_outcome(
            feature_id=payload.feature_id,
            measured_on=payload.measured_on,
            revenue_change=payload.revenue_change,
            time_saved_hours=payload.time_saved_hours,
            actor=request.user,
        )
    else:
        outcome = services.record_outcome(
            feature_id=payload.feature_id,
            measured_on=payload.measured_on,
            adoption_rate=payload.adoption_rate,
            revenue_change=payload.revenue_change,
            ticket_change=payload.ticket_change,
            time_saved_hours=payload.time_saved_hours,
            actor=request.user,
        )
    return Status(201, outcome)


@router.post(
    "/models/refit",
    response=responses({200: RefitOut}),
    summary="Fit the weights to outcomes; a new version only if it predicts better",
)
def refit(request):
    require_perm(request.user, "scoring.add_scoringmodel")
    return services.refit_scoring_model(actor=request.user)


@router.get("/models", response=responses({200: list[ModelOut]}), summary="Model versions")
@paginate(Pagination)
def list_models(request):
    require_perm(request.user, "scoring.view_scoringmodel")
    return selectors.model_list()
