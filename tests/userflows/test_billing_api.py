import pytest

from tests.conftest import ApiClient
from tests.factories import staff_in, token_for
from tests.userflows.factories import InvoiceFactory, PaymentMethodFactory, SubscriptionFactory
from userflows.models import PaymentMethod, Subscription


@pytest.fixture
def subscribed(account):
    PaymentMethodFactory(account=account)
    return SubscriptionFactory(account=account)


def test_billing_shows_plan_subscription_card_and_next_invoice(api, subscribed):
    data = api.get("billing").json()

    assert data["plan"] == {
        "code": "starter",
        "name": "Starter",
        "price_cents": 1900,
        "currency": "usd",
    }
    assert data["subscription"]["status"] == "active"
    assert data["payment_method"]["last4"] == "4242"
    assert data["next_invoice"]["amount_cents"] == 1900
    assert [p["code"] for p in data["plans"]] == ["free", "starter", "growth", "enterprise"]


def test_billing_without_a_subscription(api):
    data = api.get("billing").json()

    assert data["subscription"] is None and data["next_invoice"] is None


def test_payment_method_cancel_resume_and_plan_through_the_api(api, account, subscribed):
    assert (
        api.post("billing/payment-method", {"payment_method_id": "pm_card_mastercard"}).json()[
            "last4"
        ]
        == "4444"
    )
    cancelled = api.post("billing/cancel", {"reason": "too_expensive"})
    assert cancelled.json()["cancel_at_period_end"] is True
    assert api.post("billing/cancel", {"reason": "too_expensive"}).status_code == 409
    assert api.post("billing/resume").json()["cancel_at_period_end"] is False
    assert api.post("billing/resume").status_code == 409
    assert api.post("billing/plan", {"plan": "growth"}).status_code == 200
    assert api.post("billing/plan", {"plan": "growth"}).status_code == 409
    subscribed.refresh_from_db()
    assert subscribed.plan.code == "growth"


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("billing/payment-method", {"payment_method_id": ""}),
        ("billing/payment-method", {"payment_method_id": "pm_\x00"}),
        ("billing/payment-method", {"payment_method_id": "pm_unknown"}),
        ("billing/payment-method", {"card_number": "4242424242424242"}),
        ("billing/cancel", {"reason": ""}),
        ("billing/cancel", {"reason": "meh\x00"}),
        ("billing/cancel", {"reason": 7}),
        ("billing/cancel", {"reason": "other", "at_period_end": "sometimes"}),
        ("billing/cancel", {"reason": "other", "comment": "x" * 1001}),
        ("billing/plan", {"plan": "platinum"}),
        ("billing/plan", ["growth"]),
    ],
)
def test_bad_billing_input_is_422_and_changes_nothing(api, subscribed, path, payload):
    response = api.post(path, payload)

    assert response.status_code == 422
    subscribed.refresh_from_db()
    assert (subscribed.cancel_at_period_end, subscribed.plan.code) == (False, "starter")
    assert PaymentMethod.objects.get().last4 == "4242"


def test_staff_have_no_billing_of_their_own(staff_api):
    assert staff_api.get("billing").status_code == 403
    assert staff_api.post("billing/cancel", {"reason": "other"}).status_code == 403


def test_invoices_are_tenant_walled(api, other_api, account, other_account):
    mine = InvoiceFactory(account=account)
    theirs = InvoiceFactory(account=other_account)

    assert [i["id"] for i in api.get("billing/invoices").json()["items"]] == [mine.pk]
    assert api.get(f"billing/invoices/{mine.pk}").json()["number"] == mine.number
    assert api.get(f"billing/invoices/{theirs.pk}").status_code == 404
    assert api.get("billing/invoices", {"account_id": other_account.pk}).status_code == 404
    assert other_api.get(f"billing/invoices/{mine.pk}").status_code == 404


def test_operations_staff_read_every_invoice(account):
    invoice = InvoiceFactory(account=account)
    ops = ApiClient(token_for(staff_in("operations")))
    agent = ApiClient(token_for(staff_in("support_l1")))

    assert ops.get(f"billing/invoices/{invoice.pk}").status_code == 200
    assert ops.get("billing/invoices", {"account_id": account.pk}).json()["count"] == 1
    assert agent.get(f"billing/invoices/{invoice.pk}").status_code == 404


@pytest.mark.parametrize("count", [1, 50])
def test_invoice_list_costs_the_same_at_any_size(
    api, account, count, django_assert_max_num_queries
):
    InvoiceFactory.create_batch(count, account=account)

    with django_assert_max_num_queries(8):
        response = api.get("billing/invoices", {"limit": 50})

    assert response.json()["count"] == count


def test_subscriptions_record_who_changed_them(api, account, subscribed):
    api.post("billing/cancel", {"reason": "other", "comment": "bye"})

    latest = Subscription.history.filter(id=subscribed.pk).first()
    assert latest.history_user == account.user
    assert (latest.cancellation_reason, latest.cancellation_comment) == ("other", "bye")
