import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from opsplatform.errors import Conflict, InvalidInput
from opsplatform.models import Account
from tests.factories import AccountFactory
from tests.userflows.factories import (
    InvoiceFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
    plan,
)
from userflows.models import Invoice, PaymentMethod, Subscription
from userflows.services import billing


@pytest.fixture
def subscribed(account):
    """`account` on Starter, mid-period, paying with a working card."""
    PaymentMethodFactory(account=account)
    return SubscriptionFactory(account=account)


def declining(account):
    return PaymentMethodFactory(
        account=account, provider_reference="pm_card_chargeDeclined", last4="0002"
    )


def test_add_months_clamps_to_the_end_of_the_month():
    moment = dt.datetime(2024, 1, 31, 9, 30, tzinfo=dt.UTC)

    assert billing.add_months(moment) == dt.datetime(2024, 2, 29, 9, 30, tzinfo=dt.UTC)
    assert billing.add_months(moment, 11) == dt.datetime(2024, 12, 31, 9, 30, tzinfo=dt.UTC)
    assert billing.add_months(moment, 13) == dt.datetime(2025, 2, 28, 9, 30, tzinfo=dt.UTC)


# --- reading ----------------------------------------------------------------------------------


def test_billing_info_without_a_subscription_reads_the_accounts_plan(account):
    info = billing.get_billing_info(account=account)

    assert info.plan.code == account.plan
    assert (info.subscription, info.payment_method, info.next_invoice) == (None, None, None)
    assert info.balance_due_cents == 0


def test_billing_info_shows_the_next_invoice_and_what_is_owed(account, subscribed):
    InvoiceFactory(
        account=account, status=Invoice.Status.OPEN, amount_due_cents=1900, amount_paid_cents=0
    )
    InvoiceFactory(account=account, status=Invoice.Status.PAID)

    info = billing.get_billing_info(account=account)

    assert info.next_invoice == billing.NextInvoice(
        amount_cents=1900, currency="usd", date=subscribed.current_period_end
    )
    assert info.balance_due_cents == 1900
    assert info.payment_method.last4 == "4242"


def test_no_next_invoice_once_the_subscription_is_set_to_end(account, subscribed):
    billing.cancel_subscription(account=account, reason="too_expensive", actor=account.user)

    assert billing.get_billing_info(account=account).next_invoice is None


# --- payment methods --------------------------------------------------------------------------


def test_adding_a_card_creates_the_subscription_and_stores_no_card_number(account):
    method = billing.update_payment_method(
        account=account, payment_method_id="pm_card_amex", actor=account.user
    )

    assert (method.brand, method.last4, method.provider_reference) == (
        "amex",
        "8431",
        "pm_card_amex",
    )
    subscription = Subscription.objects.get(account=account)
    assert (subscription.plan.code, subscription.status, subscription.provider) == (
        "starter",
        Subscription.Status.ACTIVE,
        "local",
    )
    assert subscription.history.first().history_user == account.user


def test_replacing_the_card_keeps_one_payment_method(account, subscribed):
    billing.update_payment_method(
        account=account, payment_method_id="pm_card_mastercard", actor=account.user
    )

    (method,) = PaymentMethod.objects.filter(account=account)
    assert (method.brand, method.last4) == ("mastercard", "4444")


def test_an_unknown_token_is_refused_and_nothing_changes(account, subscribed):
    with pytest.raises(InvalidInput) as caught:
        billing.update_payment_method(
            account=account, payment_method_id="4242424242424242", actor=account.user
        )

    assert caught.value.field == "payment_method_id"
    assert PaymentMethod.objects.get(account=account).last4 == "4242"


def test_a_new_card_settles_a_past_due_subscription_at_once(account):
    declining(account)
    subscription = SubscriptionFactory(
        account=account, status=Subscription.Status.PAST_DUE, past_due_since=timezone.now()
    )
    invoice = InvoiceFactory(
        account=account,
        subscription=subscription,
        status=Invoice.Status.OPEN,
        amount_paid_cents=0,
        attempt_count=1,
        next_attempt_at=timezone.now() + dt.timedelta(days=3),
    )

    billing.update_payment_method(
        account=account, payment_method_id="pm_card_visa", actor=account.user
    )

    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert (invoice.status, invoice.amount_paid_cents, invoice.attempt_count) == (
        Invoice.Status.PAID,
        1900,
        2,
    )
    assert (subscription.status, subscription.past_due_since) == (Subscription.Status.ACTIVE, None)
    assert subscription.history.first().history_change_reason == "payment collection"


# --- cancel, resume, change plan --------------------------------------------------------------


def test_cancelling_at_period_end_keeps_the_plan_until_then(
    account, subscribed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = billing.cancel_subscription(
            account=account, reason="missing_features", comment="No RSS import", actor=account.user
        )

    assert (result.status, result.cancel_at_period_end) == (Subscription.Status.ACTIVE, True)
    assert (result.cancellation_reason, result.cancellation_comment) == (
        "missing_features",
        "No RSS import",
    )
    assert result.history.first().cancel_at_period_end is True
    assert Account.objects.get(pk=account.pk).plan == "starter"
    assert "will end on" in mail.outbox[-1].body


def test_cancelling_now_ends_the_subscription_and_the_paid_plan(
    account, subscribed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = billing.cancel_subscription(
            account=account, reason="not_using", at_period_end=False, actor=account.user
        )

    assert (result.status, result.cancel_at_period_end) == (Subscription.Status.CANCELED, False)
    assert result.canceled_at is not None
    assert Account.objects.get(pk=account.pk).plan == Account.Plan.FREE
    assert mail.outbox[-1].subject == "Your subscription was canceled"
    assert mail.outbox[-1].to == [account.user.email]


@pytest.mark.parametrize(
    ("reason", "comment"),
    [("", ""), ("   ", ""), ("payment_failed", ""), ("other", "x" * 1001), ("x" * 1001, "")],
)
def test_a_cancellation_needs_a_known_reason(account, subscribed, reason, comment):
    with pytest.raises(InvalidInput):
        billing.cancel_subscription(
            account=account, reason=reason, comment=comment, actor=account.user
        )

    subscribed.refresh_from_db()
    assert subscribed.cancel_at_period_end is False


def test_cancelling_twice_or_without_a_subscription_is_a_conflict(
    account, other_account, subscribed
):
    billing.cancel_subscription(account=account, reason="other", actor=account.user)

    with pytest.raises(Conflict):
        billing.cancel_subscription(account=account, reason="other", actor=account.user)
    with pytest.raises(Conflict):
        billing.cancel_subscription(account=other_account, reason="other", actor=other_account.user)
    assert subscribed.history.count() == 2


def test_resuming_undoes_a_pending_cancellation(account, subscribed):
    billing.cancel_subscription(account=account, reason="too_expensive", actor=account.user)

    result = billing.resume_subscription(account=account, actor=account.user)

    assert (result.cancel_at_period_end, result.cancellation_reason) == (False, "")
    with pytest.raises(Conflict):
        billing.resume_subscription(account=account, actor=account.user)


def test_resuming_after_the_period_ended_is_a_conflict(account, subscribed):
    billing.cancel_subscription(account=account, reason="too_expensive", actor=account.user)
    Subscription.objects.filter(pk=subscribed.pk).update(
        current_period_end=timezone.now() - dt.timedelta(minutes=1),
        current_period_start=timezone.now() - dt.timedelta(days=30),
    )

    with pytest.raises(Conflict) as caught:
        billing.resume_subscription(account=account, actor=account.user)

    assert caught.value.code == "period_over"


def test_upgrading_from_free_starts_a_paid_period_and_charges_it(
    account, django_capture_on_commit_callbacks
):
    Account.objects.filter(pk=account.pk).update(plan="free")
    account.refresh_from_db()
    SubscriptionFactory(account=account, plan=plan("free"))
    PaymentMethodFactory(account=account)

    result = billing.change_plan(account=account, plan_code="growth", actor=account.user)

    (invoice,) = Invoice.objects.filter(account=account)
    assert (invoice.status, invoice.amount_due_cents, invoice.amount_paid_cents) == (
        Invoice.Status.PAID,
        4900,
        4900,
    )
    assert invoice.period_start == result.current_period_start
    assert invoice.bill_to_email == account.user.email
    assert result.status == Subscription.Status.ACTIVE


def test_upgrading_with_a_declining_card_goes_past_due(account, django_capture_on_commit_callbacks):
    Account.objects.filter(pk=account.pk).update(plan="free")
    account.refresh_from_db()
    SubscriptionFactory(account=account, plan=plan("free"))
    declining(account)

    with django_capture_on_commit_callbacks(execute=True):
        result = billing.change_plan(account=account, plan_code="starter", actor=account.user)

    assert result.status == Subscription.Status.PAST_DUE
    assert Invoice.objects.get(account=account).status == Invoice.Status.OPEN
    assert mail.outbox[-1].subject == "Payment failed: please update your card"


def test_a_paid_plan_needs_a_card_and_the_same_plan_is_a_conflict(account):
    SubscriptionFactory(account=account)

    with pytest.raises(InvalidInput) as caught:
        billing.change_plan(account=account, plan_code="growth", actor=account.user)
    assert caught.value.field == "plan"
    with pytest.raises(Conflict):
        billing.change_plan(account=account, plan_code="starter", actor=account.user)
    with pytest.raises(InvalidInput):
        billing.change_plan(account=account, plan_code="platinum", actor=account.user)
    assert Subscription.objects.get(account=account).plan.code == "starter"


def test_choosing_a_plan_again_reactivates_a_canceled_subscription(account, subscribed):
    billing.cancel_subscription(
        account=account, reason="other", at_period_end=False, actor=account.user
    )

    result = billing.change_plan(account=account, plan_code="starter", actor=account.user)

    assert (result.status, result.canceled_at) == (Subscription.Status.ACTIVE, None)
    assert Invoice.objects.get(account=account).status == Invoice.Status.PAID


# --- the local billing cycle ------------------------------------------------------------------


def due(account, **kwargs):
    end = timezone.now() - dt.timedelta(hours=1)
    return SubscriptionFactory(
        account=account,
        current_period_start=end - dt.timedelta(days=30),
        current_period_end=end,
        **kwargs,
    )


def test_the_cycle_invoices_and_charges_at_period_end_once(account):
    PaymentMethodFactory(account=account)
    subscription = due(account)
    old_end = subscription.current_period_end

    first = billing.run_billing_cycle()
    second = billing.run_billing_cycle()

    subscription.refresh_from_db()
    (invoice,) = Invoice.objects.filter(account=account)
    assert first["invoiced"] == 1 and second["invoiced"] == 0
    assert (invoice.period_start, invoice.period_end) == (old_end, billing.add_months(old_end))
    assert (invoice.status, invoice.amount_paid_cents, invoice.number) == (
        Invoice.Status.PAID,
        1900,
        f"INV-{subscription.pk:07d}-0001",
    )
    assert subscription.current_period_start == old_end
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.history.first().history_change_reason == "billing cycle"


def test_a_trial_becomes_active_when_the_first_charge_succeeds(account):
    PaymentMethodFactory(account=account)
    subscription = due(account, status=Subscription.Status.TRIALING)

    billing.run_billing_cycle()

    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE


def test_free_plans_roll_over_without_invoices(account):
    subscription = due(account, plan=plan("free"))

    result = billing.run_billing_cycle()

    subscription.refresh_from_db()
    assert result["renewed"] == 1 and result["invoiced"] == 0
    assert subscription.current_period_end > timezone.now()
    assert not Invoice.objects.exists()


def test_a_subscription_set_to_cancel_ends_at_period_end(
    account, django_capture_on_commit_callbacks
):
    subscription = due(account, cancel_at_period_end=True, cancellation_reason="other")

    with django_capture_on_commit_callbacks(execute=True):
        result = billing.run_billing_cycle()

    subscription.refresh_from_db()
    assert result["ended"] == 1
    assert (subscription.status, subscription.canceled_at) == (
        Subscription.Status.CANCELED,
        subscription.current_period_end,
    )
    assert Account.objects.get(pk=account.pk).plan == Account.Plan.FREE
    assert not Invoice.objects.exists()
    assert mail.outbox[-1].subject == "Your subscription has ended"


def test_failed_payments_go_past_due_with_reminders_then_cancel(
    account, django_capture_on_commit_callbacks
):
    declining(account)
    subscription = due(account)

    with django_capture_on_commit_callbacks(execute=True):
        billing.run_billing_cycle()
    subscription.refresh_from_db()
    invoice = Invoice.objects.get(account=account)
    assert (
        subscription.status == Subscription.Status.PAST_DUE
        and subscription.past_due_since is not None
    )
    assert (invoice.status, invoice.attempt_count, invoice.last_failure) == (
        Invoice.Status.OPEN,
        1,
        "The card was declined.",
    )
    assert len(mail.outbox) == 1 and "try again on" in mail.outbox[0].body

    # Nothing happens before the retry date, then a reminder per attempt.
    assert billing.run_billing_cycle()["retry_failed"] == 0
    moment = invoice.next_attempt_at
    for attempt in (2, 3):
        with django_capture_on_commit_callbacks(execute=True):
            assert billing.run_billing_cycle(now=moment)["retry_failed"] == 1
        invoice.refresh_from_db()
        assert invoice.attempt_count == attempt
        moment = invoice.next_attempt_at
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.run_billing_cycle(now=moment)["gave_up"] == 1

    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert (invoice.status, invoice.next_attempt_at) == (Invoice.Status.UNCOLLECTIBLE, None)
    assert (subscription.status, subscription.cancellation_reason) == (
        Subscription.Status.CANCELED,
        "payment_failed",
    )
    assert Account.objects.get(pk=account.pk).plan == Account.Plan.FREE
    assert len(mail.outbox) == 4
    assert mail.outbox[-1].subject == "Your subscription was canceled: payment failed"


def test_a_retry_with_a_fixed_card_reactivates(account):
    method = declining(account)
    subscription = due(account)
    billing.run_billing_cycle()
    PaymentMethod.objects.filter(pk=method.pk).update(
        last4="4242", provider_reference="pm_card_visa"
    )
    invoice = Invoice.objects.get(account=account)

    result = billing.run_billing_cycle(now=invoice.next_attempt_at)

    subscription.refresh_from_db()
    assert result["collected"] == 1
    assert subscription.status == Subscription.Status.ACTIVE


def test_an_expired_card_fails_like_a_decline(account):
    PaymentMethodFactory(account=account, exp_year=2020)
    due(account)

    billing.run_billing_cycle()

    assert Invoice.objects.get(account=account).last_failure == "The card has expired."


def test_stripe_subscriptions_are_left_to_stripe(account):
    due(account, provider="stripe")

    assert billing.run_billing_cycle()["invoiced"] == 0
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("count", [3, 30])
def test_the_cycle_is_set_based(db, count, django_assert_max_num_queries):
    for _ in range(count):
        account = AccountFactory()
        PaymentMethodFactory(account=account)
        due(account)

    with django_assert_max_num_queries(16):
        result = billing.run_billing_cycle()

    assert result["invoiced"] == count
