"""Account health admin: change lists at a fixed query count, the breakdown and chart on the
account page, "check now" acting only on POST confirm=yes, the at-risk list, the summary page,
scorecard edits in history, and who may see what."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from deployments.health import services
from deployments.health.models import AccountHealth, AccountHealthCheck, Scorecard
from tests.deployments.health_helpers import bulk_accounts, event
from tests.factories import AccountFactory, staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops_user():
    return staff_in("operations")


@pytest.fixture
def ops_client(ops_user):
    client = Client()
    client.force_login(ops_user)
    return client


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:deployments_accounthealth_changelist",
        "admin:deployments_atriskaccount_changelist",
        "admin:deployments_accounthealthcheck_changelist",
    ],
)
def test_changelists_cost_the_same_at_1_and_50_rows(
    ops_client, clock, url_name, django_assert_max_num_queries
):
    bulk_accounts(1, tag="a", now=clock.now)
    services.check_all_accounts()
    url = reverse(url_name)
    with django_assert_max_num_queries(30) as one:
        response = ops_client.get(url)
    assert response.status_code == 200
    bulk_accounts(49, tag="b", now=clock.now)
    services.check_all_accounts(now=clock.now + dt.timedelta(hours=1))
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = ops_client.get(url)
    assert response.status_code == 200
    expected = {
        "admin:deployments_accounthealth_changelist": 50,
        "admin:deployments_atriskaccount_changelist": AccountHealth.objects.filter(
            status="at_risk"
        ).count(),
        "admin:deployments_accounthealthcheck_changelist": 51,  # 1 + 50 checks
    }[url_name]
    assert expected > 1
    assert response.content.count(b'class="field-persona') == expected


def test_health_list_shows_status_score_delta_and_reason(ops_client, clock):
    account = AccountFactory(name="Quiet Hour")
    services.check_account_health(account=account)
    for i in range(12):
        event(account, "login", clock.now - dt.timedelta(hours=i + 1), f"l{i}")
    clock.advance(hours=2)
    services.check_account_health(account=account)
    page = ops_client.get(reverse("admin:deployments_accounthealth_changelist")).content.decode()
    assert "Quiet Hour" in page
    assert "Healthy" in page
    assert "86.67" in page
    assert "▲ +17.78" in page
    assert "At risk → Healthy" in page
    filtered = ops_client.get(
        reverse("admin:deployments_accounthealth_changelist"), {"change": "turned_critical"}
    ).content.decode()
    assert "Quiet Hour" not in filtered
    recovered = ops_client.get(
        reverse("admin:deployments_accounthealth_changelist"), {"change": "recovered"}
    ).content.decode()
    assert "Quiet Hour" in recovered


def test_account_page_shows_breakdown_chart_and_history(ops_client, clock):
    account = AccountFactory()
    services.check_account_health(account=account)
    clock.advance(days=1)
    services.check_account_health(account=account)
    health = AccountHealth.objects.get(account=account)
    page = ops_client.get(
        reverse("admin:deployments_accounthealth_change", args=[health.pk])
    ).content.decode()
    assert 'aria-label="Health factors"' in page
    assert "Logins in the window" in page
    assert "left out" in page  # days since login has no data
    assert 'data-type="line"' in page  # the score chart (Unfold's bundled Chart.js)
    assert 'aria-label="Check history"' in page
    assert page.count("68.89") >= 2
    assert "Only 0 logins in 30 days" in page


def test_check_now_asks_first_then_records_a_check(ops_client, ops_user, clock):
    account = AccountFactory()
    services.check_account_health(account=account)
    health = AccountHealth.objects.get(account=account)
    url = reverse("admin:deployments_accounthealth_check_now_detail", args=[health.pk])
    assert ops_client.get(url).status_code == 200
    assert AccountHealthCheck.objects.count() == 1
    response = ops_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    latest = AccountHealthCheck.objects.order_by("-id").first()
    assert AccountHealthCheck.objects.count() == 2
    assert latest.triggered_by == ops_user.username


def test_check_now_needs_the_permission(clock):
    account = AccountFactory()
    services.check_account_health(account=account)
    health = AccountHealth.objects.get(account=account)
    client = Client()
    client.force_login(staff_in("support_l2"))  # reads health, may not check
    url = reverse("admin:deployments_accounthealth_check_now_detail", args=[health.pk])
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    assert AccountHealthCheck.objects.count() == 1


def test_at_risk_list_shows_at_risk_accounts_with_reasons(ops_client, clock):
    at_risk = AccountFactory(name="Drifting Show")
    healthy = AccountFactory(name="Busy Show")
    for i in range(12):
        event(healthy, "login", clock.now - dt.timedelta(hours=i + 1), f"h{i}")
    services.check_all_accounts()
    page = ops_client.get(reverse("admin:deployments_atriskaccount_changelist")).content.decode()
    assert "Drifting Show" in page
    assert "Busy Show" not in page
    assert "Only 0 logins in 30 days — show the team what they are not using yet." in page
    assert AccountHealth.objects.get(account=at_risk).status == "at_risk"


def test_summary_page_counts_by_persona_with_the_trend(ops_client, clock):
    AccountFactory()
    services.check_all_accounts(now=clock.now - dt.timedelta(days=7))
    services.check_all_accounts()
    page = ops_client.get(reverse("admin:deployments_accounthealth_summary")).content.decode()
    assert "Accounts by status per persona" in page
    assert page.count('data-type="line"') == 2
    assert f"{(clock.now - dt.timedelta(days=7)):%Y-%m-%d}" in page
    assert f"{clock.now:%Y-%m-%d}" in page


def test_scorecard_edit_in_admin_is_in_history(ops_client, ops_user, clock):
    card = Scorecard.objects.get(persona__slug="brand")
    url = reverse("admin:deployments_scorecard_change", args=[card.pk])
    factors = list(card.factors.order_by("id"))
    data = {
        "healthy_min": "75.00",
        "at_risk_min": "50.00",
        "factors-TOTAL_FORMS": str(len(factors)),
        "factors-INITIAL_FORMS": str(len(factors)),
        "factors-MIN_NUM_FORMS": "0",
        "factors-MAX_NUM_FORMS": "1000",
    }
    for i, f in enumerate(factors):
        data[f"factors-{i}-id"] = str(f.id)
        data[f"factors-{i}-scorecard"] = str(card.pk)
        data[f"factors-{i}-name"] = f.name
        data[f"factors-{i}-weight"] = "6.00" if f.name == "logins" else str(f.weight)
        data[f"factors-{i}-thresholds"] = __import__("json").dumps(f.thresholds)
    response = ops_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    card.refresh_from_db()
    assert card.healthy_min == Decimal("75.00")
    assert card.history.order_by("-history_id").first().history_user == ops_user
    logins = card.factors.get(name="logins")
    assert logins.weight == Decimal("6.00")
    assert logins.history.order_by("-history_id").first().history_user == ops_user
    history_page = ops_client.get(reverse("admin:deployments_scorecard_history", args=[card.pk]))
    assert history_page.status_code == 200


def test_bad_thresholds_are_refused_in_admin(ops_client, clock):
    card = Scorecard.objects.get(persona__slug="brand")
    factor = card.factors.get(name="logins")
    url = reverse("admin:deployments_scorecard_change", args=[card.pk])
    data = {
        "healthy_min": "70.00",
        "at_risk_min": "45.00",
        "factors-TOTAL_FORMS": "1",
        "factors-INITIAL_FORMS": "1",
        "factors-MIN_NUM_FORMS": "0",
        "factors-MAX_NUM_FORMS": "1000",
        "factors-0-id": str(factor.id),
        "factors-0-scorecard": str(card.pk),
        "factors-0-name": "logins",
        "factors-0-weight": "2",
        "factors-0-thresholds": '[["10", 0], ["5", 100]]',
    }
    response = ops_client.post(url, data)
    assert response.status_code == 200
    assert "Threshold values must rise strictly." in response.content.decode()
    factor.refresh_from_db()
    assert factor.thresholds == [["0", 0], ["4", 60], ["12", 100]]


def test_support_l1_and_customers_cannot_see_health(clock, account):
    services.check_account_health(account=account)
    l1 = Client()
    l1.force_login(staff_in("support_l1"))
    assert l1.get(reverse("admin:deployments_accounthealth_changelist")).status_code == 403
    assert l1.get(reverse("admin:deployments_accounthealth_summary")).status_code == 403
    customer = Client()
    customer.force_login(account.user)
    response = customer.get(reverse("admin:deployments_accounthealth_changelist"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_account_page_costs_the_same_with_1_and_50_checks(
    ops_client, clock, django_assert_max_num_queries
):
    account = AccountFactory()
    services.check_account_health(account=account)
    url = reverse(
        "admin:deployments_accounthealth_change",
        args=[AccountHealth.objects.get(account=account).pk],
    )
    with django_assert_max_num_queries(40) as one:
        assert ops_client.get(url).status_code == 200
    for day in range(1, 50):
        services.check_account_health(account=account, now=clock.now + dt.timedelta(days=day))
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = ops_client.get(url)
    assert page.content.decode().count("<tr><td") >= 50  # every check in the history table


def test_check_now_on_a_selection(ops_client, clock):
    a, b = AccountFactory(), AccountFactory()
    services.check_all_accounts()
    ids = [str(h.pk) for h in AccountHealth.objects.filter(account__in=[a, b])]
    response = ops_client.post(
        reverse("admin:deployments_accounthealth_changelist"),
        {"action": "check_now", "_selected_action": ids},
    )
    assert response.status_code == 302
    assert AccountHealthCheck.objects.filter(account=a).count() == 2
    assert AccountHealthCheck.objects.filter(account=b).count() == 2
