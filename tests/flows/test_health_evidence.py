"""Account health feeds feature scoring: a feature that addresses the factor costing at-risk
accounts the most points counts their monthly revenue as revenue at risk (issues 10 and 15)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from deployments.health.models import AccountHealth, HealthStatus
from scoring import services
from tests.factories import AccountFactory
from tests.userflows.factories import SubscriptionFactory, plan

pytestmark = pytest.mark.django_db


def _health(account, status, top_factor):
    now = timezone.now() - dt.timedelta(hours=1)
    return AccountHealth.objects.create(
        account=account,
        persona=account.persona,
        checked_at=now,
        score=Decimal("55.00"),
        status=status,
        status_changed_at=now,
        top_factor=top_factor,
        top_factors=[top_factor],
        top_reason="hand-made",
    )


def test_scoring_reads_revenue_at_risk_from_real_account_health():
    paying, free, healthy, other_factor = (AccountFactory() for _ in range(4))
    SubscriptionFactory(account=paying, plan=plan("growth"))  # active, $49.00 a month
    SubscriptionFactory(account=free, plan=plan("free"))
    _health(paying, HealthStatus.AT_RISK, "days_since_login")
    _health(free, HealthStatus.CRITICAL, "days_since_login")
    _health(healthy, HealthStatus.HEALTHY, "days_since_login")  # not at risk: left out
    _health(other_factor, HealthStatus.CRITICAL, "billing_status")  # another factor

    score = services.score_feature(
        "win-back",
        "Win-back emails",
        {"addresses_health_factors": ["days_since_login"], "effort_weeks": 2},
    )

    health = score.evidence["health"]
    assert health["accounts"] == 2  # paying (at risk) and free (critical)
    assert health["at_risk_revenue"] == "49.00"


def test_the_customer_360_and_the_ticket_panel_show_the_accounts_health(client):
    from django.urls import reverse

    from tests.factories import staff_in
    from tests.support.factories import make_ticket

    account = AccountFactory()
    health = _health(account, HealthStatus.CRITICAL, "days_since_login")
    AccountHealth.objects.filter(pk=health.pk).update(delta=Decimal("-12.50"))
    ticket = make_ticket(account=account)

    client.force_login(staff_in("operations"))
    page = client.get(reverse("admin:opsplatform_account_change", args=[account.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Critical" in html and "55.00 (▼ 12.50)" in html and "hand-made" in html
    assert reverse("admin:deployments_accounthealth_change", args=[health.pk]) in html

    client.force_login(staff_in("support_l3"))  # reads health: sees it beside the ticket
    html = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()
    assert "Critical" in html and "hand-made" in html

    client.force_login(staff_in("support_l1"))  # may not view health: no panel
    html = client.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()
    assert "hand-made" not in html
