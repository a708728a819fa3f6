"""A support lead opens an at-risk account from the customer-success list: the factor
breakdown says why, and the score history is drawn as a chart (Unfold's bundled Chart.js)."""

import datetime as dt

import pytest
from django.utils import timezone

from deployments.health import services
from tests.deployments.health_helpers import event
from tests.factories import PASSWORD, AccountFactory, staff_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_agent_opens_an_at_risk_accounts_breakdown_and_chart(page, live_server):
    account = AccountFactory(name="Drifting Hour")
    now = timezone.now()
    for days_ago in (28, 21, 14, 7):
        services.check_account_health(account=account, now=now - dt.timedelta(days=days_ago))
    event(account, "login", now - dt.timedelta(days=3), "recent")
    services.check_account_health(account=account, now=now)
    agent = staff_in("support_l3", username="lena")
    requests = []
    page.on("request", lambda r: requests.append(r.url))

    page.goto("/admin/login/")
    page.fill("#id_username", agent.username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_url("**/admin/")

    page.goto("/admin/deployments/atriskaccount/")
    page.get_by_role("link", name="Drifting Hour").click()
    table = page.get_by_role("table", name="Health factors")
    table.wait_for(state="visible")
    assert table.get_by_role("row", name="Days since last login").is_visible()
    assert page.get_by_text("Only 1 login in 30 days").first.is_visible()

    page.locator("a", has_text="Score history").first.click()  # an Unfold fieldset tab
    chart = page.locator(".health-chart canvas")
    chart.wait_for(state="visible")
    box = chart.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    drawn = page.evaluate(
        "() => { const c = document.querySelector('.health-chart canvas');"
        " return window.Chart ? !!window.Chart.getChart(c) : false; }"
    )
    assert drawn, "Chart.js did not draw the score history"
    history = page.get_by_role("table", name="Check history")
    assert history.get_by_role("row").count() == 6  # header + 5 checks
    assert all(url.startswith(live_server.url) for url in requests), "no other origin"
