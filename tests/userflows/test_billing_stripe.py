"""The Stripe provider through the real SDK, with only its HTTP edge replaced, and the webhook
with payloads signed the way Stripe signs them."""

import datetime as dt
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl, urlparse

import pytest
import stripe
from django.core import mail
from django.utils import timezone

from opsplatform.models import Account
from tests.userflows.factories import PaymentMethodFactory, SubscriptionFactory, plan
from userflows.models import Invoice, PaymentMethod, ProviderEvent, Subscription

SECRET = "whsec_test_secret"
WEBHOOK = "/api/v1/billing/stripe-webhook"


class FakeStripeHTTP(stripe.HTTPClient):
    """Answers the SDK's HTTP requests from a routing table and records them."""

    name = "fake"

    def __init__(self):
        super().__init__()
        self.routes: dict[tuple[str, str], tuple[int, dict]] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self.down = False

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = urlparse(url).path
        self.calls.append((method.upper(), path, dict(parse_qsl(post_data or ""))))
        if self.down:
            raise stripe.APIConnectionError("Network is unreachable")
        status, body = self.routes.get(
            (method.upper(), path),
            (404, {"error": {"type": "invalid_request_error", "message": f"No route {path}"}}),
        )
        return json.dumps(body), status, {"request-id": "req_test"}

    def request_stream(self, *args, **kwargs):
        raise NotImplementedError

    def close(self):
        return None

    def paths(self):
        return [(m, p) for m, p, _ in self.calls]


@pytest.fixture
def fake_stripe(db, settings, monkeypatch):
    settings.BILLING_PROVIDER = "stripe"
    settings.STRIPE_API_KEY = "sk_test_123"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    fake = FakeStripeHTTP()
    monkeypatch.setattr(stripe, "default_http_client", fake)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    fake.routes.update(
        {
            ("POST", "/v1/customers"): (200, {"id": "cus_123", "object": "customer"}),
            ("POST", "/v1/payment_methods/pm_live_1/attach"): (
                200,
                {
                    "id": "pm_live_1",
                    "object": "payment_method",
                    "customer": "cus_123",
                    "card": {"brand": "visa", "last4": "1881", "exp_month": 8, "exp_year": 2031},
                },
            ),
            ("POST", "/v1/customers/cus_123"): (200, {"id": "cus_123", "object": "customer"}),
            ("POST", "/v1/subscriptions/sub_123"): (
                200,
                {"id": "sub_123", "object": "subscription"},
            ),
            ("DELETE", "/v1/subscriptions/sub_123"): (
                200,
                {"id": "sub_123", "status": "canceled", "object": "subscription"},
            ),
            ("DELETE", "/v1/customers/cus_123"): (
                200,
                {"id": "cus_123", "deleted": True, "object": "customer"},
            ),
        }
    )
    return fake


@pytest.fixture
def stripe_subscription(account):
    return SubscriptionFactory(
        account=account,
        provider="stripe",
        provider_customer_id="cus_123",
        provider_subscription_id="sub_123",
    )


def test_a_payment_method_is_attached_at_stripe(api, account, fake_stripe):
    response = api.post("billing/payment-method", {"payment_method_id": "pm_live_1"})

    assert response.status_code == 200, response.content
    assert response.json() == {"brand": "visa", "last4": "1881", "exp_month": 8, "exp_year": 2031}
    assert fake_stripe.paths() == [
        ("POST", "/v1/customers"),
        ("POST", "/v1/payment_methods/pm_live_1/attach"),
        ("POST", "/v1/customers/cus_123"),
    ]
    assert fake_stripe.calls[0][2]["metadata[account_id]"] == str(account.pk)
    assert fake_stripe.calls[1][2] == {"customer": "cus_123"}
    assert fake_stripe.calls[2][2] == {"invoice_settings[default_payment_method]": "pm_live_1"}
    subscription = Subscription.objects.get(account=account)
    assert (subscription.provider, subscription.provider_customer_id) == ("stripe", "cus_123")
    assert PaymentMethod.objects.get(account=account).provider_reference == "pm_live_1"


def test_a_declined_card_is_a_readable_422_and_nothing_is_stored(
    api, account, fake_stripe, stripe_subscription
):
    fake_stripe.routes[("POST", "/v1/payment_methods/pm_live_1/attach")] = (
        402,
        {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "message": "Your card was declined.",
            }
        },
    )

    response = api.post("billing/payment-method", {"payment_method_id": "pm_live_1"})

    assert response.status_code == 422
    assert response.json()["detail"] == "Your card was declined."
    assert not PaymentMethod.objects.exists()


def test_stripe_being_down_is_503_and_nothing_changes(
    api, account, fake_stripe, stripe_subscription
):
    fake_stripe.down = True

    response = api.post("billing/cancel", {"reason": "too_expensive"})

    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    stripe_subscription.refresh_from_db()
    assert stripe_subscription.cancel_at_period_end is False


def test_cancelling_tells_stripe_with_feedback(api, fake_stripe, stripe_subscription):
    response = api.post("billing/cancel", {"reason": "not_using", "comment": "Season over"})

    assert response.status_code == 200
    assert fake_stripe.calls == [
        (
            "POST",
            "/v1/subscriptions/sub_123",
            {
                "cancel_at_period_end": "true",
                "cancellation_details[feedback]": "unused",
                "cancellation_details[comment]": "Season over",
            },
        )
    ]


def test_cancelling_now_and_resuming_call_stripe(
    api, fake_stripe, stripe_subscription, other_account
):
    other = SubscriptionFactory(
        account=other_account,
        provider="stripe",
        provider_customer_id="cus_123",
        provider_subscription_id="sub_123",
    )
    assert api.post("billing/cancel", {"reason": "other"}).status_code == 200
    assert api.post("billing/resume").status_code == 200
    assert (
        api.post("billing/cancel", {"reason": "other", "at_period_end": False}).status_code == 200
    )

    assert [c[:2] for c in fake_stripe.calls] == [
        ("POST", "/v1/subscriptions/sub_123"),
        ("POST", "/v1/subscriptions/sub_123"),
        ("DELETE", "/v1/subscriptions/sub_123"),
    ]
    assert fake_stripe.calls[1][2] == {"cancel_at_period_end": "false"}
    other.refresh_from_db()
    assert other.status == Subscription.Status.ACTIVE


# --- webhooks ---------------------------------------------------------------------------------


def signed(payload: str, *, secret: str = SECRET, at: int | None = None) -> str:
    """Stripe's scheme: v1 = HMAC-SHA256(secret, f"{timestamp}.{payload}")."""
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def post_event(client, event: dict, **sign):
    payload = json.dumps(event)
    return client.post(
        WEBHOOK,
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": signed(payload, **sign)},
    )


def event(kind: str, obj: dict, event_id: str = "evt_1") -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": obj},
    }


def subscription_object(**changes):
    now = int(time.time())
    return {
        "id": "sub_123",
        "object": "subscription",
        "customer": "cus_123",
        "status": "active",
        "cancel_at_period_end": False,
        "canceled_at": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "object": "subscription_item",
                    "current_period_start": now,
                    "current_period_end": now + 30 * 86400,
                    "price": {"id": "price_growth", "object": "price"},
                }
            ],
        },
        **changes,
    }


def invoice_object(**changes):
    now = int(time.time())
    return {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_123",
        "number": "ABC-0001",
        "status": "open",
        "currency": "usd",
        "amount_due": 4900,
        "amount_paid": 0,
        "attempt_count": 1,
        "next_payment_attempt": now + 3 * 86400,
        "created": now,
        "due_date": None,
        "customer_name": "Stripe Name",
        "customer_email": "s@example.test",
        "status_transitions": {"paid_at": None},
        "lines": {
            "object": "list",
            "data": [
                {"description": "1 x Growth", "period": {"start": now, "end": now + 86400 * 30}}
            ],
        },
        **changes,
    }


def test_a_subscription_update_is_mirrored_once(client, fake_stripe, stripe_subscription):
    growth = plan("growth")
    growth.stripe_price_id = "price_growth"
    growth.save()

    first = post_event(
        client, event("customer.subscription.updated", subscription_object(status="past_due"))
    )
    again = post_event(
        client, event("customer.subscription.updated", subscription_object(status="past_due"))
    )

    assert (first.json(), again.json()) == ({"result": "applied"}, {"result": "duplicate"})
    stripe_subscription.refresh_from_db()
    assert (stripe_subscription.status, stripe_subscription.plan.code) == ("past_due", "growth")
    assert stripe_subscription.past_due_since is not None
    assert stripe_subscription.current_period_end > timezone.now() + dt.timedelta(days=29)
    assert (
        stripe_subscription.history.filter(
            history_change_reason="stripe customer.subscription.updated"
        ).count()
        == 1
    )
    assert Account.objects.get(pk=stripe_subscription.account_id).plan == "growth"
    assert fake_stripe.calls == []


def test_a_deleted_subscription_ends_it(client, fake_stripe, stripe_subscription):
    response = post_event(
        client,
        event(
            "customer.subscription.deleted",
            subscription_object(status="canceled", canceled_at=int(time.time())),
        ),
    )

    stripe_subscription.refresh_from_db()
    assert response.json() == {"result": "applied"}
    assert stripe_subscription.status == "canceled" and stripe_subscription.canceled_at
    assert Account.objects.get(pk=stripe_subscription.account_id).plan == "free"


def test_invoice_events_upsert_the_invoice_and_warn_on_failure(
    client, fake_stripe, stripe_subscription, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        failed = post_event(client, event("invoice.payment_failed", invoice_object()))
    paid = post_event(
        client,
        event(
            "invoice.paid",
            invoice_object(
                status="paid", amount_paid=4900, status_transitions={"paid_at": int(time.time())}
            ),
            event_id="evt_2",
        ),
    )

    assert (failed.json(), paid.json()) == ({"result": "applied"}, {"result": "applied"})
    (invoice,) = Invoice.objects.all()
    assert (invoice.number, invoice.status, invoice.amount_paid_cents, invoice.provider) == (
        "ABC-0001",
        "paid",
        4900,
        "stripe",
    )
    assert invoice.paid_at is not None and invoice.account_id == stripe_subscription.account_id
    assert len(mail.outbox) == 1 and "ABC-0001" in mail.outbox[0].body


def test_events_about_unknown_customers_are_ignored(client, fake_stripe):
    response = post_event(client, event("invoice.paid", invoice_object(customer="cus_other")))

    assert response.json() == {"result": "ignored"}
    assert not Invoice.objects.exists()
    assert ProviderEvent.objects.get().event_id == "evt_1"


@pytest.mark.parametrize(
    "sign",
    [
        {"secret": "whsec_wrong"},
        {"at": int(time.time()) - 3600},
    ],
)
def test_bad_signatures_are_rejected_and_nothing_is_applied(
    client, fake_stripe, stripe_subscription, sign
):
    response = post_event(
        client,
        event("customer.subscription.deleted", subscription_object(status="canceled")),
        **sign,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_webhook"
    stripe_subscription.refresh_from_db()
    assert stripe_subscription.status == "active"
    assert not ProviderEvent.objects.exists()


def test_a_missing_signature_or_garbage_body_is_400(client, fake_stripe):
    no_header = client.post(WEBHOOK, data="{}", content_type="application/json")
    garbage = client.post(
        WEBHOOK,
        data="not json",
        content_type="application/json",
        headers={"Stripe-Signature": signed("not json")},
    )

    assert (no_header.status_code, garbage.status_code) == (400, 400)
    assert not ProviderEvent.objects.exists()


def test_webhooks_without_a_secret_are_404(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = client.post(
        WEBHOOK,
        data="{}",
        content_type="application/json",
        headers={"Stripe-Signature": signed("{}")},
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_configured"


def test_choosing_a_paid_plan_starts_the_stripe_subscription(api, account, fake_stripe):
    growth = plan("growth")
    growth.stripe_price_id = "price_growth"
    growth.save()
    PaymentMethodFactory(account=account, provider="stripe", provider_reference="pm_live_1")
    subscription = SubscriptionFactory(
        account=account, plan=plan("free"), provider="stripe", provider_customer_id="cus_123"
    )
    fake_stripe.routes[("POST", "/v1/subscriptions")] = (
        200,
        {"id": "sub_new", "object": "subscription"},
    )

    response = api.post("billing/plan", {"plan": "growth"})

    assert response.status_code == 200
    assert fake_stripe.calls == [
        (
            "POST",
            "/v1/subscriptions",
            {
                "customer": "cus_123",
                "items[0][price]": "price_growth",
                "metadata[account_id]": str(account.pk),
            },
        )
    ]
    subscription.refresh_from_db()
    assert (subscription.provider_subscription_id, subscription.plan.code) == ("sub_new", "growth")
    assert not Invoice.objects.exists()  # Stripe invoices it and tells us by webhook


def test_a_plan_without_a_stripe_price_is_a_conflict(
    api, account, fake_stripe, stripe_subscription
):
    PaymentMethodFactory(account=account, provider="stripe", provider_reference="pm_live_1")

    response = api.post("billing/plan", {"plan": "enterprise"})

    assert response.status_code == 409
    assert response.json()["code"] == "plan_unavailable"
    assert fake_stripe.calls == []
    stripe_subscription.refresh_from_db()
    assert stripe_subscription.plan.code == "starter"


def test_an_unreadable_event_is_400_and_can_be_redelivered(
    client, fake_stripe, stripe_subscription
):
    broken = invoice_object()
    del broken["id"]

    response = post_event(client, event("invoice.paid", broken))

    assert response.status_code == 400
    assert not ProviderEvent.objects.exists() and not Invoice.objects.exists()
    assert post_event(client, event("invoice.paid", invoice_object())).json() == {
        "result": "applied"
    }


# --- plan changes between paid plans ----------------------------------------------------------


def priced(*codes):
    for code in codes:
        row = plan(code)
        row.stripe_price_id = f"price_{code}"
        row.save()


@pytest.fixture
def paid_at_stripe(account, fake_stripe, stripe_subscription):
    """`account` on Growth at Stripe (sub_123, item si_1), paying with pm_live_1."""
    priced("starter", "growth", "enterprise")
    Account.objects.filter(pk=account.pk).update(plan="growth")
    stripe_subscription.plan = plan("growth")
    stripe_subscription.save()
    PaymentMethodFactory(account=account, provider="stripe", provider_reference="pm_live_1")
    fake_stripe.routes[("GET", "/v1/subscriptions/sub_123")] = (
        200,
        {"id": "sub_123", "object": "subscription", "items": {"data": [{"id": "si_1"}]}},
    )
    return stripe_subscription


def test_an_upgrade_at_stripe_is_invoiced_at_once_and_must_be_paid(
    api, account, fake_stripe, paid_at_stripe
):
    response = api.post("billing/plan", {"plan": "enterprise"})

    assert response.status_code == 200
    assert fake_stripe.calls[-1] == (
        "POST",
        "/v1/subscriptions/sub_123",
        {
            "items[0][id]": "si_1",
            "items[0][price]": "price_enterprise",
            "cancel_at_period_end": "false",
            "proration_behavior": "always_invoice",
            "payment_behavior": "error_if_incomplete",
        },
    )
    paid_at_stripe.refresh_from_db()
    assert paid_at_stripe.plan.code == "enterprise"
    assert Account.objects.get(pk=account.pk).plan == "enterprise"


def test_a_declined_upgrade_at_stripe_is_402_and_changes_nothing(
    api, account, fake_stripe, paid_at_stripe
):
    fake_stripe.routes[("POST", "/v1/subscriptions/sub_123")] = (
        402,
        {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "message": "Your card was declined.",
            }
        },
    )
    history = paid_at_stripe.history.count()

    response = api.post("billing/plan", {"plan": "enterprise"})

    assert response.status_code == 402
    assert response.json() == {
        "detail": "Your card was declined. Nothing was changed.",
        "code": "payment_declined",
    }
    paid_at_stripe.refresh_from_db()
    assert (paid_at_stripe.plan.code, paid_at_stripe.scheduled_plan) == ("growth", None)
    assert paid_at_stripe.history.count() == history
    assert Account.objects.get(pk=account.pk).plan == "growth"
    assert not Invoice.objects.exists()


def test_a_downgrade_at_stripe_waits_for_the_next_period(
    api, client, account, fake_stripe, paid_at_stripe
):
    response = api.post("billing/plan", {"plan": "starter"})

    assert response.status_code == 200
    assert response.json()["scheduled_plan"] == "starter"
    assert fake_stripe.calls[-1][2] == {
        "items[0][id]": "si_1",
        "items[0][price]": "price_starter",
        "proration_behavior": "none",
        "cancel_at_period_end": "false",
    }
    # Stripe reports the new price inside the paid period: the customer keeps Growth.
    item = {"current_period_start": int(time.time()), "price": {"id": "price_starter"}}
    same_period = subscription_object()
    same_period["items"]["data"][0].update(item)
    post_event(client, event("customer.subscription.updated", same_period, "evt_a"))
    paid_at_stripe.refresh_from_db()
    assert (paid_at_stripe.plan.code, paid_at_stripe.scheduled_plan.code) == ("growth", "starter")
    assert Account.objects.get(pk=account.pk).plan == "growth"

    # The next period starts: the downgrade applies.
    later = int((paid_at_stripe.current_period_end + dt.timedelta(minutes=1)).timestamp())
    next_period = subscription_object()
    next_period["items"]["data"][0].update(
        current_period_start=later,
        current_period_end=later + 30 * 86400,
        price={"id": "price_starter"},
    )
    post_event(client, event("customer.subscription.updated", next_period, "evt_b"))
    paid_at_stripe.refresh_from_db()
    assert (paid_at_stripe.plan.code, paid_at_stripe.scheduled_plan) == ("starter", None)
    assert Account.objects.get(pk=account.pk).plan == "starter"


# --- amounts in signed events -----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_due": -4900},
        {"amount_paid": -1},
        {"amount_due": 10**30},
        {"amount_paid": 2**63},
        {"amount_due": 49.5},
        {"amount_due": "4900"},
        {"attempt_count": 10**6},
        {"created": 10**20},
    ],
    ids=["negative", "negative-paid", "huge", "overflow", "fraction", "string", "attempts", "ts"],
)
def test_a_signed_event_with_an_impossible_amount_is_400_and_changes_nothing(
    client, fake_stripe, stripe_subscription, changes
):
    response = post_event(client, event("invoice.paid", invoice_object(**changes)))

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The invoice.paid event could not be read.",
        "code": "invalid_webhook",
    }
    assert not Invoice.objects.exists() and not ProviderEvent.objects.exists()
