"""Customer-side actions (billing, exports, deletion) never act on an account whose owner is
a staff login: whatever happened to the owner, a customer flow cannot reach a staff user."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from opsplatform.errors import Conflict
from opsplatform.models import Account
from tests.factories import AccountFactory, StaffFactory
from tests.userflows.factories import (
    DeletionRequestFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
)
from userflows.models import DeletionCertificate, DeletionRequest, ExportRequest, Subscription
from userflows.services import billing, deletion, exports

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["staff", "superuser"])
def staff_owned(request):
    """An account whose owner is a staff login (as after a reassignment in admin)."""
    kwargs = {"is_superuser": True} if request.param == "superuser" else {}
    owner = StaffFactory(**kwargs)
    account = AccountFactory(user=owner)
    PaymentMethodFactory(account=account)
    SubscriptionFactory(account=account)
    return account


def sub_state(account):
    sub = Subscription.objects.get(account=account)
    return (sub.plan_id, sub.status, sub.cancel_at_period_end, sub.history.count())


@pytest.mark.parametrize(
    "action",
    [
        lambda a: billing.change_plan(account=a, plan_code="growth", actor=a.user),
        lambda a: billing.cancel_subscription(account=a, reason="other", actor=a.user),
        lambda a: billing.update_payment_method(
            account=a, payment_method_id="pm_card_amex", actor=a.user
        ),
        lambda a: billing.preview_plan_change(account=a, plan_code="growth"),
    ],
    ids=["change_plan", "cancel", "payment_method", "preview"],
)
def test_billing_refuses_a_staff_owned_account(staff_owned, action):
    before = sub_state(staff_owned)

    with pytest.raises(Conflict) as caught:
        action(staff_owned)

    assert caught.value.code == "staff_account"
    assert sub_state(staff_owned) == before
    assert Account.objects.get(pk=staff_owned.pk).plan == "starter"


def test_exports_and_deletion_requests_refuse_a_staff_owned_account(staff_owned):
    today = timezone.localdate()
    with pytest.raises(Conflict):
        exports.create_export_request(
            account=staff_owned,
            requested_by=staff_owned.user,
            format="csv",
            data_types=["campaigns"],
            date_from=today - dt.timedelta(days=7),
            date_to=today,
        )
    with pytest.raises(Conflict):
        deletion.request_deletion(account=staff_owned, actor=staff_owned.user)

    assert not ExportRequest.objects.exists() and not DeletionRequest.objects.exists()


def test_a_scheduled_deletion_never_deletes_a_staff_login(account):
    """The scheduled deletion was requested by a customer; the account's login was then
    reassigned to a staff user. When it comes due, nothing is erased."""
    request = DeletionRequestFactory(account=account, scheduled_for=timezone.now())
    staff = StaffFactory(username="ops-lead")
    Account.objects.filter(pk=account.pk).update(user=staff)
    customer = account.user

    outcome = deletion.run_due_deletions()

    request.refresh_from_db()
    assert outcome == {"completed": 0, "failed": 1}
    assert request.status == DeletionRequest.Status.FAILED
    assert "staff login" in request.error
    staff.refresh_from_db()
    assert (staff.username, staff.email, staff.is_active) == (
        "ops-lead",
        "ops-lead@opsplatform.local",
        True,
    )
    assert staff.has_usable_password()
    assert Account.objects.get(pk=account.pk).user_id == staff.pk
    assert get_user_model().objects.filter(pk=customer.pk).exists()
    assert not DeletionCertificate.objects.exists()
