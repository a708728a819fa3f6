"""Reads of the scoring app: features with their latest score, scores, models with their
calibration, roadmaps. Each list costs a fixed number of queries whatever its length."""

from decimal import Decimal

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from opsplatform.errors import NotFound
from scoring.formulas import DIMENSIONS
from scoring.models import Feature, FeatureScore, Outcome, Roadmap, ScoringModel

TIER_ORDER = ("now", "next", "later")


def _latest_score_id():
    return Subquery(
        FeatureScore.objects.filter(feature_id=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )


def feature_list(*, status: str | None = None) -> QuerySet[Feature]:
    """Features with `latest_score_id` annotated; `with_latest_scores` attaches the rows."""
    qs = Feature.objects.annotate(latest_score_id=_latest_score_id()).prefetch_related(
        Prefetch("depends_on", queryset=Feature.objects.only("id", "key").order_by("key"))
    )
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("key")


def with_latest_scores(features) -> list[Feature]:
    """Attach `latest_score` (or None) to each feature of a page: one query for the page."""
    features = list(features)
    ids = [f.latest_score_id for f in features if getattr(f, "latest_score_id", None)]
    scores = {s.pk: s for s in FeatureScore.objects.filter(pk__in=ids).select_related("model")}
    for feature in features:
        feature.latest_score = scores.get(getattr(feature, "latest_score_id", None))
    return features


def feature_get(*, feature_id: int) -> Feature:
    feature = feature_list().filter(pk=feature_id).first()
    if feature is None:
        raise NotFound("Feature not found.")
    return with_latest_scores([feature])[0]


def score_get(*, score_id: int) -> FeatureScore:
    score = FeatureScore.objects.select_related("feature", "model").filter(pk=score_id).first()
    if score is None:
        raise NotFound("Score not found.")
    return score


def model_list() -> QuerySet[ScoringModel]:
    return ScoringModel.objects.order_by("-version")


def outcome_list() -> QuerySet[Outcome]:
    return Outcome.objects.select_related("feature").order_by("-measured_on", "-id")


def roadmap_latest() -> Roadmap | None:
    return Roadmap.objects.select_related("model").order_by("-created_at", "-id").first()


def roadmap_get(*, roadmap_id: int) -> Roadmap:
    roadmap = Roadmap.objects.select_related("model").filter(pk=roadmap_id).first()
    if roadmap is None:
        raise NotFound("Roadmap not found.")
    return roadmap


def roadmap_board(roadmap: Roadmap) -> list[dict]:
    """The roadmap's items grouped by tier, in placement order (for the board)."""
    columns = {tier: [] for tier in TIER_ORDER}
    for item in roadmap.items:
        columns.setdefault(item["tier"], []).append(item)
    return [
        {
            "tier": tier,
            "items": items,
            "weeks": sum((Decimal(i["effort_weeks"]) for i in items), Decimal(0)),
        }
        for tier, items in columns.items()
    ]


def dimension_rows(score: FeatureScore) -> list[tuple[str, object]]:
    return [(d, getattr(score, f"{d}_score")) for d in DIMENSIONS]
