"""Billing that explains itself: plan cards, a preview before every change, the cancellation
states read the same on the page, in the API and in /me, and free-text cancellation reasons."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from opsplatform.errors import InvalidInput
from opsplatform.models import Account
from tests.conftest import ApiClient
from tests.factories import token_for
from tests.userflows.factories import PaymentMethodFactory, SubscriptionFactory, plan
from userflows.models import Invoice, Subscription
from userflows.services import billing

PAGE = "/account/billing/"
START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: START + dt.timedelta(days=10))


@pytest.fixture
def on_growth(account, frozen):
    Account.objects.filter(pk=account.pk).update(plan="growth")
    account.refresh_from_db()
    PaymentMethodFactory(account=account)
    return SubscriptionFactory(
        account=account, plan=plan("growth"), current_period_start=START, current_period_end=END
    )


@pytest.fixture
def customer(client, account):
    client.force_login(account.user)
    return client


def text_of(html: str) -> str:
    """The words a reader sees: inline tags vanish, block tags separate."""
    html = re.sub(r"</?(strong|em|small|span|code|a)\b[^>]*>", "", html)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_plans_are_comparison_cards_with_the_current_one_marked(customer, on_growth):
    html = customer.get(PAGE).content.decode()

    cards = re.findall(
        r'<li class="plan-card( current)?"[^>]*>(.*?)(?=<li class="plan-card|</section>)',
        html,
        re.S,
    )
    by_name = {
        re.search(r'<h3 id="plan-(\w+)">', body).group(1): (bool(cur), text_of(body))
        for cur, body in cards
    }
    assert list(by_name) == ["free", "starter", "growth", "enterprise"]
    assert by_name["growth"][0] is True and "Current plan" in by_name["growth"][1]
    assert [code for code, (current, _) in by_name.items() if current] == ["growth"]
    assert "$49.00 / month" in by_name["growth"][1]
    assert (
        "$199.00 / month" in by_name["enterprise"][1]
        and "Upgrade to Enterprise" in by_name["enterprise"][1]
    )
    assert "Switch to Starter" in by_name["starter"][1]
    assert "API access for your own tools" in by_name["growth"][1]  # what it includes
    assert "Free" in by_name["free"][1]


def test_every_change_is_previewed_before_it_happens(customer, account, on_growth):
    # Same price would switch at once with nothing to pay: it is still shown first.
    plan("starter").__class__.objects.filter(code="starter").update(price_cents=4900)

    shown = customer.post(reverse("userflows:billing_plan"), {"plan": "starter"})

    assert shown.status_code == 200
    assert "Your plan becomes Starter now; nothing is charged now." in text_of(
        shown.content.decode()
    )
    assert Subscription.objects.get(pk=on_growth.pk).plan.code == "growth"


def test_a_downgrade_preview_names_the_date_on_fixed_dates(customer, on_growth):
    shown = customer.post(reverse("userflows:billing_plan"), {"plan": "free"})

    text = text_of(shown.content.decode())
    assert (
        "You keep Growth until March 31, 2026; then your plan becomes Free. "
        "Nothing is charged or refunded now."
    ) in text
    assert Subscription.objects.get(pk=on_growth.pk).scheduled_plan is None


def test_an_upgrade_preview_itemizes_the_proration_on_fixed_dates(customer, on_growth):
    # 20 of 30 days left: Enterprise $199 * 2/3 = $132.67, less Growth $49 * 2/3 = $32.67.
    text = text_of(
        customer.post(reverse("userflows:billing_plan"), {"plan": "enterprise"}).content.decode()
    )

    assert "$100.00 will be charged now for Enterprise until Mar 31, 2026" in text
    assert "Enterprise for the rest of the period $132.67" in text
    assert "Less the unused time on Growth \N{MINUS SIGN}$32.67" in text
    assert "Due now $100.00" in text
    assert "From Mar 31, 2026 you pay $199.00 a month." in text


def test_a_declined_upgrade_refuses_with_a_clear_message_and_changes_nothing(
    customer, account, on_growth
):
    card = account.payment_method
    card.provider_reference, card.last4 = "pm_card_chargeDeclined", "0002"
    card.save()
    history_before = on_growth.history.count()

    response = customer.post(
        reverse("userflows:billing_plan"), {"plan": "enterprise", "confirm_cents": "10000"}
    )

    assert response.status_code == 402
    assert (
        "The upgrade to Enterprise needs a payment of $100.00 now, and it failed: "
        "The card was declined. Nothing was changed."
    ) in response.content.decode()
    on_growth.refresh_from_db()
    account.refresh_from_db()
    assert (on_growth.plan.code, account.plan) == ("growth", "growth")
    assert not Invoice.objects.exists()
    assert on_growth.history.count() == history_before


def states(customer, account):
    page = text_of(customer.get(PAGE).content.decode())
    api = ApiClient(token_for(account.user))
    data = api.get("billing").json()
    me = api.get("me").json()
    return page, data, me


def test_cancel_now_reads_the_same_on_the_page_in_the_api_and_in_me(customer, account, on_growth):
    response = customer.post(
        reverse("userflows:billing_cancel"),
        {"reason": "too_expensive", "when": "now", "confirm": "on"},
        follow=True,
    )

    assert (
        "Your subscription was canceled; you are on the Free plan now." in response.content.decode()
    )
    page, data, me = states(customer, account)
    assert me["account"]["plan"] == "free"
    assert data["plan"]["code"] == "free"
    assert (data["state"], data["state_label"]) == ("canceled", "Canceled on March 11, 2026")
    assert data["subscription"]["status"] == "canceled"
    assert "Plan Free Status Canceled on March 11, 2026" in page
    assert (
        "Your Growth subscription was canceled on March 11, 2026; you are on the Free plan" in page
    )
    assert "Resume" not in page


def test_cancel_at_period_end_says_when_the_plan_ends_and_offers_resume(
    customer, account, on_growth, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = customer.post(
            reverse("userflows:billing_cancel"),
            {"reason": "not_using", "when": "period_end", "confirm": "on"},
            follow=True,
        )

    assert "Your plan ends on March 31, 2026. You keep it until then" in response.content.decode()
    page, data, me = states(customer, account)
    assert me["account"]["plan"] == "growth"
    assert data["plan"]["code"] == "growth"
    assert (data["state"], data["state_label"]) == ("ending", "Your plan ends on March 31, 2026")
    assert data["subscription"]["status"] == "active"
    assert data["subscription"]["ends_at"] == "2026-03-31T12:00:00Z"
    assert "Status Your plan ends on March 31, 2026" in page
    assert "Resume my subscription" in page
    assert "Canceled" not in page and "canceled" not in data["state_label"]
    assert mail.outbox[-1].subject == "Your plan ends on March 31, 2026"

    customer.post(reverse("userflows:billing_resume"))
    _, data, _ = states(customer, account)
    assert (data["state"], data["state_label"]) == ("active", "Renews on March 31, 2026")


def test_one_spelling_of_canceled_on_pages_api_fields_and_emails(
    customer, account, on_growth, django_capture_on_commit_callbacks
):
    from tests.userflows.factories import ExportRequestFactory
    from userflows.models import ExportRequest
    from userflows.services import deletion

    ExportRequestFactory(account=account, status=ExportRequest.Status.CANCELED)
    with django_capture_on_commit_callbacks(execute=True):
        billing.cancel_subscription(
            account=account, reason="other", at_period_end=False, actor=account.user
        )
        pending = deletion.request_deletion(account=account, actor=account.user, reason="")
        deletion.cancel_deletion(deletion=pending, actor=account.user)
    api = ApiClient(token_for(account.user))

    seen = [
        customer.get(PAGE).content.decode(),
        customer.get("/account/exports/").content.decode(),
        customer.get("/account/delete/").content.decode(),
        api.get("billing").content.decode(),
        api.get("exports").content.decode(),
        api.get("deletion").content.decode(),
        *[f"{m.subject}\n{m.body}" for m in mail.outbox],
    ]
    spelled = "\n".join(seen).lower()
    assert "canceled" in spelled
    assert "cancelled" not in spelled


# --- cancellation reasons -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "code", "comment"),
    [
        ("Switching to competitor", "switched_service", "Switching to competitor"),
        ("too_expensive", "too_expensive", ""),
        ("Too expensive", "too_expensive", ""),
        ("The price went up again", "too_expensive", "The price went up again"),
        ("We are closing the show", "closing_business", "We are closing the show"),
        ("Exports keep crashing", "technical_issues", "Exports keep crashing"),
        ("Just because", "other", "Just because"),
    ],
)
def test_a_free_text_reason_is_kept_as_the_comment_under_the_closest_code(
    account, on_growth, given, code, comment
):
    result = billing.cancel_subscription(account=account, reason=given, actor=account.user)

    assert (result.cancellation_reason, result.cancellation_comment) == (code, comment)


def test_free_text_and_a_comment_are_both_kept(account, on_growth):
    result = billing.cancel_subscription(
        account=account,
        reason="Switching to competitor",
        comment="They have RSS import",
        actor=account.user,
    )

    assert result.cancellation_reason == "switched_service"
    assert result.cancellation_comment == "Switching to competitor\n\nThey have RSS import"


def test_the_api_accepts_a_free_text_reason(account, on_growth):
    response = ApiClient(token_for(account.user)).post(
        "billing/cancel", {"reason": "Switching to competitor"}
    )

    assert response.status_code == 200
    on_growth.refresh_from_db()
    assert on_growth.cancellation_reason == "switched_service"
    assert on_growth.cancellation_comment == "Switching to competitor"


def test_payment_failed_is_not_a_customer_reason(account, on_growth):
    with pytest.raises(InvalidInput):
        billing.cancel_subscription(account=account, reason="payment_failed", actor=account.user)
    on_growth.refresh_from_db()
    assert on_growth.cancel_at_period_end is False
