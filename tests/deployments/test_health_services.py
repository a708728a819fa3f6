"""Account health services: each factor's points on a hand-built account, missing data left
out of the weighting, the delta, recommendations from the costliest factors, one ticket per
critical episode, and a fixed number of queries per batch."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.health import selectors, services
from deployments.health.factors import described
from deployments.health.models import AccountHealth, AccountHealthCheck, Scorecard
from opsplatform.errors import InvalidInput, NotFound
from support.models import Ticket
from tests.deployments.health_helpers import bulk_accounts, event, every_factor_account
from tests.factories import AccountFactory, staff_in

pytestmark = pytest.mark.django_db


def factors_of(check) -> dict:
    return {f["name"]: f for f in described(check.factors)}


def test_every_factor_has_its_known_value_and_points(clock):
    account = every_factor_account(clock.now)
    check = services.check_account_health(user_id=account.id, days=30)
    f = factors_of(check)
    # (raw value, points), each worked out by hand from the default thresholds.
    expected = {
        "days_since_login": (14, "75.00"),  # 100 + (50 - 100) * (14 - 7) / 14
        "logins": (2, "30.00"),  # 0 + 60 * 2 / 4
        "active_campaigns": (1, "70.00"),
        "metrics_staleness": (5, "45.00"),  # 70 + (20 - 70) * 2 / 4
        "roas_trend": ("-0.2500", "33.33"),  # 1.5 / 2.0 - 1; 0 + 40 * 0.25 / 0.3
        "open_tickets": (3, "63.33"),  # 80 + (30 - 80) * 1 / 3
        "escalated_tickets": (1, "50.00"),
        "sla_breaches": (2, "30.00"),  # 60 + (0 - 60) * 1 / 2
        "billing_status": ("past_due", "0.00"),
        "deletion_requested": ("yes", "0.00"),
        "onboarding_completed": ("yes", "100.00"),
        "usage_trend": ("-0.5000", "13.33"),  # 6 / 12 - 1; 0 + 40 * 0.1 / 0.3
    }
    assert {name: (row["value"], row["points"]) for name, row in f.items()} == expected
    assert all(row["has_data"] for row in f.values())
    # Σ points * weight = 871.65 over Σ weight = 24.5
    assert check.score == Decimal("35.58")
    assert check.status == "critical"
    assert f["deletion_requested"]["weight"] == "4.00"
    assert f["deletion_requested"]["cost"] == "16.33"  # 100 * 4 / 24.5
    assert f["days_since_login"]["contribution"] == "9.18"  # 75 * 3 / 24.5


def test_a_factor_without_data_is_left_out_of_the_weighting(clock):
    account = AccountFactory()  # never logged in, no campaign, no events, no subscription
    check = services.check_account_health(account=account, days=30)
    f = factors_of(check)
    missing = {
        "days_since_login",
        "metrics_staleness",
        "roas_trend",
        "usage_trend",
        "billing_status",
    }
    assert {n for n, row in f.items() if not row["has_data"]} == missing
    for name in missing:
        assert f[name]["points"] is None
        assert f[name]["contribution"] is None
        assert f[name]["display"] == "no data"
    # logins 0 -> 0 (*2), campaigns 0 -> 20 (*2), tickets 0 -> 100 (*1, *2, *1.5), deletion
    # no -> 100 (*4), onboarding no -> 40 (*1): 930 / 13.5. Counting the missing as zero
    # would give 930 / 24.5 = 37.96.
    assert check.score == Decimal("68.89")
    assert check.status == "at_risk"


def test_an_account_with_no_weighted_data_has_no_score(clock):
    account = AccountFactory()
    card = Scorecard.objects.get(persona=account.persona)
    card.factors.exclude(name="days_since_login").update(weight=0)
    check = services.check_account_health(account=account)
    assert check.score is None
    assert check.status == "no_data"
    assert check.recommendations == []


def test_the_delta_is_against_the_previous_check(clock):
    account = AccountFactory()
    first = services.check_account_health(account=account)
    assert first.delta is None and first.previous_status == ""
    for i in range(12):
        event(account, "login", clock.now - dt.timedelta(days=1, hours=i), f"l{i}")
    clock.advance(hours=1)
    second = services.check_account_health(account=account)
    # logins 12 -> 100 points (*2): (930 + 200) / 13.5 = 83.70; days since login 1 -> 100 (*3)
    # now has data: (1130 + 300) / 16.5 = 86.67
    assert second.score == Decimal("86.67")
    assert second.delta == Decimal("86.67") - Decimal("68.89")
    assert second.previous_status == "at_risk"
    assert second.status == "healthy"
    health = AccountHealth.objects.get(account=account)
    assert (health.status, health.previous_status, health.delta) == (
        "healthy",
        "at_risk",
        Decimal("17.78"),
    )


def test_recommendations_follow_the_costliest_factors(clock):
    account = every_factor_account(clock.now)
    check = services.check_account_health(user_id=account.id)
    assert [(r["factor"], r["cost"]) for r in check.recommendations] == [
        ("deletion_requested", "16.33"),  # 100 * 4 / 24.5
        ("billing_status", "12.24"),  # 100 * 3 / 24.5
        ("usage_trend", "7.08"),  # 86.67 * 2 / 24.5
    ]
    assert check.recommendations[2]["text"] == (
        "Product usage down 50.0% against the previous 30 days — find out what changed."
    )
    assert check.top_reason.startswith("Account deletion requested")
    health = AccountHealth.objects.get(account=account)
    assert health.top_factor == "deletion_requested"
    assert health.top_factors == ["deletion_requested", "billing_status", "usage_trend"]


def test_a_long_absence_is_named_with_its_days(clock):
    account = AccountFactory()
    event(account, "login", clock.now - dt.timedelta(days=41, hours=2), "old")
    check = services.check_account_health(account=account)
    texts = [r["text"] for r in check.recommendations]
    assert "No login for 41 days — reach out and book a check-in call." in texts


def _set_bands(account, healthy, at_risk):
    Scorecard.objects.filter(persona=account.persona).update(
        healthy_min=Decimal(healthy), at_risk_min=Decimal(at_risk)
    )


def test_the_critical_ticket_opens_once_per_episode(clock, django_capture_on_commit_callbacks):
    account = AccountFactory()  # scores 68.89: critical once the bands are raised
    _set_bands(account, 90, 80)

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return services.check_all_accounts(batch_size=10)

    def health_tickets():
        return Ticket.objects.filter(account=account, tags="health").order_by("id")

    first = run()
    assert first["counts"]["critical"] == 1
    assert first["changed"] == [{"account_id": account.id, "from": None, "to": "critical"}]
    run()
    run()
    tickets = list(health_tickets())
    assert len(tickets) == 1
    ticket = tickets[0]
    assert (ticket.channel, ticket.priority, ticket.escalation_level) == ("api", "high", 2)
    assert ticket.messages.filter(internal=True, body__contains="Health score 68.89").exists()
    health = AccountHealth.objects.get(account=account)
    assert health.critical_ticket_id == ticket.id

    _set_bands(account, 90, 60)  # at risk: the episode ends
    second = run()
    assert second["changed"] == [{"account_id": account.id, "from": "critical", "to": "at_risk"}]
    assert AccountHealth.objects.get(account=account).critical_ticket_id is None
    assert health_tickets().count() == 1

    _set_bands(account, 90, 80)  # critical again: a new episode, a new ticket
    run()
    run()
    assert health_tickets().count() == 2


def test_health_tickets_do_not_count_against_the_account(clock, django_capture_on_commit_callbacks):
    account = AccountFactory()
    _set_bands(account, 90, 80)
    with django_capture_on_commit_callbacks(execute=True):
        services.check_account_health(account=account)
    check = services.check_account_health(account=account)
    assert factors_of(check)["open_tickets"]["value"] == 0


def test_check_all_returns_counts_changes_and_time(clock):
    healthy = AccountFactory()
    for i in range(12):
        event(healthy, "login", clock.now - dt.timedelta(days=1, hours=i), f"h{i}")
    AccountFactory()
    result = services.check_all_accounts(batch_size=1)
    assert result["checked"] == 2
    assert result["batches"] == 2
    assert result["counts"] == {"healthy": 1, "at_risk": 1, "critical": 0, "no_data": 0}
    assert result["changed_total"] == 2
    assert result["seconds"] >= 0
    assert AccountHealthCheck.objects.count() == 2
    again = services.check_all_accounts(batch_size=1)
    assert again["changed"] == [] and again["changed_total"] == 0
    assert AccountHealthCheck.objects.count() == 4
    assert AccountHealth.objects.count() == 2


def _queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as ctx:
        services.check_all_accounts(**kwargs)
    return len(ctx.captured_queries)


def test_check_all_costs_a_fixed_number_of_queries_per_batch(clock):
    bulk_accounts(10, tag="a", now=clock.now)
    ten = _queries(batch_size=10)  # one batch
    bulk_accounts(10, tag="b", now=clock.now)
    twenty = _queries(batch_size=10)  # two batches
    per_batch = twenty - ten
    assert per_batch <= 16  # (on PostgreSQL two COPY statements come on top, unseen here)
    bulk_accounts(980, tag="c", now=clock.now)
    assert _queries(batch_size=10) == ten + 99 * per_batch  # 1,000 accounts, 100 batches
    if connection.vendor == "postgresql":
        # One batch of 1,000 costs what one batch of 10 costs (SQLite splits bulk inserts
        # at 999 parameters, PostgreSQL does not).
        assert _queries(batch_size=1000) == ten


def test_check_all_costs_the_same_for_10_and_1000_accounts(clock):
    bulk_accounts(10, tag="a", now=clock.now)
    ten = _queries(batch_size=1000)
    bulk_accounts(990, tag="b", now=clock.now)
    if connection.vendor != "postgresql":
        pytest.skip("SQLite splits a 1,000-row bulk insert into several statements")
    assert _queries(batch_size=1000) == ten


@pytest.mark.parametrize("days", [0, -1, 366, "30", True, 1.5])
def test_days_out_of_range_are_refused(clock, days):
    account = AccountFactory()
    with pytest.raises(InvalidInput) as exc:
        services.check_account_health(account=account, days=days)
    assert exc.value.field == "days"
    assert not AccountHealthCheck.objects.exists()


def test_an_unknown_account_is_not_found(clock):
    with pytest.raises(NotFound):
        services.check_account_health(user_id=999_999)
    assert not AccountHealthCheck.objects.exists()


def test_a_scorecard_edit_is_in_history_with_its_author(clock):
    ops = staff_in("operations")
    account = AccountFactory()
    factor = Scorecard.objects.get(persona=account.persona).factors.get(name="logins")
    services.update_scorecard_factor(
        factor_id=factor.id, weight=Decimal("5"), actor=ops, reason="logins matter more"
    )
    latest = factor.history.order_by("-history_id").first()
    assert latest.weight == Decimal("5.00")
    assert latest.history_user == ops
    assert latest.history_change_reason == "logins matter more"
    assert factor.history.count() == 2  # created, then changed
    with pytest.raises(InvalidInput):
        services.update_scorecard_factor(factor_id=factor.id, thresholds=[["5", 0], ["1", 100]])
    factor.refresh_from_db()
    assert factor.thresholds == [["0", 0], ["4", 60], ["12", 100]]
    assert factor.history.count() == 2


def test_latest_health_and_revenue_at_risk(clock):
    from tests.userflows.factories import SubscriptionFactory

    a = AccountFactory()
    b = AccountFactory()
    SubscriptionFactory(account=a)  # starter plan: its price is the MRR
    SubscriptionFactory(account=b, status="canceled")  # no MRR
    for i in range(2):
        event(b, "login", clock.now - dt.timedelta(days=1, hours=i), f"b{i}")
    services.check_all_accounts()
    latest = selectors.latest_health([a.id, b.id, 999])
    assert set(latest) == {a.id, b.id}
    assert latest[a.id] == AccountHealthCheck.objects.get(account=a)
    health = {h.account_id: h for h in AccountHealth.objects.all()}
    rows = list(selectors.weakest_in([health[a.id].top_factor], statuses=["at_risk", "healthy"]))
    from userflows.models import Plan

    price = Decimal(Plan.objects.get(code="starter").price_cents) / 100
    assert {r["account_id"]: r["mrr"] for r in rows if r["account_id"] == a.id} == {a.id: price}
    risk = selectors.revenue_at_risk([health[a.id].top_factor], statuses=["at_risk", "healthy"])
    assert risk["mrr"] >= price
