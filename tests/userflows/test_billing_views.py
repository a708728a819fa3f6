import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from opsplatform.models import Account
from tests.userflows.factories import (
    InvoiceFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
    plan,
)
from userflows.models import Invoice, PaymentMethod, Subscription

PAGE = "/account/billing/"


@pytest.fixture
def customer(client, account):
    client.force_login(account.user)
    return client


@pytest.fixture
def subscribed(account):
    PaymentMethodFactory(account=account)
    return SubscriptionFactory(account=account)


def test_the_billing_page_shows_everything(customer, account, subscribed):
    InvoiceFactory(account=account, number="INV-0000001-0001")

    html = customer.get(PAGE).content.decode()

    assert "Starter" in html and "Renews on" in html and "Current plan" in html
    assert "$19.00" in html  # next invoice
    assert "Visa ending 4242" in html
    assert "INV-0000001-0001" in html
    assert "Cancel subscription" in html
    assert 'value="pm_card_chargeDeclined"' in html  # the local ledger's test cards


def test_updating_the_card_from_the_page(customer, account, subscribed):
    response = customer.post(
        reverse("userflows:billing_payment_method"), {"payment_method_id": "pm_card_mastercard"}
    )

    assert response.status_code == 302
    assert PaymentMethod.objects.get(account=account).last4 == "4444"


def test_an_unknown_card_shows_an_error(customer, account, subscribed):
    response = customer.post(
        reverse("userflows:billing_payment_method"), {"payment_method_id": "pm_bogus"}
    )

    assert response.status_code == 422
    assert "Choose one of the cards listed." in response.content.decode()
    assert PaymentMethod.objects.get(account=account).last4 == "4242"


def test_cancelling_needs_a_reason_and_the_confirmation(customer, subscribed):
    unconfirmed = customer.post(
        reverse("userflows:billing_cancel"), {"reason": "too_expensive", "when": "period_end"}
    )
    subscribed.refresh_from_db()
    assert unconfirmed.status_code == 422 and not subscribed.cancel_at_period_end

    confirmed = customer.post(
        reverse("userflows:billing_cancel"),
        {
            "reason": "too_expensive",
            "when": "period_end",
            "confirm": "on",
            "comment": "Budget cuts",
        },
    )

    subscribed.refresh_from_db()
    assert confirmed.status_code == 302
    assert (subscribed.cancel_at_period_end, subscribed.cancellation_comment) == (
        True,
        "Budget cuts",
    )
    page = customer.get(PAGE).content.decode()
    assert "Resume my subscription" in page and "Your plan ends on" in page


def test_resuming_and_changing_plan_from_the_page(customer, subscribed):
    Subscription.objects.filter(pk=subscribed.pk).update(cancel_at_period_end=True)

    customer.post(reverse("userflows:billing_resume"))
    customer.post(reverse("userflows:billing_plan"), {"plan": "growth", "confirm_cents": 99999})

    subscribed.refresh_from_db()
    assert (subscribed.cancel_at_period_end, subscribed.plan.code) == (False, "growth")


START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(days=30)


@pytest.fixture
def ten_days_in(account, monkeypatch):
    """`account` on Growth with a working card, frozen 10 of 30 days into its period."""
    monkeypatch.setattr(timezone, "now", lambda: START + dt.timedelta(days=10))
    Account.objects.filter(pk=account.pk).update(plan="growth")
    PaymentMethodFactory(account=account)
    return SubscriptionFactory(
        account=account, plan=plan("growth"), current_period_start=START, current_period_end=END
    )


def test_an_upgrade_shows_the_amount_and_charges_only_once_confirmed(customer, ten_days_in):
    shown = customer.post(reverse("userflows:billing_plan"), {"plan": "enterprise"})

    html = shown.content.decode()
    assert shown.status_code == 200
    assert "$100.00 will be charged now" in html
    assert "Growth for the rest of the period" not in html
    assert "Enterprise for the rest of the period" in html and "$132.67" in html
    assert "Less the unused time on Growth" in html and "\N{MINUS SIGN}$32.67" in html
    assert "Confirm and pay $100.00" in html
    assert 'name="confirm_cents" value="10000"' in html
    assert not Invoice.objects.exists()
    assert Subscription.objects.get(pk=ten_days_in.pk).plan.code == "growth"

    done = customer.post(
        reverse("userflows:billing_plan"), {"plan": "enterprise", "confirm_cents": "10000"}
    )

    assert done.status_code == 302
    assert Invoice.objects.get().amount_paid_cents == 10000
    assert Subscription.objects.get(pk=ten_days_in.pk).plan.code == "enterprise"


def test_an_upgrade_costing_more_than_confirmed_is_shown_again(customer, ten_days_in):
    again = customer.post(
        reverse("userflows:billing_plan"), {"plan": "enterprise", "confirm_cents": "9999"}
    )

    assert again.status_code == 200 and "Confirm and pay $100.00" in again.content.decode()
    assert not Invoice.objects.exists()


def test_a_declined_upgrade_shows_why_and_changes_nothing(customer, account, ten_days_in):
    PaymentMethod.objects.filter(account=account).update(
        provider_reference="pm_card_chargeDeclined", last4="0002"
    )

    response = customer.post(
        reverse("userflows:billing_plan"), {"plan": "enterprise", "confirm_cents": "10000"}
    )

    assert response.status_code == 402
    assert "The card was declined. Nothing was changed." in response.content.decode()
    assert not Invoice.objects.exists()
    assert Subscription.objects.get(pk=ten_days_in.pk).plan.code == "growth"


def test_a_downgrade_says_when_it_takes_effect(customer, ten_days_in):
    shown = customer.post(reverse("userflows:billing_plan"), {"plan": "starter"})
    assert "then your plan becomes Starter" in shown.content.decode()

    done = customer.post(
        reverse("userflows:billing_plan"), {"plan": "starter", "confirm_cents": "0"}, follow=True
    )

    html = done.content.decode()
    assert "Your plan changes to Starter on March 31, 2026." in html
    assert Subscription.objects.get(pk=ten_days_in.pk).scheduled_plan.code == "starter"


def test_a_conflict_is_a_message_not_an_error_page(customer, subscribed):
    response = customer.post(reverse("userflows:billing_resume"), follow=True)

    assert "There is no pending cancellation to undo." in response.content.decode()


def test_the_invoice_page_is_printable_and_tenant_walled(customer, account, other_account):
    mine = InvoiceFactory(account=account, status=Invoice.Status.PAID)
    theirs = InvoiceFactory(account=other_account)

    own = customer.get(reverse("userflows:invoice", args=[mine.pk]))
    other = customer.get(reverse("userflows:invoice", args=[theirs.pk]))

    html = own.content.decode()
    assert own.status_code == 200
    assert mine.number in html and account.name in html and "$19.00" in html
    assert "data-print" in html and "userflows/print.js" in html
    assert "userflows/userflows.css" in html
    assert other.status_code == 404
