"""seed_demo's deployments rows: releases, a completed and a rolled-back deployment with gate
evaluations, two onboarding versions with assignments and completions."""

import datetime as dt

import pytest

from deployments import demo, selectors
from deployments.models import Deployment, GateEvaluation, OnboardingAssignment, Release
from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core

pytestmark = pytest.mark.django_db


def test_demo_rollouts_and_onboarding():
    ctx = DemoContext(seed=7, accounts_wanted=60, as_of=dt.date(2025, 6, 2), write=lambda *a: None)
    seed_core(ctx)
    demo.seed_demo(ctx)
    assert list(Release.objects.order_by("version").values_list("version", flat=True)) == [
        "1.0.0",
        "1.1.0",
        "1.2.0",
    ]
    assert set(Deployment.objects.values_list("status", flat=True)) == {
        "completed",
        "rolled_back",
    }
    rolled = Deployment.objects.get(status="rolled_back")
    assert rolled.evaluations.filter(outcome="rolled_back", failed_gate="error_rate").exists()
    assert GateEvaluation.objects.count() == ctx.counts["gate_evaluations"] == 6
    assignments = OnboardingAssignment.objects.all()
    assert assignments.count() == ctx.counts["onboarding_assignments"] > 30
    assert assignments.filter(version__isnull=True).exists()
    assert assignments.filter(version__name="Guided checklist").exists()
    # The agency tour goes to agencies only.
    assert (
        not assignments.filter(version__name="Agency workspace tour")
        .exclude(persona__slug="agency")
        .exists()
    )
    guided = assignments.filter(version__name="Guided checklist").first().version
    results = selectors.onboarding_results(version=guided)
    assert results["arms"][0]["completed"] > 0
    # The release API answers from the completed deployment.
    any_account = ctx.accounts[0].id
    assert selectors.release_assignment(account_id=any_account)["release"] == "1.1.0"
