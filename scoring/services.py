"""Every write of the scoring app: features and their statuses, scores (`score_feature`),
comparisons (`compare_features`), roadmaps (`score_feature_roadmap`), outcomes and the refit
of the model (`refit_scoring_model`). The formulas are in `scoring.formulas`, the evidence in
`scoring.evidence`; docs/scoring.md explains both."""

import datetime as dt
import heapq
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Persona, UsageEvent
from opsplatform.transitions import transition
from opsplatform.validation import clean_text
from scoring import evidence, formulas, mathx
from scoring.formulas import DIMENSIONS, F, q2, q4
from scoring.metadata import KEY_PATTERN, storable, validate_metadata, with_defaults
from scoring.models import Feature, FeatureScore, Outcome, Roadmap, ScoringModel

DEFAULT_CAPACITY_WEEKS = Decimal(12)
MIN_CALIBRATION_POINTS = 3
MAX_COMPARE = 50
MAX_ROADMAP_ITEMS = 100
TIERS = ("now", "next", "later")
FEATURE_USED_EVENT = "feature.{key}.used"


def _actor(obj, actor):
    if actor is not None and getattr(actor, "is_authenticated", False):
        obj._history_user = actor
    return obj


def _user(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _save(obj, *, actor=None, reason: str | None = None, exclude: list[str] | None = None):
    try:
        obj.full_clean(exclude=exclude)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidInput(f"{field}: {' '.join(messages)}", field=field) from None
    _actor(obj, actor)
    if reason:
        obj._change_reason = reason[:100]
    obj.save()
    return obj


def persona_slugs() -> set[str]:
    return set(Persona.objects.values_list("slug", flat=True))


# --- models -------------------------------------------------------------------------------------


def ensure_default_model() -> ScoringModel:
    """The active model, creating version 1 with the documented defaults when there is none."""
    model = ScoringModel.objects.filter(active=True).first()
    if model is not None:
        return model
    with transaction.atomic():
        if ScoringModel.objects.exists():
            latest = ScoringModel.objects.select_for_update().order_by("-version").first()
            latest.active = True
            latest._change_reason = "re-activated: no active model"
            latest.save()
            return latest
        model = ScoringModel(
            version=1,
            weights=dict(formulas.DEFAULT_WEIGHTS),
            persona_weights={k: dict(v) for k, v in formulas.DEFAULT_PERSONA_WEIGHTS.items()},
            constants=dict(formulas.DEFAULT_CONSTANTS),
            active=True,
            note="The documented defaults (docs/scoring.md).",
        )
        return _save(model, reason="default model")


def active_model() -> ScoringModel:
    return ensure_default_model()


# --- features -----------------------------------------------------------------------------------


def _clean_key(key, *, field: str = "key") -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise InvalidInput(
            "A feature key is lowercase letters, digits, - and _ (1 to 80 characters).",
            field=field,
        )
    return key


def _features_by_key(keys: list[str], *, field: str) -> dict[str, Feature]:
    found = {f.key: f for f in Feature.objects.filter(key__in=keys)}
    missing = [k for k in keys if k not in found]
    if missing:
        raise NotFound(f"Unknown feature {', '.join(missing)}.", field=field)
    return found


@transaction.atomic
def create_feature(
    *,
    key: str,
    name: str,
    description: str = "",
    metadata: dict | None = None,
    depends_on: list[str] | None = None,
    actor=None,
    slugs: set[str] | None = None,
) -> tuple[Feature, list[str]]:
    """A new proposed feature; returns it and the metadata keys that were ignored."""
    key = _clean_key(key)
    name = clean_text(name, field="name", label="Name", max_length=200)
    description = clean_text(
        description, field="description", label="Description", max_length=5000, required=False
    )
    metadata = metadata if metadata is not None else {}
    slugs = slugs if slugs is not None else persona_slugs()
    cleaned, ignored = validate_metadata(metadata, persona_slugs=slugs)
    if Feature.objects.filter(key=key).exists():
        raise Conflict(f"A feature with the key {key} exists.", code="duplicate_key")
    dependencies = list(
        _features_by_key(list(dict.fromkeys(depends_on or [])), field="depends_on").values()
    )
    feature = Feature(
        key=key, name=name, description=description, metadata=storable(metadata, cleaned)
    )
    try:
        with transaction.atomic():
            _save(feature, actor=actor, reason="created")
    except IntegrityError:
        raise Conflict(f"A feature with the key {key} exists.", code="duplicate_key") from None
    if dependencies:
        feature.depends_on.set(dependencies)
    return feature, ignored


@transaction.atomic
def update_feature(
    *,
    feature_id: int,
    name: str | None = None,
    description: str | None = None,
    metadata: dict | None = None,
    depends_on: list[int] | None = None,
    actor=None,
) -> tuple[Feature, list[str]]:
    """Change a feature's name, description, metadata or dependencies (never its status:
    that is `change_feature_status`). A dependency that would close a cycle is refused."""
    feature = Feature.objects.select_for_update().filter(pk=feature_id).first()
    if feature is None:
        raise NotFound("Feature not found.")
    ignored: list[str] = []
    if name is not None:
        feature.name = clean_text(name, field="name", label="Name", max_length=200)
    if description is not None:
        feature.description = clean_text(
            description, field="description", label="Description", max_length=5000, required=False
        )
    if metadata is not None:
        cleaned, ignored = validate_metadata(metadata, persona_slugs=persona_slugs())
        feature.metadata = storable(metadata, cleaned)
    feature.updated_at = timezone.now()
    _save(feature, actor=actor, reason="edited")
    if depends_on is not None:
        targets = list(Feature.objects.filter(pk__in=depends_on))
        if len(targets) != len(set(depends_on)):
            raise NotFound("Unknown feature in depends_on.")
        edges = dependency_edges()
        edges[feature.key] = [t.key for t in targets]
        cycle = find_cycle(edges)
        if cycle:
            raise InvalidInput(f"depends_on has a cycle: {' → '.join(cycle)}", field="depends_on")
        feature.depends_on.set(targets)
    return feature, ignored


def dependency_edges() -> dict[str, list[str]]:
    through = Feature.depends_on.through
    edges: dict[str, list[str]] = {}
    for source, target in through.objects.values_list("from_feature__key", "to_feature__key"):
        edges.setdefault(source, []).append(target)
    return edges


def change_feature_status(
    *, feature_id: int, to: str, launched_on: dt.date | None = None, actor=None
) -> Feature:
    """Move a feature through its status table; launching stamps `launched_on` (today unless
    given; a launch date in the future is refused)."""
    feature = Feature.objects.filter(pk=feature_id).first()
    if feature is None:
        raise NotFound("Feature not found.")
    if to not in Feature.Status.values:
        raise InvalidInput(f"Unknown status {to}.", field="status")
    changes = {"updated_at": timezone.now()}
    if to == Feature.Status.LAUNCHED:
        launched_on = launched_on or timezone.localdate()
        if launched_on > timezone.localdate():
            raise InvalidInput("A launch date cannot be in the future.", field="launched_on")
        changes["launched_on"] = launched_on
    return transition(feature, to, actor=actor, reason=f"status → {to}", **changes)


# --- scoring ------------------------------------------------------------------------------------


def _inputs(values: dict) -> formulas.Inputs:
    return formulas.Inputs(
        revenue=F(values["estimated_revenue_impact"]),
        conversion=F(values["conversion_potential"]),
        complexity=F(values["complexity"]),
        ui_complexity=F(values["ui_complexity"]),
        hours=F(values["time_savings_hours_per_month"]),
        effort_weeks=F(values["effort_weeks"]),
        confidence=F(values["confidence"]),
        reach=Fraction(values.get("reach_accounts") or 0),
        target_personas=list(values["target_personas"]),
    )


def _s(value: Fraction) -> str:
    return str(q4(value))


@dataclass
class Batch:
    """What every score of a batch (a roadmap, a comparison) reads once: the active model,
    the persona slugs and the onboarding versions."""

    model: ScoringModel
    slugs: set[str]
    versions: list


def batch() -> Batch:
    return Batch(active_model(), persona_slugs(), evidence.onboarding_versions())


def compute_score(
    *,
    key: str,
    values: dict,
    model: ScoringModel,
    now: dt.datetime | None = None,
    versions: list | None = None,
) -> dict:
    """Everything a FeatureScore holds, from validated metadata values (with defaults) and
    the live evidence; no writes."""
    constants = model.constants
    window = int(Decimal(str(constants["ticket_window_days"])))
    found = evidence.gather(key=key, values=values, window_days=window, now=now, versions=versions)
    declared = _inputs(values)
    accounts = set(found["tickets"].get("_account_ids", [])) | set(
        found["health"].get("_account_ids", [])
    )
    effective = replace(
        declared,
        reach=max(declared.reach, Fraction(len(accounts))),
        tickets_per_month=found["tickets"].get("_tickets_per_month", Fraction(0)),
        at_risk_revenue=found["health"].get("_at_risk_revenue", Fraction(0)),
        onboarding_lift=found["onboarding"].get("_lift", Fraction(0)),
    )
    with_evidence = formulas.dimensions(effective, constants)
    without = formulas.dimensions(declared, constants)
    scores = {d: q2(with_evidence[d].score) for d in DIMENSIONS}
    plain = {d: q2(without[d].score) for d in DIMENSIONS}
    weights = model.weights
    overall = q2(formulas.overall({d: F(v) for d, v in scores.items()}, weights))
    overall_without = q2(formulas.overall({d: F(v) for d, v in plain.items()}, weights))
    personas = formulas.persona_scores(
        {d: F(v) for d, v in scores.items()},
        model.persona_weights,
        effective.target_personas,
        constants,
    )
    explanation = {
        d: {
            "formula": with_evidence[d].formula,
            "inputs": {k: _s(v) for k, v in with_evidence[d].inputs.items()},
            "steps": {k: _s(v) for k, v in with_evidence[d].steps.items()},
            "score": str(scores[d]),
            "score_without_evidence": str(plain[d]),
            "moved_by_evidence": str(scores[d] - plain[d]),
        }
        for d in DIMENSIONS
    }
    explanation["overall"] = {
        "formula": "overall = Σ weight * dimension score (weights of model "
        f"v{model.version}, summing to 1)",
        "weights": {d: str(weights[d]) for d in DIMENSIONS},
        "terms": {d: _s(F(weights[d]) * F(scores[d])) for d in DIMENSIONS},
        "score": str(overall),
        "score_without_evidence": str(overall_without),
        "moved_by_evidence": str(overall - overall_without),
    }
    explanation["personas"] = {
        "formula": "persona score = Σ persona weight * dimension score, * non_target_factor "
        f"({constants['non_target_factor']}) for a persona the feature does not target "
        "(no target_personas: every persona is targeted)",
        "targeted": effective.target_personas or sorted(model.persona_weights),
    }
    explanation["effective_inputs"] = {
        "reach": _s(effective.reach),
        "reach_declared": _s(declared.reach),
        "reach_from_evidence": len(accounts),
        "tickets_per_month": _s(effective.tickets_per_month),
        "at_risk_revenue": _s(effective.at_risk_revenue),
        "onboarding_lift": _s(effective.onboarding_lift),
    }
    baselines = formulas.baselines(effective, F(scores["ease_of_use"]))
    explanation["baselines"] = {
        "rice": "reach * (3 * conversion_potential) * confidence / effort_weeks",
        "ice": "max(1, 10 * conversion_potential) * max(1, 10 * confidence) * "
        "max(1, ease_of_use / 10)",
        "wsjf": "(10 * conversion_potential + revenue / 1000 + at_risk_revenue / 1000) / "
        "effort_weeks",
    }
    return {
        "scores": scores,
        "overall": overall,
        "persona_scores": {slug: str(q2(v)) for slug, v in personas.items()},
        "explanation": explanation,
        "evidence": evidence.public(found),
        "baselines": {k: q2(v) for k, v in baselines.items()},
        "effective": effective,
    }


def _recommendations(feature: Feature | None, values: dict, result: dict, model) -> list[str]:
    """The documented rules (docs/scoring.md, "Recommendations"), in this order."""
    s = result["scores"]
    notes = []
    if result["overall"] >= 70:
        notes.append(f"Strong candidate (overall {result['overall']}): schedule it.")
    if s["ease_of_use"] < 40:
        notes.append(
            f"Simplify before building: ease of use is {s['ease_of_use']} (complexity "
            f"{values['complexity']}, UI complexity {values['ui_complexity']})."
        )
    if s["roi"] < 30:
        notes.append(
            f"ROI is low ({s['roi']}): the expected revenue covers little of "
            f"{values['effort_weeks']} weeks of build; narrow the scope or find revenue evidence."
        )
    if s["workload_impact"] >= 60:
        notes.append(
            f"Large workload relief ({s['workload_impact']}): plan the support and operations "
            "hand-over for the launch."
        )
    if values["confidence"] < Decimal("0.5"):
        notes.append(
            f"Confidence is low ({values['confidence']}): run a study or an onboarding "
            "experiment before committing."
        )
    if not any(piece.get("used") for piece in result["evidence"].values()):
        notes.append(
            "No live evidence moved this score: add support_tags or addresses_health_factors "
            "to measure reach and revenue at risk."
        )
    targets = values["target_personas"]
    if targets:
        unfactored = formulas.persona_scores(
            {d: F(v) for d, v in s.items()}, model.persona_weights, [], model.constants
        )
        best = max(sorted(unfactored), key=lambda slug: unfactored[slug])
        if best not in targets:
            notes.append(
                f"{best} would value it most ({q2(unfactored[best])}) but is not targeted."
            )
    if feature is not None and feature.pk:
        waiting = [d.key for d in feature.depends_on.all() if d.status != Feature.Status.LAUNCHED]
        if waiting:
            notes.append(f"Depends on {', '.join(sorted(waiting))}, not launched yet.")
    return notes


@transaction.atomic
def score_feature(
    feature_id: str,
    feature_name: str | None = None,
    feature_metadata: dict | None = None,
    *,
    actor=None,
    loc_prefix: tuple = (),
    within: Batch | None = None,
) -> FeatureScore:
    """Score the feature with the key `feature_id` under the active model and store the score.

    A feature that does not exist yet is created (proposed) with the name and metadata. For an
    existing one the given metadata overrides its stored metadata for this score only (the
    score keeps the metadata it used); without metadata the stored metadata is used."""
    key = _clean_key(feature_id, field="feature_id")
    within = within or batch()
    model, slugs = within.model, within.slugs
    feature = Feature.objects.filter(key=key).prefetch_related("depends_on").first()
    if feature_metadata is not None:
        validate_metadata(feature_metadata, persona_slugs=slugs, loc_prefix=loc_prefix)
    if feature is None:
        if not feature_name:
            raise InvalidInput("A new feature needs a name.", field="name")
        feature, _ = create_feature(
            key=key, name=feature_name, metadata=feature_metadata or {}, actor=actor, slugs=slugs
        )
    raw = feature_metadata if feature_metadata is not None else feature.metadata
    cleaned, ignored = validate_metadata(raw, persona_slugs=slugs, loc_prefix=loc_prefix)
    values, defaulted = with_defaults(cleaned)
    result = compute_score(key=key, values=values, model=model, versions=within.versions)
    result["explanation"]["defaulted_keys"] = defaulted
    score = FeatureScore(
        feature=feature,
        model=model,
        roi_score=result["scores"]["roi"],
        workload_impact_score=result["scores"]["workload_impact"],
        ease_of_use_score=result["scores"]["ease_of_use"],
        value_creation_score=result["scores"]["value_creation"],
        overall_score=result["overall"],
        persona_scores=result["persona_scores"],
        explanation=result["explanation"],
        evidence=result["evidence"],
        recommendations=_recommendations(feature, values, result, model),
        metadata=storable(raw, cleaned),
        ignored_keys=ignored,
        rice=result["baselines"]["rice"],
        ice=result["baselines"]["ice"],
        wsjf=result["baselines"]["wsjf"],
        effort_weeks=values["effort_weeks"],
        created_by=_user(actor),
    )
    # The feature and model rows are the ones just read: no need to re-check they exist.
    _save(score, exclude=["feature", "model", "created_by"])
    return score


def latest_scores(features: list[Feature], model: ScoringModel) -> dict[int, FeatureScore]:
    """The newest score of each feature made by `model` (one query)."""
    latest: dict[int, FeatureScore] = {}
    for score in FeatureScore.objects.filter(feature__in=features, model=model).order_by(
        "feature_id", "-created_at", "-id"
    ):
        latest.setdefault(score.feature_id, score)
    return latest


@transaction.atomic
def compare_features(feature_ids: list[str], *, actor=None) -> dict:
    """Rank features (by key) on their latest score under the active model — scoring those
    that have none — with each dimension's difference to the leader, and for every pair the
    dimension whose weighted difference contributes most to the gap."""
    keys = [_clean_key(k, field="feature_ids") for k in feature_ids]
    if len(set(keys)) != len(keys):
        raise InvalidInput("feature_ids must not repeat a feature.", field="feature_ids")
    if not 2 <= len(keys) <= MAX_COMPARE:
        raise InvalidInput(f"Compare 2 to {MAX_COMPARE} features.", field="feature_ids")
    found = _features_by_key(keys, field="feature_ids")
    model = active_model()
    latest = latest_scores(list(found.values()), model)
    missing = [key for key, feature in found.items() if feature.pk not in latest]
    shared = batch() if missing else None
    for key in missing:
        latest[found[key].pk] = score_feature(key, actor=actor, within=shared)
    ranked = sorted(found.values(), key=lambda f: (-latest[f.pk].overall_score, f.key))
    leader = latest[ranked[0].pk]
    weights = model.weights
    rows = []
    for position, feature in enumerate(ranked, start=1):
        score = latest[feature.pk]
        dims = score.dimension_scores()
        rows.append(
            {
                "rank": position,
                "feature_id": feature.key,
                "name": feature.name,
                "score_id": score.pk,
                "overall_score": score.overall_score,
                **{f"{d}_score": dims[d] for d in DIMENSIONS},
                "difference_to_leader": {
                    "overall": score.overall_score - leader.overall_score,
                    **{d: dims[d] - leader.dimension_scores()[d] for d in DIMENSIONS},
                },
            }
        )
    pairs = []
    for i, higher in enumerate(ranked):
        for lower in ranked[i + 1 :]:
            a, b = latest[higher.pk].dimension_scores(), latest[lower.pk].dimension_scores()
            contributions = {d: q2(F(weights[d]) * (F(a[d]) - F(b[d]))) for d in DIMENSIONS}
            deciding = max(DIMENSIONS, key=lambda d: contributions[d])
            pairs.append(
                {
                    "higher": higher.key,
                    "lower": lower.key,
                    "overall_difference": latest[higher.pk].overall_score
                    - latest[lower.pk].overall_score,
                    "deciding_dimension": deciding,
                    "contributions": contributions,
                }
            )
    return {
        "model_version": model.version,
        "leader": ranked[0].key,
        "features": rows,
        "pairs": pairs,
    }


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path that returns to its start (["a", "b", "a"]), or None."""
    white, grey, black = 0, 1, 2
    colour: dict[str, int] = {}
    stack_path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack_path.append(node)
        for nxt in edges.get(node, []):
            state = colour.get(nxt, white)
            if state == grey:
                return [*stack_path[stack_path.index(nxt) :], nxt]
            if state == white:
                found = visit(nxt)
                if found:
                    return found
        stack_path.pop()
        colour[node] = black
        return None

    for node in sorted(edges):
        if colour.get(node, white) == white:
            found = visit(node)
            if found:
                return found
    return None


@transaction.atomic
def score_feature_roadmap(
    roadmap: list[dict],
    capacity_weeks: Decimal | None = None,
    *,
    actor=None,
) -> Roadmap:
    """Score every item, rank by overall score per effort week, place each item only after
    the items it depends on, and tier by cumulative effort: `now` up to one capacity,
    `next` up to two, `later` beyond. A cycle in depends_on is refused naming it."""
    capacity = Decimal(capacity_weeks if capacity_weeks is not None else DEFAULT_CAPACITY_WEEKS)
    if not capacity.is_finite() or not Decimal(1) <= capacity <= Decimal(520):
        raise InvalidInput("capacity_weeks lies between 1 and 520.", field="capacity_weeks")
    if not isinstance(roadmap, list) or not 1 <= len(roadmap) <= MAX_ROADMAP_ITEMS:
        raise InvalidInput(f"A roadmap has 1 to {MAX_ROADMAP_ITEMS} items.", field="items")
    keys = []
    for item in roadmap:
        keys.append(_clean_key(item.get("feature_id"), field="items"))
    if len(set(keys)) != len(keys):
        raise InvalidInput("A feature appears twice in the roadmap.", field="items")
    in_roadmap = set(keys)
    existing = {
        f.key: f for f in Feature.objects.filter(key__in=keys).prefetch_related("depends_on")
    }
    edges: dict[str, list[str]] = {}
    for key, item in zip(keys, roadmap, strict=True):
        if item.get("depends_on") is not None:
            deps = [_clean_key(d, field="depends_on") for d in item["depends_on"]]
        elif key in existing:
            deps = [d.key for d in existing[key].depends_on.all()]
        else:
            deps = []
        edges[key] = list(dict.fromkeys(deps))
    cycle = find_cycle({k: [d for d in v if d in in_roadmap] for k, v in edges.items()})
    if cycle:
        raise InvalidInput(f"depends_on has a cycle: {' → '.join(cycle)}", field="depends_on")
    outside = {d for deps in edges.values() for d in deps if d not in in_roadmap}
    outside_features = {f.key: f for f in Feature.objects.filter(key__in=outside)}
    unknown = sorted(outside - set(outside_features))
    if unknown:
        raise NotFound(f"Unknown feature in depends_on: {', '.join(unknown)}.")

    scores: dict[str, FeatureScore] = {}
    shared = batch()
    for position, (key, item) in enumerate(zip(keys, roadmap, strict=True)):
        scores[key] = score_feature(
            key,
            item.get("name"),
            item.get("metadata"),
            actor=actor,
            loc_prefix=("items", position),
            within=shared,
        )

    def ratio(key: str) -> Fraction:
        s = scores[key]
        return F(s.overall_score) / F(s.effort_weeks)

    order_by_ratio = sorted(keys, key=lambda k: (-ratio(k), -scores[k].overall_score, k))
    rank_of = {k: n for n, k in enumerate(order_by_ratio, start=1)}
    # Kahn's algorithm, always taking the best-ranked item whose dependencies are placed.
    waiting = {k: {d for d in edges[k] if d in in_roadmap} for k in keys}
    ready = [(rank_of[k], k) for k in keys if not waiting[k]]
    heapq.heapify(ready)
    placed: list[str] = []
    while ready:
        _, key = heapq.heappop(ready)
        placed.append(key)
        for other in keys:
            if key in waiting[other]:
                waiting[other].discard(key)
                if not waiting[other]:
                    heapq.heappush(ready, (rank_of[other], other))
    cumulative = Decimal(0)
    items = []
    for position, key in enumerate(placed, start=1):
        s = scores[key]
        cumulative += s.effort_weeks
        tier = (
            "now" if cumulative <= capacity else "next" if cumulative <= 2 * capacity else "later"
        )
        items.append(
            {
                "position": position,
                "feature_id": key,
                "feature_pk": s.feature_id,
                "name": s.feature.name,
                "score_id": s.pk,
                "overall_score": str(s.overall_score),
                "effort_weeks": str(q2(s.effort_weeks)),
                "score_per_week": str(q4(ratio(key))),
                "rank_by_score_per_week": rank_of[key],
                "cumulative_weeks": str(q2(cumulative)),
                "tier": tier,
                "depends_on": edges[key],
                "waiting_on_unlaunched": sorted(
                    d
                    for d in edges[key]
                    if d in outside_features
                    and outside_features[d].status != Feature.Status.LAUNCHED
                ),
            }
        )
    return _save(
        Roadmap(
            capacity_weeks=capacity,
            model=shared.model,
            items=items,
            created_by=_user(actor),
        )
    )


def open_features_roadmap(*, capacity_weeks: Decimal | None = None, actor=None) -> Roadmap:
    """The roadmap of every proposed, planned or in-progress feature with its stored metadata
    and dependencies (the admin's "Build roadmap" button)."""
    features = list(
        Feature.objects.filter(
            status__in=[
                Feature.Status.PROPOSED,
                Feature.Status.PLANNED,
                Feature.Status.IN_PROGRESS,
            ]
        ).order_by("key")[:MAX_ROADMAP_ITEMS]
    )
    if not features:
        raise InvalidInput("There is no open feature to put on a roadmap.", field="items")
    return score_feature_roadmap(
        [{"feature_id": f.key, "name": f.name} for f in features],
        capacity_weeks,
        actor=actor,
    )


# --- outcomes -----------------------------------------------------------------------------------


def _launched(feature_id: str) -> Feature:
    key = _clean_key(feature_id, field="feature_id")
    feature = Feature.objects.filter(key=key).first()
    if feature is None:
        raise NotFound("Feature not found.")
    if feature.status != Feature.Status.LAUNCHED or feature.launched_on is None:
        raise Conflict(
            "Outcomes are recorded for launched features only.", code="feature_not_launched"
        )
    return feature


@transaction.atomic
def record_outcome(
    *,
    feature_id: str,
    measured_on: dt.date,
    adoption_rate: Decimal,
    revenue_change: Decimal,
    ticket_change: int,
    time_saved_hours: Decimal,
    source: str = Outcome.Source.MANUAL,
    details: dict | None = None,
    actor=None,
) -> Outcome:
    """Record (or, for the same day, replace) what a launched feature delivered."""
    feature = _launched(feature_id)
    if measured_on < feature.launched_on:
        raise InvalidInput("An outcome is measured on or after the launch.", field="measured_on")
    if measured_on > timezone.localdate():
        raise InvalidInput("An outcome cannot be measured in the future.", field="measured_on")
    outcome = (
        Outcome.objects.select_for_update().filter(feature=feature, measured_on=measured_on).first()
    ) or Outcome(feature=feature, measured_on=measured_on)
    outcome.adoption_rate = Decimal(adoption_rate).quantize(Decimal("0.000001"))
    outcome.revenue_change = q2(Decimal(revenue_change))
    outcome.ticket_change = ticket_change
    outcome.time_saved_hours = q2(Decimal(time_saved_hours))
    outcome.source = source
    outcome.details = details or {}
    outcome.recorded_by = _user(actor)
    return _save(outcome, actor=actor, reason=f"outcome ({source})")


def measure_outcome(
    *,
    feature_id: str,
    measured_on: dt.date,
    revenue_change: Decimal,
    time_saved_hours: Decimal,
    actor=None,
) -> Outcome:
    """Record an outcome whose adoption rate and ticket change are computed from the data:

    - adoption_rate = accounts with a `feature.<key>.used` usage event between the launch
      and `measured_on` / accounts with any usage event in that span;
    - ticket_change = tickets carrying the feature's support_tags in the span after launch
      minus those in the span of the same length before it (spans of at most 90 days).
    Revenue change and time saved are not in the data and are given."""
    feature = _launched(feature_id)
    if not feature.launched_on <= measured_on <= timezone.localdate():
        raise InvalidInput("measured_on lies between the launch and today.", field="measured_on")
    launch = dt.datetime.combine(feature.launched_on, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(measured_on + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    span = min(end - launch, dt.timedelta(days=90))
    window = UsageEvent.objects.filter(occurred_at__gte=launch, occurred_at__lt=end)
    active = window.values("account_id").distinct().count()
    used = (
        window.filter(type=FEATURE_USED_EVENT.format(key=feature.key))
        .values("account_id")
        .distinct()
        .count()
    )
    adoption = q4(Fraction(used, active)) if active else Decimal(0)
    tags = (feature.metadata or {}).get("support_tags") or []
    after = evidence.ticket_count(tags, since=launch, until=launch + span)
    before = evidence.ticket_count(tags, since=launch - span, until=launch)
    return record_outcome(
        feature_id=feature.key,
        measured_on=measured_on,
        adoption_rate=adoption,
        revenue_change=revenue_change,
        ticket_change=after - before,
        time_saved_hours=time_saved_hours,
        source=Outcome.Source.COMPUTED,
        details={
            "active_accounts": active,
            "adopting_accounts": used,
            "event_type": FEATURE_USED_EVENT.format(key=feature.key),
            "span_days": span.days,
            "tickets_before": before,
            "tickets_after": after,
            "support_tags": tags,
        },
        actor=actor,
    )


# --- calibration --------------------------------------------------------------------------------


def calibration_points() -> list[dict]:
    """For each launched feature with an outcome: the dimension scores of its last score made
    up to its launch day (else its first score after), and its latest outcome's score."""
    features = list(
        Feature.objects.filter(status=Feature.Status.LAUNCHED, outcomes__isnull=False)
        .distinct()
        .order_by("key")
    )
    outcomes: dict[int, Outcome] = {}
    for outcome in Outcome.objects.filter(feature__in=features).order_by(
        "feature_id", "-measured_on", "-id"
    ):
        outcomes.setdefault(outcome.feature_id, outcome)
    scores: dict[int, list[FeatureScore]] = {}
    for score in FeatureScore.objects.filter(feature__in=features).order_by("created_at", "id"):
        scores.setdefault(score.feature_id, []).append(score)
    points = []
    for feature in features:
        made = scores.get(feature.pk)
        if not made:
            continue
        cutoff = dt.datetime.combine(
            feature.launched_on + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC
        )
        before = [s for s in made if s.created_at < cutoff]
        score = before[-1] if before else made[0]
        outcome = outcomes[feature.pk]
        constants = score.model.constants
        actual = formulas.outcome_score(
            adoption_rate=outcome.adoption_rate,
            revenue_change=outcome.revenue_change,
            ticket_change=outcome.ticket_change,
            time_saved_hours=outcome.time_saved_hours,
            effort_weeks=score.effort_weeks,
            constants=constants,
        )
        points.append(
            {
                "feature": feature,
                "score": score,
                "x": [F(v) for v in score.dimension_scores().values()],
                "y": actual,
            }
        )
    return points


def _predict(weights: list[Fraction], x: list[Fraction]) -> Fraction:
    return sum((w * v for w, v in zip(weights, x, strict=True)), Fraction(0))


def _loo_errors_current(points, weights) -> list[Fraction]:
    """Held-out errors of the current weights with only a scale fitted on the others
    (the current model's direction, fairly scaled to outcomes)."""
    errors = []
    for i, held in enumerate(points):
        rest = [p for j, p in enumerate(points) if j != i]
        preds = [_predict(weights, p["x"]) for p in rest]
        denominator = sum((p * p for p in preds), Fraction(0))
        scale = (
            sum((p * r["y"] for p, r in zip(preds, rest, strict=True)), Fraction(0)) / denominator
            if denominator
            else Fraction(0)
        )
        errors.append(held["y"] - scale * _predict(weights, held["x"]))
    return errors


def _loo_errors_candidate(points) -> list[Fraction]:
    errors = []
    for i, held in enumerate(points):
        rest = [p for j, p in enumerate(points) if j != i]
        fitted = mathx.nnls([p["x"] for p in rest], [p["y"] for p in rest])
        errors.append(held["y"] - _predict(fitted, held["x"]))
    return errors


def _normalised(weights: list[Fraction]) -> dict[str, str]:
    """Weights summing to exactly 1 at 4 places (the largest absorbs the rounding)."""
    total = sum(weights, Fraction(0))
    rounded = [q4(w / total) for w in weights]
    biggest = max(range(len(rounded)), key=lambda i: rounded[i])
    rounded[biggest] += Decimal(1) - sum(rounded)
    return {d: str(w) for d, w in zip(DIMENSIONS, rounded, strict=True)}


@transaction.atomic
def refit_scoring_model(*, actor=None) -> dict:
    """Fit the dimension weights to outcomes (non-negative least squares) and make a new
    active version only when it predicts better on held-out features (leave-one-out mean
    squared error below the current weights'); say why or why not. Either way the figures
    are stored on the models (their `calibration`)."""
    current = ScoringModel.objects.select_for_update().filter(active=True).first()
    if current is None:
        current = ensure_default_model()
    points = calibration_points()
    now = timezone.now()
    current_weights = [F(current.weights[d]) for d in DIMENSIONS]
    predicted = [_predict(current_weights, p["x"]) for p in points]
    figures = {
        "calibrated_at": now.isoformat(),
        "n": len(points),
        "spearman": _str_or_none(mathx.spearman(predicted, [p["y"] for p in points])),
        "points": [
            {
                "feature_id": p["feature"].key,
                "name": p["feature"].name,
                "score_id": p["score"].pk,
                "predicted": str(q2(pred)),
                "actual": str(q2(p["y"])),
            }
            for p, pred in zip(points, predicted, strict=True)
        ],
    }
    if len(points) < MIN_CALIBRATION_POINTS:
        reason = (
            f"Kept v{current.version}: a refit needs outcomes of at least "
            f"{MIN_CALIBRATION_POINTS} launched features with a score (have {len(points)})."
        )
        return _keep(current, figures, reason, actor)
    loo_current = mathx.mean_squared(_loo_errors_current(points, current_weights))
    loo_candidate = mathx.mean_squared(_loo_errors_candidate(points))
    fitted = mathx.nnls([p["x"] for p in points], [p["y"] for p in points])
    figures["loo_mse_current"] = str(q4(loo_current))
    figures["loo_mse_candidate"] = str(q4(loo_candidate))
    figures["fitted_weights"] = [str(q4(w)) for w in fitted]
    if sum(fitted) == 0:
        reason = f"Kept v{current.version}: the fit gives every dimension a zero weight."
        return _keep(current, figures, reason, actor)
    if loo_candidate >= loo_current:
        reason = (
            f"Kept v{current.version}: the refit predicts held-out features no better "
            f"(leave-one-out MSE {q4(loo_candidate)} against {q4(loo_current)})."
        )
        return _keep(current, figures, reason, actor)
    weights = _normalised(fitted)
    new_predicted = [_predict([F(weights[d]) for d in DIMENSIONS], p["x"]) for p in points]
    reason = (
        f"New v{current.version + 1}: leave-one-out MSE {q4(loo_candidate)} against "
        f"{q4(loo_current)} for v{current.version}."
    )
    current.active = False
    current.calibration = {**figures, "decision": "replaced", "reason": reason}
    _save(current, actor=actor, reason="replaced by a refit")
    new = ScoringModel(
        version=ScoringModel.objects.order_by("-version").values_list("version", flat=True)[0] + 1,
        weights=weights,
        persona_weights=current.persona_weights,
        constants=current.constants,
        active=True,
        created_by=_user(actor),
        note=reason[:500],
        calibration={
            **figures,
            "spearman": _str_or_none(mathx.spearman(new_predicted, [p["y"] for p in points])),
            "points": [
                {**row, "predicted": str(q2(pred))}
                for row, pred in zip(figures["points"], new_predicted, strict=True)
            ],
            "decision": "created",
            "reason": reason,
            "previous_version": current.version,
        },
    )
    _save(new, actor=actor, reason="refit")
    return {"created": True, "model": new, "previous": current, "reason": reason, **figures}


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


def _keep(current: ScoringModel, figures: dict, reason: str, actor) -> dict:
    current.calibration = {**figures, "decision": "kept", "reason": reason}
    _save(current, actor=actor, reason="calibrated")
    return {"created": False, "model": current, "previous": None, "reason": reason, **figures}


def update_scoring_model(
    *, model_id: int, weights=None, persona_weights=None, constants=None, note=None, actor=None
) -> ScoringModel:
    """Edit a model version that has made no score yet; a version that scored is a record
    (edit by creating the next version with `create_scoring_model`)."""
    with transaction.atomic():
        model = ScoringModel.objects.select_for_update().filter(pk=model_id).first()
        if model is None:
            raise NotFound("Model not found.")
        if model.scores.exists():
            raise Conflict(
                f"v{model.version} has made scores: create a new version instead.",
                code="model_in_use",
            )
        for name, value in (
            ("weights", weights),
            ("persona_weights", persona_weights),
            ("constants", constants),
        ):
            if value is not None:
                setattr(model, name, value)
        if note is not None:
            model.note = clean_text(
                note, field="note", label="Note", max_length=500, required=False
            )
        return _save(model, actor=actor, reason="edited")


@transaction.atomic
def create_scoring_model(
    *, weights: dict, persona_weights: dict, constants: dict, note: str = "", actor=None
) -> ScoringModel:
    """A new version from edited weights and constants; it becomes the active one."""
    current = ScoringModel.objects.select_for_update().filter(active=True).first()
    latest = ScoringModel.objects.order_by("-version").values_list("version", flat=True).first()
    candidate = ScoringModel(
        version=(latest or 0) + 1,
        weights=weights,
        persona_weights=persona_weights,
        constants=constants,
        note=clean_text(note, field="note", label="Note", max_length=500, required=False),
        created_by=_user(actor),
    )
    try:
        candidate.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidInput(f"{field}: {' '.join(messages)}", field=field) from None
    unknown = sorted(set(persona_weights) - persona_slugs())
    if unknown:
        raise InvalidInput(
            f"persona_weights: unknown persona {', '.join(unknown)}.", field="persona_weights"
        )
    # Stored as decimal strings, as the defaults and refits are.
    candidate.weights = {d: str(Decimal(str(v))) for d, v in weights.items()}
    candidate.persona_weights = {
        slug: {d: str(Decimal(str(v))) for d, v in values.items()}
        for slug, values in persona_weights.items()
    }
    candidate.constants = {k: str(Decimal(str(v))) for k, v in constants.items()}
    if current is not None:
        current.active = False
        _save(current, actor=actor, reason=f"superseded by v{candidate.version}")
    candidate.active = True
    return _save(candidate, actor=actor, reason="created")
