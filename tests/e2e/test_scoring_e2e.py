"""Product staff build a roadmap from the features in admin and read the board by tier, then
open a feature's score chart and the model's calibration scatter, all from this origin."""

import datetime as dt
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from scoring import services
from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD, staff_in
from tests.scoring.factories import launched, outcome

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_staff_build_and_read_the_roadmap_board(page, live_server):
    services.create_feature(
        key="quick_win",
        name="Quick win",
        metadata={"estimated_revenue_impact": 5000, "effort_weeks": 2},
    )
    services.create_feature(
        key="foundation",
        name="Foundation",
        metadata={"estimated_revenue_impact": 100, "effort_weeks": 9},
    )
    services.create_feature(
        key="on_top",
        name="On top",
        metadata={"estimated_revenue_impact": 90000, "effort_weeks": 3},
        depends_on=["foundation"],
    )
    services.create_feature(
        key="moonshot",
        name="Moonshot",
        metadata={"estimated_revenue_impact": 1000, "effort_weeks": 30},
    )
    for n in range(3):
        launched(f"done{n}", launched_on=timezone.localdate() - dt.timedelta(days=9))
        outcome(f"done{n}", adoption=f"0.{n + 1}")
    services.refit_scoring_model()
    staff_in("operations", username="pia", email="pia@opsplatform.local")
    origins = set()
    page.on("request", lambda request: origins.add(urlparse(request.url).netloc))

    sign_in(page, "pia", PASSWORD)
    page.wait_for_load_state()
    page.goto("/admin/scoring/feature/")
    page.get_by_role("link", name="Build roadmap").click()
    page.get_by_role("button", name="Build").click()
    page.wait_for_url("**/admin/scoring/feature/board/")

    now = page.locator("#tier-now")
    later = page.locator("#tier-later")
    assert now.locator('[data-feature="quick_win"]').is_visible()
    assert now.locator('[data-feature="foundation"]').is_visible()
    # "On top" scores best per week but waits for its foundation: next, after it.
    on_top = page.locator('#tier-next [data-feature="on_top"]')
    assert on_top.is_visible()
    assert "after foundation" in on_top.inner_text()
    assert later.locator('[data-feature="moonshot"]').is_visible()

    page.goto("/admin/scoring/feature/")
    page.get_by_role("link", name="quick_win").click()
    page.wait_for_url("**/change/")
    chart = page.locator("#scoring-dimensions svg.scoring-bars")
    chart.wait_for(state="visible")
    assert chart.locator("rect").count() == 5
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100

    page.goto("/admin/scoring/scoringmodel/")
    page.get_by_role("link", name="1", exact=True).first.click()
    page.wait_for_url("**/change/")
    page.locator("#scoring-scatter svg").wait_for(state="visible")
    assert page.locator("#scoring-scatter svg circle.scoring-point").count() == 3
    assert origins == {urlparse(live_server.url).netloc}
