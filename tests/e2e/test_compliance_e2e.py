"""A compliance officer reviews a DPIA in admin (approves it with a note) and opens the
compliance dashboard: failing monitors first with their remediation, the chart drawn, all
served from this origin."""

from urllib.parse import urlparse

import pytest

from compliance import services
from compliance.models import PrivacyImpactAssessment
from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD, staff_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_officer_reviews_a_dpia_and_opens_the_dashboard(page, live_server):
    author = staff_in("operations", username="omar", email="omar@opsplatform.local")
    officer = staff_in("compliance", username="carla", email="carla@opsplatform.local")
    pia = services.conduct_privacy_impact_assessment(
        feature_name="Listener surveys",
        data_types_collected=["email", "health_interests"],
        data_retention_period=180,
        data_sharing=["survey_vendor"],
        user_consent_required=True,
        actor=author,
    )
    services.submit_pia(pia_id=pia.pk, actor=author)
    services.run_monitors()
    origins = set()
    page.on("request", lambda request: origins.add(urlparse(request.url).netloc))

    sign_in(page, "carla", PASSWORD)
    page.wait_for_load_state()
    page.goto(f"/admin/compliance/privacyimpactassessment/{pia.pk}/change/")
    assert page.get_by_text("special-category or criminal-offence data (health)").is_visible()
    page.get_by_role("link", name="Approve").click()
    page.get_by_label("Note").fill("Explicit consent and restricted access: residual risk medium.")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    assert page.get_by_text("DPIA approved.").is_visible()
    pia.refresh_from_db()
    assert pia.status == PrivacyImpactAssessment.Status.APPROVED
    assert pia.reviewed_by == officer

    page.goto("/admin/compliance/monitor/dashboard/")
    failing = page.locator("#failing-monitors")
    assert failing.get_by_text("Every personal-data model keeps history").is_visible()
    assert failing.get_by_text("Add HistoricalRecords() to each model listed").is_visible()
    assert page.locator("#passing-monitors").get_by_text("Superusers kept to a few").is_visible()
    assert page.locator("canvas").count() >= 1  # Unfold's bundled Chart.js draws the bar chart
    assert origins == {urlparse(live_server.url).netloc}
