"""Admin: change lists at a fixed query count, the change-page buttons call the services and
act only on POST confirm=yes, the dry run page writes nothing, results with the chart."""

import pytest
from django.test import Client
from django.urls import reverse

from deployments import services
from deployments.models import Deployment, OnboardingVersion
from tests.deployments.conftest import make_accounts
from tests.factories import staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_client():
    client = Client()
    client.force_login(staff_in("operations"))
    return client


def _d(version="6.0.0", pct=10):
    return services.create_deployment(version=version, strategy="rolling", rollout_percentage=pct)


@pytest.mark.parametrize(
    "model", ["deployment", "release", "onboardingversion", "onboardingassignment"]
)
def test_changelists_cost_the_same_at_1_and_50_rows(
    ops_client, model, django_assert_max_num_queries
):
    def make(n, start):
        accounts = make_accounts(n) if model == "onboardingassignment" else []
        for i in range(start, start + n):
            if model in ("deployment", "release"):
                _d(f"6.{i}.0")
            elif model == "onboardingversion":
                services.create_onboarding_version(
                    version_name=f"v{i}", rollout_percentage=1, target_personas=["brand"]
                )
            else:
                services.assign_user_to_version(user_id=accounts[i - start].id)

    url = reverse(f"admin:deployments_{model}_changelist")
    make(1, 0)
    with django_assert_max_num_queries(30) as one:
        assert ops_client.get(url).status_code == 200
    make(49, 1)
    with django_assert_max_num_queries(len(one.captured_queries)):
        r = ops_client.get(url)
    assert r.status_code == 200


def test_change_page_shows_progress_buttons_and_gate_results(ops_client):
    d = _d()
    services.execute_deployment(deployment_id=d.id)
    services.evaluate_gates(deployment_id=d.id)
    r = ops_client.get(reverse("admin:deployments_deployment_change", args=[d.id]))
    html = r.content.decode()
    assert r.status_code == 200
    for label in ("Dry run", "Execute", "Pause", "Resume", "Promote", "Roll back"):
        assert label in html
    assert "stage 1 of 4, 10.00%" in html
    assert "error rate" in html and "no data" in html


def test_dry_run_page_lists_the_plan_and_writes_nothing(ops_client):
    make_accounts(3, "agency")
    d = _d()
    history = d.history.count()
    r = ops_client.get(reverse("admin:deployments_deployment_dry_run_detail", args=[d.id]))
    assert r.status_code == 200
    html = r.content.decode()
    assert "Dry run of 6.0.0" in html and "agency" in html
    assert Deployment.objects.get(pk=d.pk).status == "pending"
    assert d.history.count() == history


def test_execute_asks_first_then_acts_on_post_confirm(ops_client):
    d = _d()
    url = reverse("admin:deployments_deployment_execute_detail", args=[d.id])
    assert ops_client.get(url).status_code == 200
    assert ops_client.post(url, {}).status_code == 200  # no confirm: the question again
    assert Deployment.objects.get(pk=d.pk).status == "pending"
    r = ops_client.post(url, {"confirm": "yes"})
    assert r.status_code == 302
    assert Deployment.objects.get(pk=d.pk).status == "in_progress"
    # A forbidden move shows the service's message, changes nothing.
    r = ops_client.post(url, {"confirm": "yes"}, follow=True)
    assert "Only a pending deployment can be executed" in r.content.decode()


def test_rollback_needs_a_reason(ops_client):
    d = _d()
    services.execute_deployment(deployment_id=d.id)
    url = reverse("admin:deployments_deployment_rollback_detail", args=[d.id])
    r = ops_client.post(url, {"confirm": "yes", "reason": ""})
    assert r.status_code == 200 and "This field is required" in r.content.decode()
    assert Deployment.objects.get(pk=d.pk).status == "in_progress"
    ops_client.post(url, {"confirm": "yes", "reason": "errors doubled"})
    d.refresh_from_db()
    assert (d.status, d.rollback_reason) == ("rolled_back", "errors doubled")


def test_read_only_staff_cannot_press_the_buttons():
    reader = Client()
    reader.force_login(staff_in("support_l3"))
    d = _d()
    url = reverse("admin:deployments_deployment_execute_detail", args=[d.id])
    r = reader.post(url, {"confirm": "yes"})
    assert r.status_code == 403
    assert Deployment.objects.get(pk=d.pk).status == "pending"


def test_version_page_shows_results_and_activates(ops_client):
    v = services.create_onboarding_version(version_name="tour", rollout_percentage=50)
    url = reverse("admin:deployments_onboardingversion_activate_detail", args=[v.id])
    ops_client.post(url, {"confirm": "yes"})
    assert OnboardingVersion.objects.get(pk=v.pk).status == "active"
    for account in make_accounts(6):
        services.assign_user_to_version(user_id=account.id)
    r = ops_client.get(reverse("admin:deployments_onboardingversion_change", args=[v.id]))
    html = r.content.decode()
    assert r.status_code == 200
    assert "Completion rate with its 95% interval per arm" in html
    assert "not enough data" in html


def test_add_page_creates_through_the_service(ops_client):
    release = services.create_deployment(
        version="6.9.0", strategy="canary", rollout_percentage=1
    ).release
    url = reverse("admin:deployments_deployment_add")
    assert ops_client.get(url).status_code == 200
    r = ops_client.post(
        url,
        {
            "release": release.id,
            "strategy": "rolling",
            "stages": '["10", "50", "100"]',
            "bake_minutes": 30,
            "max_error_rate_increase": "0.0100",
            "max_ticket_rate_increase": "0.0500",
            "max_health_drop": "5.00",
            "min_events_per_arm": 200,
            "evaluations-TOTAL_FORMS": "0",
            "evaluations-INITIAL_FORMS": "0",
        },
    )
    assert r.status_code == 302, r.context["adminform"].form.errors
    created = Deployment.objects.exclude(strategy="canary").get()
    assert (created.stages, created.bake_minutes, created.status) == (
        ["10.00", "50.00", "100.00"],
        30,
        "pending",
    )
    assert created.history.latest().history_user.username.startswith("staff")
    bad = ops_client.post(url, {"release": release.id, "strategy": "rolling", "stages": "[5, 1]"})
    assert bad.status_code == 200  # the form again, with the error
    assert Deployment.objects.count() == 2
