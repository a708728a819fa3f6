"""The account page as a customer 360 (panels from every app through the registry) and the
actions staff take on a customer's behalf: each through the owning service, with a required
reason written into history, a preview before confirming, and permission per staff group."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from opsplatform import services as core_services
from opsplatform.models import Account, ApiToken
from support.models import Ticket
from tests.factories import AccountFactory, staff_in
from tests.support.factories import make_ticket
from tests.userflows.factories import (
    DeletionRequestFactory,
    ExportRequestFactory,
    InvoiceFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
    plan,
)
from userflows.models import DeletionRequest, Invoice, Subscription

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(days=30)
NOW = START + dt.timedelta(days=10)  # 20 of 30 days left


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def customer(frozen):
    account = AccountFactory(name="Acme Pods", plan="starter")
    PaymentMethodFactory(account=account, brand="visa", last4="4242")
    SubscriptionFactory(
        account=account, plan=plan("starter"), current_period_start=START, current_period_end=END
    )
    return account


@pytest.fixture
def ops(client):
    client.force_login(staff_in("operations"))
    return client


def panel(panels, key):
    return next(p for p in panels if p.key == key)


def account_url(account):
    return reverse("admin:opsplatform_account_change", args=[account.pk])


def act_url(account, name):
    return reverse("admin:opsplatform_account_on_behalf", args=[account.pk, name])


# --- the 360 page -----------------------------------------------------------------------------


def test_account_page_shows_every_panel_read_only_with_links(ops, customer):
    invoice = InvoiceFactory(account=customer, number="INV-360-1", amount_due_cents=1900)
    ExportRequestFactory(account=customer)
    ticket = make_ticket(account=customer, subject="Chart is empty")
    core_services.issue_api_token(user=customer.user, label="Zapier")

    response = ops.get(account_url(customer))
    assert response.status_code == 200
    html = response.content.decode()
    keys = [p.key for p in response.context["panels"]]
    # Health first (not checked yet here), then the apps' panels in their declared order.
    assert keys == ["health", "billing", "deletion", "tickets", "exports", "tokens", "history"]
    billing = panel(response.context["panels"], "billing")
    assert dict(billing.facts)["Payment method"] == "visa •••• 4242"
    assert dict(billing.facts)["Subscription"] == "Active"
    assert dict(billing.facts)["Balance due"] == "$0.00"
    assert reverse("admin:userflows_invoice_change", args=[invoice.pk]) in html
    assert reverse("admin:support_ticket_change", args=[ticket.pk]) in html
    assert "Chart is empty" in html
    assert "Zapier" in html


def test_support_agents_do_not_get_the_token_panel(client, customer):
    core_services.issue_api_token(user=customer.user, label="Zapier")
    client.force_login(staff_in("support_l4"))
    response = client.get(account_url(customer))
    assert "tokens" not in [p.key for p in response.context["panels"]]
    assert "Zapier" not in response.content.decode()


def test_compliance_sees_the_tokens_with_label_and_last_use(client, customer):
    token, _ = core_services.issue_api_token(user=customer.user, label="Zapier")
    client.force_login(staff_in("compliance"))
    response = client.get(account_url(customer))
    tokens = next(p for p in response.context["panels"] if p.key == "tokens")
    assert [(i.text, i.detail) for i in tokens.items] == [
        (f"Zapier ({token.token_prefix}…)", "last used never")
    ]
    # Compliance reads; it has no billing actions.
    assert response.context["on_behalf"] == []


def test_balance_due_counts_open_invoices(ops, customer):
    InvoiceFactory(
        account=customer, status=Invoice.Status.OPEN, amount_due_cents=1900, amount_paid_cents=0
    )
    panels = ops.get(account_url(customer)).context["panels"]
    assert dict(panel(panels, "billing").facts)["Balance due"] == "$19.00"


def test_account_page_query_count_is_fixed(ops, customer, django_assert_max_num_queries):
    ops.get(account_url(customer))
    with django_assert_max_num_queries(80) as few:
        ops.get(account_url(customer))
    for n in range(15):
        InvoiceFactory(account=customer, number=f"INV-Q-{n}")
        make_ticket(account=customer)
        ExportRequestFactory(account=customer)
    with django_assert_max_num_queries(len(few.captured_queries)):
        ops.get(account_url(customer))


def test_another_account_is_not_in_the_panels(ops, customer):
    other = AccountFactory(name="Other Co")
    make_ticket(account=other, subject="Not theirs")
    html = ops.get(account_url(customer)).content.decode()
    assert "Not theirs" not in html


# --- change plan ----------------------------------------------------------------------------


def test_change_plan_previews_the_proration_then_charges_through_billing(ops, customer):
    form = ops.get(act_url(customer, "change-plan"))
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()

    review = ops.post(
        act_url(customer, "change-plan"), {"plan": "growth", "reason": "Asked by phone"}
    )
    lines = review.context["preview"]
    # Starter $19 → Growth $49 with 20 of 30 days left: credit 1900*2/3 = 1266.67 → $12.67,
    # charge 4900*2/3 = 3266.67 → $32.67, due now $20.00.
    assert lines[:4] == [
        "Change: upgrade to Growth",
        "Credit for unused time on the current plan: $12.67",
        "Charge for the rest of the period on Growth: $32.67",
        "Charged now: $20.00",
    ]
    sub = Subscription.objects.get(account=customer)
    assert sub.plan.code == "starter"  # nothing changed before confirming

    done = ops.post(
        act_url(customer, "change-plan"),
        {"plan": "growth", "reason": "Asked by phone", "confirm": "yes"},
    )
    assert done.status_code == 302 and done["Location"] == account_url(customer)
    sub.refresh_from_db()
    assert sub.plan.code == "growth"
    assert Account.objects.get(pk=customer.pk).plan == "growth"
    upgrade = Invoice.objects.get(account=customer)
    assert upgrade.amount_due_cents == 2000 and upgrade.status == Invoice.Status.PAID
    row = sub.history.first()
    assert row.history_change_reason == "On behalf of the customer: Asked by phone"
    assert row.history_user.groups.filter(name="operations").exists()


def test_the_reason_is_required(ops, customer):
    response = ops.post(act_url(customer, "change-plan"), {"plan": "growth", "confirm": "yes"})
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert Subscription.objects.get(account=customer).plan.code == "starter"


def test_a_refused_change_changes_nothing_and_says_why(ops, customer):
    rows = Subscription.objects.get(account=customer).history.count()
    response = ops.post(
        act_url(customer, "change-plan"),
        {"plan": "starter", "reason": "test", "confirm": "yes"},
        follow=True,
    )
    assert "already on the Starter plan" in response.content.decode()
    assert Subscription.objects.get(account=customer).history.count() == rows


# --- extend, cancel, resume -----------------------------------------------------------------


def test_extend_the_period(ops, customer):
    review = ops.post(act_url(customer, "extend-period"), {"days": "7", "reason": "Outage"})
    assert review.context["preview"][0] == (
        "The current period ends 2026-03-31; it will end 2026-04-07."
    )
    ops.post(
        act_url(customer, "extend-period"), {"days": "7", "reason": "Outage", "confirm": "yes"}
    )
    sub = Subscription.objects.get(account=customer)
    assert sub.current_period_end == END + dt.timedelta(days=7)
    assert sub.history.first().history_change_reason == "On behalf of the customer: Outage"


@pytest.mark.parametrize("days", ["0", "91", "x", "-3"])
def test_extension_days_are_bounded(ops, customer, days):
    response = ops.post(
        act_url(customer, "extend-period"), {"days": days, "reason": "r", "confirm": "yes"}
    )
    assert response.status_code == 200 and response.context["form"].errors["days"]
    assert Subscription.objects.get(account=customer).current_period_end == END


def test_cancel_then_resume(ops, customer):
    ops.post(
        act_url(customer, "cancel-subscription"),
        {
            "cancellation_reason": "too_expensive",
            "at_period_end": "on",
            "reason": "Called support",
            "confirm": "yes",
        },
    )
    sub = Subscription.objects.get(account=customer)
    assert sub.cancel_at_period_end and sub.cancellation_reason == "too_expensive"
    assert sub.history.first().history_change_reason == "On behalf of the customer: Called support"
    page = ops.get(account_url(customer))
    labels = [a["label"] for a in page.context["on_behalf"]]
    assert "Resume the subscription" in labels and "Cancel the subscription" not in labels

    ops.post(act_url(customer, "resume-subscription"), {"reason": "Changed mind", "confirm": "yes"})
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end
    assert sub.history.first().history_change_reason == "On behalf of the customer: Changed mind"


# --- tokens and deletion ----------------------------------------------------------------------


def test_revoke_a_token_of_this_account_only(client, customer):
    token, _ = core_services.issue_api_token(user=customer.user, label="Zapier")
    other_token, _ = core_services.issue_api_token(user=AccountFactory().user, label="Other")
    client.force_login(staff_in("operations"))
    refused = client.post(
        act_url(customer, "revoke-token"),
        {"token": other_token.pk, "reason": "r", "confirm": "yes"},
    )
    assert refused.status_code == 200 and refused.context["form"].errors["token"]
    assert ApiToken.objects.get(pk=other_token.pk).revoked_at is None

    client.post(
        act_url(customer, "revoke-token"),
        {"token": token.pk, "reason": "Leaked key", "confirm": "yes"},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.history.first().history_change_reason == "On behalf of the customer: Leaked key"


def test_cancel_a_pending_deletion_at_the_customers_request(ops, customer):
    pending = DeletionRequestFactory(account=customer)
    panels = ops.get(account_url(customer)).context["panels"]
    deletion = next(p for p in panels if p.key == "deletion")
    assert deletion.items[0].tone == "danger"
    ops.post(act_url(customer, "cancel-deletion"), {"reason": "Customer called", "confirm": "yes"})
    pending.refresh_from_db()
    assert pending.status == DeletionRequest.Status.CANCELED
    assert pending.history.first().history_change_reason == (
        "On behalf of the customer: Customer called"
    )


# --- permissions per staff group --------------------------------------------------------------


def _state(customer):
    sub = Subscription.objects.get(account=customer)
    return (
        sub.plan.code,
        sub.current_period_end,
        sub.cancel_at_period_end,
        DeletionRequest.objects.filter(account=customer, status="scheduled").count(),
        ApiToken.objects.filter(user=customer.user, revoked_at__isnull=True).count(),
    )


ACTIONS = {
    "change-plan": {"plan": "growth"},
    "extend-period": {"days": "3"},
    "cancel-subscription": {"cancellation_reason": "other", "at_period_end": "on"},
    "resume-subscription": {},
    "cancel-deletion": {},
    "revoke-token": None,  # filled with the token's id
}


@pytest.mark.parametrize("name", list(ACTIONS))
@pytest.mark.parametrize(
    ("group", "allowed"),
    [
        ("operations", set(ACTIONS)),
        ("support_l1", set()),
        ("support_l4", set()),
        ("compliance", set()),
    ],
)
def test_on_behalf_actions_per_staff_group(client, customer, group, allowed, name):
    DeletionRequestFactory(account=customer)
    token, _ = core_services.issue_api_token(user=customer.user, label="Zapier")
    if name == "resume-subscription":  # something to resume (test setup, not a change)
        Subscription.objects.filter(account=customer).update(cancel_at_period_end=True)
    data = ACTIONS[name] if ACTIONS[name] is not None else {"token": token.pk}
    before = _state(customer)
    client.force_login(staff_in(group))
    response = client.post(act_url(customer, name), {**data, "reason": "r", "confirm": "yes"})
    if name in allowed:
        assert response.status_code == 302
        assert _state(customer) != before
    else:
        assert response.status_code == 403
        assert _state(customer) == before


def test_customers_never_reach_the_account_admin(client, customer):
    client.force_login(customer.user)
    response = client.post(
        act_url(customer, "extend-period"), {"days": "3", "reason": "r", "confirm": "yes"}
    )
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Subscription.objects.get(account=customer).current_period_end == END


def test_unknown_action_is_not_found(ops, customer):
    assert ops.get(act_url(customer, "delete-everything")).status_code == 404


# --- the ticket side panel reads the same hooks -------------------------------------------------


def test_a_level_1_agent_sees_the_summary_without_links_to_rows_it_cannot_open(client, customer):
    pending = DeletionRequestFactory(account=customer)
    ticket = make_ticket(account=customer)
    client.force_login(staff_in("support_l1"))
    response = client.get(reverse("admin:support_ticket_change", args=[ticket.pk]))
    billing = panel(response.context["panels"], "billing")
    assert dict(billing.facts)["Subscription"] == "Active"
    html = response.content.decode()
    assert "Deletion scheduled for" in html
    assert reverse("admin:userflows_deletionrequest_change", args=[pending.pk]) not in html


def test_ticket_side_panel_shows_plan_balance_deletion_and_exports(client, customer):
    DeletionRequestFactory(account=customer)
    ExportRequestFactory(account=customer)
    ticket = make_ticket(account=customer)
    client.force_login(staff_in("support_l4"))
    response = client.get(reverse("admin:support_ticket_change", args=[ticket.pk]))
    keys = [p.key for p in response.context["panels"]]
    assert keys == ["health", "billing", "deletion", "exports"]
    html = response.content.decode()
    assert "Deletion scheduled for" in html and "visa •••• 4242" in html
    assert Ticket.objects.count() == 1


def test_history_panel_reads_like_a_story(ops, customer):
    from opsplatform.models import Persona

    staff = staff_in("operations")
    brand = Persona.objects.get(slug="brand")
    core_services.update_account(
        account_id=customer.pk,
        actor=staff,
        name="Acme Podcasts",
        persona=brand,
        country=customer.country,
    )
    history = next(
        p for p in ops.get(account_url(customer)).context["panels"] if p.key == "history"
    )
    stories = [item.text for item in history.items]
    assert any(
        "name: Acme Pods → Acme Podcasts" in s and f"persona: Solo podcaster → {brand}" in s
        for s in stories
    ), stories
