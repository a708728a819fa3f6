"""Writes of the deployments app: the seed's rollout and onboarding runbooks.

Rollouts: `create_deployment`, `execute_deployment(dry_run=…)`, `pause_deployment`,
`resume_deployment`, `promote_deployment`, `rollback_deployment`, `fail_deployment`,
`evaluate_gates`. Onboarding: `create_onboarding_version`, `activate_version`,
`retire_version`, `assign_user_to_version`. Every status change goes through the model's
STATUS_MACHINE (opsplatform.transitions): a forbidden move raises Conflict (409).
"""

import datetime as dt
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import Counter

from deployments import gates, selectors
from deployments.bucketing import SPACE, hash32
from deployments.models import (
    Deployment,
    GateEvaluation,
    OnboardingAssignment,
    OnboardingVersion,
    Release,
    RolloutFreeze,
)
from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Account, Persona
from opsplatform.queueing import on_commit_enqueue
from opsplatform.transitions import transition
from opsplatform.validation import clean_text

logger = logging.getLogger(__name__)
S = Deployment.Status
SCHEDULE_ACTOR = "schedule:deployments.evaluate_gates"
DEFAULT_TAILS = {
    Deployment.Strategy.ROLLING: (Decimal(25), Decimal(50), Decimal(100)),
    Deployment.Strategy.CANARY: (Decimal(100),),
    Deployment.Strategy.BLUE_GREEN: (Decimal(100),),
    Deployment.Strategy.ALL_AT_ONCE: (Decimal(100),),
}
ROLLBACKS = Counter(
    "opsplatform_deployment_rollbacks_total", "Deployments rolled back", ["trigger", "gate"]
)
GATE_EVALUATIONS = Counter(
    "opsplatform_deployment_gate_evaluations_total", "Gate evaluations", ["outcome"]
)
ONBOARDING_ASSIGNMENTS = Counter(
    "opsplatform_onboarding_assignments_total", "Onboarding assignments made", ["arm"]
)


def _full_clean(obj, **kwargs):
    from django.core.exceptions import ValidationError

    try:
        obj.full_clean(**kwargs)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidInput(
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages),
            field=None if field == "__all__" else field,
        ) from None


def _pct(value) -> Decimal:
    try:
        p = Decimal(str(value))
    except ArithmeticError:
        raise InvalidInput("A percentage must be a number.") from None
    if not p.is_finite() or p < 0 or p > 100 or p != p.quantize(Decimal("0.01")):
        raise InvalidInput("A percentage lies between 0 and 100 with at most 2 decimals.")
    return p.quantize(Decimal("0.01"))


def _actor_name(actor) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()[:40]
    return SCHEDULE_ACTOR[:40]


# --- rollouts -----------------------------------------------------------------------------------


@transaction.atomic
def create_deployment(
    *,
    version: str,
    strategy: str,
    rollout_percentage,
    stages: list | None = None,
    bake_minutes: int = 60,
    notes: str = "",
    actor=None,
    **gate_settings,
) -> Deployment:
    """A pending deployment of `version` (the release is made if new) whose first stage is
    `rollout_percentage`; without `stages`, the strategy's default plan follows it."""
    if strategy not in Deployment.Strategy.values:
        raise InvalidInput(f"Unknown strategy {strategy!r}.", field="strategy")
    start = _pct(rollout_percentage)
    if start <= 0:
        raise InvalidInput("The starting percentage must be above 0.", field="rollout_percentage")
    if stages:
        plan = [_pct(s) for s in stages]
        if plan[0] != start:
            raise InvalidInput("The first stage must equal rollout_percentage.", field="stages")
    else:
        plan = [start, *(p for p in DEFAULT_TAILS[strategy] if p > start)]
    release = Release.objects.filter(version=version).first()
    if release is None:
        release = Release(version=version, notes=notes)
        _full_clean(release)
        if actor is not None and getattr(actor, "is_authenticated", False):
            release._history_user = actor
        release.save()
    previous = (
        Deployment.objects.filter(status=S.COMPLETED)
        .exclude(release=release)
        .order_by("-completed_at", "-id")
        .first()
    )
    deployment = Deployment(
        release=release,
        replaces=previous.release if previous else None,
        strategy=strategy,
        stages=[str(p) for p in plan],
        bake_minutes=bake_minutes,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        **gate_settings,
    )
    _full_clean(deployment)
    if deployment.created_by:
        deployment._history_user = actor
    deployment.save()
    return deployment


def _require(deployment: Deployment, status: str, verb: str) -> None:
    """Moves that share a target status (execute and resume both enter in_progress) start
    from one status each."""
    if deployment.status != status:
        raise Conflict(
            f"Only a {Deployment.Status(status).label.lower()} deployment can be {verb} "
            f"(this one is {deployment.get_status_display().lower()}).",
            code="invalid_transition",
        )


def _locked(deployment_id: int) -> Deployment:
    deployment = Deployment.objects.select_for_update().filter(pk=deployment_id).first()
    if deployment is None:
        raise NotFound("Deployment not found.")
    return deployment


def execute_deployment(*, deployment_id: int, dry_run: bool = False, actor=None):
    """Start a pending deployment at its first stage. A dry run returns the plan — the
    stages and the accounts per persona each exposes — and writes nothing at all."""
    if dry_run:
        deployment = selectors.deployment_get(deployment_id=deployment_id)
        _require(deployment, S.PENDING, "executed")
        return {
            "deployment_id": deployment.id,
            "release": deployment.release.version,
            "strategy": deployment.strategy,
            "dry_run": True,
            "stages": selectors.plan(deployment),
        }
    with transaction.atomic():
        deployment = _locked(deployment_id)
        _require(deployment, S.PENDING, "executed")
        check_not_frozen()
        if Deployment.objects.filter(live=True).exclude(pk=deployment.pk).exists():
            raise Conflict(
                "Another deployment is in progress or paused; finish or roll it back first.",
                code="deployment_in_progress",
            )
        now = timezone.now()
        try:
            with transaction.atomic():
                return transition(
                    deployment,
                    S.IN_PROGRESS,
                    actor=actor,
                    reason=f"executed by {_actor_name(actor)}",
                    lock=False,
                    now=now,
                    started_at=now,
                    stage_index=0,
                    stage_started_at=now,
                    current_percentage=deployment.stage_percentages[0],
                )
        except IntegrityError:
            raise Conflict(
                "Another deployment is in progress or paused.", code="deployment_in_progress"
            ) from None


def pause_deployment(*, deployment_id: int, actor=None, reason: str = "") -> Deployment:
    with transaction.atomic():
        deployment = _locked(deployment_id)
        return transition(deployment, S.PAUSED, actor=actor, reason=reason or "paused", lock=False)


def resume_deployment(*, deployment_id: int, actor=None) -> Deployment:
    """Back in progress; the stage's bake time and gate window restart now."""
    with transaction.atomic():
        deployment = _locked(deployment_id)
        _require(deployment, S.PAUSED, "resumed")
        return transition(
            deployment,
            S.IN_PROGRESS,
            actor=actor,
            reason="resumed",
            lock=False,
            stage_started_at=timezone.now(),
        )


def promote_deployment(*, deployment_id: int, actor=None, reason: str = "") -> Deployment:
    """The next stage now (completed after the last one), whatever the bake time."""
    with transaction.atomic():
        deployment = _locked(deployment_id)
        if deployment.status != S.IN_PROGRESS:
            Deployment.STATUS_MACHINE.check(deployment, S.COMPLETED)  # raises the 409
        return _advance(deployment, actor=actor, reason=reason or "promoted")


def _advance(deployment: Deployment, *, actor, reason: str) -> Deployment:
    check_not_frozen()
    if deployment.is_last_stage:
        return transition(
            deployment,
            S.COMPLETED,
            actor=actor,
            reason=f"{reason} by {_actor_name(actor)}: completed at 100%",
            lock=False,
            current_percentage=Decimal(100),
        )
    index = deployment.stage_index + 1
    percentage = deployment.stage_percentages[index]
    deployment.stage_index = index
    deployment.current_percentage = percentage
    deployment.stage_started_at = timezone.now()
    if actor is not None and getattr(actor, "is_authenticated", False):
        deployment._history_user = actor
    deployment._change_reason = f"{reason} by {_actor_name(actor)}: {percentage}%"[:100]
    deployment.save()
    return deployment


def rollback_deployment(
    *, deployment_id: int, reason: str, actor=None, gate: str = ""
) -> Deployment:
    """Nobody is exposed any more (percentage 0); operations are told."""
    if not reason or not reason.strip():
        raise InvalidInput("Say why the deployment is rolled back.", field="reason")
    with transaction.atomic():
        deployment = _locked(deployment_id)
        deployment = transition(
            deployment,
            S.ROLLED_BACK,
            actor=actor,
            reason=f"rolled back by {_actor_name(actor)}: {reason}",
            lock=False,
            current_percentage=Decimal(0),
            rollback_reason=reason.strip(),
        )
        trigger = "gate" if gate else "manual"
        transaction.on_commit(lambda: ROLLBACKS.labels(trigger, gate or "none").inc())
        _queue_rollback_notice(deployment.id)
    return deployment


def fail_deployment(*, deployment_id: int, reason: str, actor=None) -> Deployment:
    """Stop a deployment that cannot go on (e.g. a broken build): nobody is exposed."""
    if not reason or not reason.strip():
        raise InvalidInput("Say why the deployment failed.", field="reason")
    with transaction.atomic():
        deployment = _locked(deployment_id)
        return transition(
            deployment,
            S.FAILED,
            actor=actor,
            reason=f"failed: {reason}",
            lock=False,
            current_percentage=Decimal(0),
            rollback_reason=reason.strip(),
        )


def _queue_rollback_notice(deployment_id: int) -> None:
    on_commit_enqueue("deployments.tasks.notify_rollback", deployment_id)


def evaluate_gates(*, deployment_id: int, actor=None, now: dt.datetime | None = None):
    """Compare exposed with unexposed accounts over the stage so far; roll back on a failing
    gate, advance once the bake time is over and no gate fails or waits. Returns the
    GateEvaluation row (the schedule calls this every minute for the live deployment)."""
    now = now or timezone.now()
    with transaction.atomic():
        deployment = _locked(deployment_id)
        if deployment.status not in Deployment.LIVE:
            raise Conflict(
                f"Only a deployment in progress or paused has gates to evaluate "
                f"(this one is {deployment.get_status_display().lower()}).",
                code="invalid_transition",
            )
        start = deployment.stage_started_at or deployment.started_at or now
        arms = selectors.arms(
            salt=deployment.salt, percentage=deployment.current_percentage, start=start, end=now
        )
        source = gates.health_source()
        health = (
            source(
                salt=deployment.salt,
                percentage=deployment.current_percentage,
                start=start,
                end=now,
            )
            if source
            else None
        )
        results = [
            gates.error_rate_gate(
                arms,
                margin=deployment.max_error_rate_increase,
                min_events=deployment.min_events_per_arm,
            ),
            gates.ticket_gate(arms, margin=deployment.max_ticket_rate_increase),
            gates.health_gate(health, margin=deployment.max_health_drop),
        ]
        failed = next((r for r in results if r.result == gates.FAIL), None)
        waiting = any(r.result == gates.WAITING for r in results)
        baked = now >= start + dt.timedelta(minutes=deployment.bake_minutes)
        evaluation = GateEvaluation(
            deployment=deployment,
            evaluated_at=now,
            stage_index=deployment.stage_index,
            percentage=deployment.current_percentage,
            window_start=start,
            window_end=now,
            baked=baked,
            gates=[r.as_dict() for r in results],
            failed_gate=failed.gate if failed else "",
            triggered_by=_actor_name(actor),
        )
        if failed is not None:
            evaluation.outcome = GateEvaluation.Outcome.ROLLED_BACK
            evaluation.save()
            rollback_deployment(
                deployment_id=deployment.id,
                actor=actor,
                gate=failed.gate,
                reason=(
                    f"gate {failed.gate} failed: exposed {failed.exposed_rate:.6f} vs "
                    f"control {failed.control_rate:.6f}, margin {failed.margin}"
                ),
            )
        elif deployment.status == S.PAUSED or (baked and not waiting and active_freezes(lock=True)):
            # Paused, or frozen by the error budget: gates still roll back, never advance.
            evaluation.outcome = GateEvaluation.Outcome.HELD
            evaluation.save()
        elif waiting or not baked:
            evaluation.outcome = GateEvaluation.Outcome.WAITING
            evaluation.save()
        else:
            evaluation.outcome = (
                GateEvaluation.Outcome.COMPLETED
                if deployment.is_last_stage
                else GateEvaluation.Outcome.ADVANCED
            )
            evaluation.save()
            _advance(deployment, actor=actor, reason="gates passed")
        outcome = evaluation.outcome
        transaction.on_commit(lambda: GATE_EVALUATIONS.labels(outcome).inc())
    return evaluation


def evaluate_live_deployments() -> list[int]:
    """The schedule's entry: evaluate the deployment in progress, if any."""
    ids = list(Deployment.objects.filter(status=S.IN_PROGRESS).values_list("id", flat=True))
    done = []
    for deployment_id in ids:
        try:
            evaluate_gates(deployment_id=deployment_id)
            done.append(deployment_id)
        except Conflict:
            continue  # moved on (paused, rolled back) between the read and the lock
    return done


# --- rollout freeze (the error budget of the scaling checkpoints) ------------------------------


def active_freezes(*, lock: bool = False) -> list[RolloutFreeze]:
    """The freezes in force, oldest first; `lock` takes their row locks (inside a transaction)
    so a lift cannot slip between the check and the move it guards."""
    qs = RolloutFreeze.objects.filter(lifted_at__isnull=True).order_by("created_at", "id")
    if lock:
        qs = qs.select_for_update()
    return list(qs)


def freeze_message(freezes: list[RolloutFreeze]) -> str:
    parts = []
    for freeze in freezes:
        if freeze.source == RolloutFreeze.Source.CHECKPOINT:
            parts.append(f"checkpoint '{freeze.checkpoint_name}' failed KPI {freeze.kpi_key}")
        else:
            parts.append(f"an operator froze them: {freeze.reason}")
    return "Rollouts are frozen: " + "; ".join(parts) + "."


def check_not_frozen() -> None:
    """Raise the 409 naming the checkpoint and KPI while a freeze is in force (called under the
    deployment's row lock by execute, promote and every advance)."""
    freezes = active_freezes(lock=True)
    if freezes:
        raise Conflict(freeze_message(freezes), code="rollouts_frozen")


@transaction.atomic
def freeze_rollouts(
    *,
    source: str = RolloutFreeze.Source.CHECKPOINT,
    reason: str,
    checkpoint_name: str = "",
    checkpoint_id: int | None = None,
    kpi_key: str = "",
    actor=None,
) -> tuple[RolloutFreeze, bool]:
    """Put a freeze in force; idempotent per (source, KPI): a freeze already in force is kept
    and pointed at the newest checkpoint. Returns (freeze, created)."""
    if source not in RolloutFreeze.Source.values:
        raise InvalidInput(f"Unknown freeze source {source!r}.", field="source")
    reason = clean_text(reason, field="reason", label="Reason", max_length=2000)
    current = (
        RolloutFreeze.objects.select_for_update()
        .filter(source=source, kpi_key=kpi_key, lifted_at__isnull=True)
        .first()
    )
    user = actor if getattr(actor, "is_authenticated", False) else None
    if current is not None:
        if current.checkpoint_id != checkpoint_id:
            current.checkpoint_name = checkpoint_name[:200]
            current.checkpoint_id = checkpoint_id
            current._history_user = user
            current._change_reason = "still failing"
            current.save(update_fields=["checkpoint_name", "checkpoint_id"])
        return current, False
    freeze = RolloutFreeze(
        source=source,
        reason=reason,
        checkpoint_name=checkpoint_name[:200],
        checkpoint_id=checkpoint_id,
        kpi_key=kpi_key[:80],
    )
    freeze._history_user = user
    freeze._change_reason = "frozen"
    try:
        with transaction.atomic():
            freeze.save()
    except IntegrityError:  # a concurrent run froze the same KPI first
        return RolloutFreeze.objects.get(
            source=source, kpi_key=kpi_key, lifted_at__isnull=True
        ), False
    return freeze, True


@transaction.atomic
def lift_rollout_freeze(
    *, reason: str, actor=None, kpi_key: str | None = None, source: str | None = None
) -> list[RolloutFreeze]:
    """Lift the freezes in force (all of them, or one KPI's / one source's) with a reason kept
    in history. Lifting when nothing is frozen is a 409."""
    reason = clean_text(reason, field="reason", label="Reason", max_length=2000)
    qs = RolloutFreeze.objects.select_for_update().filter(lifted_at__isnull=True)
    if kpi_key is not None:
        qs = qs.filter(kpi_key=kpi_key)
    if source is not None:
        qs = qs.filter(source=source)
    freezes = list(qs.order_by("created_at", "id"))
    if not freezes:
        raise Conflict("No rollout freeze is in force.", code="not_frozen")
    now = timezone.now()
    user = actor if getattr(actor, "is_authenticated", False) else None
    for freeze in freezes:
        freeze.lifted_at = now
        freeze.lifted_by = user
        freeze.lift_reason = reason
        freeze._history_user = user
        freeze._change_reason = f"lifted: {reason}"[:100]
        freeze.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    return freezes


# --- onboarding ----------------------------------------------------------------------------------


@transaction.atomic
def create_onboarding_version(
    *,
    version_name: str,
    rollout_percentage,
    target_personas: list[str] | None = None,
    features: list[str] | None = None,
    window_days: int = 14,
    min_sample_per_arm: int = 100,
    actor=None,
) -> OnboardingVersion:
    """A draft version; `target_personas` are persona slugs (empty: every persona)."""
    slugs = sorted(set(target_personas or []))
    personas = list(Persona.objects.filter(slug__in=slugs))
    unknown = set(slugs) - {p.slug for p in personas}
    if unknown:
        raise InvalidInput(
            f"Unknown persona(s): {', '.join(sorted(unknown))}.", field="target_personas"
        )
    if OnboardingVersion.objects.filter(name=version_name).exists():
        raise Conflict(f"An onboarding version named {version_name!r} exists.", code="duplicate")
    version = OnboardingVersion(
        name=version_name,
        rollout_percentage=_pct(rollout_percentage),
        features=list(features or []),
        window_days=window_days,
        min_sample_per_arm=min_sample_per_arm,
    )
    _full_clean(version)
    if actor is not None and getattr(actor, "is_authenticated", False):
        version._history_user = actor
    version.save()
    version.target_personas.set(personas)
    return version


def _share_by_persona(versions: list[OnboardingVersion], persona_ids: list[int]) -> dict:
    totals = dict.fromkeys(persona_ids, Decimal(0))
    for v in versions:
        targets = [p.id for p in v.target_personas.all()] or persona_ids
        for pid in targets:
            totals[pid] += v.rollout_percentage
    return totals


def activate_version(*, version_id: int, actor=None) -> OnboardingVersion:
    """Start showing a draft version. Refused (409) when the active versions' shares for a
    persona would add up to more than 100."""
    with transaction.atomic():
        # Lock every active version too, so two activations cannot both fit.
        active = list(
            OnboardingVersion.objects.select_for_update()
            .filter(status=OnboardingVersion.Status.ACTIVE)
            .order_by("id")
        )
        version = OnboardingVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            raise NotFound("Onboarding version not found.")
        OnboardingVersion.STATUS_MACHINE.check(version, OnboardingVersion.Status.ACTIVE)
        personas = dict(Persona.objects.values_list("id", "slug"))
        totals = _share_by_persona([*active, version], list(personas))
        over = {personas[pid]: total for pid, total in totals.items() if total > 100}
        if over:
            detail = ", ".join(f"{slug} {total}%" for slug, total in sorted(over.items()))
            raise Conflict(
                f"Activating {version.name} would give more than 100% of accounts to "
                f"onboarding versions for: {detail}. Lower a share or retire a version first.",
                code="shares_exceed_100",
            )
        return transition(
            version, OnboardingVersion.Status.ACTIVE, actor=actor, reason="activated", lock=False
        )


def retire_version(*, version_id: int, actor=None) -> OnboardingVersion:
    """Stop assigning the version; accounts already on it keep it."""
    version = OnboardingVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise NotFound("Onboarding version not found.")
    return transition(version, OnboardingVersion.Status.RETIRED, actor=actor, reason="retired")


def choose_version(account_id: int, eligible: list[OnboardingVersion]) -> OnboardingVersion | None:
    """Sequential sticky split: version i takes the account with probability
    share_i / (100 - shares before it), from its own hash, so overall it gets share_i % of the
    eligible accounts; the rest get control. Exact integer comparisons."""
    before = Decimal(0)
    for version in eligible:
        share = version.rollout_percentage
        remaining = 100 - before
        # hash32 / 2**32 < share / remaining  ⇔  hash32 * remaining < share * 2**32
        if (
            share > 0
            and remaining > 0
            and Decimal(hash32(version.salt, account_id)) * remaining < share * SPACE
        ):
            return version
        before += share
    return None


def assign_user_to_version(
    *, user_id: int, persona_segment: str | None = None, actor=None
) -> tuple[OnboardingAssignment, bool]:
    """The account's onboarding flow, made once and then the same answer forever.
    `user_id` is the account's id (the tenant); `persona_segment`, when given, must be the
    account's persona. Returns (assignment, created)."""
    existing = selectors.assignment_get(account_id=user_id)
    if existing is not None:
        return existing, False
    account = Account.objects.select_related("persona").filter(pk=user_id).first()
    if account is None:
        raise NotFound("Account not found.")
    if persona_segment is not None and persona_segment != account.persona.slug:
        raise InvalidInput(
            f"The account's persona is {account.persona.slug}, not {persona_segment}.",
            field="persona_segment",
        )
    chosen = choose_version(account.id, selectors.eligible_versions(account.persona))
    assignment = OnboardingAssignment(account=account, version=chosen, persona=account.persona)
    if actor is not None and getattr(actor, "is_authenticated", False):
        assignment._history_user = actor
    try:
        with transaction.atomic():
            assignment.save()
    except IntegrityError:
        # A concurrent request assigned it first: that answer stands.
        return selectors.assignment_get(account_id=user_id), False
    arm = "version" if chosen else "control"
    transaction.on_commit(lambda: ONBOARDING_ASSIGNMENTS.labels(arm).inc())
    return assignment, True
