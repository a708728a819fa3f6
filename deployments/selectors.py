"""Reads of deployments and onboarding experiments: plans, arms, assignments and results,
each a fixed number of set-based queries whatever the number of accounts."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.apps import apps
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from deployments import stats
from deployments.bucketing import Hash32, bucket, hash32, threshold
from deployments.models import (
    Deployment,
    GateEvaluation,
    OnboardingAssignment,
    OnboardingVersion,
    RolloutFreeze,
)
from opsplatform.errors import NotFound
from opsplatform.models import Account, Persona, UsageEvent

ERROR_EVENT = "error"
COMPLETED_EVENT = "onboarding_completed"


# --- deployments --------------------------------------------------------------------------------


def deployment_list() -> QuerySet[Deployment]:
    return Deployment.objects.select_related("release", "replaces", "created_by").order_by(
        "-created_at", "-id"
    )


def deployment_get(*, deployment_id: int) -> Deployment:
    deployment = deployment_list().filter(id=deployment_id).first()
    if deployment is None:
        raise NotFound("Deployment not found.")
    return deployment


def freeze_list(*, active: bool | None = None) -> QuerySet[RolloutFreeze]:
    """Rollout freezes, newest first; `active` keeps those in force (True) or lifted (False)."""
    qs = RolloutFreeze.objects.select_related("lifted_by").order_by("-created_at", "-id")
    if active is not None:
        qs = qs.filter(lifted_at__isnull=active)
    return qs


def deployment_outcomes(*, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
    """How many deployments finished in [since, until), by final status (completed,
    rolled_back, failed): one grouped query."""
    finished = Q(
        completed_at__gte=since, completed_at__lt=until, status=Deployment.Status.COMPLETED
    )
    rolled = Q(
        rolled_back_at__gte=since, rolled_back_at__lt=until, status=Deployment.Status.ROLLED_BACK
    )
    failed = Q(failed_at__gte=since, failed_at__lt=until, status=Deployment.Status.FAILED)
    counts = Deployment.objects.aggregate(
        completed=Count("id", filter=finished),
        rolled_back=Count("id", filter=rolled),
        failed=Count("id", filter=failed),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def evaluations_of(deployment: Deployment, limit: int = 50) -> list[GateEvaluation]:
    return list(deployment.evaluations.order_by("-evaluated_at", "-id")[:limit])


def plan(deployment: Deployment) -> list[dict]:
    """What each stage exposes: the percentage and how many accounts per persona (one query)."""
    percentages = deployment.stage_percentages
    hashed = Account.objects.alias(h=Hash32(deployment.salt, F("id")))
    counts = {f"s{i}": Count("id", filter=Q(h__lt=threshold(p))) for i, p in enumerate(percentages)}
    rows = (
        hashed.values("persona__slug")
        .annotate(total=Count("id"), **counts)
        .order_by("persona__slug")
    )
    per_persona = {row["persona__slug"]: row for row in rows}
    stages = []
    for i, p in enumerate(percentages):
        by_persona = {slug: row[f"s{i}"] for slug, row in per_persona.items()}
        stages.append(
            {
                "stage": i + 1,
                "percentage": float(p),
                "bake_minutes": deployment.bake_minutes,
                "accounts": sum(by_persona.values()),
                "accounts_by_persona": by_persona,
            }
        )
    return stages


def current_deployment() -> Deployment | None:
    """The deployment that decides which release accounts get: the live one, or else the
    last completed one."""
    live = deployment_list().filter(status__in=Deployment.LIVE).first()
    if live is not None:
        return live
    return (
        deployment_list()
        .filter(status=Deployment.Status.COMPLETED)
        .order_by("-completed_at", "-id")
        .first()
    )


def release_assignment(*, account_id: int) -> dict:
    """Which release an account gets now and why (its bucket against the percentage)."""
    deployment = current_deployment()
    if deployment is None:
        return {
            "account_id": account_id,
            "release": None,
            "deployment_id": None,
            "exposed": False,
            "bucket": None,
        }
    exposed = hash32(deployment.salt, account_id) < threshold(deployment.current_percentage)
    release = deployment.release if exposed else deployment.replaces
    return {
        "account_id": account_id,
        "release": release.version if release else None,
        "deployment_id": deployment.id,
        "exposed": exposed,
        "bucket": float(bucket(deployment.salt, account_id)),
    }


@dataclass(frozen=True)
class Arms:
    """Counts for the exposed accounts and the others over one window."""

    exposed_accounts: int
    control_accounts: int
    exposed_events: int
    exposed_errors: int
    control_events: int
    control_errors: int
    exposed_tickets: int | None  # None when support is not installed
    control_tickets: int | None


def arms(*, salt: str, percentage: Decimal, start: dt.datetime, end: dt.datetime) -> Arms:
    """Three aggregate queries (accounts, usage events, tickets), split by the bucket in SQL."""
    limit = threshold(percentage)
    exposed = Q(h__lt=limit)
    accounts = Account.objects.alias(h=Hash32(salt, F("id"))).aggregate(
        exposed=Count("id", filter=exposed), total=Count("id")
    )
    # The hash is computed once per account (a hashed sub-plan on PostgreSQL), not once per
    # event: 100k hashes instead of a million.
    exposed_ids = Account.objects.alias(h=Hash32(salt, F("id"))).filter(exposed).values("id")
    in_arm = Q(account_id__in=exposed_ids)
    events = UsageEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end).aggregate(
        exposed=Count("id", filter=in_arm),
        exposed_errors=Count("id", filter=in_arm & Q(type=ERROR_EVENT)),
        total=Count("id"),
        errors=Count("id", filter=Q(type=ERROR_EVENT)),
    )
    exposed_tickets = control_tickets = None
    if apps.is_installed("support"):
        # Read-only, by model label: deployments does not import support (import-linter).
        ticket_model = apps.get_model("support", "Ticket")
        tickets = ticket_model.objects.filter(
            created_at__gte=start, created_at__lt=end, account__isnull=False
        ).aggregate(exposed=Count("id", filter=in_arm), total=Count("id"))
        exposed_tickets = tickets["exposed"]
        control_tickets = tickets["total"] - tickets["exposed"]
    return Arms(
        exposed_accounts=accounts["exposed"],
        control_accounts=accounts["total"] - accounts["exposed"],
        exposed_events=events["exposed"],
        exposed_errors=events["exposed_errors"],
        control_events=events["total"] - events["exposed"],
        control_errors=events["errors"] - events["exposed_errors"],
        exposed_tickets=exposed_tickets,
        control_tickets=control_tickets,
    )


# --- onboarding -----------------------------------------------------------------------------------


def onboarding_version_list() -> QuerySet[OnboardingVersion]:
    return OnboardingVersion.objects.prefetch_related("target_personas").order_by(
        "-created_at", "-id"
    )


def onboarding_version_get(*, version_id: int) -> OnboardingVersion:
    version = onboarding_version_list().filter(id=version_id).first()
    if version is None:
        raise NotFound("Onboarding version not found.")
    return version


def eligible_versions(persona: Persona) -> list[OnboardingVersion]:
    """Active versions targeting the persona (or every persona), in activation order."""
    return list(
        OnboardingVersion.objects.filter(status=OnboardingVersion.Status.ACTIVE)
        .filter(Q(target_personas=persona) | Q(target_personas__isnull=True))
        .distinct()
        .order_by("activated_at", "id")
    )


def assignment_get(*, account_id: int) -> OnboardingAssignment | None:
    return (
        OnboardingAssignment.objects.select_related("version").filter(account_id=account_id).first()
    )


def _arm(version_id, name, assigned, completed) -> dict:
    low, high = stats.wilson_interval(completed, assigned)
    return {
        "version_id": version_id,
        "name": name,
        "assigned": assigned,
        "completed": completed,
        "completion_rate": completed / assigned if assigned else None,
        "ci_low": low if assigned else None,
        "ci_high": high if assigned else None,
    }


def onboarding_results(*, version: OnboardingVersion, window_days: int | None = None) -> dict:
    """The version against control among the personas it targets (see docs/deployments.md)."""
    window = dt.timedelta(days=window_days or version.window_days)
    persona_ids = [p.id for p in version.target_personas.all()]
    scope = OnboardingAssignment.objects.all()
    if persona_ids:
        scope = scope.filter(persona_id__in=persona_ids)
    if version.activated_at:
        scope = scope.filter(assigned_at__gte=version.activated_at)
    done = UsageEvent.objects.filter(
        account_id=OuterRef("account_id"),
        type=COMPLETED_EVENT,
        occurred_at__gte=OuterRef("assigned_at"),
        occurred_at__lte=OuterRef("assigned_at") + window,
    )
    # One query: assigned and completed per (persona, arm).
    rows = (
        scope.alias(done=Exists(done))
        .values("persona_id", "version_id")
        .annotate(assigned=Count("id"), completed=Count("id", filter=Q(done=True)))
        .order_by()
    )
    treat = [0, 0]
    control = [0, 0]
    persona_arm: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        persona_arm[row["persona_id"]][row["version_id"]] += row["assigned"]
        if row["version_id"] == version.id:
            treat[0] += row["assigned"]
            treat[1] += row["completed"]
        elif row["version_id"] is None:
            control[0] += row["assigned"]
            control[1] += row["completed"]
    srm = _srm(version, persona_arm)
    comparison = stats.compare_proportions(treat[1], treat[0], control[1], control[0])
    has_data = treat[0] > 0 and control[0] > 0
    if min(treat[0], control[0]) < version.min_sample_per_arm:
        verdict = "not_enough_data"
    elif srm is not None and srm < SRM_ALPHA:
        verdict = "sample_ratio_mismatch"
    elif comparison.p_value is not None and comparison.p_value < 0.05:
        verdict = "winner" if comparison.diff > 0 else "loser"
    else:
        verdict = "no_significant_difference"
    return {
        "version_id": version.id,
        "window_days": window.days,
        "arms": [
            _arm(version.id, version.name, treat[0], treat[1]),
            _arm(None, "control", control[0], control[1]),
        ],
        "lift_abs": comparison.diff if has_data else None,
        "lift_abs_ci_low": comparison.diff_ci_low if has_data else None,
        "lift_abs_ci_high": comparison.diff_ci_high if has_data else None,
        "lift_rel": comparison.relative if has_data else None,
        "p_value": comparison.p_value if has_data else None,
        "srm_p_value": srm,
        "srm_flag": srm is not None and srm < SRM_ALPHA,
        "verdict": verdict,
    }


SRM_ALPHA = 0.001


def _srm(version: OnboardingVersion, persona_arm: dict) -> float | None:
    """χ² of the assigned counts (this version, control, other versions) against the shares
    configured for each persona, summed over the personas."""
    other_ids = {
        vid for arms_ in persona_arm.values() for vid in arms_ if vid not in (None, version.id)
    }
    shares = dict(
        OnboardingVersion.objects.filter(id__in=[version.id, *other_ids]).values_list(
            "id", "rollout_percentage"
        )
    )
    observed = [0, 0, 0]
    expected = [0.0, 0.0, 0.0]
    for arm_counts in persona_arm.values():
        n = sum(arm_counts.values())
        mine = float(shares[version.id])
        others = sum(float(shares[v]) for v in arm_counts if v not in (None, version.id))
        observed[0] += arm_counts.get(version.id, 0)
        observed[1] += arm_counts.get(None, 0)
        observed[2] += sum(c for v, c in arm_counts.items() if v not in (None, version.id))
        expected[0] += n * mine / 100
        expected[1] += n * max(0.0, 100 - mine - others) / 100
        expected[2] += n * others / 100
    if expected[2] == 0 and observed[2] == 0:
        observed, expected = observed[:2], expected[:2]
    if sum(observed) == 0 or min(expected) <= 0:
        return None
    return stats.srm_p_value(observed, expected)


def onboarding_journeys(*, since: dt.datetime, until: dt.datetime) -> list[tuple]:
    """(persona slug, created_at, first onboarding completion before `until` or None) per
    account created in [since, until): the journey "signup → onboarding completed"."""
    from django.db.models import Min

    return list(
        Account.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(
            done=Min(
                "usage_events__occurred_at",
                filter=Q(usage_events__type=COMPLETED_EVENT, usage_events__occurred_at__lt=until),
            )
        )
        .order_by()
        .values_list("persona__slug", "created_at", "done")
    )
