"""Demo rollouts and onboarding experiments: three releases, a completed deployment and one
rolled back by its error-rate gate (with their gate evaluations), two active onboarding
versions with sticky assignments and completions. Bulk-written and deterministic for a seed
and `as_of` date."""

import datetime as dt
from decimal import Decimal

from deployments.models import (
    Deployment,
    GateEvaluation,
    OnboardingAssignment,
    OnboardingVersion,
    Release,
)
from deployments.selectors import COMPLETED_EVENT
from opsplatform.models import Persona, UsageEvent

COMPLETION_ODDS = {None: 0.34, "Guided checklist": 0.47, "Agency workspace tour": 0.41}


def _gates(error_exposed, error_control, result="pass", n=(900, 8100)) -> list[dict]:
    return [
        {
            "gate": "error_rate",
            "result": result,
            "exposed_rate": error_exposed,
            "control_rate": error_control,
            "margin": 0.01,
            "exposed_n": n[0],
            "control_n": n[1],
            "detail": f"Error rate {error_exposed:.4%} exposed vs {error_control:.4%} control; "
            "margin 1.00%.",
        },
        {
            "gate": "tickets",
            "result": "pass",
            "exposed_rate": 0.02,
            "control_rate": 0.018,
            "margin": 0.05,
            "exposed_n": n[0] // 20,
            "control_n": n[1] // 20,
            "detail": "Tickets per account 0.0200 exposed vs 0.0180 control; margin 0.0500.",
        },
        {
            "gate": "health",
            "result": "no_data",
            "exposed_rate": None,
            "control_rate": None,
            "margin": 5.0,
            "exposed_n": 0,
            "control_n": 0,
            "detail": "No data: account health is not available for both arms; not blocking.",
        },
    ]


def _rollouts(ctx) -> None:
    rng = ctx.rng("deployments")
    now = ctx.now
    days = lambda n: now - dt.timedelta(days=n)  # noqa: E731
    if Release.objects.filter(version__in=["1.0.0", "1.1.0", "1.2.0"]).exists():
        ctx.counts["deployments"] = 0  # seeded before (accounts wiped and re-seeded)
        return
    r100, r110, r120 = Release.objects.bulk_create(
        [
            Release(version="1.0.0", notes="Baseline release.", created_at=days(90)),
            Release(version="1.1.0", notes="Faster campaign reports.", created_at=days(32)),
            Release(version="1.2.0", notes="New metrics importer.", created_at=days(8)),
        ]
    )
    stages = ["5", "25", "50", "100"]
    completed = Deployment(
        release=r110,
        replaces=r100,
        strategy=Deployment.Strategy.ROLLING,
        stages=stages,
        bake_minutes=240,
        stage_index=3,
        stage_started_at=days(29),
        current_percentage=Decimal(100),
        salt=f"{rng.getrandbits(64):016x}",
        status=Deployment.Status.COMPLETED,
        created_by=ctx.staff.get("ops"),
        created_at=days(31),
        started_at=days(30),
        completed_at=days(29),
    )
    rolled_back = Deployment(
        release=r120,
        replaces=r110,
        strategy=Deployment.Strategy.ROLLING,
        stages=stages,
        bake_minutes=240,
        stage_index=1,
        stage_started_at=days(6),
        current_percentage=Decimal(0),
        salt=f"{rng.getrandbits(64):016x}",
        status=Deployment.Status.ROLLED_BACK,
        created_by=ctx.staff.get("ops"),
        created_at=days(7),
        started_at=days(7),
        rolled_back_at=days(6) + dt.timedelta(hours=2),
        rollback_notified_at=days(6) + dt.timedelta(hours=2),
        rollback_reason=(
            "gate error_rate failed: exposed 0.031200 vs control 0.008100, margin 0.0100"
        ),
    )
    Deployment.objects.bulk_create([completed, rolled_back])
    evaluations = []
    for i, pct in enumerate(stages):
        start = days(30) + dt.timedelta(hours=6 * i)
        evaluations.append(
            GateEvaluation(
                deployment=completed,
                evaluated_at=start + dt.timedelta(hours=4),
                stage_index=i,
                percentage=Decimal(pct),
                window_start=start,
                window_end=start + dt.timedelta(hours=4),
                baked=True,
                gates=_gates(0.0081 + 0.0004 * rng.random(), 0.0083),
                outcome="completed" if i == 3 else "advanced",
                triggered_by="schedule:deployments.evaluate_gates",
            )
        )
    evaluations += [
        GateEvaluation(
            deployment=rolled_back,
            evaluated_at=days(7) + dt.timedelta(hours=4),
            stage_index=0,
            percentage=Decimal(5),
            window_start=days(7),
            window_end=days(7) + dt.timedelta(hours=4),
            baked=True,
            gates=_gates(0.0102, 0.0084, n=(450, 8600)),
            outcome="advanced",
            triggered_by="schedule:deployments.evaluate_gates",
        ),
        GateEvaluation(
            deployment=rolled_back,
            evaluated_at=days(6) + dt.timedelta(hours=2),
            stage_index=1,
            percentage=Decimal(25),
            window_start=days(6),
            window_end=days(6) + dt.timedelta(hours=2),
            baked=False,
            gates=_gates(0.0312, 0.0081, result="fail", n=(2300, 6900)),
            outcome="rolled_back",
            failed_gate="error_rate",
            triggered_by="schedule:deployments.evaluate_gates",
        ),
    ]
    GateEvaluation.objects.bulk_create(evaluations)
    ctx.counts["deployments"] = 2
    ctx.counts["gate_evaluations"] = len(evaluations)


def _onboarding(ctx) -> None:
    rng = ctx.rng("onboarding")
    now = ctx.now
    activated = now - dt.timedelta(days=45)
    salts = [f"{rng.getrandbits(64):016x}" for _ in range(2)]  # drawn on every run alike
    existing = {v.name: v for v in OnboardingVersion.objects.filter(name__in=COMPLETION_ODDS)}
    if len(existing) == 2:
        guided, tour = existing["Guided checklist"], existing["Agency workspace tour"]
        _assign(ctx, rng, guided, tour, activated)
        return
    guided, tour = OnboardingVersion.objects.bulk_create(
        [
            OnboardingVersion(
                name="Guided checklist",
                features=["checklist", "sample_campaign"],
                rollout_percentage=Decimal(30),
                status=OnboardingVersion.Status.ACTIVE,
                salt=salts[0],
                created_at=activated - dt.timedelta(days=2),
                activated_at=activated,
            ),
            OnboardingVersion(
                name="Agency workspace tour",
                features=["workspace_tour", "client_invites"],
                rollout_percentage=Decimal(40),
                status=OnboardingVersion.Status.ACTIVE,
                salt=salts[1],
                created_at=activated - dt.timedelta(days=1),
                activated_at=activated + dt.timedelta(minutes=5),
            ),
        ]
    )
    agency = Persona.objects.get(slug=Persona.AGENCY)
    tour.target_personas.set([agency])
    _assign(ctx, rng, guided, tour, activated)


def _assign(ctx, rng, guided, tour, activated) -> None:
    now = ctx.now
    personas = dict(Persona.objects.values_list("slug", "id"))
    assignments, events = [], []
    for account in ctx.accounts:
        eligible = [guided, tour] if account.persona == Persona.AGENCY else [guided]
        # Drawn from the seeded stream by the shares (not from the id hash) so the same seed
        # gives the same rows whatever ids the database hands out; stored rows are what count.
        draw, version = rng.random() * 100, None
        for candidate in eligible:
            draw -= float(candidate.rollout_percentage)
            if draw < 0:
                version = candidate
                break
        assigned_at = max(account.created_at, activated) + dt.timedelta(hours=rng.randint(1, 72))
        if assigned_at >= now:
            continue
        assignments.append(
            OnboardingAssignment(
                account_id=account.id,
                version=version,
                persona_id=personas[account.persona],
                assigned_at=assigned_at,
            )
        )
        if rng.random() < COMPLETION_ODDS[version.name if version else None]:
            done = assigned_at + dt.timedelta(hours=rng.randint(2, 24 * 12))
            if done < now:
                events.append(
                    UsageEvent(
                        account_id=account.id,
                        type=COMPLETED_EVENT,
                        occurred_at=done,
                        properties={"source": "seed"},
                        idempotency_key=f"demo-onboarding-{account.id}",
                        received_at=done,
                    )
                )
    OnboardingAssignment.objects.bulk_create(assignments, batch_size=2000, ignore_conflicts=True)
    UsageEvent.objects.bulk_create(events, batch_size=2000, ignore_conflicts=True)
    ctx.counts["onboarding_assignments"] = len(assignments)
    ctx.counts["onboarding_completions"] = len(events)


HEALTH_WEEKS = 13  # checks every 7 days over the last 90 days


def _health(ctx) -> None:
    """Account health over the last 90 days: the real checks, run as of each week (the data
    of the seed as it stood then), so the charts show each account's trend and the last run
    finds the accounts that just turned critical (their tickets are queued for the worker)."""
    from deployments.health import services as health

    results = []
    for week in range(HEALTH_WEEKS - 1, -1, -1):
        results.append(
            health.check_all_accounts(
                batch_size=1000,
                now=ctx.now - dt.timedelta(weeks=week),
                triggered_by="seed_demo",
            )
        )
    ctx.counts["health_checks"] = sum(r["checked"] for r in results)
    for status, n in results[-1]["counts"].items():
        ctx.counts[f"health_{status}"] = n
    ctx.counts["health_just_turned_critical"] = sum(
        1 for c in results[-1]["changed"] if c["to"] == "critical" and c["from"]
    )


def seed_demo(ctx) -> None:
    _rollouts(ctx)
    _onboarding(ctx)
    _health(ctx)
