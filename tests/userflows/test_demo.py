"""Demo data: subscriptions in every state, cards, invoices and one scheduled deletion."""

import datetime as dt

import pytest

from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from userflows import demo
from userflows.models import DeletionRequest, Invoice, PaymentMethod, Subscription

pytestmark = pytest.mark.django_db


def context(accounts=60):
    return DemoContext(
        seed=7, accounts_wanted=accounts, as_of=dt.date(2025, 6, 2), write=lambda *a: None
    )


def snapshot():
    return (
        list(
            Subscription.objects.order_by("account_id").values_list(
                "account_id", "plan__code", "status", "cancellation_reason", "current_period_end"
            )
        ),
        list(
            Invoice.objects.order_by("account_id", "period_start").values_list(
                "account_id", "status", "amount_due_cents", "period_start"
            )
        ),
        list(PaymentMethod.objects.order_by("account_id").values_list("account_id", "last4")),
    )


def test_demo_billing_covers_every_state_and_agrees_with_the_accounts():
    ctx = context()
    seed_core(ctx)
    demo.seed_demo(ctx)

    subs = Subscription.objects.select_related("account", "plan")
    assert ctx.counts["subscriptions"] == subs.count() == 60
    assert set(subs.values_list("status", flat=True)) == set(Subscription.Status.values)
    # One source of truth: a live subscription's plan is the account's; canceled means free.
    assert all(s.account.plan == ("free" if s.status == "canceled" else s.plan.code) for s in subs)
    assert subs.filter(status="canceled").exclude(plan__code="free").exists()
    assert subs.exclude(cancellation_reason="").exists()
    assert all(
        s.current_period_start <= ctx.now < s.current_period_end
        for s in subs.exclude(status="canceled")
    )
    paid = subs.exclude(plan__code="free")
    assert PaymentMethod.objects.count() == ctx.counts["payment_methods"] == paid.count()
    past_due = subs.filter(status="past_due")
    assert all(s.account.payment_method.last4 == "0002" for s in past_due)
    assert Invoice.objects.filter(status="open").count() == past_due.count()
    assert Invoice.objects.count() == ctx.counts["invoices"] > 0
    assert not Invoice.objects.filter(plan_code="free").exists()


def test_one_non_login_account_is_scheduled_for_deletion():
    ctx = context()
    seed_core(ctx)
    demo.seed_demo(ctx)

    (request,) = DeletionRequest.objects.all()
    assert request.status == "scheduled" and request.scheduled_for > ctx.now
    assert request.account_id not in {c.id for c in ctx.customers.values()}


def test_the_demo_is_deterministic_for_a_seed():
    ctx = context(accounts=30)
    seed_core(ctx)
    demo.seed_demo(ctx)
    first = snapshot()
    for model in (Invoice, PaymentMethod, Subscription, DeletionRequest):
        model.objects.all().delete()

    demo.seed_demo(ctx)

    assert snapshot()[1:] == first[1:]
    assert [r[1:] for r in snapshot()[0]] == [r[1:] for r in first[0]]
