"""Plan changes between paid plans: upgrades charge the prorated difference at once (and are
refused, changing nothing, when the charge fails); downgrades wait for the period's end."""

import datetime as dt

import pytest
from django.utils import timezone

from opsplatform.errors import Conflict
from opsplatform.models import Account
from tests.factories import AccountFactory
from tests.userflows.factories import PaymentMethodFactory, SubscriptionFactory, plan
from userflows.billing import PaymentDeclined
from userflows.models import Invoice, Subscription
from userflows.services import billing

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(days=30)  # 2,592,000 seconds
NOW = START + dt.timedelta(days=10)  # 20 of 30 days left: two thirds


@pytest.fixture
def frozen(db, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


def on_plan(code: str, *, card: str = "pm_card_visa", last4: str = "4242", **kwargs):
    account = AccountFactory(plan=code)
    PaymentMethodFactory(account=account, provider_reference=card, last4=last4)
    sub = SubscriptionFactory(
        account=account,
        plan=plan(code),
        current_period_start=START,
        current_period_end=END,
        **kwargs,
    )
    return account, sub


def state(account, sub):
    """Everything a refused change must leave alone."""
    sub = Subscription.objects.get(pk=sub.pk)
    return (
        Account.objects.get(pk=account.pk).plan,
        sub.plan.code,
        sub.scheduled_plan_id,
        sub.status,
        sub.current_period_start,
        sub.current_period_end,
        sub.history.count(),
        Invoice.objects.filter(account=account).count(),
    )


# --- proration arithmetic ---------------------------------------------------------------------


def test_proration_credits_the_old_price_and_charges_the_new_for_the_time_left():
    credit, charge = billing.prorate(old_cents=4900, new_cents=19900, start=START, end=END, now=NOW)

    # 4900 x 2/3 = 3266.67 -> 3267; 19900 x 2/3 = 13266.67 -> 13267
    assert (credit, charge) == (3267, 13267)


def test_proration_rounds_each_line_to_the_cent_halves_up():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(seconds=4)
    now = start + dt.timedelta(seconds=3)  # 1 of 4 seconds left

    assert billing.prorate(old_cents=2, new_cents=6, start=start, end=end, now=now) == (1, 2)


def test_proration_counts_whole_seconds_and_nothing_after_the_period():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(seconds=10)

    half = start + dt.timedelta(seconds=5, microseconds=900_000)  # 4 whole seconds left
    assert billing.prorate(old_cents=0, new_cents=1000, start=start, end=end, now=half) == (0, 400)
    late = end + dt.timedelta(days=1)
    assert billing.prorate(old_cents=500, new_cents=1000, start=start, end=end, now=late) == (0, 0)


# --- upgrades ---------------------------------------------------------------------------------


def test_an_upgrade_charges_the_prorated_difference_at_once(frozen):
    account, _sub = on_plan("growth")

    result = billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    (invoice,) = Invoice.objects.filter(account=account)
    assert (invoice.status, invoice.amount_due_cents, invoice.amount_paid_cents) == (
        Invoice.Status.PAID,
        10000,
        10000,
    )
    assert (invoice.period_start, invoice.period_end, invoice.plan_code) == (
        NOW,
        END,
        "enterprise",
    )
    assert invoice.description == "Upgrade from Growth to Enterprise, prorated to Mar 31, 2026"
    assert (result.plan.code, result.status) == ("enterprise", Subscription.Status.ACTIVE)
    assert (result.current_period_start, result.current_period_end) == (START, END)
    assert Account.objects.get(pk=account.pk).plan == "enterprise"


def test_an_upgrade_with_a_declined_card_is_refused_and_changes_nothing(frozen):
    account, sub = on_plan("growth", card="pm_card_chargeDeclined", last4="0002")
    before = state(account, sub)

    with pytest.raises(PaymentDeclined) as caught:
        billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    assert caught.value.status_code == 402
    assert "$100.00" in caught.value.detail and "Nothing was changed" in caught.value.detail
    assert state(account, sub) == before
    assert before[:2] == ("growth", "growth") and before[-1] == 0


def test_the_api_answers_a_declined_upgrade_with_402_json(frozen, client):
    account, sub = on_plan("growth", card="pm_card_chargeDeclined", last4="0002")
    before = state(account, sub)
    client.force_login(account.user)

    response = client.post(
        "/api/v1/billing/plan", {"plan": "enterprise"}, content_type="application/json"
    )

    assert response.status_code == 402
    assert response.json()["code"] == "payment_declined"
    assert state(account, sub) == before


def test_a_trial_switches_plans_without_a_charge(frozen):
    account, _sub = on_plan("starter", status=Subscription.Status.TRIALING)

    result = billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    assert (result.plan.code, result.status) == ("enterprise", Subscription.Status.TRIALING)
    assert not Invoice.objects.exists()


def test_a_past_due_subscription_cannot_move_to_another_paid_plan(frozen):
    account, sub = on_plan("growth", status=Subscription.Status.PAST_DUE)
    before = state(account, sub)

    with pytest.raises(Conflict) as caught:
        billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    assert caught.value.code == "payment_overdue"
    assert state(account, sub) == before


# --- downgrades -------------------------------------------------------------------------------


def test_a_downgrade_waits_for_the_end_of_the_paid_period(frozen):
    account, _sub = on_plan("enterprise")

    result = billing.change_plan(account=account, plan_code="growth", actor=account.user)

    assert (result.plan.code, result.scheduled_plan.code) == ("enterprise", "growth")
    assert Account.objects.get(pk=account.pk).plan == "enterprise"
    assert not Invoice.objects.exists()
    info = billing.get_billing_info(account=account)
    assert (info.plan.code, info.next_invoice.amount_cents, info.next_invoice.date) == (
        "enterprise",
        4900,
        END,
    )
    with pytest.raises(Conflict) as caught:
        billing.change_plan(account=account, plan_code="growth", actor=account.user)
    assert caught.value.code == "already_scheduled"


def test_the_cycle_applies_a_scheduled_downgrade_and_bills_the_new_price(frozen):
    account, sub = on_plan("enterprise")
    billing.change_plan(account=account, plan_code="growth", actor=account.user)

    stats = billing.run_billing_cycle(now=END + dt.timedelta(minutes=5))

    sub.refresh_from_db()
    assert (sub.plan.code, sub.scheduled_plan, sub.current_period_start) == ("growth", None, END)
    (invoice,) = Invoice.objects.filter(account=account)
    assert (invoice.plan_code, invoice.amount_due_cents, invoice.status) == (
        "growth",
        4900,
        Invoice.Status.PAID,
    )
    account.refresh_from_db()
    assert account.plan == "growth"
    assert account.history.first().history_change_reason == "billing cycle"
    assert stats["invoiced"] == 1


def test_a_downgrade_to_free_ends_billing_at_the_period_end(frozen):
    account, sub = on_plan("growth")

    billing.change_plan(account=account, plan_code="free", actor=account.user)
    assert Account.objects.get(pk=account.pk).plan == "growth"
    billing.run_billing_cycle(now=END + dt.timedelta(minutes=5))

    sub.refresh_from_db()
    assert (sub.plan.code, sub.status) == ("free", Subscription.Status.ACTIVE)
    assert Account.objects.get(pk=account.pk).plan == "free"
    assert not Invoice.objects.exists()


def test_choosing_the_current_plan_again_undoes_a_scheduled_downgrade(frozen):
    account, _sub = on_plan("enterprise")
    billing.change_plan(account=account, plan_code="starter", actor=account.user)

    result = billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    assert (result.plan.code, result.scheduled_plan) == ("enterprise", None)
    assert not Invoice.objects.exists()
    with pytest.raises(Conflict) as caught:
        billing.change_plan(account=account, plan_code="enterprise", actor=account.user)
    assert caught.value.code == "same_plan"


# --- the preview ------------------------------------------------------------------------------


def test_the_preview_shows_what_an_upgrade_charges_before_confirming(frozen, client):
    account, sub = on_plan("growth")
    before = state(account, sub)
    client.force_login(account.user)

    response = client.get("/api/v1/billing/plan/preview", {"plan": "enterprise"})

    assert response.status_code == 200
    assert response.json() == {
        "kind": "upgrade",
        "plan": "enterprise",
        "amount_due_now_cents": 10000,
        "credit_cents": 3267,
        "charge_cents": 13267,
        "currency": "usd",
        "effective_at": "2026-03-11T12:00:00Z",
    }
    assert state(account, sub) == before


def test_the_preview_of_a_downgrade_charges_nothing_and_gives_the_date(frozen, client):
    account, _sub = on_plan("enterprise")
    client.force_login(account.user)

    data = client.get("/api/v1/billing/plan/preview", {"plan": "starter"}).json()

    assert (data["kind"], data["amount_due_now_cents"], data["effective_at"]) == (
        "downgrade",
        0,
        "2026-03-31T12:00:00Z",
    )


@pytest.mark.parametrize("query", [{"plan": "platinum"}, {}, {"plan": "growth\x00"}])
def test_a_bad_preview_query_is_422(frozen, client, query):
    account, _ = on_plan("growth")
    client.force_login(account.user)

    response = client.get("/api/v1/billing/plan/preview", query)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
