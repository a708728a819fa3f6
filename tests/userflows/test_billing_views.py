import pytest
from django.urls import reverse

from tests.userflows.factories import InvoiceFactory, PaymentMethodFactory, SubscriptionFactory
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

    assert "Starter" in html and "Active" in html
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
    assert "Select a valid choice" in response.content.decode()
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
    assert "Keep my subscription" in page and "Your subscription ends on" in page


def test_resuming_and_changing_plan_from_the_page(customer, subscribed):
    Subscription.objects.filter(pk=subscribed.pk).update(cancel_at_period_end=True)

    customer.post(reverse("userflows:billing_resume"))
    customer.post(reverse("userflows:billing_plan"), {"plan": "growth"})

    subscribed.refresh_from_db()
    assert (subscribed.cancel_at_period_end, subscribed.plan.code) == (False, "growth")


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
