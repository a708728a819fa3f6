"""Operations staff open a study in admin and see its definition, figures and chart, then the
longitudinal view, all served from this origin (no CDN)."""

from urllib.parse import urlparse

import pytest

from studies import services
from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD, staff_in
from tests.studies.factories import D, account_of_persona, campaign

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_staff_open_a_study_and_its_charts(page, live_server):
    solo = account_of_persona("solo_podcaster")
    campaign(solo, D(2026, 1, 1), D(2026, 3, 31), "900.00")
    network = account_of_persona("podcast_network")
    campaign(network, D(2026, 2, 1), D(2026, 3, 31), "590.00")
    runs = [services.conduct_revenue_growth_study(D(2026, m, 1), D(2026, m, 28)) for m in (1, 2, 3)]
    staff_in("operations", username="olga", email="olga@opsplatform.local")
    origins = set()
    page.on("request", lambda request: origins.add(urlparse(request.url).netloc))

    sign_in(page, "olga", PASSWORD)
    page.wait_for_load_state()
    page.goto(f"/admin/studies/study/{runs[2].pk}/change/")

    assert page.get_by_text("Definition (version 2026.11-2)").is_visible()
    assert page.locator("table.study-headline").get_by_text("previous_revenue").is_visible()
    assert page.locator("table.study-personas").get_by_text("podcast_network").is_visible()
    chart = page.locator("#study-chart svg.study-chart")
    assert chart.is_visible()
    assert chart.locator("polyline").count() >= 2  # all accounts and a persona, three runs
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100

    page.goto("/admin/studies/study/longitudinal/?study_type=revenue_growth")
    assert page.locator("#chart-growth_rate svg").is_visible()
    assert page.locator("figure svg.study-chart").count() == 7

    with page.expect_download() as download:
        page.goto(f"/admin/studies/study/{runs[0].pk}/change/")
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"study-{runs[0].pk}.csv"
    assert origins == {urlparse(live_server.url).netloc}
