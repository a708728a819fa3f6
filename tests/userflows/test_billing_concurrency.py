"""Issue 7 item 3: `POST /billing/plan {"plan": "enterprise"}` and `POST /billing/cancel`
fired together must never leave a canceled subscription on a paid plan (PostgreSQL: real row
locks, threads, committed data). Each request loads the account at sign-in, before the locks,
as the API does; billing must decide on the rows it re-reads under the lock."""

import threading

import pytest
from django.db import connection

from opsplatform.models import Account
from tests.conftest import ApiClient
from tests.factories import AccountFactory, token_for
from tests.userflows.factories import PaymentMethodFactory, SubscriptionFactory, plan
from tests.userflows.test_concurrency import Worker
from userflows.models import Subscription

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 30


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks across connections)")


def customer_on(code: str) -> tuple[Account, str]:
    account = AccountFactory(plan=code)
    PaymentMethodFactory(account=account)
    SubscriptionFactory(account=account, plan=plan(code))
    return account, token_for(account.user)


def fire_together(token: str) -> tuple:
    start = threading.Barrier(2)

    def call(path, body):
        def run():
            api = ApiClient(token)
            start.wait(10)
            return api.post(path, body).status_code

        return run

    upgrade = Worker(call("billing/plan", {"plan": "enterprise"}))
    cancel = Worker(call("billing/cancel", {"reason": "other", "at_period_end": False}))
    upgrade.start()
    cancel.start()
    upgrade.join(30)
    cancel.join(30)
    return upgrade, cancel


@pytest.mark.parametrize("start_plan", ["free", "growth"])
def test_upgrade_and_cancel_fired_together_keep_canceled_means_free(start_plan):
    seen = set()
    for _ in range(ROUNDS):
        account, token = customer_on(start_plan)

        upgrade, cancel = fire_together(token)

        assert (upgrade.error, cancel.error) == (None, None)
        assert (upgrade.result, cancel.result) == (200, 200)
        sub = Subscription.objects.select_related("plan").get(account=account)
        account_plan = Account.objects.get(pk=account.pk).plan
        if sub.status == Subscription.Status.CANCELED:
            assert account_plan == "free", f"canceled subscription left on {account_plan}"
        else:
            assert (sub.status, sub.plan.code, account_plan) == (
                "active",
                "enterprise",
                "enterprise",
            )
        seen.add(sub.status)
    assert seen <= {"active", "canceled"}
