"""A check for a past moment reads billing and deletion as they were then: the
subscription from its history, the deletion request from its stamps."""

import datetime as dt

import pytest

from deployments.health import services
from deployments.health.factors import described
from tests.factories import AccountFactory
from tests.userflows.factories import DeletionRequestFactory, SubscriptionFactory
from userflows.models import DeletionRequest, Subscription

pytestmark = pytest.mark.django_db


def _factor(check, name: str):
    return next(f for f in described(check.factors) if f["name"] == name)["value"]


def test_billing_of_a_past_check_comes_from_the_subscription_history(clock):
    account = AccountFactory()
    clock.advance(days=-20)
    subscription = SubscriptionFactory(
        account=account, status=Subscription.Status.PAST_DUE, created_at=clock.now
    )
    clock.advance(days=10)  # ten days ago it recovered
    subscription.status = Subscription.Status.ACTIVE
    subscription.save()
    clock.advance(days=5)  # five days ago a cancellation at period end was chosen
    subscription.cancel_at_period_end = True
    subscription.save()
    clock.advance(days=5)  # back to the present, an hour later than the last change

    def billing(days_ago: float):
        check = services.check_account_health(
            account=account, now=clock.now - dt.timedelta(days=days_ago)
        )
        return _factor(check, "billing_status")

    assert billing(15) == "past_due"
    assert billing(7) == "active"
    assert billing(2) == "cancel_scheduled"
    assert billing(0) == "cancel_scheduled"  # the present reads the subscription itself
    assert billing(30) is None  # it did not exist yet: no data, left out of the weighting


def test_a_subscription_without_history_rows_is_read_as_it_is(clock):
    account = AccountFactory()
    SubscriptionFactory(account=account, status=Subscription.Status.PAST_DUE, created_at=clock.now)
    Subscription.history.filter(account_id=account.id).delete()  # as bulk_create leaves it
    clock.advance(days=3)
    check = services.check_account_health(account=account, now=clock.now - dt.timedelta(days=1))
    assert _factor(check, "billing_status") == "past_due"


def test_a_deletion_request_counts_while_it_was_pending(clock):
    start = clock.now
    canceled = AccountFactory()
    DeletionRequestFactory(
        account=canceled,
        requested_at=start - dt.timedelta(days=20),
        status=DeletionRequest.Status.CANCELED,
        canceled_at=start - dt.timedelta(days=5),
    )
    failed = AccountFactory()  # failed attempts are retried: still pending
    DeletionRequestFactory(
        account=failed,
        requested_at=start - dt.timedelta(days=20),
        status=DeletionRequest.Status.FAILED,
        failed_at=start - dt.timedelta(days=1),
    )
    later = AccountFactory()
    DeletionRequestFactory(account=later, requested_at=start - dt.timedelta(days=2))

    def asked(account, days_ago: int):
        check = services.check_account_health(
            account=account, now=start - dt.timedelta(days=days_ago)
        )
        return _factor(check, "deletion_requested")

    assert (asked(canceled, 10), asked(canceled, 0)) == ("yes", "no")
    assert (asked(failed, 10), asked(failed, 0)) == ("yes", "yes")
    assert (asked(later, 10), asked(later, 0)) == ("no", "yes")
