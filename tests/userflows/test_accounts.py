"""One source of truth for an account's plan: every account has exactly one subscription from
the moment it exists, and Account.plan changes only through billing's core service."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from opsplatform import services as core_services
from opsplatform.errors import InvalidInput
from opsplatform.models import Account
from tests.userflows.factories import PaymentMethodFactory, SubscriptionFactory, plan
from userflows.models import Invoice, Subscription
from userflows.services import billing

pytestmark = pytest.mark.django_db


def test_create_account_starts_its_one_subscription(django_capture_on_commit_callbacks):
    account = core_services.create_account(
        email="new@example.test", password="pw-123456789", persona_slug="agency"
    )

    (sub,) = Subscription.objects.filter(account=account)
    assert (sub.plan.code, sub.status, sub.provider) == (
        "starter",
        Subscription.Status.TRIALING,
        "local",
    )
    assert account.plan == "starter"
    # ...so it can be canceled like any other (it answered 409 "no active subscription").
    with django_capture_on_commit_callbacks(execute=True):
        canceled = billing.cancel_subscription(
            account=account, reason="not_using", at_period_end=False, actor=account.user
        )
    assert canceled.status == Subscription.Status.CANCELED
    assert Account.objects.get(pk=account.pk).plan == "free"


def test_a_free_account_starts_active_and_the_command_does_the_same():
    out = io.StringIO()
    call_command(
        "create_account",
        "--email=cmd@example.test",
        "--password=pw-123456789",
        "--persona=brand",
        "--plan=free",
        stdout=out,
        stderr=io.StringIO(),
    )

    account = Account.objects.get(pk=int(out.getvalue().strip()))
    (sub,) = Subscription.objects.filter(account=account)
    assert (sub.plan.code, sub.status) == ("free", Subscription.Status.ACTIVE)


def test_an_unknown_plan_creates_nothing():
    with pytest.raises(InvalidInput) as caught:
        core_services.create_account(
            email="x@example.test", password="pw", persona_slug="agency", plan="platinum"
        )

    assert caught.value.field == "plan"
    assert not get_user_model().objects.filter(email="x@example.test").exists()
    assert not Subscription.objects.exists()


def test_set_account_plan_reads_the_row_under_its_lock(account):
    stale = Account.objects.get(pk=account.pk)
    Account.objects.filter(pk=account.pk).update(plan="enterprise")  # another transaction

    core_services.set_account_plan(
        account_id=stale.pk, plan_code="starter", actor=account.user, reason="test"
    )

    account.refresh_from_db()
    assert account.plan == "starter"
    assert account.history.first().history_change_reason == "test"


def test_set_account_plans_writes_only_what_differs_with_history(account, other_account):
    Account.objects.filter(pk=other_account.pk).update(plan="free")
    before = (account.history.count(), other_account.history.count())

    changed = core_services.set_account_plans(
        plans={account.pk: "free", other_account.pk: "free"}, reason="billing cycle"
    )

    assert changed == 1
    assert set(Account.objects.values_list("plan", flat=True)) == {"free"}
    assert (account.history.count(), other_account.history.count()) == (
        before[0] + 1,
        before[1],
    )
    with pytest.raises(InvalidInput):
        core_services.set_account_plans(plans={account.pk: "platinum"}, reason="x")
    assert Account.objects.get(pk=account.pk).plan == "free"


def test_cancelling_now_frees_the_plan_even_from_a_copy_loaded_before_an_upgrade(account):
    """Issue 7 item 3, one interleaving made deterministic: the customer's request loaded
    the account while it was free; an upgrade to enterprise committed before the
    cancellation took the lock. The old code compared with that copy (free == free) and
    left Account.plan = enterprise on a canceled subscription."""
    Account.objects.filter(pk=account.pk).update(plan="free")
    PaymentMethodFactory(account=account)
    SubscriptionFactory(account=account, plan=plan("free"))
    stale = Account.objects.select_related("user").get(pk=account.pk)
    billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    sub = billing.cancel_subscription(
        account=stale, reason="other", at_period_end=False, actor=account.user
    )

    assert (sub.status, sub.plan.code) == (Subscription.Status.CANCELED, "enterprise")
    assert Account.objects.get(pk=account.pk).plan == "free"
    assert Invoice.objects.filter(account=account).count() == 1


def test_a_new_trial_without_a_card_can_cancel_and_then_keep_its_plan():
    account = core_services.create_account(
        email="trial@example.test", password="pw-123456789", persona_slug="brand"
    )
    billing.cancel_subscription(account=account, reason="other", actor=account.user)

    kept = billing.change_plan(account=account, plan_code="starter", actor=account.user)

    assert (kept.status, kept.cancel_at_period_end, kept.plan.code) == (
        Subscription.Status.TRIALING,
        False,
        "starter",
    )
    assert not Invoice.objects.exists()
